"""The institution's own retention commitments (shared print), as My data lists them.

Only the institution's own users see them: they are local data. Each commitment is shown with
the work it matched among the institution's items (title by work key or a shared ISBN; else the
commitment's own title), and whether it is current (retained until today or later, or
indefinitely: shared with the community when collection-development sharing is on) or ended
(kept here, never shared).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from analytics.core import access
from analytics.core.access import Principal
from analytics.ingest.local import table_path

COLUMNS = ("program", "committed_on", "retain_until", "status", "title", "identifier", "work_key", "source")


def own_commitments(actor: Principal, data_dir: Path, code: str, today: date | None = None) -> pl.DataFrame | None:
    """The commitments, newest end first (indefinite first), or None when none were imported."""
    access.require_member(actor, code, "the local retention commitments")
    path = table_path(data_dir, code, "retention-commitments")
    if not path.exists():
        return None
    today = today or date.today()
    commitments = pl.read_parquet(path)
    items_path = table_path(data_dir, code, "items")
    titles = pl.DataFrame(schema={"work_key": pl.String, "item_title": pl.String})
    by_isbn = pl.DataFrame(schema={"isbn": pl.String, "isbn_title": pl.String})
    if items_path.exists():
        items = pl.read_parquet(items_path, columns=["work_key", "isbn", "title"])
        titles = (items.filter(pl.col("work_key").is_not_null()).group_by("work_key")
                  .agg(pl.col("title").drop_nulls().first().alias("item_title")))
        by_isbn = (items.select(pl.col("isbn").str.split(";"), "title").explode("isbn").drop_nulls("isbn")
                   .group_by("isbn").agg(pl.col("title").drop_nulls().first().alias("isbn_title")))
    first_isbn = pl.col("isbn").str.split(";").list.first()
    listed = (commitments.with_columns(first_isbn.alias("_isbn"))
              .join(titles, on="work_key", how="left")
              .join(by_isbn.rename({"isbn": "_isbn"}), on="_isbn", how="left")
              .with_columns(
                  pl.coalesce("item_title", "isbn_title", "title").alias("title"),
                  pl.coalesce(pl.lit("ISBN ") + first_isbn, pl.lit("ISSN ") + pl.col("issn"),
                              pl.lit("OCLC ") + pl.col("oclc_number")).alias("identifier"),
                  pl.when(pl.col("retain_until").is_null() | (pl.col("retain_until") >= today))
                  .then(pl.lit("current")).otherwise(pl.lit("ended")).alias("status"))
              .sort([pl.col("retain_until").is_not_null(), "retain_until", "program", "work_key"],
                    descending=[False, True, False, False], nulls_last=True))
    return listed.select(COLUMNS)
