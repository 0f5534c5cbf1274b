"""Leave-one-report-out evaluation of the model and two baselines.

Why by report: sentences of one report share names, places and phrasing, so a
random split would let a model recognise the report rather than the finding.
Each report is held out in turn; the model never sees any of its sentences.
Scores are computed on the held-out report's labelled (evaluative) sentences,
pooled over the six folds; the neutral sentences taken from the unlabelled
sections train every model but are scored separately, since telling the
introduction from a finding is easy and would flatter the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from pipeline.core.schema import QI_CODES, SENTIMENTS, qi_area
from pipeline.train.model import softmax, strip_context
from pipeline.train.vectors import subset

Predictor = Callable[[list[dict], dict, list[dict], dict, int], tuple[np.ndarray, np.ndarray]]


# --- baselines ----------------------------------------------------------------------

def _full_logits(model: LogisticRegression, x, classes: Sequence[str]) -> np.ndarray:
    """Decision values laid out in ``classes`` order, whatever subset the model saw."""
    raw = model.decision_function(x)
    if raw.ndim == 1:  # binary: one column for classes_[1]
        raw = np.column_stack([-raw / 2, raw / 2])
    out = np.full((raw.shape[0], len(classes)), -30.0)
    for j, name in enumerate(model.classes_):
        out[:, classes.index(name)] = raw[:, j]
    return out


def _fit_predict_lr(x_train, y_train, x_test, classes: Sequence[str], C: float = 1.0):
    with threadpool_limits(1):  # see SoftmaxRegression.fit
        model = LogisticRegression(C=C, max_iter=3000).fit(x_train, y_train)
    return softmax(_full_logits(model, x_test, classes))


def tfidf_baseline(train_rows, train_vecs, test_rows, test_vecs, seed):
    """TF-IDF (words and bigrams) + logistic regression, text only."""
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform([r["text"] for r in train_rows])
    x_test = vec.transform([r["text"] for r in test_rows])
    return _baseline_heads(train_rows, x_train, x_test)


def embedding_baseline(train_rows, train_vecs, test_rows, test_vecs, seed):
    """Frozen sentence embeddings (the model's own encoder) + logistic regression, text
    only: what the encoder alone gives, so the gap to the model is what the context,
    cue and stacked features add."""
    return _baseline_heads(train_rows, train_vecs["text"], test_vecs["text"])


def _baseline_heads(train_rows, x_train, x_test):
    sent = _fit_predict_lr(x_train, [r["sentiment"] for r in train_rows], x_test, SENTIMENTS)
    qi = _fit_predict_lr(x_train, [r["qi"][0] for r in train_rows], x_test, QI_CODES)
    return sent, qi


def without_context(predictor: Predictor) -> Predictor:
    """The predictor scoring held-out sentences whose part, kind and heading are unknown.

    Why: label files and segments may lack these fields (a user's bare sentences, a
    report of another generation whose parts the segmenter does not name), and the
    models lean on them. Training is unchanged; only the held-out rows lose them,
    and with them the heading vector. Order, and so the neighbours, is kept.
    """

    def predict(train_rows, train_vecs, test_rows, test_vecs, seed):
        return predictor(train_rows, train_vecs, *strip_context(test_rows, test_vecs), seed)

    return predict


BASELINES: dict[str, Predictor] = {"tfidf_lr": tfidf_baseline, "embedding_lr": embedding_baseline}


# --- protocol -------------------------------------------------------------------------

def loro_predictions(
    rows: list[dict[str, Any]],
    vectors: dict[str, np.ndarray],
    predictor: Predictor,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-report probabilities for every row (sentiment, QI)."""
    groups = np.array([r["report_id"] for r in rows])
    sent = np.zeros((len(rows), len(SENTIMENTS)))
    qi = np.zeros((len(rows), len(QI_CODES)))
    for name in sorted(set(groups)):
        held = groups == name
        train_idx, test_idx = np.flatnonzero(~held), np.flatnonzero(held)
        s, q = predictor(
            [rows[i] for i in train_idx], subset(vectors, train_idx),
            [rows[i] for i in test_idx], subset(vectors, test_idx), seed,
        )
        sent[test_idx], qi[test_idx] = s, q
    return sent, qi


# --- metrics --------------------------------------------------------------------------

def sentiment_metrics(true: Sequence[str], probs: np.ndarray) -> dict[str, Any]:
    pred = [SENTIMENTS[i] for i in probs.argmax(axis=1)]
    present = [c for c in SENTIMENTS if c in set(true)]
    per_class = f1_score(true, pred, labels=present, average=None, zero_division=0)
    return {
        "macro_f1": float(np.mean(per_class)) if present else 0.0,
        "accuracy": float(accuracy_score(true, pred)) if len(true) else 0.0,
        "f1": {c: float(f) for c, f in zip(present, per_class, strict=True)},
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
    labelled = np.array([r.get("source") != "context" for r in rows])
    idx = np.flatnonzero(labelled)
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


INTERVAL_LEVEL = 0.95  # the bootstrap intervals the train stage and `evaluate` report
INTERVAL_RESAMPLES = 1000


def bootstrap_intervals(
    rows: list[dict], sent: np.ndarray, qi: np.ndarray, n_boot: int = INTERVAL_RESAMPLES,
    level: float = INTERVAL_LEVEL, seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Percentile intervals of the headline figures over resampled labelled sentences.

    Why: the evaluation is deterministic, so the spread across seeds is zero and says
    nothing about how far a figure could move on another set of sentences. With eight
    neutral sentences a single one moves sentiment macro-F1 by about 0.015; the
    interval shows how much of a gap to a goal is measurement.
    """
    idx = np.array([i for i, r in enumerate(rows) if r.get("source") != "context"])
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


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (population std) of every number across seed runs."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: summarise([r[k] for r in runs]) for k in first}
    values = np.asarray(runs, dtype=float)
    return {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}


HEADLINE = (
    ("sentiment", "macro_f1"), ("sentiment", "accuracy"),
    ("qi", "top1"), ("qi", "top3"), ("qi", "top1_any"), ("qi", "area"), ("qi", "macro_f1"),
)


def headline(summary: dict[str, Any]) -> dict[str, float]:
    return {f"{a}_{b}": summary[a][b]["mean"] for a, b in HEADLINE}


def evaluate_all(
    rows: list[dict[str, Any]],
    vectors: dict[str, np.ndarray],
    predictors: dict[str, Predictor],
    seeds: Sequence[int],
    seeded: Sequence[str] = (),
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Metrics per predictor (mean/std over seeds, per report for the first seed) and the
    first seed's out-of-report probabilities (for confusion matrices and calibration).

    A predictor not named in ``seeded`` gives the same output for every seed (the
    logistic regressions are deterministic), so it is run once and its single result
    stands for every seed: the spread is then truly zero, not estimated.
    """
    metrics: dict[str, Any] = {}
    first_probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, predictor in predictors.items():
        runs = []
        for k, seed in enumerate(seeds if name in seeded else seeds[:1]):
            sent, qi = loro_predictions(rows, vectors, predictor, seed)
            runs.append(score(rows, sent, qi))
            if k == 0:
                first_probs[name] = (sent, qi)
                reports = per_report(rows, sent, qi)
            log(f"{name} seed {seed}: {runs[-1]['sentiment']['macro_f1']:.3f} sentiment "
                f"macro-F1, {runs[-1]['qi']['top1']:.3f} QI top-1")
        if name not in seeded:
            runs = runs * len(seeds)
        metrics[name] = {**summarise(runs), "per_report": reports,
                         "seed_dependent": name in seeded}
    return metrics, first_probs


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


def stack(*mats) -> sparse.csr_matrix:
    return sparse.hstack(mats, format="csr")
