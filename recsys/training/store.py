"""The shared model store: the one owner of published model versions and the local caches.

Hosts share nothing but the database (and the broker), so training publishes each finished
version there: a ``model_versions`` row (its manifest, and every file's size and sha256,
whole and per chunk) plus its files cut into ``model_chunks`` rows of at most
:data:`CHUNK_BYTES` (PostgreSQL ``bytea`` and SQLite blobs both cope with that; one row per
file would not, for a 1 GB embedding store). Which version is active is one row,
``active_model``, so ``paperboy models activate`` on any host moves every host.

Each process keeps a cache under its own data folder, keyed by version, in the layout
:mod:`recsys.training.artifacts` and :class:`~recsys.catalog.embeddings.EmbeddingStore`
read::

    models_dir/<version>/            the artifact (arrays, manifest, embedder)
    embeddings_root/<version>/       the version's embedding store, as training left it

:func:`ensure_cached` fetches a version the cache lacks into a temporary folder, verifies
every chunk against the published hashes, and renames it into place under a per-version
file lock, so two processes of one host never fetch the same version twice, and a reader
sees a complete version or none.

The chunk bytes sit behind :class:`ChunkStore`; :class:`DatabaseChunks` is the only one
today. An S3-compatible bucket could implement the same three methods later; the version
rows and the active row would stay in the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recsys.db.models import ActiveModelRow, ModelChunkRow, ModelVersionRow
from recsys.training import artifacts

CHUNK_BYTES: Final[int] = 8 * 1024 * 1024
MODEL_PART: Final[str] = "model"  # published paths are "model/..." or "embeddings/..."
EMBEDDINGS_PART: Final[str] = "embeddings"
_SLOT: Final[int] = 1
# Each part of a published path must be a plain name: the paths come from the database and
# become file names, so "..", absolute paths and hidden names are refused on fetch.
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class StoreError(ValueError):
    """A published version cannot be fetched as published; the message names the version,
    the file and the chunk, and says what to do."""


class ChunkStore(Protocol):
    """Where the bytes of published files live (the database today; a bucket could later)."""

    def put(self, version: str, path: str, seq: int, data: bytes) -> None: ...

    def get(self, version: str, path: str, seq: int) -> bytes | None: ...

    def delete(self, version: str) -> None: ...


class DatabaseChunks:
    """Chunks as ``model_chunks`` rows, written and read in the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def put(self, version: str, path: str, seq: int, data: bytes) -> None:
        row = {"version": version, "path": path, "seq": seq, "data": data}
        self._session.execute(insert(ModelChunkRow), [row])

    def get(self, version: str, path: str, seq: int) -> bytes | None:
        return self._session.scalar(
            select(ModelChunkRow.data).where(
                ModelChunkRow.version == version,
                ModelChunkRow.path == path,
                ModelChunkRow.seq == seq,
            )
        )

    def delete(self, version: str) -> None:
        self._session.execute(delete(ModelChunkRow).where(ModelChunkRow.version == version))


# --- publishing --------------------------------------------------------------------------------
def publish(
    session: Session,
    version: str,
    model_dir: Path,
    embeddings_dir: Path,
    now: datetime,
    chunks: ChunkStore | None = None,
) -> dict[str, Any]:
    """Publish a version written locally (artifact folder and embedding store).

    Everything is written in the caller's transaction: other hosts see the whole version
    when it commits, or nothing. Returns the published file table.

    Raises
    ------
    FileExistsError
        If ``version`` is already published.
    """
    chunks = chunks or DatabaseChunks(session)
    if session.get(ModelVersionRow, version) is not None:
        raise FileExistsError(f"model version {version!r} is already published")
    manifest = artifacts.read_manifest(model_dir.parent, version)
    session.add(ModelVersionRow(version=version, created_at=now, manifest=manifest, files={}))
    session.flush()  # the chunks' foreign key needs the version row
    files = {}
    for part, root in ((MODEL_PART, model_dir), (EMBEDDINGS_PART, embeddings_dir)):
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = file.relative_to(root)
            if any(name.startswith(".") for name in relative.parts):
                continue  # a lock or a temporary file, not part of the version
            path = f"{part}/{relative.as_posix()}"
            files[path] = _publish_file(chunks, version, path, file)
    session.execute(
        update(ModelVersionRow).where(ModelVersionRow.version == version).values(files=files)
    )
    return files


def _publish_file(chunks: ChunkStore, version: str, path: str, file: Path) -> dict[str, Any]:
    whole = hashlib.sha256()
    hashes = []
    with open(file, "rb") as fh:
        for seq, data in enumerate(iter(lambda: fh.read(CHUNK_BYTES), b"")):
            whole.update(data)
            hashes.append(hashlib.sha256(data).hexdigest())
            chunks.put(version, path, seq, data)
    return {"size": file.stat().st_size, "sha256": whole.hexdigest(), "chunks": hashes}


# --- the active version ------------------------------------------------------------------------
def activate(session: Session, version: str, now: datetime) -> None:
    """Make ``version`` the active model on every host.

    Raises
    ------
    FileNotFoundError
        If ``version`` is not published; the message lists the published ones.
    """
    if session.get(ModelVersionRow, version) is None:
        raise FileNotFoundError(
            f"no published model version {version!r}; known: {list_versions(session)}"
        )
    moved = session.execute(
        update(ActiveModelRow)
        .where(ActiveModelRow.slot == _SLOT)
        .values(version=version, activated_at=now)
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        return
    try:  # the very first activation; a concurrent first one may beat us to the insert
        with session.begin_nested():
            session.add(ActiveModelRow(slot=_SLOT, version=version, activated_at=now))
    except IntegrityError:
        session.execute(
            update(ActiveModelRow)
            .where(ActiveModelRow.slot == _SLOT)
            .values(version=version, activated_at=now)
        )


def active_version(session: Session) -> str | None:
    """The active version, or None if none was ever activated."""
    return session.scalar(select(ActiveModelRow.version).where(ActiveModelRow.slot == _SLOT))


def list_versions(session: Session) -> list[str]:
    """Published versions, oldest first (version names sort by creation time)."""
    return list(session.scalars(select(ModelVersionRow.version).order_by(ModelVersionRow.version)))


def read_manifest(session: Session, version: str) -> dict[str, Any]:
    """The manifest of a published version (nothing fetched).

    Raises
    ------
    FileNotFoundError
        If ``version`` is not published.
    """
    manifest = session.scalar(
        select(ModelVersionRow.manifest).where(ModelVersionRow.version == version)
    )
    if manifest is None:
        raise FileNotFoundError(f"no published model version {version!r}")
    return dict(manifest)


# --- the local cache ---------------------------------------------------------------------------
def is_cached(version: str, models_dir: Path) -> bool:
    """Whether this host holds ``version`` complete (its manifest is renamed in last)."""
    return (models_dir / version / artifacts.MANIFEST_FILE).is_file()


def ensure_cached(
    session: Session,
    version: str,
    models_dir: Path,
    embeddings_root: Path,
    chunks: ChunkStore | None = None,
) -> bool:
    """Fetch ``version`` into this host's cache unless it is there; True if it fetched.

    Raises
    ------
    FileNotFoundError
        If ``version`` is neither cached nor published.
    StoreError
        If a published file is incomplete or does not match its hashes; nothing is cached.
    """
    if is_cached(version, models_dir):
        return False
    models_dir.mkdir(parents=True, exist_ok=True)
    with _fetch_lock(models_dir, version):
        if is_cached(version, models_dir):  # another process of this host fetched it
            return False
        files = session.scalar(
            select(ModelVersionRow.files).where(ModelVersionRow.version == version)
        )
        if files is None:
            raise FileNotFoundError(f"no published model version {version!r} to fetch")
        _fetch(chunks or DatabaseChunks(session), version, files, models_dir, embeddings_root)
    prune_cache(session, models_dir, embeddings_root)
    return True


@contextmanager
def _fetch_lock(models_dir: Path, version: str) -> Iterator[None]:
    with open(models_dir / f".fetch-{version}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits for another process fetching it
        try:
            # Holding the lock, no one else is fetching this version: what a killed fetch
            # left is garbage.
            for leftover in models_dir.glob(f".fetch-{version}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch(
    chunks: ChunkStore,
    version: str,
    files: dict[str, Any],
    models_dir: Path,
    embeddings_root: Path,
) -> None:
    tmp = models_dir / f".fetch-{version}-{secrets.token_hex(4)}"
    try:
        for path, meta in sorted(files.items()):
            _fetch_file(chunks, version, path, meta, tmp / _safe_path(version, path))
        _install(tmp, version, models_dir, embeddings_root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe_path(version: str, path: str) -> Path:
    parts = path.split("/")
    if (
        len(parts) < 2
        or parts[0] not in (MODEL_PART, EMBEDDINGS_PART)
        or not all(_PART.fullmatch(p) and ".." not in p for p in parts)
    ):
        raise StoreError(f"model version {version!r}: published file name {path!r} is unsafe")
    return Path(*parts)


def _fetch_file(
    chunks: ChunkStore, version: str, path: str, meta: dict[str, Any], target: Path
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    with open(target, "wb") as fh:
        for seq, expected in enumerate(meta["chunks"]):
            data = chunks.get(version, path, seq)
            where = f"model version {version!r}, file {path!r}, chunk {seq}"
            if data is None:
                raise StoreError(f"{where} is missing from the store; retrain or activate another")
            if hashlib.sha256(data).hexdigest() != expected:
                raise StoreError(f"{where} does not match its sha256; the stored copy is corrupt")
            whole.update(data)
            fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if target.stat().st_size != meta["size"] or whole.hexdigest() != meta["sha256"]:
        raise StoreError(f"model version {version!r}, file {path!r}: size or sha256 differ")


def _install(tmp: Path, version: str, models_dir: Path, embeddings_root: Path) -> None:
    """Rename the embeddings, then the model, into place: the model's manifest is the mark
    of a complete version, so a crash between the two renames only means fetching again."""
    embeddings = tmp / EMBEDDINGS_PART
    target = embeddings_root / version
    if embeddings.is_dir() and not target.exists():
        embeddings_root.mkdir(parents=True, exist_ok=True)
        os.rename(embeddings, target)
    model = tmp / MODEL_PART
    if not (model / artifacts.MANIFEST_FILE).is_file():
        raise StoreError(f"model version {version!r}: published without {artifacts.MANIFEST_FILE}")
    os.rename(model, models_dir / version)


# --- pruning -----------------------------------------------------------------------------------
def prune(
    session: Session,
    keep: int,
    models_dir: Path,
    embeddings_root: Path,
    chunks: ChunkStore | None = None,
) -> list[str]:
    """Unpublish all but the newest ``keep`` versions (never the active one), then prune this
    host's cache; return the versions unpublished, oldest first. Other hosts prune their
    caches when they next fetch a version."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    chunks = chunks or DatabaseChunks(session)
    active = active_version(session)
    versions = list_versions(session)
    doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != active]
    for version in doomed:
        chunks.delete(version)
        session.execute(delete(ModelVersionRow).where(ModelVersionRow.version == version))
    prune_cache(session, models_dir, embeddings_root)
    return doomed


def prune_cache(session: Session, models_dir: Path, embeddings_root: Path) -> list[str]:
    """Delete cached versions that are no longer published; return them.

    Only versions older than the newest published one go: a version newer than that may be
    a training in progress on this host, written locally and not yet committed."""
    published = list_versions(session)
    if not published:
        return []
    keep, newest = set(published), published[-1]
    local = set(artifacts.list_versions(models_dir))
    if embeddings_root.is_dir():
        local |= {p.name for p in embeddings_root.iterdir() if _PART.fullmatch(p.name)}
    doomed = sorted(v for v in local if v not in keep and v < newest)
    for version in doomed:
        shutil.rmtree(models_dir / version, ignore_errors=True)
        shutil.rmtree(embeddings_root / version, ignore_errors=True)
    return doomed
