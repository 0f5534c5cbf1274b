"""Read a PDF's positioned text with pdfminer.six: the only module that touches pdfminer.

pdfminer is asked for text lines only (``boxes_flow=None`` skips its box ordering,
which scrambles justified two-column pages and costs time); columns, rows and reading
order are rebuilt from coordinates in :mod:`.layout`. Every pdfminer failure becomes
an :class:`~pipeline.errors.InputError` with a one-line reason.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.core.errors import InputError

_BOLD_MARKS = ("bold", "black", "heavy", "semibold", "demi")
_MARK_MIN, _MARK_MAX = 1.0, 8.0  # points: the size range of a drawn bullet


@dataclass(frozen=True)
class Piece:
    """A run of text on one baseline, as pdfminer grouped it (part of a visual line).

    Coordinates are PDF points with the origin at the bottom left, so a larger ``y``
    is higher on the page. ``size`` is the median glyph size; ``bold`` says whether
    most glyphs come from a bold face.
    """

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    bold: bool = False

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass
class PageText:
    """What one page holds: its pieces, images (to diagnose scans) and *marks*.

    Marks are small filled shapes (x0, y0, x1, y1): list bullets that some
    producers (browsers, for instance) draw as graphics instead of text.
    """

    number: int
    width: float
    height: float
    pieces: list[Piece] = field(default_factory=list)
    images: int = 0
    marks: list[tuple[float, float, float, float]] = field(default_factory=list)


@lru_cache(maxsize=256)
def _is_bold(fontname: str) -> bool:
    name = fontname.lower()
    return any(mark in name for mark in _BOLD_MARKS)


def _piece(line: Any) -> Piece | None:
    """One line's piece. Runs once per line of every page (a tenth of the stage's time
    before it was trimmed): glyph text read once, bold looked up once per font name."""
    from pdfminer.layout import LTChar

    chars = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
    if not chars:
        return None
    if sum(1 for c in chars if c.upright) * 2 < len(chars):
        return None  # rotated text: watermarks, sideways table headers
    text = line.get_text().rstrip("\n")
    if not text.strip():
        return None
    size = statistics.median([round(c.size, 1) for c in chars])
    bold = sum(1 for c in chars if _is_bold(c.fontname)) * 2 > len(chars)
    return Piece(text, line.x0, line.y0, line.x1, line.y1, float(size), bold)


def _is_mark(item: Any) -> bool:
    width, height = item.width, item.height
    return (bool(getattr(item, "fill", False)) and _MARK_MIN <= width <= _MARK_MAX
            and _MARK_MIN <= height <= _MARK_MAX and 0.5 <= width / height <= 2.0)


def _collect(container: Any, page: PageText) -> None:
    from pdfminer.layout import LTCurve, LTImage, LTLine, LTTextLineHorizontal

    for item in container:
        if isinstance(item, LTTextLineHorizontal):
            piece = _piece(item)
            if piece is not None:
                page.pieces.append(piece)
        elif isinstance(item, LTImage):
            page.images += 1
        elif isinstance(item, LTCurve) and not isinstance(item, LTLine) and _is_mark(item):
            page.marks.append((item.x0, item.y0, item.x1, item.y1))
        elif hasattr(item, "__iter__") and not isinstance(item, str):
            _collect(item, page)


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a PDF") from None
    except OSError as err:
        raise InputError(path, f"cannot read file ({err.strerror})") from None
    if not head:
        raise InputError(path, "empty file (0 bytes)")
    if b"%PDF-" not in head:
        raise InputError(path, "not a readable PDF: no %PDF header (is it a PDF?)")


def page_count(document: Any) -> int | None:
    """The page count the document's page tree declares (None when it declares none)."""
    from pdfminer.pdftypes import resolve1

    try:
        count = resolve1(resolve1(document.catalog.get("Pages")).get("Count"))
    except Exception:  # noqa: BLE001 - a damaged tree: pages are counted as read
        return None
    return count if isinstance(count, int) else None


def read_pdf(path: str | Path, char_margin: float = 2.0, word_margin: float = 0.1,
             line_overlap: float = 0.5, max_pages: int = 0) -> list[PageText]:
    """Positioned text pieces of every page, in page order (numbers from 1).

    A PDF of more than ``max_pages`` pages (0: no limit) is refused before its pages
    are read, whether the page tree declares them or they turn up while reading.
    """
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    path = Path(path)
    _check_header(path)
    laparams = LAParams(
        char_margin=char_margin, word_margin=word_margin, line_overlap=line_overlap,
        boxes_flow=None, all_texts=True, detect_vertical=False,
    )
    pages: list[PageText] = []
    try:
        with open(path, "rb") as fh:
            from pdfminer.pdfdocument import PDFDocument

            document = PDFDocument(PDFParser(fh))
            declared = page_count(document)
            if max_pages and declared is not None and declared > max_pages:
                raise InputError(path, f"has {declared} pages, more than the limit of "
                                       f"{max_pages} (extract.max_pages)")
            manager = PDFResourceManager(caching=True)
            device = PDFPageAggregator(manager, laparams=laparams)
            interpreter = PDFPageInterpreter(manager, device)
            for number, page in enumerate(PDFPage.create_pages(document), start=1):
                if max_pages and number > max_pages:
                    raise InputError(path, f"has more than {max_pages} pages, the limit "
                                           "(extract.max_pages)")
                interpreter.process_page(page)
                layout = device.get_result()
                text = PageText(number, float(layout.width), float(layout.height))
                _collect(layout, text)
                pages.append(text)
    except PDFPasswordIncorrect:
        raise InputError(path, "encrypted PDF: a password is needed") from None
    except PDFEncryptionError as err:
        raise InputError(path, f"encrypted PDF: unsupported encryption ({err})") from None
    except InputError:
        raise
    except RecursionError:
        raise InputError(path, "not a readable PDF: structure too deeply nested") from None
    except MemoryError:
        raise  # the worker names the memory limit it ran into
    except Exception as err:  # pdfminer raises many unrelated types on damaged files
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        detail = f"{type(err).__name__}: {reason}" if reason else type(err).__name__
        raise InputError(path, f"not a readable PDF: {detail}") from None
    return pages
