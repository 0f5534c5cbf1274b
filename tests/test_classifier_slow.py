"""The train and classify stages end to end with the real MiniLM encoder, fine-tuning included.

Small on purpose (two reports, a few fine-tuning steps): it checks that the real
encoder, the fine-tuned encoder's save/verify/load and the stage outputs work
together, not how good the model is (that is benchmarks/classifier.py's job).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.classify.stage import classify, load_models
from pipeline.cli import app
from pipeline.core.errors import InputError
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.train.data import read_label_file
from pipeline.train.stage import train

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_and_classify_with_a_fine_tuned_encoder(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    for rid in ("f04", "f05"):
        rows = read_label_file(REPO / "data" / "labels" / f"{rid}.labels.jsonl")[:30]
        (labels / f"{rid}.labels.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    params = {
        "eval_seeds": [0], "finetune_steps": 2, "finetune_batch_size": 8, "encoder": "minilm",
        "sources_dir": str(REPO / "data" / "sources"),
    }
    metrics = train([labels], tmp_path / "models", params,
                    metrics_path=tmp_path / "classifiers.json")
    assert metrics["headline"]["model"]["qi_top1"] >= 0
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert manifest["finetuned_encoder"] is True
    assert any(name.startswith("encoder/") for name in manifest["files"])

    models = load_models(tmp_path / "models")
    segments = [
        {"segment_id": "1", "report_id": "x", "part": "summary_priority", "kind": "priority",
         "subsection": "Priority areas for improvement",
         "text": "Waiting times for CAMHS were far too long."},
        {"segment_id": "2", "report_id": "x", "part": "q5", "kind": "body",
         "subsection": "Vision, values and aims",
         "text": "Leaders shared a clear and ambitious vision for children."},
    ]
    out = classify(segments, models)
    assert all(o["sentiment"] in SENTIMENTS and o["qi"][0] in QI_CODES for o in out)

    held = read_label_file(REPO / "data" / "labels" / "f06.labels.jsonl")[:20]
    (tmp_path / "f06.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held),
                                        encoding="utf-8")
    result = CliRunner().invoke(app, [
        "evaluate", str(tmp_path / "f06.jsonl"), "--model", str(tmp_path / "models"),
        "--out", str(tmp_path / "eval.json"), "--predictions", str(tmp_path / "eval.jsonl")])
    assert result.exit_code == 0, result.output
    assert "sentiment macro-F1" in result.stdout and "95% interval" in result.stdout
    figures = json.loads((tmp_path / "eval.json").read_text())
    assert figures["n_sentences"] == 20 and figures["models_trained_on"] == ["f04", "f05"]
    scored = (tmp_path / "eval.jsonl").read_text().splitlines()
    assert len(scored) == 20 and json.loads(scored[0])["text"] == held[0]["text"]

    weights = next((tmp_path / "models" / "encoder").rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(InputError, match="checksum mismatch"):
        load_models(tmp_path / "models")
