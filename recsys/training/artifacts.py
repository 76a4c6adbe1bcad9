"""Versioned model directories: the one module that reads and writes model files.

Layout::

    models_dir/
        20261121T070000123456Z-3fa9c1/
            arrays.npz             every array, stored without pickle
            manifest.json          the caller's manifest + format, version, array shapes/dtypes
            <extra dirs>/          written by the caller, e.g. the embedder's files
        .tmp-<version>-<random>/   a write in progress, or one that crashed; never listed

A version is written into a hidden temporary directory and renamed into place, so readers
see all of a version or none of it. Arrays never use pickle, so loading a model cannot run
code; a corrupt or foreign directory raises ``ArtifactError`` naming the file.

This folder is a host's cache: which version is active, and which versions exist for every
host, is the database's to say (``recsys.training.store``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FORMAT: Final[int] = 1
ARRAYS_FILE: Final[str] = "arrays.npz"
MANIFEST_FILE: Final[str] = "manifest.json"
# Keys write_artifact fills in itself; a caller's value would be silently lost otherwise.
RESERVED_KEYS: Final = frozenset({"format", "version", "arrays"})

# Versions, array names and extra dir names become file names: no separators, no leading
# dot (hidden names are temporary directories), no "..".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ArtifactError(ValueError):
    """A model directory exists but cannot be read back; the message names the file."""


@dataclass(frozen=True)
class Artifact:
    """One model version, as written or loaded.

    Attributes
    ----------
    version : str
        Directory name under ``models_dir``; default names sort by creation time.
    path : Path
        The version directory (extra dirs live under it).
    manifest : dict
        The caller's manifest plus ``format``, ``version`` and ``arrays``
        (``{name: {"shape": [...], "dtype": "<f4"}}``).
    arrays : dict of str to ndarray
        Every stored array, loaded eagerly.
    """

    version: str
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, NDArray[Any]] = field(repr=False)


def write_artifact(
    models_dir: Path,
    arrays: Mapping[str, NDArray[Any]],
    manifest: Mapping[str, Any],
    *,
    version: str | None = None,
    extra_dirs: Mapping[str, Callable[[Path], None]] | None = None,
) -> Artifact:
    """Write a new model version atomically.

    Everything is written into ``models_dir/.tmp-<version>-*/``, fsynced, then renamed to
    ``models_dir/<version>``; on any failure the temporary directory is removed and the
    error re-raised, so no version directory, complete or partial, appears.

    Parameters
    ----------
    models_dir : Path
        Created if missing.
    arrays : mapping of str to ndarray
        Numeric or fixed-width string arrays. Names match ``[A-Za-z0-9][A-Za-z0-9_.-]*``.
    manifest : mapping
        Plain JSON (no NaN); the caller records ``created_at`` and the like here, since this
        module does not decide what time it is. Must not use ``RESERVED_KEYS``.
    version : str, optional
        Defaults to a UTC timestamp plus a random suffix, which sorts by creation time.
    extra_dirs : mapping of str to callable, optional
        ``{name: write}``: ``write(path)`` fills the fresh sub-directory ``path`` inside the
        temporary directory, e.g. with an embedder's own files.

    Returns
    -------
    Artifact

    Raises
    ------
    ValueError
        For an invalid name, an object array (it would need pickle) or a manifest that is not
        plain JSON or uses a reserved key; nothing is written.
    FileExistsError
        If the version already exists.
    """
    version = _new_version() if version is None else _check_version(version)
    checked = _check_arrays(arrays)
    full_manifest = _full_manifest(manifest, version, checked)
    text = _to_json(full_manifest)
    extra = _check_extra_dirs(extra_dirs or {})
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / version
    if final.exists():
        raise FileExistsError(f"model version {version!r} already exists in {models_dir}")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=models_dir))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; workers may run as another user
        _write_contents(tmp, checked, text, extra)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(models_dir)
    return Artifact(version, final, full_manifest, checked)


def load_artifact(models_dir: Path, version: str) -> Artifact:
    """Load model version ``version`` (arrays without pickle), checked against its manifest.

    Raises
    ------
    ValueError
        If ``version`` is not a valid version name.
    FileNotFoundError
        If there is no such version; the message lists the known ones.
    ArtifactError
        If the manifest or arrays are missing, unreadable, pickled, or disagree.
    """
    models_dir = Path(models_dir)
    path = models_dir / _check_version(version)
    if not path.is_dir():
        known = list_versions(models_dir)
        raise FileNotFoundError(f"no model version {version!r} in {models_dir}; known: {known}")
    manifest = _read_manifest(path / MANIFEST_FILE, version)
    arrays = _read_arrays(path / ARRAYS_FILE)
    _check_against_manifest(path / ARRAYS_FILE, arrays, manifest["arrays"])
    return Artifact(version, path, manifest, arrays)


def read_manifest(models_dir: Path, version: str) -> dict[str, Any]:
    """The manifest of ``version`` alone (no arrays loaded), e.g. to list versions."""
    path = Path(models_dir) / _check_version(version) / MANIFEST_FILE
    return _read_manifest(path, version)


def list_versions(models_dir: Path) -> list[str]:
    """Names of the complete versions in ``models_dir``, oldest first for default names."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return sorted(
        entry.name
        for entry in models_dir.iterdir()
        if _NAME.fullmatch(entry.name) and (entry / MANIFEST_FILE).is_file()
    )


def remove_leftovers(models_dir: Path) -> None:
    """Delete the temporary directories of writes that never finished.

    Call it only while holding the training lock: then no write is in progress, and any
    ``.tmp-*`` directory is what a killed training left behind. (Which versions to keep is
    the shared store's decision: ``recsys.training.store.prune``.)
    """
    for leftover in Path(models_dir).glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _new_version() -> str:
    # Microsecond UTC timestamp so names sort by creation; the suffix keeps two writers
    # in the same microsecond (or on two machines) from colliding.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def _check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"{what}: {name!r} is not a valid name (letters, digits, '_', '.', '-'; "
            "starting with a letter or digit)"
        )
    return name


def _check_version(version: str) -> str:
    return _check_name("version", version)


def _check_arrays(arrays: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    checked = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise ValueError(
                f"arrays[{name!r}]: dtype {array.dtype} holds Python objects, which need "
                "pickle; store numbers or fixed-width strings"
            )
        checked[_check_name("array name", name)] = array
    return checked


def _check_extra_dirs(
    extra_dirs: Mapping[str, Callable[[Path], None]],
) -> dict[str, Callable[[Path], None]]:
    for name in extra_dirs:
        if _check_name("extra_dirs", name) in {ARRAYS_FILE, MANIFEST_FILE}:
            raise ValueError(f"extra_dirs: {name!r} is the name of a file the artifact writes")
    return dict(extra_dirs)


def _full_manifest(
    manifest: Mapping[str, Any], version: str, arrays: Mapping[str, NDArray[Any]]
) -> dict[str, Any]:
    clash = RESERVED_KEYS & set(manifest)
    if clash:
        raise ValueError(f"manifest: keys {sorted(clash)} are reserved (filled in on write)")
    shapes = {name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()}
    return {**manifest, "format": FORMAT, "version": version, "arrays": shapes}


def _to_json(manifest: Mapping[str, Any]) -> str:
    try:
        return json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest: not plain JSON ({exc})") from exc


def _write_contents(
    tmp: Path,
    arrays: Mapping[str, NDArray[Any]],
    manifest_text: str,
    extra_dirs: Mapping[str, Callable[[Path], None]],
) -> None:
    _write_npz(tmp / ARRAYS_FILE, arrays)
    for name, write in extra_dirs.items():
        (tmp / name).mkdir()
        write(tmp / name)
    _write_synced(tmp / MANIFEST_FILE, manifest_text)
    _fsync_dir(tmp)


def _write_npz(path: Path, arrays: Mapping[str, NDArray[Any]]) -> None:
    """An ``.npz`` ``np.load`` reads; written by hand because ``np.savez(**arrays)`` breaks
    on array names such as ``file`` or ``allow_pickle`` (its own keyword arguments)."""
    with open(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w") as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes a rename durable: without it a crash can lose the new directory entry.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_manifest(file: Path, version: str) -> dict[str, Any]:
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{file}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("arrays"), dict):
        raise ArtifactError(f"{file}: not an artifact manifest (no 'arrays' table)")
    if manifest.get("version") != version:
        raise ArtifactError(f"{file}: says version {manifest.get('version')!r}, not {version!r}")
    return manifest


def _read_arrays(file: Path) -> dict[str, NDArray[Any]]:
    try:
        return _load_npz(file)
    except ArtifactError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # ValueError is what np.load raises for pickled (object) arrays.
        raise ArtifactError(f"{file}: unreadable arrays ({exc})") from exc


def _load_npz(file: Path) -> dict[str, NDArray[Any]]:
    data = np.load(file, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ArtifactError(f"{file}: holds a single array, not an .npz archive")
    with data:
        return {name: data[name] for name in data.files}


def _check_against_manifest(
    file: Path, arrays: Mapping[str, NDArray[Any]], expected: Mapping[str, Any]
) -> None:
    if set(arrays) != set(expected):
        raise ArtifactError(
            f"{file}: holds arrays {sorted(arrays)} but the manifest lists {sorted(expected)}"
        )
    for name, array in arrays.items():
        found = {"shape": list(array.shape), "dtype": array.dtype.str}
        if found != expected[name]:
            raise ArtifactError(
                f"{file}: array {name!r} is {found}, manifest says {expected[name]}"
            )
