"""String clean-up for extracted PDF text: characters, list markers, line joining.

Character policy (what downstream stages can rely on):

- ligatures (U+FB00-FB06) are spelt out: "ﬁ" -> "fi";
- curly quotes and apostrophes become ASCII ``'`` and ``"``; primes too;
- hyphen-like characters (U+2010 hyphen, U+2011 non-breaking hyphen, U+2212 minus)
  become ``-``; en dash "–" and em dash "—" are kept, because report headings use
  "–" as a separator ("Summary – strengths and ...") and turning it into ``-`` would
  make it look like a compound-word hyphen;
- soft hyphens (U+00AD) and U+FFFE (pypdfium2's soft-hyphen mark) are removed,
  except one ending a line, which :mod:`.hyphens` needs; zero-width characters
  are removed; every kind of space becomes one ASCII space;
- bullets of any shape (•, ●, ▪, private-use Symbol/Wingdings glyphs, pdfminer's
  ``(cid:N)`` for a glyph without a Unicode mapping) at the start of a line become
  "• "; an undecodable glyph anywhere else is dropped.
"""

from __future__ import annotations

import re
import unicodedata

_CHAR_MAP = {
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
    "\ufb05": "st", "\ufb06": "st",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2026": "...",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "",
    "\ufeff": "",
    "\t": " ", "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2004": " ", "\u2005": " ",
    "\u2006": " ", "\u2007": " ", "\u2008": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ",
    "\u205f": " ", "\u3000": " ",
}
_TRANSLATE = str.maketrans(_CHAR_MAP)
SOFT_HYPHENS = "\u00ad\ufffe"

BULLET = "•"
# Shapes used as list bullets; private-use code points are Symbol/Wingdings bullets
# as Word writes them (U+F0B7 is the usual round one).
_BULLET_CHARS = "•●▪■◦‣⁃∙○□◆◇➢➤►▶✓✔❖·" + "".join(chr(c) for c in range(0xF000, 0xF100))
_CID = r"\(cid:\d+\)"
_LEADING_BULLET = re.compile(rf"^(?:[{re.escape(_BULLET_CHARS)}]|{_CID}|[\ue000-\uf8ff])\s*")
_UNDECODED = re.compile(rf"{_CID}|[\ue000-\uf8ff]")
_SPACES = re.compile(r"\s+")
# "1." "12)" "a)" "(iv)" "iii." at the start of a line, followed by a space.
_NUMBERED = re.compile(
    r"^(?:\d{1,2}[.)]|[a-z][.)]|\((?:\d{1,2}|[a-z]|[ivx]{1,4})\)|[ivx]{1,4}[.)])\s"
)
_DASH_ITEM = re.compile(r"^[-–—*]\s")
_TERMINAL = re.compile(r"[.!?:;][\"')\]]*$")


def normalise_chars(text: str) -> str:
    """Apply the character policy to one piece of text, except bullets and soft hyphens.

    Soft hyphens are left for :func:`tidy_line`, which keeps one at a line end so
    that :func:`join_lines` knows the word continues on the next line.
    """
    return unicodedata.normalize("NFC", text.translate(_TRANSLATE))


def _drop_soft_hyphens(text: str) -> str:
    """Remove soft hyphens except one ending the line (normalised to U+00AD)."""
    stripped = text.rstrip(SOFT_HYPHENS)
    tail = "\u00ad" if len(stripped) < len(text) else ""
    return re.sub(f"[{SOFT_HYPHENS}]", "", stripped) + tail


def tidy_line(text: str) -> str:
    """One line of text: policy applied, spaces collapsed, a leading bullet made "• ".

    Consecutive bullets (a list bullet before a bullet that is part of the text, as
    in a contents list) are all kept, so no character of the source is lost.
    """
    text = _drop_soft_hyphens(_SPACES.sub(" ", normalise_chars(text)).strip())
    bullets = 0
    while True:
        match = _LEADING_BULLET.match(text)
        if not match or match.end() == 0:
            break
        bullets += 1
        text = text[match.end():]
    text = _UNDECODED.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    if bullets:
        return " ".join([BULLET] * bullets + ([text] if text else []))
    return text


def glyph_counts(text: str) -> tuple[int, int]:
    """(glyphs, glyphs pdfminer could not map to Unicode), to spot unusable fonts.

    pdfminer writes an unmapped glyph as ``(cid:N)``: one glyph, not eight characters.
    """
    undecoded = len(re.findall(_CID, text))
    return len("".join(re.sub(_CID, "?", text).split())), undecoded


def list_marker(line: str) -> str | None:
    """``"bullet"``, ``"number"``, ``"dash"`` for a line that opens a list item, else None.

    Bullets are unambiguous; numbers and dashes can also start a wrapped line in the
    middle of a sentence ("... aged\\n18. Staff"), so callers treat them as weak evidence.
    """
    if line.startswith(BULLET):
        return "bullet"
    if _NUMBERED.match(line):
        return "number"
    if _DASH_ITEM.match(line):
        return "dash"
    return None


def ends_sentence(line: str) -> bool:
    return bool(_TERMINAL.search(line.rstrip()))
