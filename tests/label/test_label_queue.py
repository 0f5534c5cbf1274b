"""The label queue: uncertain, varied sentences, in the label file format (no encoder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.errors import InputError
from pipeline.core.io import text_hash, write_jsonl
from pipeline.label import queue as q
from pipeline.train.data import read_label_file

runner = CliRunner()


def seg(i: int, report: str, text: str, sentiment: dict[str, float],
        qi: dict[str, float]) -> dict:
    """A classified segment with the classify stage's fields."""
    return {"segment_id": f"{report}-{i:04d}", "report_id": report, "partnership": report.upper(),
            "part": "q2", "kind": "body", "subsection": "Heading", "indicator": None,
            "text": text, "page": 3, "qi": [max(qi, key=qi.get)], "qi_scores": qi,
            "sentiment": max(sentiment, key=sentiment.get), "sentiment_scores": sentiment}


SURE = {"positive": 0.97, "negative": 0.01, "mixed": 0.01, "neutral": 0.01}
UNSURE = {"positive": 0.45, "negative": 0.40, "mixed": 0.1, "neutral": 0.05}
QI_SURE = {"5.3": 0.95, "2.1": 0.03, "none": 0.02}
QI_UNSURE = {"5.3": 0.40, "2.1": 0.38, "none": 0.22}


def test_margin_and_uncertainty() -> None:
    assert q.margin({"a": 0.7, "b": 0.2, "c": 0.1}) == pytest.approx(0.5)
    assert q.margin({"a": 1.0}) == 1.0
    sure = {"sentiment_scores": SURE, "qi_scores": QI_SURE}
    unsure = {"sentiment_scores": UNSURE, "qi_scores": QI_UNSURE}
    assert q.uncertainty(unsure) > 0.9 > 0.1 > q.uncertainty(sure)


def test_the_most_uncertain_comes_first() -> None:
    picks = q.select([0.1, 0.9, 0.5], ["a", "b", "c"], ["1.1", "2.1", "5.3"], 3)
    assert picks == [1, 2, 0]


def test_reports_and_qis_are_spread() -> None:
    # Report a has the three most uncertain sentences; b's is a little less uncertain.
    u = [0.9, 0.89, 0.88, 0.8]
    assert q.select(u, ["a", "a", "a", "b"], ["5.3", "6.4", "7.1", "9.2"], 2) == [0, 3]
    # Same report, same predicted QI, against a different QI of that report.
    assert q.select(u[:3], ["a"] * 3, ["5.3", "5.3", "6.4"], 2) == [0, 2]
    # Without decay, plain uncertainty order.
    assert q.select(u, ["a", "a", "a", "b"], ["5.3"] * 4, 2, report_decay=1.0,
                    qi_decay=1.0) == [0, 1]


def test_near_duplicates_are_not_queued_twice() -> None:
    vectors = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0]])
    picks = q.select([0.9, 0.89, 0.5], ["a", "b", "c"], ["5.3", "2.1", "6.4"], 2,
                     vectors=vectors)
    assert picks == [0, 2]
    # A zero vector (not in the cache) is not penalised.
    vectors[2] = 0.0
    assert q.select([0.9, 0.89, 0.5], ["a", "b", "c"], ["5.3", "2.1", "6.4"], 2,
                    vectors=vectors) == [0, 2]


def test_select_asks_for_no_more_than_there_is() -> None:
    assert q.select([0.2], ["a"], ["1.1"], 5) == [0]
    assert q.select([], [], [], 5) == []


def test_candidates_skip_labelled_duplicates_and_fragments() -> None:
    rows = [seg(0, "r1", "The plan was reviewed each month by the team.", UNSURE, QI_UNSURE),
            seg(1, "r1", "Planning", UNSURE, QI_UNSURE),
            seg(2, "r2", "the plan was reviewed  each month by the team.", UNSURE, QI_UNSURE),
            seg(3, "r2", "Staff felt supported by their managers.", UNSURE, QI_UNSURE)]
    assert q.candidates(rows, set()) == [0, 3]
    labelled = {q.text_key("Staff felt supported by their managers.")}
    assert q.candidates(rows, labelled) == [0]


def test_neighbours_stay_within_a_report() -> None:
    rows = [{"report_id": "a", "text": "one"}, {"report_id": "a", "text": "two"},
            {"report_id": "b", "text": "three"}]
    assert q.neighbours(rows) == [(None, "two"), ("one", None), (None, None)]


def corpus() -> list[dict]:
    texts = [
        ("r1", "Most children had a plan that was reviewed on time.", SURE, QI_SURE),
        ("r1", "Further attention needs to be given to the quality of chronologies.", UNSURE,
         QI_UNSURE),
        ("r1", "The panel met monthly and was chaired by a senior manager.", UNSURE, QI_SURE),
        ("r2", "Continued improvement is required in how plans are reviewed.", UNSURE,
         QI_UNSURE),
        ("r2", "Young people told us they felt listened to by their workers.", SURE, QI_SURE),
    ]
    return [seg(i, r, t, s, qi) for i, (r, t, s, qi) in enumerate(texts)]


def test_queue_rows_are_label_rows_with_the_guess_and_context(tmp_path: Path) -> None:
    lines = q.build_queue(corpus(), 3)
    assert [line["rank"] for line in lines] == [1, 2, 3]
    first = lines[0]
    assert first["status"] == "unlabelled" and first["suggested"] is True
    assert first["qi"] == ["5.3"] and first["sentiment"] == "positive"
    assert first["segment_id"] and first["part"] == "q2" and first["subsection"] == "Heading"
    assert {first["report_id"] for first in lines[:2]} == {"r1", "r2"}  # spread
    by_text = {line["text"]: line for line in lines}
    middle = by_text["Further attention needs to be given to the quality of chronologies."]
    assert middle["previous_sentence"].startswith("Most children")
    assert middle["next_sentence"].startswith("The panel met")
    assert middle["suggested_scores"]["qi"] == {"5.3": 0.4, "2.1": 0.38, "none": 0.22}
    # Queue rows are label rows in form, but the reader takes them only once a person has
    # answered (the status gone): a queue dropped into data/labels trains on nothing.
    path = tmp_path / "queue.jsonl"
    write_jsonl(path, [{k: v for k, v in line.items() if k != "status"} for line in lines])
    assert [r["text"] for r in read_label_file(path)] == [line["text"] for line in lines]
    write_jsonl(path, lines)
    with pytest.raises(InputError, match="holds no labelled rows"):
        read_label_file(path)


def test_load_vectors_by_text_hash(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    np.savez(path, keys=np.array([text_hash("a b"), text_hash("c d")], dtype="U40"),
             vectors=np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
             encoder=np.array("minilm"))
    out = q.load_vectors(path, ["c d", "missing", "a b"])
    assert out.tolist() == [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    broken = tmp_path / "broken.npz"
    broken.write_text("not a zip")
    with pytest.raises(q.InputError, match="broken.npz"):
        q.load_vectors(broken, ["a b"])


def fake_model(folder: Path, keys: list[str]) -> Path:
    """A model folder with only its manifest: enough for the queue on classified input."""
    from pipeline.train import persist

    folder.mkdir()
    manifest = {"format": persist.FORMAT, "files": {persist.CLASSIFIER_FILE: "0"},
                "info": {"training_text_keys": keys}}
    (folder / persist.MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


def test_queue_command_on_classified_segments(tmp_path: Path) -> None:
    rows = corpus()
    segments = tmp_path / "classified.jsonl"
    write_jsonl(segments, rows)
    trained = q.text_key(rows[3]["text"])
    model = fake_model(tmp_path / "model", [trained])
    labels = tmp_path / "mine.labels.jsonl"
    write_jsonl(labels, [{"text": rows[1]["text"], "qi": ["5.2"], "sentiment": "-"}])
    out = tmp_path / "queue.jsonl"
    result = runner.invoke(app, ["queue", str(segments), "--model", str(model), "--n", "10",
                                 "--out", str(out), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    queued = [json.loads(line) for line in out.read_text().splitlines()]
    texts = {r["text"] for r in queued}
    assert rows[1]["text"] not in texts and rows[3]["text"] not in texts
    assert len(queued) == 3
    assert "queued 3 sentences" in result.stderr


def test_queue_command_names_a_broken_segments_file(tmp_path: Path) -> None:
    segments = tmp_path / "segments.jsonl"
    segments.write_text('{"text": "fine sentence here ok"}\n{"text": \n')
    model = fake_model(tmp_path / "model", [])
    result = runner.invoke(app, ["queue", str(segments), "--model", str(model),
                                 "--out", str(tmp_path / "q.jsonl")])
    assert result.exit_code == 1
    assert "segments.jsonl: line 2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_labelled_segments_are_marked(tmp_path: Path) -> None:
    from pipeline.label import marks

    rows = corpus()
    labels = tmp_path / "mine.labels.jsonl"
    write_jsonl(labels, [{"text": "  " + rows[1]["text"].upper(), "qi": ["5.2"],
                          "sentiment": "-"}])
    keys = marks.keys_from_label_files([tmp_path])
    marked = marks.mark_labelled(rows, keys)
    assert [m["labelled"] for m in marked] == [False, True, False, False, False]
    assert "labelled" not in rows[1]  # the input is not changed
    assert marks.labelled_counts(marked) == {"r1": 1}
    assert marks.keys_from_label_files([]) == set()
