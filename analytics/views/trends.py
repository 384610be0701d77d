"""Trending titles over the current release: filters, the ranked list and its sparklines.

The trending score and the trend tables are built at publish (`release.trending`, where the
formula is written); this module filters and sorts them for a page. Every query takes its
values as bound parameters; filters are validated first and a bad one raises FilterError
with a message a librarian can act on. The subject overview and the selection report are in
`views.subject_overview` and `views.selection`; the reciprocity gate and "held by us" in
`views.collection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analytics.core import months
from analytics.core.months import WINDOWS
from analytics.core.schema import REGIONS
from analytics.release.handle import Release
from analytics.release.sql import used_params
from analytics.release.trending import SMOOTHING
from analytics.views.collection import MAX_LIMIT, FilterError, window_months

__all__ = ["WINDOWS", "Filters", "trending"]

FORMATS = ("print", "electronic", "both")


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
  AND score > 0  -- rising means rising: recent above baseline (after smoothing)
  AND NOT ($not_held AND work_key IN (SELECT work_key FROM held_by_us))
ORDER BY score DESC, recent DESC, work_key
LIMIT $limit
"""

SPARKLINES = """
SELECT work_key, month, signal FROM monthly_signal
WHERE region = $region AND month >= $baseline_start AND work_key IN (SELECT unnest($keys))
"""


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
