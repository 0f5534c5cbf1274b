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
from pipeline.evaluate.protocol import (
    bootstrap_intervals,
    loro_predictions,
    qi_metrics,
    second_code_metrics,
    sentiment_metrics,
    summarise,
)
from pipeline.train import features as F
from pipeline.train.data import (
    is_neutral_lead_in,
    read_label_file,
    read_labels,
    source_neutrals,
    split_sentences,
)
from pipeline.train.model import SegmentClassifier, SoftmaxRegression, lbfgs
from pipeline.train.persist import load_classifier
from pipeline.train.vectors import row_vectors

REPO = Path(__file__).resolve().parents[1]
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


def test_split_sentences_keeps_known_non_endings():
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
    vectors = row_vectors(rows, hashing_encoder)
    return SegmentClassifier(C_sentiment=5.0, C_qi=2.0).fit(rows, vectors), rows, vectors


def test_tiny_training_set_trains_and_predicts(tiny_model):
    model, rows, vectors = tiny_model
    sent, qi = model.predict_proba(rows, vectors)
    assert sent.shape == (len(rows), len(SENTIMENTS)) and qi.shape == (len(rows), len(QI_CODES))
    assert np.allclose(sent.sum(axis=1), 1) and np.allclose(qi.sum(axis=1), 1)
    assert 0.05 < model.sentiment_temperature_ < 20 and 0.05 < model.qi_temperature_ < 20
    labelled = [r for r in rows if r.get("source") != "context"]
    sent_acc = np.mean([SENTIMENTS[i] == r["sentiment"]
                        for i, r in zip(sent.argmax(axis=1), rows, strict=True)
                        if r.get("source") != "context"])
    assert sent_acc > 0.8, "a model should fit its own small training set"
    assert len(labelled) == 120
    never_seen = QI_CODES.index("4.1")
    assert qi[:, never_seen].max() < 1e-6


def test_predict_lists_second_code_only_when_confident(tiny_model):
    model, rows, vectors = tiny_model
    out = model.predict(rows[:10], {k: v[:10] for k, v in vectors.items()})
    for row in out:
        scores = row["qi_scores"]
        assert set(scores) == set(QI_CODES) and set(row["sentiment_scores"]) == set(SENTIMENTS)
        ranked = sorted(scores, key=scores.get, reverse=True)
        assert row["qi"][0] == ranked[0]
        if len(row["qi"]) == 2:
            assert row["qi"][1] == ranked[1]
            assert scores[ranked[1]] >= model.second_code_threshold
        else:
            assert scores[ranked[1]] < model.second_code_threshold or "none" in ranked[:2]
        assert row["sentiment"] == max(row["sentiment_scores"], key=row["sentiment_scores"].get)


def test_context_changes_the_qi(tiny_model):
    model, _, _ = tiny_model
    text = "Leaders had a clear plan and staff understood it."
    rows = [{"text": text, "part": "q5", "kind": "body", "subsection": "Vision, values and aims",
             "report_id": "z"},
            {"text": text, "part": "q1", "kind": "body", "subsection": "Responding to concerns",
             "report_id": "y"}]
    _, qi = model.predict_proba(rows, row_vectors(rows, hashing_encoder))
    assert not np.allclose(qi[0], qi[1])


def test_rows_without_context_go_to_the_bare_model(tiny_model):
    from pipeline.train.model import has_context, strip_context

    model, rows, vectors = tiny_model
    assert model.bare_model and model.bare_model_ is not None
    assert model.bare_model_.bare_model_ is None  # one level only
    bare, bare_vecs = strip_context(rows, vectors)
    assert [r["text"] for r in bare] == [r["text"] for r in rows]
    assert not any(has_context(r) for r in bare) and not bare_vecs["heading"].any()
    assert all(has_context(r) for r in rows)
    assert has_context({"part": "Question 2"}) and has_context({"part": "context"})
    assert not has_context({"part": "", "kind": "priority"})
    assert not has_context({"part": "statement 2", "kind": "body"})

    # Bare rows are scored by the bare model, rows with context by the first one, even
    # when they come mixed in one call.
    mixed = [*rows[:5], *bare[5:10]]
    mixed_vecs = {k: np.vstack([v[:5], bare_vecs[k][5:10]]) for k, v in vectors.items()}
    sent, qi = model.predict_proba(mixed, mixed_vecs)
    first = model._predict_proba(rows[:5], {k: v[:5] for k, v in vectors.items()})
    second = model.bare_model_._predict_proba(
        bare[5:10], {k: v[5:10] for k, v in bare_vecs.items()})
    assert np.allclose(sent[:5], first[0]) and np.allclose(qi[5:], second[1])

    without = SegmentClassifier(C_sentiment=5.0, C_qi=2.0, bare_model=False).fit(rows, vectors)
    assert without.bare_model_ is None
    hits = [float((m.predict_proba(bare, bare_vecs)[1].argmax(axis=1)
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


def test_loro_never_trains_on_the_held_out_report():
    rows = [{"report_id": rid, "text": str(i), "qi": ["5.1"], "sentiment": "positive"}
            for i, rid in enumerate("aabbbc")]
    seen = []

    def predictor(train_rows, train_vecs, test_rows, test_vecs, seed):
        held = {r["report_id"] for r in test_rows}
        assert len(held) == 1 and held.isdisjoint({r["report_id"] for r in train_rows})
        assert len(train_vecs["text"]) == len(train_rows)
        seen.extend(r["text"] for r in test_rows)
        return np.full((len(test_rows), 4), 0.25), np.full((len(test_rows), 21), 1 / 21)

    loro_predictions(rows, {"text": np.zeros((6, 2))}, predictor, seed=0)
    assert sorted(seen) == [str(i) for i in range(6)]


def test_without_context_blanks_only_the_held_out_rows_context():
    from pipeline.evaluate.protocol import without_context

    seen = {}

    def spy(train_rows, train_vecs, test_rows, test_vecs, seed):
        seen.update(train=train_rows, test=test_rows, heading=test_vecs["heading"])
        return np.zeros((len(test_rows), 4)), np.zeros((len(test_rows), len(QI_CODES)))

    rows = small_rows(per_report=4)
    vecs = row_vectors(rows, hashing_encoder)
    loro_predictions(rows, vecs, without_context(spy), 0)
    assert all(r["part"] and r["kind"] for r in seen["train"])
    assert all(r["part"] == r["kind"] == r["subsection"] == "" for r in seen["test"])
    assert [r["text"] for r in seen["test"]] == [r["text"] for r in rows if r["report_id"] == "f03"]
    assert not seen["heading"].any()


def test_fold_predictor_fits_each_fold_once_and_keeps_no_encoder(monkeypatch):
    import pipeline.train.finetune as finetune
    import pipeline.train.stage as train_stage
    from pipeline.evaluate.protocol import without_context

    calls = []
    monkeypatch.setattr(train_stage, "_finetune",
                        lambda rows, params, steps, seed: calls.append(len(rows)) or "enc")
    monkeypatch.setattr(finetune, "encode_with", lambda encoder, texts: hashing_encoder(texts))
    rows = small_rows(per_report=15)
    vecs = row_vectors(rows, hashing_encoder)
    predict = train_stage.model_predictor(train_stage._params({"bare_model": True}), 2)
    full = loro_predictions(rows, vecs, predict, 0)
    assert len(calls) == 3  # one fine-tuning per held-out report
    bare = loro_predictions(rows, vecs, without_context(predict), 0)
    assert len(calls) == 3  # the second pass reuses each fold's model and tuned vectors
    assert full[0].shape == bare[0].shape == (45, len(SENTIMENTS))
    assert np.allclose(full[0].sum(axis=1), 1) and np.allclose(bare[1].sum(axis=1), 1)


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


def test_summarise_mean_and_spread():
    out = summarise([{"a": {"b": 1.0}}, {"a": {"b": 3.0}}])
    assert out == {"a": {"b": {"mean": 2.0, "std": 1.0}}}


# --- train stage, persistence, classify stage ----------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import pipeline.train.stage as train_stage

    tmp = tmp_path_factory.mktemp("train")
    labels = tmp / "labels"
    labels.mkdir()
    for rid in ("f01", "f02", "f03"):
        write_jsonl(labels / f"{rid}.labels.jsonl",
                    read_label_file(LABELS / f"{rid}.labels.jsonl")[:45])
    original = train_stage.frozen_encoder
    train_stage.frozen_encoder = lambda params: (hashing_encoder, lambda: None)
    try:
        metrics = train_stage.train(
            [labels], tmp / "models",
            {"eval_seeds": [0, 1], "sources_dir": str(REPO / "data" / "sources")},
            metrics_path=tmp / "metrics" / "classifiers.json", plots_dir=tmp / "plots",
        )
    finally:
        train_stage.frozen_encoder = original
    return tmp, metrics


def test_train_writes_models_metrics_plots_and_card(trained):
    tmp, metrics = trained
    assert (tmp / "models" / "classifier.skops").is_file()
    assert (tmp / "models" / "MODEL_CARD.md").read_text().startswith("# Model card")
    on_disk = json.loads((tmp / "metrics" / "classifiers.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for name in ("model", "tfidf_lr", "embedding_lr"):
        for key in ("macro_f1", "accuracy"):
            assert 0 <= on_disk[name]["sentiment"][key]["mean"] <= 1
        for key in ("top1", "top3", "top1_any", "area", "macro_f1"):
            assert 0 <= on_disk[name]["qi"][key]["mean"] <= 1
        assert set(on_disk[name]["per_report"]) == {"f01", "f02", "f03"}
    assert on_disk["n_labelled"] == 135 and on_disk["n_context_neutral"] > 50
    for name, band in on_disk["intervals"]["model"].items():
        assert 0 <= band["low"] <= band["high"] <= 1, name
    headline = on_disk["headline"]["model"]
    assert all(on_disk["intervals"]["model"][k]["low"] <= headline[k]
               <= on_disk["intervals"]["model"][k]["high"] for k in on_disk["intervals"]["model"])
    assert "95% interval" in (tmp / "models" / "MODEL_CARD.md").read_text()
    bare_model = load_models(tmp / "models").classifier.bare_model_
    assert bare_model.sentiment_temperature_ != 1.0  # set from the without-context folds
    bare = on_disk["model_without_context"]
    assert 0 <= bare["sentiment"]["macro_f1"] <= 1 and 0 <= bare["qi"]["top1"] <= 1
    assert f"QI top-1 {bare['qi']['top1']:.3f}" in (tmp / "models" / "MODEL_CARD.md").read_text()
    confusion = (tmp / "plots" / "sentiment_confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 136
    area = (tmp / "plots" / "qi_area_confusion.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in area[1:]} <= {qi_area(c) for c in QI_CODES}


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
    _, rows, _ = tiny_model
    vectors = row_vectors(rows[:20], hashing_encoder)
    again = load_classifier(tmp / "models" / "classifier.skops")
    a = models.classifier.predict_proba(rows[:20], vectors)
    b = again.predict_proba(rows[:20], vectors)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


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
    from pipeline.evaluate.stage import evaluate, held_out_labels, summary_lines

    tmp, _ = trained
    models = load_models(tmp / "models")
    held = write_jsonl(tmp / "f04.labels.jsonl", read_label_file(LABELS / "f04.labels.jsonl")[:40])
    rows = held_out_labels([held], models.info)
    metrics, scored = evaluate(rows, models, frozen_encoder=hashing_encoder, n_boot=200)
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
    assert [line[0] for line in summary_lines(metrics)][:2] == [
        "sentiment macro-F1", "sentiment accuracy"]


def test_evaluate_refuses_sentences_the_models_were_trained_on(trained, tmp_path):
    from pipeline.evaluate.stage import held_out_labels

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
    model, rows, vectors = tiny_model
    assert model.stack_model_ is not None  # three reports
    two = [i for i, r in enumerate(rows) if r["report_id"] in ("f01", "f02")]
    small = SegmentClassifier(calibrate=False).fit(
        [rows[i] for i in two], {k: v[two] for k, v in vectors.items()})
    assert small.stack_model_ is None
    sent, _ = small.predict_proba(rows[:5], {k: v[:5] for k, v in vectors.items()})
    assert np.allclose(sent.sum(axis=1), 1)
    off = SegmentClassifier(calibrate=False, stack=False).fit(rows, vectors)
    assert off.stack_model_ is None


def test_second_stage_keeps_the_first_stages_neutral(tiny_model):
    model, rows, vectors = tiny_model
    xs, _, words = model._matrices(rows, vectors)
    first = model._stage1_probs(model.sentiment_model_, rows, xs, words, vectors)
    final = np.exp(model._sentiment_logits(rows, vectors, xs, words))
    neutral = SENTIMENTS.index("neutral")
    assert np.allclose(final[:, neutral], first[:, neutral], atol=1e-6)
    assert np.allclose(final.sum(axis=1), 1, atol=1e-6)


def test_vectors_without_clauses_fall_back_to_the_sentence(tiny_model):
    model, rows, vectors = tiny_model
    bare = {k: v[:8] for k, v in vectors.items() if not k.startswith("clause_")}
    sent, qi = model.predict_proba(rows[:8], bare)
    assert sent.shape == (8, len(SENTIMENTS)) and np.allclose(qi.sum(axis=1), 1)
