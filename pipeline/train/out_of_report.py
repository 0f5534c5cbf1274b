"""Out-of-report predictions: each report scored by a model fitted on the others.

Why by report: sentences of one report share names, places and phrasing, so a
random split would let a model recognise the report rather than the finding.
``LeaveOneGroupOut`` with the report ids as groups holds each report out in turn.
The train stage fits its temperatures on these predictions and saves them, with
the rows and their sentence vectors, for the evaluate stage to score (and to fit
its baselines on the same folds) without refitting the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import LeaveOneGroupOut

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write
from pipeline.core.log import get_logger, progress
from pipeline.core.schema import QI_CODES, SENTIMENTS
from pipeline.train.model import blend
from pipeline.train.segments import Segments

log = get_logger(__name__)

ROW_FIELDS = ("report_id", "part", "kind", "subsection", "text", "qi", "sentiment", "source")


@dataclass(frozen=True)
class OutOfReport:
    """Probabilities per row: with the rows' context, and with part, kind and
    heading left out of the held-out rows (as bare sentences arrive).

    The regressions' own probabilities are always kept (``regression_sentiment``,
    ``bare_regression_sentiment``), so that each part can be scored alone. With a
    fine-tuned encoder, ``sentiment`` and ``bare_sentiment`` are blends
    (:func:`pipeline.train.model.blend`) of them and the encoder's
    (``finetuned_sentiment``; it reads the words only, so one reading serves both) at
    ``finetune_weight``, which the train stage fits on these parts.
    """

    sentiment: np.ndarray
    qi: np.ndarray
    bare_sentiment: np.ndarray
    bare_qi: np.ndarray
    regression_sentiment: np.ndarray | None = None
    bare_regression_sentiment: np.ndarray | None = None
    finetuned_sentiment: np.ndarray | None = None
    finetune_weight: float = 0.0

    def reblended(self, weight: float) -> OutOfReport:
        """The same predictions with the fine-tuned encoder at ``weight``."""
        if self.finetuned_sentiment is None:
            raise ValueError("these out-of-report predictions have no fine-tuned encoder")
        return replace(
            self, finetune_weight=float(weight),
            sentiment=blend(self.regression_sentiment, self.finetuned_sentiment, weight),
            bare_sentiment=blend(self.bare_regression_sentiment, self.finetuned_sentiment,
                                 weight))


PARTS = ("regression_sentiment", "bare_regression_sentiment", "finetuned_sentiment")


def predict_out_of_report(estimator: BaseEstimator, X: Segments, y: np.ndarray) -> OutOfReport:
    """Both kinds of out-of-report probabilities, one fit per held-out report.

    The same fold model scores the held-out rows twice, with and without their
    context, so the second reading costs no fit; its fine-tuned encoder reads
    them once.
    """
    n = len(X)
    weight = float(getattr(estimator, "finetune_weight", 0))
    out = {name: np.zeros((n, len(SENTIMENTS))) for name in PARTS}
    out.update({name: np.zeros((n, len(QI_CODES))) for name in ("qi", "bare_qi")})
    splitter = LeaveOneGroupOut()
    folds = splitter.split(X, y, groups=X.groups)
    for train, test in progress(folds, "out-of-report folds",
                                total=splitter.get_n_splits(groups=X.groups)):
        model = clone(estimator).fit(X[train], y[train])
        out["regression_sentiment"][test], ft, out["qi"][test] = model.predict_parts(X[test])
        if ft is not None:
            out["finetuned_sentiment"][test] = ft
        out["bare_regression_sentiment"][test], _, out["bare_qi"][test] = model.predict_parts(
            X[test].without_context(), finetuned=False)
        log.debug("held out %s (%d rows)", X.groups[test[0]], len(test))
    if not weight:
        out["finetuned_sentiment"] = None
    oof = OutOfReport(sentiment=out["regression_sentiment"], qi=out["qi"],
                      bare_sentiment=out["bare_regression_sentiment"], bare_qi=out["bare_qi"],
                      **{k: out[k] for k in PARTS})
    return oof.reblended(weight) if weight else oof


def save_out_of_report(path: Path, X: Segments, y: np.ndarray, oof: OutOfReport) -> None:
    """The predictions with their rows (labels included) and the rows' text vectors,
    all the evaluate stage needs; numpy arrays and strings only (loaded without pickle)."""
    rows = [json.dumps({**{k: r.get(k) for k in ROW_FIELDS},
                        "sentiment": label.sentiment, "qi": list(label.qi)})
            for r, label in zip(X.rows, y, strict=True)]
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(
            fh, rows=np.array(rows, dtype=str), text_vectors=X.vectors["text"],
            sentiment=oof.sentiment, qi=oof.qi, bare_sentiment=oof.bare_sentiment,
            bare_qi=oof.bare_qi, finetune_weight=np.array(oof.finetune_weight),
            **{k: getattr(oof, k) for k in PARTS if getattr(oof, k) is not None})


def load_out_of_report(path: Path) -> tuple[list[dict[str, Any]], np.ndarray, OutOfReport]:
    """(rows, their text vectors, the predictions) as ``save_out_of_report`` wrote them."""
    try:
        with np.load(path, allow_pickle=False) as data:
            rows = [json.loads(r) for r in data["rows"]]
            vectors = data["text_vectors"]
            oof = OutOfReport(*(data[k] for k in (
                "sentiment", "qi", "bare_sentiment", "bare_qi")),
                **{k: data[k] for k in PARTS if k in data.files},
                finetune_weight=float(data["finetune_weight"]) if "finetune_weight"
                in data.files else 0.0)
    except FileNotFoundError:
        raise InputError(path, "no out-of-report predictions: train with more than one "
                               "report and without --no-evaluate") from None
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"not an out-of-report predictions file ({err})") from None
    return rows, vectors, oof

