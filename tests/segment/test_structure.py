"""Structure recovery on every PDF of the shared corpus, real Midlothian renders included.

Expected items come from the source markdown (numbered items under "Strengths",
"Priority areas for improvement" and each question's "Key messages") and the
metadata's grades; the fictional reports are also checked against their labels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.segment.stage import segment_report

ITEM_HEADINGS = {
    "strengths": ("summary_strength", "strength"),
    "priority areas for improvement": ("summary_priority", "priority"),
    "key messages": (None, "key_message"),
}


def norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "'")))


def expected_items(source: Path) -> list[tuple[str, str, str]]:
    """(part, kind, item text) for every numbered item the source lists."""
    items, part, heading = [], None, None
    for line in source.read_text(encoding="utf-8").splitlines():
        top = re.match(r"^## (\d)\. How good", line)
        if line.startswith("## "):
            part = f"q{top.group(1)}" if top else None
            heading = None
        elif line.startswith("### "):
            heading = line[4:].strip().lower()
        elif heading in ITEM_HEADINGS and re.match(r"^\d+\. ", line):
            fixed_part, kind = ITEM_HEADINGS[heading]
            if fixed_part or part:
                items.append((fixed_part or part, kind, re.sub(r"^\d+\. ", "", line)))
    return items


def source_for(report_id: str, shared: Path) -> tuple[Path, dict]:
    stem = "midlothian-2020" if report_id.startswith("midlothian-2020") else report_id
    meta_id = "s-midlothian" if stem == "midlothian-2020" else stem
    meta = json.loads((shared / "corpus" / "sources" / f"{meta_id}.meta.json").read_text())
    return shared / "corpus" / "sources" / f"{stem}.md", meta


@pytest.fixture(scope="module")
def segmented(corpus_docs: dict[str, dict]) -> dict[str, tuple[dict, list[dict]]]:
    return {rid: segment_report(doc) for rid, doc in corpus_docs.items()}


def test_every_report_in_the_corpus_is_segmented(segmented, shared_dir) -> None:
    assert len(segmented) == len(list((shared_dir / "corpus" / "pdf").glob("*.pdf"))) >= 14


@pytest.mark.parametrize(
    "report_id",
    [
        "f01",
        "f02",
        "f03",
        "f04",
        "f05",
        "f06",
        "f07",
        "f08",
        "f09",
        "f10",
        "s-midlothian",
        "midlothian-2020-ci",
        "midlothian-2020-compact",
        "midlothian-2020-serif2col",
    ],
)
def test_items_grades_and_partnership(segmented, shared_dir, report_id: str) -> None:
    report, segments = segmented[report_id]
    source, meta = source_for(report_id, shared_dir)
    assert report["partnership"] == meta["partnership"]
    assert report["grades"] == meta["grades"]
    assert report["published"] == meta["published"]
    joined: dict[tuple[str, str], str] = {}
    for seg in segments:
        key = (seg["part"], seg["kind"])
        joined[key] = joined.get(key, "") + " " + norm(seg["text"])
    items = expected_items(source)
    assert len(items) >= 30  # 5 strengths, 4-5 priorities, 25 key messages at least
    missing = [(p, k, t[:60]) for p, k, t in items if norm(t) not in joined.get((p, k), "")]
    assert missing == []


def test_real_midlothian_grades_match_the_published_ones(segmented, shared_dir) -> None:
    rows = (shared_dir / "reference" / "official_evaluations.csv").read_text().splitlines()
    published = {
        line.split(",")[3]: line.split(",")[4]
        for line in rows
        if line.startswith("2018-2020") and ",Midlothian," in line
    }
    for layout in ("ci", "compact", "serif2col"):
        assert segmented[f"midlothian-2020-{layout}"][0]["grades"] == published


@pytest.mark.parametrize("report_id", [f"f{i:02d}" for i in range(1, 11)])
def test_labelled_sentences_are_segments_of_the_right_part_and_kind(
    segmented, shared_dir, report_id: str
) -> None:
    labels = [
        json.loads(line)
        for line in (shared_dir / "corpus" / "sources" / f"{report_id}.labels.jsonl").open()
    ]
    found = {(s["part"], s["kind"], norm(s["text"])) for s in segmented[report_id][1]}
    missing = [
        lab["text"][:60]
        for lab in labels
        if (lab["part"], lab["kind"], norm(lab["text"])) not in found
    ]
    assert missing == []
    pages = [s["page"] for s in segmented[report_id][1]]
    assert pages == sorted(pages) and pages[0] >= 1
