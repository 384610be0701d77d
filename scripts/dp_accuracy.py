"""Accuracy of the differentially private benchmark figures under the default plan.

    .venv/bin/python scripts/dp_accuracy.py [--draws 400]

For a KPI with bounds (0, 20) (e.g. turnover_rate) and n institutions whose values are spread
evenly over 4 .. 12, draws the released median through OpenDP (analytics.release.privacy.private_cell,
the same call the publish makes) and prints the median and 90th percentile of its absolute
error, next to what a median drawn uniformly from the candidate grid would give, and the
standard deviation the Laplace mean would have had (it is not released under DP). The figures
in privacy.py's docstring and docs/dp-section.md come from this script.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.release import dp_budget  # noqa: E402
from analytics.release.privacy import Bounds, candidate_grid, private_cell  # noqa: E402

BOUNDS = Bounds(0.0, 20.0)


def errors(n: int, epsilon_per_statistic: float, draws: int) -> tuple[float, float]:
    values = [4.0 + 8.0 * i / (n - 1) for i in range(n)]
    exact = statistics.median(values)
    errs = sorted(abs(private_cell(values, BOUNDS, epsilon_per_statistic, statistics=("median",))["median"] - exact)
                  for _ in range(draws))
    return errs[len(errs) // 2], errs[int(0.9 * len(errs))]


def uniform_errors() -> tuple[float, float]:
    errs = sorted(abs(c - 8.0) for c in candidate_grid(BOUNDS))
    return errs[len(errs) // 2], errs[int(0.9 * len(errs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400)
    args = parser.parse_args()
    plan = dp_budget.PLAN
    print(f"plan: {plan.refreshes} refreshes x {plan.cells_per_institution} cells x {len(plan.statistics)} statistics")
    u50, u90 = uniform_errors()
    print(f"a uniformly random grid point: |error| median {u50:.2f}, 90th percentile {u90:.2f}")
    print("| E per year | eps per statistic | n | median: abs. error, median | 90th pct | mean sd (not released) |")
    print("|---|---|---|---|---|---|")
    for yearly in (1.0, 10.0, 100.0, 432.0):
        per_statistic = plan.epsilon_per_statistic(yearly)
        for n in (10, 30, 100):
            e50, e90 = errors(n, per_statistic, args.draws)
            mean_sd = math.sqrt(2) * (BOUNDS.upper - BOUNDS.lower) / (per_statistic * n)
            print(f"| {yearly:g} | {per_statistic:.3g} | {n} | {e50:.2f} | {e90:.2f} | {mean_sd:,.3g} |")


if __name__ == "__main__":
    main()
