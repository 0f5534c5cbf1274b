"""Reading order on one page: rows, columns and the lines in the order a person reads them.

pdfminer splits a visual line into pieces wherever a justified line has a wide
space, and its own box ordering interleaves the columns of a page. So the order is
rebuilt here from coordinates alone:

1. the *gutter* candidate is the vertical strip in the middle of the text that the
   fewest pieces cross (pdfminer never joins glyphs across a gap wider than about
   ``char_margin`` glyph widths, so a column gutter is free of pieces, while a word
   gap in justified text moves from line to line and is crossed by the other lines);
2. pieces are grouped into rows; a row with a piece across the gutter *spans* the
   page (a title, a full-width paragraph), and spanning rows cut the page into
   *regions*, top to bottom;
3. a region with text on both sides of the gutter is read as two columns (left,
   then right, each split again if it holds columns itself) when each side is at
   least ``column_min_width`` of the text width, is mostly full lines of prose and,
   unless the page or the document already has clear columns, holds at least
   ``min_column_rows`` rows; any other region is read row by row, so table rows and
   "Contents .... 4" lines stay together and a stray aligned word gap in a
   single-column page cannot split it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.extract.clean import tidy_line
from pipeline.extract.reader import Piece


@dataclass(frozen=True)
class Line:
    """A visual line in reading order, with the extent of the column it belongs to.

    ``column`` numbers the text flows of the page in reading order; a change of
    ``column`` between two consecutive lines is a column (or region) break.
    """

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    bold: bool
    column: int
    left: float
    right: float


@dataclass(frozen=True)
class LayoutParams:
    row_overlap: float = 0.5
    min_gutter_em: float = 0.8
    column_min_width: float = 0.25
    column_full_fraction: float = 0.4
    min_column_rows: int = 3


_MAX_INNER_SPANNING = 0.2


@dataclass
class _Flow:
    """Rows read top to bottom; ``column`` says it came out of a column split."""

    rows: list[list[Piece]]
    column: bool
    extent: tuple[float, float]


def _overlaps(a: Piece, b: Piece, row_overlap: float) -> bool:
    shared = min(a.y1, b.y1) - max(a.y0, b.y0)
    return shared >= row_overlap * max(min(a.height, b.height), 0.1)


def group_rows(pieces: list[Piece], row_overlap: float = 0.5) -> list[list[Piece]]:
    """Pieces grouped by row (enough vertical overlap), rows top to bottom, left to right."""
    rows: list[list[Piece]] = []
    for piece in sorted(pieces, key=lambda p: (-p.y1, p.x0)):
        for row in reversed(rows[-4:]):
            if _overlaps(row[0], piece, row_overlap):
                row.append(piece)
                break
        else:
            rows.append([piece])
    for row in rows:
        row.sort(key=lambda p: p.x0)
    return rows


def merge_row(row: list[Piece]) -> Piece:
    """One piece for a row of pieces: texts joined by a space, bbox united.

    Size and boldness are those of the longest text, so a bullet glyph or a bold
    lead-in word does not decide the style of the whole line.
    """
    if len(row) == 1:
        return row[0]
    main = max(row, key=lambda p: len(p.text.strip()))
    return Piece(
        " ".join(p.text.strip() for p in row),
        min(p.x0 for p in row), min(p.y0 for p in row),
        max(p.x1 for p in row), max(p.y1 for p in row),
        main.size, main.bold,
    )


def drop_duplicates(pieces: list[Piece], tolerance: float = 1.5) -> list[Piece]:
    """Pieces without copies drawn over themselves (fake bold, doubled text layers)."""
    kept: list[Piece] = []
    seen: dict[str, list[Piece]] = {}
    for piece in pieces:
        twins = seen.setdefault(piece.text.strip(), [])
        if any(abs(t.x0 - piece.x0) <= tolerance and abs(t.y0 - piece.y0) <= tolerance
               and abs(t.x1 - piece.x1) <= tolerance for t in twins):
            continue
        twins.append(piece)
        kept.append(piece)
    return kept


def with_drawn_bullets(pieces: list[Piece],
                       marks: list[tuple[float, float, float, float]]) -> list[Piece]:
    """``pieces`` plus a "•" piece for each small shape just left of a line of text.

    A mark counts as a bullet when a piece starts within three font sizes to its
    right and the mark's middle lies within that piece's height.
    """
    bullets = []
    for x0, y0, x1, y1 in marks:
        middle = (y0 + y1) / 2
        for piece in pieces:
            if (piece.y0 <= middle <= piece.y1 and 0 <= piece.x0 - x1 <= 3 * piece.size
                    and piece.text.strip()):
                bullets.append(Piece("•", x0, piece.y0, x1, piece.y1, piece.size, piece.bold))
                break
    return pieces + bullets


def _extent(pieces: list[Piece]) -> tuple[float, float]:
    return min(p.x0 for p in pieces), max(p.x1 for p in pieces)


def find_gutter(pieces: list[Piece], middle: float = 0.25, step: float = 0.5) -> float | None:
    """x of the strip crossed by the fewest pieces, in the middle of the text width.

    ``middle``: the gutter is searched in [left + middle*W, right - middle*W] of the
    text width W. Returns the centre of the widest such strip, or None for fewer
    than two pieces.
    """
    if len(pieces) < 2:
        return None
    x0 = np.array([p.x0 for p in pieces])
    x1 = np.array([p.x1 for p in pieces])
    lo, hi = float(x0.min()), float(x1.max())
    width = hi - lo
    xs = np.arange(lo + middle * width, hi - middle * width + step, step)
    if xs.size == 0:
        return None
    crossing = ((x0[:, None] < xs) & (x1[:, None] > xs)).sum(axis=0)
    hits = np.flatnonzero(crossing == crossing.min())
    runs = np.split(hits, np.flatnonzero(np.diff(hits) > 1) + 1)
    return float(xs[max(runs, key=len)].mean())


def _is_prose(side: list[Piece], params: LayoutParams) -> bool:
    """Most rows of a column of prose reach (nearly) its right edge."""
    rows = group_rows(side, params.row_overlap)
    left, right = _extent(side)
    width = max(right - left, 1.0)
    full = sum(1 for row in rows if max(p.x1 for p in row) - min(p.x0 for p in row)
               >= 0.7 * width)
    return full >= params.column_full_fraction * len(rows)


def _is_text_column(side: list[Piece], params: LayoutParams) -> bool:
    """Prose, or itself two columns of prose (the right two thirds of three columns)."""
    if _is_prose(side, params):
        return True
    gutter = find_gutter(side)
    if gutter is None:
        return False
    left = [p for p in side if p.x1 <= gutter]
    right = [p for p in side if p.x0 >= gutter]
    return (len(left) + len(right) == len(side) and bool(left) and bool(right)
            and _is_prose(left, params) and _is_prose(right, params))


def _columns_shape(left: list[Piece], right: list[Piece], text_width: float,
                   params: LayoutParams) -> bool:
    """Both sides wide, apart by a gutter, and text columns: columns, not a table."""
    if not left or not right:
        return False
    size = float(np.median([p.size for p in left + right]))
    if min(p.x0 for p in right) - max(p.x1 for p in left) < params.min_gutter_em * size:
        return False
    for side in (left, right):
        lo, hi = _extent(side)
        if hi - lo < params.column_min_width * text_width:
            return False
    return _is_text_column(left, params) and _is_text_column(right, params)


def _flows(pieces: list[Piece], params: LayoutParams, expect_columns: bool,
           depth: int = 0) -> tuple[list[_Flow], bool]:
    """Reading-order flows of ``pieces``, and whether clear columns were found."""
    rows = group_rows(pieces, params.row_overlap)
    extent = _extent(pieces)
    gutter = find_gutter(pieces) if depth < 2 and len(rows) > 1 else None
    if gutter is None:
        return [_Flow(rows, False, extent)], False

    regions: list[tuple[bool, list[list[Piece]]]] = []
    for row in rows:
        spans = any(p.x0 < gutter < p.x1 for p in row)
        if regions and regions[-1][0] == spans:
            regions[-1][1].append(row)
        else:
            regions.append((spans, [row]))

    text_width = extent[1] - extent[0]
    verdicts = []
    for spans, region in regions:
        flat = [p for row in region for p in row]
        left = [p for p in flat if p.x1 <= gutter]
        right = [p for p in flat if p.x0 >= gutter]
        shape = not spans and _columns_shape(left, right, text_width, params)
        tall = shape and min(len(group_rows(side, params.row_overlap))
                             for side in (left, right)) >= params.min_column_rows
        verdicts.append((shape, tall, left, right))
    found = any(tall for _, tall, _, _ in verdicts)
    if depth > 0:
        # Inside a column, only a split that is clean nearly top to bottom is a
        # further column (three-column pages), not a river of wide justified spaces.
        spanning = sum(len(region) for spans, region in regions if spans)
        if spanning > _MAX_INNER_SPANNING * len(rows):
            return [_Flow(rows, False, extent)], False
        expect_columns = False

    flows: list[_Flow] = []
    for (_, region), (shape, tall, left, right) in zip(regions, verdicts, strict=True):
        if tall or (shape and depth == 0 and (found or expect_columns)):
            for side in (left, right):
                inner, _ = _flows(side, params, expect_columns, depth + 1)
                flows += [_Flow(f.rows, True, f.extent) for f in inner]
        else:
            flows.append(_Flow(region, False, extent))
    return flows, found


def has_columns(pieces: list[Piece], params: LayoutParams | None = None) -> bool:
    """Whether the page clearly has columns (a tall two-column region)."""
    return bool(pieces) and _flows(drop_duplicates(pieces), params or LayoutParams(), False)[1]


def page_lines(pieces: list[Piece], params: LayoutParams | None = None,
               expect_columns: bool = False) -> list[Line]:
    """The page's text as visual lines in reading order (see the module docstring).

    ``expect_columns``: the document has columns elsewhere, so a short two-column
    region (the last lines of a chapter) is read as columns too.
    """
    params = params or LayoutParams()
    pieces = drop_duplicates(pieces)
    if not pieces:
        return []
    flows, _ = _flows(pieces, params, expect_columns)
    # Consecutive single-column flows share one column number: they are one flow
    # of text, and the paragraph rules that use line spacing apply across them.
    lines: list[Line] = []
    column, previous_was_column = 0, False
    for n, flow in enumerate(flows):
        if n and (flow.column or previous_was_column):
            column += 1
        previous_was_column = flow.column
        for row in flow.rows:
            merged = merge_row(row)
            text = tidy_line(merged.text)
            if text:
                lines.append(Line(text, merged.x0, merged.y0, merged.x1, merged.y1,
                                  merged.size, merged.bold, column, *flow.extent))
    return lines
