"""The two estimators: sentiment and QI, both logistic regressions over shared features.

Why logistic regression: 1,200 labelled sentences from six reports is little
data; a linear model over good features (sentence embeddings, context, cue
words, TF-IDF) generalises better to the unseen real wording than anything with
more capacity, trains in seconds on two cores and gives probabilities that a
single temperature calibrates.

Inputs are :class:`~pipeline.train.segments.Segments`: rows (dicts with ``text``
and the optional context fields, in file order) and their precomputed sentence
vectors. The encoder lives outside the estimator so that its vectors can be
cached (the embed stage) without touching this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import LeaveOneGroupOut
from threadpoolctl import threadpool_limits

from pipeline.core.schema import QI_CODES, SENTIMENTS, qi_area
from pipeline.train.features import (
    EVALUATIVE_PARTS,
    dense_blocks,
    neighbour_index,
    order_rows,
    part_group,
)
from pipeline.train.segments import Label, Segments

SENTIMENT_BLOCKS = ("text", "cues", "kind", "neighbours")
NEUTRAL = SENTIMENTS.index("neutral")
POSITIVE = SENTIMENTS.index("positive")
NEGATIVE = SENTIMENTS.index("negative")
MIN_STACK_REPORTS = 3  # the second stage needs out-of-report first-stage predictions
QI_BLOCKS = ("text", "part", "kind", "heading", "neighbours", "block", "grade_hint")


def lbfgs(fun, x0: np.ndarray, max_iter: int, tol: float, memory: int = 10):
    """Minimise a smooth convex ``fun`` (returning value and gradient) by L-BFGS.

    Why not scipy's L-BFGS-B: its bound handling costs about as much per step as
    the objective itself at 150,000 parameters; this two-loop version with an
    Armijo backtracking search is plain vector arithmetic. Stops when a step
    lowers the objective by less than ``tol`` relative to its value.
    """
    x = x0.copy()
    f, g = fun(x)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        d = -g
        alphas = []
        for s_k, y_k in zip(reversed(s_hist), reversed(y_hist), strict=True):
            a = (s_k @ d) / (y_k @ s_k)
            alphas.append(a)
            d = d - a * y_k
        if s_hist:
            d *= (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ y_hist[-1])
        else:
            d /= max(np.linalg.norm(g), 1e-12)
        for (s_k, y_k), a in zip(zip(s_hist, y_hist, strict=True), reversed(alphas),
                                 strict=True):
            b = (y_k @ d) / (y_k @ s_k)
            d = d + (a - b) * s_k
        slope = g @ d
        if slope >= 0:  # not a descent direction: forget the curvature pairs
            s_hist.clear()
            y_hist.clear()
            d = -g / max(np.linalg.norm(g), 1e-12)
            slope = g @ d
        step = 1.0
        while True:
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_k, y_k = x_new - x, g_new - g
        if s_k @ y_k > 1e-12:
            s_hist.append(s_k)
            y_hist.append(y_k)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        decrease = f - f_new
        x, f, g = x_new, f_new, g_new
        if decrease <= tol * max(abs(f), 1.0) or step < 1e-10:
            break
    return x, iteration


class SoftmaxRegression:
    """Multinomial logistic regression on soft targets, fitted with L-BFGS.

    Why not scikit-learn's: the QI targets are soft (second code, area smoothing),
    which scikit-learn can only take as duplicated rows, three times the data; and
    the features are a dense block (sentence vectors) beside a sparse one (TF-IDF),
    which are far cheaper multiplied apart than as one sparse matrix. The objective
    is scikit-learn's: ``0.5 * ||W||^2 + C * sum_i w_i * CE(t_i, softmax(x_i W + b))``.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 500, tol: float = 1e-6):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, dense: np.ndarray, words, targets: np.ndarray, sample_weight=None):
        targets = np.asarray(targets, dtype=np.float64)
        weight = np.ones(len(targets)) if sample_weight is None else np.asarray(sample_weight)
        self.classes_ = np.flatnonzero(targets.sum(axis=0) > 0)
        t = targets[:, self.classes_] * weight[:, None]
        row_mass = t.sum(axis=1, keepdims=True)
        dense = np.asarray(dense, dtype=np.float64)
        words = sparse.csr_matrix(words, dtype=np.float64)
        n_dense, n_words, k = dense.shape[1], words.shape[1], len(self.classes_)
        size = (n_dense + n_words) * k

        def unpack(theta):
            wd = theta[: n_dense * k].reshape(n_dense, k)
            ws = theta[n_dense * k: size].reshape(n_words, k)
            return wd, ws, theta[size:]

        def objective(theta):
            wd, ws, b = unpack(theta)
            z = dense @ wd + words @ ws + b
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            loss = -self.C * float((t * log_p).sum())
            loss += 0.5 * float((wd * wd).sum() + (ws * ws).sum())
            g = self.C * (np.exp(log_p) * row_mass - t)
            grad = np.concatenate([
                (dense.T @ g + wd).ravel(), (np.asarray(words.T @ g) + ws).ravel(),
                g.sum(axis=0),
            ])
            return loss, grad

        # One BLAS thread: vector-sized BLAS calls on a busy two-core machine run up to
        # 100 times slower with two threads spinning against each other.
        with threadpool_limits(1):
            theta, self.n_iter_ = lbfgs(objective, np.zeros(size + k), self.max_iter, self.tol)
        wd, ws, b = unpack(theta)
        self.coef_dense_, self.coef_words_, self.intercept_ = wd, ws, b
        return self

    def decision_function(self, dense: np.ndarray, words, n_classes: int) -> np.ndarray:
        """Logits for all ``n_classes``; classes never seen in training get ~zero mass."""
        z = np.asarray(dense) @ self.coef_dense_ + words @ self.coef_words_ + self.intercept_
        out = np.full((z.shape[0], n_classes), _ABSENT)
        out[:, self.classes_] = z
        return out


class SegmentClassifier(ClassifierMixin, BaseEstimator):
    """Sentiment (4 classes) and QI (20 codes + none) for report segments.

    A scikit-learn estimator: ``X`` is :class:`~pipeline.train.segments.Segments`
    (rows and their sentence vectors, sliceable by row), ``y`` the rows' labels
    (:func:`~pipeline.train.segments.labels`), so ``clone`` and the model-selection
    splitters work on it. Parameters are plain values; learned state ends in ``_``.

    - ``C_sentiment``, ``C_qi``: inverse regularisation of the two regressions.
    - ``second_code_weight``: weight of an annotator's second QI code as a training
      target (the main code weighs 1).
    - ``area_smoothing``: weight spread over the other codes of the main code's area
      (label smoothing over areas: 5.2 mistaken for 5.3 costs less than for 9.1).
    - ``second_code_threshold``: calibrated probability a second code needs to be
      listed after the main one.
    - ``qi_balance``: each QI training row counts ``(n_main / n_mean) ** -qi_balance``,
      its main code's count in this fit against the mean code's (0: every row
      counts 1; 1: class-balanced). Why: 2.1 is the commonest code (342 of 2,134
      labelled sentences, 3.1 has 11), and the issue saw real sentences on 5.3, 5.4
      and 7.1 pulled toward it; leave-one-report-out, 0.5 raised every QI figure a
      little (main-code top-1 0.836 -> 0.837, macro-F1 0.754 -> 0.756; the model
      without context 0.805 -> 0.809, 0.725 -> 0.736).
    - ``context_weight``: sample weight of the neutral sentences taken from the
      unlabelled sections (rows whose ``source`` is ``context``).
    - ``neutral_prior``: share of neutral sentences expected in the evaluative parts
      (real reports: 2-3%). The training set is 18% neutral because the neutral
      examples come from the introduction and context sections; without the
      correction, findings that read like description (leadership structures,
      what a group does) can come out neutral too often. Applied as a prior shift
      of the neutral logit for segments of known evaluative parts. Off (0) by
      default: on the fictional reports any shift lost more true neutrals than it
      saved false ones.
    - ``bare_model``: also fit a second classifier on the same sentences with their
      part, kind and heading left out, and let it score the segments that arrive
      without a known part (bare sentences, a report of another generation whose
      parts the segmenter does not name). Why: this model leans on where a
      sentence sits, and with those fields missing its leave-one-report-out QI
      top-1 fell from 0.80 to 0.59; trained without them, a model reads the words
      and the neighbouring sentences for what the fields would have told it (0.76).
      Training one model on both forms instead (context dropout) cost 0.014 of
      QI top-1 on the segments that do have the fields.
    - ``stack``: a second sentiment stage (stacked generalisation) that reads, beside
      the first stage's features, the first stage's probabilities for the sentences
      before and after (findings come in runs of one tone: a "however" sentence
      turns against its predecessor) and for the first and last clause of a
      contrastive sentence (a positive clause against a negative one is a mixed
      finding). Its training inputs are out-of-report first-stage predictions, so
      it learns how far to trust them on unseen text. Needs labels from at least
      three reports; with fewer, the first stage alone decides. Neutral keeps the
      first stage's probability: the context features say little about whether a
      sentence evaluates at all, and with a handful of labelled neutrals the
      second stage learned to never predict it.
    - ``finetune_weight``: share of the sentiment probabilities given to MiniLM
      fine-tuned on the training sentences (:mod:`pipeline.train.finetune`), the
      rest the regressions'; 0 fits no such model. Why: the fine-tuned encoder
      reads the inspectorate's polite shortfalls differently from the frozen
      vectors, and its errors are different ones. The bare model shares the
      parent's fine-tuned encoder (it reads only the words), so a fit fine-tunes once.
      ``finetune_epochs`` is its number of passes over the sentences and
      ``finetune_seed`` its seed (initialisation, dropout, batch order). The share in
      use is ``finetune_weight_``: ``finetune_weight`` after ``fit``, and what
      :meth:`set_blend` sets when the train stage fits it on out-of-report
      predictions (:func:`fit_blend_weight`), as it does the temperatures.

    Probabilities come out at temperature 1; the train stage measures one
    temperature per model on out-of-report predictions and sets them with
    :meth:`set_temperatures`, since a fit cannot see its own unseen-text error.
    """

    def __init__(
        self,
        C_sentiment: float = 30.0,
        C_qi: float = 3.0,
        second_code_weight: float = 0.5,
        area_smoothing: float = 0.2,
        second_code_threshold: float = 0.35,
        qi_balance: float = 0.5,
        context_weight: float = 1.0,
        tfidf_min_df: int = 2,
        neutral_prior: float = 0.0,
        stack: bool = True,
        bare_model: bool = True,
        finetune_weight: float = 0.0,
        finetune_epochs: int = 2,
        finetune_seed: int = 0,
        max_iter: int = 500,
    ):
        self.C_sentiment = C_sentiment
        self.C_qi = C_qi
        self.second_code_weight = second_code_weight
        self.area_smoothing = area_smoothing
        self.second_code_threshold = second_code_threshold
        self.qi_balance = qi_balance
        self.context_weight = context_weight
        self.tfidf_min_df = tfidf_min_df
        self.neutral_prior = neutral_prior
        self.stack = stack
        self.bare_model = bare_model
        self.finetune_weight = finetune_weight
        self.finetune_epochs = finetune_epochs
        self.finetune_seed = finetune_seed
        self.max_iter = max_iter

    # --- features ------------------------------------------------------------------

    def _matrices(self, X: Segments):
        """(sentiment dense, QI dense, TF-IDF words) for the segments."""
        blocks = dense_blocks(X.rows, X.vectors["text"], X.vectors["heading"])
        words = self.tfidf_.transform([str(r.get("text") or "") for r in X.rows])
        xs = np.hstack([blocks[b] for b in SENTIMENT_BLOCKS])
        xq = np.hstack([blocks[b] for b in QI_BLOCKS])
        return xs, xq, words

    # --- fitting ---------------------------------------------------------------------

    def fit(self, X: Segments, y: np.ndarray) -> SegmentClassifier:
        """Fit both models (and the bare model, when asked) on segments and labels."""
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} segments, y {len(y)} labels")
        texts = [str(r["text"]) for r in X.rows]
        min_df = self.tfidf_min_df if len(X) >= 20 * self.tfidf_min_df else 1
        self.tfidf_ = TfidfVectorizer(
            ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, lowercase=True
        ).fit(texts)
        xs, xq, words = self._matrices(X)
        targets = self._sentiment_targets(X, y)
        self.neutral_share_ = float(
            targets[:, NEUTRAL].sum() / max(targets.sum(), 1e-12))
        self.sentiment_model_, self.qi_model_ = self._fit_models(X, y, xs, xq, words)
        self.stack_model_ = self._fit_stack(X, y, xs, words)
        self.sentiment_temperature_ = 1.0
        self.qi_temperature_ = 1.0
        self.bare_model_ = None
        if self.bare_model:
            self.bare_model_ = clone(self).set_params(
                bare_model=False, finetune_weight=0.0).fit(X.without_context(), y)
        self.finetuned_ = None
        self.finetune_weight_ = float(self.finetune_weight)
        if self.finetune_weight > 0:
            from pipeline.train.finetune import FinetunedSentiment

            self.finetuned_ = FinetunedSentiment(
                epochs=self.finetune_epochs, seed=self.finetune_seed).fit(
                texts, [SENTIMENTS.index(label.sentiment) for label in y])
        return self

    def __getstate__(self) -> dict[str, Any]:
        """The state skops saves: all but the fine-tuned encoder, a torch model that
        :mod:`pipeline.train.persist` saves beside it as safetensors and sets back
        with :meth:`set_finetuned` on loading."""
        state = dict(super().__getstate__())  # a copy: object's is the live __dict__
        state.pop("finetuned_", None)
        return state

    def set_blend(self, weight: float) -> SegmentClassifier:
        """The fine-tuned encoder's share of the sentiment probabilities, measured on
        out-of-report predictions (the train stage's); the bare model follows it."""
        if not 0 <= weight < 1:
            raise ValueError(f"a blend weight lies in [0, 1), not {weight}")
        if weight and not self.finetune_weight:
            raise ValueError("this model was fitted without a fine-tuned encoder")
        self.finetune_weight_ = float(weight)
        return self

    def set_finetuned(self, model: Any) -> SegmentClassifier:
        """Attach a loaded fine-tuned encoder (the one this model was fitted with)."""
        self.finetuned_ = model
        return self

    # --- the stacked sentiment stage ---------------------------------------------------

    def _stage1_probs(self, model: SoftmaxRegression, X: Segments, xs, words) -> np.ndarray:
        """First-stage probabilities for the sentence and for its first and last clause,
        side by side (3 x 4 columns)."""
        width = X.vectors["text"].shape[1]
        out = []
        for key in ("text", "clause_first", "clause_last"):
            x = xs.copy()
            x[:, :width] = X.vectors[key]  # the text block comes first in SENTIMENT_BLOCKS
            out.append(softmax(self._prior_shift(
                X.rows, model.decision_function(x, words, len(SENTIMENTS)))))
        return np.hstack(out)

    def _fit_stack(self, X: Segments, y, xs, words) -> SoftmaxRegression | None:
        """The second stage, trained on leave-one-report-out first-stage predictions.

        The folds share this fit's TF-IDF vocabulary and feature matrices (only the
        first-stage regression is refitted per fold), which keeps the stage cheap.
        """
        groups = X.groups
        if not self.stack or len(set(groups)) < MIN_STACK_REPORTS:
            return None
        first = np.zeros((len(X), 3 * len(SENTIMENTS)))
        for kept, held in LeaveOneGroupOut().split(xs, groups=groups):
            targets = self._sentiment_targets(X[kept], y[kept])
            if (targets.sum(axis=0) > 0).sum() < 2:
                return None
            model = SoftmaxRegression(C=self.C_sentiment, max_iter=self.max_iter).fit(
                xs[kept], words[kept], targets)
            first[held] = self._stage1_probs(model, X[held], xs[held], words[held])
        x2 = np.hstack([xs, stack_features(X.rows, first)])
        return SoftmaxRegression(C=self.C_sentiment, max_iter=self.max_iter).fit(
            x2, words, self._sentiment_targets(X, y))

    def _sentiment_logits(self, X: Segments, xs, words):
        """Log-probabilities of the four classes (before temperature)."""
        first = self._stage1_probs(self.sentiment_model_, X, xs, words)
        p1 = first[:, : len(SENTIMENTS)]
        if self.stack_model_ is None:
            return np.log(np.clip(p1, 1e-12, None))
        x2 = np.hstack([xs, stack_features(X.rows, first)])
        p2 = softmax(self.stack_model_.decision_function(x2, words, len(SENTIMENTS)))
        p2[:, NEUTRAL] = 0.0
        p2 = p2 / np.clip(p2.sum(axis=1, keepdims=True), 1e-12, None) * (1 - p1[:, [NEUTRAL]])
        p2[:, NEUTRAL] = p1[:, NEUTRAL]
        return np.log(np.clip(p2, 1e-12, None))

    def set_temperatures(self, sentiment: float, qi: float,
                         bare: tuple[float, float] | None = None) -> SegmentClassifier:
        """Temperatures measured on out-of-report predictions (the train stage's);
        ``bare`` are the bare model's, measured on segments without context."""
        self.sentiment_temperature_ = float(sentiment)
        self.qi_temperature_ = float(qi)
        if bare is not None and self.bare_model_ is not None:
            self.bare_model_.set_temperatures(*bare)
        return self

    def _sentiment_targets(self, X: Segments, y) -> np.ndarray:
        targets = np.zeros((len(y), len(SENTIMENTS)))
        for i, (row, label) in enumerate(zip(X.rows, y, strict=True)):
            weight = self.context_weight if row.get("source") == "context" else 1.0
            targets[i, SENTIMENTS.index(label.sentiment)] = weight
        return targets

    def _qi_targets(self, X: Segments, y) -> np.ndarray:
        """Soft targets: main code 1, later codes ``second_code_weight``, area smoothing."""
        area_codes: dict[str, list[int]] = {}
        for j, code in enumerate(QI_CODES):
            area_codes.setdefault(qi_area(code), []).append(j)
        targets = np.zeros((len(y), len(QI_CODES)))
        for i, (row, label) in enumerate(zip(X.rows, y, strict=True)):
            qi = [QI_CODES.index(c) for c in label.qi]
            targets[i, qi[0]] = 1.0
            for j in qi[1:]:
                targets[i, j] += self.second_code_weight
            siblings = [j for j in area_codes[qi_area(label.qi[0])] if targets[i, j] == 0]
            if self.area_smoothing > 0 and siblings:
                targets[i, siblings] = self.area_smoothing / len(siblings)
            if row.get("source") == "context":
                targets[i] *= self.context_weight
        return targets * self._qi_balance_weights(y)[:, None]

    def _qi_balance_weights(self, y) -> np.ndarray:
        """Per row, its main code's count against the mean code's, to ``-qi_balance``."""
        main = [label.qi[0] for label in y]
        if not self.qi_balance or not main:
            return np.ones(len(main))
        codes, counts = np.unique(main, return_counts=True)
        ratio = dict(zip(codes.tolist(), (counts / counts.mean()).tolist(), strict=True))
        return np.array([ratio[code] ** -self.qi_balance for code in main])

    def _fit_models(self, X, y, xs, xq, words) -> tuple[SoftmaxRegression, SoftmaxRegression]:
        sent_targets = self._sentiment_targets(X, y)
        if (sent_targets.sum(axis=0) > 0).sum() < 2:
            raise ValueError("sentiment training data needs at least two classes")
        qi_targets = self._qi_targets(X, y)
        if (qi_targets.sum(axis=0) > 0).sum() < 2:
            raise ValueError("QI training data needs at least two codes")
        sent = SoftmaxRegression(C=self.C_sentiment, max_iter=self.max_iter).fit(
            xs, words, sent_targets)
        qi = SoftmaxRegression(C=self.C_qi, max_iter=self.max_iter).fit(xq, words, qi_targets)
        return sent, qi

    def _prior_shift(self, rows: Sequence[dict[str, Any]], logits: np.ndarray) -> np.ndarray:
        """Lower the neutral logit of evaluative-part segments to the expected prior."""
        share = self.neutral_share_
        if not self.neutral_prior or share <= 0:
            return logits
        shift = np.log(self.neutral_prior / (1 - self.neutral_prior)) - np.log(
            share / (1 - share))
        evaluative = np.array([part_group(r.get("part")) in EVALUATIVE_PARTS for r in rows])
        out = logits.copy()
        out[evaluative, NEUTRAL] += shift
        return out

    # --- prediction --------------------------------------------------------------------

    def predict_proba(self, X: Segments) -> list[np.ndarray]:
        """[sentiment probabilities in SENTIMENTS order, QI probabilities in QI_CODES
        order] (scikit-learn's layout for several outputs: one array per output).

        Segments without a known part go to the bare model, when there is one.
        """
        weight = self._blend_weight()
        tuned = self.finetuned_proba(X) if weight else None
        return self._route(X, tuned, weight)

    def predict_parts(
        self, X: Segments, finetuned: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(the regressions' sentiment probabilities, the fine-tuned encoder's or None,
        QI probabilities), each after this model's temperatures: what
        :meth:`predict_proba` blends, kept apart so that the blend weight can be
        measured on out-of-report predictions. ``finetuned=False`` skips the encoder
        (a second reading of the same texts would give the same probabilities)."""
        sent, qi = self._route(X, None, 0.0)
        return sent, self.finetuned_proba(X) if finetuned else None, qi

    def _route(self, X: Segments, tuned: np.ndarray | None, weight: float) -> list[np.ndarray]:
        """Segments without a known part to the bare model, the rest to this one."""
        if not len(X):
            return [np.zeros((0, len(SENTIMENTS))), np.zeros((0, len(QI_CODES)))]
        bare = np.array([not has_context(r) for r in X.rows])
        if self.bare_model_ is None or not bare.any():
            return self._predict_proba(X, tuned, weight)
        sent = np.zeros((len(X), len(SENTIMENTS)))
        qi = np.zeros((len(X), len(QI_CODES)))
        for mask, model in ((bare, self.bare_model_), (~bare, self)):
            idx = np.flatnonzero(mask)
            if len(idx):
                sent[idx], qi[idx] = model._predict_proba(
                    X[idx], None if tuned is None else tuned[idx], weight)
        return [sent, qi]

    def _blend_weight(self) -> float:
        return float(getattr(self, "finetune_weight_", self.finetune_weight))

    def finetuned_proba(self, X: Segments) -> np.ndarray | None:
        """The fine-tuned encoder's sentiment probabilities, or None without one."""
        if not self.finetune_weight:
            return None
        model = getattr(self, "finetuned_", None)
        if model is None:
            raise ValueError("this model blends a fine-tuned encoder that was not loaded "
                             "with it (load models with pipeline.train.persist.load_models)")
        return model.predict_proba([str(r.get("text") or "") for r in X.rows])

    def _predict_proba(self, X: Segments, tuned: np.ndarray | None = None,
                       weight: float = 0.0) -> list[np.ndarray]:
        """Probabilities after temperature; ``tuned``, the fine-tuned encoder's
        sentiment probabilities, is blended in at ``weight`` before it (the
        temperature is fitted on the blend). The bare model gets its parent's."""
        xs, xq, words = self._matrices(X)
        sent = self._sentiment_logits(X, xs, words)
        if tuned is not None:
            sent = np.log(np.clip(blend(np.exp(sent), tuned, weight), 1e-12, None))
        qi = self.qi_model_.decision_function(xq, words, len(QI_CODES))
        return [softmax(sent / self.sentiment_temperature_), softmax(qi / self.qi_temperature_)]

    def predict(self, X: Segments) -> np.ndarray:
        """Labels in y's form: sentiment, and the QI codes (a second code only where
        its calibrated probability reaches ``second_code_threshold``)."""
        sent, qi = self.predict_proba(X)
        out = np.empty(len(X), dtype=object)
        for i, (s, q) in enumerate(zip(sent, qi, strict=True)):
            found = labels_from_scores(s, q, self.second_code_threshold)
            out[i] = Label(found["sentiment"], tuple(found["qi"]))
        return out

    def score(self, X: Segments, y: np.ndarray, sample_weight=None) -> float:
        """Mean of sentiment accuracy and main-QI accuracy (scikit-learn's ``score``
        is one number; these are the two headline hits)."""
        pred = self.predict(X)
        sent = np.array([p.sentiment == t.sentiment for p, t in zip(pred, y, strict=True)])
        qi = np.array([p.qi[0] == t.qi[0] for p, t in zip(pred, y, strict=True)])
        return float(np.average((sent + qi) / 2, weights=sample_weight))


def labels_from_scores(
    sent: np.ndarray, qi: np.ndarray, second_code_threshold: float
) -> dict[str, Any]:
    order = np.argsort(-qi)
    codes = [QI_CODES[order[0]]]
    second = QI_CODES[order[1]]
    if qi[order[1]] >= second_code_threshold and "none" not in (codes[0], second):
        codes.append(second)
    return {
        "qi": codes,
        "qi_scores": {c: round(float(p), 4) for c, p in zip(QI_CODES, qi, strict=True)},
        "sentiment": SENTIMENTS[int(np.argmax(sent))],
        "sentiment_scores": {c: round(float(p), 4) for c, p in zip(SENTIMENTS, sent,
                                                                     strict=True)},
    }


_ABSENT = -30.0  # logit of a class never seen in training: probability ~0, never NaN


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, true: np.ndarray) -> float:
    def nll(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(true)), true], 1e-12, None))))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def blend(regression: np.ndarray, tuned: np.ndarray | None, weight: float) -> np.ndarray:
    """The sentiment probabilities ``SegmentClassifier`` gives at temperature 1: the
    fine-tuned encoder's at ``weight``, the regressions' at the rest."""
    if tuned is None or not weight:
        return regression
    return (1 - weight) * regression + weight * tuned


#: Shares of the fine-tuned encoder that :func:`fit_blend_weight` tries.
BLEND_GRID = tuple(round(0.05 * i, 2) for i in range(20))


def fit_blend_weight(regression: np.ndarray, tuned: np.ndarray, true: np.ndarray,
                     grid: Sequence[float] = BLEND_GRID) -> tuple[float, dict[float, float]]:
    """(the share of ``tuned`` whose blend has the lowest log-loss once its temperature
    is fitted, that loss for every share tried).

    Why log-loss and a grid: the weight is fitted as the temperature is, on
    out-of-report predictions, by the proper score the temperature already uses;
    accuracy moves in steps of one sentence and would pick among ties by chance.
    A grid of 0.05 keeps the choice readable and the same on every machine.
    """
    losses = {}
    rows = np.arange(len(true))
    for w in grid:
        logits = np.log(np.clip(blend(regression, tuned, w), 1e-12, None))
        p = softmax(logits / fit_temperature(logits, true))
        losses[float(w)] = float(-np.mean(np.log(np.clip(p[rows, true], 1e-12, None))))
    best = min(losses, key=lambda w: (round(losses[w], 6), w))
    return best, losses


def has_context(row: dict[str, Any]) -> bool:
    """Whether the row's part is one the context features know.

    The part decides, not the kind: without it the first model's QI top-1 fell to
    0.58 even with the kind known, against 0.76 from the bare model, while
    sentiment accuracy was the same from either.
    """
    return bool(part_group(row.get("part")))


def stack_features(rows: Sequence[dict[str, Any]], first: np.ndarray) -> np.ndarray:
    """Second-stage inputs from first-stage probabilities (``_stage1_probs`` layout):
    the previous and next sentence's, each clause's when the sentence has two, and
    the clash between them (positive then negative, or the reverse)."""
    k = len(SENTIMENTS)
    sentence, first_clause, last_clause = first[:, :k], first[:, k: 2 * k], first[:, 2 * k:]
    prev, nxt = neighbour_index(order_rows(rows))
    out = np.zeros((len(rows), 4 * k + 2))
    for i in range(len(rows)):
        if prev[i] >= 0:
            out[i, :k] = sentence[prev[i]]
        if nxt[i] >= 0:
            out[i, k: 2 * k] = sentence[nxt[i]]
    split = np.any(np.abs(first_clause - last_clause) > 1e-9, axis=1).astype(float)[:, None]
    out[:, 2 * k: 3 * k] = split * first_clause
    out[:, 3 * k: 4 * k] = split * last_clause
    clash = (first_clause[:, POSITIVE] * last_clause[:, NEGATIVE]
             + first_clause[:, NEGATIVE] * last_clause[:, POSITIVE])
    out[:, 4 * k] = split[:, 0] * clash
    out[:, 4 * k + 1] = split[:, 0]
    return out
