"""Recommendation rules on constructed releases: each type fires with the expected evidence, or not.

A "world" is one institution's local store (imported from CSV through the real import)
and the recommendations part of a release written by hand, so every number is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from analytics.release.handle import Release
from analytics.views import recommend
from analytics.core.access import Principal
from analytics.ingest.tabular import import_file
from analytics.control.recommend_catalog import CATALOG, MAX_PER_TYPE
from analytics.release.manifest import RELEASE_SCHEMA
from analytics.core.access import Principal as _Principal

SYSTEM_JOB = _Principal.system_job()

SYSTEM = Principal.system_job()
AS_OF = "2026-06-15"  # last complete month 2026-05; the last 12 months are 2025-06 .. 2026-05
CODE = "F"


def isbn(n: int) -> str:
    base = f"978{n:09d}"
    total = sum((1 if i % 2 == 0 else 3) * int(d) for i, d in enumerate(base))
    return base + str((10 - total % 10) % 10)


def _csv(rows: list[dict]) -> str:
    return pl.DataFrame(rows).write_csv()


def write_release(root: Path, tables: dict[str, list[dict]], contributors: int = 8,
                  release_id: str = "20260615T000000Z-aaaaaa") -> Release:
    """A release whose recommendations/ part holds exactly `tables` (others empty)."""
    path = root / "community" / "releases" / release_id
    part = path / recommend.PART
    part.mkdir(parents=True)
    for name in ("titles", "holdings", "peer_selection", "monthly_signal", "trend_rows", "work_use", "platforms",
                 "platform_titles"):
        schema = RELEASE_SCHEMA[f"{name}.parquet"]
        rows = tables.get(name, [])
        frame = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema) if rows \
            else pl.DataFrame(schema=schema)
        frame.write_parquet(part / f"{name}.parquet")
    manifest = {"release_id": release_id, "as_of": AS_OF, "window": {"start": "2023-07", "end": "2026-06"},
                "contributors": {"recommendations": {"EU": contributors}},
                "privacy": {"K_TITLE": 3, "K_BENCH": 5, "DOMINANCE": 0.5, "epsilon": None}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return recommend.open_part(root / "community", release_id)


def world(tmp_path: Path, *, items: list[dict], loans: list[dict] = (), e_usage: list[dict] = (),
          lists: list[dict] = (), release: dict[str, list[dict]] | None = None, contributors: int = 8,
          release_id: str = "20260615T000000Z-aaaaaa") -> list[recommend.Candidate]:
    data_dir = tmp_path / "data"
    for kind, rows in (("items", items), ("loans", loans), ("e-usage", e_usage), ("reading-lists", lists)):
        if rows:
            source = tmp_path / f"{kind}.csv"
            source.write_text(_csv(list(rows)))
            import_file(data_dir, SYSTEM, CODE, kind, source)
    part = write_release(data_dir, release or {}, contributors, release_id)
    return recommend.generate(SYSTEM_JOB, part, data_dir, CODE, "EU")


def of_type(candidates, type_id):
    return [c for c in candidates if c.type == type_id]


def evidence(candidate) -> dict:
    return {e["label"]: e["value"] for e in candidate.evidence}


def item(n: int, call: str, *, fmt: str = "print", acquired: str = "2001-01-01", title: str | None = None,
         isbn_value: str | None = "auto", last_loan: str = "", item_id: str | None = None) -> dict:
    return {"item_id": item_id or f"I{n:05d}", "title": title or f"Work number {n}", "author": "Author, A",
            "isbn": isbn(n) if isbn_value == "auto" else (isbn_value or ""), "call_number": call, "format": fmt,
            "acquired_date": acquired, "last_loan_date": last_loan}


def holding(n: int, holders: int, month: str = "2026-06") -> dict:
    return {"work_key": f"isbn:{isbn(n)}", "region": "EU", "month": month, "institutions_holding": holders,
            "institutions_acquiring": 0}


def title(n: int, subclass: str | None = "QA", fmt: str = "print") -> dict:
    return {"work_key": f"isbn:{isbn(n)}", "isbns": [isbn(n)], "title": f"Work number {n}", "author": "Author, A",
            "lc_class": subclass[0] if subclass else None, "lc_subclass": subclass, "subject": "x", "format": fmt}


# -- withdraw ---------------------------------------------------------------------------------

def _withdraw_world(tmp_path, holders=(5, 6, 7, 6, 6, 8), acquired="2001-01-01"):
    items = [item(i, f"QA{i}.5 .B{i} 1999", acquired=acquired) for i in range(1, 7)]
    release = {"titles": [title(i) for i in range(1, 7)],
               "holdings": [holding(i, h) for i, h in zip(range(1, 7), holders)]}
    return world(tmp_path, items=items, release=release)


def test_withdraw_fires_with_counts_and_holders(tmp_path):
    [c] = of_type(_withdraw_world(tmp_path), "withdraw")
    assert c.target == "QA"
    ev = evidence(c)
    assert ev["Print items with no loan in 10 years"] == 6
    assert ev["of which never borrowed"] == 6
    assert ev["Median institutions of Europe holding them"] == 6.0
    assert ev["Fewest institutions of Europe holding one"] == 5
    assert c.impact_value == 6 and c.basis == {"items": 6}
    assert sorted(c.rows["item_id"]) == [f"I{i:05d}" for i in range(1, 7)]


@pytest.mark.parametrize("change", ["few holders", "added recently"])
def test_withdraw_does_not_fire(tmp_path, change):
    # 8 contributors in the region: "many" is 4 institutions; a copy added in 2020 is not idle for 10 years.
    kwargs = {"holders": (3,) * 6} if change == "few holders" else {"acquired": "2020-01-01"}
    assert of_type(_withdraw_world(tmp_path, **kwargs), "withdraw") == []


# -- retain -----------------------------------------------------------------------------------

@pytest.mark.parametrize("works, fires", [(5, True), (4, False)])
def test_retain_scarce_works(tmp_path, works, fires):
    items = [item(i, f"PR{6000 + i} .A{i} 1990") for i in range(1, works + 1)]
    items.append(item(99, "PR6099 .Z9 1990"))
    release = {"titles": [title(99, "PR")], "holdings": [holding(99, 3)]}  # held by 3: not scarce
    found = of_type(world(tmp_path, items=items, release=release), "retain")
    if not fires:
        assert found == []
        return
    [c] = found
    assert c.target == "PR"
    assert evidence(c)["Works at most 2 institutions of Europe hold"] == works
    assert evidence(c)["Your items of these works"] == works
    assert "I00099" not in c.rows["item_id"].to_list()


# -- add copies -------------------------------------------------------------------------------

@pytest.mark.parametrize("median, fires", [(2.0, True), (4.0, False)])
def test_add_copies_against_peer_median(tmp_path, median, fires):
    items = [item(1, "QA1 .A1 2020", item_id="A1"), item(1, "QA1 .A1 2020", item_id="A2")]
    loans = [{"item_id": "A1", "loan_date": "2026-01", "count": 12},
             {"item_id": "A2", "loan_date": "2025-09", "count": 8},
             {"item_id": "A2", "loan_date": "2024-01", "count": 50}]  # outside the last 12 months
    release = {"titles": [title(1, fmt="both")], "holdings": [holding(1, 4)],
               "work_use": [{"work_key": f"isbn:{isbn(1)}", "region": "EU", "holders": 4,
                             "median_loans_per_copy": median}]}
    found = of_type(world(tmp_path, items=items, loans=loans, release=release), "add_copies")
    if not fires:  # 10 loans per copy is 2.5 times the median of 4
        assert found == []
        return
    [c] = found
    ev = evidence(c)
    assert ev["Your print copies"] == 2
    assert ev["Your loans in the last 12 months"] == 20
    assert ev["Your loans per copy"] == 10.0
    assert ev["Median loans per copy at the 4 institutions of Europe holding it"] == 2.0
    assert ev["Peers hold an e-version you lack"] == "yes"
    assert c.score == pytest.approx(5.0)
    assert c.impact_value == pytest.approx(20 / 3)
    assert "e-version" in c.summary


# -- acquire for teaching ---------------------------------------------------------------------

def _teaching_world(tmp_path, hold_it=False, subclass="HB"):
    items = [item(1, "HB171 .S5 2010")]
    if hold_it:
        items.append(item(2, "HB172 .K3 2019"))
    lists = [{"list_id": "L1", "term": "2026-SPRING", "title": "Work number 1", "isbn": isbn(1)},
             {"list_id": "L2", "term": "2026-SPRING", "title": "Work number 1", "isbn": isbn(1)}]
    release = {"titles": [title(1, "HB"), title(2, subclass)], "holdings": [holding(2, 5)],
               "peer_selection": [{"work_key": f"isbn:{isbn(2)}", "region": "EU", "peer_group": "all",
                                   "group_size": 8, "institutions_holding": 5, "institutions_listing": 4}]}
    return world(tmp_path, items=items, lists=lists, release=release)


def test_acquire_teaching_fires_in_a_taught_subject(tmp_path):
    [c] = of_type(_teaching_world(tmp_path), "acquire_teaching")
    assert c.target == f"isbn:{isbn(2)}"
    ev = evidence(c)
    assert ev["Institutions of Europe listing it (this year or last)"] == 4
    assert ev["Institutions of Europe holding it"] == 5
    assert ev["Your reading-list citations in HB"] == 2


@pytest.mark.parametrize("kwargs", [{"hold_it": True}, {"subclass": "QC"}])
def test_acquire_teaching_not_when_held_or_not_taught(tmp_path, kwargs):
    assert of_type(_teaching_world(tmp_path, **kwargs), "acquire_teaching") == []


# -- acquire trending -------------------------------------------------------------------------

@pytest.mark.parametrize("score, fires", [(1.0, True), (0.5, False)])
def test_acquire_trending_in_strongest_subjects(tmp_path, score, fires):
    items = [item(1, "QA1 .A1 2020", item_id="A1")]
    loans = [{"item_id": "A1", "loan_date": "2026-02", "count": 9}]
    trend = {"region": "EU", "window_months": 6, "work_key": f"isbn:{isbn(7)}", "title": "Work number 7",
             "isbns": [isbn(7)], "lc_class": "Q", "lc_subclass": "QA", "score": score, "recent": 60.0,
             "baseline": 20.0, "loans_recent": 40, "institutions_holding": 4}
    other = {**trend, "work_key": f"isbn:{isbn(8)}", "isbns": [isbn(8)], "lc_subclass": "PR", "lc_class": "P"}
    found = of_type(world(tmp_path, items=items, loans=loans,
                          release={"titles": [title(1), title(7)], "trend_rows": [trend, other]}),
                    "acquire_trending")
    if not fires:
        assert found == []
        return
    [c] = found  # the PR work is not in a subject the institution lends in
    assert c.target == f"isbn:{isbn(7)}"
    ev = evidence(c)
    assert ev["Trend score (ln of recent / earlier, smoothed)"] == 1.0
    assert ev["Loans in the region in the last 6 months"] == 40
    assert ev["Rank of the subject among your loans"] == 1
    assert c.impact_value == 10.0


# -- review e-titles --------------------------------------------------------------------------

def _e_review_world(tmp_path, loaded=True):
    items = [item(i, f"QA{i} .E{i} 2018", fmt="electronic") for i in range(1, 7)]
    usage = [{"title": "Work number 1", "isbn": isbn(1), "platform": "JSTOR", "month": "2026-03",
              "metric_type": "Total_Item_Requests", "count": 10}] if loaded else []
    release = {"titles": [title(i) for i in range(1, 7)],
               "monthly_signal": [{"work_key": f"isbn:{isbn(2)}", "region": "EU", "month": "2026-01", "loans": 0,
                                   "e_requests": 30, "acquisitions": 0, "reading_lists": 0, "signal": 15.0}]}
    return world(tmp_path, items=items, e_usage=usage, release=release)


def test_review_e_titles_counts_unused(tmp_path):
    [c] = of_type(_e_review_world(tmp_path), "review_e_titles")
    ev = evidence(c)
    assert (c.target, ev["Your e-titles in the subject"], ev["with no use in the last 12 months"]) == ("QA", 6, 5)
    assert ev["of these, used at institutions of Europe"] == 1
    assert sorted(c.rows["item_id"]) == [f"I{i:05d}" for i in range(2, 7)]


def test_review_e_titles_not_without_usage_data(tmp_path):
    assert of_type(_e_review_world(tmp_path, loaded=False), "review_e_titles") == []


# -- load usage data --------------------------------------------------------------------------

@pytest.mark.parametrize("loading, fires", [(4, True), (3, False)])
def test_load_usage_for_a_platform_peers_load(tmp_path, loading, fires):
    items = [item(i, "", fmt="electronic") for i in range(1, 11)]
    usage = [{"title": "Other", "isbn": isbn(500), "platform": "JSTOR", "month": "2026-03",
              "metric_type": "Total_Item_Requests", "count": 4}]
    release = {"titles": [title(i) for i in range(1, 11)],
               "platform_titles": [{"work_key": f"isbn:{isbn(i)}", "region": "EU", "platform": "EBSCOhost",
                                    "institutions": 3} for i in range(1, 11)],
               "platforms": [{"region": "EU", "platform": "EBSCOhost", "institutions_holding": 6,
                              "institutions_loading": loading}]}
    found = of_type(world(tmp_path, items=items, e_usage=usage, release=release), "load_usage")
    if not fires:  # 3 of 6 is not more than half
        assert found == []
        return
    [c] = found
    ev = evidence(c)
    assert c.target == "EBSCOhost"
    assert ev["Your e-titles the community reports on the platform"] == 10
    assert ev["Institutions of Europe holding e-titles on it"] == 6
    assert ev["of which load usage for it"] == 4


# -- print / e duplication --------------------------------------------------------------------

@pytest.mark.parametrize("print_loan, fires", [("2019-05", True), ("2025-05", False)])
def test_print_e_duplication(tmp_path, print_loan, fires):
    items = [item(1, "QA1 .D1 2015", acquired="2015-01-01", item_id="P1"),
             item(1, "", fmt="electronic", item_id="E1")]
    loans = [{"item_id": "P1", "loan_date": print_loan, "count": 1}]
    usage = [{"title": "Work number 1", "isbn": isbn(1), "platform": "JSTOR", "month": "2026-02",
              "metric_type": "Total_Item_Requests", "count": 7}]
    found = of_type(world(tmp_path, items=items, loans=loans, e_usage=usage), "print_e_duplication")
    if not fires:
        assert found == []
        return
    [c] = found
    ev = evidence(c)
    assert (ev["Your print copies"], ev["Last print loan"]) == (1, "2019-05-01")
    assert ev["E-version requests in the last 12 months (COUNTER Total_Item_Requests)"] == 7
    assert c.rows["item_id"].to_list() == ["P1"]


# -- subject balance --------------------------------------------------------------------------

@pytest.mark.parametrize("qa_loans, pr_loans, fires", [(80, 20, True), (50, 50, False)])
def test_subject_balance(tmp_path, qa_loans, pr_loans, fires):
    items = [item(i, f"QA{i} .S1 2000", item_id=f"Q{i}") for i in range(1, 61)]
    items += [item(100 + i, f"PR{i} .S1 2000", item_id=f"R{i}") for i in range(1, 61)]
    loans = [{"item_id": "Q1", "loan_date": "2026-01", "count": qa_loans},
             {"item_id": "R1", "loan_date": "2026-01", "count": pr_loans}]
    release = {"titles": [title(1, "QA"), title(101, "PR")],
               "holdings": [holding(1, 10), holding(101, 10)],
               "monthly_signal": [{"work_key": f"isbn:{isbn(n)}", "region": "EU", "month": "2026-01", "loans": 50,
                                   "e_requests": 0, "acquisitions": 0, "reading_lists": 0, "signal": 50.0}
                                  for n in (1, 101)]}
    found = {c.target: c for c in of_type(world(tmp_path, items=items, loans=loans, release=release),
                                          "subject_balance")}
    if not fires:
        assert found == {}
        return
    assert set(found) == {"QA", "PR"}
    assert found["QA"].basis == {"direction": "under-invested", "ratio": 1.6}
    assert found["PR"].basis == {"direction": "over-invested", "ratio": 0.4}
    assert evidence(found["QA"])["Your relative use"] == 1.6
    assert evidence(found["QA"])["Relative use in Europe"] == 1.0


# -- data quality -----------------------------------------------------------------------------

@pytest.mark.parametrize("without, fires", [(10, True), (9, False)])
def test_data_quality_unmatched_records(tmp_path, without, fires):
    items = [item(i, f"QA{i} .Q1 2000", isbn_value=None if i <= without else "auto", title=f"Orphan title {i}")
             for i in range(1, 21)]
    found = of_type(world(tmp_path, items=items), "data_quality")
    no_ids = [c for c in found if c.target == "no_identifiers"]
    if not fires:
        assert no_ids == []
        return
    [c] = no_ids
    assert evidence(c)["Held items affected"] == 10
    assert evidence(c)["Share of your held items"] == "50.0%"
    assert c.rows.height == 10


# -- limits and catalog -----------------------------------------------------------------------

def test_at_most_30_per_type_best_first(tmp_path):
    subclasses = ["QA", "QB", "QC", "QD", "QE", "QH", "QK", "QL", "QM", "QP", "QR", "PA", "PB", "PC", "PD", "PE",
                  "PF", "PG", "PH", "PJ", "PK", "PL", "PM", "PN", "PQ", "PR", "PS", "PT", "PZ", "HA", "HB", "HC"]
    items = []
    for s_index, subclass in enumerate(subclasses):
        count = 5 + s_index  # later subclasses have more scarce works
        items += [item(1000 * (s_index + 1) + i, f"{subclass}{i} .R1 1990") for i in range(count)]
    found = of_type(world(tmp_path, items=items), "retain")
    assert len(found) == MAX_PER_TYPE == 30
    counts = [evidence(c)["Works at most 2 institutions of Europe hold"] for c in found]
    assert counts == sorted(counts, reverse=True) and counts[0] == 5 + len(subclasses) - 1


def test_every_type_has_a_rule_and_materiality():
    assert set(recommend.RULES) == set(CATALOG)
    for type_id in CATALOG:
        assert recommend.material_change(type_id, None, {}) is True


@pytest.mark.parametrize("type_id, old, new, material", [
    ("withdraw", {"items": 100}, {"items": 110}, False),
    ("withdraw", {"items": 100}, {"items": 125}, True),
    ("add_copies", {"per_copy": 10.0, "copies": 2}, {"per_copy": 12.0, "copies": 2}, False),
    ("add_copies", {"per_copy": 10.0, "copies": 2}, {"per_copy": 10.0, "copies": 3}, True),
    ("acquire_teaching", {"listing": 4}, {"listing": 5}, False),
    ("acquire_teaching", {"listing": 4}, {"listing": 6}, True),
    ("acquire_trending", {"score": 1.0}, {"score": 1.4}, False),
    ("acquire_trending", {"score": 1.0}, {"score": 1.5}, True),
    ("subject_balance", {"direction": "under-invested", "ratio": 1.6}, {"direction": "under-invested",
                                                                         "ratio": 1.8}, False),
    ("subject_balance", {"direction": "under-invested", "ratio": 1.6}, {"direction": "over-invested",
                                                                         "ratio": 0.6}, True),
    ("print_e_duplication", {"print_copies": 1}, {"print_copies": 1}, False),
])
def test_materiality_rules(type_id, old, new, material):
    assert recommend.material_change(type_id, old, new) is material


def test_data_quality_counts_held_items_as_my_data_does(tmp_path):
    """The recommendation, My data and Home count the same items: held ones (withdrawn apart)."""
    from analytics.ingest import local

    items = [item(i, f"QA{i} .Q1 2000", isbn_value=None if i <= 14 else "auto", title=f"Orphan title {i}")
             for i in range(1, 31)]
    for row in items:
        row["withdrawn_date"] = "2024-05-01" if int(row["item_id"][1:]) <= 3 else ""
    [c] = [c for c in of_type(world(tmp_path, items=items), "data_quality") if c.target == "no_identifiers"]
    quality = local.data_quality(SYSTEM, tmp_path / "data", CODE)
    without = quality.match_counts.get("fingerprint", 0) + quality.match_counts.get("unmatched", 0)
    assert (quality.items, quality.withdrawn, without) == (27, 3, 11)
    assert evidence(c)["Held items affected"] == without == c.rows.height
    assert local.summary(SYSTEM, tmp_path / "data", CODE).items == quality.items
    assert "by title and author only" in c.summary


def test_summaries_write_large_numbers_with_thousands_separators(tmp_path):
    items = [item(1, "QA1 .D1 2015", acquired="2015-01-01", item_id="P1"),
             item(1, "", fmt="electronic", item_id="E1")]
    usage = [{"title": "Work number 1", "isbn": isbn(1), "platform": "JSTOR", "month": "2026-02",
              "metric_type": "Total_Item_Requests", "count": 1234}]
    [c] = of_type(world(tmp_path, items=items, e_usage=usage), "print_e_duplication")
    assert "the e-version had 1,234 requests in 12 months" in c.summary


def test_withdraw_and_retain_leave_out_what_you_committed_to_retain(tmp_path):
    """Shared print: items whose work the institution committed to retain are never proposed for
    withdrawal, and scarce works already committed are not counted again as to retain."""
    items = [item(i, f"QA{i} .W1 1990", acquired="1990-01-01", last_loan="2001-01-01") for i in range(1, 21)]
    release = {"titles": [title(i, "QA") for i in range(1, 21)],
               "holdings": [holding(i, 10) for i in range(1, 21)]}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = {c.target: c for c in of_type(world(tmp_path / "a", items=items, release=release), "withdraw")}
    assert before["QA"].basis == {"items": 20}
    commitments = tmp_path / "b" / "retention.csv"
    commitments.write_text("isbn,program,committed_on,retain_until\n"
                           + "".join(f"{isbn(i)},EAST,2015-01-01,\n" for i in range(1, 6))
                           + f"{isbn(6)},EAST,2015-01-01,2020-12-31\n")  # ended: not a commitment any more
    import_file(tmp_path / "b" / "data", SYSTEM, CODE, "retention-commitments", commitments)
    after = {c.target: c for c in of_type(world(tmp_path / "b", items=items, release=release), "withdraw")}
    assert after["QA"].basis == {"items": 15}
    assert not set(after["QA"].rows["isbn"]) & {isbn(i) for i in range(1, 6)}
