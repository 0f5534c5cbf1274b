"""The train, evaluate and classify stages end to end with the real MiniLM encoder.

Small on purpose (three reports, 30 sentences each): it checks that the real
encoder, the saved models and out-of-report predictions, and both uses of
``inspections evaluate`` work together, not how good the model is (that is
the evaluate stage's job).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.classify.stage import classify, load_models
from pipeline.cli import app
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.train.data import read_label_file

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_evaluate_and_classify_with_the_real_encoder(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    for rid in ("f03", "f04", "f05"):
        rows = read_label_file(REPO / "data" / "labels" / f"{rid}.labels.jsonl")[:30]
        (labels / f"{rid}.labels.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    params = tmp_path / "params.yaml"
    params.write_text(f"train:\n  encoder: minilm\n  finetune_epochs: 1\n"
                      f"  sources_dir: {REPO / 'data' / 'sources'}\n"
                      "evaluate:\n  interval_resamples: 100\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(labels), "--out", str(tmp_path / "models"),
                                 "--params", str(params)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [
        "evaluate", str(labels), "--model", str(tmp_path / "models"), "--out-of-report",
        "--out", str(tmp_path / "classifiers.json"), "--plots", str(tmp_path / "plots"),
        "--card", str(tmp_path / "MODEL_CARD.md"), "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert "leave-one-report-out" in result.stdout and "95% interval" in result.stdout
    metrics = json.loads((tmp_path / "classifiers.json").read_text())
    assert 0 <= metrics["headline"]["model"]["qi_top1"] <= 1
    assert metrics["intervals"]["resamples"] == 100
    assert (tmp_path / "MODEL_CARD.md").read_text().startswith("# Model card")

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
    result = runner.invoke(app, [
        "evaluate", str(tmp_path / "f06.jsonl"), "--model", str(tmp_path / "models"),
        "--out", str(tmp_path / "eval.json"), "--predictions", str(tmp_path / "eval.jsonl")])
    assert result.exit_code == 0, result.output
    assert "sentiment macro-F1" in result.stdout and "95% interval" in result.stdout
    figures = json.loads((tmp_path / "eval.json").read_text())
    assert figures["n_sentences"] == 20 and figures["models_trained_on"] == ["f03", "f04", "f05"]
    scored = (tmp_path / "eval.jsonl").read_text().splitlines()
    assert len(scored) == 20 and json.loads(scored[0])["text"] == held[0]["text"]
    result = runner.invoke(app, ["evaluate", str(labels), "--model", str(tmp_path / "models"),
                                 "--card", str(tmp_path / "card.md")])
    assert result.exit_code != 0  # --card needs --out-of-report
