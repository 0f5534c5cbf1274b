"""``inspections evaluate`` on held-out labels: score trained classifiers on labelled
sentences they never saw.

Why: the evaluate stage's figures are leave-one-report-out on the fictional reports,
and the question an analyst has is how the models read *their* reports, whose
wording differs. Labelling some sentences of a real report in the training format
and running this gives the same figures as the model card (sentiment macro-F1,
accuracy and per-class F1; QI top-1, top-3, top-1 among the annotator's codes,
area), each with a bootstrap interval, so the gap between fictional and real text
is measured rather than guessed. Labels of a report the models were trained on
are refused: their figures would be in-sample and flatter the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.evaluate.metrics import bootstrap_intervals, per_report, score
from pipeline.train.data import label_files, read_label_file, text_key
from pipeline.train.model import SegmentClassifier
from pipeline.train.segments import encode
from pipeline.train.vectors import Encode


def held_out_labels(paths: Sequence[Path], trained: dict[str, Any]) -> list[dict[str, Any]]:
    """Validated label rows, refusing any the models were trained on.

    ``trained`` is the models' manifest info: the reports they were trained on and
    the keys of their training sentences. A row without ``report_id`` belongs to its
    file (the label reader's rule), so a file named like a training report is refused;
    the sentence keys catch a training report relabelled under another name.
    """
    reports = set(trained.get("reports") or [])
    keys = set(trained.get("training_text_keys") or [])
    rows: list[dict[str, Any]] = []
    for path in label_files(list(paths)):
        file_rows = read_label_file(path)
        seen = sorted({r["report_id"] for r in file_rows} & reports)
        if seen:
            raise InputError(path, f"report {', '.join(seen)} is in the models' training data, "
                                   "so its figures would be in-sample; train without it "
                                   "(inspections train ... --out DIR) to evaluate on it")
        lines = [i for i, r in enumerate(file_rows, 1) if text_key(r["text"]) in keys]
        if lines:
            raise InputError(path, f"{len(lines)} of its sentences are in the models' training "
                                   f"data (first: labelled row {lines[0]}), so their figures "
                                   "would be in-sample")
        rows.extend(file_rows)
    return rows


def confusion(true: Sequence[str], pred: Sequence[str], classes: Sequence[str]) -> dict:
    """``{actual: {predicted: count}}`` over ``classes``, zeros included."""
    counts = Counter(zip(true, pred, strict=True))
    return {a: {p: counts[(a, p)] for p in classes} for a in classes}


def scored_rows(rows: list[dict], sent: np.ndarray, qi: np.ndarray, n_codes: int = 3) -> list:
    """Per sentence: the labels beside the predictions, for reading what was missed."""
    out = []
    for row, s, q in zip(rows, sent, qi, strict=True):
        top = np.argsort(-q)[:n_codes]
        ranked = [QI_CODES[j] for j in top]
        predicted = SENTIMENTS[int(s.argmax())]
        out.append({
            **{k: row.get(k) for k in ("report_id", "part", "kind", "subsection", "text")},
            "sentiment": row["sentiment"],
            "predicted_sentiment": predicted,
            "sentiment_scores": {c: round(float(v), 4) for c, v in zip(SENTIMENTS, s,
                                                                       strict=True)},
            "qi": row["qi"],
            "predicted_qi": ranked,
            "predicted_qi_scores": [round(float(q[j]), 4) for j in top],
            "sentiment_correct": predicted == row["sentiment"],
            "qi_correct": ranked[0] == row["qi"][0],
        })
    return out


def evaluate_held_out(
    rows: list[dict[str, Any]], classifier: SegmentClassifier, info: dict[str, Any],
    encoder: Encode | None = None, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics, per-sentence rows) of the models on labelled ``rows``, in file order (a
    sentence's neighbours are the rows around it). ``encoder`` defaults to the one the
    models were trained with."""
    if not rows:
        raise ValueError("evaluate_held_out() needs labelled rows")
    if encoder is None:
        from pipeline.embed.stage import EmbeddingCache

        params = info["params"]
        encoder = EmbeddingCache(None, params["encoder"],
                                 precision=params.get("encoder_precision", "fp32"))
    sent, qi = classifier.predict_proba(encode(rows, encoder))
    scores = score(rows, sent, qi)
    pred = [SENTIMENTS[i] for i in sent.argmax(axis=1)]
    metrics = {
        "n_sentences": len(rows),
        "reports": dict(sorted(Counter(r["report_id"] for r in rows).items())),
        "labels": {c: n for c in SENTIMENTS if (n := sum(r["sentiment"] == c for r in rows))},
        "models_trained_on": list(info.get("reports") or []),
        "sentiment": scores["sentiment"],
        "qi": scores["qi"],
        "intervals": {"level": level, "resamples": n_boot,
                      **bootstrap_intervals(rows, sent, qi, n_boot=n_boot, level=level,
                                            seed=seed)},
        "per_report": per_report(rows, sent, qi),
        "sentiment_confusion": confusion([r["sentiment"] for r in rows], pred, SENTIMENTS),
    }
    return metrics, scored_rows(rows, sent, qi)


SUMMARY = (
    ("sentiment macro-F1", "sentiment", "macro_f1", "sentiment_macro_f1"),
    ("sentiment accuracy", "sentiment", "accuracy", "sentiment_accuracy"),
    ("QI top-1 (main code)", "qi", "top1", "qi_top1"),
    ("QI top-1 among the annotator's codes", "qi", "top1_any", "qi_top1_any"),
    ("QI area", "qi", "area", "qi_area"),
    ("QI top-3", "qi", "top3", "qi_top3"),
)


def summary_lines(scores: dict[str, Any], band: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, interval) rows for the console table, from ``score``'s figures
    and their bootstrap intervals."""
    out = []
    for name, group, key, interval in SUMMARY:
        low, high = band.get(interval, {}).get("low"), band.get(interval, {}).get("high")
        out.append((name, f"{scores[group][key]:.3f}",
                    f"{low:.3f}-{high:.3f}" if low is not None else ""))
    per_class = ", ".join(f"{c} {f:.2f}" for c, f in scores["sentiment"]["f1"].items())
    out.append(("per-class sentiment F1", per_class, ""))
    return out


def run(
    label_paths: Sequence[Path], model_dir: Path, params: dict[str, Any],
    out: Path | None = None, predictions: Path | None = None,
) -> dict[str, Any]:
    """The command on held-out labels: figures, and what it is given paths for.
    ``params`` are the evaluate stage's settings (the bootstrap's)."""
    from pipeline.core.io import write_json, write_jsonl
    from pipeline.train.persist import load_models

    classifier, info = load_models(model_dir)  # first: a bad model fails before the labels
    rows = held_out_labels(label_paths, info)
    metrics, scored = evaluate_held_out(
        rows, classifier, info, n_boot=params["interval_resamples"],
        level=params["interval_level"], seed=params["seed"])
    if out:
        write_json(out, metrics)
    if predictions:
        write_jsonl(predictions, scored)
    return metrics
