"""Unit tests of the QI and sentiment classifiers, on small inputs and a stand-in encoder.

The stand-in encoder hashes words into 64 dimensions: it keeps these tests fast
and independent of the MiniLM model (tests/test_classifier_slow.py uses that).
"""

from __future__ import annotations

import hashlib
import json
import re
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from pipeline.classify.stage import PREDICTED_FIELDS, classify, load_models
from pipeline.core.errors import InputError
from pipeline.core.schema import QI_CODES, SENTIMENTS, qi_area
from pipeline.evaluate.metrics import (
    bootstrap_intervals,
    qi_metrics,
    second_code_metrics,
    sentiment_metrics,
)
from pipeline.train import features as F
from pipeline.train.data import (
    is_neutral_lead_in,
    read_label_file,
    read_labels,
    source_neutrals,
)
from pipeline.train.finetune import FinetunedSentiment
from pipeline.train.model import SegmentClassifier, SoftmaxRegression, lbfgs
from pipeline.train.persist import load_classifier
from pipeline.train.segments import Segments, encode, labels
from pipeline.train.vectors import row_vectors

REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "data" / "labels"


def hashing_encoder(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


def small_rows(per_report: int = 40, reports: tuple[str, ...] = ("f01", "f02", "f03")):
    rows = []
    for rid in reports:
        rows.extend(read_label_file(LABELS / f"{rid}.labels.jsonl")[:per_report])
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = {"report_id": "r1", "part": "q1", "kind": "body", "subsection": "Assessing risk",
        "text": "Assessments were of a high standard.", "qi": ["5.2"], "sentiment": "positive"}


# --- label files ------------------------------------------------------------------------

def test_label_file_reads_and_normalises(tmp_path):
    path = write_jsonl(tmp_path / "x.labels.jsonl", [
        GOOD, {"text": "Few plans were reviewed.", "qi": "5.3, 6.4", "sentiment": "-"}])
    rows = read_label_file(path)
    assert rows[0]["qi"] == ["5.2"] and rows[0]["report_id"] == "r1"
    assert rows[1]["qi"] == ["5.3", "6.4"] and rows[1]["sentiment"] == "negative"
    assert rows[1]["report_id"] == "x"  # missing report id: grouped by file
    assert rows[1]["part"] is None


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2 is not valid JSON"),
    (json.dumps({**GOOD, "qi": ["5.9"]}), "line 2: unknown QI code '5.9'"),
    (json.dumps({**GOOD, "sentiment": "happy"}), "line 2: unknown sentiment 'happy'"),
    (json.dumps({**GOOD, "text": ""}), "line 2: 'text' must be a non-empty string"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "qi"}), "line 2: needs both"),
    ("[1, 2]", "line 2 is not a JSON object"),
])
def test_broken_label_file_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.labels.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_labels([path])
    assert str(path) in str(err.value) and message in str(err.value)


def test_label_folder_without_files_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no \\*.jsonl"):
        read_labels([tmp_path])


def test_training_sentences_are_cut_by_the_production_splitter():
    import pipeline.core.sentences
    import pipeline.train.data

    split_sentences = pipeline.train.data.split_sentences
    assert split_sentences is pipeline.core.sentences.split_sentences
    text = ("Young people were told about Who Cares? Scotland and its advocacy. "
            "Some services, e.g. CAMHS, had waits. It was 90% or more.")
    assert split_sentences(text) == [
        "Young people were told about Who Cares? Scotland and its advocacy.",
        "Some services, e.g. CAMHS, had waits.",
        "It was 90% or more.",
    ]


def write_source(folder: Path, report_id: str, text: str, fictional: bool = True) -> None:
    """A markdown source and its meta file, as ``data/sources`` holds them."""
    (folder / f"{report_id}.md").write_text(text, encoding="utf-8")
    (folder / f"{report_id}.meta.json").write_text(json.dumps({"fictional": fictional}),
                                                   encoding="utf-8")


def test_source_neutrals_reads_only_unlabelled_sections_of_fictional_reports(tmp_path):
    source = (
        "# Title\n\n## Introduction\n\n### Our remit\n\nWe inspect services here. We also "
        "grade them.\n\n## Summary – strengths\n\n1. Leaders were strong and visible.\n\n"
        "## Area in context\n\n- The area has 100 data zones.\n\n## What happens next\n\n"
        "Partners will send an action plan.\n"
    )
    write_source(tmp_path, "r1", source)
    write_source(tmp_path, "r2", source, fictional=False)
    rows = source_neutrals([{"report_id": "r1"}, {"report_id": "r2"}], tmp_path)
    assert [r["text"] for r in rows] == [
        "We inspect services here.", "We also grade them.", "The area has 100 data zones.",
        "Partners will send an action plan.",
    ]
    assert {r["report_id"] for r in rows} == {"r1"}  # the non-fictional source is never read
    assert all(r["qi"] == ["none"] and r["sentiment"] == "neutral" for r in rows)
    assert [r["part"] for r in rows][-2:] == ["context", "what_happens_next"]


@pytest.mark.parametrize(("sentence", "neutral"), [
    ("This is based on:", True),
    ("Our judgement reflects the following:", True),
    ("Partners do, however, have important foundations on which to build:", False),
    ("Leaders had strong plans:", False),
    ("Leaders need to:", False),
    ("This is based on the evidence.", False),
])
def test_neutral_lead_in_introduces_a_list_and_judges_nothing(sentence, neutral):
    assert is_neutral_lead_in(sentence) is neutral


def test_source_neutrals_take_the_conclusions_lead_in_only(tmp_path):
    source = (
        "## Conclusion\n\nWe are confident that partners can improve.  Our reasons are:\n\n"
        "- strong leadership\n- a committed workforce\n\nPartners do, however, have "
        "foundations to build on:\n\n- a shared plan\n\n## What happens next\n\n"
        "Partners will send an action plan.\n"
    )
    write_source(tmp_path, "r1", source)
    rows = source_neutrals([{"report_id": "r1"}], tmp_path)
    assert [(r["text"], r["part"], r["kind"], r["qi"]) for r in rows] == [
        ("Our reasons are:", "conclusion", "conclusion", ["10.1"]),
        ("Partners will send an action plan.", "what_happens_next", "body", ["none"]),
    ]
    assert all(r["sentiment"] == "neutral" and r["source"] == "context" for r in rows)


# --- features ------------------------------------------------------------------------

@pytest.mark.parametrize(("part", "group"), [
    ("q3", "q3"), ("Q2", "q2"), ("question_4", "q4"), ("summary_strengths", "summary_strength"),
    ("appendix1", "appendix1"), ("introduction", "other"), ("context", "other"),
    ("what_happens_next", "other"), ("mystery", ""), (None, ""),
])
def test_part_group(part, group):
    assert F.part_group(part) == group


def test_cues_mark_concession_and_quantity_direction():
    names = list(F.CUE_NAMES)
    cues = F.cue_features([
        "While most staff were confident, few had received training.",
        "Almost all children felt safe.",
        "A few parents waited too long for support.",
    ])
    assert cues[0, names.index("concession_start")] > 0
    assert cues[1, names.index("concession_start")] == 0
    assert cues[1, names.index("q_high")] > 0 and cues[1, names.index("q_high_problem")] == 0
    assert cues[2, names.index("q_low_problem")] == 1.0
    assert cues[2, names.index("q_low_good")] == 0.0


def test_neighbours_stay_within_report_and_part():
    rows = [
        {"report_id": "a", "part": "q1", "text": "1"},
        {"report_id": "a", "part": "q1", "text": "2"},
        {"report_id": "a", "part": "q2", "text": "3"},
        {"report_id": "b", "part": "q2", "text": "4"},
    ]
    prev, nxt = F.neighbour_index(rows)
    assert prev == [-1, 0, -1, -1]
    assert nxt == [1, -1, -1, -1]


def test_grade_hints_follow_appendix_headings():
    def row(sub, text="x"):
        return {"report_id": "a", "part": "appendix1", "subsection": sub, "text": text}

    rows = [
        {"report_id": "a", "part": "q5", "subsection": "Vision", "text": "x"},
        row("How good is our leadership?"),
        row("How well do we meet the needs of stakeholders?"),
        row("Some other heading"),
        row("How well do we meet the needs of stakeholders?"),
        row("Rationale for the evaluation", "2.1 Impact on children and young people"),
        row("What outcomes have we achieved?"),
    ]
    assert F.grade_hints(rows) == ["", "9", "2.1", "2.1", "2.2", "2.1", "1.1"]


def test_dense_blocks_shapes_and_unknown_context():
    rows = [{"text": "Staff were confident."}, {"text": "Plans were late.", "part": "q1",
                                                  "kind": "priority"},
            {"text": "Reviews were timely.", "part": "q1"}]
    vecs = row_vectors(rows, hashing_encoder)
    blocks = F.dense_blocks(rows, vecs["text"], vecs["heading"])
    assert blocks["part"][0].sum() == 0  # missing context adds no evidence
    assert blocks["part"][1, F.PARTS.index("q1")] == 1
    assert blocks["kind"][1, F.KINDS.index("priority")] == 1
    assert not blocks["heading"].any()
    # the first row's part differs from the others', so it has no neighbour
    assert np.allclose(np.linalg.norm(blocks["neighbours"], axis=1), [0.0, 1.0, 1.0])
    assert np.allclose(blocks["neighbours"][1], vecs["text"][2])


# --- estimators -------------------------------------------------------------------------

def test_lbfgs_minimises_a_quadratic():
    target = np.array([1.0, -2.0, 3.0])

    def fun(x):
        return float(((x - target) ** 2).sum()), 2 * (x - target)

    x, _ = lbfgs(fun, np.zeros(3), max_iter=100, tol=1e-12)
    assert np.allclose(x, target, atol=1e-5)


def test_softmax_regression_matches_scikit_learn_on_hard_labels():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    dense = rng.normal(size=(120, 5))
    y = (dense[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int) + (dense[:, 1] > 1)
    from scipy import sparse

    words = sparse.csr_matrix(rng.random((120, 4)) * (rng.random((120, 4)) > 0.7))
    targets = np.eye(3)[y]
    ours = SoftmaxRegression(C=2.0, tol=1e-10, max_iter=2000).fit(dense, words, targets)
    x = np.hstack([dense, words.toarray()])
    ref = LogisticRegression(C=2.0, tol=1e-10, max_iter=5000).fit(x, y)
    ours_p = np.exp(ours.decision_function(dense, words, 3))
    ours_p /= ours_p.sum(axis=1, keepdims=True)
    assert np.allclose(ours_p, ref.predict_proba(x), atol=2e-3)


@pytest.fixture(scope="module")
def tiny_model():
    rows = small_rows()
    rows.append({"report_id": "f01", "part": "introduction", "kind": "body",
                 "subsection": "Our remit", "text": "We inspected services in the area.",
                 "qi": ["none"], "sentiment": "neutral", "source": "context"})
    X, y = encode(rows, hashing_encoder), labels(rows)
    return SegmentClassifier(C_sentiment=5.0, C_qi=2.0).fit(X, y), X, y


def test_tiny_training_set_trains_and_predicts(tiny_model):
    model, X, y = tiny_model
    rows = X.rows
    sent, qi = model.predict_proba(X)
    assert sent.shape == (len(rows), len(SENTIMENTS)) and qi.shape == (len(rows), len(QI_CODES))
    assert np.allclose(sent.sum(axis=1), 1) and np.allclose(qi.sum(axis=1), 1)
    assert model.sentiment_temperature_ == model.qi_temperature_ == 1.0  # set by the stage
    labelled = [r for r in rows if r.get("source") != "context"]
    sent_acc = np.mean([SENTIMENTS[i] == r["sentiment"]
                        for i, r in zip(sent.argmax(axis=1), rows, strict=True)
                        if r.get("source") != "context"])
    assert sent_acc > 0.8, "a model should fit its own small training set"
    assert len(labelled) == 120
    never_seen = QI_CODES.index("4.1")
    assert qi[:, never_seen].max() < 1e-6


def test_qi_balance_weighs_a_rare_code_up_and_a_common_one_down():
    from pipeline.train.segments import Label

    y = [Label("positive", ("2.1",))] * 9 + [Label("negative", ("5.4", "2.1"))]
    weights = SegmentClassifier(qi_balance=0.5)._qi_balance_weights(y)
    # 2.1: 9 rows against a mean of 5 -> (9/5)**-0.5; 5.4: (1/5)**-0.5; second codes don't count
    assert np.allclose(weights, [(9 / 5) ** -0.5] * 9 + [5 ** 0.5])
    assert np.allclose(SegmentClassifier(qi_balance=0.0)._qi_balance_weights(y), 1.0)
    balanced = SegmentClassifier(qi_balance=1.0)._qi_balance_weights(y)
    assert balanced[:9].sum() == pytest.approx(balanced[9])  # each code weighs the same in all


def test_a_negative_qi_balance_is_a_one_line_params_error():
    from pipeline.train.stage import settings

    with pytest.raises(InputError, match=r"params: train\.qi_balance must be 0 or more"):
        settings({"qi_balance": -0.5})


@pytest.mark.parametrize("params, message", [
    ({"finetune_weight": 1.0}, r"train\.finetune_weight must be at least 0 and below 1"),
    ({"finetune_weight": -0.1}, r"train\.finetune_weight must be at least 0 and below 1"),
    ({"finetune_weight": "fit"}, r"train\.finetune_weight must be float, got 'fit'"),
    ({"fit_finetune_weight": 1}, r"train\.fit_finetune_weight must be true or false"),
    ({"finetune_epochs": 0}, r"train\.finetune_epochs must be 1 or more"),
    ({"finetune_seed": -1}, r"train\.finetune_seed must be 0 or more"),
    ({"finetune_seed": 0.5}, r"train\.finetune_seed must be int"),
])
def test_a_wrong_fine_tuning_setting_is_a_one_line_params_error(params, message):
    from pipeline.train.stage import settings

    with pytest.raises(InputError, match=message):
        settings(params)


def test_predict_lists_second_code_only_when_confident(tiny_model):
    model, X, _ = tiny_model
    sent, qi = model.predict_proba(X[:10])
    for label, s, q in zip(model.predict(X[:10]), sent, qi, strict=True):
        ranked = [QI_CODES[j] for j in np.argsort(-q)]
        assert label.qi[0] == ranked[0]
        if len(label.qi) == 2:
            assert label.qi[1] == ranked[1]
            assert q[QI_CODES.index(ranked[1])] >= model.second_code_threshold
        else:
            assert (q[QI_CODES.index(ranked[1])] < model.second_code_threshold
                    or "none" in ranked[:2])
        assert label.sentiment == SENTIMENTS[int(s.argmax())]


def test_segment_classifier_is_a_scikit_learn_estimator(tiny_model):
    from sklearn.base import clone, is_classifier

    model, X, y = tiny_model
    assert is_classifier(model)
    params = model.get_params()
    assert params["C_sentiment"] == 5.0 and params["bare_model"] is True
    copy = clone(model)
    assert copy.get_params() == params and not hasattr(copy, "qi_model_")
    assert copy.set_params(stack=False, C_qi=1.5) is copy
    assert copy.get_params()["C_qi"] == 1.5 and model.get_params()["C_qi"] == 2.0
    assert 0 <= model.score(X, y) <= 1


def test_segments_slice_by_row_for_the_splitters():
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.utils import _safe_indexing

    rows = small_rows(per_report=5)
    X, y = encode(rows, hashing_encoder), labels(rows)
    assert X.shape == (15,) and len(y) == 15 and y[0].qi == tuple(rows[0]["qi"])
    folds = list(LeaveOneGroupOut().split(X, y, groups=X.groups))
    assert len(folds) == 3
    train, test = folds[0]
    held = _safe_indexing(X, test)  # how scikit-learn's helpers slice X
    assert isinstance(held, Segments) and {r["report_id"] for r in held.rows} == {"f01"}
    assert np.array_equal(held.vectors["text"], X.vectors["text"][test])
    assert len(X[np.arange(15) < 3]) == 3 and len(X[2:4]) == 2
    with pytest.raises(ValueError, match="rows for 15 segments"):
        Segments(X.rows, {"text": X.vectors["text"][:3]})


def test_context_changes_the_qi(tiny_model):
    model, _, _ = tiny_model
    text = "Leaders had a clear plan and staff understood it."
    rows = [{"text": text, "part": "q5", "kind": "body", "subsection": "Vision, values and aims",
             "report_id": "z"},
            {"text": text, "part": "q1", "kind": "body", "subsection": "Responding to concerns",
             "report_id": "y"}]
    _, qi = model.predict_proba(encode(rows, hashing_encoder))
    assert not np.allclose(qi[0], qi[1])


def test_rows_without_context_go_to_the_bare_model(tiny_model):
    from pipeline.train.model import has_context

    model, X, y = tiny_model
    rows = X.rows
    assert model.bare_model and model.bare_model_ is not None
    assert model.bare_model_.bare_model_ is None  # one level only
    bare = X.without_context()
    assert [r["text"] for r in bare.rows] == [r["text"] for r in rows]
    assert not any(has_context(r) for r in bare.rows) and not bare.vectors["heading"].any()
    assert all(has_context(r) for r in rows)
    assert has_context({"part": "Question 2"}) and has_context({"part": "context"})
    assert not has_context({"part": "", "kind": "priority"})
    assert not has_context({"part": "statement 2", "kind": "body"})

    # Bare rows are scored by the bare model, rows with context by the first one, even
    # when they come mixed in one call.
    mixed = Segments([*rows[:5], *bare.rows[5:10]],
                     {k: np.vstack([v[:5], bare.vectors[k][5:10]]) for k, v in X.vectors.items()})
    sent, qi = model.predict_proba(mixed)
    first = model._predict_proba(X[:5])
    second = model.bare_model_._predict_proba(bare[5:10])
    assert np.allclose(sent[:5], first[0]) and np.allclose(qi[5:], second[1])

    without = SegmentClassifier(C_sentiment=5.0, C_qi=2.0, bare_model=False).fit(X, y)
    assert without.bare_model_ is None
    hits = [float((m.predict_proba(bare)[1].argmax(axis=1)
                   == [QI_CODES.index(r["qi"][0]) for r in rows]).mean())
            for m in (model, without)]
    assert hits[0] > hits[1]  # in-sample, but the bare model was trained on rows like these
    copy = deepcopy(model).set_temperatures(1.5, 0.5, bare=(2.0, 0.7))
    assert copy.bare_model_.sentiment_temperature_ == 2.0 and copy.qi_temperature_ == 0.5


# --- evaluation -----------------------------------------------------------------------

def test_qi_metrics_counts_each_measure():
    probs = np.zeros((3, len(QI_CODES)))
    probs[0, QI_CODES.index("5.2")], probs[0, QI_CODES.index("5.3")] = 0.6, 0.4
    probs[1, QI_CODES.index("5.3")], probs[1, QI_CODES.index("2.1")] = 0.7, 0.3
    probs[2, QI_CODES.index("9.1")], probs[2, QI_CODES.index("1.1")] = 0.5, 0.1
    probs[1, QI_CODES.index("5.2")], probs[2, QI_CODES.index("2.1")] = 0.2, 0.05
    m = qi_metrics([["5.2"], ["5.2", "5.3"], ["2.1"]], probs)
    assert m["top1"] == pytest.approx(1 / 3)
    assert m["top1_any"] == pytest.approx(2 / 3)
    assert m["area"] == pytest.approx(2 / 3)  # 5.3 for 5.2 is the right area
    assert m["top3"] == pytest.approx(1.0)


def test_sentiment_metrics_macro_over_present_classes():
    probs = np.eye(4)[[0, 0, 1, 2]]
    m = sentiment_metrics(["positive", "negative", "negative", "mixed"], probs)
    assert m["accuracy"] == pytest.approx(0.75)
    assert set(m["f1"]) == {"positive", "negative", "mixed"}
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 2 / 3, 1.0]))


def test_second_code_metrics():
    probs = np.zeros((2, len(QI_CODES)))
    probs[0, [QI_CODES.index("5.2"), QI_CODES.index("5.3")]] = [0.5, 0.45]
    probs[1, [QI_CODES.index("2.1"), QI_CODES.index("9.1")]] = [0.5, 0.4]
    m = second_code_metrics([["5.2", "5.3"], ["2.1"]], probs, threshold=0.35)
    assert m == {"listed": 2, "precision": 0.5, "recall": 1.0}


class Spy(SegmentClassifier):
    """Records what each fold is fitted on and asked about; predicts uniform scores."""

    seen: list = []

    def fit(self, X, y):
        Spy.seen.append(("fit", sorted({r["report_id"] for r in X.rows})))
        self.bare_model_ = None
        return self

    def predict_parts(self, X, finetuned=True):
        Spy.seen.append(("predict", [r["report_id"] for r in X.rows],
                         [r["part"] for r in X.rows], X.vectors["heading"].any()))
        n = len(X)
        return (np.full((n, len(SENTIMENTS)), 0.25), None,
                np.full((n, len(QI_CODES)), 1 / 21))


def test_out_of_report_fits_once_per_report_and_never_on_the_held_out_one():
    from pipeline.train.out_of_report import predict_out_of_report

    rows = small_rows(per_report=4)
    X, y = encode(rows, hashing_encoder), labels(rows)
    Spy.seen = []
    oof = predict_out_of_report(Spy(), X, y)
    fits = [e for e in Spy.seen if e[0] == "fit"]
    assert fits == [("fit", ["f02", "f03"]), ("fit", ["f01", "f03"]), ("fit", ["f01", "f02"])]
    asked = [e for e in Spy.seen if e[0] == "predict"]
    assert len(asked) == 6  # each fold model reads its held-out rows twice
    with_context, without = asked[0], asked[1]
    assert set(with_context[1]) == {"f01"} and all(with_context[2])
    assert set(without[1]) == {"f01"} and not any(without[2]) and not without[3]
    assert oof.sentiment.shape == oof.bare_sentiment.shape == (12, len(SENTIMENTS))


def test_baselines_are_fitted_leave_one_report_out():
    from pipeline.evaluate.protocol import baseline_predictions

    rows = small_rows(per_report=20)
    vectors = encode(rows, hashing_encoder).vectors["text"]
    for name in ("tfidf_lr", "embedding_lr"):
        sent, qi = baseline_predictions(name, rows, vectors)
        assert sent.shape == (60, len(SENTIMENTS)) and qi.shape == (60, len(QI_CODES))
        assert np.allclose(sent.sum(axis=1), 1) and np.allclose(qi.sum(axis=1), 1)
        unused = [j for j, c in enumerate(QI_CODES) if c not in {r["qi"][0] for r in rows}]
        assert not qi[:, unused].any()


def test_bootstrap_intervals_bracket_the_figure_and_skip_context_rows():
    rng = np.random.default_rng(1)
    true = rng.choice(SENTIMENTS, 300, p=[0.5, 0.3, 0.15, 0.05])
    rows = [{"sentiment": t, "qi": ["5.2"]} for t in true]
    rows += [{"sentiment": "neutral", "qi": ["none"], "source": "context"}] * 50
    sent = np.eye(4)[[SENTIMENTS.index(t) if rng.random() < 0.8 else 0 for t in true]
                     + [0] * 50]
    qi = np.zeros((350, len(QI_CODES)))
    qi[np.arange(350), rng.choice([QI_CODES.index("5.2"), QI_CODES.index("5.3")], 350)] = 1
    out = bootstrap_intervals(rows, sent, qi, n_boot=300)
    point = sentiment_metrics(list(true), sent[:300])
    for name, figure in (("sentiment_macro_f1", point["macro_f1"]),
                         ("sentiment_accuracy", point["accuracy"]),
                         ("qi_top1", float(qi[:300, QI_CODES.index("5.2")].mean()))):
        band = out[name]
        assert band["low"] < figure < band["high"]
        assert band["high"] - band["low"] < 0.25
    assert out["qi_area"] == {"low": 1.0, "high": 1.0}  # 5.3 for 5.2 is the right area
    assert bootstrap_intervals(rows[300:], sent[300:], qi[300:]) == {}


# --- train stage, persistence, classify stage ----------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import pipeline.train.stage as train_stage
    from pipeline.evaluate import stage as evaluate_stage

    tmp = tmp_path_factory.mktemp("train")
    labels_dir = tmp / "labels"
    labels_dir.mkdir()
    for rid in ("f01", "f02", "f03"):
        write_jsonl(labels_dir / f"{rid}.labels.jsonl",
                    read_label_file(LABELS / f"{rid}.labels.jsonl")[:45])
    original = train_stage.frozen_encoder
    train_stage.frozen_encoder = lambda params: HashingCache()
    try:
        # one epoch keeps the fine-tuned encoder's four fits (three folds, the final
        # model) to seconds: its wiring is under test here, not its accuracy; so is the
        # blend's, at the set share (on so little, a fitted one may come out 0)
        train_stage.train([labels_dir], tmp / "models",
                          {"sources_dir": str(REPO / "data" / "sources"),
                           "finetune_epochs": 1, "fit_finetune_weight": False})
    finally:
        train_stage.frozen_encoder = original
    metrics = evaluate_stage.run(
        [labels_dir], tmp / "models", {"interval_resamples": 200},
        out=tmp / "metrics" / "classifiers.json", plots_dir=tmp / "plots",
        card=tmp / "MODEL_CARD.md", predictions=tmp / "oof.jsonl")
    return tmp, metrics


class HashingCache:
    """The hashing encoder in the embedding cache's clothes (``save`` does nothing)."""

    def __call__(self, texts):
        return hashing_encoder(texts)

    def save(self):
        pass


def test_train_writes_models_and_evaluate_the_metrics_plots_and_card(trained):
    tmp, metrics = trained
    assert (tmp / "models" / "classifier.skops").is_file()
    manifest = json.loads((tmp / "models" / "manifest.json").read_text())
    tuned = {name for name in manifest["files"] if name.startswith("finetuned/")}
    assert set(manifest["files"]) - tuned == {"classifier.skops", "out_of_report.npz"}
    assert {"finetuned/model.safetensors", "finetuned/head.safetensors",
            "finetuned/finetuned.json"} <= tuned
    card = (tmp / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card") and "same sentence splitter" in card
    on_disk = json.loads((tmp / "metrics" / "classifiers.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for name in ("model", "tfidf_lr", "embedding_lr"):
        for key in ("macro_f1", "accuracy"):
            assert 0 <= on_disk[name]["sentiment"][key] <= 1
        for key in ("top1", "top3", "top1_any", "area", "macro_f1"):
            assert 0 <= on_disk[name]["qi"][key] <= 1
        assert set(on_disk[name]["per_report"]) == {"f01", "f02", "f03"}
    assert on_disk["n_labelled"] == 135 and on_disk["n_context_neutral"] > 50
    for name, band in on_disk["intervals"]["model"].items():
        assert 0 <= band["low"] <= band["high"] <= 1, name
    headline = on_disk["headline"]["model"]
    assert all(on_disk["intervals"]["model"][k]["low"] <= headline[k]
               <= on_disk["intervals"]["model"][k]["high"] for k in on_disk["intervals"]["model"])
    assert "95% interval" in card
    classifier = load_models(tmp / "models").classifier
    assert classifier.bare_model_.sentiment_temperature_ != 1.0  # from the without-context folds
    assert on_disk["calibration"]["qi_temperature"] == round(classifier.qi_temperature_, 4)
    bare = on_disk["model_without_context"]
    assert 0 <= bare["sentiment"]["macro_f1"] <= 1 and 0 <= bare["qi"]["top1"] <= 1
    assert f"QI top-1 {bare['qi']['top1']:.3f}" in card
    confusion = (tmp / "plots" / "sentiment_confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 136
    area = (tmp / "plots" / "qi_area_confusion.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in area[1:]} <= {qi_area(c) for c in QI_CODES}
    scored = (tmp / "oof.jsonl").read_text().splitlines()
    assert len(scored) == 135 + on_disk["n_context_neutral"]


def test_evaluate_settings_change_no_model_and_other_labels_are_refused(trained, tmp_path):
    from pipeline.evaluate import stage as evaluate_stage

    tmp, metrics = trained
    before = (tmp / "models" / "classifier.skops").read_bytes()
    again = evaluate_stage.run([tmp / "labels"], tmp / "models",
                               {"baselines": ["tfidf_lr"], "interval_level": 0.9})
    assert (tmp / "models" / "classifier.skops").read_bytes() == before
    assert "embedding_lr" not in again and again["model"] == metrics["model"]
    assert again["intervals"]["level"] == 0.9
    with pytest.raises(InputError, match="unknown evaluate.baselines"):
        evaluate_stage.run([tmp / "labels"], tmp / "models", {"baselines": ["bert"]})
    other = write_jsonl(tmp_path / "f01.labels.jsonl",
                        read_label_file(LABELS / "f01.labels.jsonl")[:10])
    with pytest.raises(InputError, match="other labels than those given: retrain"):
        evaluate_stage.run([other], tmp / "models", {})


def test_classify_keeps_fields_and_adds_predictions(trained):
    tmp, _ = trained
    models = load_models(tmp / "models")
    segments = [
        {"segment_id": "s1", "report_id": "r", "partnership": "P", "part": "q2", "kind": "body",
         "subsection": "Help to recover", "text": "Children waited too long for CAMHS.",
         "page": 12},
        {"segment_id": "s2", "report_id": "r", "text": "Most parents felt listened to."},
    ]
    out = classify(segments, models, frozen_encoder=hashing_encoder)
    assert [o["segment_id"] for o in out] == ["s1", "s2"]
    assert out[0]["page"] == 12 and out[0]["partnership"] == "P"
    for row in out:
        assert set(PREDICTED_FIELDS) <= set(row)
        assert row["qi"][0] in QI_CODES and row["sentiment"] in SENTIMENTS
        assert sum(row["qi_scores"].values()) == pytest.approx(1, abs=1e-3)
    assert classify([], models) == []
    assert "qi" not in segments[0]  # the input is not modified


def test_saved_model_round_trips(trained, tiny_model):
    tmp, _ = trained
    models = load_models(tmp / "models")
    _, X, _ = tiny_model
    segments = encode(X.rows[:20], hashing_encoder)
    again = load_classifier(tmp / "models" / "classifier.skops")
    assert getattr(again, "finetuned_", None) is None  # skops holds no torch model
    with pytest.raises(ValueError, match="fine-tuned encoder that was not loaded"):
        again.predict_proba(segments)
    again.set_finetuned(FinetunedSentiment.load(tmp / "models" / "finetuned"))
    a = models.classifier.predict_proba(segments)
    b = again.predict_proba(segments)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    unblended = deepcopy(again).set_blend(0.0).predict_proba(segments)
    assert not np.allclose(unblended[0], a[0])  # the fine-tuned encoder has its say
    assert np.array_equal(unblended[1], a[1])  # on sentiment only


def test_a_tampered_or_missing_finetuned_file_is_refused(trained, tmp_path):
    import shutil

    src, _ = trained
    models = tmp_path / "models"
    shutil.copytree(src / "models", models)
    head = models / "finetuned" / "head.safetensors"
    head.write_bytes(head.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(InputError, match=r"head\.safetensors.*checksum mismatch"):
        load_models(models)
    head.unlink()
    with pytest.raises(InputError, match=r"head\.safetensors.*model file missing"):
        load_models(models)


def test_a_model_without_fine_tuning_leaves_no_earlier_finetuned_folder(trained, tiny_model,
                                                                     tmp_path):
    import shutil

    from pipeline.train.persist import save_models

    src, _ = trained
    models = tmp_path / "models"
    shutil.copytree(src / "models", models)
    save_models(models, tiny_model[0], {"reports": ["f01"]})
    assert not (models / "finetuned").exists()
    manifest = json.loads((models / "manifest.json").read_text())
    assert list(manifest["files"]) == ["classifier.skops"]
    assert load_models(models).classifier.finetune_weight == 0


def test_tampered_model_file_is_refused(trained, tmp_path):
    import shutil

    src, _ = trained
    models = tmp_path / "models"
    shutil.copytree(src / "models", models)
    path = models / "classifier.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum mismatch"):
        load_models(models)
    (models / "manifest.json").unlink()
    with pytest.raises(InputError, match="no model manifest"):
        load_models(models)


def test_evaluate_scores_held_out_labels_with_intervals(trained):
    from pipeline.evaluate.held_out import evaluate_held_out, held_out_labels, summary_lines

    tmp, _ = trained
    models = load_models(tmp / "models")
    held = write_jsonl(tmp / "f04.labels.jsonl", read_label_file(LABELS / "f04.labels.jsonl")[:40])
    rows = held_out_labels([held], models.info)
    metrics, scored = evaluate_held_out(rows, models.classifier, models.info,
                                        encoder=hashing_encoder, n_boot=200)
    assert metrics["n_sentences"] == 40 and metrics["reports"] == {"f04": 40}
    assert metrics["models_trained_on"] == ["f01", "f02", "f03"]
    assert sum(metrics["labels"].values()) == 40
    confusion = metrics["sentiment_confusion"]
    assert sum(sum(row.values()) for row in confusion.values()) == 40
    correct = sum(confusion[c][c] for c in SENTIMENTS)
    assert metrics["sentiment"]["accuracy"] == pytest.approx(correct / 40)
    for key, band in metrics["intervals"].items():
        if isinstance(band, dict):
            assert 0 <= band["low"] <= band["high"] <= 1, key
    low, high = (metrics["intervals"]["qi_top1"][k] for k in ("low", "high"))
    assert low <= metrics["qi"]["top1"] <= high
    assert [r["text"] for r in scored] == [r["text"] for r in rows]  # file order kept
    assert sum(r["sentiment_correct"] for r in scored) == correct
    assert sum(r["qi_correct"] for r in scored) == round(metrics["qi"]["top1"] * 40)
    assert all(len(r["predicted_qi"]) == 3 and r["predicted_qi"][0] in QI_CODES for r in scored)
    assert [line[0] for line in summary_lines(metrics, metrics["intervals"])][:2] == [
        "sentiment macro-F1", "sentiment accuracy"]


def test_evaluate_refuses_sentences_the_models_were_trained_on(trained, tmp_path):
    from pipeline.evaluate.held_out import held_out_labels

    tmp, _ = trained
    models = load_models(tmp / "models")
    with pytest.raises(InputError, match=r"f02\.labels\.jsonl: report f02 is in the models' "
                                         r"training data"):
        held_out_labels([LABELS / "f02.labels.jsonl"], models.info)
    # The same sentences under another name, case and spacing changed, are caught too.
    renamed = [{**r, "report_id": "mine", "text": "  " + r["text"].upper()}
               for r in read_label_file(LABELS / "f01.labels.jsonl")[40:50]]
    renamed.insert(0, {**GOOD, "report_id": "mine"})
    path = write_jsonl(tmp_path / "mine.jsonl", renamed)
    with pytest.raises(InputError, match=r"mine\.jsonl: 5 of its sentences are in the models' "
                                         r"training data \(first: labelled row 2\)"):
        held_out_labels([path], models.info)
    assert len(held_out_labels([write_jsonl(tmp_path / "ok.jsonl", renamed[:1])],
                               models.info)) == 1


def test_evaluate_command_fails_in_one_line(trained, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    tmp, _ = trained
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(LABELS / "f03.labels.jsonl"),
                                 "--model", str(tmp / "models"), "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {LABELS / 'f03.labels.jsonl'}: report f03 is in the models' training data, so "
        "its figures would be in-sample; train without it (inspections train ... --out DIR) "
        "to evaluate on it"]
    assert not (tmp_path / "m.json").exists()
    result = runner.invoke(app, ["evaluate", str(tmp_path / "none.jsonl"),
                                 "--model", str(tmp / "models")])
    assert result.exit_code == 1 and "label file not found" in result.stderr


class Foreign:
    """A type no model of ours holds: loading it must be refused."""

    def __init__(self):
        self.payload = [1, 2, 3]


def test_foreign_or_pickled_model_file_is_refused(tmp_path):
    import pickle

    foreign = tmp_path / "foreign.skops"
    sio.dump(Foreign(), foreign)
    with pytest.raises(InputError, match="untrusted types"):
        load_classifier(foreign)
    pickled = tmp_path / "model.skops"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="not a skops model file"):
        load_classifier(pickled)
    plain = tmp_path / "plain.skops"
    sio.dump({"coef": np.zeros(3)}, plain)
    with pytest.raises(InputError, match="does not hold a trained segment classifier"):
        load_classifier(plain)


def test_train_rejects_bad_params_and_labels(tmp_path):
    from pipeline.train.stage import train

    with pytest.raises(InputError, match="unknown parameter train.bogus"):
        train([LABELS], tmp_path / "m", {"bogus": 1})
    with pytest.raises(InputError, match="train.C_qi must be float"):
        train([LABELS], tmp_path / "m", {"C_qi": "high"})
    bad = tmp_path / "bad.labels.jsonl"
    bad.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "qi": ["11.1"]}) + "\n")
    with pytest.raises(InputError, match=r"bad\.labels\.jsonl: line 2: unknown QI code"):
        train([bad], tmp_path / "m", {"context_neutrals": False})


# --- the stacked sentiment stage ------------------------------------------------------------

@pytest.mark.parametrize(("text", "first", "last"), [
    ("While the meetings were thorough, the records were brief.",
     "the meetings were thorough", "the records were brief."),
    ("Foster carers felt supported, but kinship carers waited months for help.",
     "Foster carers felt supported", "kinship carers waited months for help."),
    ("Plans were clear; however, reviews were often late.",
     "Plans were clear", "reviews were often late."),
    ("Assessments were of a high standard.",
     "Assessments were of a high standard.", "Assessments were of a high standard."),
    ("Staff were confident, but rarely, late.",  # a two-word piece is not a clause
     "Staff were confident, but rarely, late.", "Staff were confident, but rarely, late."),
])
def test_clauses_split_concessions_and_contrasts(text, first, last):
    assert F.clauses(text) == (first, last)


def test_clause_spans_are_the_clauses_offsets():
    text = "  While the meetings were thorough, the records were brief. "
    (a, b), (c, d) = F.clause_spans(text)
    assert (text.strip()[a:b], text.strip()[c:d]) == F.clauses(text)
    assert F.clause_spans("Assessments were of a high standard.") is None


class SpanEncoder:
    """A hashing encoder that can also pool spans (as the packaged encoders do): span
    vectors are marked so the test can see where each clause vector came from."""

    def __init__(self):
        self.span_calls = 0

    def __call__(self, texts):
        return hashing_encoder(texts)

    def spans(self, texts, spans):
        self.span_calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, (text, (start, end)) in enumerate(zip(texts, spans, strict=True)):
            out[i] = hashing_encoder([text.strip()[start:end] + " span"])[0]
        return out


def test_row_vectors_pool_clauses_when_the_encoder_can():
    rows = [{"text": "Plans were clear; however, reviews were often late."},
            {"text": "Assessments were of a high standard."}]
    encoder = SpanEncoder()
    vecs = row_vectors(rows, encoder)
    assert encoder.span_calls == 1
    assert np.allclose(vecs["clause_first"][0], hashing_encoder(["Plans were clear span"])[0])
    assert np.allclose(vecs["clause_last"][0],
                       hashing_encoder(["reviews were often late. span"])[0])
    # a sentence without a contrast is its own clause
    assert np.array_equal(vecs["clause_first"][1], vecs["text"][1])
    assert np.array_equal(vecs["clause_last"][1], vecs["text"][1])
    # a plain function encodes each clause as a text of its own
    plain = row_vectors(rows, hashing_encoder)
    assert np.allclose(plain["clause_first"][0], hashing_encoder(["Plans were clear"])[0])


def test_stack_features_read_neighbours_and_clause_clash():
    from pipeline.train.model import stack_features

    k = len(SENTIMENTS)
    pos, neg = np.eye(k)[SENTIMENTS.index("positive")], np.eye(k)[SENTIMENTS.index("negative")]
    rows = [{"report_id": "r", "part": "q1", "text": "a"}, {"report_id": "r", "part": "q1",
                                                            "text": "b"}]
    # row 0: one clause, positive; row 1: positive clause then negative clause
    first = np.array([[*pos, *pos, *pos], [*neg, *pos, *neg]])
    out = stack_features(rows, first)
    assert np.array_equal(out[0, k: 2 * k], neg) and np.array_equal(out[1, :k], pos)
    assert not out[0, :k].any() and not out[1, k: 2 * k].any()  # no row before / after
    assert out[0, 4 * k] == 0 and out[0, 4 * k + 1] == 0  # not split: no clause features
    assert out[1, 4 * k] == 1 and out[1, 4 * k + 1] == 1  # split, and the clauses clash


def test_second_stage_needs_three_reports(tiny_model):
    model, X, y = tiny_model
    assert model.stack_model_ is not None  # three reports
    two = np.flatnonzero(np.isin(X.groups, ["f01", "f02"]))
    small = SegmentClassifier().fit(X[two], y[two])
    assert small.stack_model_ is None
    sent, _ = small.predict_proba(X[:5])
    assert np.allclose(sent.sum(axis=1), 1)
    off = SegmentClassifier(stack=False).fit(X, y)
    assert off.stack_model_ is None


def test_second_stage_keeps_the_first_stages_neutral(tiny_model):
    model, X, _ = tiny_model
    xs, _, words = model._matrices(X)
    first = model._stage1_probs(model.sentiment_model_, X, xs, words)
    final = np.exp(model._sentiment_logits(X, xs, words))
    neutral = SENTIMENTS.index("neutral")
    assert np.allclose(final[:, neutral], first[:, neutral], atol=1e-6)
    assert np.allclose(final.sum(axis=1), 1, atol=1e-6)


def test_the_same_model_saves_to_the_same_bytes(tiny_model, tmp_path):
    """skops names arrays after memory addresses and stamps the time; a saved model
    must not depend on either (DVC would see a new model every run)."""
    from pipeline.train.persist import save_models

    model, X, _ = tiny_model
    first = save_models(tmp_path / "a", model, {"reports": ["f01"]}).parent
    refit = SegmentClassifier(C_sentiment=5.0, C_qi=2.0).fit(X, tiny_model[2])
    second = save_models(tmp_path / "b", refit, {"reports": ["f01"]}).parent
    for name in ("classifier.skops", "manifest.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    again = load_classifier(first / "classifier.skops")
    for a, b in zip(again.predict_proba(X), model.predict_proba(X), strict=True):
        assert np.array_equal(a, b)


def test_no_memory_address_is_saved(tiny_model, tmp_path):
    """An ``id()`` differs between processes, so two runs of ``dvc repro`` on different
    machines would save different bytes; within one test process it does not, so the
    archive is searched for one instead (scikit-learn's ``_stop_words_id`` was one)."""
    import zipfile

    from pipeline.train.persist import save_models

    model, X, _ = tiny_model
    model.predict_proba(X)  # transform() is what sets _stop_words_id
    assert model.tfidf_._stop_words_id is not None
    path = save_models(tmp_path / "m", model, {"reports": ["f01"]}).parent / "classifier.skops"
    with zipfile.ZipFile(path) as archive:
        schema = archive.read("schema.json").decode("utf-8")
    assert '"_stop_words_id"' in schema
    assert str(model.tfidf_._stop_words_id) not in schema
    assert max(int(n) for n in re.findall(r'"__id__": (\d+)', schema)) < 100_000
    loaded = load_classifier(path)
    assert loaded.tfidf_._stop_words_id is None
    for a, b in zip(loaded.predict_proba(X), model.predict_proba(X), strict=True):
        assert np.array_equal(a, b)


def test_the_blend_weight_fitted_is_the_share_with_the_lowest_log_loss():
    from pipeline.train.model import BLEND_GRID, blend, fit_blend_weight

    rng = np.random.default_rng(0)
    true = rng.integers(0, len(SENTIMENTS), 400)
    truth = np.eye(len(SENTIMENTS))[true]
    noise = rng.dirichlet(np.ones(len(SENTIMENTS)), 400)
    # two readers, each right on its own half of the rows: the blend beats either
    half = np.arange(400) < 200
    regression = np.where(half[:, None], 0.7 * truth + 0.3 * noise, noise)
    tuned = np.where(half[:, None], noise, 0.7 * truth + 0.3 * noise)
    weight, losses = fit_blend_weight(regression, tuned, true)
    assert set(losses) == set(BLEND_GRID) and losses[weight] == min(losses.values())
    assert 0.2 < weight < 0.8
    # a reader that knows nothing gets no share, a perfect one most
    assert fit_blend_weight(regression, noise, true)[0] == 0.0
    assert fit_blend_weight(regression, truth, true)[0] >= 0.5
    assert np.allclose(blend(regression, tuned, 0.25), 0.75 * regression + 0.25 * tuned)
    assert blend(regression, None, 0.5) is regression


def test_the_train_stage_keeps_the_blend_parts_and_the_card_shows_them(trained):
    from pipeline.train.model import blend
    from pipeline.train.out_of_report import load_out_of_report

    tmp, metrics = trained
    _, _, oof = load_out_of_report(tmp / "models" / "out_of_report.npz")
    info = json.loads((tmp / "models" / "manifest.json").read_text())["info"]
    classifier = load_models(tmp / "models").classifier
    assert info["finetune_weight"] == oof.finetune_weight == classifier.finetune_weight_ == 0.3
    # the scored predictions are the blend of the two kept parts
    assert np.allclose(oof.sentiment, blend(oof.regression_sentiment, oof.finetuned_sentiment,
                                            0.3))
    assert np.allclose(oof.bare_sentiment, blend(
        oof.bare_regression_sentiment, oof.finetuned_sentiment, 0.3))
    parts = metrics["sentiment_parts"]
    assert parts["finetune_weight"] == 0.3
    assert parts["blend"]["accuracy"] == pytest.approx(metrics["model"]["sentiment"]["accuracy"])
    assert set(parts["finetuned"]["per_report_accuracy"]) == {"f01", "f02", "f03"}
    card = (tmp / "MODEL_CARD.md").read_text()
    assert "0.30 of the probabilities come from all-MiniLM" in card
    assert "set in `train.finetune_weight`" in card
    assert f"finetuned {parts['finetuned']['accuracy']:.3f}" in card


class OracleReader:
    """A stand-in for the fine-tuned encoder that knows every sentence's sentiment: the
    share fitted for it must be most of the blend."""

    truth: dict = {}

    def __init__(self, **params):
        pass

    def fit(self, texts, y):
        return self

    def predict_proba(self, texts):
        return np.stack([0.9 * np.eye(len(SENTIMENTS))[SENTIMENTS.index(self.truth[t])]
                         + 0.025 for t in texts])


def test_the_train_stage_fits_the_blend_weight_then_the_temperatures(monkeypatch):
    from pipeline.train import finetune
    from pipeline.train import stage as train_stage
    from pipeline.train.model import BLEND_GRID

    rows = small_rows(per_report=12)
    X, y = encode(rows, hashing_encoder), labels(rows)
    OracleReader.truth = {r["text"]: r["sentiment"] for r in rows}
    monkeypatch.setattr(finetune, "FinetunedSentiment", OracleReader)
    params = train_stage.settings({"bare_model": False, "stack": False})
    classifier, oof = train_stage.fit(X, y, params)
    assert classifier.finetune_weight == 0.3  # the parameter as given
    assert classifier.finetune_weight_ == oof.finetune_weight >= 0.5
    assert oof.finetune_weight in BLEND_GRID
    sent, _ = classifier.predict_proba(X)
    assert (sent.argmax(axis=1) == [SENTIMENTS.index(label.sentiment) for label in y]).all()
    # the temperature is fitted on the reblended predictions, not the first blend's
    expected, _ = train_stage.temperatures(y, oof.sentiment, oof.qi)
    assert classifier.sentiment_temperature_ == pytest.approx(expected)
    fixed, oof_fixed = train_stage.fit(X, y, {**params, "fit_finetune_weight": False})
    assert fixed.finetune_weight_ == oof_fixed.finetune_weight == 0.3


def test_a_set_blend_weight_is_kept_and_checked(tiny_model):
    from pipeline.train import stage as train_stage
    from pipeline.train.out_of_report import OutOfReport

    model, X, y = tiny_model
    with pytest.raises(ValueError, match="without a fine-tuned encoder"):
        deepcopy(model).set_blend(0.4)
    with pytest.raises(ValueError, match=r"lies in \[0, 1\)"):
        deepcopy(model).set_blend(1.0)
    n = len(X)
    parts = {k: np.full((n, len(SENTIMENTS)), 0.25) for k in (
        "sentiment", "bare_sentiment", "regression_sentiment", "bare_regression_sentiment",
        "finetuned_sentiment")}
    oof = OutOfReport(qi=np.zeros((n, len(QI_CODES))), bare_qi=np.zeros((n, len(QI_CODES))),
                      finetune_weight=0.25, **parts)
    # unless asked to, nothing is fitted
    assert train_stage.fitted_blend(oof, y, {"fit_finetune_weight": False}) is oof
    # equal parts: every share gives the same loss, and the tie goes to the smallest
    assert train_stage.fitted_blend(oof, y, {"fit_finetune_weight": True}).finetune_weight == 0.0


def test_out_of_report_files_round_trip_with_and_without_their_parts(tmp_path, tiny_model):
    from pipeline.train.out_of_report import (
        OutOfReport,
        load_out_of_report,
        save_out_of_report,
    )

    _, X, y = tiny_model
    n = len(X)
    rng = np.random.default_rng(0)
    arrays = {k: rng.dirichlet(np.ones(len(SENTIMENTS)), n) for k in (
        "regression_sentiment", "bare_regression_sentiment", "finetuned_sentiment")}
    oof = OutOfReport(sentiment=arrays["regression_sentiment"], qi=np.zeros((n, 21)),
                      bare_sentiment=arrays["bare_regression_sentiment"],
                      bare_qi=np.zeros((n, 21)), **arrays).reblended(0.35)
    save_out_of_report(tmp_path / "oof.npz", X, y, oof)
    _, _, again = load_out_of_report(tmp_path / "oof.npz")
    assert again.finetune_weight == 0.35
    for key in ("sentiment", "bare_sentiment", *arrays):
        assert np.array_equal(getattr(again, key), getattr(oof, key)), key
    plain = OutOfReport(sentiment=oof.sentiment, qi=oof.qi, bare_sentiment=oof.bare_sentiment,
                        bare_qi=oof.bare_qi)
    save_out_of_report(tmp_path / "plain.npz", X, y, plain)
    _, _, again = load_out_of_report(tmp_path / "plain.npz")
    assert again.finetuned_sentiment is None and again.finetune_weight == 0.0
    with pytest.raises(ValueError, match="no fine-tuned encoder"):
        again.reblended(0.3)
