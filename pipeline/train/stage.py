"""Stage ``train``: fit the QI and sentiment classifiers, evaluate them, write the models.

Reads the label files (plus neutral sentences from the fictional sources'
unlabelled sections), measures the model and two baselines leave-one-report-out,
then fits on everything and saves the models (skops + manifest), the metrics,
confusion-matrix plot data and the model card.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write, write_json
from pipeline.core.schema import QI_CODES, SENTIMENTS, qi_area
from pipeline.embed.encoders import check_name
from pipeline.evaluate.protocol import (
    BASELINES,
    INTERVAL_LEVEL,
    INTERVAL_RESAMPLES,
    Predictor,
    bootstrap_intervals,
    confusion_rows,
    evaluate_all,
    headline,
    loro_predictions,
    paired_gaps,
    score,
    second_code_metrics,
    without_context,
)
from pipeline.train.card import render_card
from pipeline.train.data import read_labels, source_neutrals, text_key
from pipeline.train.model import SegmentClassifier, fit_temperature, softmax
from pipeline.train.persist import save_models
from pipeline.train.vectors import Encode, row_vectors

DEFAULTS: dict[str, Any] = {
    "seed": 0,  # fine-tuning seed of the final model
    "eval_seeds": [0, 1, 2],  # one leave-one-report-out run per seed
    "C_sentiment": 10.0,
    "C_qi": 3.0,
    "second_code_weight": 0.5,  # training weight of an annotator's second QI code
    "area_smoothing": 0.2,  # label smoothing spread over the main code's QI area
    "second_code_threshold": 0.35,  # probability a second QI code needs to be listed
    "context_neutrals": True,  # add introduction/context/what-happens-next as neutral/none
    "context_weight": 1.0,  # sample weight of those sentences
    "sources_dir": "data/sources",
    "calibrate": True,  # temperature scaling on report-grouped internal CV
    "neutral_prior": 0.0,  # expected neutral share in evaluative parts; 0 = no prior shift
    "stack": True,  # second sentiment stage over neighbours' and clauses' first-stage scores
    "bare_model": True,  # a second model, trained without part/kind/heading, for rows lacking them
    "encoder": "mpnet",  # sentence encoder of both models: mpnet or minilm (pipeline.encoders)
    "finetune_steps": 0,  # contrastive fine-tuning steps for the final model; 0 = frozen
    "finetune_batch_size": 32,
    "finetune_lr": 3.0e-5,
    "finetune_frozen_layers": 3,
    "eval_finetune_steps": 0,  # fine-tuning steps inside each evaluation fold; 0 = frozen
    "embedding_cache": "",  # optional .npz cache of the frozen encoder's vectors
}


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULTS)
    for key, value in (params or {}).items():
        if key not in DEFAULTS:
            raise InputError("params", f"unknown parameter train.{key}")
        default = DEFAULTS[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise InputError("params", f"train.{key} must be {type(default).__name__}, "
                                       f"got {value!r}")
        merged[key] = value
    if not merged["eval_seeds"] or not all(isinstance(s, int) for s in merged["eval_seeds"]):
        raise InputError("params", "train.eval_seeds must be a non-empty list of integers")
    check_name(merged["encoder"], "train.encoder")
    return merged


def make_classifier(params: dict[str, Any], calibrate: bool | None = None) -> SegmentClassifier:
    return SegmentClassifier(
        C_sentiment=params["C_sentiment"],
        C_qi=params["C_qi"],
        second_code_weight=params["second_code_weight"],
        area_smoothing=params["area_smoothing"],
        second_code_threshold=params["second_code_threshold"],
        context_weight=params["context_weight"],
        calibrate=params["calibrate"] if calibrate is None else calibrate,
        neutral_prior=params["neutral_prior"],
        stack=params["stack"],
        bare_model=params["bare_model"],
    )


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


def frozen_encoder(params: dict[str, Any]) -> tuple[Encode, Callable[[], None]]:
    """The configured packaged encoder, through the embedding cache when one is set."""
    from pipeline.embed.stage import EmbeddingCache

    cache = EmbeddingCache(params["embedding_cache"] or None, params["encoder"])
    return cache, cache.save


def _finetune(rows: list[dict], params: dict[str, Any], steps: int, seed: int):
    from pipeline.embed.encoders import model_path
    from pipeline.train.finetune import finetune_encoder

    return finetune_encoder(
        model_path(params["encoder"]),
        [r["text"] for r in rows],
        [r["sentiment"] for r in rows],
        [r["qi"][0] for r in rows],
        steps=steps,
        batch_size=params["finetune_batch_size"],
        lr=params["finetune_lr"],
        frozen_layers=params["finetune_frozen_layers"],
        seed=seed,
    )


def model_predictor(params: dict[str, Any], finetune_steps: int) -> Predictor:
    """The model as a fold predictor; fine-tunes inside the fold when asked to.

    Each fold's fitted model is kept (with the tuned vectors of its held-out
    sentences, not the tuned encoder), so that scoring the same fold's held-out
    sentences a second time (without their context) fits nothing again.
    """
    fitted: dict[tuple, tuple[SegmentClassifier, dict[str, np.ndarray]]] = {}

    def predict(train_rows, train_vecs, test_rows, test_vecs, seed):
        key = (seed, len(train_rows), tuple(sorted({r["report_id"] for r in train_rows})))
        if key not in fitted:
            tuned: dict[str, np.ndarray] = {}
            if finetune_steps > 0:
                from pipeline.train.finetune import encode_with

                encoder = _finetune(train_rows, params, finetune_steps, seed)
                train_vecs = {**train_vecs, "text_ft": encode_with(
                    encoder, [r["text"] for r in train_rows])}
                texts = [r["text"] for r in test_rows]
                tuned = dict(zip(texts, encode_with(encoder, texts), strict=True))
            fitted[key] = make_classifier(params, calibrate=False).fit(
                train_rows, train_vecs), tuned
        clf, tuned = fitted[key]
        if tuned:
            test_vecs = {**test_vecs, "text_ft": np.stack([tuned[r["text"]] for r in test_rows])}
        return clf.predict_proba(test_rows, test_vecs)

    return predict


def calibration(
    rows: list[dict], probs: tuple[np.ndarray, np.ndarray], params: dict[str, Any]
) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """Temperatures fitted on the out-of-report predictions, and what they do there."""
    if not params["calibrate"]:
        return None, {"calibrated": False}
    sent, qi = (np.log(np.clip(p, 1e-12, None)) for p in probs)
    t_sent = fit_temperature(sent, np.array([SENTIMENTS.index(r["sentiment"]) for r in rows]))
    t_qi = fit_temperature(qi, np.array([QI_CODES.index(r["qi"][0]) for r in rows]))
    labelled = [i for i, r in enumerate(rows) if r.get("source") != "context"]
    qi_cal = softmax(qi[labelled] / t_qi)
    return (t_sent, t_qi), {
        "sentiment_temperature": round(t_sent, 4),
        "qi_temperature": round(t_qi, 4),
        "sentiment_ece": expected_calibration_error(
            softmax(sent[labelled] / t_sent), [rows[i]["sentiment"] for i in labelled]),
        "second_code": second_code_metrics(
            [rows[i]["qi"] for i in labelled], qi_cal, params["second_code_threshold"]),
    }


def expected_calibration_error(probs: np.ndarray, true: list[str], bins: int = 10) -> float:
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.array([SENTIMENTS.index(t) for t in true])
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        members = (confidence > lo) & (confidence <= hi)
        if members.any():
            total += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return round(float(total), 4)


def write_confusions(
    plots_dir: Path, rows: list[dict], probs: tuple[np.ndarray, np.ndarray]
) -> list[Path]:
    idx = [i for i, r in enumerate(rows) if r.get("source") != "context"]
    sent, qi = probs
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


def _log(message: str) -> None:
    print(f"train: {message}", file=sys.stderr, flush=True)


def train(
    label_paths: list[Path],
    out_dir: Path,
    params: dict,
    metrics_path: Path | None = None,
    plots_dir: Path | None = None,
    evaluate: bool = True,
) -> dict:
    """Fit, evaluate and save both classifiers; returns the metrics dict."""
    params = _params(params)
    started = time.monotonic()
    rows = training_rows(label_paths, params)
    labelled = [r for r in rows if r["source"] == "label"]
    reports = sorted({r["report_id"] for r in rows})
    _log(f"{len(labelled)} labelled sentences from {len(reports)} reports, "
         f"{len(rows) - len(labelled)} neutral context sentences")
    encode, save_cache = frozen_encoder(params)
    vectors = row_vectors(rows, encode)
    save_cache()

    metrics: dict[str, Any] = {
        "protocol": "leave-one-report-out; scores on held-out labelled sentences, pooled",
        "n_labelled": len(labelled),
        "n_context_neutral": len(rows) - len(labelled),
        "n_reports": len(reports),
        "seeds": params["eval_seeds"],
        "model_encoder": "fine-tuned in each fold" if params["eval_finetune_steps"] > 0
        else f"frozen {params['encoder']} (the final model's fine-tuned sentiment vectors are "
             "not re-trained per fold)" if params["finetune_steps"] > 0
        else f"frozen {params['encoder']}",
    }
    first_probs = None
    temperatures = bare_temperatures = None
    if evaluate and len(reports) >= 2:
        predictors = {"model": model_predictor(params, params["eval_finetune_steps"]),
                      **BASELINES}
        seeded = ["model"] if params["eval_finetune_steps"] > 0 else []
        results, probs = evaluate_all(
            rows, vectors, predictors, params["eval_seeds"], seeded, _log)
        metrics.update(results)
        metrics["headline"] = {name: headline(results[name]) for name in predictors}
        metrics["gap_vs_baselines"] = {b: paired_gaps(results, "model", b) for b in BASELINES}
        first_probs = probs["model"]
        metrics["intervals"] = {
            "level": INTERVAL_LEVEL, "resamples": INTERVAL_RESAMPLES,
            "model": bootstrap_intervals(rows, *first_probs, seed=params["seed"])}
        temperatures, metrics["calibration"] = calibration(rows, first_probs, params)
        bare = loro_predictions(rows, vectors, without_context(predictors["model"]),
                                params["eval_seeds"][0])
        metrics["model_without_context"] = score(rows, *bare)
        bare_temperatures, _ = calibration(rows, bare, params)
        _log(f"model without part, kind and heading: "
             f"{metrics['model_without_context']['sentiment']['macro_f1']:.3f} sentiment "
             f"macro-F1, {metrics['model_without_context']['qi']['top1']:.3f} QI top-1")
    elif evaluate:
        metrics["note"] = "leave-one-report-out needs labels from at least two reports"
    eval_seconds = time.monotonic() - started

    fit_started = time.monotonic()
    encoder = None
    if params["finetune_steps"] > 0:
        from pipeline.train.finetune import encode_with

        _log(f"fine-tuning the encoder ({params['finetune_steps']} steps)")
        encoder = _finetune(rows, params, params["finetune_steps"], params["seed"])
        vectors["text_ft"] = encode_with(encoder, [r["text"] for r in rows])
    if temperatures is not None:  # measured out of report above: no internal CV needed
        classifier = make_classifier(params, calibrate=False).fit(rows, vectors)
        classifier.set_temperatures(*temperatures, bare=bare_temperatures)
    else:
        classifier = make_classifier(params).fit(rows, vectors)
    fit_seconds = time.monotonic() - fit_started
    info = {
        "n_labelled": len(labelled),
        "n_context_neutral": len(rows) - len(labelled),
        "reports": reports,
        "params": params,
        "training_text_keys": sorted({text_key(r["text"]) for r in rows}),
        "sentiment_temperature": round(classifier.sentiment_temperature_, 4),
        "qi_temperature": round(classifier.qi_temperature_, 4),
        "bare_temperatures": None if classifier.bare_model_ is None else [
            round(classifier.bare_model_.sentiment_temperature_, 4),
            round(classifier.bare_model_.qi_temperature_, 4)],
        "calibration": "none" if not params["calibrate"] else
        "leave-one-report-out predictions of this run" if temperatures is not None else
        "report-grouped internal cross-validation",
        "finetuned_encoder": encoder is not None,
        "fit_seconds": round(fit_seconds, 1),
        "evaluate_seconds": round(eval_seconds, 1),
    }
    save_models(Path(out_dir), classifier, info, encoder)
    _log(f"models written to {out_dir} (fit {fit_seconds:.0f} s, evaluation {eval_seconds:.0f} s)")

    if metrics_path is not None:
        write_json(metrics_path, metrics)
    if plots_dir is not None and first_probs is not None:
        write_confusions(Path(plots_dir), rows, first_probs)
    with atomic_write(Path(out_dir) / "MODEL_CARD.md") as fh:
        fh.write(render_card(metrics, info))
    return metrics
