"""Uncertainty of a net score and of the focus's place among its peers.

A partnership x QI cell is a trinomial count: (positive, negative, other)
sentences, ``other`` being mixed and neutral. Its net score is
``p_pos - p_neg``.

**Cell intervals.** The shares get a Dirichlet posterior under the Jeffreys
prior (``prior`` = 1/2 pseudo-sentence per class); the net's interval is the
equal-tailed interval of posterior draws. The plain percentile bootstrap this
replaces resamples only what was seen, so five positive sentences out of five
gave +1.00 to +1.00; the posterior keeps the chance that the next sentence is
not positive (5/5 now reads about +0.2 to +1.00, 300/300 about +0.99 to
+1.00). A continuous posterior puts no mass on exactly +1, so for a unanimous
cell the bound on the observed side is the boundary itself (the "modified
Jeffreys" rule of Brown, Cai & DasGupta 2001, as Clopper-Pearson does):
otherwise the one value the data support most would be outside the interval.
Posterior draws by hand (gamma variates) rather than a library: scipy has no
distribution for a difference of Dirichlet components, and draws vectorise
over thousands of cells in the coverage check (:func:`coverage_by_truth`).

**Against the peers.** "More positive than the peers" must hold against the
sampling of sentences *and* the choice of peers, so the focus is placed within
the distribution of peers, not against their median: the peers' posterior
nets give a centre and a spread, a typical peer is drawn from the prediction
interval of one more peer (Student t with k - 1 degrees of freedom, so the
uncertainty of the centre with few peers counts), and the focus's own
posterior draws are set against it. The verdict needs the interval of
(focus - a typical peer) to exclude 0. With three peers t has 2 degrees of
freedom and the interval is wide; below ``min_peers_verdict`` peers no verdict
is given at all ("weak comparison"). Ranks get an interval from the same draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SIZES = (3, 5, 10, 30, 100)  # cell sizes the coverage check runs on


# --- one cell -----------------------------------------------------------------------------

def net_draws(counts: np.ndarray, prior: float, n_draws: int,
              rng: np.random.Generator) -> np.ndarray:
    """Posterior draws of the net score: ``counts`` (..., 3) -> (..., n_draws).

    ``counts`` are (positive, negative, other); a Dirichlet(counts + prior) draw
    is three gamma variates over their sum.
    """
    alpha = np.asarray(counts, dtype=float) + prior
    g = rng.standard_gamma(np.broadcast_to(alpha[..., None], (*alpha.shape, n_draws)))
    return (g[..., 0, :] - g[..., 1, :]) / g.sum(axis=-2)


def net_interval(counts: np.ndarray, draws: np.ndarray,
                 ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed interval of ``draws``, reaching +1 (-1) on a unanimously positive
    (negative) cell; vectorised over leading axes."""
    counts = np.asarray(counts)
    tail = (1 - ci) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail], axis=-1)
    all_pos = (counts[..., 1] == 0) & (counts[..., 2] == 0) & (counts[..., 0] > 0)
    all_neg = (counts[..., 0] == 0) & (counts[..., 2] == 0) & (counts[..., 1] > 0)
    return np.where(all_neg, -1.0, lo), np.where(all_pos, 1.0, hi)


# --- the focus among its peers -----------------------------------------------------------

def typical_peer_draws(peer_draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of a typical (new) peer's net, from ``peer_draws`` (k, n_draws).

    The prediction interval of one more member of a sample of k: the peers'
    posterior means x_j give ``mean(x) + t * S * sqrt(1 + 1/k)``, t from
    Student t on k - 1 degrees of freedom. S, the spread of the peers, holds
    both how much they differ and their own sampling noise; sqrt(1 + 1/k) and
    t add how much the centre moves with the choice of peers. (Subtracting the
    peers' sampling variance, random-effects style, was tried: it calls 7-9% of
    identical partnerships different in the simulation; this keeps it under 5%.)
    Clipped to [-1, +1], where every net lies.
    """
    k, n_draws = peer_draws.shape
    if k < 2:
        raise ValueError("a typical peer needs at least two peers")
    x = peer_draws.mean(axis=1)
    spread = x.var(ddof=1)
    t = rng.standard_t(k - 1, size=n_draws)
    return np.clip(x.mean() + t * np.sqrt(spread * (1 + 1 / k)), -1.0, 1.0)


def rank_draws(focus_draws: np.ndarray, peer_draws: np.ndarray) -> np.ndarray:
    """The focus's rank (1 = most positive) among itself and its peers, per draw."""
    return 1 + (peer_draws > focus_draws[..., None, :]).sum(axis=-2)


def gate(n_focus: int, n_peers: int, p: dict[str, Any]) -> str | None:
    """The verdict when the evidence is too little for the rule, else None.

    ``thin``: the focus has fewer than ``min_segments`` sentences;
    ``no comparison``: fewer than ``min_peers`` peers with that many;
    ``weak``: fewer than ``min_peers_verdict`` such peers.
    """
    if n_peers < p["min_peers"]:
        return "no comparison"
    if n_focus < p["min_segments"]:
        return "thin"
    if n_peers < p["min_peers_verdict"]:
        return "weak"
    return None


def verdict(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """'above' / 'below' where the interval of (focus - typical peer) excludes 0."""
    return np.where(lo > 0, "above", np.where(hi < 0, "below", "similar"))


# --- checks by simulation (tests/test_intervals.py, benchmarks/intervals.py) -------------

def share_grid(step: float = 0.1) -> np.ndarray:
    """Every (positive, negative, other) share vector on a grid of ``step``, the
    simplex's corners (a share of 1) and edges (a share of 0) included."""
    m = int(round(1 / step))
    return np.array([(i, j, m - i - j) for i in range(m + 1) for j in range(m + 1 - i)],
                    dtype=float) / m


def _outcomes(n: int) -> np.ndarray:
    return np.array([(i, j, n - i - j) for i in range(n + 1) for j in range(n + 1 - i)])


def _log_pmf(outcomes: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """log multinomial probability of each outcome (rows) under each share vector:
    (n_outcomes, 3) x (n_truths, 3) -> (n_truths, n_outcomes)."""
    from scipy.special import gammaln

    n = outcomes[0].sum()
    log_p = np.log(np.where(shares > 0, shares, 1.0))  # a zero share meets only zero counts
    impossible = (outcomes[None] > 0) & (shares[:, None, :] == 0)
    terms = np.where(impossible, -np.inf, outcomes[None] * log_p[:, None, :])
    return gammaln(n + 1) - gammaln(outcomes + 1).sum(axis=1) + terms.sum(axis=2)


def coverage_by_truth(n: int, truths: np.ndarray, prior: float, n_draws: int, ci: float,
                      seed: int) -> np.ndarray:
    """Exact coverage of the net's interval for cells of ``n`` sentences, per true
    share vector: every possible cell of that size is scored once, weighted by its
    multinomial probability (no sampling error beyond the posterior draws)."""
    outcomes = _outcomes(n)
    rng = np.random.default_rng([seed, n])
    lo, hi = net_interval(outcomes, net_draws(outcomes, prior, n_draws, rng), ci)
    net = truths[:, 0] - truths[:, 1]
    inside = (lo[None] <= net[:, None] + 1e-12) & (net[:, None] - 1e-12 <= hi[None])
    return (np.exp(_log_pmf(outcomes, truths)) * inside).sum(axis=1)


def bootstrap_coverage_by_truth(n: int, truths: np.ndarray, n_boot: int, ci: float,
                                seed: int) -> np.ndarray:
    """The same check for the percentile bootstrap the posterior replaced (for contrast)."""
    outcomes = _outcomes(n)
    rng = np.random.default_rng([seed, n])
    boots = rng.multinomial(n, outcomes / n, size=(n_boot, len(outcomes)))
    draws = ((boots[..., 0] - boots[..., 1]) / n).T
    tail = (1 - ci) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail], axis=-1)
    net = truths[:, 0] - truths[:, 1]
    inside = (lo[None] <= net[:, None] + 1e-12) & (net[:, None] - 1e-12 <= hi[None])
    return (np.exp(_log_pmf(outcomes, truths)) * inside).sum(axis=1)


def null_shares(scenario: str, n_trials: int, k: int,
                rng: np.random.Generator) -> np.ndarray:
    """True shares (n_trials, k + 1, 3) of a focus (index 0) and k peers that do not differ.

    ``identical``: every partnership has the same shares, one vector per trial from
    :func:`share_grid` (corners and edges included). ``exchangeable``: the focus is
    one more draw from the peers' population: per trial a centre from the grid, a
    concentration from 5 to 50, each partnership's shares Dirichlet around the
    centre (peers differ among themselves; the focus is no different from them).
    """
    grid = share_grid()
    centre = grid[rng.integers(len(grid), size=n_trials)]
    if scenario == "identical":
        return np.repeat(centre[:, None, :], k + 1, axis=1)
    if scenario != "exchangeable":
        raise ValueError(f"unknown scenario {scenario!r}")
    conc = rng.choice([5.0, 15.0, 50.0], size=n_trials)
    alpha = np.maximum(centre * conc[:, None], 0.05)
    g = rng.standard_gamma(np.broadcast_to(alpha[:, None, :], (n_trials, k + 1, 3)))
    return g / g.sum(axis=-1, keepdims=True)


def simulate_verdicts(shares: np.ndarray, p: dict[str, Any], n_draws: int,
                      rng: np.random.Generator) -> dict[str, Any]:
    """The production rule on simulated corpora: shares (trials, k + 1, 3), focus first.

    Each cell's size is drawn from :data:`SIZES`; peers below ``min_segments``
    drop out as in the report. Returns the verdicts (``thin``/``weak``/... where
    the evidence gate stops the rule) and how many trials reached the rule.
    """
    trials, parts, _ = shares.shape
    sizes = rng.choice(SIZES, size=(trials, parts))
    counts = rng.multinomial(sizes, shares)
    draws = net_draws(counts, p["prior"], n_draws, rng)
    verdicts = np.empty(trials, dtype=object)
    for t in range(trials):
        keep = sizes[t, 1:] >= p["min_segments"]
        gated = gate(int(sizes[t, 0]), int(keep.sum()), p)
        if gated:
            verdicts[t] = gated
            continue
        peers = draws[t, 1:][keep]
        diff = draws[t, 0] - typical_peer_draws(peers, rng)
        tail = (1 - p["ci"]) / 2
        lo, hi = np.quantile(diff, [tail, 1 - tail])
        verdicts[t] = str(verdict(lo, hi))
    ruled = np.isin(verdicts, ["above", "below", "similar"])
    called = np.isin(verdicts, ["above", "below"])
    return {"verdicts": verdicts, "n_ruled": int(ruled.sum()), "n_called": int(called.sum()),
            "rate_ruled": float(called.sum() / max(ruled.sum(), 1)),
            "rate_all": float(called.mean())}


def calibration(p: dict[str, Any], peer_counts: tuple[int, ...] = (3, 5, 10, 30),
                max_draws: int = 1000) -> dict[str, Any]:
    """Coverage per cell size and the verdict's false-positive rate, at ``p``.

    Written beside the figures so the report states what was measured for the
    parameters it used. Coverage: mean and worst case over :func:`share_grid`
    (66 share vectors, 30 of them with a share of 0 or 1). False positives: the
    share of simulated corpora in which the rule (after its evidence gate)
    calls a focus that does not differ from its peers more or less positive.
    """
    grid = share_grid()
    coverage = []
    for n in SIZES:
        cov = coverage_by_truth(n, grid, p["prior"], p["n_draws"], p["ci"], p["seed"])
        coverage.append({"n": n, "mean": round(float(cov.mean()), 4),
                         "min": round(float(cov.min()), 4)})
    false_positives = []
    for scenario in ("identical", "exchangeable"):
        for k in peer_counts:
            rng = np.random.default_rng([p["seed"], k, len(scenario)])
            shares = null_shares(scenario, p["calibration_trials"], k, rng)
            out = simulate_verdicts(shares, p, min(p["n_draws"], max_draws), rng)
            false_positives.append({
                "scenario": scenario, "peers": k, "trials": p["calibration_trials"],
                "ruled": out["n_ruled"], "called": out["n_called"],
                "rate": round(out["rate_ruled"], 4) if out["n_ruled"] else None})
    return {"grid": len(grid), "grid_boundary": int((grid == 0).any(axis=1).sum()),
            "coverage": coverage, "false_positives": false_positives}
