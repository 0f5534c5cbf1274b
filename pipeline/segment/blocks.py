"""Turn extracted pages into a flat list of text blocks, each with its page number.

A block is one paragraph, heading or list item on one line. The extractor already
puts a blank line between blocks; here we also mend the one thing a page break
does to the text: a paragraph or list item that runs on to the next page arrives
as two blocks, and is joined back so that no sentence is cut in two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BULLET_RE = re.compile(r"^\s*(?:[-•●▪◦‣∙·*]|\(cid:127\))\s+")
NUMBERED_RE = re.compile(r"^\s*(\d{1,2})[.)]\s+(?=\S)")
TERMINAL_RE = re.compile(r"[.!?:;]['\"’”)\]]*$")
CONTINUING_WORDS = frozenset(
    (
        "a an the of and or but in on at to for with by from as that which who whose their its "
        "our this these those was were is are had has have be been not than into onto across "
        "between about over under through within without while where when"
    ).split(" ")
)


@dataclass
class Block:
    text: str
    page: int

    @property
    def is_bullet(self) -> bool:
        return bool(BULLET_RE.match(self.text))

    @property
    def number(self) -> int | None:
        match = NUMBERED_RE.match(self.text)
        return int(match.group(1)) if match else None

    @property
    def body(self) -> str:
        """The text without a leading bullet or item number."""
        text = BULLET_RE.sub("", self.text, count=1)
        return NUMBERED_RE.sub("", text, count=1).strip()

    @property
    def words(self) -> int:
        return len(self.text.split())


def page_blocks(number: int, text: str) -> list[Block]:
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        line = " ".join(chunk.split())
        if line:
            blocks.append(Block(line, number))
    return blocks


def _continues(prev: Block, nxt: Block) -> bool:
    """Does ``nxt`` (first block of a page) carry on ``prev`` (last block of the page before)?"""
    if nxt.is_bullet or nxt.number is not None:
        return False
    first = nxt.text[0]
    if first.islower() or first in ",;)":
        return True
    # A long block cut after a word no sentence or heading ends on ("the", "of") is a
    # paragraph broken by the page; a title or heading at a page foot ends on a content word.
    last = prev.text.rsplit(" ", 1)[-1].lower()
    return not TERMINAL_RE.search(prev.text) and prev.words > 14 and last in CONTINUING_WORDS


def blocks_from_pages(pages: list[dict]) -> list[Block]:
    """All blocks of a report in reading order, with paragraphs split by page breaks joined."""
    out: list[Block] = []
    for page in pages:
        blocks = page_blocks(int(page["number"]), page.get("text") or "")
        if blocks and out and out[-1].page != blocks[0].page and _continues(out[-1], blocks[0]):
            joiner = "" if out[-1].text.endswith("-") and blocks[0].text[0].islower() else " "
            out[-1] = Block(out[-1].text + joiner + blocks[0].text, out[-1].page)
            blocks = blocks[1:]
        out.extend(blocks)
    return out


def looks_like_heading(block: Block, nxt: Block | None) -> bool:
    """A free-text subsection heading: short, unpunctuated, not a list item.

    Body subsection titles vary from report to report, so they cannot be listed as
    data; their shape is what they share.
    """
    text = block.text
    if block.is_bullet or block.number is not None or block.words > 14:
        return False
    if not (text[0].isupper() or text[0].isdigit()):
        return False
    if re.search(r"[.;,:]['\"’”)]?$", text):
        return False
    return nxt is None or not nxt.text[0].islower()
