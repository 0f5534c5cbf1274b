"""Stage ``classify``: add QI and sentiment predictions to segments.

Every input field is kept; ``qi`` (ranked codes, main first; a second code only
where the model gives it a calibrated probability above the trained threshold),
``qi_scores`` (all 20 codes and ``none``), ``sentiment`` and ``sentiment_scores``
are added. Segments are expected in file order: a segment's neighbours are the
adjacent segments of the same report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.io import read_jsonl, write_jsonl
from pipeline.embed.stage import EmbeddingCache, stored_encoder
from pipeline.train.model import SegmentClassifier, labels_from_scores
from pipeline.train.persist import load_models as _load
from pipeline.train.segments import encode
from pipeline.train.vectors import Encode

PREDICTED_FIELDS = ("qi", "qi_scores", "sentiment", "sentiment_scores")


@dataclass
class Models:
    """A verified classifier and what it was trained on (the manifest's info)."""

    classifier: SegmentClassifier
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder(self) -> str:
        """The frozen encoder the models were trained with."""
        return str(self.info["params"]["encoder"])


def load_models(model_dir: Path) -> Models:
    """Load and verify the models written by the train stage (InputError if unusable)."""
    return Models(*_load(Path(model_dir)))


def classify(
    segments: list[dict], models: Models, frozen_encoder: Encode | None = None
) -> list[dict]:
    """Segments with predictions added; ``frozen_encoder`` may be an embedding cache
    filled by the models' encoder, so that vectors already computed for the corpus
    are reused."""
    if not segments:
        return []
    clf = models.classifier
    sent, qi = predict_scores(segments, models, frozen_encoder)
    out = []
    for segment, s, q in zip(segments, sent, qi, strict=True):
        row = {k: v for k, v in segment.items() if k not in PREDICTED_FIELDS}
        row.update(labels_from_scores(s, q, clf.second_code_threshold))
        out.append(row)
    return out


def predict_scores(
    segments: list[dict], models: Models, frozen_encoder: Encode | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(sentiment probabilities in ``SENTIMENTS`` order, QI probabilities in ``QI_CODES``
    order), one row per segment: what ``classify`` labels from and ``evaluate`` scores."""
    encoder = frozen_encoder or EmbeddingCache(None, models.encoder)
    sent, qi = models.classifier.predict_proba(encode(segments, encoder))
    return sent, qi


def classify_file(
    segments_path: Path, model_dir: Path, out_path: Path, embeddings: Path | None = None
) -> int:
    """Classify every segment of a JSONL file with the models in ``model_dir``.

    ``embeddings`` is the embed stage's cache: when it was filled by the models' encoder,
    its vectors are reused instead of encoding every sentence a second time (texts it
    lacks, such as headings, are encoded); a cache of another encoder is not used.
    """
    models = load_models(model_dir)  # first, so a bad model fails before reading
    cache = None
    if embeddings and Path(embeddings).exists() \
            and stored_encoder(embeddings) == models.encoder:
        cache = EmbeddingCache(embeddings, models.encoder)
    rows = classify(read_jsonl(segments_path), models, cache)
    write_jsonl(out_path, rows)
    return len(rows)
