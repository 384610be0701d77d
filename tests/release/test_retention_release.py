"""Retention commitments in a release: the `retention` table counts committing institutions per
work and region, with the programs and the year that at least K_TITLE of them name, through the
disclosure layer; and what a member that keeps every release can learn from it."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import polars as pl

from analytics.contribute import anonymize
from analytics.release.publish import publish
from tests.attack_community import isbn13, kept, work_key
from tests.community import Member, build, items_csv, publish_exact, verify_exact
from analytics.release.manifest import verify_release

AS_OF = date(2026, 6, 15)


def commitments_csv(rows: list[tuple]) -> str:
    """rows of (isbn, program, committed_on, retain_until, local note)."""
    return "isbn,program,committed_on,retain_until,note\n" + "".join(",".join(r) + "\n" for r in rows)


def member(code: str, works: list[int], commitments: list[tuple]) -> Member:
    items = [(f"{code}-{w}", f"Title of work {w}", f"Author{w}, Alex", isbn13(w), "QA76 .A1", "2020-01-01")
             for w in works]
    tables = {"items": items_csv(items)}
    if commitments:
        tables["retention-commitments"] = commitments_csv(
            [(isbn13(w), program, "2016-06-30", until, f"CANARY-LOCAL-{code}") for w, program, until in commitments])
    return Member(code, name=f"CANARY-NAME-{code}", tables=tables)


def test_retention_table_by_hand(tmp_path):
    members = [
        member("A", [1, 2], [(1, "EAST", "2035-12-31"), (2, "EAST", "2035-12-31")]),
        member("B", [1, 2], [(1, "EAST", "2040-06-30"), (2, "WEST", "")]),
        member("C", [1], [(1, "WEST", ""), (1, "EAST", "2030-12-31")]),
        member("D", [1], [(1, "EAST", "2020-12-31")]),  # expired: not counted
        member("E", [1], []),
    ]
    settings, store = build(tmp_path / "data", members)
    release_id = publish_exact(settings, store, as_of=AS_OF, now=datetime(2026, 6, 15, 12, tzinfo=UTC))
    assert verify_exact(settings, store, release_id) == []
    release = kept(settings, release_id)
    table = release["retention.parquet"]
    assert table.columns == ["work_key", "region", "institutions_committed", "programs", "retained_until"]
    # Work 1: A (2035), B (2040), C (indefinite) are current; D's ended in 2020. EAST is named by
    # A, B and C; WEST only by C. The 3rd latest year of A, B, C is 2035.
    assert table.to_dicts() == [{"work_key": work_key(1), "region": "EU", "institutions_committed": 3,
                                 "programs": ["EAST"], "retained_until": 2035}]
    # Work 2 has two committing institutions: below K_TITLE, absent. Its title row is there only
    # because of holdings.
    assert set(release["titles.parquet"]["work_key"]) >= {work_key(1)}
    assert release["recommendations/retention.parquet"].equals(table)
    text = str([frame.to_dicts() for frame in release.tables.values()])
    assert "CANARY" not in text


def test_retained_until_is_null_when_k_title_commitments_are_indefinite(tmp_path):
    members = [member(code, [1], [(1, "HathiTrust Shared Print", "")]) for code in "ABC"]
    settings, store = build(tmp_path / "data", members)
    release = kept(settings, publish_exact(settings, store, as_of=AS_OF, now=datetime(2026, 6, 15, 12, tzinfo=UTC)))
    assert release["retention.parquet"].to_dicts() == [
        {"work_key": work_key(1), "region": "EU", "institutions_committed": 3,
         "programs": ["HathiTrust Shared Print"], "retained_until": None}]


def test_only_counts_programs_and_years_leave(tmp_path):
    """The contribution of a commitment: work, ISBNs, program, year. Not the dates, the source,
    the institution's note or any 583 $5."""
    settings, store = build(tmp_path / "data", [member("A", [1], [(1, "EAST", "2035-06-30")])])
    frame = anonymize.retention(settings.data_dir / "institutions" / "A", None, today=date(2026, 1, 1))
    assert frame.to_dicts() == [{"work_key": work_key(1), "isbns": [isbn13(1)], "program": "EAST",
                                 "retain_until_year": 2035}]


# -- attack: one member adds commitments between two releases --------------------------------------

WORKS = 160


def attack_members(seed: int, z_commits: set[int]) -> list[Member]:
    rng = random.Random(seed)
    codes = [f"M{i:02d}" for i in range(11)]
    commitments: dict[str, list[tuple]] = {c: [] for c in codes}
    for w in range(1, WORKS + 1):
        for c in rng.sample(codes, rng.randint(1, 6)):
            commitments[c].append((w, rng.choice(["EAST", "WEST", "HathiTrust Shared Print"]),
                                   rng.choice(["2030-12-31", "2035-12-31", "2042-12-31", ""])))
    members = [member(c, list(range(1, WORKS + 1)), commitments[c]) for c in codes]
    members.append(member("Z", list(range(1, WORKS + 1)), [(w, "EAST", "2035-12-31") for w in sorted(z_commits)]))
    return members


def test_attack_differencing_a_member_that_adds_commitments(tmp_path):
    """Z (a member in both releases, so the population of contributors does not change) commits
    to half of the works between release A and release B. The attacker compares every retention
    row of the two releases and guesses that Z committed to a work whose row changed. Every
    retention count of the region is redrawn when any commitment changes, and counts are released
    as the floor of their band (3, 6, 10), so the changes do not point at Z's works: membership
    accuracy stays at or below 70% on a balanced set (66.9% here; 70.6% with exact counts)."""
    rng = random.Random(5)
    added = set(rng.sample(range(1, WORKS + 1), WORKS // 2))
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    settings_a, store_a = build(tmp_path / "a", attack_members(17, set()))
    a = kept(settings_a, publish(settings_a, store_a, as_of=AS_OF, now=now))
    settings_b, store_b = build(tmp_path / "b", attack_members(17, added))
    b = kept(settings_b, publish(settings_b, store_b, as_of=AS_OF, now=now))
    assert verify_release(settings_b, store_b, b.release_id) == []

    def counts(release) -> dict[str, int]:
        frame = release["retention.parquet"]
        return dict(zip(frame["work_key"], frame["institutions_committed"], strict=True))

    before, after = counts(a), counts(b)
    hits = cells = 0
    for w in range(1, WORKS + 1):
        key = work_key(w)
        guess = after.get(key, 0) > before.get(key, 0)  # the best single guess: the count went up
        hits += guess == (w in added)
        cells += 1
    accuracy = hits / cells
    print(f"[retention differencing] accuracy={accuracy:.3f} cells={cells}")
    assert len(before) >= 20 and len(after) >= 20
    assert accuracy <= 0.70, f"membership accuracy {accuracy:.3f} over {cells} works"
    # Programs and years: never one institution's. Every released program is named by at least
    # K_TITLE committing institutions (so Z's EAST alone never adds one).
    for frame in (a["retention.parquet"], b["retention.parquet"]):
        assert frame.filter(pl.col("institutions_committed") < 3).is_empty()
