"""The label queue: the sentences whose labels would teach the models most.

A person's labelling time is the scarce resource, so the queue asks for sentences
the models are unsure of (a label there moves a decision boundary; a label on a
sentence read with 0.99 confidence mostly confirms it), and spreads them out: over
reports, over predicted QIs and away from near-duplicates, because fifty uncertain
copies of one boilerplate sentence teach one thing fifty times.

Uncertainty is the *margin* between the two most probable classes, of the sentiment
and of the QI, averaged: a small margin is exactly a sentence the models could read
either way. Entropy over 21 QI codes would be dominated by the long tail of codes
that are never in contention.

Selection is greedy: each pick maximises

    uncertainty x (1 - max cosine to the sentences already picked)
                x report_decay ** (picked from its report)
                x qi_decay ** (picked with its predicted QI)

so the most uncertain sentence comes first and every later pick pays for resembling
what is already in the queue. Without embeddings only the report and QI decays
spread the picks. Identical sentences (same text key) are offered once.

The queue is written in the label file format (``text``, ``qi``, ``sentiment`` and
context fields), with the models' guess pre-filled and ``"status": "unlabelled"``,
``"suggested": true``; ``inspections label`` turns it into a label file of only the
rows a person answered.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.io import numbered_jsonl, text_hash
from pipeline.train.data import text_key

MIN_WORDS = 4  # shorter segments are headings or fragments, not worth a person's time
REPORT_DECAY = 0.8
QI_DECAY = 0.8
_FLOOR = 1e-6  # keeps diversity working among sentences the models are sure of
QUEUE_STATUS = "unlabelled"
QUEUE_FIELDS = ("report_id", "partnership", "part", "kind", "subsection", "indicator", "page",
                "segment_id")


def margin(scores: Mapping[str, float]) -> float:
    """Probability of the top class minus that of the runner-up (1.0 for a single class)."""
    ranked = sorted((float(v) for v in scores.values()), reverse=True)
    if not ranked:
        return 1.0
    return ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)


def uncertainty(row: Mapping[str, Any]) -> float:
    """0 (sure of both labels) .. 1 (a coin toss on both): the mean of 1 - margin of the
    sentiment and of the QI probabilities, weighted alike since a label fixes both."""
    return 0.5 * ((1.0 - margin(row["sentiment_scores"])) + (1.0 - margin(row["qi_scores"])))


def has_scores(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every row is already classified (so the models need not be loaded)."""
    return bool(rows) and all(
        isinstance(r.get("qi_scores"), dict) and isinstance(r.get("sentiment_scores"), dict)
        and r["qi_scores"] and r["sentiment_scores"] for r in rows)


def main_qi(row: Mapping[str, Any]) -> str:
    """The predicted main QI: the ranked ``qi`` list's head, else the top score."""
    codes = row.get("qi")
    if isinstance(codes, list) and codes:
        return str(codes[0])
    scores = row["qi_scores"]
    return max(scores, key=scores.get)


def main_sentiment(row: Mapping[str, Any]) -> str:
    if isinstance(row.get("sentiment"), str):
        return row["sentiment"]
    scores = row["sentiment_scores"]
    return max(scores, key=scores.get)


def neighbours(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str | None, str | None]]:
    """(previous, next) sentence of each row within its report, in file order: the
    context a person needs to read a sentence as the inspectors wrote it."""
    out: list[tuple[str | None, str | None]] = []
    for i, row in enumerate(rows):
        rid = row.get("report_id")
        before = rows[i - 1]["text"] if i > 0 and rows[i - 1].get("report_id") == rid else None
        after = rows[i + 1]["text"] if i + 1 < len(rows) and \
            rows[i + 1].get("report_id") == rid else None
        out.append((before, after))
    return out


def candidates(
    rows: Sequence[Mapping[str, Any]], skip_keys: set[str], min_words: int = MIN_WORDS
) -> list[int]:
    """Indices of rows worth offering: long enough, not labelled or trained on already,
    and one row per distinct sentence (the first, in file order)."""
    seen = set(skip_keys)
    out = []
    for i, row in enumerate(rows):
        text = row.get("text")
        if not isinstance(text, str) or len(text.split()) < min_words:
            continue
        key = text_key(text)
        if key in seen:
            continue
        seen.add(key)
        out.append(i)
    return out


def _groups(values: Sequence[str]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(v, len(index)) for v in values], dtype=int)


def select(
    uncertainties: Sequence[float],
    reports: Sequence[str],
    qis: Sequence[str],
    n: int,
    vectors: np.ndarray | None = None,
    report_decay: float = REPORT_DECAY,
    qi_decay: float = QI_DECAY,
) -> list[int]:
    """Greedy pick of ``n`` indices, most valuable first (see the module docstring).

    ``vectors`` (one row per item, any scale; a zero row means "unknown") adds the
    near-duplicate penalty. Ties go to the earlier index, so the result is
    deterministic.
    """
    u = np.asarray(uncertainties, dtype=float) + _FLOOR
    size = len(u)
    if not (len(reports) == len(qis) == size) or (vectors is not None and len(vectors) != size):
        raise ValueError("uncertainties, reports, qis and vectors must be the same length")
    report_of, qi_of = _groups([str(r) for r in reports]), _groups([str(q) for q in qis])
    report_picks = np.zeros(report_of.max() + 1 if size else 0)
    qi_picks = np.zeros(qi_of.max() + 1 if size else 0)
    unit = None
    if vectors is not None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors, dtype=float),
                         where=norms > 0)
    closest = np.zeros(size)
    open_ = np.ones(size, dtype=bool)
    picked: list[int] = []
    for _ in range(min(n, size)):
        gain = (u * (1.0 - np.clip(closest, 0.0, 1.0))
                * report_decay ** report_picks[report_of] * qi_decay ** qi_picks[qi_of])
        gain[~open_] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        open_[best] = False
        report_picks[report_of[best]] += 1
        qi_picks[qi_of[best]] += 1
        if unit is not None:
            closest = np.maximum(closest, unit @ unit[best])
    return picked


def _top(scores: Mapping[str, float], k: int) -> dict[str, float]:
    ranked = sorted(scores.items(), key=lambda kv: -float(kv[1]))[:k]
    return {code: round(float(p), 3) for code, p in ranked}


def queue_row(
    row: Mapping[str, Any], context: tuple[str | None, str | None], rank: int, score: float
) -> dict[str, Any]:
    """One queue line: a label row with the models' guess pre-filled and marked as such,
    plus what the labeller shows (neighbours, the runner-up classes)."""
    out: dict[str, Any] = {"text": row["text"]}
    out.update({k: row.get(k) for k in QUEUE_FIELDS if row.get(k) is not None})
    qi = row.get("qi") if isinstance(row.get("qi"), list) and row.get("qi") else [main_qi(row)]
    out.update({
        "qi": list(qi),
        "sentiment": main_sentiment(row),
        "status": QUEUE_STATUS,
        "suggested": True,
        "rank": rank,
        "uncertainty": round(float(score), 4),
        "suggested_scores": {"sentiment": _top(row["sentiment_scores"], 2),
                             "qi": _top(row["qi_scores"], 3)},
        "previous_sentence": context[0],
        "next_sentence": context[1],
    })
    return out


def build_queue(
    rows: Sequence[Mapping[str, Any]],
    n: int,
    skip_keys: Collection[str] = (),
    vectors: np.ndarray | None = None,
    min_words: int = MIN_WORDS,
) -> list[dict[str, Any]]:
    """The queue of classified segments ``rows`` (file order), ``n`` lines, most
    valuable first. ``vectors`` has one row per segment of ``rows``."""
    pool = candidates(rows, set(skip_keys), min_words)
    scores = [uncertainty(rows[i]) for i in pool]
    picks = select(scores, [str(rows[i].get("report_id")) for i in pool],
                   [main_qi(rows[i]) for i in pool], n,
                   None if vectors is None else np.asarray(vectors)[pool])
    context = neighbours(rows)
    return [queue_row(rows[pool[p]], context[pool[p]], rank, scores[p])
            for rank, p in enumerate(picks, start=1)]


# --- inputs -----------------------------------------------------------------------

def load_vectors(path: Path, texts: Sequence[str]) -> np.ndarray:
    """Vectors of ``texts`` from an embed-stage cache (``keys`` = text hashes,
    ``vectors``); a text the cache lacks gets a zero row (no duplicate penalty)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors = [str(k) for k in data["keys"]], np.asarray(data["vectors"], float)
    except FileNotFoundError:
        raise InputError(path, "embedding cache not found") from None
    except (OSError, ValueError, KeyError) as err:
        raise InputError(path, f"not an embedding cache from `inspections embed` ({err})") \
            from None
    where = {k: i for i, k in enumerate(keys)}
    out = np.zeros((len(texts), vectors.shape[1] if vectors.ndim == 2 else 0))
    for row, text in enumerate(texts):
        i = where.get(text_hash(text))
        if i is not None:
            out[row] = vectors[i]
    return out


def training_keys(model_dir: Path) -> set[str]:
    """Text keys of the sentences the models were trained on (from their manifest):
    labelling one again would teach them nothing."""
    from pipeline.train.persist import read_manifest

    info = read_manifest(Path(model_dir)).get("info") or {}
    return set(info.get("training_text_keys") or [])


def scored_segments(path: Path, model_dir: Path, embeddings: Path | None) -> list[dict]:
    """Segments with ``qi_scores`` and ``sentiment_scores``: as read when the file is
    already classified, else scored with the models (the classify stage's API)."""
    numbered = numbered_jsonl(path)
    if not numbered:
        raise InputError(path, "no segments in this file")
    for lineno, row in numbered:
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InputError(path, f"line {lineno}: 'text' must be a non-empty string")
    rows = [row for _, row in numbered]
    if has_scores(rows):
        return rows
    from pipeline.classify.stage import classify as classify_rows
    from pipeline.classify.stage import load_models

    models = load_models(model_dir)
    cache = None
    if embeddings is not None and Path(embeddings).exists():
        from pipeline.classify.stage import models_encoder

        # A cache filled by another encoder or precision is ignored, not mixed in.
        cache = models_encoder(models, embeddings)
    return classify_rows(rows, models, cache)
