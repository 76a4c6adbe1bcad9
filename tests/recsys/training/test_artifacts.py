"""Model artifacts: versioned, atomic, pickle-free directories."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from recsys.training.artifacts import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    ArtifactError,
    list_versions,
    load_artifact,
    remove_leftovers,
    write_artifact,
)

CREATED_AT = "2026-11-21T07:00:00+00:00"


def arrays() -> dict[str, np.ndarray]:
    return {
        "user_factors": np.arange(6, dtype=np.float32).reshape(2, 3),
        "paper_ids": np.array([7, 9], dtype=np.int64),
        "labels": np.array(["cs.LG", "cs.IR"]),
    }


def write(models: Path, version: str | None = "v1", **kwargs) -> str:
    return write_artifact(
        models, arrays(), {"created_at": CREATED_AT}, version=version, **kwargs
    ).version


def entries(models: Path) -> list[str]:
    return sorted(path.name for path in models.iterdir())


class TestWriteAndLoad:
    def test_a_written_version_loads_back_identically(self, tmp_path: Path) -> None:
        written = write_artifact(tmp_path, arrays(), {"created_at": CREATED_AT, "recall": 0.31})
        loaded = load_artifact(tmp_path, written.version)
        assert loaded.manifest == written.manifest
        assert loaded.path == tmp_path / written.version
        assert loaded.arrays.keys() == arrays().keys()
        for name, array in arrays().items():
            np.testing.assert_array_equal(loaded.arrays[name], array)
            assert loaded.arrays[name].dtype == array.dtype

    def test_the_manifest_records_version_and_array_layout(self, tmp_path: Path) -> None:
        write(tmp_path)
        manifest = json.loads((tmp_path / "v1" / MANIFEST_FILE).read_text())
        assert manifest["created_at"] == CREATED_AT
        assert manifest["version"] == "v1" and manifest["format"] == 1
        assert manifest["arrays"]["user_factors"] == {"shape": [2, 3], "dtype": "<f4"}

    def test_extra_dirs_are_written_inside_the_version(self, tmp_path: Path) -> None:
        def write_embedder(path: Path) -> None:
            (path / "vocabulary.txt").write_text("graph\nattention\n")

        write(tmp_path, extra_dirs={"embedder": write_embedder})
        assert (tmp_path / "v1" / "embedder" / "vocabulary.txt").read_text() == "graph\nattention\n"

    def test_array_names_that_are_numpy_keywords_work(self, tmp_path: Path) -> None:
        names = {"file": np.zeros(1), "allow_pickle": np.ones(1)}
        write_artifact(tmp_path, names, {}, version="v1")
        assert load_artifact(tmp_path, "v1").arrays.keys() == names.keys()

    def test_default_versions_are_distinct_and_sort_by_creation(self, tmp_path: Path) -> None:
        first, second = write(tmp_path, version=None), write(tmp_path, version=None)
        assert first != second
        assert list_versions(tmp_path) == [first, second]

    def test_an_existing_version_is_never_overwritten(self, tmp_path: Path) -> None:
        write(tmp_path)
        with pytest.raises(FileExistsError, match="'v1' already exists"):
            write(tmp_path)


class TestAtomicity:
    def test_a_failing_extra_dir_leaves_nothing_behind(self, tmp_path: Path) -> None:
        def crash(path: Path) -> None:
            (path / "half.bin").write_bytes(b"\0" * 10)
            raise RuntimeError("disk on fire")

        write(tmp_path, version="v0")
        with pytest.raises(RuntimeError, match="disk on fire"):
            write(tmp_path, extra_dirs={"embedder": crash})
        assert entries(tmp_path) == ["v0"]  # no v1, no .tmp-v1-*
        assert list_versions(tmp_path) == ["v0"]

    def test_a_half_written_directory_is_not_a_version(self, tmp_path: Path) -> None:
        write(tmp_path)
        (tmp_path / ".tmp-v2-abc").mkdir()
        (tmp_path / "v3").mkdir()  # no manifest: not written by write_artifact
        assert list_versions(tmp_path) == ["v1"]

    def test_invalid_input_writes_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="manifest: not plain JSON"):
            write_artifact(tmp_path / "models", arrays(), {"recall": float("nan")})
        with pytest.raises(ValueError, match="manifest: not plain JSON"):
            write_artifact(tmp_path / "models", arrays(), {"when": object()})
        assert not (tmp_path / "models").exists()


class TestNoPickle:
    def test_an_object_array_cannot_be_written(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"arrays\['meta'\]: dtype object .* need pickle"):
            write_artifact(tmp_path, {"meta": np.array([{"a": 1}], dtype=object)}, {})
        assert entries(tmp_path) == []

    def test_a_pickled_array_is_refused_on_load(self, tmp_path: Path) -> None:
        write(tmp_path)
        np.savez(tmp_path / "v1" / ARRAYS_FILE, evil=np.array([{"a": 1}], dtype=object))
        with pytest.raises(ArtifactError, match="unreadable arrays"):
            load_artifact(tmp_path, "v1")


class TestCorruption:
    def test_a_garbled_manifest(self, tmp_path: Path) -> None:
        write(tmp_path)
        (tmp_path / "v1" / MANIFEST_FILE).write_text("{not json")
        with pytest.raises(ArtifactError, match=r"manifest.json: unreadable manifest"):
            load_artifact(tmp_path, "v1")

    def test_a_manifest_for_another_version(self, tmp_path: Path) -> None:
        write(tmp_path)
        (tmp_path / "v1").rename(tmp_path / "v2")
        with pytest.raises(ArtifactError, match="says version 'v1', not 'v2'"):
            load_artifact(tmp_path, "v2")

    def test_missing_arrays(self, tmp_path: Path) -> None:
        write(tmp_path)
        (tmp_path / "v1" / ARRAYS_FILE).unlink()
        with pytest.raises(ArtifactError, match="arrays.npz: unreadable arrays"):
            load_artifact(tmp_path, "v1")

    def test_truncated_arrays(self, tmp_path: Path) -> None:
        write(tmp_path)
        path = tmp_path / "v1" / ARRAYS_FILE
        path.write_bytes(path.read_bytes()[:100])
        with pytest.raises(ArtifactError, match="unreadable arrays"):
            load_artifact(tmp_path, "v1")

    def test_a_single_npy_instead_of_an_archive(self, tmp_path: Path) -> None:
        write(tmp_path)
        with open(tmp_path / "v1" / ARRAYS_FILE, "wb") as fh:
            np.save(fh, np.zeros(3))
        with pytest.raises(ArtifactError, match="not an .npz archive"):
            load_artifact(tmp_path, "v1")

    def test_arrays_that_disagree_with_the_manifest(self, tmp_path: Path) -> None:
        write(tmp_path)
        with (
            zipfile.ZipFile(tmp_path / "v1" / ARRAYS_FILE, "a") as archive,
            archive.open("extra.npy", "w") as member,
        ):
            np.lib.format.write_array(member, np.zeros(2))
        with pytest.raises(ArtifactError, match="but the manifest lists"):
            load_artifact(tmp_path, "v1")

    def test_an_unknown_version_lists_the_known_ones(self, tmp_path: Path) -> None:
        write(tmp_path)
        with pytest.raises(FileNotFoundError, match=r"no model version 'v9' .* known: \['v1'\]"):
            load_artifact(tmp_path, "v9")


class TestLeftovers:
    def test_killed_writes_are_removed_and_versions_kept(self, tmp_path: Path) -> None:
        write(tmp_path)
        (tmp_path / ".tmp-v2-abc").mkdir()
        remove_leftovers(tmp_path)
        assert entries(tmp_path) == ["v1"]


class TestNames:
    @pytest.mark.parametrize("version", ["", "../v1", ".tmp-v1", "a/b", "v..1"])
    def test_unsafe_versions_are_refused(self, tmp_path: Path, version: str) -> None:
        with pytest.raises(ValueError, match="version"):
            write(tmp_path, version=version)
        with pytest.raises(ValueError, match="version"):
            load_artifact(tmp_path, version)

    def test_unsafe_array_names_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="array name: '../x' is not a valid name"):
            write_artifact(tmp_path, {"../x": np.zeros(1)}, {})

    def test_reserved_manifest_keys_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"manifest: keys \['version'\] are reserved"):
            write_artifact(tmp_path, {}, {"version": "mine"})

    def test_extra_dirs_cannot_shadow_the_artifact_files(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="extra_dirs: 'arrays.npz'"):
            write_artifact(tmp_path, {}, {}, extra_dirs={ARRAYS_FILE: lambda path: None})

    def test_a_missing_models_dir_has_no_versions(self, tmp_path: Path) -> None:
        assert list_versions(tmp_path / "nowhere") == []
