"""Utility of a protected release (analytics/utility.py): a release against itself, and two
constructed releases whose differences are known by hand."""

from __future__ import annotations

import json
import shutil
from datetime import date

import numpy as np
import polars as pl
import pytest

from analytics.core.config import load_settings
from analytics.ingest.identifiers import isbn13
from analytics.synthetic.demo import build_demo
from analytics.ingest.local import table_path
from analytics.release.publish import publish
from analytics.release.manifest import RELEASE_SCHEMA, current_release_id
from analytics.control.store import Store
from analytics.tools.utility import compare, median_agrees, overlap, publish_pair
from tests.community import Member, build

AS_OF = "2025-06-15"
PROTECTED, UNPROTECTED = "20250615T120000Z-aaaaaa", "20250615T120000Z-bbbbbb"


def test_overlap_and_median_rules():
    assert overlap(["a", "b", "x"], ["a", "b", "c", "d"]) == 0.5
    assert overlap(["a"], []) is None
    assert median_agrees(104.0, 100.0) and median_agrees(95.0, 100.0)
    assert not median_agrees(106.0, 100.0) and not median_agrees(94.0, 100.0)
    assert median_agrees(0.0, 0.0) and not median_agrees(0.01, 0.0)
    assert not median_agrees(None, 3.0) and not median_agrees(3.0, None)


@pytest.fixture(scope="module")
def benchmark_community(tmp_path_factory):
    """A tiny demo community with one release: ten institutions, so that North America has five
    benchmark contributors and some of its cells are released (conftest's six have none)."""
    data_dir = tmp_path_factory.mktemp("utility") / "data"
    settings = load_settings(data_dir)
    build_demo(settings, institutions=10, months=12, seed=3, progress=lambda _line: None)
    store = Store.from_settings(settings)
    publish(settings, store)
    store.dispose()
    return data_dir


def test_a_release_compared_with_itself_is_100_percent(benchmark_community):
    settings = load_settings(benchmark_community)
    store = Store.from_settings(settings)
    release_id = current_release_id(settings.community_dir)
    result = compare(settings, store, release_id, release_id)
    store.dispose()
    json.dumps(result)  # JSON-serialisable as it is

    trend = result["trending"]
    assert trend["regions"] and trend["min_overlap"] == 1.0
    assert all(r["common"] == r["unprotected"] == r["protected"] for r in trend["regions"].values())
    medians = result["peer_medians"]
    assert medians["cells_released_both"] == medians["cells_released_unprotected"] > 0
    assert medians["cells_lost"] == medians["cells_gained"] == 0
    for bucket in ("n_10_plus", "n_5_to_9"):
        assert medians[bucket]["within"] == medians[bucket]["cells"]
    assert medians["n_5_to_9"]["rate"] == 1.0  # ten institutions: no cell has n >= 10
    assert medians["n_10_plus"] == {"cells": 0, "within": 0, "truth_zero": 0, "rate": None}
    assert result["selection"]["compared"] > 0
    assert result["selection"]["mean_overlap"] == result["selection"]["min_overlap"] == 1.0
    deselection = result["deselection"]
    assert deselection["compared"] + len(deselection["skipped_empty"]) == result["institutions_allowed"]
    if deselection["compared"]:
        assert deselection["mean_overlap"] == deselection["min_overlap"] == 1.0
    assert result["deselection"]["retention"]["mean_overlap"] == 1.0
    assert [line.rsplit(": ", 1)[1] for line in result["targets"]] == [
        "met", "not measured", "met", "met" if deselection["compared"] else "not measured"]


def test_publish_pair_leaves_the_protected_release_current(benchmark_community, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(benchmark_community, data_dir, symlinks=True)
    settings = load_settings(data_dir)
    store = Store.from_settings(settings)
    pair = publish_pair(settings, store)
    store.dispose()
    assert pair["protected"] != pair["unprotected"]
    assert pair["protected"][:16] == pair["unprotected"][:16]  # the same creation time
    assert current_release_id(settings.community_dir) == pair["protected"]


# -- two constructed releases -------------------------------------------------------------------

def isbns(prefix: int, count: int) -> list[str]:
    return isbn13(np.arange(978_100_000_000 + prefix * 1000, 978_100_000_000 + prefix * 1000 + count))


TRENDING = isbns(1, 52)   # T00..T51
SELECTION = isbns(2, 20)  # S00..S19
WITHDRAW = isbns(3, 10)   # D00..D09


def table(name: str, rows: list[dict]) -> pl.DataFrame:
    schema = RELEASE_SCHEMA[name]
    return pl.DataFrame([{column: row.get(column) for column in schema} for row in rows], schema=schema)


def write_release(community, release_id: str, protected: bool) -> None:
    """A release of the files open_release() reads; `protected` makes the known differences."""
    folder = community / "releases" / release_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({
        "release_id": release_id, "as_of": AS_OF, "window": {"start": "2022-07", "end": "2025-06"},
        "privacy": {"K_TITLE": 3, "K_BENCH": 5, "DOMINANCE": 0.5, "epsilon": None}}))
    titles = [{"work_key": f"isbn:{i}", "isbns": [i], "title": f"Work {i}", "format": "print"}
              for i in TRENDING + SELECTION + WITHDRAW]
    table("titles.parquet", titles).write_parquet(folder / "titles.parquet")
    # Trending: 52 rising works in EU, ten in NA. Protected, T10 and T20 fall below T51.
    trend = [{"region": "EU", "window_months": 6, "work_key": f"isbn:{i}", "recent": 20.0, "baseline": 0.0,
              "score": -5.0 if protected and n in (10, 20) else 52.0 - n} for n, i in enumerate(TRENDING)]
    trend += [{"region": "NA", "window_months": 6, "work_key": f"isbn:{i}", "recent": 20.0, "baseline": 0.0,
               "score": 10.0 - n} for n, i in enumerate(TRENDING[:10])]
    table("trend_rows.parquet", trend).write_parquet(folder / "trend_rows.parquet")
    table("monthly_signal.parquet", []).write_parquet(folder / "monthly_signal.parquet")
    # Selection: every S work acquired by 5 of the 10 in EU; protected, S05 is not released.
    peers = [{"work_key": f"isbn:{i}", "region": "EU", "peer_group": "all", "group_size": 10,
              "institutions_holding": 5, "institutions_acquired_12m": None if protected and n == 5 else 5}
             for n, i in enumerate(SELECTION)]
    table("peer_selection.parquet", peers).write_parquet(folder / "peer_selection.parquet")
    # Deselection: every D work held by 12 in EU; protected, D03 by 9 (below the rule's 10).
    held = [{"work_key": f"isbn:{i}", "region": "EU", "month": AS_OF[:7], "institutions_acquiring": 0,
             "institutions_holding": 4 if protected and n == 3 else 12} for n, i in enumerate(WITHDRAW)]
    table("holdings.parquet", held).write_parquet(folder / "holdings.parquet")
    table("benchmarks.parquet", benchmark_cells(protected)).write_parquet(folder / "benchmarks.parquet")


def benchmark_cells(protected: bool) -> list[dict]:
    # (n, unprotected median, protected median); None: suppressed
    cells = [(12, 100.0, 100.0)] * 16 + [
        (12, 100.0, 104.0),   # within 5%
        (12, 100.0, 106.0),   # not within
        (12, 0.0, 0.0),       # a true 0 met exactly
        (12, 0.0, 0.01),      # a true 0 missed
        (7, 50.0, 50.0), (7, 50.0, 50.0), (7, 50.0, 51.0),
        (7, 50.0, 45.0),      # 10% off
        (12, 100.0, None),    # released only unprotected: lost, not compared
    ]
    rows = []
    for k, (n, truth, noisy) in enumerate(cells):
        median = noisy if protected else truth
        cell = {"region": "EU", "peer_group": "all", "kpi": f"kpi{k:02d}", "period": "2024", "n": n,
                "median": median, "method": "exact", "suppressed": median is None}
        rows += [{**cell, "variant": "none"}, {**cell, "variant": "trim10", "median": 1.0 if protected else 2.0}]
    rows.append({"region": "EU", "peer_group": "all", "kpi": "suppressed", "period": "2024", "variant": "none",
                 "suppressed": True, "reason": "fewer than K_BENCH institutions"})
    return rows


def write_items(data_dir, code: str, works: list[str]) -> None:
    """Print items of the given works, bought in 2000, published 1990, never borrowed."""
    path = table_path(data_dir, code, "items")
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(works)
    pl.DataFrame({
        "item_id": [f"{code}-{k}" for k in range(n)], "title": [f"Work {i}" for i in works],
        "author": ["Author, A"] * n, "isbn": works, "call_number": ["QA76 .A1 1990"] * n, "pub_year": [1990] * n,
        "format": ["print"] * n, "acquired_date": [date(2000, 1, 1)] * n, "withdrawn_date": [None] * n,
        "lifetime_loans": [0] * n, "last_loan_date": [None] * n, "work_key": [f"isbn:{i}" for i in works],
        "match_method": ["isbn"] * n,
    }, schema_overrides={"withdrawn_date": pl.Date, "last_loan_date": pl.Date}).write_parquet(path)


@pytest.fixture
def two_releases(tmp_path):
    members = [Member("AAA"), Member("BBB"), Member("DDD"),
               Member("CCC", services=("recommendations", "benchmark"))]  # CCC does not see collection reports
    settings, store = build(tmp_path / "data", members)
    write_items(settings.data_dir, "AAA", [SELECTION[0], *WITHDRAW])  # holds S00 and D00..D09
    write_items(settings.data_dir, "BBB", WITHDRAW[:5])               # holds D00..D04
    write_items(settings.data_dir, "CCC", WITHDRAW)                   # DDD has no items at all
    write_release(settings.community_dir, PROTECTED, protected=True)
    write_release(settings.community_dir, UNPROTECTED, protected=False)
    yield settings, store
    store.dispose()


def test_known_differences_give_the_exact_figures(two_releases):
    settings, store = two_releases
    result = compare(settings, store, PROTECTED, UNPROTECTED)
    json.dumps(result)
    assert (result["institutions"], result["institutions_allowed"]) == (4, 3)

    trend = result["trending"]
    assert trend["regions"] == {"NA": {"overlap": 1.0, "common": 10, "unprotected": 10, "protected": 10},
                                "EU": {"overlap": 0.96, "common": 48, "unprotected": 50, "protected": 50}}
    assert trend["min_overlap"] == 0.96
    assert trend["skipped_regions_empty"] == ["CA", "APAC", "CN", "LATAM", "MEA"]

    medians = result["peer_medians"]
    assert medians["n_10_plus"] == {"cells": 20, "within": 18, "truth_zero": 2, "rate": 0.9}
    assert medians["n_5_to_9"] == {"cells": 4, "within": 3, "truth_zero": 0, "rate": 0.75}
    assert (medians["cells_released_unprotected"], medians["cells_released_protected"],
            medians["cells_released_both"], medians["cells_lost"], medians["cells_gained"]) == (25, 24, 24, 1, 0)

    selection = result["selection"]
    assert selection["per_institution"] == {
        "AAA": {"overlap": 18 / 19, "unprotected": 19, "protected": 18},  # S00 is its own
        "BBB": {"overlap": 0.95, "unprotected": 20, "protected": 19},
        "DDD": {"overlap": 0.95, "unprotected": 20, "protected": 19},
    }
    assert selection["compared"] == 3
    assert selection["min_overlap"] == 18 / 19
    assert selection["mean_overlap"] == pytest.approx((18 / 19 + 0.95 + 0.95) / 3)

    deselection = result["deselection"]
    assert deselection["per_institution"] == {
        "AAA": {"overlap": 0.9, "unprotected": 10, "protected": 9, "unprotected_total": 10, "protected_total": 9},
        "BBB": {"overlap": 0.8, "unprotected": 5, "protected": 4, "unprotected_total": 5, "protected_total": 4},
    }
    assert deselection["skipped_no_items"] == ["DDD"] and deselection["skipped_empty"] == []
    assert deselection["mean_overlap"] == pytest.approx(0.85)
    assert deselection["min_overlap"] == 0.8
    # AAA's S00 is held by fewer than K_TITLE (no holdings row) in both: a retention candidate in both.
    assert deselection["retention"]["per_institution"] == {"AAA": {"overlap": 1.0, "unprotected": 1, "protected": 1}}

    assert result["targets"] == [
        "trending top-50 overlap, minimum over regions: 96.0% (target >= 90%; 2 regions): met",
        "peer medians within 5%, cells with n >= 10: 90.0% (target >= 95%; 18/20 cells): missed",
        "selection overlap, mean over institutions: 94.9% (target >= 95%; 3 institutions, minimum 94.7%): missed",
        "deselection overlap, mean over institutions: 85.0% (target >= 95%; 2 institutions, minimum 80.0%): missed",
    ]
