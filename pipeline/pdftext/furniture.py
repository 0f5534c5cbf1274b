"""Page furniture: running headers, footers and page numbers, found and removed.

A piece is furniture when it sits in the top or bottom band of its page and either

- its text, with every number replaced by ``#``, recurs in the same band at about
  the same height on many pages (running titles, "Page 3 of 40", "Report | 7"), or
  on at least two pages when it is set smaller than the body text (a running
  title that changes with each chapter), or
- it is a lone page number ("7", "Page 7", "7 of 40", "- vii -") and is the
  outermost text of the page in that band.

Repetition is what separates a running title from the first or last body line of
a page: body lines are in the bands too, but the same line does not recur on many
pages. Pure functions over :class:`~pipeline.pdftext.reader.PageText`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict

from pipeline.pdftext.clean import tidy_line
from pipeline.pdftext.reader import PageText, Piece

_ROMAN = r"(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3})"
PAGE_NUMBER_RE = re.compile(
    rf"^[-–—(\[]?\s*(?:page\s*)?(?:\d{{1,4}}|{_ROMAN})(?:\s*(?:of|/)\s*\d{{1,4}})?\s*[-–—)\]]?$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+")
_HAS_WORD = re.compile(r"[a-z0-9#]", re.IGNORECASE)


def furniture_key(text: str) -> str:
    """Text with numbers as ``#``, lower-cased, spaces collapsed: equal on every page."""
    return " ".join(_NUMBER.sub("#", tidy_line(text).lower()).split())


def _zone(piece: Piece, height: float, band: float) -> str | None:
    if piece.y0 >= height * (1 - band):
        return "top"
    if piece.y1 <= height * band:
        return "bottom"
    return None


def find_furniture(
    pages: list[PageText], band: float = 0.12, min_fraction: float = 0.4,
    y_tolerance: float = 0.02,
) -> list[set[int]]:
    """Indices (into ``page.pieces``) of the furniture pieces of each page.

    ``band``: fraction of the page height searched at the top and at the bottom.
    ``min_fraction``: a text must recur on at least this fraction of the pages
    with text (and on two pages at least) to count as a running header or footer.
    ``y_tolerance``: how far (fraction of page height) its positions may differ.
    """
    drop: list[set[int]] = [set() for _ in pages]
    occurrences: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    for p, page in enumerate(pages):
        for i, piece in enumerate(page.pieces):
            zone = _zone(piece, page.height, band)
            if zone is None:
                continue
            key = furniture_key(piece.text)
            if _HAS_WORD.search(key):
                occurrences[(zone, key)].append((p, i, piece.y0))

    with_text = sum(1 for page in pages if page.pieces)
    needed = max(2, math.ceil(min_fraction * with_text))
    small = _body_size(pages) - 1.0
    for hits in occurrences.values():
        on_pages = len({p for p, _, _ in hits})
        if on_pages < needed and not (
            on_pages >= 2 and all(pages[p].pieces[i].size <= small for p, i, _ in hits)
        ):
            continue
        middle = statistics.median(y for _, _, y in hits)
        for p, i, y in hits:
            if abs(y - middle) <= y_tolerance * pages[p].height:
                drop[p].add(i)

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
        if _zone(piece, page.height, band) and PAGE_NUMBER_RE.match(tidy_line(piece.text)):
            drop.add(i)


def remove_furniture(pages: list[PageText], **kwargs: float) -> list[PageText]:
    """Copies of ``pages`` without their furniture pieces (see :func:`find_furniture`)."""
    drops = find_furniture(pages, **kwargs)
    return [
        PageText(page.number, page.width, page.height,
                 [piece for i, piece in enumerate(page.pieces) if i not in drop], page.images)
        for page, drop in zip(pages, drops, strict=True)
    ]
