"""The disclosure layer's building blocks (analytics/disclosure.py): noise that is persistent,
never zero where it must not be, bounded, and keyed by what docs/privacy.md says."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analytics.contribute import disclosure
from analytics.control.store import new_secret

SECRET_A = "a" * 64
SECRET_B = "b" * 64


def loans_table(values: list[int]) -> dict[str, pl.DataFrame]:
    return {"loans": pl.DataFrame({"work_key": [f"isbn:{i:013d}" for i in range(len(values))],
                                   "month": ["2025-03"] * len(values), "loans": values,
                                   "renewals": [0] * len(values)})}


def test_magnitude_noise_is_persistent_never_zero_and_bounded():
    values = list(range(1, 400)) * 5
    table = loans_table(values)
    first = disclosure.perturb_contribution(table, SECRET_A)["loans"]["loans"].to_numpy()
    again = disclosure.perturb_contribution(table, SECRET_A)["loans"]["loans"].to_numpy()
    other = disclosure.perturb_contribution(table, SECRET_B)["loans"]["loans"].to_numpy()
    x = np.array(values)
    assert (first == again).all()  # the same in every release
    assert (first != other).mean() > 0.5  # another institution's noise differs
    moved = np.abs(first - x)
    assert (moved >= 1).all()  # never the true value
    # at least 2% (rounded up) and at most 10% (or one unit) of the value, except where clipped at 0
    assert (moved[x >= 50] >= np.ceil(0.02 * x[x >= 50])).all()
    assert (moved <= np.maximum(1, np.ceil(0.10 * x))).all()
    # exact within 1% never happens, so differencing a joiner can never read its value
    assert (np.abs(first - x) > 0.01 * x).all()
    # up and down alike: the mean error is small against the values
    assert abs((first - x).mean()) < 0.05 * x.mean()
    # renewals of 0 stay 0: a row says nothing new about an empty figure
    assert disclosure.perturb_contribution(table, SECRET_A)["loans"]["renewals"].to_list() == [0] * len(values)


def test_magnitude_noise_keeps_rows_nulls_and_other_tables():
    tables = {**loans_table([3, 5]), "holdings": pl.DataFrame({"work_key": ["x"], "copies_held": [2]})}
    tables["loans"] = tables["loans"].with_columns(pl.Series("renewals", [None, 4], dtype=pl.Int64))
    out = disclosure.perturb_contribution(tables, SECRET_A)
    assert out["holdings"].equals(tables["holdings"])
    assert out["loans"].height == 2 and out["loans"]["renewals"][0] is None
    assert out["loans"].schema == tables["loans"].schema


def test_kpi_factors_stay_within_two_to_five_percent_and_persist():
    kpis = pl.Series(["loans", "turnover_rate", "items_held"] * 100)
    periods = pl.Series([str(2000 + i // 3) for i in range(300)])
    factors = disclosure.kpi_factors(SECRET_A, kpis, periods)
    offsets = np.abs(factors - 1)
    assert (offsets >= 0.02).all() and (offsets <= 0.05).all()
    assert 0.3 < (factors > 1).mean() < 0.7
    assert (factors == disclosure.kpi_factors(SECRET_A, kpis, periods)).all()
    assert not (factors == disclosure.kpi_factors(SECRET_B, kpis, periods)).all()


def counts_frame(n: int, true: int, set_key: int) -> pl.DataFrame:
    return disclosure.hashed(pl.DataFrame({"region": ["EU"] * n, "work_key": [f"w{i}" for i in range(n)],
                                           "count": [true] * n, "count_key": [set_key] * n}), ["work_key"])


def perturbed(frame: pl.DataFrame, pop: bytes, k: int | None = 3) -> np.ndarray:
    out = disclosure.perturb_count(frame, "count", "count_key", "holding", {("EU",): pop}, ["region"],
                                   ["_h_work_key"], k)
    return out["count"].to_numpy().astype(float)


def test_count_noise_follows_the_table_and_is_consistent():
    pop = disclosure.population_key([SECRET_A, SECRET_B])
    frame = counts_frame(20_000, 10, 12345)
    noisy = perturbed(frame, pop)
    shares = {d: float(np.mean(noisy - 10 == d)) for d in disclosure.COUNT_NOISE}
    for d, p in disclosure.COUNT_NOISE.items():
        assert shares[d] == pytest.approx(p, abs=0.015), shares
    assert (perturbed(frame, pop) == noisy).all()  # same cell, same institutions: same value


def test_count_noise_redraws_when_the_set_or_the_population_changes():
    pop = disclosure.population_key([SECRET_A, SECRET_B])
    joined = disclosure.population_key([SECRET_A, SECRET_B, "c" * 64])
    frame = counts_frame(5_000, 10, 12345)
    base = perturbed(frame, pop)
    other_set = perturbed(counts_frame(5_000, 10, 54321), pop)
    other_population = perturbed(frame, joined)
    # independent draws agree as often as two draws from COUNT_NOISE do, not always
    same = sum(p * p for p in disclosure.COUNT_NOISE.values())
    assert np.mean(base == other_set) == pytest.approx(same, abs=0.03)
    assert np.mean(base == other_population) == pytest.approx(same, abs=0.03)
    assert disclosure.population_key([SECRET_B, SECRET_A]) == pop  # a set: order does not matter


def test_count_threshold_applies_before_and_after_noise():
    pop = disclosure.population_key([SECRET_A])
    at_threshold = perturbed(counts_frame(5_000, 3, 7), pop)
    shown = ~np.isnan(at_threshold)
    # 3 holders: released only when the noise is 0 or up, and then at least 3
    up = sum(p for d, p in disclosure.COUNT_NOISE.items() if d >= 0)
    assert shown.mean() == pytest.approx(up, abs=0.03)
    assert (at_threshold[shown] >= 3).all()
    assert np.isnan(perturbed(counts_frame(100, 2, 7), pop)).all()  # below K_TITLE: never
    assert not np.isnan(perturbed(counts_frame(100, 5, 7), pop)).any()  # 5 - 2 >= 3: always
    unthresholded = perturbed(counts_frame(1_000, 1, 7), pop, k=None)
    assert unthresholded.min() == 0  # clipped, never negative


def test_protect_table_drops_rows_without_a_released_count_and_clips_sums():
    frame = pl.DataFrame({"work_key": ["a", "b"], "region": ["EU", "EU"], "month": ["2025-01"] * 2,
                          "loans": [-1, 40], "institutions_lending": [2, 9], "lending_key": [5, 6]})
    pops = {("EU",): disclosure.population_key([SECRET_A])}
    out = disclosure.protect_table("loans", frame, pops, k_title=3)
    assert out["work_key"].to_list() == ["b"]
    assert out["loans"].to_list() == [40] and 7 <= out["institutions_lending"][0] <= 11
    assert not [c for c in out.columns if c.startswith("_h_")]


def test_record_keys_and_secrets():
    assert disclosure.record_key(SECRET_A) == disclosure.record_key(SECRET_A)
    assert 0 <= disclosure.record_key(SECRET_A) < 2 ** 31
    assert disclosure.record_key(SECRET_A) != disclosure.record_key(SECRET_B)
    fresh = {new_secret() for _ in range(5)}
    assert len(fresh) == 5 and all(len(s) == 64 for s in fresh)
