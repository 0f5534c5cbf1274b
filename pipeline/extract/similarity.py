"""Word-sequence similarity: how faithfully an extractor reproduced a known text.

Definition (used by the extraction tests and ``benchmarks/extraction.py``):

1. Both texts are lower-cased and cut into word tokens with :data:`TOKEN_RE`,
   ``[a-z0-9]+(?:'[a-z]+)?``: runs of ASCII letters and digits, with an optional
   apostrophe suffix ("partners'" -> ``partners``, "children's" -> ``children's``).
   Everything else (punctuation, markdown marks ``#``, ``-``, ``**``, list
   bullets, dot leaders, whitespace and line breaks) separates tokens and is ignored.
   Curly apostrophes count as ``'`` so that typographic and ASCII text compare equal.
2. ``difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()`` over the two token
   lists: ``2 * M / (len(a) + len(b))`` where ``M`` is the number of tokens in
   matching blocks. 1.0 means the same words in the same order.

Why this measure: it rewards the things the segmenter depends on (every word
present, in reading order) and punishes the usual PDF faults: running headers and
page numbers (inserted tokens), broken hyphenation ("plan ning" is two wrong tokens
instead of one right one) and scrambled columns (order breaks the matching blocks).
It is blind to paragraph breaks, which the extraction tests check separately.
``autojunk=False`` because difflib's heuristic would otherwise treat frequent words
("the", "and") as junk in texts over 200 tokens and under-count matches.
"""

from __future__ import annotations

import difflib
import re

TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``, as defined in the module docstring."""
    return TOKEN_RE.findall(text.lower().translate(_APOSTROPHES))


def similarity(extracted: str, reference: str) -> float:
    """Word-sequence similarity in [0, 1] between two texts (1.0 = same word sequence)."""
    a, b = tokens(extracted), tokens(reference)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def differences(extracted: str, reference: str, limit: int = 20) -> list[str]:
    """The first ``limit`` differing stretches, for failure messages and debugging."""
    a, b = tokens(extracted), tokens(reference)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        out.append(f"{op}: {' '.join(a[i1:i2])[:120]!r} -> {' '.join(b[j1:j2])[:120]!r}")
        if len(out) >= limit:
            break
    return out


def markdown_text(source: str) -> str:
    """The renderable text of a markdown source: HTML comments (metadata) dropped.

    Markdown marks need no stripping because :func:`tokens` ignores punctuation.
    """
    return _HTML_COMMENT.sub(" ", source)
