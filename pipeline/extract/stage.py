"""Stage ``extract``: PDF reports to per-page plain text, in reading order.

Output per report (``<out_dir>/<report_id>.json``)::

    {"report_id": "<file stem>", "source": "<path as given>", "sha256": "...",
     "pages": [{"number": 1, "text": "..."}, ...]}

One entry per PDF page (1-based), empty pages included. Page text is a sequence of
blocks separated by a blank line, one block per line: paragraphs (lines joined with
single spaces, line-end hyphenation repaired), headings, and list items (which
start with "• " for any bullet shape, or keep their "1." / "a)" number). Running
headers, footers and page numbers are removed; pages with columns are read column
by column. A paragraph broken by a page break is two blocks on two pages (a word
hyphenated across the break is completed on the first). Character policy: see
:mod:`pipeline.pdftext.clean`.

Why not pdfminer's ``extract_text``: it keeps page furniture, interleaves columns
and leaves hyphenated halves. Word-sequence similarity (:mod:`pipeline.similarity`)
against the source text, sample corpus: ``extract_text`` 0.963-0.977, this stage
1.0000 (0.9962 against the Midlothian seed, whose table and logo lines are not in
the PDFs); see ``benchmarks/extraction.py``.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

from pipeline.core.cache import DuplicateReport, ReportCache, code_key, error_rows, key_of
from pipeline.core.engine import Limits, log_notes, preload, run_tasks
from pipeline.core.errors import InputError
from pipeline.core.io import sha256_file, write_json
from pipeline.core.log import get_logger, progress
from pipeline.core.params import resolve
from pipeline.extract.clean import glyph_counts
from pipeline.extract.furniture import remove_furniture
from pipeline.extract.hyphens import join_across, only_real_hyphens, vocabulary
from pipeline.extract.layout import (
    LayoutParams,
    Line,
    has_columns,
    page_lines,
    with_drawn_bullets,
)
from pipeline.extract.paragraphs import block_text, blocks, document_style
from pipeline.extract.reader import PageText, read_pdf

DEFAULTS: dict[str, Any] = {
    # pdfminer LAParams: glyphs closer than char_margin x glyph width are one piece;
    # a gap wider than word_margin x glyph width is a space.
    "char_margin": 2.0,
    "word_margin": 0.1,
    "line_overlap": 0.5,
    # Running headers and footers: searched in this fraction of the page height at
    # the top and bottom; must recur on this fraction of the pages.
    "furniture_band": 0.12,
    "furniture_min_fraction": 0.4,
    # Reading order: a gutter is at least min_gutter_em font sizes wide; each side of
    # a two-column region spans column_min_width of the text width, has at least
    # column_full_fraction of full-width lines (else it is a table, read by rows)
    # and min_column_rows rows, unless the page has clear columns elsewhere or the
    # document does (on columns_document_fraction of its pages with text).
    # Pieces overlapping by row_overlap of their height are one row.
    "min_gutter_em": 0.8,
    "column_min_width": 0.25,
    "column_full_fraction": 0.4,
    "min_column_rows": 3,
    "columns_document_fraction": 0.3,
    "row_overlap": 0.5,
    # Paragraphs: a gap para_gap wider than the usual line pitch starts one; a line
    # short_line (fraction of the column width) short of the right edge is "short".
    "para_gap": 0.2,
    "short_line": 0.15,
    "size_tolerance": 0.5,
    # Bad input: more than this fraction of pages with images and no text is a scan;
    # more than this fraction of undecodable glyphs is an unusable text layer.
    "max_image_only_fraction": 0.5,
    "max_undecoded_fraction": 0.2,
    # Isolation: each PDF is read in a process of its own, `workers` at a time
    # (0 = one per core), stopped after timeout_s seconds or when it needs more than
    # max_memory_mb of address space; a PDF of more than max_pages pages is refused
    # before it is read (the longest joint inspection reports have about 80).
    "workers": 0,
    "timeout_s": 120.0,
    "max_memory_mb": 2048,
    "max_pages": 300,
}

# Settings that decide how the work is run, not what it gives: not part of cache keys.
RUN_SETTINGS = ("workers", "timeout_s", "max_memory_mb")

_MIN_PAGE_CHARS = 20
log = get_logger(__name__)
# What each worker needs warm: pdfminer is imported on first use (so the CLI starts
# fast), which cost each report's fresh process about 40 ms of its 200 ms.
PRELOAD = ("pipeline.extract.stage", "pdfminer.pdfparser", "pdfminer.pdfdocument",
           "pdfminer.pdfpage", "pdfminer.pdfinterp", "pdfminer.pdfdevice", "pdfminer.layout")


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    return resolve("extract", DEFAULTS, params)


def text_layer_problem(pages: list[PageText], params: dict[str, Any] | None = None
                       ) -> str | None:
    """Why the pages give no usable text (no pages, blank, a scan, undecodable fonts), or None."""
    p = _params(params)
    if not pages:
        return "empty PDF: it has no pages"
    chars = [sum(len(piece.text.strip()) for piece in page.pieces) for page in pages]
    image_only = sum(1 for page, n in zip(pages, chars, strict=True)
                     if page.images and n < _MIN_PAGE_CHARS)
    if sum(chars) == 0 and not any(page.images for page in pages):
        return "empty PDF: no text on any page (blank pages, or text drawn as outlines)"
    if sum(chars) == 0 or image_only > p["max_image_only_fraction"] * len(pages):
        return "no text layer: the PDF looks scanned (image-only); OCR it first"
    counts = [glyph_counts(piece.text) for page in pages for piece in page.pieces]
    if sum(bad for _, bad in counts) > p["max_undecoded_fraction"] * sum(n for n, _ in counts):
        return "no usable text layer: its fonts have no Unicode mapping; OCR it first"
    return None


def pages_text(pages: list[PageText], params: dict[str, Any] | None = None) -> list[str]:
    """Text of each page from positioned pieces: the pure core of :func:`extract_pdf`."""
    p = _params(params)
    pages = remove_furniture(pages, band=p["furniture_band"],
                             min_fraction=p["furniture_min_fraction"])
    layout = LayoutParams(p["row_overlap"], p["min_gutter_em"], p["column_min_width"],
                          p["column_full_fraction"], p["min_column_rows"])
    pieces = [with_drawn_bullets(page.pieces, page.marks) for page in pages]
    with_columns = sum(has_columns(found, layout) for found in pieces)
    with_text = sum(1 for found in pieces if found)
    expect = with_columns > 0 and with_columns >= p["columns_document_fraction"] * with_text
    laid_out: list[list[Line]] = [page_lines(found, layout, expect) for found in pieces]
    style = document_style(laid_out, p["size_tolerance"])
    page_blocks = [blocks(lines, style, p["para_gap"], p["short_line"], p["size_tolerance"])
                   for lines in laid_out]
    in_order = [line.text for found in page_blocks for block in found for line in block.lines]
    vocab = vocabulary(in_order)
    real_only = only_real_hyphens(in_order, vocab)
    texts = [[block_text(block, vocab, real_only) for block in found] for found in page_blocks]
    # A word broken across a page break is completed on the page where it starts.
    for first, second in zip(texts, texts[1:], strict=False):
        if first and second:
            first[-1], second[0] = join_across(first[-1], second[0], vocab, real_only)
            if not second[0]:
                del second[0]
    return ["\n\n".join(found) for found in texts]


def extract_pdf(path: Path, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract one PDF; raises :class:`InputError` naming the file when it cannot be used."""
    path = Path(path)
    p = _params(params)
    pages = read_pdf(path, p["char_margin"], p["word_margin"], p["line_overlap"],
                     p["max_pages"])
    problem = text_layer_problem(pages, p)
    if problem:
        raise InputError(path, problem)
    texts = pages_text(pages, p)
    return {
        "report_id": path.stem,
        "source": str(path),
        "sha256": sha256_file(path),
        "pages": [{"number": page.number, "text": text}
                  for page, text in zip(pages, texts, strict=True)],
    }


def pdf_files(inputs: list[Path]) -> list[Path]:
    """The PDFs named by ``inputs``: files as given, folders as their ``*.pdf`` (sorted)."""
    files: list[Path] = []
    for path in map(Path, inputs):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".pdf" and p.is_file())
            if not found:
                raise InputError(path, "no PDF files in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def _extract_task(path: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a worker runs: one PDF's pages (the caller adds report id and source)."""
    doc = extract_pdf(Path(path), params)
    return {"sha256": doc["sha256"], "pages": doc["pages"]}


def _document(path: Path, body: dict[str, Any]) -> dict[str, Any]:
    return {"report_id": path.stem, "source": str(path), **body}


def cache_key(sha256: str, params: dict[str, Any]) -> str:
    """What an extracted report depends on: the PDF's bytes, this stage's code, the
    pdfminer release and the parameters that shape the text."""
    shaping = {k: v for k, v in params.items() if k not in RUN_SETTINGS}
    return key_of("extract", sha256, code_key(("extract",), ("pdfminer.six",)), shaping)


def _claim(files: list[Path]) -> tuple[list[tuple[Path, str]], list[InputError]]:
    """The files to extract with their hashes; a second file of the same stem or of the
    same bytes is a failure (same output) or a duplicate (same report), and is skipped.

    Of two copies, the one with the shorter name is analysed (``report.pdf`` rather
    than ``report (1).pdf``), then the first in order; the other is listed.
    """
    todo: list[tuple[Path, str]] = []
    errors: list[InputError] = []
    stems: dict[str, Path] = {}
    hashes: dict[str, Path] = {}
    for path in sorted(files, key=lambda p: (len(p.name), str(p))):
        if path.stem in stems:
            errors.append(InputError(
                path, f"report id {path.stem!r} already used by {stems[path.stem]}"))
            continue
        try:
            digest = sha256_file(path)
        except OSError:
            digest = ""  # unreadable: the worker names the reason
        if digest and digest in hashes:
            first = hashes[digest]
            errors.append(DuplicateReport(
                path, f"duplicate of {first.name} (same file content): not analysed twice",
                first.stem))
            continue
        stems[path.stem] = path
        if digest:
            hashes[digest] = path
        todo.append((path, digest))
    return todo, errors


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Drop outputs of reports no longer in the input, so removing a PDF removes them."""
    if out_dir.is_dir():
        for old in out_dir.glob("*.json"):
            if old.name != "errors.json" and old.stem not in keep:
                old.unlink(missing_ok=True)


def extract_path(paths: list[Path], out_dir: Path, keep_going: bool = False,
                 params: dict[str, Any] | None = None, cache_dir: Path | None = None,
                 scheduler: str = "") -> list[InputError]:
    """Extract each PDF (or folder of PDFs) to ``out_dir/<report_id>.json``, with a progress bar.

    PDFs are read in parallel, each in a process of its own under the time and
    memory limits (:mod:`pipeline.core.engine`; on a Dask cluster when
    ``scheduler`` is given). With ``cache_dir``, a PDF whose bytes, code and
    parameters were seen before is not read again. Every file is written
    atomically; ``out_dir/errors.json`` lists the failures and duplicates
    (``file``, ``reason``, ``stage``, ``duplicate_of``) and they are returned.
    Without ``keep_going`` the first failure is raised instead (files already
    written stay). Outputs of PDFs no longer given are removed.
    """
    out_dir = Path(out_dir)
    p = _params(params)
    files = pdf_files(paths)
    todo, errors = _claim(files)
    if errors and not keep_going:
        raise errors[0]
    cache = ReportCache(cache_dir)
    keys = {path: cache_key(digest, p) for path, digest in todo if digest}
    tasks: list[tuple[str, tuple]] = []
    for path, _ in todo:
        cached = cache.get(keys[path]) if path in keys else None
        if cached is not None:
            write_json(out_dir / f"{path.stem}.json", _document(path, cached))
        else:
            tasks.append((str(path), (str(path), p)))
    limits = Limits(p["workers"], p["timeout_s"], p["max_memory_mb"], "extract")
    preload(*PRELOAD)
    with closing(run_tasks(_extract_task, tasks, limits, scheduler)) as outcomes:
        for outcome in progress(outcomes, f"extracting {len(tasks)} PDFs", total=len(tasks)):
            log_notes(outcome, log)
            path = Path(outcome.label)
            if outcome.error is not None:
                if not keep_going:
                    raise outcome.error
                errors.append(outcome.error)
                continue
            if path in keys:
                cache.put(keys[path], outcome.value)
            write_json(out_dir / f"{path.stem}.json", _document(path, outcome.value))
    if tasks or cache.hits:
        log.info("extract: %d PDFs read, %d from the cache", len(tasks), cache.hits)
    # By file, not by stem: a second file with the same stem that was refused must not
    # take the first one's output with it.
    failed = {str(e.path) for e in errors if e.path}
    _remove_stale(out_dir, {path.stem for path, _ in todo if str(path) not in failed})
    cache.prune()
    errors.sort(key=lambda e: e.path or "")
    write_json(out_dir / "errors.json", error_rows(errors, "extract"))
    return errors
