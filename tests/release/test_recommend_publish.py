"""The recommendation evidence a publish releases, computed by hand on a constructed community."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from analytics.views import recommend
from analytics.release.manifest import release_path
from tests.community import Member, build, publish_exact, verify_exact
from analytics.core.access import Principal as _Principal

SYSTEM_JOB = _Principal.system_job()

AS_OF = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
FIRE = "9780679744726"
EBOOK = "9780441017805"
NOT_RECOMMENDATIONS = ("collection_development", "benchmark")


def member(code: str, print_copies: int, loans: int, e_book: bool, usage: int | None, platform="EBSCOhost",
           services=("collection_development", "recommendations", "benchmark")) -> Member:
    rows = ["item_id,title,author,isbn,call_number,format,acquired_date"]
    rows += [f"{code}-P{i},The Fire Next Time,\"Baldwin, James\",{FIRE},PS3545 .B5,print,2019-01-05"
             for i in range(print_copies)]
    if e_book:
        rows.append(f"{code}-E,On the edge,\"Andrews, Ilona\",{EBOOK},PS3601 .E3,electronic,2020-01-01")
    tables = {"items": "\n".join(rows) + "\n"}
    if loans:
        tables["loans"] = f"item_id,loan_date,count\n{code}-P0,2026-03,{loans}\n{code}-P0,2024-03,500\n"
    if usage is not None:
        tables["e-usage"] = ("title,isbn,platform,month,metric_type,count\n"
                             f"On the edge,{EBOOK},{platform},2026-03,Total_Item_Requests,{usage}\n")
    return Member(code, tables=tables, services=services)


def test_loans_per_copy_median_and_platforms_by_hand(tmp_path):
    members = [
        member("A", 1, 6, True, 5),        # 6 loans per copy
        member("B", 2, 4, True, 2),        # 2 per copy
        member("C", 1, 0, True, 9),        # 0 per copy (a holder that lent nothing counts)
        member("E", 1, 0, True, None),     # holds the e-book, loads no usage
        # D does not share for recommendations: its 100 loans per copy and its e-book are not evidence.
        member("D", 1, 100, True, 50, services=NOT_RECOMMENDATIONS),
        # X reports usage on a platform only it uses: fewer than K_TITLE, never released.
        member("X", 0, 0, True, 3, platform="Xylophone Institutional Repository"),
    ]
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    part = release_path(settings.community_dir) / recommend.PART

    work_use = pl.read_parquet(part / "work_use.parquet")
    # Holders A, B, C, E: 6, 2, 0, 0 loans per copy (the 2024 loans are outside the last 12 months).
    assert work_use.rows() == [(f"isbn:{FIRE}", "EU", 4, 1.0)]
    platform_titles = pl.read_parquet(part / "platform_titles.parquet")
    assert platform_titles.rows() == [(f"isbn:{EBOOK}", "EU", "EBSCOhost", 3)]
    platforms = pl.read_parquet(part / "platforms.parquet")
    # A, B, C, E and X hold the e-book that the community reports on EBSCOhost; A, B, C load usage for it.
    assert platforms.rows() == [("EU", "EBSCOhost", 5, 3)]
    # Collection development counts D's loans (A, B and D lend: 110); the recommendations part does
    # not, and without D only two institutions lend, so no loan row is released there at all.
    cd_loans = pl.read_parquet(release_path(settings.community_dir) / "loans.parquet")
    rec_loans = pl.read_parquet(part / "loans.parquet")
    assert cd_loans.filter(pl.col("month") == "2026-03")["loans"].to_list() == [110]
    assert rec_loans.height == 0
    assert verify_exact(settings, store) == []

    # E holds the e-book on a platform 3 of 5 holders load usage for, but E loads no usage at all and
    # has one e-title: below the 10 e-titles load_usage needs, so nothing fires; A's copies are fine.
    opened = recommend.open_part(settings.community_dir)
    found = recommend.generate(SYSTEM_JOB, opened, settings.data_dir, "E", "EU")
    assert [c for c in found if c.type in ("load_usage", "add_copies")] == []
    store.dispose()


def test_platform_named_after_an_institution_never_reaches_a_release(tmp_path):
    members = [member(code, 1, 1, True, 4) for code in ("A", "B", "C")]
    members.append(member("QZXCANARY", 1, 1, True, 4, platform="QZXCANARY Library Repository"))
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    for file in release_path(settings.community_dir).rglob("*"):
        if file.is_file():
            assert b"QZXCANARY" not in file.read_bytes().upper(), file.name
    store.dispose()
