"""Holders of a work in a region, as a member may see them: the release's latest holdings count,
banded. The release withholds every count below its K_TITLE, so a work without a holdings row is
held by "fewer than K" (none, one or more: nobody learns which)."""

from __future__ import annotations

import polars as pl

from analytics.release.handle import Release


def band(count: int | None, k_title: int) -> str:
    """"fewer than K" (count withheld), "K–5", "6–9", "10 or more" (bands start at K when K is larger)."""
    if count is None or count < k_title:
        return f"fewer than {k_title}"
    for low, high in ((k_title, 5), (max(k_title, 6), 9)):
        if low <= count <= high:
            return f"{low}–{high}" if low < high else str(low)
    return f"{max(k_title, 10)} or more"


def holders_in_region(release: Release, region: str, work_keys) -> pl.DataFrame:
    """work_key, institutions_holding (null: fewer than K_TITLE) and band, one row per distinct key,
    from the latest month of the release's holdings in `region`."""
    k_title = release.manifest["privacy"]["K_TITLE"]
    keys = pl.DataFrame({"work_key": pl.Series(list(work_keys), dtype=pl.String)}).drop_nulls().unique()
    cur = release.cursor()
    cur.register("wanted_keys", keys)
    counts = cur.sql(
        """
        SELECT w.work_key, h.institutions_holding
        FROM wanted_keys w LEFT JOIN holdings h
          ON h.work_key = w.work_key AND h.region = $region
         AND h.month = (SELECT max(month) FROM holdings WHERE region = $region)
        """,
        params={"region": region},
    ).pl().with_columns(pl.col("institutions_holding").cast(pl.Int64))
    bands = pl.DataFrame({"institutions_holding": counts["institutions_holding"].unique()})
    bands = bands.with_columns(pl.col("institutions_holding").map_elements(
        lambda n: band(n, k_title), return_dtype=pl.String, skip_nulls=False).alias("band"))
    return counts.join(bands, on="institutions_holding", how="left", nulls_equal=True)
