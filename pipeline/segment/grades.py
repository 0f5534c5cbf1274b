"""Read the official grades from a report's Appendix 1.

Layouts differ (grade above the indicator, beside it in a table row, or below it),
so the reader looks for each indicator line named in the generation's data and
takes the scale word on that line or in the nearest block around it.
"""

from __future__ import annotations

import re

from pipeline.core.schema import Generation
from pipeline.segment.blocks import Block


def scale_word(text: str, scale: tuple[str, ...], whole: bool = True) -> str | None:
    """The scale word in ``text`` (the whole block when ``whole``), in the scale's spelling."""
    for word in sorted(scale, key=len, reverse=True):  # "Very good" before "Good"
        pattern = rf"^\W*{re.escape(word)}\W*$" if whole else rf"\b{re.escape(word)}\b"
        if re.search(pattern, text, re.IGNORECASE):
            return word
    return None


def indicator_line(block: Block, pattern: re.Pattern[str]) -> str | None:
    """The block's text if it is the indicator line ``pattern`` describes (bullet or not)."""
    for text in (block.text, block.body):
        if pattern.match(text):
            return text
    return None


def read_grades(blocks: list[Block], generation: Generation, window: int = 2) -> dict[str, str]:
    """Map indicator code -> grade for the Appendix 1 blocks given."""
    grades: dict[str, str] = {}
    for i, block in enumerate(blocks):
        for code, pattern in generation.indicators.items():
            line = indicator_line(block, pattern)
            if code in grades or line is None:
                continue
            # A table row ("2.1 Impact on children and young people   Good") carries it inline.
            tail = pattern.sub("", line, count=1)
            grade = scale_word(tail[-40:], generation.scale, whole=False) if tail else None
            for offset in range(1, window + 1):
                if grade:
                    break
                for j in (i - offset, i + offset):
                    if 0 <= j < len(blocks):
                        grade = scale_word(blocks[j].text, generation.scale, whole=True)
                        if grade:
                            break
            if grade:
                grades[code] = grade
    return grades
