"""Lines to blocks: paragraphs, headings and list items, each one block of text.

A new block starts where a reader sees one:

- a bullet, or a number / dash after a finished line ("1. Staff ...", "- item");
- a change of font size, or of weight after a short line (a heading);
- a gap wider than the usual line spacing for that font size by ``para_gap``;
- a short line that ends a sentence, or is followed by an indented line
  (paragraphs set without spacing, or with first-line indents);
- a column break, unless the text visibly runs on (no sentence end, same style).

The usual line spacing is learnt per font size from the document itself
(:func:`document_style`), so the same rules work for 9 pt compact and 10.5 pt
roomy layouts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.extract.clean import ends_sentence, list_marker
from pipeline.extract.hyphens import join_lines
from pipeline.extract.layout import Line

_MIN_BODY_SAMPLES = 3
_MIN_OTHER_SAMPLES = 20


@dataclass(frozen=True)
class Style:
    """Body text style and usual line pitch (baseline to baseline) per font size."""

    body_size: float
    body_bold: bool
    pitch: dict[float, float] = field(default_factory=dict)

    def pitch_for(self, size: float) -> float:
        """Usual pitch for ``size``; sizes seen too rarely scale the body text's leading."""
        known = self.pitch.get(_size_key(size))
        if known is not None:
            return known
        body = self.pitch.get(_size_key(self.body_size))
        return size * (body / self.body_size if body else 1.3)


@dataclass
class Block:
    lines: list[Line]
    kind: str  # "heading", "item" or "text"


def _size_key(size: float) -> float:
    return round(size * 2) / 2


def document_style(pages: Iterable[list[Line]], size_tolerance: float = 0.5) -> Style:
    """Body size and weight (by characters) and the commonest pitch for each size."""
    weight: Counter[float] = Counter()
    bold_weight: Counter[bool] = Counter()
    pitches: dict[float, Counter[float]] = defaultdict(Counter)
    lines_by_page = [list(lines) for lines in pages]
    for lines in lines_by_page:
        for line in lines:
            weight[_size_key(line.size)] += len(line.text)
        for prev, cur in zip(lines, lines[1:], strict=False):
            if (prev.column == cur.column and prev.bold == cur.bold
                    and abs(prev.size - cur.size) <= size_tolerance):
                pitch = prev.y0 - cur.y0
                if 0.8 * cur.size < pitch < 3 * cur.size:
                    pitches[_size_key(cur.size)][round(pitch * 2) / 2] += 1
    if not weight:
        return Style(10.0, False)
    body = weight.most_common(1)[0][0]
    for lines in lines_by_page:
        for line in lines:
            if _size_key(line.size) == body:
                bold_weight[line.bold] += len(line.text)
    # Other sizes need many samples: headings of one size in a row would otherwise
    # teach the gap between headings as the line pitch of that size; without them
    # the body's leading is scaled (see Style.pitch_for).
    usual = {}
    for size, counts in pitches.items():
        pitch, seen = counts.most_common(1)[0]
        if seen >= (_MIN_BODY_SAMPLES if size == body else _MIN_OTHER_SAMPLES):
            usual[size] = pitch
    return Style(body, bold_weight[True] > bold_weight[False], usual)


def _is_heading(line: Line, style: Style, tol: float) -> bool:
    return line.size > style.body_size + tol or (line.bold and not style.body_bold)


def _is_short(line: Line, short_line: float) -> bool:
    return line.x1 < line.right - short_line * max(line.right - line.left, 1.0)


def _starts_block(prev: Line, cur: Line, block: Block, style: Style, para_gap: float,
                  short_line: float, tol: float) -> bool:
    marker = list_marker(cur.text)
    if marker == "bullet" or abs(prev.size - cur.size) > tol:
        return True
    ended = ends_sentence(prev.text)
    short = _is_short(prev, short_line)
    if cur.column != prev.column:
        # Top of a new column: no gap to see, so only the words say whether it runs on.
        return bool(marker) or (ended and short) or prev.bold != cur.bold or (
            block.kind == "heading")
    pitch = prev.y0 - cur.y0
    if pitch > style.pitch_for(cur.size) * (1 + para_gap) or pitch < -0.5 * cur.size:
        return True
    if marker and (ended or short or cur.x0 < prev.x0 - 1.0):
        return True
    if prev.bold != cur.bold and short:
        return True
    if short and ended:
        return True  # the last line of a paragraph
    # A first-line indent after a paragraph's last line (short, or full and ended).
    indented = cur.x0 > cur.left + 0.8 * cur.size
    if block.kind == "text" and indented and (
            short or (ended and cur.x0 > prev.x0 + 0.8 * cur.size)):
        return True
    # Back out of a list item's hanging indent: the list has ended.
    return block.kind == "item" and cur.x0 < block.lines[0].x0 - 1.0


def blocks(lines: list[Line], style: Style, para_gap: float = 0.2, short_line: float = 0.15,
           size_tolerance: float = 0.5) -> list[Block]:
    """Group a page's lines (in reading order) into blocks (see the module docstring)."""
    out: list[Block] = []
    for line in lines:
        if not out or _starts_block(out[-1].lines[-1], line, out[-1], style, para_gap,
                                    short_line, size_tolerance):
            kind = ("item" if list_marker(line.text)
                    else "heading" if _is_heading(line, style, size_tolerance) else "text")
            out.append(Block([line], kind))
        else:
            out[-1].lines.append(line)
    return out


def block_text(block: Block, vocab: Counter[str], real_only: bool = False) -> str:
    """The block as one line of text, hyphenation at line ends repaired."""
    return join_lines([line.text for line in block.lines], vocab, real_only)
