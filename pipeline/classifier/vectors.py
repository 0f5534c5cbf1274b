"""Sentence vectors for rows: each distinct text, heading and clause is encoded once.

The frozen encoder's vectors feed both models (and can come from the pipeline's
embedding cache); the clause vectors (first and last clause of a contrastive
sentence, see ``features.clauses``) feed the sentiment model's second stage. A
fine-tuned encoder, when trained, adds a second text vector that only the
sentiment model reads, because fine-tuning for sentiment was found to blur the
topical distinctions the QI model needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.classifier.features import clauses, topic_heading

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


def row_vectors(
    rows: Sequence[dict[str, Any]], frozen: Encode, finetuned: Encode | None = None
) -> dict[str, np.ndarray]:
    """``text``, ``heading``, ``clause_first`` and ``clause_last`` from the frozen
    encoder; ``text_ft`` from the tuned one."""
    texts = [str(r.get("text") or "") for r in rows]
    headings = [topic_heading(r.get("subsection")) for r in rows]
    split = [clauses(t) for t in texts]
    n = len(rows)
    every = _lookup([*texts, *headings, *(c[0] for c in split), *(c[1] for c in split)],
                    frozen)
    out = {"text": every[:n], "heading": every[n: 2 * n], "clause_first": every[2 * n: 3 * n],
           "clause_last": every[3 * n:]}
    if finetuned is not None:
        out["text_ft"] = _lookup(texts, finetuned)
    return out


def subset(vectors: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: mat[index] for name, mat in vectors.items()}
