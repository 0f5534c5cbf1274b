"""String clean-up for extracted PDF text: characters, list markers, line joining.

Character policy (what downstream stages can rely on):

- ligatures (U+FB00-FB06) are spelt out: "ﬁ" -> "fi";
- curly quotes and apostrophes become ASCII ``'`` and ``"``; primes too;
- hyphen-like characters (U+2010 hyphen, U+2011 non-breaking hyphen, U+2212 minus)
  become ``-``; en dash "–" and em dash "—" are kept, because report headings use
  "–" as a separator ("Summary – strengths and ...") and turning it into ``-`` would
  make it look like a compound-word hyphen;
- soft hyphens (U+00AD), U+FFFE (pypdfium2's soft-hyphen mark) and zero-width
  characters are removed; every kind of space becomes one ASCII space;
- bullets of any shape (•, ●, ▪, private-use Symbol/Wingdings glyphs, pdfminer's
  ``(cid:N)`` for a glyph without a Unicode mapping) at the start of a line become
  "• "; an undecodable glyph anywhere else is dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator

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
_SOFT_HYPHENS = "\u00ad\ufffe"

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
    stripped = text.rstrip(_SOFT_HYPHENS)
    tail = "\u00ad" if len(stripped) < len(text) else ""
    return re.sub(f"[{_SOFT_HYPHENS}]", "", stripped) + tail


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


def undecoded_count(text: str) -> int:
    """Glyphs pdfminer could not map to Unicode (``(cid:N)``), to spot unusable fonts."""
    return len(re.findall(_CID, text))


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


# ---------------------------------------------------------------------------
# Hyphenation at line ends
# ---------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_LAST_WORD = re.compile(r"([A-Za-z0-9]+)(\s?)([-" + _SOFT_HYPHENS + r"])$")
_FIRST_WORD = re.compile(r"^([A-Za-z0-9]+)")
# Prefixes that usually keep their hyphen; used only when the document itself has
# no evidence either way (neither "multiagency" nor "multi-agency" elsewhere).
COMPOUND_PREFIXES = frozenset({
    "anti", "co", "cross", "ex", "full", "half", "high", "inter", "long", "low", "mid", "multi",
    "non", "part", "post", "pre", "pro", "re", "self", "semi", "short", "sub", "well", "wide",
})


def vocabulary(texts: Iterable[str]) -> Counter[str]:
    """Lower-cased words and hyphenated compounds, the document's own word list.

    Line-end fragments are not excluded here; :func:`join_lines` discounts the one
    occurrence it is deciding about.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for word in _WORD.findall(text.lower()):
            counts[word] += 1
            if "-" in word:
                counts.update(word.split("-"))
    return counts


def _hyphen_join(left: str, right: str, spaced: bool, vocab: Counter[str],
                 keep_unknown: bool = False) -> str:
    """How ``left`` + hyphen + line break + ``right`` should read: joined, hyphen or dash."""
    joined, compound = left + right, f"{left}-{right}"
    if any(c.isdigit() for c in joined) or not right[:1].islower():
        return f"{left} - {right}" if spaced else compound
    low_j, low_c = joined.lower(), compound.lower()
    n_joined, n_compound = vocab[low_j], vocab[low_c]
    if n_joined or n_compound:
        return joined if n_joined >= n_compound else compound
    # Each fragment was counted once at the break itself. A word broken by
    # hyphenation leaves a fragment that is no word ("ning", "vious"); a compound
    # broken at its hyphen leaves two ("well" "established", "multi" "agency").
    left_known = vocab[left.lower()] > 1 or left.lower() in COMPOUND_PREFIXES
    right_known = vocab[right.lower()] > 1
    if left_known and right_known:
        return f"{left} - {right}" if spaced else compound
    return compound if keep_unknown and not spaced else joined


def _breaks(lines: list[str]) -> Iterator[tuple[str, str, bool]]:
    """(left fragment, right fragment, spaced) at each hyphen ending a line of ``lines``."""
    for before, after in zip(lines, lines[1:], strict=False):
        tail = _LAST_WORD.search(before.strip())
        head = _FIRST_WORD.match(after.strip())
        if tail and head and tail.group(3) == "-":
            yield tail.group(1), head.group(1), bool(tail.group(2))


def hyphens_are_real(paragraphs: Iterable[list[str]], vocab: Counter[str]) -> bool:
    """Whether this document breaks lines only at real hyphens (no auto-hyphenation).

    Evidence from the breaks whose outcome the document itself settles: a joined
    form found elsewhere ("plan-/ning", "planning") shows auto-hyphenation, a
    hyphenated one ("well-/established", "well-established") a real hyphen. When
    real hyphens win, breaks without evidence ("six-/point") keep their hyphen.
    """
    auto = real = 0
    for lines in paragraphs:
        for left, right, spaced in _breaks(lines):
            if spaced or not right[:1].islower() or any(c.isdigit() for c in left + right):
                continue
            auto += vocab[(left + right).lower()] > 0
            real += vocab[f"{left}-{right}".lower()] > 0
    return real > auto


def join_lines(lines: list[str], vocab: Counter[str] | None = None,
               keep_unknown: bool = False) -> str:
    """Join the lines of one paragraph with single spaces, repairing hyphenation.

    A line ending in a soft hyphen is always joined. A line ending in "-" after a
    word ("plan-" or pdfminer's spaced "plan -") is decided with the document's own
    word list: "plan-/ning" becomes "planning" when "planning" (or nothing better)
    appears elsewhere, "well-/established" stays hyphenated when "well-established"
    does, or both halves are words there; "2018-/2020" keeps its hyphen; a spaced
    "-" between two known words ("services -/which") stays a dash. Without
    evidence, the hyphen goes unless ``keep_unknown`` (see :func:`hyphens_are_real`).
    """
    vocab = vocab if vocab is not None else vocabulary(lines)
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
            continue
        tail = _LAST_WORD.search(out)
        head = _FIRST_WORD.match(line)
        if tail and tail.group(3) in _SOFT_HYPHENS:
            out = out[: tail.start(2)] + line
        elif tail and head:
            left, right = tail.group(1), head.group(1)
            joined = _hyphen_join(left, right, bool(tail.group(2)), vocab, keep_unknown)
            out = out[: tail.start(1)] + joined + line[head.end():]
        else:
            out = f"{out} {line}"
    return out.replace("\u00ad", "").replace("\ufffe", "")
