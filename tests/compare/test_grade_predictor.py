"""GradePredictor follows the scikit-learn estimator contract; its LORO uses the splitter."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone, is_classifier

from pipeline.compare import grade_predictor as gp


def test_grade_predictor_is_a_scikit_learn_classifier():
    model = gp.GradePredictor(alpha=0.3)
    assert is_classifier(model)
    assert model.get_params() == {"alpha": 0.3, "min_sigma": 0.5}
    assert model.set_params(min_sigma=0.8) is model and model.min_sigma == 0.8
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.clip(np.round(4 + X[:, 0]), 1, 6).astype(int)
    fitted = model.fit(X, y)
    assert fitted is model and list(model.classes_) == [1, 2, 3, 4, 5, 6]
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "coef_")
    assert 0 <= model.score(X, y) <= 1  # exact agreement, as ClassifierMixin scores


def test_leave_one_report_out_holds_each_report_out():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 3))
    y = np.clip(np.round(4 + X[:, 0]), 1, 6).astype(int)
    groups = np.repeat(["a", "b", "c"], 4)
    out = gp.leave_one_report_out(X, y, groups, alpha=1.0, min_sigma=0.5)
    assert out["pred"].shape == (12,) and out["proba"].shape == (12, 6)
    assert out["metrics"]["n_reports"] == 3
    for g in "abc":
        held = groups == g
        model = gp.GradePredictor(1.0, 0.5).fit(X[~held], y[~held])
        assert np.allclose(out["proba"][held], model.predict_proba(X[held]))
