"""Holders in the region, banded: how many institutions of a region hold a work, as far as the
release can say.

The release's holdings table has one row per work, region and month; the as-of month is the
current snapshot. A row exists only when at least K_TITLE institutions hold the work (before and
after the count perturbation of the disclosure layer), so an absent row means "fewer than K_TITLE,
or none": the release never tells 0 from 1 or 2. The bands are therefore:

- "fewer than K"  (no row: 0, 1, ... K_TITLE - 1 holders, indistinguishable)
- "K–5"           (K_TITLE to 5; empty when K_TITLE > 5)
- "6–9"
- "10 or more"

Retention, comparison and the last-copy check all band holders here, so the three read the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analytics.release.handle import Release

__all__ = ["BANDS", "band", "band_labels", "holders_in_region"]

BANDS = ("fewer than K", "K–5", "6–9", "10 or more")  # the band names with K unresolved


def band_labels(k_title: int) -> list[str]:
    """The band labels in order, with K resolved (e.g. "fewer than 3", "3–5", "6–9", "10 or more")."""
    labels = [f"fewer than {k_title}"]
    if k_title <= 5:
        labels.append(f"{k_title}–5")
    if k_title <= 9:
        labels.append(f"{max(k_title, 6)}–9")
    labels.append(f"{max(k_title, 10)} or more" if k_title > 10 else "10 or more")
    return labels


def band(count: int | None, k_title: int) -> str:
    """The band of a released count of holders; None (no released row) is "fewer than K"."""
    if count is None or count < k_title:
        return f"fewer than {k_title}"
    if count <= 5:
        return f"{k_title}–5"
    if count <= 9:
        return f"{max(k_title, 6)}–9"
    return f"{max(k_title, 10)} or more" if k_title > 10 else "10 or more"


def band_expr(count: pl.Expr, k_title: int) -> pl.Expr:
    """`band` as a Polars expression (a Python function called from Polars' thread pool, as
    map_elements does, deadlocked when several sessions ran it at once)."""
    labels = band_labels(k_title)
    expr = pl.when(count.is_null() | (count < k_title)).then(pl.lit(labels[0]))
    rest = labels[1:]
    if k_title <= 5:
        expr = expr.when(count <= 5).then(pl.lit(rest.pop(0)))
    if k_title <= 9:
        expr = expr.when(count <= 9).then(pl.lit(rest.pop(0)))
    return expr.otherwise(pl.lit(rest.pop(0)))


def holders_in_region(release: Release, region: str, work_keys: Iterable[str]) -> pl.DataFrame:
    """Per work key asked for: institutions_holding in the region at the release's as-of month
    (null when the release has no row: fewer than K_TITLE, or none) and its band.

    One row per distinct work key, in the order given (first occurrence)."""
    k_title = int(release.manifest["privacy"]["K_TITLE"])
    keys = pl.DataFrame({"work_key": list(dict.fromkeys(work_keys))}, schema={"work_key": pl.String})
    cur = release.cursor()
    cur.register("wanted_keys", keys)
    counts = cur.sql(
        "SELECT h.work_key, max(h.institutions_holding) AS institutions_holding "
        "FROM holdings h JOIN wanted_keys w ON h.work_key = w.work_key "
        "WHERE h.region = $region AND h.month = $month GROUP BY h.work_key",
        params={"region": region, "month": release.manifest["as_of"][:7]}).pl()
    out = keys.join(counts, on="work_key", how="left", maintain_order="left").with_columns(
        pl.col("institutions_holding").cast(pl.Int64))
    return out.with_columns(
        band_expr(pl.col("institutions_holding"), k_title).alias("band"))
