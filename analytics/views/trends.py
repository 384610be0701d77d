"""Collection development over the current release: trending titles, deselection and retention.

Trending score (documented in the app and README). For each work in a region, the
monthly *signal* is

    loans + 0.5 x COUNTER Total_Item_Requests + 5 x institutions acquiring it
          + 3 x reading lists citing it (a term counts in its first month)

over complete months. With W the chosen window (3, 6 or 12 months) ending with the last
complete month before the release's as-of date:

    recent   = signal in the last W months
    baseline = signal in the W months before them
    score    = ln((recent + 10) / (baseline + 10))

The +10 smooths small numbers, so 1 -> 3 loans (score 0.15) never outranks 400 -> 900
(0.80). A work needs a recent signal of at least 10 to be listed at all (minimum support),
so noise never tops the list. Each row also gives the long-run monthly rate (all months
of the release window) and its lift over it.

Every query takes its values as bound parameters; filters are validated first and a bad
one raises FilterError with a message a librarian can act on. Reading the community
data requires the institution to share collection development data (reciprocity).
"""

from __future__ import annotations

from analytics.core.errors import InvalidValue

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from analytics.core import access
from analytics.core.access import Principal
from analytics.ingest.local import table_path
from analytics.release.manifest import read_manifest, release_path
from analytics.release.sql import used_params
from analytics.core.schema import REGIONS
from analytics.control.store import Store

WEIGHTS = {"loans": 1.0, "e_requests": 0.5, "acquisitions": 5.0, "reading_lists": 3.0}
SMOOTHING = 10.0
MIN_SUPPORT = 10.0
WINDOWS = (3, 6, 12)
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


@dataclass
class Release:
    """An open release: its manifest and a DuckDB connection with one table per file."""

    release_id: str
    path: Path
    manifest: dict
    con: duckdb.DuckDBPyConnection = field(repr=False)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection refuses concurrent use: each call takes its own cursor."""
        return self.con.cursor()


def open_release(community_dir: Path, release_id: str | None = None) -> Release:
    path = release_path(community_dir, release_id)
    manifest = read_manifest(path)
    # Loaded once into an in-memory database that every cursor shares: a release is
    # immutable, and queries then never touch the files again.
    con = duckdb.connect()
    precomputed = ["monthly_signal", "trend_rows"]
    names = ["titles", "holdings", "peer_selection", "benchmarks"]
    ready = all((path / f"{name}.parquet").exists() for name in precomputed)
    # The raw monthly tables are only needed to compute the trend tables of an older release.
    for name in names + (precomputed if ready else ["loans", "e_usage", "reading_lists"]):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet($f)", {"f": str(path / f"{name}.parquet")})
    if not ready:
        build_trend_tables(con, manifest)
    con.execute(TITLE_ISBNS)
    return Release(manifest["release_id"], path, manifest, con)


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


def _month_add(month: str, delta: int) -> str:
    y, m = int(month[:4]), int(month[5:7]) + delta
    while m <= 0:
        y, m = y - 1, m + 12
    while m > 12:
        y, m = y + 1, m - 12
    return f"{y:04d}-{m:02d}"


def window_months(release: Release, window: int) -> dict[str, str]:
    """Recent and baseline windows ending with the last complete month before the as-of date."""
    return _windows(release.manifest, window)


def _windows(manifest: dict, window: int) -> dict[str, str]:
    as_of = date.fromisoformat(manifest["as_of"])
    end = _month_add(f"{as_of.year:04d}-{as_of.month:02d}", -1)
    start = manifest.get("window", {}).get("start", _month_add(end, -35))
    return {"recent_start": _month_add(end, -(window - 1)), "recent_end": end,
            "baseline_start": _month_add(end, -(2 * window - 1)), "baseline_end": _month_add(end, -window),
            "history_start": start}


# Built once when a release is opened (it is immutable): the monthly signal per work and
# region, then recent / baseline / long-run sums for each window, so that a page query is
# a filter and a sort.
MONTHLY_SIGNAL = """
CREATE TABLE monthly_signal AS
WITH activity AS (
    SELECT work_key, region, month, loans AS loans, 0 AS e_requests, 0 AS acquisitions, 0 AS reading_lists
    FROM loans
    UNION ALL
    SELECT work_key, region, month, 0, count, 0, 0 FROM e_usage WHERE metric_type = 'Total_Item_Requests'
    UNION ALL
    SELECT work_key, region, month, 0, 0, institutions_acquiring, 0 FROM holdings WHERE institutions_acquiring > 0
    UNION ALL
    SELECT work_key, region,
           CASE WHEN regexp_full_match(term, '[0-9]{4}-(SPRING|WINTER)') THEN substr(term, 1, 4) || '-01'
                WHEN regexp_full_match(term, '[0-9]{4}-SUMMER') THEN substr(term, 1, 4) || '-06'
                WHEN regexp_full_match(term, '[0-9]{4}-(FALL|AUTUMN)') THEN substr(term, 1, 4) || '-09'
                ELSE substr(term, 1, 7) END,
           0, 0, 0, lists
    FROM reading_lists
)
SELECT work_key, region, month,
       CAST(sum(loans) AS BIGINT) AS loans, CAST(sum(e_requests) AS BIGINT) AS e_requests,
       CAST(sum(acquisitions) AS BIGINT) AS acquisitions, CAST(sum(reading_lists) AS BIGINT) AS reading_lists,
       CAST(sum(loans) * $w_loans + sum(e_requests) * $w_e + sum(acquisitions) * $w_acq
            + sum(reading_lists) * $w_rl AS DOUBLE) AS signal
FROM activity
WHERE month >= $history_start AND month <= $last_month
GROUP BY work_key, region, month
"""

WINDOW_SUMS = """
INSERT INTO trend_windows
SELECT work_key, region, $window AS window_months,
       coalesce(sum(signal) FILTER (WHERE month >= $recent_start), 0) AS recent,
       coalesce(sum(signal) FILTER (WHERE month BETWEEN $baseline_start AND $baseline_end), 0) AS baseline,
       sum(signal) / $history_months AS long_run_monthly,
       coalesce(sum(loans) FILTER (WHERE month >= $recent_start), 0) AS loans_recent,
       coalesce(sum(e_requests) FILTER (WHERE month >= $recent_start), 0) AS e_requests_recent,
       coalesce(sum(acquisitions) FILTER (WHERE month >= $recent_start), 0) AS acquisitions_recent,
       coalesce(sum(reading_lists) FILTER (WHERE month >= $recent_start), 0) AS reading_lists_recent
FROM monthly_signal
GROUP BY work_key, region
HAVING coalesce(sum(signal) FILTER (WHERE month >= $recent_start), 0) >= $min_support
"""

# The ranked rows of every region and window, with titles and current holders joined in,
# built once per release; a page query then filters one table.
TREND_ROWS = """
CREATE TABLE trend_rows AS
SELECT s.region, s.window_months, t.work_key, t.title, t.author, t.isbns, t.lc_class, t.lc_subclass, t.subject,
       t.format, t.pub_year, t.language, t.publisher, h.institutions_holding,
       s.recent, s.baseline, s.long_run_monthly,
       ln((s.recent + $smoothing) / (s.baseline + $smoothing)) AS score,
       (s.recent / s.window_months) / nullif(s.long_run_monthly, 0) AS lift_over_long_run,
       s.loans_recent, s.e_requests_recent, s.acquisitions_recent, s.reading_lists_recent
FROM trend_windows s JOIN titles t ON s.work_key = t.work_key
LEFT JOIN holdings h ON h.work_key = s.work_key AND h.region = s.region AND h.month = $as_of_month
ORDER BY s.region, s.window_months, score DESC, s.recent DESC, t.work_key
"""

TITLE_ISBNS = """
CREATE TABLE title_isbns AS SELECT work_key, unnest(isbns) AS isbn FROM titles
"""

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


def build_trend_tables(con, manifest: dict) -> None:
    """monthly_signal, trend_windows and trend_rows from the tables titles, holdings, loans,
    e_usage and reading_lists of `con`. Publish runs this once and stores the results in the
    release; opening an older release without them runs it then."""
    history_start = manifest.get("window", {}).get("start")
    as_of = date.fromisoformat(manifest["as_of"])
    last = _month_add(f"{as_of.year:04d}-{as_of.month:02d}", -1)
    history_start = history_start or _month_add(last, -35)
    base = {"w_loans": WEIGHTS["loans"], "w_e": WEIGHTS["e_requests"], "w_acq": WEIGHTS["acquisitions"],
            "w_rl": WEIGHTS["reading_lists"], "history_start": history_start, "last_month": last}
    con.execute(MONTHLY_SIGNAL, used_params(MONTHLY_SIGNAL, base))
    con.execute("CREATE TABLE trend_windows (work_key VARCHAR, region VARCHAR, window_months INTEGER, recent DOUBLE, "
                "baseline DOUBLE, long_run_monthly DOUBLE, loans_recent BIGINT, e_requests_recent BIGINT, "
                "acquisitions_recent BIGINT, reading_lists_recent BIGINT)")
    for window in WINDOWS:
        months = _windows(manifest, window)
        params = {**months, "window": window, "min_support": MIN_SUPPORT,
                  "history_months": _months_between(months["history_start"], months["recent_end"])}
        con.execute(WINDOW_SUMS, used_params(WINDOW_SUMS, params))
    con.execute(TREND_ROWS, {"smoothing": SMOOTHING, "as_of_month": manifest["as_of"][:7]})


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
    months = window_months(release, filters.window)
    params = {
        "region": filters.region, **months, "window": filters.window, "smoothing": SMOOTHING,
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
    axis = [_month_add(months["baseline_start"], i) for i in range(2 * filters.window)]
    grid = (pl.DataFrame({"work_key": ranked["work_key"]}).join(pl.DataFrame({"month": axis}), how="cross")
            .join(monthly, on=["work_key", "month"], how="left").with_columns(pl.col("signal").fill_null(0.0))
            .sort("work_key", "month").group_by("work_key", maintain_order=True)
            .agg(pl.col("signal").cast(pl.Float64).alias("sparkline")))
    return ranked.join(grid, on="work_key", how="left")


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1


def score(recent: float, baseline: float) -> float:
    """The trending score for given recent and baseline signals (for docs and tests)."""
    return math.log((recent + SMOOTHING) / (baseline + SMOOTHING))


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
    months = window_months(release, window)
    year_start = _month_add(months["recent_end"], -11)
    params = {"region": region, "as_of_month": release.manifest["as_of"][:7], "year_start": year_start, **months}
    community = release.cursor().sql(SUBJECT_COMMUNITY, params=used_params(SUBJECT_COMMUNITY, params)).pl()
    if own is None:
        own = _own_by_subject(data_dir, code, year_start, months["recent_end"])
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
