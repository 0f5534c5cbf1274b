"""Stage ``evaluate``: leave-one-report-out figures of the trained classifiers.

Reads the model folder (the classifier and the out-of-report predictions the
train stage made for calibration) and the labels it was trained on; fits the
cheap baselines on the same folds; writes the metrics (``dvc metrics``), the
confusion-matrix plot data and the model card. Nothing here refits the models,
so an evaluation setting (the bootstrap, the baselines) changes in seconds, and
after a labels change ``dvc repro`` retrains and ``dvc metrics diff`` shows the
difference.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write
from pipeline.core.log import get_logger
from pipeline.core.params import resolve
from pipeline.core.schema import QI_CODES, SENTIMENTS, qi_area
from pipeline.evaluate.metrics import (
    bootstrap_intervals,
    confusion_rows,
    expected_calibration_error,
    headline,
    labelled_indices,
    misreadings,
    paired_gaps,
    score,
    second_code_metrics,
    sentiment_metrics,
)
from pipeline.evaluate.protocol import BASELINES, baseline_figures, figures
from pipeline.train.data import read_labels, text_key
from pipeline.train.model import SegmentClassifier, softmax
from pipeline.train.out_of_report import OutOfReport, load_out_of_report
from pipeline.train.persist import OUT_OF_REPORT_FILE

log = get_logger(__name__)

DEFAULTS: dict[str, Any] = {
    "seed": 0,  # of the bootstrap resampling
    "interval_level": 0.95,  # bootstrap intervals of the headline figures
    "interval_resamples": 1000,
    "baselines": ["tfidf_lr", "embedding_lr"],  # fitted leave-one-report-out beside the model
}
PROTOCOL = "leave-one-report-out; scores on held-out labelled sentences, pooled"


def settings(params: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS overlaid with ``params`` (the one merger), then the checks it cannot make."""
    merged = resolve("evaluate", DEFAULTS, params)
    unknown = [b for b in merged["baselines"] if b not in BASELINES]
    if unknown:
        raise InputError("params", f"unknown evaluate.baselines {unknown} "
                                   f"(known: {', '.join(BASELINES)})")
    if not 0 < merged["interval_level"] < 1 or merged["interval_resamples"] < 1:
        raise InputError("params", "evaluate.interval_level must lie between 0 and 1 and "
                                   "evaluate.interval_resamples be at least 1")
    return merged


def check_same_labels(label_paths: Sequence[Path], rows: list[dict[str, Any]],
                      where: Path) -> None:
    """Refuse labels other than those the models were trained on: their out-of-report
    predictions would belong to other sentences."""
    given = [text_key(r["text"]) for r in read_labels(list(label_paths))]
    trained = [text_key(r["text"]) for r in rows if r.get("source") == "label"]
    if given != trained:
        raise InputError(where, "these out-of-report predictions are of other labels than "
                                "those given: retrain on them first (inspections train)")


def calibration(
    rows: list[dict[str, Any]], oof: OutOfReport, classifier: SegmentClassifier,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The temperatures and what they do on the out-of-report predictions."""
    if not params.get("calibrate"):
        return {"calibrated": False}
    t_sent, t_qi = classifier.sentiment_temperature_, classifier.qi_temperature_
    labelled = labelled_indices(rows)
    sent = softmax(np.log(np.clip(oof.sentiment[labelled], 1e-12, None)) / t_sent)
    qi = softmax(np.log(np.clip(oof.qi[labelled], 1e-12, None)) / t_qi)
    return {
        "sentiment_temperature": round(t_sent, 4),
        "qi_temperature": round(t_qi, 4),
        "sentiment_ece": expected_calibration_error(
            sent, [rows[i]["sentiment"] for i in labelled]),
        "second_code": second_code_metrics(
            [rows[i]["qi"] for i in labelled], qi, params["second_code_threshold"]),
    }


def sentiment_parts(rows: list[dict[str, Any]], oof: OutOfReport) -> dict[str, Any] | None:
    """What the regressions and the fine-tuned encoder read alone, beside their blend,
    pooled and per held-out report (sentiment accuracy): the blend weight is fitted on
    these predictions, so this is where to see what it buys and where. None without a
    fine-tuned encoder."""
    if oof.finetuned_sentiment is None:
        return None
    labelled = labelled_indices(rows)
    true = np.array([SENTIMENTS.index(rows[i]["sentiment"]) for i in labelled])
    reports = np.array([rows[i]["report_id"] for i in labelled])
    out: dict[str, Any] = {"finetune_weight": oof.finetune_weight}
    for name, probs in (("regressions", oof.regression_sentiment),
                        ("finetuned", oof.finetuned_sentiment), ("blend", oof.sentiment)):
        found = sentiment_metrics([rows[i]["sentiment"] for i in labelled], probs[labelled])
        hits = probs[labelled].argmax(axis=1) == true
        out[name] = {"accuracy": found["accuracy"], "macro_f1": found["macro_f1"],
                     "per_report_accuracy": {r: float(hits[reports == r].mean())
                                             for r in sorted(set(reports))}}
    return out


def evaluate_out_of_report(
    model_dir: Path, classifier: SegmentClassifier, info: dict[str, Any],
    params: dict[str, Any], label_paths: Sequence[Path] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], OutOfReport]:
    """(metrics, rows, predictions) of the models' out-of-report predictions, with
    the baselines fitted on the same folds."""
    rows, vectors, oof = load_out_of_report(Path(model_dir) / OUT_OF_REPORT_FILE)
    if label_paths:
        check_same_labels(label_paths, rows, Path(model_dir) / OUT_OF_REPORT_FILE)
    train_params = info.get("params", {})
    n_labelled = len(labelled_indices(rows))
    model = figures(rows, oof.sentiment, oof.qi)
    log.info("model: %.3f sentiment macro-F1, %.3f QI top-1",
             model["sentiment"]["macro_f1"], model["qi"]["top1"])
    results = {"model": model, **baseline_figures(params["baselines"], rows, vectors)}
    bare = score(rows, oof.bare_sentiment, oof.bare_qi)
    log.info("model without part, kind and heading: %.3f sentiment macro-F1, %.3f QI top-1",
             bare["sentiment"]["macro_f1"], bare["qi"]["top1"])
    metrics = {
        "protocol": PROTOCOL,
        "n_labelled": n_labelled,
        "n_context_neutral": len(rows) - n_labelled,
        "n_reports": len({r["report_id"] for r in rows}),
        "model_encoder": f"frozen {train_params.get('encoder')}",
        **results,
        "headline": {name: headline(values) for name, values in results.items()},
        "gap_vs_baselines": {b: paired_gaps(results, "model", b) for b in params["baselines"]},
        "intervals": {
            "level": params["interval_level"], "resamples": params["interval_resamples"],
            "model": bootstrap_intervals(rows, oof.sentiment, oof.qi,
                                         n_boot=params["interval_resamples"],
                                         level=params["interval_level"], seed=params["seed"])},
        "calibration": calibration(rows, oof, classifier, train_params),
        "model_without_context": bare,
        **({"sentiment_parts": parts} if (parts := sentiment_parts(rows, oof)) else {}),
        "misreadings": misreadings(rows, oof.sentiment, oof.qi),
    }
    return metrics, rows, oof


def write_confusions(plots_dir: Path, rows: list[dict], sent: np.ndarray,
                     qi: np.ndarray) -> list[Path]:
    """Sentiment and QI-area confusion data (one row per labelled sentence) for DVC plots."""
    idx = labelled_indices(rows)
    sent_pred = [SENTIMENTS[j] for j in sent[idx].argmax(axis=1)]
    qi_pred = [QI_CODES[j] for j in qi[idx].argmax(axis=1)]
    outputs = {
        "sentiment_confusion.csv": confusion_rows([rows[i]["sentiment"] for i in idx], sent_pred),
        "qi_area_confusion.csv": confusion_rows(
            [qi_area(rows[i]["qi"][0]) for i in idx], [qi_area(c) for c in qi_pred]),
    }
    paths = []
    for name, table in outputs.items():
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["actual", "predicted"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        path = Path(plots_dir) / name
        with atomic_write(path) as fh:
            fh.write(buffer.getvalue())
        paths.append(path)
    return paths


def run(
    label_paths: Sequence[Path], model_dir: Path, params: dict[str, Any] | None,
    out: Path | None = None, plots_dir: Path | None = None, card: Path | None = None,
    predictions: Path | None = None,
) -> dict[str, Any]:
    """The stage: figures of the models on the labels they were trained on, from the
    train stage's out-of-report predictions; writes what it is given paths for."""
    from pipeline.core.io import write_json, write_jsonl
    from pipeline.evaluate.card import render_card
    from pipeline.evaluate.held_out import scored_rows
    from pipeline.train.persist import load_models

    params = settings(params)
    classifier, info = load_models(model_dir)
    metrics, rows, oof = evaluate_out_of_report(model_dir, classifier, info, params, label_paths)
    if out:
        write_json(out, metrics)
    if plots_dir:
        write_confusions(plots_dir, rows, oof.sentiment, oof.qi)
    if card:
        with atomic_write(card) as fh:
            fh.write(render_card(metrics, info))
    if predictions:
        write_jsonl(predictions, scored_rows(rows, oof.sentiment, oof.qi))
    return metrics
