"""Reading an institution's own local store (docs/data-contract.md §3), with the access check.

Only users of the institution may read its local data; every reader goes through
``require_member`` here, whatever page or command calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from analytics.core import access, months
from analytics.core.access import Principal
from analytics.core.schema import TABLE_FILES


def institution_dir(data_dir: Path, code: str) -> Path:
    return Path(data_dir) / "institutions" / code


def table_path(data_dir: Path, code: str, kind: str) -> Path:
    return institution_dir(data_dir, code) / TABLE_FILES[kind]


def data_version(data_dir: Path, code: str) -> str:
    """A cache key that changes whenever an import replaces one of the tables."""
    parts = []
    for kind in TABLE_FILES:
        path = table_path(data_dir, code, kind)
        parts.append(f"{kind}:{path.stat().st_mtime_ns if path.exists() else 0}")
    return "|".join(parts)


@dataclass(frozen=True)
class Summary:
    titles: int
    items: int
    loans_12m: int
    e_usage_12m: int
    reading_lists: int
    latest_month: str | None
    tables: tuple[str, ...]


def summary(actor: Principal, data_dir: Path, code: str) -> Summary:
    """The institution at a glance. The 12-month windows end with the latest month in its data."""
    access.require_member(actor, code, "the local data")
    present = tuple(k for k in TABLE_FILES if table_path(data_dir, code, k).exists())
    titles = items = loans = usage = lists = 0
    latest: date | None = None
    if "items" in present:
        held = pl.scan_parquet(table_path(data_dir, code, "items")).filter(pl.col("withdrawn_date").is_null())
        counts = held.select(
            pl.len().alias("items"),
            pl.coalesce("work_key", "title").n_unique().alias("titles"),
        ).collect()
        items, titles = counts["items"][0], counts["titles"][0]
    if "loans" in present:
        scan = pl.scan_parquet(table_path(data_dir, code, "loans"))
        latest = scan.select(pl.col("loan_date").max()).collect().item()
        if latest is not None:
            start = months.shift(latest, -11)
            loans = scan.filter(pl.col("loan_date") >= start).select(pl.col("count").sum()).collect().item() or 0
    if "e-usage" in present:
        scan = pl.scan_parquet(table_path(data_dir, code, "e-usage"))
        usage_latest = scan.select(pl.col("month").max()).collect().item()
        if usage_latest is not None:
            start = months.shift(usage_latest, -11)
            usage = (scan.filter((pl.col("month") >= start) & (pl.col("metric_type") == "Total_Item_Requests"))
                     .select(pl.col("count").sum()).collect().item() or 0)
            latest = max(latest, usage_latest) if latest else usage_latest
    if "reading-lists" in present:
        lists = pl.scan_parquet(table_path(data_dir, code, "reading-lists")).select(
            pl.col("list_id").n_unique()).collect().item()
    return Summary(int(titles), int(items), int(loans), int(usage), int(lists),
                   latest.strftime("%Y-%m") if latest else None, present)


@dataclass(frozen=True)
class DataQuality:
    """What keeps an institution's records from being matched or classified. Counts are of held
    items (not withdrawn), as on Home and in the data-quality recommendation."""

    items: int
    withdrawn: int
    match_counts: dict[str, int]
    unparsed_call_numbers: int
    problems: "pl.DataFrame"  # item_id, title, call_number, isbn, problem


def data_quality(actor: Principal, data_dir: Path, code: str, limit: int = 5000) -> DataQuality | None:
    """The remediation list of held items: records without identifiers (matched only by title and
    author, or not at all) and call numbers that are not LC call numbers (no subject). Withdrawn
    items are counted apart: they no longer reach the community."""
    from analytics.ingest import subjects

    access.require_member(actor, code, "the data-quality list")
    path = table_path(data_dir, code, "items")
    if not path.exists():
        return None
    every = pl.read_parquet(path, columns=["item_id", "title", "author", "isbn", "call_number", "match_method",
                                           "withdrawn_date"])
    items = every.filter(pl.col("withdrawn_date").is_null()).drop("withdrawn_date")
    classified = subjects.classify_frame(items.select("call_number"), "call_number")
    items = items.with_columns(classified["lc_class"].alias("lc_class"))
    no_id = pl.col("match_method").is_in(["fingerprint", "unmatched"])
    bad_call = pl.col("call_number").is_not_null() & pl.col("lc_class").is_null()
    problems = (
        items.filter(no_id | bad_call)
        .with_columns(
            pl.concat_str(
                pl.when(pl.col("match_method") == "unmatched").then(pl.lit("Cannot be matched; "))
                .when(no_id).then(pl.lit("No identifier: matched by title and author; ")),
                pl.when(bad_call).then(pl.lit("Not an LC call number: no subject")),
                ignore_nulls=True,
            ).str.strip_chars("; ").alias("problem")
        )
        .select("item_id", "problem", "title", "author", "call_number")
        .sort("problem", "title")
    )
    counts = dict(items.group_by("match_method").len().iter_rows())
    return DataQuality(items.height, every.height - items.height, counts, int(items.select(bad_call.sum()).item()), problems.head(limit))
