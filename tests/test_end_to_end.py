"""The whole workflow on the bundled sample corpus, as a user runs it outside DVC.

Models are trained inside the run (no fine-tuning, no calibration, no evaluation) so
the test takes about a minute on two cores; the DVC pipeline runs the full training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    pdfs = tmp / "pdfs"
    shutil.copytree(REPO / "data" / "sample", pdfs)
    (pdfs / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    params = tmp / "params.yaml"
    params.write_text(
        (REPO / "params.yaml").read_text(encoding="utf-8")
        # The wiring is under test here, not the models' accuracy: the fast encoder and
        # one sentiment stage keep this run to a few minutes on two cores.
        .replace("encoder: mpnet", "encoder: minilm")
        .replace("stack: true", "stack: false")
        .replace("calibrate: true", "calibrate: false")
        .replace("finetune_weight: 0.3", "finetune_weight: 0.0")
        .replace("sources_dir: data/sources", f"sources_dir: {REPO / 'data' / 'sources'}"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, [
        "run", str(pdfs), "--out", str(tmp / "out"), "--focus", "Midlothian",
        "--model", str(tmp / "no-model-yet"), "--labels", str(REPO / "data" / "labels"),
        "--reference", str(REPO / "data" / "reference" / "official_evaluations.csv"),
        "--params", str(params), "--keep-going",
    ])
    assert result.exit_code == 0, result.output + (result.stderr or "")
    assert "broken.pdf" in result.stderr
    return tmp / "out"


def test_every_stage_wrote_its_output(run_dir: Path) -> None:
    for name in ["extracted/f01.json", "segments/segments.jsonl", "segments/reports.jsonl",
                 "embeddings.npz", "models/classifier.skops", "classified.jsonl",
                 "themes/themes.json", "benchmark.json", "comparison.html", "comparison.md"]:
        assert (run_dir / name).exists(), name
    errors = json.loads((run_dir / "errors.json").read_text())
    assert [Path(e["file"]).name for e in errors] == ["broken.pdf"]


def test_reports_and_grades(run_dir: Path) -> None:
    reports = [json.loads(x) for x in (run_dir / "segments" / "reports.jsonl").open()]
    assert len(reports) == 11
    focus = next(r for r in reports if r["partnership"] == "Midlothian")
    assert focus["grades"] == {"9": "Good", "2.1": "Good", "2.2": "Good", "1.1": "Good"}
    assert focus["fictional"] is False
    assert sum(r["fictional"] for r in reports) == 10


def test_classified_segments_carry_predictions(run_dir: Path) -> None:
    rows = [json.loads(x) for x in (run_dir / "classified.jsonl").open()]
    assert len(rows) > 1500
    row = rows[0]
    assert {"segment_id", "part", "kind", "page", "qi", "qi_scores", "sentiment"} <= set(row)
    priorities = [r for r in rows if r["kind"] == "priority"]
    negative = sum(r["sentiment"] in ("negative", "mixed") for r in priorities)
    assert negative / len(priorities) > 0.8  # priority areas read as weaknesses


def test_benchmark_and_report(run_dir: Path) -> None:
    bench = json.loads((run_dir / "benchmark.json").read_text())
    assert bench["focus"]["partnership"] == "Midlothian"
    html = (run_dir / "comparison.html").read_text()
    assert "Midlothian" in html and "(fictional)" in html
    assert "<script src=" not in html and "https://cdn" not in html
    assert "Midlothian" in (run_dir / "comparison.md").read_text()
