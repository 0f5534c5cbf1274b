"""The helpers of the benchmark scripts that print figures people quote."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "real_text.py"


@pytest.fixture(scope="module")
def real_text():
    spec = importlib.util.spec_from_file_location("real_text", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kappa_discounts_chance_agreement(real_text):
    assert real_text.kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    # both sides say "a" 90% of the time: 82% raw agreement is what chance gives
    x = ["a"] * 9 + ["b"]
    y = ["a"] * 8 + ["b", "a"]
    assert real_text.kappa(x, y) == pytest.approx((0.8 - 0.82) / (1 - 0.82))


def test_pairs_are_mutual_best_matches_within_a_part(real_text):
    a = [{"part": "q1"}, {"part": "q1"}, {"part": "q2"}]
    b = [{"part": "q1"}, {"part": "q2"}, {"part": "q2"}]
    e = np.eye(3, dtype=np.float32)
    va = np.stack([e[0], e[0] * 0.9 + e[1] * 0.1, e[2]])
    va /= np.linalg.norm(va, axis=1, keepdims=True)
    vb = np.stack([e[0], e[2], e[1]])
    pairs = real_text.mutual_pairs(a, b, va, vb, min_sim=0.5)
    # a[1]'s best in q1 is b[0], but b[0]'s best is a[0]: only one q1 pair; a[2] ~ b[1]
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (2, 1)]
    assert real_text.mutual_pairs(a, b, va, vb, min_sim=1.01) == []


@pytest.fixture(scope="module")
def variants():
    path = SCRIPT.with_name("classifier_variants.py")
    spec = importlib.util.spec_from_file_location("classifier_variants", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _segments(vectors, groups):
    from types import SimpleNamespace

    return SimpleNamespace(vectors={"text": np.asarray(vectors, dtype=float)}, groups=groups)


def test_the_neighbour_vote_comes_from_the_other_reports_only(variants):
    # a0 sits on b0 (class 1); its own report's twin a1 (class 0) must not vote
    X = _segments([[1, 0], [1, 0.01], [1, 0], [0, 1]], ["a", "a", "b", "b"])
    true = np.array([0, 0, 1, 0])
    probs = np.full((4, 2), 0.5)
    vote = variants.knn_blend(probs, X, true, k=1, weight=1.0)
    assert vote[0].tolist() == [0.0, 1.0] and vote[1].tolist() == [0.0, 1.0]
    assert variants.knn_blend(probs, X, true, k=1, weight=0.0).tolist() == probs.tolist()


def test_the_prior_shift_follows_a_reports_own_class_shares(variants):
    # the training reports are half and half; report "a" is read as mostly class 0
    X = _segments(np.zeros((8, 1)), ["a"] * 4 + ["b"] * 4)
    true = np.array([0, 0, 0, 1, 0, 0, 1, 1])
    probs = np.array([[0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.45, 0.55]] + [[0.5, 0.5]] * 4)
    out = variants.prior_adapted(probs, X, true)
    assert np.all(out[:4, 0] > probs[:4, 0])  # more of class 0 than the training share
    assert np.allclose(out.sum(axis=1), 1.0)


def test_variants_change_the_blocks_only_while_they_run(variants):
    from pipeline.train import features, model

    rows = [{"report_id": "a", "part": "q1", "kind": "body", "subsection": "",
             "text": "Not all staff had a clear plan.", "order": i} for i in range(2)]
    vecs = np.eye(2, 3, dtype=np.float32)
    plain = features.dense_blocks(rows, vecs, vecs)
    with variants.scaled_cues(3.0):
        assert np.allclose(model.dense_blocks(rows, vecs, vecs)["cues"], 3 * plain["cues"])
    with variants.extra_block("ones", lambda rs, v: np.ones((len(rs), 1))):
        assert model.dense_blocks(rows, vecs, vecs)["ones"].shape == (2, 1)
        assert model.SENTIMENT_BLOCKS[-1] == "ones"
    assert "ones" not in model.SENTIMENT_BLOCKS
    assert np.allclose(model.dense_blocks(rows, vecs, vecs)["cues"], plain["cues"])


def test_parameter_variants_set_the_train_stage_parameter_with_its_type(variants):
    params = {}
    with variants.variant("finetune=0", params):
        pass
    with variants.variant("epochs=3", params):
        pass
    with variants.variant("seed=2", params):
        pass
    assert params == {"finetune_weight": 0.0, "finetune_epochs": 3, "finetune_seed": 2}
    assert isinstance(params["finetune_epochs"], int)
    assert isinstance(params["finetune_seed"], int)
    with pytest.raises(SystemExit, match="unknown variant"):
        variants.variant("finetune", params)


def test_finetune_variants_above_zero_reblend_and_a_model_folder_is_scored_without_a_fit(
        variants, tmp_path, capsys):
    import json

    from pipeline.core.schema import QI_CODES, SENTIMENTS
    from pipeline.train.out_of_report import OutOfReport

    assert variants.reblend_weight("finetune=0.5") == 0.5
    assert variants.reblend_weight("finetune=0") is None  # a fit without the encoder
    assert variants.reblend_weight("C=3") is None
    rows = [{"report_id": rid, "source": "label", "text": f"s{i}", "sentiment": s,
             "qi": ["2.1"]} for i, (rid, s) in enumerate(
                 [("f01", "positive"), ("f01", "negative"), ("f07", "positive"),
                  ("f07", "negative")])]
    eye = np.eye(len(SENTIMENTS))
    right = eye[[SENTIMENTS.index(r["sentiment"]) for r in rows]]
    wrong = eye[[SENTIMENTS.index("mixed")] * 4]
    qi = np.full((4, len(QI_CODES)), 1 / len(QI_CODES))
    # the regressions are wrong everywhere, the encoder right: 0.6 of it reads all four
    oof = OutOfReport(sentiment=wrong, qi=qi, bare_sentiment=wrong, bare_qi=qi,
                      regression_sentiment=wrong, bare_regression_sentiment=wrong,
                      finetuned_sentiment=right).reblended(0.4)
    folder = tmp_path / "models"
    folder.mkdir()
    with open(folder / "out_of_report.npz", "wb") as fh:
        np.savez(fh, rows=np.array([json.dumps(r) for r in rows]),
                 text_vectors=np.zeros((4, 2)), sentiment=oof.sentiment, qi=oof.qi,
                 bare_sentiment=oof.bare_sentiment, bare_qi=oof.bare_qi,
                 regression_sentiment=wrong, bare_regression_sentiment=wrong,
                 finetuned_sentiment=right, finetune_weight=np.array(0.4))
    variants.saved(folder, ["shipped", "finetune=0.6"])
    out = capsys.readouterr().out
    assert "shipped (0 s, fine-tuned encoder's share 0.40)" in out
    assert "finetune=0.6 (0 s, fine-tuned encoder's share 0.60)" in out
    lines = out.splitlines()
    assert "sentiment accuracy 0.000" in lines[1] and "sentiment accuracy 1.000" in lines[4]
    assert lines[5].strip().startswith("f07-f10") and "accuracy 1.000" in lines[5]
    with pytest.raises(SystemExit, match="shipped and finetune=W"):
        variants.saved(folder, ["pos"])
