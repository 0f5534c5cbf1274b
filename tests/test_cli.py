"""The command line on bad input: one line naming the file and the reason, the rest still runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.io import atomic_write, write_json

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture()
def pdf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    shutil.copy(REPO / "data" / "sample" / "f01.pdf", folder / "good.pdf")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 50)
    (folder / "notes.pdf").write_text("this is not a PDF at all")
    return folder


def test_extract_stops_on_a_bad_pdf_without_keep_going(pdf_folder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["extract", str(pdf_folder), "--out", str(tmp_path / "ext")])
    assert result.exit_code == 1
    lines = _error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "corrupt.pdf" in lines[0] or "notes.pdf" in lines[0]


def test_extract_keep_going_lists_failures_and_keeps_the_rest(
    pdf_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ext"
    result = runner.invoke(app, ["extract", str(pdf_folder), "--out", str(out), "--keep-going"])
    assert result.exit_code == 0, result.output
    assert (out / "good.json").exists()
    failures = json.loads((out / "errors.json").read_text())
    assert sorted(Path(f["file"]).name for f in failures) == ["corrupt.pdf", "notes.pdf"]
    skipped = [line for line in _error_lines(result) if line.startswith("skipped: ")]
    assert len(skipped) == 2 and all("pdf: " in line for line in skipped)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("segment:\n  grade_windw: 3\n", "unknown parameter segment.grade_windw "
         "(known: front_matter_blocks, grade_window, keep_context, max_memory_mb, "
         "timeout_s, workers)"),
        ("segment:\n  grade_window: two\n", "segment.grade_window must be int, got 'two'"),
        ("segment: [1, 2\n", "not valid YAML"),
    ],
)
def test_wrong_parameter_is_one_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml_text)
    result = runner.invoke(
        app, ["segment", str(tmp_path), "--out", str(tmp_path / "o"), "--params", str(params)]
    )
    assert result.exit_code == 1
    lines = _error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"error: {params}: ")
    assert message in lines[0]


def test_broken_label_file_names_file_and_line(tmp_path: Path) -> None:
    labels = tmp_path / "mine.labels.jsonl"
    good = {"report_id": "x", "text": "Staff were confident.", "qi": ["7.1"],
            "sentiment": "positive"}
    labels.write_text(json.dumps(good) + "\n{broken\n")
    result = runner.invoke(app, ["train", str(labels), "--out", str(tmp_path / "m"),
                                 "--no-evaluate"])
    assert result.exit_code == 1
    lines = _error_lines(result)
    assert lines[-1].startswith(f"error: {labels}: line 2")
    assert not (tmp_path / "m").exists()


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    segments = tmp_path / "segments.jsonl"
    segments.write_text(json.dumps({"segment_id": "a", "text": "Staff were confident."}) + "\n")
    result = runner.invoke(app, ["classify", str(segments), "--model", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "c.jsonl")])
    assert result.exit_code == 1
    assert _error_lines(result)[-1].startswith("error: ")
    assert str(tmp_path / "none") in result.stderr


def test_focus_comes_from_params_and_must_be_set(tmp_path: Path) -> None:
    from pipeline.core.errors import InputError
    from pipeline.runner import focus_name

    params = tmp_path / "params.yaml"
    params.write_text("data:\n  focus: Kelvaig\n")
    assert focus_name(None, params) == "Kelvaig"
    assert focus_name("Midlothian", params) == "Midlothian"
    params.write_text("data:\n  pdfs: x\n")
    with pytest.raises(InputError, match="no focus partnership: pass --focus NAME"):
        focus_name(None, params)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"version": 1})
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write('{"version": 2, "half')
        raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_run_says_what_to_pass_before_any_work(tmp_path: Path) -> None:
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    shutil.copy(REPO / "data" / "sample" / "f01.pdf", pdfs / "f01.pdf")
    result = runner.invoke(app, ["run", str(pdfs), "--out", str(tmp_path / "out"),
                                 "--focus", "Glenarden", "--model", str(tmp_path / "none"),
                                 "--labels", str(tmp_path / "no-labels")])
    assert result.exit_code == 1
    lines = _error_lines(result)
    assert len(lines) == 1 and "pass --model DIR" in lines[0] and "--labels DIR" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing was read


def test_classify_reuses_each_unchanged_report(tmp_path: Path, monkeypatch) -> None:
    """Only reports whose segments (or model) changed are classified again."""
    from pipeline.classify import stage

    seen: list[list[str]] = []

    def fake_classify(segments, models, encoder=None):
        seen.append(sorted({row["report_id"] for row in segments}))
        return [{**row, "qi": ["1.1"]} for row in segments]

    class Fake:
        encoder = "minilm"
        info = {"training_text_keys": []}

    monkeypatch.setattr(stage, "classify", fake_classify)
    monkeypatch.setattr(stage, "loaded_models", lambda model_dir: (Fake(), "model-1"))
    rows = [{"segment_id": f"{r}:{i}", "report_id": r, "text": f"Sentence {i} of {r}."}
            for r in ("a", "b") for i in range(3)]
    segments, out, cache = tmp_path / "s.jsonl", tmp_path / "c.jsonl", tmp_path / "cache"
    segments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage.classify_file(segments, tmp_path, out, cache_dir=cache, device="cpu")
    first = out.read_bytes()
    rows += [{"segment_id": "c:0", "report_id": "c", "text": "A new report."}]
    segments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage.classify_file(segments, tmp_path, out, cache_dir=cache, device="cpu")
    assert seen == [["a", "b"], ["c"]]
    assert out.read_bytes().startswith(first)
    segments.write_text("".join(json.dumps(r) + "\n" for r in rows[3:]))  # report a removed
    stage.classify_file(segments, tmp_path, out, cache_dir=cache, device="cpu")
    assert seen[-1] == ["c"] and len(list(cache.glob("*.json"))) == 2


def test_classify_keeps_its_encoders_vectors_for_the_next_run(tmp_path: Path, monkeypatch):
    """After a retraining every report is classified again; its sentences, headings
    and clauses come from ``vectors.npz`` instead of the encoder, and the kept vectors
    follow the corpus (a removed report's go)."""
    import numpy as np

    from pipeline.classify import stage
    from pipeline.embed import runtime
    from pipeline.train.vectors import row_vectors, vector_keys

    encoded: list[str] = []

    class Encoder:
        def encode(self, texts, spans=None, batch_size=None):
            encoded.extend(texts)
            vecs = np.array([[len(t), t.count(" "), 1.0] for t in texts], dtype=np.float32)
            spans = spans or [()] * len(texts)
            return vecs, [np.full((len(s), 3), float(len(s)), np.float32) for s in spans]

    monkeypatch.setattr(runtime, "load", lambda *a, **k: Encoder())
    model = ["model-1"]
    vectors: dict[str, np.ndarray] = {}

    def fake_classify(segments, models, encoder=None):
        vectors.update(zip([r["segment_id"] for r in segments],
                           row_vectors(segments, encoder)["clause_last"], strict=True))
        return [{**row, "qi": ["1.1"]} for row in segments]

    class Fake:
        encoder = "minilm"
        info = {"training_text_keys": []}

    monkeypatch.setattr(stage, "classify", fake_classify)
    monkeypatch.setattr(stage, "loaded_models", lambda model_dir: (Fake(), model[0]))
    rows = [{"segment_id": f"{r}:{i}", "report_id": r, "subsection": f"Topic {r}",
             "text": f"Sentence {i} of {r} was good, but the rest was weak."}
            for r in ("a", "b") for i in range(3)]
    segments, out, cache = tmp_path / "s.jsonl", tmp_path / "c.jsonl", tmp_path / "cache"

    def run(corpus, scheduler=""):
        segments.write_text("".join(json.dumps(r) + "\n" for r in corpus))
        encoded.clear()
        stage.classify_file(segments, tmp_path, out, embeddings=None, cache_dir=cache,
                            scheduler=scheduler, device="cpu")
        assert [p.name for p in cache.glob("vectors*")] == [stage.vectors_path(cache).name]
        with np.load(stage.vectors_path(cache)) as data:
            return set(data["keys"].tolist())

    (cache).mkdir()
    np.savez(cache / "vectors-0000000000000000.npz", keys=np.array(["x"]),
             vectors=np.zeros((1, 3)), encoder=np.array("minilm"))  # made by other code
    kept = run(rows)
    assert len(encoded) == 8  # six sentences, two headings (each sentence's clauses pooled)
    assert kept == vector_keys(rows)
    first = dict(vectors)
    model[0] = "model-2"  # retrained: every report again, nothing encoded again
    assert run(rows) == kept and encoded == []
    assert all(np.array_equal(first[k], vectors[k]) for k in first)
    copy = [{**r, "segment_id": "c" + r["segment_id"][1:], "report_id": "c"} for r in rows[:3]]
    assert run(rows + copy) == kept and encoded == []  # a report repeating another's
    b_only = rows[3:]
    assert run(b_only) == vector_keys(b_only) < kept

    # On a Dask cluster each worker sends back the vectors it computed.
    distributed = pytest.importorskip("distributed")
    shutil.rmtree(cache)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        assert run(rows, cluster.scheduler_address) == kept and len(encoded) == 8
    model[0] = "model-3"
    assert run(rows) == kept and encoded == []
