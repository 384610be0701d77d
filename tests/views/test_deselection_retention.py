"""Deselection with retention commitments: never propose what the institution committed to
retain, and mark what others in the region retain (or nobody does)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from analytics.core.access import Principal
from analytics.release.handle import open_release
from analytics.views.deselection import DeselectionRules, deselection
from tests.attack_community import isbn13
from tests.community import Member, build, items_csv, publish_exact

SYSTEM_JOB = Principal.system_job()


def member(code: str, works: list[int], commitments: list[tuple[int, str, str]]) -> Member:
    items = [(f"{code}-{w}", f"Work {w}", "Author, Alex", isbn13(w), "QA76 .A1", "2001-01-01", 1990)
             for w in works]
    tables = {"items": items_csv(items)}
    if commitments:
        tables["retention-commitments"] = "isbn,program,retain_until\n" + "".join(
            f"{isbn13(w)},{program},{until}\n" for w, program, until in commitments)
    return Member(code, tables=tables)


def test_own_commitments_are_never_proposed_and_others_are_shown(tmp_path):
    members = [member("A", [1, 2, 3, 4], [(2, "EAST", "2040-12-31"), (4, "EAST", "2020-12-31")])]
    members += [member(code, [1, 2, 4], [(1, "EAST", ""), (1, "WEST", "2030-12-31")] if code != "D" else
                       [(1, "EAST", "2035-12-31")]) for code in "BCD"]
    settings, store = build(tmp_path / "data", members)
    release_id = publish_exact(settings, store, as_of=date(2026, 6, 15), now=datetime(2026, 6, 15, 12, tzinfo=UTC))
    release = open_release(settings.community_dir, release_id)
    result = deselection(SYSTEM_JOB, release, settings.data_dir, "A",
                         DeselectionRules(region="EU", no_loans_years=5, min_holders=3))
    withdraw = {row["title"]: row["retained_in_region"] for row in result["withdraw"].iter_rows(named=True)}
    # Work 2: A committed to retain it (until 2040): left out. Work 4: A's commitment ended in 2020.
    # Work 1: B, C and D retain it; EAST is named by all three, WEST only by two.
    assert withdraw == {"Work 1": "3–5 (EAST)", "Work 4": "fewer than 3"}
    assert result["committed_left_out"] == 1
    retain = result["retain"].select("title", "retained_in_region", "committed_by_you").rows()
    assert retain == [("Work 3", "fewer than 3", False)]
    assert result["nobody_retains"] == 1
