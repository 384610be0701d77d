"""The subject overview: community holdings and use by LC class and subclass in a region, next
to the institution's own."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analytics.core import access, months
from analytics.core.access import Principal
from analytics.core.schema import REGIONS
from analytics.ingest.local import table_path
from analytics.release.handle import Release
from analytics.release.sql import used_params
from analytics.release.trending import SMOOTHING
from analytics.views.collection import FilterError, window_months


SUBJECT_COMMUNITY = """
WITH held AS (
    SELECT t.lc_class, t.lc_subclass, sum(h.institutions_holding) AS holdings
    FROM holdings h JOIN titles t ON h.work_key = t.work_key
    WHERE h.region = $region AND h.month = $as_of_month AND t.lc_class IS NOT NULL
    GROUP BY t.lc_class, t.lc_subclass
), used AS (
    SELECT t.lc_class, t.lc_subclass,
           sum(m.loans) FILTER (WHERE m.month >= $year_start) AS loans,
           sum(m.signal) FILTER (WHERE m.month >= $recent_start) AS recent,
           sum(m.signal) FILTER (WHERE m.month BETWEEN $baseline_start AND $baseline_end) AS baseline
    FROM monthly_signal m JOIN titles t ON m.work_key = t.work_key
    WHERE m.region = $region AND t.lc_class IS NOT NULL
    GROUP BY t.lc_class, t.lc_subclass
)
SELECT coalesce(h.lc_class, u.lc_class) AS lc_class, coalesce(h.lc_subclass, u.lc_subclass) AS lc_subclass,
       CAST(coalesce(h.holdings, 0) AS BIGINT) AS community_holdings,
       CAST(coalesce(u.loans, 0) AS BIGINT) AS community_loans,
       CAST(coalesce(u.recent, 0) AS DOUBLE) AS recent, CAST(coalesce(u.baseline, 0) AS DOUBLE) AS baseline
FROM held h FULL JOIN used u ON h.lc_class = u.lc_class AND h.lc_subclass = u.lc_subclass
"""


def subject_overview(actor: Principal, release: Release, data_dir: Path, code: str, region: str, window: int = 6,
                     own: pl.DataFrame | None = None) -> pl.DataFrame:
    """Holdings and use by LC class and subclass: the community of the region next to the
    institution's own, with relative use (share of loans / share of holdings) and growth.

    `own` (lc_class, lc_subclass, own_holdings, own_loans over the last 12 complete months)
    saves reading the local store again when the caller has it. Its own users only."""
    from analytics.ingest import subjects

    access.require_member(actor, code, "the local holdings and loans")
    if region not in REGIONS:
        raise FilterError(f"region {region!r} is not a data center ({', '.join(REGIONS)}).")
    span = window_months(release, window)
    year_start = months.add(span["recent_end"], -11)
    params = {"region": region, "as_of_month": release.manifest["as_of"][:7], "year_start": year_start, **span}
    community = release.cursor().sql(SUBJECT_COMMUNITY, params=used_params(SUBJECT_COMMUNITY, params)).pl()
    if own is None:
        own = _own_by_subject(data_dir, code, year_start, span["recent_end"])
    joined = community.join(own, on=["lc_class", "lc_subclass"], how="full", coalesce=True).fill_null(0)
    captions = subjects.outline().select("lc_subclass", "lc_subclass_caption", "lc_class_caption").unique("lc_subclass")
    totals = joined.select(pl.col("community_holdings", "community_loans", "own_holdings", "own_loans").sum())
    share = lambda col: pl.col(col) / totals[col][0] if totals[col][0] else pl.lit(0.0)  # noqa: E731
    return (
        joined.join(captions, on="lc_subclass", how="left")
        .with_columns(
            share("community_holdings").alias("community_holdings_share"),
            share("community_loans").alias("community_loans_share"),
            share("own_holdings").alias("own_holdings_share"),
            share("own_loans").alias("own_loans_share"),
            ((pl.col("recent") + SMOOTHING) / (pl.col("baseline") + SMOOTHING)).log().alias("growth"),
        )
        .with_columns(
            pl.when(pl.col("community_holdings_share") > 0)
            .then(pl.col("community_loans_share") / pl.col("community_holdings_share")).alias("community_relative_use"),
            pl.when(pl.col("own_holdings_share") > 0)
            .then(pl.col("own_loans_share") / pl.col("own_holdings_share")).alias("own_relative_use"),
        )
        .sort("lc_class", "lc_subclass")
    )


def _own_by_subject(data_dir: Path, code: str, first_month: str, last_month: str) -> pl.DataFrame:
    from analytics.ingest import subjects

    items_path = table_path(data_dir, code, "items")
    empty = pl.DataFrame(schema={"lc_class": pl.String, "lc_subclass": pl.String, "own_holdings": pl.Int64,
                                 "own_loans": pl.Int64})
    if not items_path.exists():
        return empty
    items = pl.read_parquet(items_path, columns=["item_id", "call_number", "withdrawn_date"])
    items = subjects.classify_frame(items, "call_number").filter(pl.col("lc_class").is_not_null())
    held = (items.filter(pl.col("withdrawn_date").is_null()).group_by("lc_class", "lc_subclass")
            .agg(pl.len().cast(pl.Int64).alias("own_holdings")))
    loans_path = table_path(data_dir, code, "loans")
    if not loans_path.exists():
        return held.with_columns(pl.lit(0, dtype=pl.Int64).alias("own_loans"))
    loans = (
        pl.scan_parquet(loans_path)
        .filter(pl.col("loan_date").dt.strftime("%Y-%m").is_between(pl.lit(first_month), pl.lit(last_month)))
        .join(items.lazy().select("item_id", "lc_class", "lc_subclass"), on="item_id")
        .group_by("lc_class", "lc_subclass").agg(pl.col("count").sum().cast(pl.Int64).alias("own_loans"))
        .collect()
    )
    return held.join(loans, on=["lc_class", "lc_subclass"], how="full", coalesce=True).fill_null(0)
