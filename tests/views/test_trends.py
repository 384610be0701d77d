"""Trending and deselection on constructed releases where the right answer is known by hand."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import polars as pl
import pytest

from analytics.core.access import PermissionDenied, Principal
from analytics.views.deselection import DeselectionRules, deselection
from analytics.release.trending import score
from analytics.views.trends import Filters, trending
from analytics.views.collection import FilterError, own_identifiers, require_collection_sharing
from analytics.release.handle import open_release
from tests.community import Member, build, items_csv, loans_csv, publish_exact
from analytics.core.access import Principal as _Principal

SYSTEM_JOB = _Principal.system_job()

AS_OF = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
STEADY = ("Steady Seller", "Baldwin, James", "9780679744726", "PS3545 .B5 1963", "2015-01-05", 1963)
SURGE = ("Sudden Hit", "Andrews, Ilona", "9780345806567", "PS3601 .H5 2024", "2024-02-01", 2024)
PRINT, EBOOK = "9780385334570", "9780441017805"
PAIR = ("Pair Work", "King, Richard", f"{PRINT};{EBOOK}", "QL444 .K5 2011", "2012-01-01", 2011)
OLD = ("Old Idle Book", "Singer, Peter", "9781893007161", "HV4708 .S56 1975", "1990-01-01", 1975)
RARE = ("Rare Book", "Nobody, Else", "9780393337129", "N8600 .T4 2008", "2009-01-01", 2008)

MONTHS = [f"2025-{m:02d}" for m in range(6, 13)] + [f"2026-{m:02d}" for m in range(1, 6)]
RECENT = {"2026-03", "2026-04", "2026-05"}


def loans_for(code: str) -> list[tuple]:
    rows = []
    for month in MONTHS:
        rows.append((f"{code}-0", month, 30))                               # steady: 30 a month
        rows.append((f"{code}-1", month, 20 if month in RECENT else 1))     # surge: 1 -> 20
    return rows


@pytest.fixture
def community(tmp_path):
    members = []
    for code in ("A", "B", "C"):
        items = [(f"{code}-0",) + STEADY, (f"{code}-1",) + SURGE, (f"{code}-2",) + PAIR, (f"{code}-3",) + OLD]
        if code == "A":
            items.append(("A-4",) + RARE)
        members.append(Member(code, tables={"items": items_csv(items), "loans": loans_csv(loans_for(code))}))
    # D holds only the e-book of the pair and shares nothing for collection development.
    members.append(Member("D", tables={"items": items_csv([("D-0", "Pair (e-book)", "King, Richard", EBOOK,
                                                             "QL444 .K5", "2020-01-01")])},
                          services=("benchmark",)))
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    yield settings, store, open_release(settings.community_dir)
    store.dispose()


def test_a_surge_is_listed_and_a_steady_best_seller_is_not(community):
    _settings, _store, release = community
    ranked = trending(release, Filters(region="EU", window=3))
    assert ranked["title"].to_list() == ["Sudden Hit"]  # rising means rising: flat is not listed
    surge = ranked.row(0, named=True)
    assert (surge["recent"], surge["baseline"]) == (180, 9)
    assert surge["score"] == pytest.approx(math.log(190 / 19))
    steady = release.cursor().sql("SELECT recent, baseline, score FROM trend_rows WHERE region = 'EU' "
                                  "AND window_months = 3 AND title = 'Steady Seller'").fetchall()
    assert steady == [(270, 270, pytest.approx(0.0))]  # in the release, with score 0: flat
    assert surge["loans_recent"] == 180 and surge["institutions_holding"] == 3
    assert surge["sparkline"] == [3.0, 3.0, 3.0, 60.0, 60.0, 60.0]


def test_smoothing_keeps_tiny_numbers_from_outranking_large_growth():
    assert score(3, 1) < score(900, 400)
    assert score(3, 1) == pytest.approx(math.log(13 / 11))


def test_filters_narrow_the_list(community):
    _settings, _store, release = community
    assert trending(release, Filters(region="EU", window=3, lc_subclass="QL"))["title"].to_list() == []
    assert trending(release, Filters(region="EU", window=3, lc_class="P"))["title"].to_list() == ["Sudden Hit"]
    assert trending(release, Filters(region="EU", window=3, formats=("electronic",))).height == 0
    assert trending(release, Filters(region="EU", window=3, pub_year_min=2020))["title"].to_list() == ["Sudden Hit"]
    assert trending(release, Filters(region="EU", window=3, pub_year_max=2030))["title"].to_list() == ["Sudden Hit"]
    assert trending(release, Filters(region="EU", window=3, pub_year_max=1999))["title"].to_list() == []
    assert trending(release, Filters(region="NA", window=3)).height == 0


@pytest.mark.parametrize("filters, message", [
    (Filters(region="EU", window=5), "choose 3, 6 or 12"),
    (Filters(region="MARS"), "not a data center"),
    (Filters(region="EU", pub_year_min=2020, pub_year_max=2010), "the first is after the last"),
    (Filters(region="EU", lc_class="QA"), "give one letter"),
    (Filters(region="EU", limit=0), "choose 1 to"),
])
def test_out_of_range_filters_get_a_clear_message(community, filters, message):
    with pytest.raises(FilterError, match=message):
        trending(community[2], filters)


def test_not_held_matches_across_print_and_ebook_isbns(community):
    settings, _store, release = community
    # The community keys the pair by its print ISBN; D holds only the e-book edition.
    keys, isbns = own_identifiers(SYSTEM_JOB, settings.data_dir, "D")
    assert keys == [f"isbn:{EBOOK}"]
    titles = pl.read_parquet(release.path / "titles.parquet")
    assert titles.filter(pl.col("title") == "Pair Work")["work_key"].to_list() == [f"isbn:{PRINT}"]
    everything = Filters(region="EU", window=12, limit=1000)
    # The pair has no loans, so it is not trending; check the held-by-us set the query uses.
    cur = release.cursor()
    cur.register("own_isbns", pl.DataFrame({"isbn": isbns}))
    held = cur.sql("SELECT e.work_key FROM (SELECT work_key, unnest(isbns) AS isbn FROM titles) e "
                   "JOIN own_isbns o ON e.isbn = o.isbn").pl()["work_key"].to_list()
    assert held == [f"isbn:{PRINT}"]
    a_keys, a_isbns = own_identifiers(SYSTEM_JOB, settings.data_dir, "A")
    assert trending(release, Filters(region="EU", window=3, not_held=True), a_keys, a_isbns).height == 0
    assert trending(release, everything, keys, isbns).height == 2


def test_a_work_held_by_two_is_never_a_withdrawal_candidate(community):
    settings, _store, release = community
    result = deselection(SYSTEM_JOB, release, settings.data_dir, "A", DeselectionRules(region="EU", no_loans_years=1,
                                                                           min_holders=1))
    assert result["rules"].min_holders == 3  # raised to K_TITLE: smaller counts are never released
    withdraw = result["withdraw"]["title"].to_list()
    assert withdraw == ["Old Idle Book", "Pair Work"]  # idle, held by A, B and C; older first
    assert "Rare Book" not in withdraw
    assert result["retain"]["title"].to_list() == ["Rare Book"]  # only A holds it
    assert result["tiles"] == {"items": 5, "zero_use": 3, "more_than_3_uses": 2, "older_than_10_years": 4,
                               "widely_held": 4, "scarce": 1}
    assert result["scarce_max_holders"] == 2  # a holding count below K_TITLE = 3 is withheld
    stricter = deselection(SYSTEM_JOB, release, settings.data_dir, "A", DeselectionRules(region="EU", no_loans_years=1,
                                                                            published_before=2000, min_holders=3))
    assert stricter["withdraw"]["title"].to_list() == ["Old Idle Book"]


def test_deselection_applies_the_release_threshold_not_the_callers(community):
    settings, _store, release = community
    release.manifest["privacy"]["K_TITLE"] = 4  # as if published with K_TITLE=4; these settings say 3
    result = deselection(SYSTEM_JOB, release, settings.data_dir, "A", DeselectionRules(region="EU", min_holders=1))
    assert (result["rules"].min_holders, result["scarce_max_holders"]) == (4, 3)


def test_reciprocity_only_sharers_see_community_data(community):
    _settings, store, _release = community
    d_librarian = Principal("lib@d.example.org", "D", frozenset({"librarian"}))
    with pytest.raises(PermissionDenied, match="does not share Selection and Collection Development"):
        require_collection_sharing(d_librarian, store, "D")
    a_librarian = Principal("lib@a.example.org", "A", frozenset({"librarian"}))
    require_collection_sharing(a_librarian, store, "A")
    with pytest.raises(PermissionDenied):
        require_collection_sharing(a_librarian, store, "B")


def test_cli_trending_and_deselection(community, capsys):
    import json

    from analytics.cli import main

    settings, _store, _release = community
    assert main(["--data-dir", str(settings.data_dir), "trending", "A", "--months", "3", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["title"] for r in records] == ["Sudden Hit"]
    assert {"work_key", "title", "author", "isbns", "subject", "score", "recent", "baseline"} <= set(records[0])
    assert records[0]["isbns"] == ["9780345806567"]
    assert main(["--data-dir", str(settings.data_dir), "deselection", "A", "--no-loans-years", "1",
                 "--min-holders", "3", "--format", "json"]) == 0
    candidates = json.loads(capsys.readouterr().out)
    assert [(c["title"], c["holders"]) for c in candidates] == [("Old Idle Book", 3), ("Pair Work", 3)]
    assert candidates[1]["isbns"] == [PRINT, EBOOK]
    assert main(["--data-dir", str(settings.data_dir), "deselection", "A", "--retention", "--format", "json"]) == 0
    assert [c["title"] for c in json.loads(capsys.readouterr().out)] == ["Rare Book"]
    assert main(["--data-dir", str(settings.data_dir), "trending", "D"]) == 2
    assert "does not share Selection and Collection Development" in capsys.readouterr().err
    assert main(["--data-dir", str(settings.data_dir), "trending", "A", "--months", "7"]) == 2
    assert "choose 3, 6 or 12" in capsys.readouterr().err


def test_subject_overview_counts_and_relative_use(community):
    from analytics.views.subject_overview import subject_overview

    settings, _store, release = community
    overview = subject_overview(SYSTEM_JOB, release, settings.data_dir, "A", "EU", window=3)
    ps = overview.filter(pl.col("lc_subclass") == "PS").row(0, named=True)
    # Steady Seller and Sudden Hit (PS) are held by A, B and C; HV (Old Idle Book) and QL (Pair) too.
    assert ps["community_holdings"] == 6 and ps["own_holdings"] == 2
    assert ps["community_loans"] == 3 * (12 * 30 + 9 * 1 + 3 * 20)  # every loan month has three lenders
    assert ps["own_loans"] == 12 * 30 + 9 + 60
    assert ps["community_loans_share"] == pytest.approx(1.0)
    assert ps["community_holdings_share"] == pytest.approx(6 / 12)
    assert ps["community_relative_use"] == pytest.approx(2.0)
    assert overview["own_holdings_share"].sum() == pytest.approx(1.0)
    rare = overview.filter(pl.col("lc_subclass") == "N").row(0, named=True)
    assert (rare["community_holdings"], rare["own_holdings"]) == (0, 1)  # only A holds it: not released
    with pytest.raises(FilterError, match="not a data center"):
        subject_overview(SYSTEM_JOB, release, settings.data_dir, "A", "XX")


def _peer_community(tmp_path, research: int, teaching: int):
    recent, old = "2026-02-01", "2015-01-01"
    members = []
    for i in range(research + teaching):
        code = f"R{i}" if i < research else f"T{i}"
        rows = [(f"{code}-0",) + STEADY[:4] + (old,)]
        if i < 3:  # three research institutions bought the new book this year
            rows.append((f"{code}-1",) + SURGE[:4] + (recent,))
        members.append(Member(code, type="research" if i < research else "teaching", tables={"items": items_csv(rows)}))
    members.append(Member("Z", tables={"items": items_csv([("Z-0",) + RARE[:5]])}))  # holds neither
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    return settings, store, open_release(settings.community_dir)


def test_selection_by_peer_group_and_complement_rule(tmp_path):
    from analytics.views.selection import SelectionFilters, peer_groups, selection

    settings, store, release = _peer_community(tmp_path, research=5, teaching=5)
    groups = dict(peer_groups(release, "EU").iter_rows())
    # Z is a research institution too; every member is in one size band, whose complement is empty.
    assert groups == {"all": 11, "type=research": 6, "type=teaching": 5}
    keys, isbns = own_identifiers(SYSTEM_JOB, settings.data_dir, "Z")
    research = selection(release, SelectionFilters(region="EU", peer_group="type=research",
                                                   min_acquired_percent=50), keys, isbns)
    assert research.select("title", "institutions_acquired_12m", "group_size").rows() == [("Sudden Hit", 3, 6)]
    everyone = selection(release, SelectionFilters(region="EU", min_acquired_percent=50), keys, isbns)
    assert everyone.height == 0  # 3 of 11 is below half
    lower = selection(release, SelectionFilters(region="EU", min_acquired_percent=25), keys, isbns)
    assert lower["title"].to_list() == ["Sudden Hit"]
    holder_keys, holder_isbns = own_identifiers(SYSTEM_JOB, settings.data_dir, "R0")
    assert selection(release, SelectionFilters(region="EU", min_acquired_percent=25), holder_keys,
                     holder_isbns).height == 0  # R0 holds it already
    with pytest.raises(FilterError, match="not released for EU"):
        selection(release, SelectionFilters(region="EU", peer_group="type=public"), keys, isbns)
    store.dispose()


def test_small_peer_groups_and_their_complements_are_not_released(tmp_path):
    from analytics.views.selection import peer_groups

    settings, store, release = _peer_community(tmp_path, research=7, teaching=2)
    # type=teaching has 2 members (< K_BENCH) and type=research's complement has 3: neither is released.
    assert peer_groups(release, "EU")["peer_group"].to_list() == ["all"]
    selection_rows = pl.read_parquet(release.path / "peer_selection.parquet")
    assert set(selection_rows["peer_group"]) == {"all"}
    assert selection_rows["institutions_acquired_12m"].drop_nulls().min() >= 3
    store.dispose()


def test_trend_rows_stored_at_publish_equal_those_computed_on_open(community, tmp_path):
    import shutil

    _settings, _store, release = community
    assert (release.path / "trend_rows.parquet").exists()
    older = tmp_path / "older" / "releases" / release.release_id
    shutil.copytree(release.path, older)
    for name in ("trend_rows.parquet", "monthly_signal.parquet"):
        (older / name).unlink()
    recomputed = open_release(tmp_path / "older", release.release_id)
    for window in (3, 6, 12):
        filters = Filters(region="EU", window=window)
        assert trending(recomputed, filters).equals(trending(release, filters))


@pytest.mark.parametrize("window", [3, 6, 12])
def test_only_rising_works_are_listed(published_community, window):
    from analytics.core.config import load_settings

    release = open_release(load_settings(published_community).community_dir)
    try:
        stored = release.cursor().sql("SELECT count(*) FROM trend_rows WHERE window_months = $w AND score <= 0",
                                      params={"w": window}).fetchall()[0][0]
        assert stored > 0  # the release keeps flat and falling works (the subject overview uses them)
        for region in ("NA", "EU", "APAC"):
            listed = trending(release, Filters(region=region, window=window, limit=1000))
            assert (listed["score"] > 0).all() and (listed["recent"] > listed["baseline"]).all()
    finally:
        release.con.close()
