"""Label folders: sub-folders are read, queue rows that nobody labelled are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.errors import InputError
from pipeline.train.data import label_files, read_labels

ROW = {"text": "Most care leavers had a pathway plan.", "qi": ["5.3"], "sentiment": "+"}


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_sub_folders_are_read_and_hidden_ones_skipped(tmp_path: Path) -> None:
    a = _write(tmp_path / "shared" / "a.labels.jsonl", [ROW])
    b = _write(tmp_path / "mine" / "b.labels.jsonl", [{**ROW, "text": "Few plans were reviewed."}])
    _write(tmp_path / ".git" / "c.jsonl", [ROW])
    assert label_files([tmp_path]) == sorted([a, b])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no \\*.jsonl label files"):
        label_files([tmp_path / "empty"])


def test_unlabelled_queue_rows_are_not_training_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.jsonl", [
        ROW, {**ROW, "text": "A guess nobody checked.", "status": "unlabelled"}])
    rows = read_labels([path])
    assert [r["text"] for r in rows] == [ROW["text"]]
    only_queue = _write(tmp_path / "only.jsonl", [{**ROW, "status": "unlabelled"}])
    with pytest.raises(InputError, match="holds no labelled rows"):
        read_labels([only_queue])
