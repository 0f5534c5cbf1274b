"""Training examples: validated label files plus neutral sentences from the sources.

Only the evaluative parts of a report are labelled, so they hold almost no neutral
sentences (8 of 1,208). The introduction, the "<area> in context" section and
"What happens next" are unlabelled by design and count as QI ``none`` / neutral:
they are read from the fictional reports' markdown sources, for those reports
only whose labels are in the training set (so a Midlothian source in the same
folder is never read), and cut into sentences by the production splitter
(``pipeline.core.sentences``), so that the model is trained on the same unit
it later reads.

One evaluative section adds a sentence too: every report's conclusion states
the inspectors' confidence and then introduces its reasons with a lead-in
("This is based on:", "Our reasons are:"). Where the annotators labelled one
(two reports) it is neutral: it announces a list and judges nothing. The
others are left unlabelled, so the model saw two examples and read the rest
by the tone of the sentence before. A conclusion lead-in with no word of
judgement is taken as neutral, with the conclusion's part and kind, exactly
as the annotators labelled theirs; one that carries its own judgement
("Partners do, however, have important foundations on which to build:") is
not taken.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pipeline.core.errors import InputError
from pipeline.core.io import numbered_jsonl
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.core.sentences import split_sentences
from pipeline.train.features import CUES

SENTIMENT_TAGS = {"+": "positive", "-": "negative", "~": "mixed", "0": "neutral"}
CONTEXT_FIELDS = ("report_id", "partnership", "part", "kind", "subsection")
NEUTRAL_PARTS = {"introduction": "introduction", "context": "context", "next": "what_happens_next",
                 "conclusion": "conclusion"}
CONCLUSION_QI = "10.1"  # capacity for improvement: the code the annotators gave the lead-ins
# Cue words that make a lead-in a judgement of its own (see the module docstring).
_JUDGEMENT_CUES = ("contrast", "negation", "not_yet", "need", "problem", "good", "good_practice")


def text_key(text: str) -> str:
    """A short key of a sentence, blind to case and spacing: the trained models keep the
    keys of their training sentences (not the sentences), so that an evaluation can
    refuse sentences the models have already seen."""
    normal = " ".join(text.lower().split())
    return hashlib.sha1(normal.encode("utf-8")).hexdigest()[:16]


def label_files(paths: list[Path]) -> list[Path]:
    """Expand directories to the ``*.jsonl`` files below them; keep files as given.

    Sub-folders are read too, so that each source of labels can keep a folder of its
    own under one ``data.labels`` folder (``data/labels/shared/``, ``data/labels/mine/``):
    DVC cannot put a list of folders in a stage's deps. Hidden folders are skipped.
    """
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.jsonl")
                           if not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise InputError(path, "no *.jsonl label files in this folder")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise InputError(path, "label file not found")
    return files


def _qi_list(value: Any, path: Path, lineno: int) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(path, f"line {lineno}: 'qi' must be a non-empty list of QI codes")
    codes = [v.strip() for v in value]
    for code in codes:
        if code not in QI_CODES:
            raise InputError(path, f"line {lineno}: unknown QI code {code!r}")
    return list(dict.fromkeys(codes))


def _sentiment(value: Any, path: Path, lineno: int) -> str:
    value = SENTIMENT_TAGS.get(value, value) if isinstance(value, str) else value
    if value not in SENTIMENTS:
        raise InputError(
            path, f"line {lineno}: unknown sentiment {value!r} (use {', '.join(SENTIMENTS)})"
        )
    return value


def read_label_file(path: Path) -> list[dict[str, Any]]:
    """Rows of one label file, validated; errors name the file and the line."""
    rows = []
    for lineno, raw in numbered_jsonl(path):
        if raw.get("status") == "unlabelled":
            continue  # a queue row (``inspections queue``): the models' own guess, not a label
        text_value = raw.get("text")
        if not isinstance(text_value, str) or not text_value.strip():
            raise InputError(path, f"line {lineno}: 'text' must be a non-empty string")
        if "qi" not in raw or "sentiment" not in raw:
            raise InputError(path, f"line {lineno}: needs both 'qi' and 'sentiment'")
        row = {key: raw.get(key) for key in CONTEXT_FIELDS}
        for key in CONTEXT_FIELDS:
            if row[key] is not None and not isinstance(row[key], str):
                raise InputError(path, f"line {lineno}: '{key}' must be a string")
        row["report_id"] = row["report_id"] or Path(path).name.split(".")[0]
        row["text"] = text_value.strip()
        row["qi"] = _qi_list(raw["qi"], path, lineno)
        row["sentiment"] = _sentiment(raw["sentiment"], path, lineno)
        row["source"] = "label"
        rows.append(row)
    if not rows:
        raise InputError(path, "label file holds no labelled rows")
    return rows


def read_labels(paths: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in label_files(paths):
        rows.extend(read_label_file(path))
    return rows


# --- neutral sentences from the markdown sources ---------------------------------

_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")


def _section_kind(heading: str) -> str | None:
    low = heading.lower()
    if low.startswith("introduction"):
        return "introduction"
    if low.endswith("in context"):
        return "context"
    if low.startswith("what happens next"):
        return "next"
    if low.startswith("conclusion"):
        return "conclusion"
    return None


def is_neutral_lead_in(sentence: str) -> bool:
    """A sentence that introduces a list (ends with a colon) and judges nothing."""
    return sentence.rstrip().endswith(":") and not any(
        CUES[name].search(sentence) for name in _JUDGEMENT_CUES)


def neutral_sentences(source: Path, report_id: str, partnership: str | None) -> list[dict]:
    """Sentences of the unlabelled, non-evaluative sections of one markdown source."""
    text = Path(source).read_text(encoding="utf-8")
    rows: list[dict[str, Any]] = []
    section: str | None = None
    subsection: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("<!--"):
            continue
        if stripped.startswith("## "):
            section = _section_kind(stripped[3:].strip())
            subsection = None
            continue
        if stripped.startswith("### "):
            subsection = stripped[4:].strip()
            continue
        if section is None or stripped.startswith("#"):
            continue
        body = _LIST_MARKER.sub("", stripped)
        for sentence in split_sentences(body):
            if len(sentence.split()) < 3:
                continue
            if section == "conclusion" and not is_neutral_lead_in(sentence):
                continue
            rows.append({
                "report_id": report_id, "partnership": partnership,
                "part": NEUTRAL_PARTS[section],
                "kind": "conclusion" if section == "conclusion" else "body",
                "subsection": subsection,
                "text": sentence, "qi": [CONCLUSION_QI if section == "conclusion" else "none"],
                "sentiment": "neutral", "source": "context",
            })
    return rows


def source_neutrals(labels: list[dict], sources_dir: Path) -> list[dict]:
    """Neutral rows for each labelled report that has a fictional markdown source."""
    out: list[dict] = []
    seen: set[str] = set()
    for row in labels:
        rid = row["report_id"]
        if rid in seen:
            continue
        seen.add(rid)
        source = Path(sources_dir) / f"{rid}.md"
        meta_path = Path(sources_dir) / f"{rid}.meta.json"
        if not source.exists():
            continue
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise InputError(meta_path, "not valid JSON") from None
            if not meta.get("fictional", False):
                continue  # real reports are kept for evaluation, never trained on
        else:
            continue
        out.extend(neutral_sentences(source, rid, row.get("partnership")))
    return out
