"""Cell intervals and the peer verdict, checked by simulation (issue 14).

Coverage: for each cell size in ``SIZES`` (3, 5, 10, 30, 100 sentences), every
possible cell of that size is scored once and weighted by its multinomial
probability under each of 66 true share vectors (a 0.1 grid over the simplex:
30 of them with a share of 0 for some class, 3 with a share of 1). The figure
checked is the mean coverage over those 66 truths, per size; the worst truth is
only bounded loosely (discreteness makes some truths at n = 3 sit near 88%).

False positives: simulated corpora of a focus and 3 to 30 peers that do not
differ (identical shares, or the focus one more draw from the peers'
population), cell sizes drawn from ``SIZES``; the rate is the share of
comparisons reaching the rule that it calls "more/less positive".
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.compare import benchmark as bm
from pipeline.compare import intervals as iv

P = dict(bm.DEFAULTS)
GRID = iv.share_grid()


@pytest.mark.parametrize("n", iv.SIZES)
def test_intervals_cover_the_true_net_95_percent_for_each_size(n):
    cov = iv.coverage_by_truth(n, GRID, P["prior"], 2000, P["ci"], seed=0)
    assert 0.93 <= cov.mean() <= 0.97, f"n={n}: mean coverage {cov.mean():.3f}"
    assert cov.min() >= 0.85, f"n={n}: worst coverage {cov.min():.3f}"


def test_the_check_fails_the_percentile_bootstrap_it_replaced():
    """The same harness on the old method: it can fail, and does on small cells."""
    cov = iv.bootstrap_coverage_by_truth(3, GRID, 500, 0.95, seed=0)
    assert cov.mean() < 0.93 and cov.min() < 0.5


def test_the_check_fails_a_prior_that_is_too_strong():
    cov = iv.coverage_by_truth(10, GRID, 5.0, 1000, 0.95, seed=0)
    assert cov.mean() < 0.93


def test_grid_has_shares_of_zero_and_one():
    assert len(GRID) == 66
    assert ((GRID == 1).any(axis=1)).sum() == 3 and ((GRID == 0).any(axis=1)).sum() == 30


@pytest.mark.parametrize("scenario", ["identical", "exchangeable"])
@pytest.mark.parametrize("k", [3, 5, 10, 30])
def test_false_positive_rate_is_at_most_5_percent(scenario, k):
    # The rule itself, even at 3 peers (the weak-comparison gate lowered to 2).
    p = {**P, "min_peers_verdict": 2}
    rng = np.random.default_rng([0, k, len(scenario)])
    out = iv.simulate_verdicts(iv.null_shares(scenario, 400, k, rng), p, 500, rng)
    assert out["n_ruled"] > 200
    assert out["rate_ruled"] <= 0.05, f"{scenario}, {k} peers: {out['rate_ruled']:.3f}"


def test_weak_gate_gives_no_verdict_with_few_peers():
    rng = np.random.default_rng(1)
    out = iv.simulate_verdicts(iv.null_shares("identical", 50, 3, rng), P, 200, rng)
    assert out["n_ruled"] == 0 and set(out["verdicts"]) <= {"weak", "thin", "no comparison"}


def test_the_rule_finds_a_real_difference():
    """Not vacuous: a focus far above ten tight peers is called more positive."""
    rng = np.random.default_rng(2)
    shares = np.tile([0.3, 0.3, 0.4], (200, 11, 1))
    shares[:, 0] = [0.95, 0.0, 0.05]
    out = iv.simulate_verdicts(shares, P, 500, rng)
    verdicts = out["verdicts"][np.isin(out["verdicts"], ["above", "below", "similar"])]
    assert (verdicts == "above").mean() > 0.8 and "below" not in verdicts
