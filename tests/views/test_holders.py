"""Holders in the region, banded (views/holders.py): the one banding that retention, comparison
and the last-copy check share."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from analytics.release.handle import Release
from analytics.views.holders import band, band_labels, holders_in_region


@pytest.mark.parametrize("count, expected", [
    (None, "fewer than 3"), (0, "fewer than 3"), (2, "fewer than 3"), (3, "3–5"), (5, "3–5"), (6, "6–9"),
    (9, "6–9"), (10, "10 or more"), (250, "10 or more"),
])
def test_band_with_k_3(count, expected):
    assert band(count, 3) == expected


def test_band_with_other_k():
    assert [band(n, 5) for n in (None, 4, 5, 6, 10)] == ["fewer than 5", "fewer than 5", "5–5", "6–9", "10 or more"]
    assert [band(n, 7) for n in (6, 7, 9, 10)] == ["fewer than 7", "7–9", "7–9", "10 or more"]
    assert band_labels(3) == ["fewer than 3", "3–5", "6–9", "10 or more"]
    assert band_labels(7) == ["fewer than 7", "7–9", "10 or more"]
    for k in (2, 3, 5, 7, 10, 12):  # every band a count falls in is a listed label
        assert {band(n, k) for n in [None, *range(0, 30)]} <= set(band_labels(k))


def _release(rows: list[tuple]) -> Release:
    con = duckdb.connect()
    frame = pl.DataFrame(rows, schema={"work_key": pl.String, "region": pl.String, "month": pl.String,
                                       "institutions_holding": pl.Int64}, orient="row")
    con.register("frame", frame)
    con.execute("CREATE TABLE holdings AS SELECT * FROM frame")
    manifest = {"release_id": "r1", "as_of": "2026-06-15", "privacy": {"K_TITLE": 3}}
    return Release("r1", Path("."), manifest, con)


def test_holders_in_region_reads_the_as_of_month_of_the_region():
    release = _release([
        ("w:many", "EU", "2026-06", 12), ("w:many", "EU", "2026-01", 4),   # an acquisition month: not the snapshot
        ("w:some", "EU", "2026-06", 4),
        ("w:old", "EU", "2026-02", 5),                                       # no snapshot row: fewer than K now
        ("w:elsewhere", "NA", "2026-06", 8),                                 # another region
    ])
    out = holders_in_region(release, "EU", ["w:some", "w:many", "w:old", "w:elsewhere", "w:none", "w:some"])
    assert out.columns == ["work_key", "institutions_holding", "band"]
    assert out.rows() == [
        ("w:some", 4, "3–5"), ("w:many", 12, "10 or more"), ("w:old", None, "fewer than 3"),
        ("w:elsewhere", None, "fewer than 3"), ("w:none", None, "fewer than 3"),
    ]


def test_holders_in_region_of_no_keys_is_empty():
    out = holders_in_region(_release([("w:a", "EU", "2026-06", 3)]), "EU", [])
    assert out.height == 0 and out.columns == ["work_key", "institutions_holding", "band"]
