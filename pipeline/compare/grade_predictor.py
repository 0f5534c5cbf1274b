"""Predict a report's official grades from the sentiment of its inspection questions.

Only parts q1..q5 feed the features: Appendix 1 states the grades and its
rationale paraphrases them, and the summary and conclusion restate the key
messages, so using them would leak the answer.

Features for one report and one graded indicator:
- ``qi_net``: net sentiment ((positive - negative) / n) of the segments whose
  main QI belongs to the graded indicator, shrunk toward the report's overall
  net by ``shrink`` pseudo-segments, so a thin cell leans on the whole report;
- ``overall_net``: net sentiment of all evaluative segments (QI not ``none``);
- ``key_negative``: share of the key messages that are negative or mixed.

The model pools all graded indicators (a handful of reports give only a few
dozen report x indicator rows) and is a ridge regression on the six-point
scale whose residuals, estimated leave-one-out, give a Gaussian spread; grade
probabilities are that Gaussian's mass over each grade's half-point interval.
That is a regression rounded, with calibrated-ish confidence, and it can
predict grades absent from the training set, which a multinomial classifier
on so few rows cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import LeaveOneGroupOut

from pipeline.core.schema import GRADE_QIS
from pipeline.core.schema import SCALE as FRAMEWORK_SCALE

SCALE: tuple[str, ...] = FRAMEWORK_SCALE  # worst to best, from the generation data
GRADE_VALUE = {name.lower(): i + 1 for i, name in enumerate(SCALE)}
FEATURES = ("qi_net", "overall_net", "key_negative")

# Which classified QIs speak to each graded indicator (the generation data's grade table).
DEFAULT_GRADE_QIS: dict[str, list[str]] = {k: list(v) for k, v in GRADE_QIS.items()}
SIGN = {"positive": 1.0, "negative": -1.0}


def grade_value(name: Any) -> int | None:
    """1..6 for a grade name (case and spacing forgiven), ``None`` if not on the scale."""
    if not isinstance(name, str):
        return None
    return GRADE_VALUE.get(" ".join(name.lower().split()))


def grade_name(value: int) -> str:
    return SCALE[int(value) - 1]


def _main_qi(seg: dict) -> str:
    qi = seg.get("qi") or ["none"]
    return str(qi[0]) if isinstance(qi, list) else str(qi)


def report_features(
    segments: Iterable[dict],
    grade_qis: dict[str, Sequence[str]],
    parts: Sequence[str],
    shrink: float,
) -> dict[str, list[float]]:
    """Feature vector (in :data:`FEATURES` order) for each graded indicator of one report."""
    usable = [s for s in segments if s.get("part") in parts and _main_qi(s) != "none"]
    values = [SIGN.get(s.get("sentiment"), 0.0) for s in usable]
    overall = float(np.mean(values)) if values else 0.0
    keys = [s for s in usable if s.get("kind") == "key_message"]
    key_negative = (
        sum(s.get("sentiment") in ("negative", "mixed") for s in keys) / len(keys) if keys else 0.0
    )
    out: dict[str, list[float]] = {}
    for grade, qis in grade_qis.items():
        cell = [v for s, v in zip(usable, values, strict=True) if _main_qi(s) in set(qis)]
        qi_net = (sum(cell) + shrink * overall) / (len(cell) + shrink) if (cell or shrink) else 0.0
        out[grade] = [qi_net, overall, key_negative]
    return out


class GradePredictor(ClassifierMixin, BaseEstimator):
    """Ridge regression on the six-point scale with Gaussian grade probabilities.

    A scikit-learn classifier (``clone``, ``get_params`` and the splitters work on
    it): ``X`` holds one row of :data:`FEATURES` per report and graded indicator,
    ``y`` the grades 1..6; it predicts a grade and the probability of each.
    ``alpha`` is the ridge penalty on standardised features; ``min_sigma`` keeps
    the spread from collapsing when the training rows happen to fit well.
    """

    def __init__(self, alpha: float = 1.0, min_sigma: float = 0.5):
        self.alpha = alpha
        self.min_sigma = min_sigma

    def fit(self, X: np.ndarray, y: np.ndarray) -> GradePredictor:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if len(X) < 2:
            raise ValueError("need at least two graded rows to fit")
        self.classes_ = np.arange(1, len(SCALE) + 1)  # every grade, seen or not
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 1e-9, scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        self.intercept_ = float(y.mean())
        gram = Z.T @ Z + self.alpha * np.eye(Z.shape[1])
        self.coef_ = np.linalg.solve(gram, Z.T @ (y - self.intercept_))
        # Leave-one-out residuals from the hat matrix (intercept included in leverage).
        leverage = np.einsum("ij,jk,ik->i", Z, np.linalg.inv(gram), Z) + 1.0 / len(y)
        fitted = self.intercept_ + Z @ self.coef_
        loo = (y - fitted) / np.clip(1.0 - leverage, 1e-6, None)
        self.sigma_ = max(self.min_sigma, float(np.sqrt(np.mean(loo**2))))
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, dtype=float) - self.mean_) / self.scale_
        return self.intercept_ + Z @ self.coef_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, 6) probabilities of Unsatisfactory .. Excellent."""
        mu = self.decision_function(X)[:, None]
        edges = np.array([-np.inf, 1.5, 2.5, 3.5, 4.5, 5.5, np.inf])
        cdf = norm.cdf((edges[None, :] - mu) / self.sigma_)
        return np.diff(cdf, axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1) + 1


def quadratic_kappa(y_true: Sequence[int], y_pred: Sequence[int]) -> float | None:
    """Quadratic-weighted Cohen's kappa on the six-point scale (``None`` if undefined)."""
    from sklearn.metrics import cohen_kappa_score

    if len(y_true) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = cohen_kappa_score(y_true, y_pred, labels=list(range(1, 7)), weights="quadratic")
    return None if not np.isfinite(kappa) else round(float(kappa), 4)


def agreement(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if len(t) == 0:
        return {"n": 0, "exact": None, "within_one": None, "qwk": None}
    return {
        "n": int(len(t)),
        "exact": round(float(np.mean(t == p)), 4),
        "within_one": round(float(np.mean(np.abs(t - p) <= 1)), 4),
        "qwk": quadratic_kappa(t.tolist(), p.tolist()),
    }


def leave_one_report_out(
    X: np.ndarray, y: np.ndarray, groups: Sequence[str], alpha: float, min_sigma: float
) -> dict[str, Any]:
    """Predict each report's grades from a model fitted on the other reports.

    The baseline predicts, for each held-out report, the most common grade of
    the other reports (ties to the lower grade), the fair "majority class" rate.
    """
    X, y, groups = np.asarray(X, float), np.asarray(y, int), np.asarray(groups)
    pred = np.zeros(len(y), dtype=int)
    proba = np.zeros((len(y), 6))
    baseline = np.zeros(len(y), dtype=int)
    for train, test in LeaveOneGroupOut().split(X, y, groups=groups):
        if len(train) < 2:
            raise ValueError("need at least two other graded rows for leave-one-report-out")
        model = GradePredictor(alpha=alpha, min_sigma=min_sigma).fit(X[train], y[train])
        proba[test] = model.predict_proba(X[test])
        pred[test] = proba[test].argmax(axis=1) + 1
        counts = np.bincount(y[train], minlength=7)
        baseline[test] = int(np.argmax(counts))
    overall_majority = np.bincount(y, minlength=7)
    return {
        "pred": pred,
        "proba": proba,
        "metrics": {
            **agreement(y, pred),
            "n_reports": len(set(groups.tolist())),
            "majority_rate": round(float(overall_majority.max() / len(y)), 4),
            "majority_grade": grade_name(int(np.argmax(overall_majority))),
            "baseline_loro": agreement(y, baseline),
        },
    }
