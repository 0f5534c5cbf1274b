"""The terminal labeller, driven by scripted input: answers saved, resume, quit, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.io import write_jsonl
from pipeline.label import terminal
from pipeline.train.data import read_label_file

runner = CliRunner()

TEXTS = [
    "Further attention needs to be given to the quality of chronologies.",
    "The panel met monthly and was chaired by a senior manager.",
    "Most young people told us they had a trusted adult.",
]


def queue_rows() -> list[dict]:
    return [{"text": text, "report_id": "r9", "partnership": "Testshire", "part": "q2",
             "kind": "body", "subsection": "Assessment", "segment_id": f"r9-{i}", "page": 2,
             "qi": ["5.2"], "sentiment": "positive", "status": "unlabelled", "suggested": True,
             "rank": i + 1, "suggested_scores": {"sentiment": {"positive": 0.5, "mixed": 0.4},
                                                 "qi": {"5.2": 0.4, "5.3": 0.3}},
             "previous_sentence": "Before [this] one.", "next_sentence": None}
            for i, text in enumerate(TEXTS)]


@pytest.fixture()
def queue(tmp_path: Path) -> Path:
    path = tmp_path / "queue.jsonl"
    write_jsonl(path, queue_rows())
    return path


def saved(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def label(queue: Path, script: str, *extra: str):
    return runner.invoke(app, ["label", str(queue), *extra], input=script)


@pytest.mark.parametrize(("line", "action", "qi", "sentiment"), [
    ("", "save", ["5.2"], "positive"),
    ("  ", "save", ["5.2"], "positive"),
    ("-", "edit", ["5.2"], "negative"),
    ("0", "edit", ["5.2"], "neutral"),
    ("mixed", "edit", ["5.2"], "mixed"),
    ("6.4", "edit", ["6.4"], "positive"),
    ("5.3,5.4", "edit", ["5.3", "5.4"], "positive"),
    ("~ 5.3 5.4", "edit", ["5.3", "5.4"], "mixed"),
    ("NONE", "edit", ["none"], "positive"),
    ("s", "skip", ["5.2"], "positive"),
    ("B", "back", ["5.2"], "positive"),
    ("q", "quit", ["5.2"], "positive"),
    ("?", "help", ["5.2"], "positive"),
    ("5.9", "error", ["5.2"], "positive"),
    ("- 55", "error", ["5.2"], "positive"),
])
def test_interpret(line: str, action: str, qi: list[str], sentiment: str) -> None:
    step = terminal.interpret(line, ["5.2"], "positive")
    assert (step.action, step.qi, step.sentiment) == (action, qi, sentiment)


def test_enter_accepts_and_keys_change_the_answer(queue: Path) -> None:
    # 1: accept; 2: neutral + QI 6.1, then Enter; 3: skip.
    result = label(queue, "\n0 6.1\n\ns\n")
    assert result.exit_code == 0, result.output
    out = queue.with_name("queue.labels.jsonl")
    rows = saved(out)
    assert [(r["text"], r["qi"], r["sentiment"]) for r in rows] == [
        (TEXTS[0], ["5.2"], "positive"), (TEXTS[1], ["6.1"], "neutral")]
    assert rows[1]["suggested_qi"] == ["5.2"] and rows[1]["suggested_sentiment"] == "positive"
    assert rows[1]["segment_id"] == "r9-1" and rows[1]["subsection"] == "Assessment"
    assert "status" not in rows[0] and "previous_sentence" not in rows[0]
    # a valid label file for `inspections train`
    assert [r["sentiment"] for r in read_label_file(out)] == ["positive", "neutral"]
    assert "Before [this] one." in result.stdout  # context shown, brackets not eaten
    assert "2 labelled this time, 1 skipped, 1 still to label" in result.stderr


def test_quit_keeps_what_was_saved_and_a_restart_resumes(queue: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.jsonl"
    result = label(queue, "-\n\nq\n", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [(r["text"], r["sentiment"]) for r in saved(out)] == [(TEXTS[0], "negative")]
    # Restart: the first sentence is not asked again.
    result = label(queue, "\n\n", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "1 of 3 queued sentences already labelled" in result.stdout
    assert TEXTS[0] not in result.stdout.split("already labelled")[1]
    assert [r["text"] for r in saved(out)] == TEXTS
    assert [r["sentiment"] for r in saved(out)] == ["negative", "positive", "positive"]


def test_end_of_input_quits_cleanly(queue: Path) -> None:
    result = label(queue, "\n")
    assert result.exit_code == 0, result.output
    assert len(saved(queue.with_name("queue.labels.jsonl"))) == 1


def test_back_changes_an_answer_in_place(queue: Path) -> None:
    # save 1; back; change 1 to mixed; save; save 2; quit
    result = label(queue, "\nb\n~\n\n\nq\n")
    assert result.exit_code == 0, result.output
    rows = saved(queue.with_name("queue.labels.jsonl"))
    assert [(r["text"], r["sentiment"]) for r in rows] == [(TEXTS[0], "mixed"),
                                                           (TEXTS[1], "positive")]


def test_an_unknown_code_is_asked_again(queue: Path) -> None:
    result = label(queue, "5.9\n?\n7.1\n\nq\n")
    assert result.exit_code == 0, result.output
    assert "unknown QI code or sentiment '5.9'" in result.stdout
    assert "Management and support of staff" in result.stdout  # the ? table
    assert saved(queue.with_name("queue.labels.jsonl"))[0]["qi"] == ["7.1"]


def test_ctrl_c_loses_no_saved_answer(queue: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    answers = iter(["", "-"])

    def read(prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None

    from io import StringIO

    from rich.console import Console

    with pytest.raises(KeyboardInterrupt):
        terminal.run_session(terminal.read_queue(queue), out, Console(file=StringIO()), read)
    assert [r["text"] for r in saved(out)] == [TEXTS[0]]
    assert not list(tmp_path.glob(".labels.jsonl.*"))  # no temporary file left behind


def test_a_broken_queue_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "queue.jsonl"
    path.write_text('{"text": "ok sentence", "qi": ["5.2"], "sentiment": "+"}\n{"text": 1}\n')
    result = label(path, "")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "queue.jsonl: line 2" in lines[0]
    path.write_text('{"text": "ok sentence", "qi": ["5.9"], "sentiment": "+"}\n')
    assert "line 1: needs a suggested 'qi'" in label(path, "").stderr


def test_the_queue_is_never_overwritten(queue: Path) -> None:
    result = label(queue, "\n", "--out", str(queue))
    assert result.exit_code == 1
    assert "is the queue itself" in result.stderr
    assert saved(queue) == queue_rows()


def test_default_out() -> None:
    assert terminal.default_out(Path("a/queue.jsonl")) == Path("a/queue.labels.jsonl")
