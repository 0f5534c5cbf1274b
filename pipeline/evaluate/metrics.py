"""Figures of the classifiers: what the model card, the metrics file and the held-out
command report.

Scores are computed on labelled (evaluative) sentences only; the neutral sentences
taken from the unlabelled sections are scored separately (how often they come out
neutral), since telling the introduction from a finding is easy and would flatter
the figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from pipeline.core.schema import QI_CODES, SENTIMENTS, qi_area


def labelled_indices(rows: Sequence[dict]) -> np.ndarray:
    """Positions of the hand-labelled rows, the only ones any figure is computed on
    (the neutral sentences of the unlabelled sections, ``source`` "context", would
    flatter them: see the module docstring)."""
    return np.array([i for i, r in enumerate(rows) if r.get("source") != "context"],
                    dtype=int)


def sentiment_metrics(true: Sequence[str], probs: np.ndarray) -> dict[str, Any]:
    pred = [SENTIMENTS[i] for i in probs.argmax(axis=1)]
    present = [c for c in SENTIMENTS if c in set(true)]
    per_class = f1_score(true, pred, labels=present, average=None, zero_division=0)
    return {
        "macro_f1": float(np.mean(per_class)) if present else 0.0,
        "accuracy": float(accuracy_score(true, pred)) if len(true) else 0.0,
        "f1": {c: float(f) for c, f in zip(present, per_class, strict=True)},
        "support": {c: int(sum(t == c for t in true)) for c in present},
    }


def qi_hits(codes: Sequence[Sequence[str]], probs: np.ndarray) -> dict[str, np.ndarray]:
    """Per segment, 1.0 where the prediction counts as right: top-1 and top-3 on the main
    code, top-1 among any annotator code, the main code's area."""
    order = np.argsort(-probs, axis=1)
    pred = [QI_CODES[i] for i in order[:, 0]]
    main = [c[0] for c in codes]
    top3 = [{QI_CODES[j] for j in row[:3]} for row in order]
    return {name: np.array(values, dtype=float) for name, values in (
        ("top1", [p == m for p, m in zip(pred, main, strict=True)]),
        ("top3", [m in t for m, t in zip(main, top3, strict=True)]),
        ("top1_any", [p in c for p, c in zip(pred, codes, strict=True)]),
        ("area", [qi_area(p) == qi_area(m) for p, m in zip(pred, main, strict=True)]),
    )}


def qi_metrics(codes: Sequence[Sequence[str]], probs: np.ndarray) -> dict[str, Any]:
    """top-1 / top-3 on the main code, top-1 among any annotator code, area, macro-F1."""
    if not len(codes):
        return {k: 0.0 for k in ("top1", "top3", "top1_any", "area", "macro_f1")}
    pred = [QI_CODES[i] for i in probs.argmax(axis=1)]
    main = [c[0] for c in codes]
    return {
        **{name: float(hit.mean()) for name, hit in qi_hits(codes, probs).items()},
        "macro_f1": float(f1_score(main, pred, labels=sorted(set(main)), average="macro",
                                   zero_division=0)),
    }


def score(rows: list[dict], sent: np.ndarray, qi: np.ndarray) -> dict[str, Any]:
    """Scores on labelled rows, plus how often held-out context sentences came out neutral."""
    idx = labelled_indices(rows)
    labelled = np.zeros(len(rows), dtype=bool)
    labelled[idx] = True
    out = {
        "sentiment": sentiment_metrics([rows[i]["sentiment"] for i in idx], sent[idx]),
        "qi": qi_metrics([rows[i]["qi"] for i in idx], qi[idx]),
    }
    ctx = np.flatnonzero(~labelled)
    if len(ctx):
        out["context_neutral_rate"] = float(np.mean(
            sent[ctx].argmax(axis=1) == SENTIMENTS.index("neutral")))
    return out


def _macro_f1(true: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes present in ``true`` (as ``sentiment_metrics``), from
    integer labels: fast enough to run a thousand times."""
    cm = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    present = support > 0
    denom = support + predicted
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0


def bootstrap_intervals(
    rows: list[dict], sent: np.ndarray, qi: np.ndarray, n_boot: int = 1000,
    level: float = 0.95, seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Percentile intervals of the headline figures over resampled labelled sentences.

    Why: the evaluation is deterministic, so the spread across seeds is zero and says
    nothing about how far a figure could move on another set of sentences. With eight
    neutral sentences a single one moves sentiment macro-F1 by about 0.015; the
    interval shows how much of a gap to a goal is measurement.
    """
    idx = labelled_indices(rows)
    if not len(idx):
        return {}
    true_s = np.array([SENTIMENTS.index(rows[i]["sentiment"]) for i in idx])
    pred_s = sent[idx].argmax(axis=1)
    hit = {
        "sentiment_accuracy": (pred_s == true_s).astype(float),
        **{f"qi_{name}": values
           for name, values in qi_hits([rows[i]["qi"] for i in idx], qi[idx]).items()},
    }
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"sentiment_macro_f1": [], **{k: [] for k in hit}}
    for _ in range(n_boot):
        pick = rng.integers(0, len(idx), len(idx))
        draws["sentiment_macro_f1"].append(
            _macro_f1(true_s[pick], pred_s[pick], len(SENTIMENTS)))
        for name, values in hit.items():
            draws[name].append(float(values[pick].mean()))
    tail = (1 - level) / 2 * 100
    return {name: {"low": round(float(np.percentile(v, tail)), 4),
                   "high": round(float(np.percentile(v, 100 - tail)), 4)}
            for name, v in draws.items()}


def per_report(rows: list[dict], sent: np.ndarray, qi: np.ndarray) -> dict[str, Any]:
    groups = np.array([r["report_id"] for r in rows])
    out = {}
    for name in sorted(set(groups)):
        idx = np.flatnonzero(groups == name)
        s = score([rows[i] for i in idx], sent[idx], qi[idx])
        out[name] = {
            "sentiment_macro_f1": s["sentiment"]["macro_f1"],
            "sentiment_accuracy": s["sentiment"]["accuracy"],
            "qi_top1": s["qi"]["top1"],
            "qi_area": s["qi"]["area"],
        }
    return out


HEADLINE = (
    ("sentiment", "macro_f1"), ("sentiment", "accuracy"),
    ("qi", "top1"), ("qi", "top3"), ("qi", "top1_any"), ("qi", "area"), ("qi", "macro_f1"),
)


def headline(scores: dict[str, Any]) -> dict[str, float]:
    """The headline figures of one predictor's ``score``, flat, rounded to 4 places."""
    return {f"{a}_{b}": round(scores[a][b], 4) for a, b in HEADLINE}


def second_code_metrics(
    codes: Sequence[Sequence[str]], probs: np.ndarray, threshold: float
) -> dict[str, float]:
    """How often a listed second code is one the annotator gave (precision), and how
    many of the annotator's two-code segments got a correct second code (recall)."""
    order = np.argsort(-probs, axis=1)
    listed = correct = found = 0
    two = sum(len(gold) > 1 for gold in codes)
    for i, gold in enumerate(codes):
        first, second = QI_CODES[order[i, 0]], QI_CODES[order[i, 1]]
        if probs[i, order[i, 1]] < threshold or "none" in (first, second):
            continue
        listed += 1
        hit = first in gold and second in gold
        correct += hit
        found += hit and len(gold) > 1
    return {
        "listed": listed,
        "precision": round(correct / listed, 4) if listed else 0.0,
        "recall": round(found / two, 4) if two else 0.0,
    }


def paired_gaps(metrics: dict[str, Any], model: str, baseline: str) -> dict[str, Any]:
    """Model minus baseline per held-out report: the mean gap and its spread over reports."""
    out = {}
    a, b = metrics[model]["per_report"], metrics[baseline]["per_report"]
    for key in ("sentiment_macro_f1", "sentiment_accuracy", "qi_top1", "qi_area"):
        gaps = np.array([a[r][key] - b[r][key] for r in a])
        out[key] = {"mean": round(float(gaps.mean()), 4), "std": round(float(gaps.std()), 4),
                    "min": round(float(gaps.min()), 4)}
    return out


def confusion_rows(actual: Sequence[str], predicted: Sequence[str]) -> list[dict[str, str]]:
    """One row per sentence, the layout DVC's confusion template reads."""
    return [{"actual": a, "predicted": p} for a, p in zip(actual, predicted, strict=True)]


def expected_calibration_error(probs: np.ndarray, true: list[str], bins: int = 10) -> float:
    """Mean gap between confidence and accuracy over confidence bins, weighted by size."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.array([SENTIMENTS.index(t) for t in true])
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        members = (confidence > lo) & (confidence <= hi)
        if members.any():
            total += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return round(float(total), 4)


def misreadings(rows: list[dict], sent: np.ndarray, qi: np.ndarray,
                n: int = 6) -> dict[str, list[dict[str, Any]]]:
    """The commonest out-of-report confusions, with how often each happened.

    Why: a user deciding whether to trust a label on real prose needs to know which
    way the model errs (plain description read as praise, a polite shortfall as a
    strength, 5.4 as 5.3), not only how often; the card names these from the
    measurement rather than from memory. ``share`` is the fraction of that true
    class's held-out sentences read as the other.
    """
    idx = labelled_indices(rows)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, true, pred in (
        ("sentiment", [rows[i]["sentiment"] for i in idx],
         [SENTIMENTS[j] for j in sent[idx].argmax(axis=1)]),
        ("qi", [rows[i]["qi"][0] for i in idx], [QI_CODES[j] for j in qi[idx].argmax(axis=1)]),
    ):
        support = Counter(true)
        wrong = Counter((t, p) for t, p in zip(true, pred, strict=True) if t != p)
        out[name] = [{"true": t, "predicted": p, "n": k, "share": round(k / support[t], 3)}
                     for (t, p), k in wrong.most_common(n)]
    return out
