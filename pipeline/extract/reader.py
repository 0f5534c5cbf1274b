"""Read a PDF's positioned text with pdfminer.six: the only module that touches pdfminer.

pdfminer parses the file, runs the content streams and decodes the fonts; this module
replaces its layout stage. pdfminer's ``PDFPageAggregator`` builds an ``LTChar``
object per glyph and groups them with generic per-object methods, which was most of
the stage's time; :class:`_LineDevice` records each glyph as a tuple and
:func:`_lines`, :func:`_boxes` and :func:`_area_pieces` redo, for horizontal text,
exactly what ``LTLayoutContainer.analyze`` does with ``LAParams(char_margin,
word_margin, line_overlap, boxes_flow=None, all_texts=True, detect_vertical=False)``:
the same lines, text, boxes and order, float for float (checked against the
aggregator on the sample corpus; ``tests/extract/test_reader_fast.py`` keeps checking).
Why: speed. On the 11 sample PDFs reading took 4.9 s with the aggregator and takes
1.5 s (3x faster; plain ``extract_text`` takes 4.7 s), and the stage's ``extract_pdf``
went from 0.88x to 2.1x the speed of ``extract_text``. A pdfminer upgrade that changes
its layout rules must be matched here.

pdfminer is asked for text lines only (``boxes_flow=None`` skips its box ordering,
which scrambles justified two-column pages and costs time); columns, rows and reading
order are rebuilt from coordinates in :mod:`.layout`. Every pdfminer failure becomes
an :class:`~pipeline.errors.InputError` with a one-line reason.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.core.errors import InputError

_BOLD_MARKS = ("bold", "black", "heavy", "semibold", "demi")
_MARK_MIN, _MARK_MAX = 1.0, 8.0  # points: the size range of a drawn bullet
# pdfminer.utils.INF, an int: where pdfminer starts every bounding box it grows.
_INF = (1 << 31) - 1
# LAParams' default line_margin: lines this close (x their height) share a text box,
# which decides the order pdfminer lists its lines in.
_LINE_MARGIN = 0.5
_SUBPATH = re.compile(r"m[^m]+")

log = logging.getLogger("pdfminer.pdfdevice")  # where pdfminer logs the same warning


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


# A glyph is a tuple of what pdfminer's LTChar holds that the layout needs: (x0, y0,
# x1, y1, width, height, text, size, fontname, upright), indexed by these names.
_X0, _Y0, _X1, _Y1, _W, _H, _TEXT, _SIZE, _FONT, _UPRIGHT = range(10)


class _Line:
    """A text line (pdfminer's ``LTTextLineHorizontal``): its glyphs, bbox and text."""

    __slots__ = ("glyphs", "height", "text", "width", "x0", "x1", "y0", "y1")

    def __init__(self, glyphs: list[tuple], word_margin: float) -> None:
        # LTTextLineHorizontal.add, glyph by glyph: a space before a glyph that starts
        # more than word_margin x its width or height after the previous one ends;
        # the bbox grows from pdfminer's (INF, INF, -INF, -INF).
        x0 = y0 = last = _INF
        x1 = y1 = -_INF
        parts = []
        for gx0, gy0, gx1, gy1, w, h, text, _, _, _ in glyphs:
            if word_margin and last < gx0 - word_margin * (h if h > w else w):
                parts.append(" ")
            last = gx1
            parts.append(text)
            if gx0 < x0:
                x0 = gx0
            if gy0 < y0:
                y0 = gy0
            if gx1 > x1:
                x1 = gx1
            if gy1 > y1:
                y1 = gy1
        self.glyphs = glyphs
        self.text = "".join(parts)
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.width, self.height = x1 - x0, y1 - y0

    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0 or self.text.isspace()


class _Box:
    """A text box (``LTTextBoxHorizontal``): lines grouped by their neighbours."""

    __slots__ = ("lines", "x0", "x1", "y0", "y1")

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self.x0 = self.y0 = _INF
        self.x1 = self.y1 = -_INF

    def __iter__(self) -> Any:
        return iter(self.lines)

    def add(self, line: _Line) -> None:
        self.lines.append(line)
        if line.x0 < self.x0:
            self.x0 = line.x0
        if line.y0 < self.y0:
            self.y0 = line.y0
        if line.x1 > self.x1:
            self.x1 = line.x1
        if line.y1 > self.y1:
            self.y1 = line.y1

    def is_empty(self) -> bool:
        return self.x1 - self.x0 <= 0 or self.y1 - self.y0 <= 0


class _Area:
    """A page or a form XObject (``LTPage``, ``LTFigure``): its glyphs and figures."""

    __slots__ = ("bbox", "figures", "glyphs")

    def __init__(self, bbox: tuple) -> None:
        self.bbox = bbox
        self.glyphs: list[tuple] = []
        self.figures: list[_Area] = []


def _lines(glyphs: list[tuple], char_margin: float, word_margin: float,
           line_overlap: float) -> list[_Line]:
    """``LTLayoutContainer.group_objects`` without vertical text: consecutive glyphs
    that overlap vertically by more than ``line_overlap`` of the smaller height and
    are closer than ``char_margin`` x the wider width are one line."""
    runs: list[list[tuple]] = []
    run: list[tuple] | None = None
    p = glyphs[0]
    px0, py0, px1, py1, pw, ph, _, _, _, _ = p
    for g in glyphs[1:]:
        gx0, gy0, gx1, gy1, gw, gh, _, _, _, _ = g
        halign = False
        if gy0 <= py1 and py0 <= gy1:  # is_voverlap
            low, high = abs(py0 - gy1), abs(py1 - gy0)
            if (gh if gh < ph else ph) * line_overlap < (high if high < low else low):
                if gx0 <= px1 and px0 <= gx1:  # is_hoverlap: hdistance 0
                    gap: float = 0
                else:
                    left, right = abs(px0 - gx1), abs(px1 - gx0)
                    gap = right if right < left else left
                halign = gap < (gw if gw > pw else pw) * char_margin
        if halign and run is not None:
            run.append(g)
        elif run is not None:
            runs.append(run)
            run = None
        elif halign:
            run = [p, g]
        else:
            runs.append([p])
        p, px0, py0, px1, py1, pw, ph = g, gx0, gy0, gx1, gy1, gw, gh
    runs.append(run if run is not None else [p])
    return [_Line(run, word_margin) for run in runs]


def _boxes(lines: list[_Line], bbox: tuple) -> list[_Box]:
    """``LTLayoutContainer.group_textlines``, step for step (its quirks included: a
    line may end up in two boxes), then the boxes in pdfminer's ``boxes_flow=None``
    order (top down by bottom edge, then left to right) with their lines top down."""
    from pdfminer.utils import Plane

    plane: Any = Plane(bbox)
    plane.extend(lines)
    boxes: dict[_Line, _Box] = {}
    for line in lines:
        d = _LINE_MARGIN * line.height
        x0, x1, height = line.x0, line.x1, line.height
        middle = (x0 + x1) / 2
        members = [line]
        for obj in plane.find((x0, line.y0 - d, x1, line.y1 + d)):
            if abs(obj.height - height) <= d and (
                    abs(obj.x0 - x0) <= d or abs(obj.x1 - x1) <= d
                    or abs((obj.x0 + obj.x1) / 2 - middle) <= d):
                members.append(obj)
                if obj in boxes:
                    members.extend(boxes.pop(obj))
        box = _Box()
        seen: set[_Line] = set()
        for obj in members:
            if obj not in seen:
                seen.add(obj)
                box.add(obj)
                boxes[obj] = box
    done: set[_Box] = set()
    result = []
    for line in lines:
        if line not in boxes:
            continue
        box = boxes[line]
        if box in done:
            continue
        done.add(box)
        if not box.is_empty():
            result.append(box)
    for box in result:
        box.lines.sort(key=lambda obj: -obj.y1)
    result.sort(key=lambda box: (1, -box.y0, box.x0))
    return result


def _piece(line: _Line) -> Piece | None:
    """One line's piece: None for a line of blanks or of rotated text (watermarks,
    sideways table headers). Size is the median glyph size, bold a majority vote."""
    glyphs = [g for g in line.glyphs if g[_TEXT].strip()]
    if not glyphs:
        return None
    if sum(1 for g in glyphs if g[_UPRIGHT]) * 2 < len(glyphs):
        return None
    text = line.text.rstrip("\n")
    if not text.strip():
        return None
    size = statistics.median([round(g[_SIZE], 1) for g in glyphs])
    bold = sum(1 for g in glyphs if _is_bold(g[_FONT])) * 2 > len(glyphs)
    return Piece(text, line.x0, line.y0, line.x1, line.y1, float(size), bold)


def _area_pieces(area: _Area, params: tuple[float, float, float], out: list[Piece]) -> None:
    """The pieces of a page or figure in pdfminer's order: its text boxes, then its
    figures' pieces, then lines pdfminer calls empty (zero width or height)."""
    empties: list[_Line] = []
    if area.glyphs:
        kept = []
        for line in _lines(area.glyphs, *params):
            (empties if line.is_empty() else kept).append(line)
        for box in _boxes(kept, area.bbox):
            for line in box.lines:
                piece = _piece(line)
                if piece is not None:
                    out.append(piece)
    for figure in area.figures:
        _area_pieces(figure, params, out)
    for line in empties:
        piece = _piece(line)
        if piece is not None:
            out.append(piece)


@lru_cache(maxsize=1)
def _device_type() -> type:
    """The device class, made on first use so that importing this module does not
    import pdfminer."""
    from pdfminer.layout import LTChar
    from pdfminer.pdfdevice import PDFTextDevice
    from pdfminer.pdffont import PDFUnicodeNotDefined
    from pdfminer.utils import apply_matrix_pt, apply_matrix_rect, get_bound, mult_matrix

    class _LineDevice(PDFTextDevice):
        """What ``PDFLayoutAnalyzer`` records, lean: glyphs as tuples, figures as
        nested areas, images counted, small filled shapes kept as marks."""

        def __init__(self, rsrcmgr: Any, char_margin: float, word_margin: float,
                     line_overlap: float) -> None:
            PDFTextDevice.__init__(self, rsrcmgr)
            self.params = (char_margin, word_margin, line_overlap)
            self.area = _Area((0, 0, 0, 0))
            self.stack: list[_Area] = []
            self.page: PageText | None = None
            self.images = 0
            self.marks: list[tuple[float, float, float, float]] = []
            self.size = (0.0, 0.0)
            # (font, size, scaling) -> cid -> (text, advance)
            self.glyph_cache: dict[tuple, dict[int, tuple[str, float]]] = {}

        def begin_page(self, page: Any, ctm: Any) -> None:
            (x0, y0, x1, y1) = apply_matrix_rect(ctm, page.mediabox)
            mediabox = (0, 0, abs(x0 - x1), abs(y0 - y1))
            self.area = _Area(mediabox)
            self.size = (mediabox[2] - mediabox[0], mediabox[3] - mediabox[1])
            self.images = 0
            self.marks = []

        def end_page(self, page: Any) -> None:
            assert not self.stack, str(len(self.stack))

        def result(self, number: int) -> PageText:
            text = PageText(number, float(self.size[0]), float(self.size[1]),
                            images=self.images, marks=self.marks)
            _area_pieces(self.area, self.params, text.pieces)
            return text

        def begin_figure(self, name: str, bbox: Any, matrix: Any) -> None:
            # LTFigure's bbox, which bounds its lines' neighbour search
            self.stack.append(self.area)
            matrix = mult_matrix(matrix, self.ctm)
            (x, y, w, h) = bbox
            self.area = _Area(apply_matrix_rect(matrix, (x, y, x + w, y + h)))

        def end_figure(self, name: str) -> None:
            figure = self.area
            self.area = self.stack.pop()
            self.area.figures.append(figure)

        def render_image(self, name: str, stream: Any) -> None:
            assert self.stack, "image outside a figure"
            self.images += 1

        def paint_path(self, gstate: Any, stroke: bool, fill: bool, evenodd: bool,
                       path: Any) -> None:
            """PDFLayoutAnalyzer.paint_path's shapes, keeping filled curves and
            rectangles (never lines) of a bullet's size and squareness."""
            if not fill:
                return
            shape = "".join(x[0] for x in path)
            if shape[:1] != "m":
                return
            if shape.count("m") > 1:
                for m in _SUBPATH.finditer(shape):
                    self.paint_path(gstate, stroke, fill, evenodd,
                                    path[m.start(0):m.end(0)])
                return
            ctm = self.ctm
            pts = [apply_matrix_pt(ctm, p[-2:] if p[0] != "h" else path[0][-2:])
                   for p in path]
            if len(shape) > 3 and shape[-2:] == "lh" and pts[-2] == pts[0]:
                shape = shape[:-2] + "h"
                pts.pop()
            if shape in {"mlh", "ml"}:
                return  # LTLine
            if shape in {"mlllh", "mllll"}:
                (x0, y0), (x1, y1), (x2, y2), (x3, y3), _ = pts
                if pts[0] == pts[4] and (
                        (x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0)
                        or (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)):
                    # LTRect: its corners from the first and third points
                    (rx0, ry0), (rx1, ry1) = pts[0], pts[2]
                    pts = [(rx0, ry0), (rx1, ry0), (rx1, ry1), (rx0, ry1)]
            (x0, y0, x1, y1) = get_bound(pts)
            width, height = x1 - x0, y1 - y0
            if (_MARK_MIN <= width <= _MARK_MAX and _MARK_MIN <= height <= _MARK_MAX
                    and 0.5 <= width / height <= 2.0):
                self.marks.append((x0, y0, x1, y1))

        def handle_undefined_char(self, font: Any, cid: int) -> str:
            return f"(cid:{cid})"

        def _unichr(self, font: Any, cid: int) -> str:
            try:
                text = font.to_unichr(cid)
                assert isinstance(text, str), str(type(text))
            except PDFUnicodeNotDefined:
                text = self.handle_undefined_char(font, cid)
            return text

        def render_char(self, matrix: Any, font: Any, fontsize: float, scaling: float,
                        rise: float, cid: int, ncs: Any, graphicstate: Any) -> float:
            """One glyph of vertical writing (rare): through pdfminer's own LTChar."""
            text = self._unichr(font, cid)
            c = LTChar(matrix, font, fontsize, scaling, rise, text, font.char_width(cid),
                       font.char_disp(cid), ncs, graphicstate)
            self.area.glyphs.append((c.x0, c.y0, c.x1, c.y1, c.width, c.height, text,
                                     c.size, c.fontname, c.upright))
            return c.adv

        def render_string(self, textstate: Any, seq: Any, ncs: Any,
                          graphicstate: Any) -> None:
            # PDFTextDevice.render_string
            assert self.ctm is not None
            matrix = mult_matrix(textstate.matrix, self.ctm)
            font = textstate.font
            fontsize = textstate.fontsize
            scaling = textstate.scaling * 0.01
            charspace = textstate.charspace * scaling
            wordspace = textstate.wordspace * scaling
            rise = textstate.rise
            assert font is not None
            if font.is_multibyte():
                wordspace = 0
            dxscale = 0.001 * fontsize * scaling
            args = (seq, matrix, textstate.linematrix, font, fontsize, scaling,
                    charspace, wordspace, rise, dxscale, ncs, graphicstate)
            if font.is_vertical():
                textstate.linematrix = self.render_string_vertical(*args)
            else:
                textstate.linematrix = self._horizontal(*args)

        def _horizontal(self, seq: Any, matrix: Any, pos: Any, font: Any,
                        fontsize: float, scaling: float, charspace: float,
                        wordspace: float, rise: float, dxscale: float, ncs: Any,
                        graphicstate: Any) -> tuple[float, float]:
            """PDFTextDevice.render_string_horizontal with LTChar's bbox arithmetic
            inlined, operation for operation (``translate_matrix`` then
            ``apply_matrix_rect`` of (0, descent + rise, adv, descent + rise + size)),
            so that every coordinate is the same float."""
            (x, y) = pos
            (a, b, c, d, e, f) = matrix
            descent = font.get_descent() * fontsize
            low = descent + rise
            high = descent + rise + fontsize
            upright = a * d * scaling > 0 and b * c <= 0
            fontname = font.fontname
            yc, yd = y * c, y * d
            c_low, c_high, d_low, d_high = c * low, c * high, d * low, d * high
            left_low, left_high = a * 0 + c_low, a * 0 + c_high
            bottom_low, bottom_high = b * 0 + d_low, b * 0 + d_high
            key = (font, fontsize, scaling)
            cache = self.glyph_cache.get(key)
            if cache is None:
                cache = self.glyph_cache[key] = {}
            append = self.area.glyphs.append
            needcharspace = False
            for obj in seq:
                if isinstance(obj, (int, float)):
                    x -= obj * dxscale
                    needcharspace = True
                elif isinstance(obj, bytes):
                    for cid in font.decode(obj):
                        if needcharspace:
                            x += charspace
                        glyph = cache.get(cid)
                        if glyph is None:
                            glyph = (self._unichr(font, cid),
                                     font.char_width(cid) * fontsize * scaling)
                            cache[cid] = glyph
                        text, adv = glyph
                        e1 = x * a + yc + e
                        f1 = x * b + yd + f
                        a_adv, b_adv = a * adv, b * adv
                        left1, left2 = left_low + e1, left_high + e1
                        right1, right2 = a_adv + c_low + e1, a_adv + c_high + e1
                        bottom1, top2 = bottom_low + f1, bottom_high + f1
                        bottom2, top1 = b_adv + d_low + f1, b_adv + d_high + f1
                        # min() and max() of the four corners, spelled out
                        x0 = x1 = left1
                        if left2 < x0:
                            x0 = left2
                        if right1 < x0:
                            x0 = right1
                        if right2 < x0:
                            x0 = right2
                        if left2 > x1:
                            x1 = left2
                        if right1 > x1:
                            x1 = right1
                        if right2 > x1:
                            x1 = right2
                        y0 = y1 = bottom1
                        if bottom2 < y0:
                            y0 = bottom2
                        if top1 < y0:
                            y0 = top1
                        if top2 < y0:
                            y0 = top2
                        if bottom2 > y1:
                            y1 = bottom2
                        if top1 > y1:
                            y1 = top1
                        if top2 > y1:
                            y1 = top2
                        if x1 < x0:
                            (x0, x1) = (x1, x0)
                        if y1 < y0:
                            (y0, y1) = (y1, y0)
                        height = y1 - y0
                        append((x0, y0, x1, y1, x1 - x0, height, text, height, fontname,
                                upright))
                        x += adv
                        if cid == 32 and wordspace:
                            x += wordspace
                        needcharspace = True
                else:
                    log.warning("Cannot render horizontal string because %r is not a "
                                "valid int, float or bytes.", obj)
            return (x, y)

    return _LineDevice


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
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    path = Path(path)
    _check_header(path)
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
            device = _device_type()(manager, char_margin, word_margin, line_overlap)
            interpreter = PDFPageInterpreter(manager, device)
            for number, page in enumerate(PDFPage.create_pages(document), start=1):
                if max_pages and number > max_pages:
                    raise InputError(path, f"has more than {max_pages} pages, the limit "
                                           "(extract.max_pages)")
                interpreter.process_page(page)
                pages.append(device.result(number))
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
