"""Collection comparison: the institution's holdings against a released peer group of its
region, at work level, by LC class and subclass.

Work level: the institution's held (not withdrawn) items are grouped by work key, and each
local work is mapped onto the community work key of the release (by work key or by any shared
ISBN, through the released titles), so the print and e-book ISBNs of one work count once even
when the institution's own records do not link them, as long as the community's do.

What the release allows. Per-work counts of holders in a peer group come from the release's
peer_selection table (institutions_holding per work, region and peer group: the same disclosure
as every count of institutions, released only at K_TITLE or more, before and after the count
perturbation). So:
- overlap: your works the group is shown to hold, that is at least K_TITLE members of the group
  (you included when you are a member of the group and share);
- not shown as held by the group: the rest. The release cannot tell "none" from "fewer than
  K_TITLE", so "unique to you" and "held by at least one peer" cannot be shown exactly;
- gaps: works at least X% of the group holds (and so at least K_TITLE members) that you do not.
Holders in the whole region are banded by views/holders.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.errors import InvalidValue
from analytics.ingest.local import table_path
from analytics.release.handle import Release
from analytics.views.collection import MAX_LIMIT, FilterError
from analytics.views.holders import band_labels, holders_in_region
from analytics.views.selection import peer_groups

__all__ = ["Comparison", "ComparisonFilters", "compare", "own_works", "peer_group_name"]

UNCLASSIFIED = "(no LC class)"

_OWN_SCHEMA = {"work_key": pl.String, "title": pl.String, "author": pl.String, "isbns": pl.List(pl.String),
               "lc_class": pl.String, "lc_subclass": pl.String}


@dataclass(frozen=True)
class ComparisonFilters:
    region: str
    peer_group: str = "all"
    gap_percent: float = 50.0  # a gap: held by at least this share of the group
    limit: int = MAX_LIMIT     # the most gaps listed

    def validated(self) -> "ComparisonFilters":
        if not 1 <= self.gap_percent <= 100:
            raise FilterError(f"gaps held by at least {self.gap_percent}% of the group: choose 1 to 100.")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise FilterError(f"limit {self.limit}: choose 1 to {MAX_LIMIT}.")
        return self


@dataclass(frozen=True)
class Comparison:
    peer_group: str
    group_size: int
    k_title: int
    works: pl.DataFrame    # your works: work_key, title, author, isbns, lc_class, lc_subclass,
    #                        group_holding (null: fewer than K_TITLE, or none), overlap, region_holding, band
    summary: pl.DataFrame  # per lc_class, lc_subclass: your_works, overlap, overlap_share, not_shown, gaps
    totals: dict           # your_works, overlap, overlap_share, not_shown, gaps
    gaps: pl.DataFrame     # work_key, title, author, isbns, lc_class, lc_subclass, group_holding, group_share
    bands: pl.DataFrame    # band, works (your works by holders in the region, every band listed)


def peer_group_name(text: str | None) -> str:
    """`--peers type=research` -> 'type=research'; `size=5,000-14,999` -> 'size=5,000-14,999';
    none or 'all' -> 'all'. Whether the group is released is checked against the release."""
    from analytics.views.benchmark import parse_peers

    name = parse_peers(text)
    if "&" in name or name.startswith("country="):
        raise InvalidValue(f"--peers {text!r}: comparison uses the peer groups released per work: all, "
                           f"type=TYPE or size=BAND.")
    return name


def own_works(actor: Principal, release: Release, data_dir: Path, code: str) -> pl.DataFrame:
    """The institution's held, not withdrawn works under the release's community work keys: one
    row per work (work_key, title, author, isbns, lc_class, lc_subclass). Its own users only."""
    from analytics.ingest import subjects

    access.require_member(actor, code, "the local items")
    path = table_path(data_dir, code, "items")
    if not path.exists():
        return pl.DataFrame(schema=_OWN_SCHEMA)
    items = pl.read_parquet(path, columns=["work_key", "isbn", "title", "author", "call_number", "withdrawn_date"])
    items = items.filter(pl.col("withdrawn_date").is_null() & pl.col("work_key").is_not_null())
    if items.height == 0:
        return pl.DataFrame(schema=_OWN_SCHEMA)
    items = subjects.classify_frame(items, "call_number")
    local = items.group_by("work_key").agg(
        pl.col("isbn").drop_nulls().str.split(";").list.explode(keep_nulls=False, empty_as_null=False)
        .unique().sort().alias("isbns"),
        pl.col("title").drop_nulls().first(), pl.col("author").drop_nulls().first(),
        pl.col("lc_class").drop_nulls().mode().sort().first(), pl.col("lc_subclass").drop_nulls().mode().sort().first())
    # local key -> community key: the key itself when released, else the smallest released work sharing an ISBN.
    cur = release.cursor()
    cur.register("own_local", local.select("work_key", "isbns"))
    mapping = cur.sql("""
        WITH pairs AS (
            SELECT o.work_key AS local_key, t.work_key FROM own_local o JOIN titles t ON o.work_key = t.work_key
            UNION
            SELECT o.local_key, t.work_key
            FROM (SELECT work_key AS local_key, unnest(isbns) AS isbn FROM own_local) o
            JOIN title_isbns t ON o.isbn = t.isbn
        )
        SELECT local_key, min(work_key) AS community_key FROM pairs GROUP BY local_key
    """).pl()
    released = cur.sql("SELECT work_key, lc_class AS r_class, lc_subclass AS r_subclass, isbns AS r_isbns "
                       "FROM titles WHERE work_key IN (SELECT community_key FROM mapping)").pl() \
        if mapping.height else pl.DataFrame(schema={"work_key": pl.String, "r_class": pl.String,
                                                    "r_subclass": pl.String, "r_isbns": pl.List(pl.String)})
    mapped = (local.join(mapping.rename({"local_key": "work_key"}), on="work_key", how="left")
              .with_columns(pl.coalesce("community_key", "work_key").alias("work_key")).drop("community_key"))
    # Ties sorted by title too, so that the title kept for records merged into one work is always the same.
    works = (mapped.sort("work_key", "title", nulls_last=True, maintain_order=True)
             .group_by("work_key", maintain_order=True).agg(
        pl.col("title").drop_nulls().first(), pl.col("author").drop_nulls().first(),
        pl.col("isbns").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
        pl.col("lc_class").drop_nulls().first(), pl.col("lc_subclass").drop_nulls().first()))
    return (works.join(released, on="work_key", how="left")
            .with_columns(pl.coalesce("lc_class", "r_class").alias("lc_class"),
                          pl.when(pl.col("lc_class").is_null()).then(pl.col("r_subclass"))
                          .otherwise(pl.col("lc_subclass")).alias("lc_subclass"))
            .select(list(_OWN_SCHEMA)).cast(_OWN_SCHEMA))


GAPS = """
WITH ours AS (
    SELECT work_key FROM own_keys
    UNION
    SELECT t.work_key FROM title_isbns t JOIN own_isbns o ON t.isbn = o.isbn
)
SELECT t.work_key, t.title, t.author, t.isbns, t.lc_class, t.lc_subclass, t.pub_year, t.format,
       p.institutions_holding AS group_holding,
       CAST(p.institutions_holding AS DOUBLE) / p.group_size AS group_share
FROM peer_selection p JOIN titles t ON p.work_key = t.work_key
WHERE p.region = $region AND p.peer_group = $peer_group AND p.institutions_holding IS NOT NULL
  AND p.institutions_holding >= $share * p.group_size
  AND t.work_key NOT IN (SELECT work_key FROM ours)
ORDER BY group_share DESC, t.lc_class NULLS LAST, t.lc_subclass NULLS LAST, t.work_key
"""


def compare(actor: Principal, release: Release, data_dir: Path, code: str, filters: ComparisonFilters,
            works: pl.DataFrame | None = None) -> Comparison:
    """The institution's works against a released peer group of the region (see the module).
    `works` (own_works) saves reading the local store again when the caller has it."""
    access.require_member(actor, code, "the collection comparison")
    filters = filters.validated()
    k_title = int(release.manifest["privacy"]["K_TITLE"])
    groups = peer_groups(release, filters.region)
    sizes = dict(groups.iter_rows())
    if filters.peer_group not in sizes:
        raise FilterError(f"peer group {filters.peer_group!r} is not released for {filters.region}; "
                          f"choose from {', '.join(sizes) or 'none (no release data for this region)'}.")
    group_size = int(sizes[filters.peer_group])
    if works is None:
        works = own_works(actor, release, data_dir, code)
    cur = release.cursor()
    cur.register("own_keys", works.select("work_key"))
    cur.register("own_isbns", works.select(pl.col("isbns").explode().drop_nulls().unique().alias("isbn")))
    params = {"region": filters.region, "peer_group": filters.peer_group}
    held = cur.sql("SELECT p.work_key, p.institutions_holding AS group_holding FROM peer_selection p "
                   "JOIN own_keys o ON p.work_key = o.work_key "
                   "WHERE p.region = $region AND p.peer_group = $peer_group", params=params).pl()
    region = holders_in_region(release, filters.region, works["work_key"].to_list()).select(
        "work_key", pl.col("institutions_holding").alias("region_holding"), "band")
    works = (works.join(held, on="work_key", how="left")
             .with_columns(pl.col("group_holding").cast(pl.Int64),
                           (pl.col("group_holding").fill_null(0) >= k_title).alias("overlap"))
             .join(region, on="work_key", how="left")
             .sort("lc_class", "lc_subclass", "title", "work_key", nulls_last=True))
    gaps = cur.sql(GAPS, params={**params, "share": filters.gap_percent / 100}).pl()
    summary = _summary(works, gaps)
    totals = _totals(works, gaps)
    labels = band_labels(k_title)
    bands = (pl.DataFrame({"band": labels}).join(works.group_by("band").agg(pl.len().alias("works")), on="band",
                                                 how="left", maintain_order="left")
             .with_columns(pl.col("works").fill_null(0).cast(pl.Int64)))
    return Comparison(filters.peer_group, group_size, k_title, works, summary, totals,
                      gaps.head(filters.limit), bands)


def _classed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("lc_class").fill_null(UNCLASSIFIED),
                              pl.col("lc_subclass").fill_null(pl.col("lc_class").fill_null(UNCLASSIFIED)))


def _summary(works: pl.DataFrame, gaps: pl.DataFrame) -> pl.DataFrame:
    ours = (_classed(works).group_by("lc_class", "lc_subclass")
            .agg(pl.len().cast(pl.Int64).alias("your_works"), pl.col("overlap").sum().cast(pl.Int64).alias("overlap")))
    missing = _classed(gaps).group_by("lc_class", "lc_subclass").agg(pl.len().cast(pl.Int64).alias("gaps"))
    return (ours.join(missing, on=["lc_class", "lc_subclass"], how="full", coalesce=True)
            .with_columns(pl.col("your_works", "overlap", "gaps").fill_null(0))
            .with_columns((pl.col("your_works") - pl.col("overlap")).alias("not_shown"),
                          pl.when(pl.col("your_works") > 0).then(pl.col("overlap") / pl.col("your_works"))
                          .alias("overlap_share"))
            .select("lc_class", "lc_subclass", "your_works", "overlap", "overlap_share", "not_shown", "gaps")
            .sort("lc_class", "lc_subclass"))


def _totals(works: pl.DataFrame, gaps: pl.DataFrame) -> dict:
    n, overlap = works.height, int(works["overlap"].sum())
    return {"your_works": n, "overlap": overlap, "overlap_share": overlap / n if n else None,
            "not_shown": n - overlap, "gaps": gaps.height}
