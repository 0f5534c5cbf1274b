"""Sentence vectors for rows: each distinct text, heading and clause is encoded once.

The frozen encoder's vectors feed both models (and can come from the pipeline's
embedding cache); the clause vectors (first and last clause of a contrastive
sentence, see ``features.clauses``) feed the sentiment model's second stage. An
encoder with a ``spans`` method (``pipeline.embed.EmbeddingCache``) pools each
clause out of its sentence's own pass, at no extra cost; a plain function
encodes each clause as a text of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.train.features import clause_spans, clauses, topic_heading

Encode = Callable[[list[str]], np.ndarray]


def _lookup(values: Sequence[str], encode: Encode, dim: int | None = None) -> np.ndarray:
    distinct = sorted({v for v in values if v})
    if not distinct:
        return np.zeros((len(values), dim or 384), dtype=np.float32)
    vecs = np.asarray(encode(distinct), dtype=np.float32)
    index = {v: i for i, v in enumerate(distinct)}
    out = np.zeros((len(values), vecs.shape[1]), dtype=np.float32)
    for i, value in enumerate(values):
        if value:
            out[i] = vecs[index[value]]
    return out


def _pooled_clauses(texts: Sequence[str], encoder: Any) -> dict[str, np.ndarray]:
    """Text -> (first, last) clause vectors, pooled from the sentence's own pass, for
    the contrastive sentences among ``texts``."""
    split = {t: clause_spans(t) for t in set(texts)}
    pairs = [(t, span) for t in sorted(split) for span in split[t] or ()]
    if not pairs:
        return {}
    vecs = encoder.spans([t for t, _ in pairs], [s for _, s in pairs])
    return {pairs[k][0]: vecs[k: k + 2] for k in range(0, len(pairs), 2)}


def vector_keys(rows: Sequence[dict[str, Any]]) -> set[str]:
    """The keys of every vector :func:`row_vectors` looks up for ``rows`` in an
    embedding cache with ``spans``: the texts', the headings' and the clauses'. What a
    persistent cache keeps when it is pruned to a corpus."""
    from pipeline.core.io import text_hash
    from pipeline.embed.stage import span_key

    keys: set[str] = set()
    for text in {str(r.get("text") or "") for r in rows} - {""}:
        keys.add(text_hash(text))
        keys.update(span_key(text, span) for span in clause_spans(text) or ())
    keys.update(text_hash(h) for h in {topic_heading(r.get("subsection")) for r in rows} - {""})
    return keys


def row_vectors(rows: Sequence[dict[str, Any]], frozen: Encode) -> dict[str, np.ndarray]:
    """``text``, ``heading``, ``clause_first`` and ``clause_last`` from the frozen encoder."""
    texts = [str(r.get("text") or "") for r in rows]
    headings = [topic_heading(r.get("subsection")) for r in rows]
    n = len(rows)
    if callable(getattr(frozen, "spans", None)):
        pooled = _pooled_clauses(texts, frozen)  # first: it stores the sentences' vectors too
        every = _lookup([*texts, *headings], frozen)
        out = {"text": every[:n], "heading": every[n:],
               "clause_first": every[:n].copy(), "clause_last": every[:n].copy()}
        for i, text in enumerate(texts):
            if text in pooled:
                out["clause_first"][i], out["clause_last"][i] = pooled[text]
    else:
        split = [clauses(t) for t in texts]
        every = _lookup([*texts, *headings, *(c[0] for c in split), *(c[1] for c in split)],
                        frozen)
        out = {"text": every[:n], "heading": every[n: 2 * n],
               "clause_first": every[2 * n: 3 * n], "clause_last": every[3 * n:]}
    return out
