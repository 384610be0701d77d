"""Tests for analytics.release.privacy (OpenDP-backed differentially private cells).

The statistical tests use OpenDP's CSPRNG (it cannot be seeded), so their
tolerances are chosen to make a false failure very unlikely (< ~1e-3 each)
while still catching a wrong noise scale, a missing noise draw, a biased
mechanism or missing clamping.
"""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import date, datetime, timezone

import polars as pl
import pytest
import sqlalchemy as sa

from analytics.release import dp_budget
from analytics.core.access import Principal
from analytics.release.dp_budget import KEY_FILE, fingerprint, fingerprint_key
from analytics.release.privacy import (
    QUANTILE_CANDIDATES,
    Bounds,
    candidate_grid,
    privacy_summary,
    private_cell,
    split_budget,
)
from analytics.control.store import SystemJobStore

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


# --- the yearly budget account (dp_budget), on SQLite and PostgreSQL -------

KEY = bytes(range(32))
CODES = {i: f"I{i:02d}" for i in range(12)}
PER_CELL = 3 / 864  # the default plan at E = 1: 12 refreshes x 24 cells x 3 statistics


def _cell(kpi="turnover_rate", period="2025", group="all", members=range(10), values=None, region="EU"):
    members = list(members)
    values = [1.0 + m for m in members] if values is None else values
    return {"region": region, "peer_group": group, "kpi": kpi, "period": period, "members": members,
            "values": sorted(values), "n": len(members), "released": True, "reason": None}


def _release(store, cells, as_of, release_id, epsilon=1.0):
    job = SystemJobStore(store, Principal.system_job())
    frame, note = dp_budget.DPRelease(job, epsilon, as_of, release_id, KEY).release_rows(
        [dict(c) for c in cells], CODES)
    rows = {(r["peer_group"], r["kpi"], r["period"]): r for r in frame.filter(pl.col("variant") == "none").to_dicts()}
    assert frame.filter(pl.col("variant") == "trim10")["suppressed"].all()
    return rows, note["budget"], dp_budget.yearly_spend(job, as_of.year)


def _figures(row):
    return row["n"], row["p25"], row["median"], row["p75"], row["quantile_step"]


def test_plan_at_epsilon_one():
    plan = dp_budget.PLAN
    assert plan.cells_per_institution == 24 and plan.refreshes == 12
    assert plan.epsilon_per_statistic(1.0) == pytest.approx(1 / 864)
    assert plan.epsilon_per_cell(1.0) == pytest.approx(PER_CELL)
    assert [plan.refresh_of(date(2026, m, 1)) for m in (1, 2, 12)] == [0, 1, 11]
    assert [dp_budget.Plan(refreshes=4).refresh_of(date(2026, m, 1)) for m in (1, 3, 4, 12)] == [0, 0, 1, 3]
    assert dp_budget.group_kind("type=research&size=1,000-4,999") == "type&size"


def test_second_release_of_unchanged_cells_spends_nothing_and_repeats_the_values(store):
    cells = [_cell(), _cell(group="type=research", members=range(6)), _cell(kpi="pct_circulated")]
    first, budget1, spend1 = _release(store, cells, date(2026, 2, 10), "r1")
    key = ("all", "turnover_rate", "2025")
    assert first[key]["method"] == "dp" and not first[key]["suppressed"] and first[key]["reason"] is None
    assert first[key]["mean"] is None and first[key]["mean_noise_sd"] is None  # the mean is not released
    assert first[key]["quantile_step"] == pytest.approx(20 / 255)
    assert 0 <= first[key]["p25"] <= first[key]["median"] <= first[key]["p75"] <= 20
    # I00..I05 are in three drawn cells, I06..I09 in two
    assert spend1 == {**{CODES[i]: pytest.approx(3 * PER_CELL) for i in range(6)},
                      **{CODES[i]: pytest.approx(2 * PER_CELL) for i in range(6, 10)}}
    assert budget1["cells"]["drawn"] == 3 and budget1["year"] == 2026 and budget1["epsilon_per_year"] == 1.0
    assert budget1["epsilon_spent_release_max"] == pytest.approx(3 * PER_CELL)
    assert budget1["epsilon_spent_year_max"] == pytest.approx(3 * PER_CELL)
    assert budget1["epsilon_remaining_min"] == pytest.approx(1 - 3 * PER_CELL)

    second, budget2, spend2 = _release(store, cells, date(2026, 3, 10), "r2")
    assert {k: _figures(r) for k, r in second.items()} == {k: _figures(r) for k, r in first.items()}
    assert all(r["reason"] is None and r["method"] == "dp" for r in second.values())
    assert spend2 == spend1
    assert budget2["cells"] == {"drawn": 0, "kept": 3, "stale": 0, "suppressed_budget": 0, "out_of_scope": 0}
    assert budget2["epsilon_spent_release_max"] == 0.0
    assert budget2["epsilon_spent_year_max"] == pytest.approx(3 * PER_CELL)


def test_the_account_keeps_fingerprints_and_noisy_figures_never_the_values(store):
    values = [1.25, 2.5, 3.75, 5.0, 6.25]
    _release(store, [_cell(members=range(5), values=values)], date(2026, 2, 10), "r1")
    with store.engine.connect() as con:
        [stored] = con.execute(sa.select(dp_budget.dp_cells)).mappings().all()
    assert set(stored) == {"region", "peer_group", "kpi", "period", "fingerprint", "members", "n", "p25", "median",
                           "p75", "mean", "mean_noise_sd", "quantile_step", "epsilon_per_statistic", "drawn_year",
                           "drawn_refresh", "drawn_on", "release_id"}
    assert len(stored["fingerprint"]) == 64 and stored["n"] == 5 and stored["drawn_on"] == date(2026, 2, 10)
    assert stored["fingerprint"] == dp_budget.fingerprint(KEY, "EU", "all", "turnover_rate", "2025",
                                                          [CODES[i] for i in range(5)], values, (0, 20),
                                                          ("p25", "median", "p75"))
    assert not {str(v) for v in values} & {str(v) for v in stored.values()}


def test_fingerprint_depends_on_members_values_and_key_not_on_order():
    def fp(members=("A", "B", "C"), values=(1.0, 2.0, 3.0), key=KEY):
        return fingerprint(key, "EU", "all", "loans_per_fte", "2025", members, values, (0, 500), ("median",))

    assert fp() == fp(members=("C", "A", "B"), values=(3.0, 1.0, 2.0))
    assert fp() != fp(values=(1.0, 2.0, 3.5))
    assert fp() != fp(members=("A", "B", "D"))
    assert fp() != fp(key=b"another key")


def test_fingerprint_key_is_created_once_and_private(tmp_path):
    import stat

    key = fingerprint_key(tmp_path)
    assert len(key) == 32 and fingerprint_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_a_changed_cell_is_redrawn_and_charges_only_its_members(store):
    cells = [_cell(members=range(10)), _cell(group="type=research", members=range(5, 10))]
    first, _, spend1 = _release(store, cells, date(2026, 2, 10), "r1")
    changed = [_cell(members=range(10), values=[1.0 + m for m in range(9)] + [17.5]), cells[1]]
    second, budget, spend2 = _release(store, changed, date(2026, 3, 10), "r2")
    assert budget["cells"]["drawn"] == 1 and budget["cells"]["kept"] == 1
    assert budget["epsilon_spent_release_max"] == pytest.approx(PER_CELL)
    assert spend2 == {code: pytest.approx(spend1[code] + PER_CELL) for code in spend1}
    assert _figures(second[("type=research", "turnover_rate", "2025")]) == \
        _figures(first[("type=research", "turnover_rate", "2025")])
    redrawn = second[("all", "turnover_rate", "2025")]
    assert redrawn["reason"] is None and redrawn["method"] == "dp"
    # New noise: at this epsilon each quantile is close to uniform over 256 candidates, so the
    # chance that all three come out as before is below 1e-6.
    before = first[("all", "turnover_rate", "2025")]
    assert (redrawn["p25"], redrawn["median"], redrawn["p75"]) != (before["p25"], before["median"], before["p75"])
    with store.engine.connect() as con:
        row = con.execute(sa.select(dp_budget.dp_cells)
                          .where(dp_budget.dp_cells.c.peer_group == "all")).mappings().one()
        charges = con.execute(sa.select(dp_budget.dp_charges).where(dp_budget.dp_charges.c.release_id == "r2")
                              ).mappings().all()
    assert (row["release_id"], row["drawn_on"], row["drawn_refresh"]) == ("r2", date(2026, 3, 10), 2)
    assert (row["p25"], row["median"], row["p75"]) == (redrawn["p25"], redrawn["median"], redrawn["p75"])
    assert {(c["institution_code"], c["cells"]) for c in charges} == {(CODES[i], 1) for i in range(10)}
    # Another change in the same month waits for the next monthly refresh: stale, nothing spent.
    again = [_cell(members=range(10), values=[1.0 + m for m in range(9)] + [19.0]), cells[1]]
    third, budget, spend3 = _release(store, again, date(2026, 3, 20), "r3")
    stale = third[("all", "turnover_rate", "2025")]
    assert _figures(stale) == _figures(redrawn) and not stale["suppressed"] and stale["method"] == "dp"
    assert stale["reason"] == ("stale: figures drawn from the data as of 2026-03-10; the data changed since and "
                               "figures are redrawn at most once a month")
    assert spend3 == spend2 and budget["cells"]["stale"] == 1 and budget["epsilon_spent_release_max"] == 0.0


def _spend_before(store, year, code, epsilon):
    with store.engine.begin() as con:
        con.execute(dp_budget.dp_charges.insert().values(
            year=year, institution_code=code, release_id="earlier", epsilon=epsilon, cells=1,
            charged_at=datetime(year, 1, 5, tzinfo=timezone.utc)))


def test_exhausted_budget_keeps_stale_figures_or_suppresses(store):
    first, _, _ = _release(store, [_cell(members=range(10))], date(2026, 2, 10), "r1")
    # I00 has spent all but half a cell's worth of its 2026 budget in other releases.
    _spend_before(store, 2026, "I00", 1.0 - PER_CELL - PER_CELL / 2)
    cells = [_cell(members=range(10), values=[2.0 + m for m in range(10)]),  # changed, I00 in it
             _cell(kpi="pct_circulated", members=range(10)),  # new, I00 in it
             _cell(kpi="median_age", members=range(1, 11))]  # new, without I00
    rows, budget, spend = _release(store, cells, date(2026, 3, 10), "r2")
    stale = rows[("all", "turnover_rate", "2025")]
    assert _figures(stale) == _figures(first[("all", "turnover_rate", "2025")])
    assert not stale["suppressed"] and stale["method"] == "dp"
    assert stale["reason"] == ("stale: figures drawn from the data as of 2026-02-10; the data changed since and "
                               "this year's privacy budget is spent")
    spent = rows[("all", "pct_circulated", "2025")]
    assert spent["suppressed"] and spent["reason"] == dp_budget.REASON_SPENT == \
        "suppressed: this year's privacy budget is spent"
    assert (spent["n"], spent["median"], spent["method"]) == (None, None, None)
    drawn = rows[("all", "median_age", "2025")]
    assert not drawn["suppressed"] and drawn["reason"] is None and drawn["n"] == 10
    assert spend["I00"] == pytest.approx(1.0 - PER_CELL / 2)  # nothing more charged to I00
    assert spend["I10"] == pytest.approx(PER_CELL) and spend["I01"] == pytest.approx(2 * PER_CELL)
    assert budget["cells"] == {"drawn": 1, "kept": 0, "stale": 1, "suppressed_budget": 1, "out_of_scope": 0}
    assert budget["epsilon_spent_year_max"] == pytest.approx(1.0 - PER_CELL / 2)
    assert budget["epsilon_remaining_min"] == pytest.approx(PER_CELL / 2)
    assert budget["epsilon_spent_release_max"] == pytest.approx(PER_CELL)


def test_figures_drawn_with_an_institution_that_stopped_sharing_are_never_shown_again(store):
    first, _, _ = _release(store, [_cell(members=range(10)), _cell(kpi="pct_circulated", members=range(10))],
                           date(2026, 2, 10), "r1")
    _spend_before(store, 2026, "I01", 1.0)  # I01 cannot pay for a new draw
    contributing = {i: code for i, code in CODES.items() if i != 9}  # I09 stopped sharing, I10 joined
    cells = [_cell(members=[*range(9), 10]), _cell(kpi="pct_circulated", members=[*range(2, 9), 10])]
    job = SystemJobStore(store, Principal.system_job())
    frame, note = dp_budget.DPRelease(job, 1.0, date(2026, 2, 20), "r2", KEY).release_rows(cells, contributing)
    rows = {r["kpi"]: r for r in frame.filter(pl.col("variant") == "none").to_dicts()}
    # turnover: I01 lacks the budget and the last figures include I09: suppressed, not stale
    assert rows["turnover_rate"]["reason"] == dp_budget.REASON_SPENT and rows["turnover_rate"]["median"] is None
    # pct_circulated: drawn this month already, but with I09: redrawn (its members have budget)
    assert rows["pct_circulated"]["reason"] is None and rows["pct_circulated"]["n"] == 8
    assert note["budget"]["cells"]["drawn"] == 1 and note["budget"]["cells"]["stale"] == 0
    assert first[("all", "turnover_rate", "2025")]["n"] == 10  # shown before I09 left


def test_a_new_year_starts_a_new_budget(store):
    first, _, _ = _release(store, [_cell(members=range(10)), _cell(kpi="pct_circulated", members=range(10))],
                           date(2026, 11, 10), "r1")
    _spend_before(store, 2026, "I00", 1.0)  # I00's 2026 budget is more than spent
    cells = [_cell(members=range(10)),  # 2025, unchanged: kept
             _cell(kpi="pct_circulated", members=range(10), values=[5.0] * 10),  # 2025, changed: not redrawn
             _cell(kpi="loans_per_fte", period="2024", members=range(10)),  # never drawn: suppressed
             _cell(period="2026", members=range(10))]  # the new last complete year: drawn
    rows, budget, spend = _release(store, cells, date(2027, 1, 15), "r2")
    assert _figures(rows[("all", "turnover_rate", "2025")]) == _figures(first[("all", "turnover_rate", "2025")])
    assert rows[("all", "turnover_rate", "2025")]["reason"] is None
    assert rows[("all", "pct_circulated", "2025")]["reason"].endswith("earlier years are not redrawn")
    assert _figures(rows[("all", "pct_circulated", "2025")]) == _figures(first[("all", "pct_circulated", "2025")])
    assert rows[("all", "loans_per_fte", "2024")]["reason"].startswith(
        "suppressed: with differential privacy only the last complete year (2026) is drawn")
    new = rows[("all", "turnover_rate", "2026")]
    assert not new["suppressed"] and new["reason"] is None and new["n"] == 10
    assert spend == {CODES[i]: pytest.approx(PER_CELL) for i in range(10)}  # 2027 only
    assert budget["year"] == 2027 and budget["epsilon_spent_year_max"] == pytest.approx(PER_CELL)
    assert dp_budget.yearly_spend(SystemJobStore(store, Principal.system_job()), 2026)["I00"] == \
        pytest.approx(1.0 + 2 * PER_CELL)


def test_cells_outside_the_plan_are_suppressed_and_cost_nothing(store):
    cells = [_cell(period="2025-03"), _cell(group="size=1,000-4,999"), _cell(group="country=DE"),
             _cell(kpi="loans"), {**_cell(kpi="median_age"), "released": False,
                                  "reason": "suppressed: fewer than 5 institutions"}]
    rows, budget, spend = _release(store, cells, date(2026, 2, 10), "r1")
    assert rows[("all", "turnover_rate", "2025-03")]["reason"] == dp_budget.REASON_MONTHLY
    assert rows[("size=1,000-4,999", "turnover_rate", "2025")]["reason"] == \
        "suppressed: only the peer groups all and type are released with differential privacy"
    assert rows[("country=DE", "turnover_rate", "2025")]["suppressed"]
    assert "public range is too wide" in rows[("all", "loans", "2025")]["reason"]
    assert rows[("all", "median_age", "2025")]["reason"] == "suppressed: fewer than 5 institutions"
    assert all(r["suppressed"] and r["n"] is None for r in rows.values())
    assert spend == {} and budget["cells"]["out_of_scope"] == 4 and budget["epsilon_spent_release_max"] == 0.0


def test_quantile_rank_error_matches_the_measured_spread():
    import bisect

    from analytics.release.privacy import quantile_rank_error

    assert quantile_rank_error(1.0) == pytest.approx(math.log(256))
    n, eps = 200, 0.2  # rule of thumb: ~28 institutions, well below n / 2
    values = [float(i) / 2 for i in range(n)]  # spacing 0.5 > grid step 100/255: ranks are resolvable
    errors = sorted(abs(bisect.bisect_left(values, private_cell(values, BOUNDS, eps, statistics=("median",))
                                            ["median"]) - n / 2) for _ in range(200))
    p90 = errors[179]
    # measured 0.65 .. 1.0 x the rule of thumb; the bounds leave room for sampling error
    assert 0.3 * quantile_rank_error(eps) <= p90 <= 1.6 * quantile_rank_error(eps)
