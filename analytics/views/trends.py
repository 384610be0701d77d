"""Collection development over the current release: trending titles, the subject overview and
the selection report, with the reciprocity check.

The trending score and the trend tables are built at publish (`release.trending`, where the
formula is written); this module filters and sorts them for a page. Every query takes its
values as bound parameters; filters are validated first and a bad one raises FilterError
with a message a librarian can act on. Reading the community data requires the institution
to share collection development data (reciprocity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analytics.control.store import Store
from analytics.core import access, months
from analytics.core.access import Principal
from analytics.core.errors import InvalidValue
from analytics.core.months import WINDOWS
from analytics.core.schema import REGIONS
from analytics.ingest.local import table_path
from analytics.release.handle import Release, open_release
from analytics.release.sql import used_params
from analytics.release.trending import SMOOTHING

__all__ = ["WINDOWS", "Release", "open_release", "Filters", "FilterError", "SelectionFilters", "trending",
           "own_identifiers", "subject_overview", "selection", "peer_groups", "require_collection_sharing",
           "window_months"]

FORMATS = ("print", "electronic", "both")
MAX_LIMIT = 1000

class FilterError(InvalidValue):
    """A filter value is out of range; the message says what is allowed."""


@dataclass(frozen=True)
class Filters:
    region: str | None = None
    window: int = 6
    lc_class: str | None = None
    lc_subclass: str | None = None
    formats: tuple[str, ...] = ()
    pub_year_min: int | None = None
    pub_year_max: int | None = None
    language: str | None = None
    publisher: str | None = None
    not_held: bool = False
    limit: int = 100

    def validated(self) -> "Filters":
        if self.region is not None and self.region not in REGIONS:
            raise FilterError(f"region {self.region!r} is not a data center ({', '.join(REGIONS)}).")
        if self.window not in WINDOWS:
            raise FilterError(f"window {self.window!r}: choose 3, 6 or 12 months.")
        if self.lc_class is not None and not (len(self.lc_class) == 1 and self.lc_class.isalpha()):
            raise FilterError(f"LC class {self.lc_class!r}: give one letter, e.g. Q.")
        if self.lc_subclass is not None and not (1 <= len(self.lc_subclass) <= 3 and self.lc_subclass.isalpha()):
            raise FilterError(f"LC subclass {self.lc_subclass!r}: give one to three letters, e.g. QA.")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad:
            raise FilterError(f"format {', '.join(bad)}: choose from {', '.join(FORMATS)}.")
        for name in ("pub_year_min", "pub_year_max"):
            value = getattr(self, name)
            if value is not None and not 1000 <= value <= 2100:
                raise FilterError(f"publication year {value}: give a year between 1000 and 2100.")
        if self.pub_year_min and self.pub_year_max and self.pub_year_min > self.pub_year_max:
            raise FilterError(f"publication years {self.pub_year_min}-{self.pub_year_max}: the first is after the last.")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise FilterError(f"limit {self.limit}: choose 1 to {MAX_LIMIT}.")
        return Filters(
            region=self.region, window=self.window,
            lc_class=self.lc_class.upper() if self.lc_class else None,
            lc_subclass=self.lc_subclass.upper() if self.lc_subclass else None,
            formats=tuple(self.formats), pub_year_min=self.pub_year_min, pub_year_max=self.pub_year_max,
            language=self.language.strip().lower() or None if self.language else None,
            publisher=self.publisher.strip() or None if self.publisher else None,
            not_held=self.not_held, limit=self.limit,
        )


def require_collection_sharing(actor: Principal, store: Store, code: str) -> None:
    """Reciprocity: only institutions that share collection development data see the community's."""
    access.require_member(actor, code, "collection development reports")
    if actor.system:
        return
    state = store.sharing_state(actor, code)["collection_development"]
    if not state.in_effect:
        raise access.PermissionDenied(
            f"{code} does not share Selection and Collection Development data, so it cannot see the community's. "
            f"A General System Administrator can turn sharing on in the data sharing profile."
        )


def window_months(release: Release, window: int) -> dict[str, str]:
    """Recent and baseline windows ending with the last complete month before the as-of date."""
    return months.windows(release.manifest, window)


TRENDING = """
WITH held_by_us AS (
    SELECT key AS work_key FROM own_keys
    UNION
    SELECT t.work_key FROM title_isbns t JOIN own_isbns o ON t.isbn = o.isbn
)
SELECT work_key, title, author, isbns, lc_class, lc_subclass, subject, format, pub_year, language, publisher,
       institutions_holding, recent, baseline, long_run_monthly, score, lift_over_long_run,
       loans_recent, e_requests_recent, acquisitions_recent, reading_lists_recent
FROM trend_rows
WHERE region = $region AND window_months = $window
  AND ($lc_class IS NULL OR lc_class = $lc_class)
  AND ($lc_subclass IS NULL OR lc_subclass = $lc_subclass)
  AND ($any_format OR list_contains($formats, format))
  AND ($year_min IS NULL OR pub_year >= $year_min)
  AND ($year_max IS NULL OR pub_year <= $year_max)
  AND ($language IS NULL OR language = $language)
  AND ($publisher IS NULL OR publisher ILIKE '%' || $publisher || '%')
  AND NOT ($not_held AND work_key IN (SELECT work_key FROM held_by_us))
ORDER BY score DESC, recent DESC, work_key
LIMIT $limit
"""

SPARKLINES = """
SELECT work_key, month, signal FROM monthly_signal
WHERE region = $region AND month >= $baseline_start AND work_key IN (SELECT unnest($keys))
"""


def own_identifiers(actor: Principal, data_dir: Path, code: str) -> tuple[list[str], list[str]]:
    """The institution's work keys and ISBNs: 'held by us' matches either, so a work is held
    whether the institution has its print or its e-book edition. Its own users only."""
    access.require_member(actor, code, "the local items")
    path = table_path(data_dir, code, "items")
    if not path.exists():
        return [], []
    items = pl.read_parquet(path, columns=["work_key", "isbn", "withdrawn_date"]).filter(
        pl.col("withdrawn_date").is_null())
    keys = items["work_key"].drop_nulls().unique().sort().to_list()
    isbns = (items["isbn"].drop_nulls().str.split(";").explode().drop_nulls().unique().sort().to_list())
    return keys, isbns


def trending(release: Release, filters: Filters, own_keys: list[str] = (), own_isbns: list[str] = ()) -> pl.DataFrame:
    """Ranked rising works with the numbers behind each score and a monthly sparkline."""
    filters = filters.validated()
    if filters.region is None:
        raise FilterError("choose a region.")
    span = window_months(release, filters.window)
    params = {
        "region": filters.region, **span, "window": filters.window, "smoothing": SMOOTHING,
        "as_of_month": release.manifest["as_of"][:7],
        "lc_class": filters.lc_class, "lc_subclass": filters.lc_subclass,
        "any_format": not filters.formats, "formats": list(filters.formats) or [""],
        "year_min": filters.pub_year_min, "year_max": filters.pub_year_max, "language": filters.language,
        "publisher": filters.publisher, "not_held": filters.not_held, "limit": filters.limit,
    }
    cur = release.cursor()
    cur.register("own_keys", pl.DataFrame({"key": list(own_keys)}, schema={"key": pl.String}))
    cur.register("own_isbns", pl.DataFrame({"isbn": list(own_isbns)}, schema={"isbn": pl.String}))
    ranked = cur.sql(TRENDING, params=used_params(TRENDING, params)).pl()
    if ranked.height == 0:
        return ranked.with_columns(pl.lit(None, dtype=pl.List(pl.Float64)).alias("sparkline"))
    spark_params = {**params, "keys": ranked["work_key"].to_list()}
    monthly = cur.sql(SPARKLINES, params=used_params(SPARKLINES, spark_params)).pl()
    axis = [months.add(span["baseline_start"], i) for i in range(2 * filters.window)]
    grid = (pl.DataFrame({"work_key": ranked["work_key"]}).join(pl.DataFrame({"month": axis}), how="cross")
            .join(monthly, on=["work_key", "month"], how="left").with_columns(pl.col("signal").fill_null(0.0))
            .sort("work_key", "month").group_by("work_key", maintain_order=True)
            .agg(pl.col("signal").cast(pl.Float64).alias("sparkline")))
    return ranked.join(grid, on="work_key", how="left")


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


@dataclass(frozen=True)
class SelectionFilters:
    region: str
    peer_group: str = "all"
    min_acquired_percent: float = 20.0
    min_lists: int = 3
    limit: int = 200

    def validated(self, k_title: int) -> "SelectionFilters":
        if self.region not in REGIONS:
            raise FilterError(f"region {self.region!r} is not a data center ({', '.join(REGIONS)}).")
        if not 0 < self.min_acquired_percent <= 100:
            raise FilterError(f"acquired by at least {self.min_acquired_percent}% of the peer group: choose 1 to 100.")
        if not 1 <= self.min_lists <= 10_000:
            raise FilterError(f"on at least {self.min_lists} peer reading lists: choose 1 to 10,000.")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise FilterError(f"limit {self.limit}: choose 1 to {MAX_LIMIT}.")
        return SelectionFilters(self.region, self.peer_group, self.min_acquired_percent,
                                max(self.min_lists, k_title), self.limit)


SELECTION = """
WITH held_by_us AS (
    SELECT key AS work_key FROM own_keys
    UNION
    SELECT t.work_key FROM title_isbns t JOIN own_isbns o ON t.isbn = o.isbn
)
SELECT t.work_key, t.title, t.author, t.isbns, t.subject, t.lc_class, t.lc_subclass, t.format, t.pub_year,
       t.publisher, p.peer_group, p.group_size, p.institutions_holding, p.institutions_acquired_12m,
       p.institutions_listing,
       CAST(p.institutions_acquired_12m AS DOUBLE) / p.group_size AS acquired_share
FROM peer_selection p JOIN titles t ON p.work_key = t.work_key
WHERE p.region = $region AND p.peer_group = $peer_group
  AND (coalesce(p.institutions_acquired_12m, 0) >= $min_share * p.group_size
       OR coalesce(p.institutions_listing, 0) >= $min_lists)
  AND t.work_key NOT IN (SELECT work_key FROM held_by_us)
ORDER BY acquired_share DESC NULLS LAST, p.institutions_listing DESC NULLS LAST, p.institutions_holding DESC NULLS LAST,
         t.work_key
LIMIT $limit
"""


def peer_groups(release: Release, region: str) -> pl.DataFrame:
    """The peer groups released for a region, with their sizes (counts only)."""
    return release.cursor().sql(
        "SELECT DISTINCT peer_group, group_size FROM peer_selection WHERE region = $region ORDER BY peer_group",
        params={"region": region}).pl()


def selection(release: Release, filters: SelectionFilters, own_keys: list[str], own_isbns: list[str]) -> pl.DataFrame:
    """Works a peer group acquired in the last 12 months (at least X% of its members) or lists
    on reading lists (at least N members), that the institution does not hold."""
    filters = filters.validated(release.manifest["privacy"]["K_TITLE"])
    known = peer_groups(release, filters.region)["peer_group"].to_list()
    if filters.peer_group not in known:
        raise FilterError(f"peer group {filters.peer_group!r} is not released for {filters.region}; "
                          f"choose from {', '.join(known) or 'none (no release data for this region)'}.")
    cur = release.cursor()
    cur.register("own_keys", pl.DataFrame({"key": list(own_keys)}, schema={"key": pl.String}))
    cur.register("own_isbns", pl.DataFrame({"isbn": list(own_isbns)}, schema={"isbn": pl.String}))
    params = {"region": filters.region, "peer_group": filters.peer_group,
              "min_share": filters.min_acquired_percent / 100, "min_lists": filters.min_lists, "limit": filters.limit}
    return cur.sql(SELECTION, params=params).pl()
