"""Leave-one-report-out protocol: the baselines, fitted on the same folds as the model.

The model's out-of-report predictions are made by the train stage (they also
calibrate it); this module fits the two text-only baselines with the same
splitter, ``LeaveOneGroupOut`` over report ids, and assembles the figures of
all three, so the gap between model and baseline is measured on identical folds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from pipeline.core.log import get_logger, progress
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.evaluate.metrics import per_report, score

log = get_logger(__name__)


def tfidf_lr() -> BaseEstimator:
    """TF-IDF (words and bigrams) + logistic regression, text only."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                         LogisticRegression(max_iter=3000))


def embedding_lr() -> BaseEstimator:
    """Frozen sentence embeddings (the model's own encoder) + logistic regression, text
    only: what the encoder alone gives, so the gap to the model is what the context,
    cue and stacked features add."""
    return LogisticRegression(max_iter=3000)


# name -> (estimator factory, which input it reads: the texts or their vectors)
BASELINES: dict[str, tuple[Callable[[], BaseEstimator], str]] = {
    "tfidf_lr": (tfidf_lr, "text"),
    "embedding_lr": (embedding_lr, "vectors"),
}


def out_of_report_proba(
    estimator: BaseEstimator, X: Any, y: Sequence[str], groups: np.ndarray,
    classes: Sequence[str],
) -> np.ndarray:
    """Leave-one-report-out probabilities laid out in ``classes`` order (a class the
    labels never use gets 0)."""
    with threadpool_limits(1), warnings.catch_warnings():  # threads: see SoftmaxRegression.fit
        # A code absent from one fold's training reports is expected: it gets 0 there.
        warnings.filterwarnings("ignore", "Number of classes in training fold",
                                RuntimeWarning)
        proba = cross_val_predict(estimator, X, np.asarray(y), groups=groups,
                                  cv=LeaveOneGroupOut(), method="predict_proba")
    out = np.zeros((len(y), len(classes)))
    for j, name in enumerate(np.unique(np.asarray(y))):
        out[:, list(classes).index(name)] = proba[:, j]
    return out


def baseline_predictions(
    name: str, rows: list[dict[str, Any]], vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sentiment, QI) out-of-report probabilities of one baseline."""
    make, reads = BASELINES[name]
    X = [r["text"] for r in rows] if reads == "text" else vectors
    groups = np.array([r["report_id"] for r in rows])
    return (out_of_report_proba(make(), X, [r["sentiment"] for r in rows], groups, SENTIMENTS),
            out_of_report_proba(make(), X, [r["qi"][0] for r in rows], groups, QI_CODES))


def figures(rows: list[dict[str, Any]], sent: np.ndarray, qi: np.ndarray) -> dict[str, Any]:
    """One predictor's figures: pooled scores and the same per held-out report."""
    return {**score(rows, sent, qi), "per_report": per_report(rows, sent, qi)}


def baseline_figures(
    names: Sequence[str], rows: list[dict[str, Any]], vectors: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Figures of each named baseline, fitted leave-one-report-out."""
    out = {}
    for name in progress(list(names), "baselines"):
        out[name] = figures(rows, *baseline_predictions(name, rows, vectors))
        log.info("%s: %.3f sentiment macro-F1, %.3f QI top-1", name,
                 out[name]["sentiment"]["macro_f1"], out[name]["qi"]["top1"])
    return out
