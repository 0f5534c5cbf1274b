"""Page furniture: running headers, footers and page numbers, found and removed.

Candidates are the rows of text in the top and bottom bands of each page, and
the pieces of such a row that stand apart from the rest of it (a title at the
left, "Page 3" at the right). A candidate is furniture when

- its text, with every number replaced by ``#``, recurs at about the same place
  (height, and left edge, right edge or centre) on many pages (running titles,
  "Page 3 of 40", "Report | 7"), or on at least two pages when it is set smaller
  than the body text (a running title that changes with each chapter), or
- it is a lone page number ("7", "Page 7", "7 of 40", "- vii -"), alone on its
  row and the outermost text of the page.

Whole rows and stand-alone pieces, not every piece, because justified text splits
at wide spaces: a lone "of" ending the last line of many pages is body text.
Repetition is what separates a running title from the first or last body line of
a page: body lines are in the bands too, but the same line does not recur.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from pipeline.extract.clean import tidy_line
from pipeline.extract.reader import PageText, Piece

_ROMAN = r"(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3})"
PAGE_NUMBER_RE = re.compile(
    rf"^[-–—(\[]?\s*(?:page\s*)?(?:\d{{1,4}}|{_ROMAN})(?:\s*(?:of|/)\s*\d{{1,4}})?\s*[-–—)\]]?$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+")
_HAS_WORD = re.compile(r"[a-z0-9#]", re.IGNORECASE)
_APART_EM = 4.0  # a piece this many font sizes from its neighbours stands apart
_X_TOLERANCE = 0.01  # of the page width, for the left edge, right edge or centre


@dataclass(frozen=True)
class _Candidate:
    page: int
    pieces: tuple[int, ...]
    text: str
    x0: float
    x1: float
    y0: float
    size: float


def furniture_key(text: str) -> str:
    """Text with numbers as ``#``, lower-cased, spaces collapsed: equal on every page."""
    return " ".join(_NUMBER.sub("#", tidy_line(text).lower()).split())


def _zone(piece: Piece, height: float, band: float) -> str | None:
    if piece.y0 >= height * (1 - band):
        return "top"
    if piece.y1 <= height * band:
        return "bottom"
    return None


def _rows(indexed: list[tuple[int, Piece]]) -> list[list[tuple[int, Piece]]]:
    rows: list[list[tuple[int, Piece]]] = []
    for i, piece in sorted(indexed, key=lambda item: (-item[1].y1, item[1].x0)):
        for row in rows:
            first = row[0][1]
            if min(first.y1, piece.y1) - max(first.y0, piece.y0) >= 0.5 * min(
                    first.height, piece.height):
                row.append((i, piece))
                break
        else:
            rows.append([(i, piece)])
    for row in rows:
        row.sort(key=lambda item: item[1].x0)
    return rows


def _candidates(p: int, page: PageText, zone: str, indexed: list[tuple[int, Piece]]):
    for row in _rows(indexed):
        pieces = [piece for _, piece in row]
        yield _Candidate(p, tuple(i for i, _ in row), " ".join(x.text for x in pieces),
                         pieces[0].x0, max(x.x1 for x in pieces), pieces[0].y0,
                         max(x.size for x in pieces))
        if len(row) == 1:
            continue
        for k, (i, piece) in enumerate(row):
            before = piece.x0 - row[k - 1][1].x1 if k else math.inf
            after = row[k + 1][1].x0 - piece.x1 if k + 1 < len(row) else math.inf
            if min(before, after) >= _APART_EM * piece.size:
                yield _Candidate(p, (i,), piece.text, piece.x0, piece.x1, piece.y0, piece.size)


def _same_place(hits: list[_Candidate], pages: list[PageText], y_tolerance: float):
    """The hits at the usual height and at the usual left edge, right edge or centre."""
    y = statistics.median(h.y0 for h in hits)
    anchors = [statistics.median(f(h) for h in hits) for f in _ANCHORS]
    for hit in hits:
        page = pages[hit.page]
        if abs(hit.y0 - y) > y_tolerance * page.height:
            continue
        if any(abs(f(hit) - a) <= _X_TOLERANCE * page.width
               for f, a in zip(_ANCHORS, anchors, strict=True)):
            yield hit


_ANCHORS = (lambda h: h.x0, lambda h: h.x1, lambda h: (h.x0 + h.x1) / 2)


def find_furniture(
    pages: list[PageText], band: float = 0.12, min_fraction: float = 0.4,
    y_tolerance: float = 0.02,
) -> list[set[int]]:
    """Indices (into ``page.pieces``) of the furniture pieces of each page.

    ``band``: fraction of the page height searched at the top and at the bottom.
    ``min_fraction``: a text must recur on at least this fraction of the pages
    with text (and on two pages at least) to count as a running header or footer.
    ``y_tolerance``: how far (fraction of page height) its heights may differ.
    """
    drop: list[set[int]] = [set() for _ in pages]
    occurrences: dict[tuple[str, str], list[_Candidate]] = defaultdict(list)
    for p, page in enumerate(pages):
        zones: dict[str, list[tuple[int, Piece]]] = defaultdict(list)
        for i, piece in enumerate(page.pieces):
            zone = _zone(piece, page.height, band)
            if zone:
                zones[zone].append((i, piece))
        for zone, indexed in zones.items():
            for candidate in _candidates(p, page, zone, indexed):
                key = furniture_key(candidate.text)
                if _HAS_WORD.search(key):
                    occurrences[(zone, key)].append(candidate)

    with_text = sum(1 for page in pages if page.pieces)
    needed = max(2, math.ceil(min_fraction * with_text))
    small = _body_size(pages) - 1.0
    for hits in occurrences.values():
        placed = list(_same_place(hits, pages, y_tolerance))
        on_pages = len({h.page for h in placed})
        if on_pages >= needed or (on_pages >= 2 and all(h.size <= small for h in placed)):
            for hit in placed:
                drop[hit.page].update(hit.pieces)

    for p, page in enumerate(pages):
        _drop_lone_page_numbers(page, band, drop[p])
    return drop


def _body_size(pages: list[PageText]) -> float:
    """The font size carrying most characters."""
    weight: Counter[float] = Counter()
    for page in pages:
        for piece in page.pieces:
            weight[round(piece.size * 2) / 2] += len(piece.text)
    return weight.most_common(1)[0][0] if weight else 0.0


def _drop_lone_page_numbers(page: PageText, band: float, drop: set[int]) -> None:
    """Mark a lone page number that is the outermost remaining text at top or bottom."""
    kept = [(i, piece) for i, piece in enumerate(page.pieces) if i not in drop]
    if not kept:
        return
    top_i, top = max(kept, key=lambda item: item[1].y1)
    bottom_i, bottom = min(kept, key=lambda item: item[1].y0)
    for i, piece in ((top_i, top), (bottom_i, bottom)):
        alone = not any(j != i and min(piece.y1, other.y1) - max(piece.y0, other.y0) > 0
                        for j, other in kept)
        if (alone and _zone(piece, page.height, band)
                and PAGE_NUMBER_RE.match(tidy_line(piece.text))):
            drop.add(i)


def remove_furniture(pages: list[PageText], **kwargs: float) -> list[PageText]:
    """Copies of ``pages`` without their furniture pieces (see :func:`find_furniture`)."""
    drops = find_furniture(pages, **kwargs)
    return [
        PageText(page.number, page.width, page.height,
                 [piece for i, piece in enumerate(page.pieces) if i not in drop], page.images,
                 page.marks)
        for page, drop in zip(pages, drops, strict=True)
    ]
