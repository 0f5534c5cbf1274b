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
