"""Print the coverage table and false-positive rates of the comparison's intervals.

    python benchmarks/intervals.py [--draws 2000] [--trials 1000]

Coverage: for each cell size, the share of cells whose 95% interval holds the
true net score, exact over every possible cell of that size (weighted by its
probability), mean and worst case over 66 true share vectors (a 0.1 grid,
shares of 0 and 1 included); the percentile bootstrap it replaced beside it.
False positives: simulated corpora whose focus does not differ from its peers
(identical partnerships, or the focus one more draw from the peers'
population), cell sizes 3-100; the share of comparisons reaching the rule that
it calls more/less positive, for the rule alone (gate at 2 peers) and with the
params' weak-comparison gate. Power: a focus at net +0.95 among peers drawn
around net +0.25.
"""

from __future__ import annotations

import argparse

import numpy as np

from pipeline.compare import benchmark
from pipeline.compare import intervals as iv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    p = dict(benchmark.DEFAULTS)
    grid = iv.share_grid()
    print(f"prior {p['prior']} per class, {args.draws} draws; {len(grid)} true share vectors")
    print("| sentences | coverage (mean) | coverage (worst) | bootstrap (mean) "
          "| bootstrap (worst) |")
    print("|---:|---:|---:|---:|---:|")
    for n in iv.SIZES:
        cov = iv.coverage_by_truth(n, grid, p["prior"], args.draws, p["ci"], p["seed"])
        boot = iv.bootstrap_coverage_by_truth(n, grid, args.draws, p["ci"], p["seed"])
        print(f"| {n} | {cov.mean():.1%} | {cov.min():.1%} | {boot.mean():.1%} | "
              f"{boot.min():.1%} |")
    print()
    print("| partnerships | peers | rule alone | with the weak gate "
          f"(min_peers_verdict {p['min_peers_verdict']}) |")
    print("|---|---:|---:|---:|")
    for scenario in ("identical", "exchangeable"):
        for k in (3, 5, 10, 20, 30):
            rng = np.random.default_rng([p["seed"], k, len(scenario)])
            shares = iv.null_shares(scenario, args.trials, k, rng)
            alone = iv.simulate_verdicts(shares, {**p, "min_peers_verdict": 2}, 1000, rng)
            gated = iv.simulate_verdicts(shares, p, 1000, rng)
            gated_text = (f"{gated['rate_ruled']:.1%} of {gated['n_ruled']}"
                          if gated["n_ruled"] else "none ruled (weak)")
            print(f"| {scenario} | {k} | {alone['rate_ruled']:.1%} of {alone['n_ruled']} | "
                  f"{gated_text} |")
    print()
    print("| peers | power: focus net +0.95 vs peers around +0.25 |")
    print("|---:|---:|")
    for k in (5, 10, 30):
        rng = np.random.default_rng([p["seed"], k, 99])
        g = rng.standard_gamma(np.broadcast_to([7.5, 3.75, 3.75], (args.trials, k + 1, 3)))
        shares = g / g.sum(axis=-1, keepdims=True)
        shares[:, 0] = [0.95, 0.0, 0.05]
        out = iv.simulate_verdicts(shares, p, 1000, rng)
        v = out["verdicts"][np.isin(out["verdicts"], ["above", "below", "similar"])]
        print(f"| {k} | {(v == 'above').mean():.1%} of {len(v)} |")


if __name__ == "__main__":
    main()
