"""Segment stage: recover a report's structure and cut it into sentence segments.

Input is the extractor's per-page text; output is one row per sentence with the
part of the report it sits in (summary, question 1-5, conclusion, Appendix 1,
context), its kind (strength, priority area, key message, body, rationale ...),
its subsection heading and page, plus one row per report with its official grades.
What a generation's headings look like lives in ``pipeline/generations/*.yaml``.
"""

from __future__ import annotations

import csv
import hashlib
import re
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.cache import DuplicateReport, ReportCache, code_key, error_rows, key_of
from pipeline.core.engine import Limits, log_notes, preload, run_tasks
from pipeline.core.errors import InputError
from pipeline.core.io import read_json, write_json, write_jsonl
from pipeline.core.log import get_logger, progress
from pipeline.core.params import resolve
from pipeline.core.schema import Generation, Rule, load_generations
from pipeline.core.sentences import split_sentences
from pipeline.segment.blocks import Block, blocks_from_pages, looks_like_heading
from pipeline.segment.grades import indicator_line, read_grades, scale_word

DEFAULTS: dict[str, Any] = {
    # Blocks searched for the report title and publication date.
    "front_matter_blocks": 40,
    # Blocks either side of an Appendix 1 indicator line searched for its grade.
    "grade_window": 2,
    # Keep introduction / context / "what happens next" sentences as kind "context".
    "keep_context": True,
    # Isolation and parallelism, as for extract: `workers` processes (0 = one per
    # core), each report stopped after timeout_s seconds or max_memory_mb of memory.
    "workers": 0,
    "timeout_s": 60.0,
    "max_memory_mb": 2048,
}
RUN_SETTINGS = ("workers", "timeout_s", "max_memory_mb")

log = get_logger(__name__)

MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
MONTHS = {m: i for i, m in enumerate(MONTH_NAMES.split(" "), start=1)}
DATE_RE = re.compile(r"\b(" + "|".join(MONTHS) + r")\s+((?:19|20)\d\d)\b", re.IGNORECASE)
TOC_LINE_RE = re.compile(r"(\.{3,}|…|\t)\s*\d+\s*$|\s\d{1,3}$")


@dataclass
class _State:
    section: str = "front"
    part: str = "front"
    kind: str | None = None
    subsection: str | None = None
    items_only: bool = False
    indicator: str | None = None


def identify(
    blocks: list[Block], generations: tuple[Generation, ...], front: int
) -> tuple[Generation, str, str]:
    """The report's generation, its title and its partnership, from the front matter.

    The title gives the partnership's name, but an extractor may run the title into
    the line after it; the "<area> in context" heading, where the generation has
    one, names the area on its own and wins when the two agree on how it starts.
    """
    head = blocks[:front]
    candidates = [b.text for b in head] + [
        f"{a.text} {b.text}" for a, b in zip(head, head[1:], strict=False)
    ]
    for generation in generations:
        for text in candidates:
            match = generation.title.search(text)
            if match:
                name = match.group("partnership").strip(" .,")
                heading = _context_name(blocks, generation)
                if heading and name.lower().startswith(heading.lower()):
                    name = heading
                return generation, text, name
    raise InputError(None, "not a joint inspection report: no report title in the first pages")


def _context_name(blocks: list[Block], generation: Generation) -> str | None:
    for block in blocks:
        if block.is_bullet or TOC_LINE_RE.search(block.text):
            continue
        hit = generation.section_for(block.text)
        if hit and "partnership" in hit[1].groupdict():
            return hit[1].group("partnership").strip()
    return None


def published(blocks: list[Block], front: int) -> str | None:
    for block in blocks[:front]:
        if len(block.text) > 40:
            continue
        match = DATE_RE.search(block.text)
        if match:
            return f"{match.group(2)}-{MONTHS[match.group(1).lower()]:02d}"
    return None


def _section_rules(
    blocks: list[Block], generation: Generation
) -> list[tuple[Rule, re.Match[str]] | None]:
    """The section heading (if any) each block starts, after removing false friends.

    Tables of contents and the introduction's list of the five questions repeat the
    section headings; they are told apart by shape (dot leaders, page numbers,
    bullets) and by the fact that a real numbered heading never sits directly above
    the next one.
    """
    found: list[tuple[Rule, re.Match[str]] | None] = []
    for block in blocks:
        if block.is_bullet or TOC_LINE_RE.search(block.text):
            found.append(None)
        else:
            found.append(generation.section_for(block.text))
    numbered = [bool(hit and hit[0].numbered) for hit in found]
    for i, is_numbered in enumerate(numbered):
        if is_numbered and (
            (i > 0 and numbered[i - 1]) or (i + 1 < len(found) and numbered[i + 1])
        ):
            found[i] = None
    return found


def segment_blocks(
    blocks: list[Block], generation: Generation, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Block]]:
    """Walk the blocks as a state machine; return segment dicts and Appendix 1 blocks."""
    segments: list[dict[str, Any]] = []
    appendix: list[Block] = []
    state = _State()
    sections = _section_rules(blocks, generation)
    for i, block in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        hit = sections[i]
        if hit:
            rule, match = hit
            part = rule.part.format(**match.groupdict()) if rule.part else "skip"
            state = _State(section=part, part=part, kind=generation.body_kind.get(part))
            continue
        if state.part in ("front", "skip"):
            continue
        if state.section == "appendix1":
            appendix.append(block)
            if not _appendix_prose(block, nxt, generation, state):
                continue
        elif not _body_prose(block, nxt, generation, state):
            continue
        if state.kind is None or (state.kind == "context" and not params["keep_context"]):
            continue
        for sentence in split_sentences(block.body):
            segments.append(
                {
                    "part": "context" if state.kind == "context" else state.part,
                    "kind": state.kind,
                    "subsection": state.subsection,
                    "indicator": state.indicator if state.kind == "rationale" else None,
                    "text": sentence,
                    "page": block.page,
                }
            )
    return segments, appendix


def _body_prose(block: Block, nxt: Block | None, generation: Generation, state: _State) -> bool:
    """Update ``state`` for a heading and return False, or return True for text to keep."""
    sub = generation.subsection_for(block.text, state.section) if not block.is_bullet else None
    if sub:
        state.part = sub.part or state.part
        state.kind = sub.kind or generation.body_kind.get(state.part)
        state.subsection = block.text
        state.items_only = sub.items_only
        return False
    if looks_like_heading(block, nxt) and not (block.number and state.items_only):
        state.subsection = block.text
        state.kind = generation.body_kind.get(state.part)
        state.items_only = False
        return False
    if state.items_only and block.number is None and not block.is_bullet:
        # Prose after a numbered list under "Key messages" without a heading of its own.
        state.kind = generation.body_kind.get(state.part)
        state.items_only = False
    return True


def _appendix_prose(
    block: Block, nxt: Block | None, generation: Generation, state: _State
) -> bool:
    """In Appendix 1, keep only the rationale prose, filed under the indicator it explains.

    Indicator lines, grade words, the bullet list of component indicators and headings
    ("Rationale for the evaluation") are the grade table, not evaluation text.
    """
    for code, pattern in generation.indicators.items():
        if indicator_line(block, pattern) is not None:
            state.indicator = code
            return False
    if block.is_bullet or block.number is not None or scale_word(block.text, generation.scale):
        return False
    sub = generation.subsection_for(block.text, state.section)
    if sub or looks_like_heading(block, nxt):
        if sub and sub.kind == "grade_table":
            state.subsection = block.text
        return False
    state.kind = "rationale"
    return True


def segment_report(
    doc: dict[str, Any],
    params: dict[str, Any] | None = None,
    generations: tuple[Generation, ...] | None = None,
) -> tuple[dict, list[dict]]:
    """One extracted report -> (report row, segment rows). Pure: no file access."""
    params = resolve("segment", DEFAULTS, params)
    source = doc.get("source") or doc.get("report_id")
    blocks = blocks_from_pages(doc.get("pages") or [])
    if not blocks:
        raise InputError(source, "no text to segment")
    try:
        generation, title, partnership = identify(
            blocks, generations or load_generations(), params["front_matter_blocks"]
        )
    except InputError as err:
        raise InputError(source, err.reason) from None
    segments, appendix = segment_blocks(blocks, generation, params)
    if not appendix:
        raise InputError(source, "no 'Appendix 1: Summary of evaluations' found, so no grades")
    grades = read_grades(appendix, generation, params["grade_window"])
    missing = [code for code in generation.required if code not in grades]
    if missing:
        raise InputError(source, f"Appendix 1 has no grade for {', '.join(missing)}")
    if not any(s["part"].startswith("q") for s in segments):
        raise InputError(source, "none of the inspection questions' sections was found")
    report_id = doc["report_id"]
    report = {
        "report_id": report_id,
        "partnership": partnership,
        "title": title,
        "published": published(blocks, params["front_matter_blocks"]),
        "programme": generation.programme,
        "generation": generation.id,
        "grades": {code: grades[code] for code in generation.indicators if code in grades},
        "source": source,
        "pages": len(doc.get("pages") or []),
    }
    rows = []
    for n, seg in enumerate(segments):
        rows.append(
            {
                "segment_id": f"{report_id}:{n:04d}",
                "report_id": report_id,
                "partnership": partnership,
                **seg,
            }
        )
    return report, rows


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """Optional ``manifest.csv`` (a file, or the PDF folder holding one): report_id -> row.

    Missing is fine (real reports need none); a manifest without a report_id column
    is an error, since it would silently mark nothing as fictional.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if "report_id" not in (reader.fieldnames or []):
            raise InputError(path, "manifest has no report_id column")
        return {row["report_id"]: row for row in reader if row.get("report_id")}


def _segment_task(path: str, params: dict[str, Any]) -> tuple[dict, list[dict]]:
    """What a worker runs: one extracted JSON file to (report row, segment rows)."""
    doc = read_json(path)
    if not isinstance(doc, dict) or "pages" not in doc or "report_id" not in doc:
        raise InputError(path, "not an extracted report (expected report_id and pages)")
    return segment_report(doc, params)


def cache_key(doc_bytes: bytes, params: dict[str, Any]) -> str:
    """What a segmented report depends on: the extracted file, this stage's code
    (generations included) and the parameters that shape the segments."""
    shaping = {k: v for k, v in params.items() if k not in RUN_SETTINGS}
    digest = hashlib.sha256(doc_bytes).hexdigest()
    return key_of("segment", digest, code_key(("segment",)), shaping)


def _carried_errors(inputs: list[Path]) -> list[dict[str, Any]]:
    """The extract stage's ``errors.json`` rows of the input folders, so that one file
    lists every PDF the corpus could not analyse, and why."""
    rows: list[dict[str, Any]] = []
    for folder in inputs:
        found = folder / "errors.json" if folder.is_dir() else None
        if found is not None and found.exists():
            listed = read_json(found)
            if isinstance(listed, list):
                rows += [{"stage": "extract", **row} for row in listed if isinstance(row, dict)]
    return rows


def duplicates(reports: list[dict[str, Any]]) -> list[DuplicateReport]:
    """Reports of a partnership and publication month already seen: two copies of one
    report that differ in bytes (a re-save). The copy with the shorter report id is
    kept (then the first in order), as in the extract stage. Reports without a
    publication month are never called duplicates."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    found: list[DuplicateReport] = []
    for report in sorted(reports, key=lambda r: (len(r["report_id"]), r["report_id"])):
        if not report.get("published"):
            continue
        key = (str(report["partnership"]).casefold(), str(report["published"]))
        if key in first:
            kept = first[key]
            found.append(DuplicateReport(
                report.get("source") or report["report_id"],
                f"duplicate of {kept['report_id']} (same partnership {report['partnership']} "
                f"and publication month {report['published']}): not analysed twice",
                kept["report_id"]))
        else:
            first[key] = report
    return found


def run(
    inputs: list[Path],
    out_dir: Path,
    params: dict[str, Any],
    keep_going: bool = False,
    manifest: dict[str, dict[str, str]] | None = None,
    cache_dir: Path | None = None,
    scheduler: str = "",
) -> list[InputError]:
    """Segment every extracted JSON under ``inputs``; write segments.jsonl and reports.jsonl.

    Reports are segmented in parallel (:mod:`pipeline.core.engine`), each under the
    stage's limits; with ``cache_dir`` a report whose extracted text, code and
    parameters were seen before is not segmented again. ``errors.json`` lists the
    reports that could not be analysed (the extract stage's failures included) and
    the duplicates, each with ``file``, ``reason`` and ``stage`` (``duplicate_of``
    for a duplicate).
    """
    params = resolve("segment", DEFAULTS, params)
    inputs = [Path(p) for p in inputs]
    files: list[Path] = []
    for path in inputs:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    files = [f for f in files if f.name != "errors.json"]
    if not files:
        raise InputError(", ".join(map(str, inputs)), "no extracted report JSON files found")
    cache = ReportCache(cache_dir)
    results: dict[int, tuple[dict, list[dict]]] = {}
    keys: dict[int, str] = {}
    tasks: list[tuple[str, tuple]] = []
    order: list[int] = []
    for index, path in enumerate(files):
        with suppress(OSError):  # unreadable: the worker names the reason
            keys[index] = cache_key(path.read_bytes(), params)
        cached = cache.get(keys[index]) if index in keys else None
        if cached is not None:
            results[index] = (cached[0], cached[1])
        else:
            tasks.append((str(path), (str(path), params)))
            order.append(index)
    errors: list[InputError] = []
    limits = Limits(params["workers"], params["timeout_s"], params["max_memory_mb"], "segment")
    preload("pipeline.segment.preload")
    with closing(run_tasks(_segment_task, tasks, limits, scheduler)) as outcomes:
        for outcome in progress(outcomes, f"segmenting {len(tasks)} reports", total=len(tasks)):
            log_notes(outcome, log)
            if outcome.error is not None:
                if not keep_going:
                    raise outcome.error
                errors.append(outcome.error)
                continue
            index = order[outcome.index]
            results[index] = outcome.value
            if index in keys:
                cache.put(keys[index], list(outcome.value))
    if tasks or cache.hits:
        log.info("segment: %d reports segmented, %d from the cache", len(tasks), cache.hits)
    cache.prune()
    reports, segments = [], []
    copies = duplicates([results[i][0] for i in sorted(results)])
    if copies and not keep_going:
        raise copies[0]
    skip = {err.path for err in copies}
    for index in sorted(results):
        report, rows = results[index]
        if (report.get("source") or report["report_id"]) in skip:
            continue
        report = dict(report)
        extra = (manifest or {}).get(report["report_id"], {})
        report["fictional"] = extra.get("fictional", "").lower() == "true" if extra else None
        reports.append(report)
        segments.extend(rows)
    errors = sorted(errors, key=lambda e: e.path or "") + copies
    if not reports:
        raise InputError(", ".join(map(str, inputs)), "no report could be segmented")
    write_jsonl(out_dir / "segments.jsonl", segments)
    write_jsonl(out_dir / "reports.jsonl", reports)
    write_json(out_dir / "errors.json", _carried_errors(inputs) + error_rows(errors, "segment"))
    return errors
