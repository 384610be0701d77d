"""The demo community and the contribution builder (what leaves an institution)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.contribute import anonymize
from analytics.core import contract
from analytics.core.access import PermissionDenied, Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import CONSORTIUM, build_demo
from analytics.ingest.tabular import import_file
from analytics.ingest.local import institution_dir
from analytics.control.store import Institution, Store

SYSTEM = Principal.system_job()


@pytest.fixture
def demo_store(demo_community):
    store = Store(load_settings(demo_community).database_url)
    yield store
    store.dispose()


def test_demo_community_shape(demo_community, demo_store):
    institutions = demo_store.list_institutions(SYSTEM)
    assert len(institutions) == 6
    assert len({i.type for i in institutions}) >= 4
    assert {i.consortium for i in institutions} == {CONSORTIUM, None}
    assert any(not i.live_for_a_year(date.today()) for i in institutions)
    for inst in institutions:
        folder = institution_dir(demo_community, inst.code)
        assert (folder / "items.parquet").exists() and (folder / "loans.parquet").exists()
        assert {u.roles[0] for u in demo_store.list_users(SYSTEM, inst.code)} == {"admin", "manager", "librarian"}
    annual = pl.read_parquet(institution_dir(demo_community, institutions[0].code) / "annual_stats.parquet")
    assert annual.height == 3 and annual["year"].is_sorted() and annual["total_circulation"].min() > 0
    assert not any("expend" in c for c in annual.columns)  # the survey's money column was dropped
    items = pl.read_parquet(institution_dir(demo_community, institutions[0].code) / "items.parquet")
    assert items["isbn"].str.contains(";").any()  # print and e-book ISBNs of one work
    assert set(items["format"].unique()) == {"print", "electronic"}
    states = [demo_store.sharing_state(SYSTEM, i.code) for i in institutions]
    assert any(s["benchmark"].requested for s in states)
    assert any(not s["recommendations"].requested for s in states)  # a mix, not all on


def test_demo_has_at_least_three_regions_at_default_size(tmp_path):
    from analytics.synthetic.demo import make_institutions
    import numpy as np

    institutions = make_institutions(np.random.default_rng(7), 24, date(2026, 11, 29))
    assert len({i.region for i in institutions}) >= 3
    assert len({i.type for i in institutions}) >= 4
    assert len({i.code for i in institutions}) == 24


def test_demo_is_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        build_demo(load_settings(folder), institutions=5, months=12, seed=11, today=date(2026, 6, 15),
                   progress=lambda _line: None)
    codes = sorted(p.name for p in (first / "institutions").iterdir())
    assert codes == sorted(p.name for p in (second / "institutions").iterdir())
    for code in codes:
        for table in ("items.parquet", "loans.parquet", "e_usage.parquet"):
            assert_frame_equal(pl.read_parquet(first / "institutions" / code / table),
                               pl.read_parquet(second / "institutions" / code / table))


def test_demo_refuses_to_overwrite_without_reset(demo_community):
    with pytest.raises(ValueError, match="--reset"):
        build_demo(load_settings(demo_community), institutions=5, progress=lambda _line: None)


CANARY_ITEMS = """item_id,title_id,title,author,isbn,call_number,format,owner,acquired_date,location,patron_id,fund,note
CANARY-ITEM-1,CANARY-BIB-1,The Fire Next Time,"Baldwin, James",9780679744726,PS3552.A45 F5 1993,print,CANARYINST,2019-01-05,CANARY-SHELF,CANARY-PATRON,CANARY-FUND,CANARY-NOTE
CANARY-ITEM-2,CANARY-BIB-2,Giovanni's Room,"Baldwin, James",9780345806567,PS3552.A45 G5 2013,electronic,CANARYINST,2020-02-01,CANARY-SHELF,CANARY-PATRON,CANARY-FUND,CANARY-NOTE
CANARY-ITEM-3,CANARY-BIB-3,Another member's book,"Other, Author",9780385334570,QA76.73 .P98 2019,print,OTHERMEMBER,2020-02-01,CANARY-SHELF,CANARY-PATRON,CANARY-FUND,CANARY-NOTE
"""
CANARY_LOANS = """item_id,loan_date,count,patron_id,patron_name,fine
CANARY-ITEM-1,2024-03,2,CANARY-PATRON,CANARY-NAME,CANARY-FINE
CANARY-ITEM-3,2024-03,5,CANARY-PATRON,CANARY-NAME,CANARY-FINE
"""
CANARY_LISTS = """list_id,course_code,term,title,isbn,enrolment,citation_type
CANARY-LIST-1,CANARY-COURSE,2024-FALL,The Fire Next Time,9780679744726,40,required
"""


@pytest.fixture
def canary_institution(tmp_path) -> tuple[Path, Institution]:
    data_dir = tmp_path / "data"
    inst = Institution(code="CANARYINST", name="Canary Institution Name", type="research", region="EU",
                       country="DE", fte_students=1000, consortium="CANARY-NZ", go_live_date=date(2015, 1, 1),
                       version=1)
    for kind, text in (("items", CANARY_ITEMS), ("loans", CANARY_LOANS), ("reading-lists", CANARY_LISTS)):
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        import_file(data_dir, SYSTEM, inst.code, kind, path)
    return data_dir, inst


def test_contributions_hold_only_allow_listed_columns_and_no_canary(canary_institution):
    data_dir, inst = canary_institution
    for service in contract.SERVICE_TABLES:
        tables = anonymize.build_contribution(institution_dir(data_dir, inst.code), inst, service)
        assert tables, service
        for name, frame in tables.items():
            assert tuple(frame.columns) == contract.CONTRIBUTION_COLUMNS[name]
            assert dict(frame.schema) == contract.polars_schema(contract.CONTRIBUTION_TABLES[name]), name
            text = frame.write_ndjson()
            assert "canary" not in text.lower(), (service, name)


def test_network_zone_rows_of_other_members_never_leave(canary_institution):
    data_dir, inst = canary_institution
    tables = anonymize.build_contribution(institution_dir(data_dir, inst.code), inst, "collection_development")
    holdings = tables["holdings"]
    assert sorted(holdings["title"].to_list()) == ["Giovanni's Room", "The Fire Next Time"]
    assert holdings["copies_held"].sum() == 2
    assert tables["loans"]["loans"].to_list() == [2]  # the other member's 5 loans stay home
    assert tables["reading_lists"].select("lists", "citations", "required_citations").row(0) == (1, 1, 1)
    kpis = anonymize.build_contribution(institution_dir(data_dir, inst.code), inst, "benchmark")["kpis"]
    loans_2024 = kpis.filter((pl.col("period") == "2024") & (pl.col("measure") == "loans"))
    assert loans_2024["value"].to_list() == [2.0]  # the other member's loans are not measured either


def test_preview_is_for_members_only(canary_institution):
    data_dir, inst = canary_institution
    outsider = Principal("x@other.example.org", "OTHER", frozenset({"admin"}))
    with pytest.raises(PermissionDenied):
        anonymize.preview(outsider, data_dir, inst, "collection_development")
    member = Principal("lib@canary.example.org", inst.code, frozenset({"librarian"}))
    assert set(anonymize.preview(member, data_dir, inst, "benchmark")) == {"kpis", "held_works"}
