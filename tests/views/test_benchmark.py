"""Benchmark statistics: medians by hand, suppression, differencing between peer groups, rules."""

from __future__ import annotations

import itertools
import json
import random
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from analytics.release import benchmark_cells
from analytics.views import benchmark
from analytics.release import dp_budget
from analytics.cli import main
from analytics.core.access import Principal
from analytics.ingest.tabular import import_file
from analytics.release.publish import publish
from analytics.release.manifest import release_path, verify_release
from tests.community import Member, build, publish_exact, verify_exact

AS_OF = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


def lender(code: str, loans_2025: int, type_: str = "research", fte: int = 10_000, items: int = 4,
           go_live: date = date(2020, 1, 1), services=("benchmark",), region: str = "EU") -> Member:
    rows = ["item_id,title,isbn,call_number,acquired_date,pub_year"]
    rows += [f"{code}-{i},Work {i},,QA{i} .A1,2019-01-0{1 + i % 9},2000" for i in range(items)]
    loans = "item_id,loan_date,count\n" + f"{code}-0,2025-03,{loans_2025}\n{code}-1,2024-05,1\n"
    return Member(code, type=type_, fte=fte, go_live=go_live, region=region, services=services,
                  tables={"items": "\n".join(rows) + "\n", "loans": loans})


def cells_of(settings, kpi: str, period: str, variant: str = "none") -> pl.DataFrame:
    frame = pl.read_parquet(release_path(settings.community_dir) / "benchmarks.parquet")
    return frame.filter((pl.col("kpi") == kpi) & (pl.col("period") == period) & (pl.col("variant") == variant))


def test_released_median_equals_hand_computation_even_n_and_ties(tmp_path):
    loans = [10, 20, 20, 30, 40, 50]  # even n, a tie in the middle half
    members = [lender(f"L{i}", n) for i, n in enumerate(loans)]
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    [row] = cells_of(settings, "loans", "2025").filter(pl.col("peer_group") == "all").to_dicts()
    assert (row["n"], row["suppressed"], row["method"]) == (6, False, "exact")
    assert row["median"] == 25.0  # (20 + 30) / 2
    assert row["p25"] == 20.0  # position 1.25 between 20 and 20
    assert row["p75"] == 37.5  # position 3.75: 30 + 0.75 x 10
    assert row["mean"] == pytest.approx(170 / 6)
    # turnover = loans / items held (4 each)
    [turn] = cells_of(settings, "turnover_rate", "2025").filter(pl.col("peer_group") == "all").to_dicts()
    assert turn["median"] == pytest.approx(25.0 / 4)
    assert verify_exact(settings, store) == []
    store.dispose()


def test_no_cell_below_k_and_groups_never_differ_by_fewer_than_k(tmp_path):
    # 6 research + 5 teaching in EU; one research institution in another region; all sizes alike.
    members = [lender(f"R{i}", 10 + i) for i in range(6)] + [lender(f"T{i}", 30 + i, "teaching") for i in range(5)]
    members.append(lender("X", 99, region="NA"))
    settings, store = build(tmp_path / "data", members)
    publish(settings, store, as_of=AS_OF, now=NOW)
    frame = pl.read_parquet(release_path(settings.community_dir) / "benchmarks.parquet")
    shown = frame.filter(~pl.col("suppressed"))
    assert shown.height > 0 and shown["n"].min() >= 5
    assert frame.filter(pl.col("suppressed"))["n"].null_count() == frame.filter(pl.col("suppressed")).height
    loans = frame.filter((pl.col("kpi") == "loans") & (pl.col("period") == "2025") & (pl.col("variant") == "none"))
    status = {r["peer_group"]: (r["n"], r["reason"]) for r in loans.filter(pl.col("region") == "EU").to_dicts()}
    # all (11) and type=research (6) differ by the 5 teaching institutions: both released. type=teaching (5)
    # differs from all by 6 and from research entirely: released. The size band equals all: same members.
    assert status["all"] == (11, None) and status["type=research"] == (6, None)
    assert status["type=teaching"] == (5, None)
    assert status["size=5,000-14,999"] == (11, None)
    # The combination research & size has the same members as type=research: released (difference 0).
    assert status["type=research&size=5,000-14,999"] == (6, None)
    na = loans.filter(pl.col("region") == "NA").to_dicts()
    assert na and all(r["suppressed"] and r["reason"] == "suppressed: fewer than 5 institutions" for r in na)
    store.dispose()


def test_a_group_one_member_smaller_than_a_released_group_is_suppressed():
    def cell(group, members, values=None):
        values = values or [float(m) for m in members]
        return {"region": "EU", "kpi": "loans", "period": "2025", "peer_group": group, "members": sorted(members),
                "values": sorted(values), "n": len(members), "largest": max(values), "total": sum(values)}

    cells = [cell("all", range(6)), cell("type=research", range(5)), cell("size=1,000-4,999", [0, 1, 2, 3, 4, 5])]
    benchmark_cells.select_cells(cells, 5, 0.5)
    assert [c["released"] for c in cells] == [True, False, True]
    assert "differs from the released group 'all' by fewer than 5" in cells[1]["reason"]


@hsettings(max_examples=150, deadline=None)
@given(st.integers(min_value=5, max_value=40), st.integers(min_value=0, max_value=10_000))
def test_property_released_groups_never_differ_by_one_to_four(size, seed):
    rng = random.Random(seed)
    institutions = range(size)
    types = {i: rng.choice(["research", "teaching", "public"]) for i in institutions}
    bands = {i: rng.choice(["small", "large"]) for i in institutions}
    countries = {i: rng.choice(["DE", "FR", None]) for i in institutions}
    has_value = {i: rng.random() < 0.85 for i in institutions}
    groups: dict[str, set[int]] = {}
    for i in institutions:
        if not has_value[i]:
            continue
        for name in benchmark_cells.group_names(types[i], bands[i], countries[i]):
            groups.setdefault(name, set()).add(i)
    cells = [{"region": "EU", "kpi": "loans", "period": "2025", "peer_group": g, "members": sorted(m),
              "values": [1.0] * len(m), "n": len(m), "largest": 1.0, "total": float(len(m))}
             for g, m in groups.items()]
    benchmark_cells.select_cells(cells, 5, 0.5)
    released = [frozenset(c["members"]) for c in cells if c["released"]]
    assert all(c["n"] >= 5 for c in cells if c["released"])
    for a, b in itertools.combinations(released, 2):
        assert len(a - b) == 0 or len(a - b) >= 5
        assert len(b - a) == 0 or len(b - a) >= 5


def test_dominance_withholds_the_mean_but_not_the_quantiles(tmp_path):
    """The p% rule is for totals and means: a median says nothing about the largest value's size."""
    members = [lender(f"D{i}", n) for i, n in enumerate([10, 10, 10, 10, 1000])]
    settings, store = build(tmp_path / "data", members)
    publish(settings, store, as_of=AS_OF, now=NOW)
    [row] = cells_of(settings, "loans", "2025").filter(pl.col("peer_group") == "all").to_dicts()
    assert not row["suppressed"] and row["n"] == 5
    assert row["mean"] is None and "mean withheld" in row["reason"] and "more than 50% of the total" in row["reason"]
    assert 9.5 <= row["median"] <= 10.5  # 10 with each peer's 2-5% protective factor
    assert verify_release(settings, store) == []
    store.dispose()


def test_new_institutions_view_but_do_not_contribute_and_non_sharers_see_nothing(tmp_path, capsys):
    members = [lender(f"M{i}", 10 * (i + 1)) for i in range(5)]
    members.append(lender("NEW", 1000, go_live=date(2026, 1, 1)))  # live for under a year on the as-of date
    members.append(lender("NOSHARE", 5000, services=("collection_development",)))
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    [row] = cells_of(settings, "loans", "2025").filter(pl.col("peer_group") == "all").to_dicts()
    assert row["n"] == 5 and row["median"] == 30.0  # neither NEW nor NOSHARE is in it
    data = str(settings.data_dir)
    assert main(["--data-dir", data, "benchmark", "NEW", "--kpi", "loans", "--period", "2025",
                 "--format", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert (record["median"], record["own_value"], record["n"], record["suppressed"]) == (30.0, 1000.0, 5, False)
    assert record["band"] == "upper quarter"
    assert main(["--data-dir", data, "benchmark", "NOSHARE", "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert "does not share Benchmark Analytics" in captured.err and captured.out == ""
    store.dispose()


def test_trimmed_variant_needs_enough_institutions(tmp_path):
    values = list(range(1, 31))  # 30 institutions: 3 trimmed at each end
    cells = [{"region": "EU", "kpi": "loans", "period": "2025", "peer_group": "all", "members": list(range(30)),
              "values": [float(v) for v in values], "n": 30, "largest": 30.0, "total": float(sum(values)),
              "p25": 0.0, "median": 0.0, "p75": 0.0, "mean": 0.0}]
    benchmark_cells.select_cells(cells, 5, 0.5)
    frame, note = benchmark_cells.release_rows(cells, 5, None)
    trimmed = frame.filter(pl.col("variant") == "trim10").row(0, named=True)
    assert (trimmed["n"], trimmed["mean"], trimmed["suppressed"]) == (24, pytest.approx(15.5), False)
    assert note == {"method": "protected"}
    small = [{**cells[0], "members": list(range(29)), "values": [float(v) for v in range(1, 30)], "n": 29}]
    benchmark_cells.select_cells(small, 5, 0.5)
    frame, _ = benchmark_cells.release_rows(small, 5, None)
    row = frame.filter(pl.col("variant") == "trim10").row(0, named=True)
    assert row["suppressed"] and "too few institutions to trim" in row["reason"] and row["mean"] is None


def test_parse_peers():
    assert benchmark.parse_peers(None) == "all"
    assert benchmark.parse_peers("type=research") == "type=research"
    assert benchmark.parse_peers("type=research,size=5,000-14,999") == "type=research&size=5,000-14,999"
    assert benchmark.parse_peers("country=de") == "country=DE"
    with pytest.raises(ValueError, match="ATTR=VALUE"):
        benchmark.parse_peers("colour=blue")


def test_kpi_catalog_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert len(benchmark.CATALOG) >= 14
    for kpi in benchmark.CATALOG.values():
        assert f"`{kpi.id}`" in readme and kpi.name in readme, kpi.id
        assert kpi.direction in ("higher is better", "neither", "lower is better")
        assert kpi.bounds[0] < kpi.bounds[1]


def test_epsilon_is_a_yearly_budget_accounted_across_releases(tmp_path):
    loans = [10, 20, 20, 30, 40, 50]
    settings, store = build(tmp_path / "data", [lender(f"L{i}", n) for i, n in enumerate(loans)])

    def released(as_of, now):
        publish(settings, store, as_of=as_of, now=now, epsilon=1.0)
        text = (release_path(settings.community_dir) / "manifest.json").read_text()
        assert not re.search(r"\bL[0-9]\b", text)  # no institution is named in the public manifest
        frame = pl.read_parquet(release_path(settings.community_dir) / "benchmarks.parquet")
        assert verify_release(settings, store) == []
        return frame, json.loads(text)["privacy"]

    frame, privacy = released(AS_OF, NOW)
    note, budget = privacy["benchmark"], privacy["benchmark"]["budget"]
    assert privacy["epsilon"] == 1.0 and note["method"] == "differential privacy"
    shown = frame.filter(~pl.col("suppressed"))
    assert set(shown["method"]) == {"dp"} and set(shown["variant"]) == {"none"}
    # Only the last complete year, the broad groups and the ratio KPIs are drawn.
    assert set(shown["period"]) == {"2025"} and set(shown["peer_group"]) == {"all", "type=research"}
    assert set(shown["kpi"]) <= set(dp_budget.DP_KPIS) and "turnover_rate" in set(shown["kpi"])
    [row] = shown.filter((pl.col("kpi") == "turnover_rate") & (pl.col("peer_group") == "all")).to_dicts()
    low, high = benchmark.CATALOG["turnover_rate"].bounds
    assert low <= row["p25"] <= row["median"] <= row["p75"] <= high and row["n"] == 6
    assert row["mean"] is None and row["mean_noise_sd"] is None  # the mean is not released under DP
    assert row["quantile_step"] == pytest.approx((high - low) / 255)
    [loans_row] = cells_of(settings, "loans", "2025").filter(pl.col("peer_group") == "all").to_dicts()
    assert loans_row["suppressed"] and "public range is too wide" in loans_row["reason"]
    # Every institution is in every drawn cell: it spent drawn x 3 statistics x 1/864.
    drawn = shown.height
    assert note["epsilon_per_statistic"] == pytest.approx(1 / 864) and budget["cells"]["drawn"] == drawn
    assert budget["epsilon_spent_release_max"] == pytest.approx(drawn * 3 / 864)
    assert budget["epsilon_spent_year_max"] == pytest.approx(drawn * 3 / 864)
    assert budget["epsilon_remaining_min"] == pytest.approx(1 - drawn * 3 / 864)

    # A month later, the same data: the same noisy figures, nothing spent.
    again, privacy = released(date(2026, 7, 15), NOW + timedelta(days=30))
    assert again.equals(frame)
    budget = privacy["benchmark"]["budget"]
    assert budget["epsilon_spent_release_max"] == 0.0 and budget["cells"]["kept"] == drawn
    assert budget["epsilon_spent_year_max"] == pytest.approx(drawn * 3 / 864)

    # L0's 2025 loans change: turnover and loans per FTE of 'all' and 'type=research' are redrawn.
    csv = tmp_path / "L0-loans-corrected.csv"
    csv.write_text("item_id,loan_date,count\nL0-0,2025-03,99\nL0-1,2024-05,1\n")
    import_file(settings.data_dir, Principal.system_job(), "L0", "loans", csv)
    changed, privacy = released(date(2026, 8, 15), NOW + timedelta(days=61))
    budget = privacy["benchmark"]["budget"]
    assert budget["cells"]["drawn"] == 4 and budget["cells"]["kept"] == drawn - 4
    assert budget["epsilon_spent_release_max"] == pytest.approx(4 * 3 / 864)
    assert budget["epsilon_spent_year_max"] == pytest.approx((drawn + 4) * 3 / 864)
    redrawn = pl.col("kpi").is_in(["turnover_rate", "loans_per_fte"])
    assert changed.filter(~redrawn).equals(frame.filter(~redrawn))
    store.dispose()


# Vermont public libraries in the IMLS Public Libraries Survey FY2020 (US federal public data):
# FSCSKEY, TOTCIR, VISITS, TOTSTAFF and TOTOPEXP (money: never imported).
VERMONT = [("VT0002", 6662.0, 13973.0, 1.43, 66738.0), ("VT0004", 20099.0, 18300.0, 1.48, 110023.0),
           ("VT0007", 3727.0, 2233.0, 0.7, 34954.0), ("VT0008", 635.0, 2539.0, 0.67, 43987.0),
           ("VT0009", 3551.0, 3783.0, 0.68, 29728.0), ("VT0010", 1120.0, 4482.0, 1.18, 77643.0),
           ("VT0011", 70097.0, 70100.0, 8.13, 581305.0), ("VT0012", 12762.0, 13589.0, 1.25, 49267.0),
           ("VT0013", 10908.0, 5045.0, 0.55, 59195.0), ("VT0014", 44564.0, 49000.0, 8.75, 570757.0),
           ("VT0015", 21003.0, 3236.0, 2.15, 137054.0), ("VT0016", 1710.0, 50.0, 0.27, 8900.0)]


def test_survey_medians_match_the_published_table(tmp_path, capsys):
    import statistics

    data = str(tmp_path / "data")
    for key, *_ in VERMONT:
        assert main(["--data-dir", data, "institution", "add", key, "--name", f"Library {key}", "--type", "public",
                     "--region", "NA", "--fte", "0", "--go-live", "2018-07-01"]) == 0
        assert main(["--data-dir", data, "user", "add", f"admin@{key.lower()}.example.org", "--institution", key,
                     "--role", "admin"]) == 0
    capsys.readouterr()
    for key, circulation, visits, staff, spend in VERMONT:
        survey = tmp_path / f"{key}.csv"
        survey.write_text(f"FSCSKEY,year,TOTCIR,VISITS,TOTSTAFF,TOTOPEXP\n{key},FY2020,{circulation},{visits},"
                          f"{staff},{spend}\n")
        assert main(["--data-dir", data, "import", key, "annual-stats", str(survey), "--map",
                     "total_circulation=TOTCIR", "--map", "gate_count=VISITS", "--map", "staff_fte=TOTSTAFF",
                     "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["kept"] == 1 and any("TOTOPEXP" in str(d) for d in report["dropped_columns"])
        # The library agreed to share its survey figures when it joined.
        assert main(["--data-dir", data, "sharing", key, "--benchmark", "on", "--actor",
                     f"admin@{key.lower()}.example.org", "--agreed-on", "2024-01-15"]) == 0
        assert "2024-02-01" in capsys.readouterr().out  # the monthly cycle after the agreement
    assert main(["--data-dir", data, "publish"]) == 0
    capsys.readouterr()
    assert main(["--data-dir", data, "benchmark", "VT0002", "--period", "2020", "--format", "json"]) == 0
    released = {r["kpi"]: r for r in json.loads(capsys.readouterr().out)}
    for kpi, column in (("total_circulation", 1), ("gate_count", 2), ("staff_fte", 3)):
        values = [row[column] for row in VERMONT]
        assert released[kpi]["n"] == 12 and released[kpi]["suppressed"] is False
        # each library's figure carries its 2-5% protective factor: quantiles stay within 5%
        assert released[kpi]["median"] == pytest.approx(statistics.median(values), rel=0.05), kpi
        assert released[kpi]["median"] != pytest.approx(statistics.median(values), rel=1e-9), kpi
        assert released[kpi]["mean"] == pytest.approx(statistics.mean(values), rel=0.05), kpi
    assert released["total_circulation"]["median"] == pytest.approx(8785.0, rel=0.05)  # (6662 + 10908) / 2
    assert released["total_circulation"]["own_value"] == 6662.0
    store_text = "".join(p.read_bytes().decode("latin-1") for p in (tmp_path / "data" / "community").rglob("*.parquet"))
    assert "581305" not in store_text  # no money value anywhere in the release


def test_unique_share_released_and_own_value_private(tmp_path, capsys):
    # Six institutions hold the shared works S0..S3; some also hold works nobody else has.
    def holder(code: str, extra: int) -> Member:
        rows = ["item_id,title,isbn,call_number,acquired_date,pub_year"]
        rows += [f"{code}-S{i},Shared {i},97800000000{i}{i},QA{i},2019-01-01,2000" for i in range(4)]
        rows += [f"{code}-U{i},Only {code} {i},,QB{i},2019-01-01,2000" for i in range(extra)]
        return Member(code, services=("benchmark",), tables={"items": "\n".join(rows) + "\n"})

    members = [holder("U0", 2), holder("U1", 1), holder("U2", 1)] + [holder(f"U{i}", 0) for i in range(3, 6)]
    settings, store = build(tmp_path / "data", members)
    release_id = publish_exact(settings, store, as_of=AS_OF, now=NOW)
    [row] = cells_of(settings, "unique_share", "2025").filter(pl.col("peer_group") == "all").to_dicts()
    # U0: 2 of its 6 works are unique (33.3%); U1, U2: 1 of 5 (20%); the others 0%.
    assert (row["n"], row["median"]) == (6, 10.0) and row["mean"] == pytest.approx((100 / 3 + 40) / 6)
    from analytics.core.access import Principal

    own = store.own_kpi_values(Principal.system_job(), "U0", release_id)
    assert own == [{"period": "2025", "kpi": "unique_share", "value": pytest.approx(100 / 3)}]
    assert main(["--data-dir", str(settings.data_dir), "benchmark", "U0", "--kpi", "unique_share",
                 "--format", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["own_value"] == pytest.approx(100 / 3) and record["band"] == "upper quarter"
    # Another institution cannot read U0's private value.
    other = store.user("admin@u1.example.org").principal()
    from analytics.core.access import PermissionDenied

    with pytest.raises(PermissionDenied):
        store.own_kpi_values(other, "U0", release_id)
    store.dispose()


# -- the words the page and reports use --------------------------------------------------------


def test_position_is_said_in_quarters_not_percentile_codes():
    assert [benchmark.percentile_band(v, 20.0, 25.0, 37.5) for v in (10, 20, 25, 37.5, 40)] == [
        "lower quarter", "below the middle", "above the middle", "above the middle", "upper quarter"]
    assert benchmark.percentile_band(None, 20.0, 25.0, 37.5) is None


def test_values_have_thousands_separators_and_counts_are_whole():
    fmt = benchmark.format_value
    assert fmt(324070.4, "loans") == "324,070" and fmt(56.0, "items", signed=True) == "+56"
    assert fmt(10.0, "loans") == "10" and fmt(250.5, "items") == "250"  # round half to even
    assert fmt(23.774, "loans per item") == "23.8" and fmt(-0.2249, "loans per item", signed=True) == "-0.22"
    assert fmt(1234.5, "loans per FTE") == "1,234" and fmt(65.84, "%") == "65.8%"
    assert fmt(0.4, "%", signed=True) == "+0.4%" and fmt(None, "loans") == "—" and fmt(float("nan")) == "—"


def test_peer_groups_in_words():
    assert benchmark.group_label("all") == "All in the region"
    assert benchmark.group_label("type=community_college") == "Community colleges"
    assert benchmark.group_label("size=5,000-14,999") == "5,000-14,999 FTE students"
    assert benchmark.group_label("country=US") == "In US"
    assert benchmark.group_label("type=research&size=30,000 and over") == \
        "Research institutions, 30,000 and over FTE students"


def test_suppression_reasons_short_in_cells_and_in_full_in_notes():
    few = "suppressed: fewer than 5 institutions"
    overlap = "suppressed: differs from the released group 'all' by fewer than 5 institutions"
    trim = ("suppressed: too few institutions to trim 10% at each end without singling one out "
            "(needs 25 or more)")
    assert [benchmark.reason_status(r) for r in (few, overlap, trim, dp_budget.REASON_SPENT,
                                                 dp_budget.REASON_MONTHLY, None)] == [
        "not enough peers", "overlaps another group", "too few to trim", "privacy budget spent",
        "not released (privacy)", "not released"]
    assert benchmark.reason_note(few) == \
        "Fewer than 5 institutions of the peer group have data for the KPI and period."
    assert benchmark.reason_note(overlap) == \
        "Differs from the released group “All in the region” by fewer than 5 institutions."
    assert benchmark.reason_note(trim) == ("Too few institutions to trim 10% at each end without singling one "
                                           "out (needs 25 or more).")
