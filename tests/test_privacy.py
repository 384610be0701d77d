"""Tests for analytics.privacy (OpenDP-backed differentially private cells).

The statistical tests use OpenDP's CSPRNG (it cannot be seeded), so their
tolerances are chosen to make a false failure very unlikely (< ~1e-3 each)
while still catching a wrong noise scale, a missing noise draw, a biased
mechanism or missing clamping.
"""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from analytics.privacy import (
    QUANTILE_CANDIDATES,
    Bounds,
    candidate_grid,
    privacy_summary,
    private_cell,
    split_budget,
)

BOUNDS = Bounds(0.0, 100.0)
SPACING = (BOUNDS.upper - BOUNDS.lower) / (QUANTILE_CANDIDATES - 1)
# 50 institutions, deterministic, well inside the bounds (20 .. 80)
DATA = [20.0 + 60.0 * ((i * 37) % 50) / 49 for i in range(50)]


def exact_quantile(values, alpha):
    """Lower empirical quantile (the value at rank floor(alpha * n))."""
    ordered = sorted(values)
    return ordered[min(int(alpha * len(ordered)), len(ordered) - 1)]


def quantile_interval(values, alpha):
    """Order statistics around rank alpha * n: with gaps wider than the grid
    every candidate between them scores equally well, so an exact quantile
    mechanism may return any of them."""
    ordered = sorted(values)
    n = len(ordered)
    lo = max(math.floor(alpha * n) - 1, 0)
    hi = min(math.ceil(alpha * n), n - 1)
    return ordered[lo], ordered[hi]


# --- split_budget ---------------------------------------------------------

def test_split_budget_divides_by_cells_and_statistics():
    assert split_budget(1.0, 10) == pytest.approx(1.0 / 40)
    assert split_budget(2.0, 5, 4) == pytest.approx(0.1)
    assert split_budget(3.0, 1, 1) == 3.0
    assert split_budget(1.0, 3, statistics_per_cell=2) == pytest.approx(1 / 6)
    assert split_budget(1.0, 24, 3, refreshes=12) == pytest.approx(1 / 864)


@pytest.mark.parametrize("epsilon, cells, stats, fragment", [
    (0.0, 10, 4, "epsilon"),
    (-1.0, 10, 4, "epsilon"),
    (float("nan"), 10, 4, "epsilon"),
    (float("inf"), 10, 4, "epsilon"),
    (1.0, 0, 4, "cells_per_institution"),
    (1.0, -2, 4, "cells_per_institution"),
    (1.0, 10, 0, "statistics_per_cell"),
    (1.0, 2.5, 4, "cells_per_institution"),
])
def test_split_budget_rejects_bad_input(epsilon, cells, stats, fragment):
    with pytest.raises(ValueError, match=fragment):
        split_budget(epsilon, cells, stats)


# --- Bounds / input validation -------------------------------------------

def test_bounds_must_be_ordered_and_finite():
    with pytest.raises(ValueError, match="lower < upper"):
        Bounds(5.0, 5.0)
    with pytest.raises(ValueError, match="finite"):
        Bounds(0.0, float("inf"))


def test_private_cell_rejects_bad_input():
    with pytest.raises(ValueError, match="n=3"):
        private_cell([1.0, 2.0], BOUNDS, 1.0, n=3)
    with pytest.raises(ValueError, match="NaN"):
        private_cell([1.0, float("nan")], BOUNDS, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        private_cell([], BOUNDS, 1.0)
    with pytest.raises(ValueError, match="epsilon_per_statistic"):
        private_cell(DATA, BOUNDS, 0.0)


# --- shape, bounds, ordering, documented noise ---------------------------

def test_candidate_grid_is_evenly_spaced_inside_bounds():
    grid = candidate_grid(BOUNDS)
    assert len(grid) == QUANTILE_CANDIDATES == 256
    assert grid[0] == BOUNDS.lower and grid[-1] == BOUNDS.upper
    gaps = [b - a for a, b in itertools.pairwise(grid)]
    assert max(gaps) == pytest.approx(SPACING) and min(gaps) == pytest.approx(SPACING)


def test_noise_documentation_matches_formulas():
    eps = 0.5
    cell = private_cell(DATA, BOUNDS, eps)
    noise = cell["noise"]
    n = len(DATA)
    expected_b = (BOUNDS.upper - BOUNDS.lower) / eps / n
    # OpenDP adds a float-rounding allowance of ~1e-13 relative to the sensitivity
    assert noise["mean"]["laplace_scale"] == pytest.approx(expected_b, rel=1e-9)
    assert noise["mean"]["laplace_scale"] >= expected_b
    assert noise["mean"]["std"] == pytest.approx(math.sqrt(2) * expected_b, rel=1e-9)
    assert noise["mean"]["sum_laplace_scale"] == pytest.approx(
        noise["mean"]["laplace_scale"] * n)
    assert noise["mean"]["epsilon"] == eps
    assert noise["quantiles"]["epsilon"] == eps
    assert noise["quantiles"]["spacing"] == pytest.approx(SPACING)
    assert noise["quantiles"]["candidates"] == 256
    assert noise["n"] == n
    # four statistics, basic composition, as certified by OpenDP's own map
    assert noise["epsilon_cell"] == pytest.approx(4 * eps, rel=1e-9)
    assert noise["epsilon_cell"] <= 4 * eps * (1 + 1e-9)


def test_outputs_in_bounds_on_grid_and_ordered_at_tiny_epsilon():
    # At epsilon 0.01 the three quantiles are nearly uniform over the grid and
    # would cross often; the mean's noise (b = 200) leaves the bounds often.
    grid = set(candidate_grid(BOUNDS))
    near_top = [95.0 + i * 0.1 for i in range(40)]
    for _ in range(60):
        cell = private_cell(near_top, BOUNDS, 0.01)
        assert cell["p25"] <= cell["median"] <= cell["p75"]
        for key in ("p25", "median", "p75"):
            assert cell[key] in grid
        for key in ("p25", "median", "p75", "mean"):
            assert BOUNDS.lower <= cell[key] <= BOUNDS.upper


# --- statistical behaviour of the mean ------------------------------------

def test_mean_noise_is_laplace_with_documented_scale():
    draws = 600
    eps = 1.0
    exact = statistics.fmean(DATA)  # DATA is inside the bounds: clamping is a no-op
    errors = []
    scale = None
    for _ in range(draws):
        cell = private_cell(DATA, BOUNDS, eps)
        errors.append(cell["mean"] - exact)
        scale = cell["noise"]["mean"]["laplace_scale"]
    assert scale == pytest.approx(2.0, rel=1e-9)  # (100 - 0) / 1 / 50
    sd = statistics.pstdev(errors)
    # Laplace(b) has sd sqrt(2) b; with 600 draws the estimate's relative
    # standard error is ~4.6 %, so 15 % is > 3 standard errors.
    assert sd == pytest.approx(math.sqrt(2) * scale, rel=0.15)
    # unbiased: within 4 standard errors of the average
    assert abs(statistics.fmean(errors)) < 4 * math.sqrt(2) * scale / math.sqrt(draws)
    assert len(set(errors)) == draws  # fresh noise on every call


def test_large_epsilon_is_nearly_exact():
    eps = 1e6
    cell = private_cell(DATA, BOUNDS, eps)
    exact = statistics.fmean(DATA)
    assert cell["mean"] == pytest.approx(exact, rel=1e-6)
    assert cell["mean"] != exact  # noise is still drawn
    for key, alpha in (("p25", 0.25), ("median", 0.5), ("p75", 0.75)):
        lo, hi = quantile_interval(DATA, alpha)  # DATA has gaps of ~1.2 > SPACING
        assert lo - SPACING - 1e-9 <= cell[key] <= hi + SPACING + 1e-9, key


def test_large_epsilon_quantiles_on_dense_data_match_grid_rounding():
    # 501 values 10.0 .. 90.0 in steps of 0.16 (< one grid spacing of ~0.39)
    dense = [10.0 + 0.16 * i for i in range(501)]
    cell = private_cell(dense, BOUNDS, 1e6)
    for key, alpha in (("p25", 0.25), ("median", 0.5), ("p75", 0.75)):
        assert abs(cell[key] - exact_quantile(dense, alpha)) <= SPACING + 1e-9, key


# --- statistical behaviour of the quantiles -------------------------------

def test_quantile_error_shrinks_as_epsilon_grows():
    draws = 200
    exact = exact_quantile(DATA, 0.5)

    def median_abs_error(eps):
        return statistics.median(abs(private_cell(DATA, BOUNDS, eps)["median"] - exact)
                                 for _ in range(draws))

    low, high = median_abs_error(0.05), median_abs_error(5.0)
    assert low > high
    # at epsilon 5 (selection scale 0.4 score units) the median is within a
    # few grid steps; at 0.05 it is spread over much of the range
    assert high <= 5 * SPACING
    assert low > 5 * SPACING


# --- clamping -------------------------------------------------------------

def test_outliers_are_clamped_before_release():
    n = len(DATA)
    eps = 1e6  # noise negligible: isolates the clamping effect
    base = private_cell(DATA, BOUNDS, eps)
    high = private_cell(DATA[:-1] + [1e12], BOUNDS, eps)
    low = private_cell(DATA[:-1] + [-1e12], BOUNDS, eps)
    # replacing one value by a huge outlier moves the mean by at most
    # (bound - replaced value) / n, i.e. at most (upper - lower) / n
    clamped_high = statistics.fmean(DATA[:-1] + [BOUNDS.upper])
    clamped_low = statistics.fmean(DATA[:-1] + [BOUNDS.lower])
    assert high["mean"] == pytest.approx(clamped_high, rel=1e-6)
    assert low["mean"] == pytest.approx(clamped_low, rel=1e-6)
    assert high["mean"] - base["mean"] <= (BOUNDS.upper - BOUNDS.lower) / n + 1e-3
    assert base["mean"] - low["mean"] <= (BOUNDS.upper - BOUNDS.lower) / n + 1e-3
    for cell in (high, low):
        for key in ("p25", "median", "p75", "mean"):
            assert BOUNDS.lower <= cell[key] <= BOUNDS.upper
    # the noise scale depends on the bounds only, never on the data
    assert high["noise"]["mean"]["laplace_scale"] == base["noise"]["mean"]["laplace_scale"]


# --- manifest summary -----------------------------------------------------

def test_privacy_summary_records_the_guarantee():
    eps_stat = split_budget(2.0, 10, 4)
    summary = privacy_summary(2.0, 10, 4, eps_stat)
    assert summary["epsilon"] == 2.0
    assert summary["epsilon_per_statistic"] == pytest.approx(0.05)
    assert summary["epsilon_planned"] == pytest.approx(2.0)
    assert summary["epsilon_per_cell"] == pytest.approx(0.2)
    assert summary["cells_per_institution"] == 10
    assert summary["statistics_per_cell"] == 4
    assert summary["refreshes"] == 1
    assert summary["privacy_unit"] == "one institution"
    assert "sequential composition" in summary["composition"]
    assert "make_private_quantile" in summary["mechanisms"]["quantiles"]
    assert "make_laplace" in summary["mechanisms"]["mean"]
    assert summary["library"].startswith("opendp ")


def test_privacy_summary_of_a_yearly_plan_without_the_mean():
    eps_stat = split_budget(1.0, 24, 3, refreshes=12)
    summary = privacy_summary(1.0, 24, 3, eps_stat, 12, ("p25", "median", "p75"))
    assert summary["epsilon_per_statistic"] == pytest.approx(1 / 864)
    assert summary["epsilon_planned"] == pytest.approx(1.0)
    assert summary["statistics"] == ["p25", "median", "p75"]
    assert set(summary["mechanisms"]) == {"quantiles"}
    assert "mean" not in summary["post_processing"]


def test_privacy_summary_rejects_overspending():
    with pytest.raises(ValueError, match="exceeds the budget"):
        privacy_summary(1.0, 10, 4, 0.03)
    with pytest.raises(ValueError, match="exceeds the budget"):
        privacy_summary(1.0, 10, 4, 0.025, refreshes=2)
    with pytest.raises(ValueError, match="epsilon"):
        privacy_summary(0.0, 10, 4, 0.0)


# --- private_cell without the mean ----------------------------------------

def test_private_cell_releases_only_the_requested_statistics():
    cell = private_cell(DATA, BOUNDS, 0.5, statistics=("p25", "median", "p75"))
    assert cell["mean"] is None and cell["noise"]["mean"] is None
    assert cell["noise"]["statistics"] == ["p25", "median", "p75"]
    # three statistics, basic composition, certified by OpenDP's own map
    assert cell["noise"]["epsilon_cell"] == pytest.approx(3 * 0.5, rel=1e-9)
    assert cell["p25"] <= cell["median"] <= cell["p75"]
    with pytest.raises(ValueError, match="subset"):
        private_cell(DATA, BOUNDS, 0.5, statistics=("p90",))
    with pytest.raises(ValueError, match="subset"):
        private_cell(DATA, BOUNDS, 0.5, statistics=())


def test_quantile_rank_error_matches_the_measured_spread():
    import bisect

    from analytics.privacy import quantile_rank_error

    assert quantile_rank_error(1.0) == pytest.approx(math.log(256))
    n, eps = 200, 0.2  # rule of thumb: ~28 institutions, well below n / 2
    values = [float(i) / 2 for i in range(n)]  # spacing 0.5 > grid step 100/255: ranks are resolvable
    errors = sorted(abs(bisect.bisect_left(values, private_cell(values, BOUNDS, eps, statistics=("median",))
                                            ["median"]) - n / 2) for _ in range(200))
    p90 = errors[179]
    # measured 0.65 .. 1.0 x the rule of thumb; the bounds leave room for sampling error
    assert 0.3 * quantile_rank_error(eps) <= p90 <= 1.6 * quantile_rank_error(eps)
