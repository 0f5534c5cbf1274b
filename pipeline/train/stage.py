"""Stage ``train``: fit the QI and sentiment classifiers on the labelled sentences.

Writes the model folder: the fitted classifier (skops), a manifest with checksums
and what it was trained on, and the out-of-report predictions the fit produced
on the way (``out_of_report.npz``). Those predictions are made once, here,
because the temperatures are fitted on them (a model's own training sentences
would make it look sure of itself); the ``evaluate`` stage scores them, beside
its baselines, without refitting anything, so changing an evaluation setting
never retrains the models.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.log import get_logger
from pipeline.core.params import resolve
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.embed.encoders import check_name
from pipeline.train.data import read_labels, source_neutrals, text_key
from pipeline.train.model import SegmentClassifier, fit_blend_weight, fit_temperature
from pipeline.train.out_of_report import OutOfReport, predict_out_of_report, save_out_of_report
from pipeline.train.persist import OUT_OF_REPORT_FILE, save_models
from pipeline.train.segments import Segments, encode, labels

log = get_logger(__name__)


DEFAULTS: dict[str, Any] = {
    "C_sentiment": 30.0,  # chosen leave-one-report-out over all ten reports (3, 10, 30, 100)
    "C_qi": 3.0,
    "second_code_weight": 0.5,  # training weight of an annotator's second QI code
    "area_smoothing": 0.2,  # label smoothing spread over the main code's QI area
    "second_code_threshold": 0.35,  # probability a second QI code needs to be listed
    # QI rows weighted by their main code's frequency ** -qi_balance (0 off, 1 balanced);
    # chosen leave-one-report-out over all ten reports (0, 0.5, 1; benchmarks/
    # classifier_variants.py)
    "qi_balance": 0.5,
    "context_neutrals": True,  # add introduction/context/what-happens-next as neutral/none
    "context_weight": 1.0,  # sample weight of those sentences
    "sources_dir": "data/sources",
    "calibrate": True,  # one temperature per model, fitted on out-of-report predictions
    "neutral_prior": 0.0,  # expected neutral share in evaluative parts; 0 = no prior shift
    "stack": True,  # second sentiment stage over neighbours' and clauses' first-stage scores
    "bare_model": True,  # a second model, trained without part/kind/heading, for rows lacking them
    "encoder": "mpnet",  # sentence encoder of both models: mpnet or minilm (pipeline.embed)
    "embedding_cache": "",  # optional .npz cache of the encoder's vectors
    # fp32, or int8: the encoder's int8-quantised ONNX export (CPU); recorded in the
    # manifest, and classify encodes with the precision the models were trained on
    # int8: cold classification of a 400-sentence report 12.8 s -> 8.4 s on two cores, with
    # leave-one-report-out figures inside fp32's bootstrap intervals (benchmarks/classify_speed.py)
    # where the installed onnxruntime quantises mpnet well; the December 2026 install does
    # not (pipeline.embed.runtime.check_quantized refuses it), so fp32 is the default
    "encoder_precision": "fp32",
    # share of the sentiment probabilities given to MiniLM fine-tuned on the labelled
    # sentences (0: none); about 2 minutes a fine-tuning on two cores, 11 of them here
    "finetune_weight": 0.3,
    # fit that share instead, as the temperatures are: the one whose blend has the lowest
    # log-loss on the out-of-report predictions (finetune_weight is then the share the
    # fold models start at, and the one kept where there are no such predictions)
    "fit_finetune_weight": True,
    "finetune_epochs": 2,
    # its initialisation, dropout and batch order: one seed makes a fit repeatable;
    # another seed shows how far the figures move with the luck of the fine-tuning
    "finetune_seed": 0,
}


def settings(params: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS overlaid with ``params`` (the one merger), then the checks it cannot make."""
    merged = resolve("train", DEFAULTS, params)
    check_name(merged["encoder"], "train.encoder")
    from pipeline.embed.runtime import check_precision

    check_precision(merged["encoder_precision"], "train.encoder_precision")
    if not 0 <= merged["finetune_weight"] < 1:
        raise InputError("params", f"train.finetune_weight must be at least 0 and below 1, "
                                   f"not {merged['finetune_weight']} (0: no fine-tuning)")
    if merged["finetune_epochs"] < 1:
        raise InputError("params", f"train.finetune_epochs must be 1 or more, not "
                                   f"{merged['finetune_epochs']}")
    if merged["finetune_seed"] < 0:
        raise InputError("params", f"train.finetune_seed must be 0 or more, not "
                                   f"{merged['finetune_seed']}")
    if merged["qi_balance"] < 0:
        raise InputError("params", f"train.qi_balance must be 0 or more, not "
                                   f"{merged['qi_balance']} (0: every QI row counts 1)")
    return merged


def make_classifier(params: dict[str, Any]) -> SegmentClassifier:
    """The estimator with the stage's settings (its own defaults for the rest)."""
    names = SegmentClassifier().get_params()
    return SegmentClassifier(**{k: v for k, v in params.items() if k in names})


def training_rows(label_paths: list[Path], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Labelled rows in file order, then the sources' neutral rows (deduplicated)."""
    rows = read_labels([Path(p) for p in label_paths])
    if params["context_neutrals"]:
        sources = Path(params["sources_dir"])
        if not sources.is_dir():
            raise InputError(sources, "sources folder not found (set train.sources_dir, or "
                                      "train.context_neutrals: false)")
        seen = {r["text"] for r in rows}
        for row in source_neutrals(rows, sources):
            if row["text"] not in seen:
                seen.add(row["text"])
                rows.append(row)
    return rows


def frozen_encoder(params: dict[str, Any]):
    """The configured packaged encoder, through the embedding cache when one is set."""
    from pipeline.embed.stage import EmbeddingCache

    return EmbeddingCache(params["embedding_cache"] or None, params["encoder"],
                          precision=params["encoder_precision"])


def sentiment_classes(y: np.ndarray) -> np.ndarray:
    """Class indices (SENTIMENTS order) of the labels' sentiments."""
    return np.array([SENTIMENTS.index(label.sentiment) for label in y])


def temperatures(
    y: np.ndarray, sentiment: np.ndarray, qi: np.ndarray
) -> tuple[float, float]:
    """(sentiment, QI) temperatures that best fit out-of-report probabilities."""
    sent_true = sentiment_classes(y)
    qi_true = np.array([QI_CODES.index(label.qi[0]) for label in y])
    return (fit_temperature(np.log(np.clip(sentiment, 1e-12, None)), sent_true),
            fit_temperature(np.log(np.clip(qi, 1e-12, None)), qi_true))


def fitted_blend(oof: OutOfReport, y: np.ndarray, params: dict[str, Any]) -> OutOfReport:
    """The predictions reblended at the fine-tuned encoder's fitted share when
    ``train.fit_finetune_weight`` asks for it; as they are otherwise."""
    if not params["fit_finetune_weight"] or oof.finetuned_sentiment is None:
        return oof
    weight, _ = fit_blend_weight(oof.regression_sentiment, oof.finetuned_sentiment,
                                 sentiment_classes(y))
    log.info("fine-tuned encoder's share of the sentiment probabilities, fitted: %.2f", weight)
    return oof.reblended(weight)


def fit(
    X: Segments, y: np.ndarray, params: dict[str, Any], out_of_report: bool = True
) -> tuple[SegmentClassifier, OutOfReport | None]:
    """The final classifier and, when asked or needed for calibration, the
    out-of-report predictions, with the temperatures fitted on them."""
    estimator = make_classifier(params)
    oof = None
    if (out_of_report or params["calibrate"]) and len(set(X.groups)) >= 2:
        oof = predict_out_of_report(estimator, X, y)
    classifier = estimator.fit(X, y)
    if oof is not None:
        oof = fitted_blend(oof, y, params)
        classifier.set_blend(oof.finetune_weight)
    if params["calibrate"] and oof is not None:
        bare = temperatures(y, oof.bare_sentiment, oof.bare_qi) if params["bare_model"] else None
        classifier.set_temperatures(*temperatures(y, oof.sentiment, oof.qi), bare=bare)
    return classifier, oof


def train(
    label_paths: list[Path], out_dir: Path, params: dict[str, Any] | None,
    evaluate: bool = True,
) -> SegmentClassifier:
    """Fit and save both classifiers. ``evaluate=False`` skips the out-of-report
    predictions (which the evaluate stage scores) unless calibration needs them."""
    params = settings(params)
    started = time.monotonic()
    rows = training_rows(label_paths, params)
    n_labelled = sum(r["source"] == "label" for r in rows)
    reports = sorted({r["report_id"] for r in rows})
    log.info("%d labelled sentences from %d reports, %d neutral context sentences",
             n_labelled, len(reports), len(rows) - n_labelled)
    encoder = frozen_encoder(params)
    X, y = encode(rows, encoder), labels(rows)
    encoder.save()
    classifier, oof = fit(X, y, params, out_of_report=evaluate)
    calibrated = params["calibrate"] and oof is not None
    info = {
        "n_labelled": n_labelled,
        "n_context_neutral": len(rows) - n_labelled,
        "reports": reports,
        "params": params,
        "training_text_keys": sorted({text_key(r["text"]) for r in rows}),
        "finetune_weight": classifier.finetune_weight_,
        "sentiment_temperature": round(classifier.sentiment_temperature_, 4),
        "qi_temperature": round(classifier.qi_temperature_, 4),
        "bare_temperatures": None if classifier.bare_model_ is None else [
            round(classifier.bare_model_.sentiment_temperature_, 4),
            round(classifier.bare_model_.qi_temperature_, 4)],
        "calibration": "leave-one-report-out predictions of this run" if calibrated
        else "none",
    }
    out_dir = Path(out_dir)
    files = {}
    if oof is not None:
        files[OUT_OF_REPORT_FILE] = lambda path: save_out_of_report(path, X, y, oof)
    save_models(out_dir, classifier, info, files)
    # The time goes to the log, not the manifest: identical training data and
    # parameters give a byte-identical model folder.
    log.info("models written to %s (%.0f s)", out_dir, time.monotonic() - started)
    return classifier
