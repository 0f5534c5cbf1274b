"""Encoder precision (fp32 or int8) and the ONNX Runtime session settings."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.io import text_hash
from pipeline.embed import runtime as encoder_runtime
from pipeline.embed.stage import EmbeddingCache, encoder_tag, stored_encoder

TEXTS = [
    "The partnership had a clear vision for improving outcomes for children.",
    "Not all staff were confident in recognising neglect.",
    "Leaders knew their services well, although self-evaluation was at an early stage.",
    "Chronologies were of variable quality.",
]


@pytest.fixture
def runtime_cache(tmp_path, monkeypatch):
    """A fresh cache folder: MiniLM is exported (and quantised) into it."""
    monkeypatch.setenv("INSPECTIONS_CACHE", str(tmp_path))
    encoder_runtime._load.cache_clear()
    yield tmp_path
    encoder_runtime._load.cache_clear()


def test_session_options_use_every_core_one_operator_at_a_time():
    import onnxruntime as ort

    options = encoder_runtime.session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == encoder_runtime.cpu_threads() >= 1
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_an_unknown_precision_is_a_one_line_params_error():
    from pipeline.train.stage import settings

    with pytest.raises(InputError) as err:
        settings({"encoder_precision": "fp16"})
    message = str(err.value)
    assert "params" in message and "train.encoder_precision" in message
    assert "fp32, int8" in message and "\n" not in message
    assert settings({"encoder_precision": "int8"})["encoder_precision"] == "int8"
    with pytest.raises(InputError, match="encoder precision"):
        EmbeddingCache(None, "minilm", precision="int4")


def test_an_int8_vector_depends_on_its_text_only(runtime_cache):
    """int8 quantises activations per pass: batched, a text's vector moved with the
    texts beside it, so a report added alone read differently from a full run."""
    encoder = encoder_runtime.load("minilm", "cpu", "int8")
    together, spans = encoder.encode(TEXTS, [[(0, 15)], [], [(0, 20), (22, 40)], []],
                                     batch_size=4)
    for i, text in enumerate(TEXTS):
        alone, _ = encoder.encode([text])
        assert np.array_equal(alone[0], together[i]), text
    alone, pooled = encoder.encode([TEXTS[2]], [[(0, 20), (22, 40)]])
    assert np.array_equal(pooled[0], spans[2])
    fp32 = encoder_runtime.load("minilm", "cpu")
    assert not fp32.per_text and encoder.per_text  # fp32 keeps its batches


def test_int8_vectors_are_close_to_fp32_and_cached_beside_them(runtime_cache):
    fp32, _ = encoder_runtime.load("minilm", "cpu").encode(TEXTS)
    int8, _ = encoder_runtime.load("minilm", "cpu", "int8").encode(TEXTS)
    files = sorted(p.name for p in (runtime_cache / "onnx").iterdir())
    assert len(files) == 2 and any("-int8" in f for f in files)  # no partial files left
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    assert not np.allclose(int8, fp32)  # it is the quantised graph that ran
    assert (int8 * fp32).sum(axis=1).min() > 0.98


def test_a_cache_keeps_fp32_and_int8_vectors_apart(tmp_path):
    path = tmp_path / "emb.npz"
    cache = EmbeddingCache(path, "minilm", precision="int8")
    cache.add(["a sentence"], np.ones((1, 384), np.float32))
    cache.save()
    assert stored_encoder(path) == encoder_tag("minilm", "int8") == "minilm:int8"
    key = text_hash("a sentence")
    assert not EmbeddingCache(path, "minilm").known([key])
    assert list(EmbeddingCache(path, "minilm", precision="int8").known([key])) == [key]


def test_the_manifest_records_the_precision_and_classify_refuses_a_mismatch(monkeypatch):
    from pipeline.classify import stage as classify_stage
    from pipeline.train.stage import settings

    params = settings({"encoder": "minilm", "encoder_precision": "int8"})
    models = classify_stage.Models(classifier=None, info={"params": params})
    assert models.precision == "int8"
    assert models.frozen_encoder().tag == "minilm:int8"
    with pytest.raises(InputError, match="trained on minilm:int8 vectors.*given minilm "):
        classify_stage.predict_scores([{"text": "x"}], models, EmbeddingCache(None, "minilm"))
    # a model folder written before the precision was recorded is fp32
    assert classify_stage.Models(None, {"params": {"encoder": "minilm"}}).precision == "fp32"
    monkeypatch.setattr(classify_stage, "_load", lambda folder: (
        None, {"params": {"encoder": "minilm", "encoder_precision": "int3"}}))
    with pytest.raises(InputError, match="encoder_precision in the model manifest"):
        classify_stage.load_models("anywhere")


def test_an_int8_file_that_reads_unlike_fp32_is_refused_and_not_kept(runtime_cache,
                                                                      monkeypatch):
    """Where the installed onnxruntime quantises badly (it did for mpnet in December
    2026: cosine 0.007 to fp32), the int8 file is refused with its name, and nothing
    is left in the cache to be loaded later."""
    fp32 = encoder_runtime.onnx_path("minilm", "fp32")
    real = encoder_runtime.onnx_forward

    def scrambled(path, device="cpu"):
        forward = real(path, device)
        if "int8" not in str(path) and ".quantize-" not in str(path):
            return forward
        rng = np.random.default_rng(0)
        return lambda ids, mask: rng.normal(size=forward(ids, mask).shape).astype(np.float32)

    monkeypatch.setattr(encoder_runtime, "onnx_forward", scrambled)
    with pytest.raises(InputError, match=r"int8.*reads unlike its fp32 export \(mean cosine "
                                         r"-?0\.\d+ .*use encoder_precision fp32"):
        encoder_runtime.onnx_path("minilm", "int8")
    assert [p.name for p in fp32.parent.iterdir()] == [fp32.name]
    monkeypatch.setattr(encoder_runtime, "onnx_forward", real)
    assert encoder_runtime.onnx_path("minilm", "int8").is_file()  # a good one is kept
