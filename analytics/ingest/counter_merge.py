"""A parsed COUNTER report through the canonical e-usage typing, merged into the stored table.

The monthly cells go through the canonical e-usage typing, identifier and work-key path
of tabular.py (canonicalize, _identifiers): ISBN (ISBN / Print_ISBN / Online_ISBN,
several joined with ";") and ISSN (Print_ISSN / Online_ISSN; the canonical column keeps
the first valid one) are normalised exactly as in a plain e-usage import.

Merge rule (why a second upload never doubles counts)
-----------------------------------------------------
The canonical tabular e-usage import replaces the whole table. A COUNTER report covers
one platform (sometimes a few) and a period, and libraries load one report per platform
and year, so this import MERGES into ``e_usage.parquet``: a report replaces the stored
rows with the same

    (platform, month, metric_type, work identity)

for every title row it holds and every month it covers (its month columns; for JSON,
every month of the reporting period, since JSON leaves zero months out) - including
months where the title's count is zero, so a corrected report that lowers a count to
zero removes the old count. Everything else is kept: other platforms, other months,
other metrics, and other titles of the same platform and month. Work identity is the
work key (ISBN component, else ISSN, else OCLC, else title fingerprint) computed over
the stored rows and the report together, so print and online ISBNs of one book match.

Consequences: importing the same report twice gives the identical table; a TR_J1 and a
TR_B1 of the same platform and period keep each other's rows (journals and books are
different works) even though both carry Total_Item_Requests; a TR_J3 imported after a
TR_J1 of the same platform and period replaces the journal rows of the metrics both
carry (last import wins for a cell, never a sum). A title that vanishes entirely from a
corrected report keeps its old rows (COUNTER omits all-zero rows, so its absence cannot
be told from "not covered"); import the canonical e-usage kind to replace everything.

Atomic like every import: everything is validated and the merged table built in memory
first, then written with write_atomically; a failing import changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analytics.core.months import first_day
from analytics.ingest import identifiers
from analytics.ingest.counter_header import ParsedReport
from analytics.ingest.reader import InputError, RawTable
from analytics.ingest.tabular import ImportReport, _identifiers, _reject, canonicalize

CANONICAL_COLUMNS = ["title", "isbn", "issn", "platform", "month", "metric_type", "count"]
CELL_KEY = ["title", "isbn", "issn", "platform", "month", "metric_type"]
MERGE_KEY = ["platform", "month", "metric_type", "work_key"]
PROGRESS_EVERY = 10_000

Progress = Callable[[int, int], None]


@dataclass
class CounterReport(ImportReport):
    """The import report, plus what the COUNTER header said and what the merge did."""

    report_id: str | None = None
    release: str | None = None
    period: dict = field(default_factory=dict)
    platforms: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    zero_cells: int = 0
    stored_rows: int = 0
    replaced_rows: int = 0
    table_rows: int = 0

    def as_dict(self) -> dict:
        return super().as_dict() | {
            "report_id": self.report_id, "release": self.release, "period": self.period,
            "platforms": self.platforms, "months": self.months, "zero_cells": self.zero_cells,
            "stored_rows": self.stored_rows, "replaced_rows": self.replaced_rows, "table_rows": self.table_rows,
        }


@dataclass
class _Cells(RawTable):
    """Monthly cells (one chunk of them) on their way through canonicalize."""

    rows: RawTable | None = None
    source: pl.Series | None = None
    month_labels: pl.Series | None = None

    def where(self, data_row: int) -> str:
        return f"{self.rows.where(self.source[data_row - 1])}, month {self.month_labels[data_row - 1]}"


def monthly_rows(parsed: ParsedReport, report: CounterReport,
                  progress: Progress | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(this report's e-usage rows with usage, the cell scope it replaces), both canonical."""
    rows = parsed.rows
    report.read = rows.height
    rows = _reject(rows, parsed.located, pl.col("title").is_null(), "empty title", report)
    rows = _reject(rows, parsed.located, pl.col("metric_type").is_null(), "no Metric_Type", report)
    report.kept = rows.height
    assert report.read == report.kept + report.rejected, "an import must never lose a row silently"
    if rows.height == 0:
        raise InputError(f"{report.file}: no title row to import: all {report.read} row(s) were rejected"
                         + (f" (first: {report.rejected_rows[0]['reason']})" if report.rejected_rows else "")
                         + ". Nothing was imported.")
    # Identifiers are normalised once per title row by the canonical path (ISBN-13s joined
    # with ";", the first valid ISSN), which also reports invalid ISBNs and the match rates.
    # ISSN normalisation runs in Python per distinct value, so it is not repeated per month.
    rows = _identifiers(rows, report).drop("work_key", "match_method")
    report.platforms = sorted(rows["platform"].drop_nulls().unique().to_list())

    cells = parsed.cells.join(rows.select("_row"), on="_row", how="semi")
    used = cells.filter(pl.col("count") > 0)
    report.zero_cells = cells.height - used.height
    long = (
        used.sort("_row", "month").join(rows, on="_row", how="left", maintain_order="left")
        .select("_row", "title", "isbn", "issn", "platform", "month", "metric_type",
                pl.col("count").cast(pl.String))
    )
    typed = [_typed_chunk(long, start, parsed.located, report, progress) for start in
             range(0, long.height, PROGRESS_EVERY)]
    if progress and long.height == 0:
        progress(0, 0)
    schema = {"title": pl.String, "isbn": pl.String, "issn": pl.String, "platform": pl.String, "month": pl.Date,
              "metric_type": pl.String, "count": pl.Int64}
    monthly = pl.concat(typed) if typed else pl.DataFrame(schema=schema)
    new_rows = monthly.group_by(CELL_KEY).agg(pl.col("count").sum())
    report.stored_rows = new_rows.height

    covered = pl.DataFrame({"month": [first_day(month) for month in parsed.months]}, schema={"month": pl.Date})
    scope = rows.select("title", "isbn", "issn", "platform", "metric_type").unique().join(
        covered, how="cross").select(CELL_KEY)

    if report.zero_cells:
        report.warnings.append(f"{report.zero_cells} monthly count(s) of zero or blank were not stored (no usage); "
                               f"the report still replaces those months for its titles.")
    if used.height > new_rows.height:
        report.warnings.append(f"{used.height - new_rows.height} monthly count(s) on rows split by attributes the "
                               f"e-usage table does not keep (YOP, Access_Type, Access_Method, Data_Type, "
                               f"Section_Type) were summed per title, metric and month.")
    return new_rows, scope


def _typed_chunk(long: pl.DataFrame, start: int, rows: RawTable, report: CounterReport,
                 progress: Progress | None) -> pl.DataFrame:
    """One chunk of monthly cells through the canonical e-usage typing path (canonicalize).

    The ISSN, already normalised per title row, is set aside and put back afterwards so
    that canonicalize does not normalise it again for every month; canonicalize keeps the
    order of its rows and rejects none here (the cells were validated), which is checked.
    """
    chunk = long.slice(start, PROGRESS_EVERY)
    located = _Cells(chunk.drop("_row", "issn"), report.file, rows.file_format, rows=rows, source=chunk["_row"],
                     month_labels=chunk["month"])
    scratch = ImportReport(kind="e-usage", file=report.file)
    typed = canonicalize(located, "e-usage", {}, [], scratch)
    assert scratch.rejected == 0 and typed["title"].equals(chunk["title"]), "cells were validated before typing"
    if progress:
        progress(start + chunk.height, long.height)
    return typed.with_columns(chunk["issn"]).select(CANONICAL_COLUMNS)


def _with_work_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Work keys (identifiers.assign_work_keys) of rows whose isbn and issn are already in
    the canonical form of an import (ISBN-13s joined by ";", one normalised ISSN)."""
    ids = frame.with_columns(
        pl.col("isbn").str.split(";").fill_null(pl.lit([], dtype=pl.List(pl.String))).alias("isbn13_list"),
        pl.lit(0, dtype=pl.UInt32).alias("invalid_isbn_count"),
        pl.col("issn").alias("issn_norm"),
        pl.lit(None, dtype=pl.String).alias("oclc_norm"),
    )
    return identifiers.assign_work_keys(ids).drop(identifiers.IDENTIFIER_COLUMNS)


def stored_table(target: Path, name: str) -> pl.DataFrame | None:
    if not target.exists():
        return None
    try:
        stored = pl.read_parquet(target)
    except (pl.exceptions.PolarsError, OSError) as exc:  # a damaged store is reported, not overwritten
        raise InputError(f"{name}: the stored e-usage table {target.name} cannot be read ({type(exc).__name__}); "
                         f"nothing was imported. Re-import the canonical e-usage table first.") from None
    missing = [c for c in CANONICAL_COLUMNS if c not in stored.columns]
    if missing:
        raise InputError(f"{name}: the stored e-usage table lacks {', '.join(missing)}; nothing was imported.")
    return stored.select(CANONICAL_COLUMNS).with_columns(pl.col("month").cast(pl.Date),
                                                         pl.col("count").cast(pl.Int64))


def merge(stored: pl.DataFrame | None, new_rows: pl.DataFrame, scope: pl.DataFrame,
           report: CounterReport) -> pl.DataFrame:
    """Stored rows outside the report's scope, plus the report's rows, keyed and sorted."""
    kept = stored
    if stored is not None and stored.height:
        # Work keys of the stored rows and the report computed together, so they compare.
        probe = pl.concat([
            stored.drop("count").with_row_index("_stored").with_columns(pl.lit(True).alias("_old")),
            scope.with_columns(pl.lit(None, dtype=pl.UInt32).alias("_stored"), pl.lit(False).alias("_old")),
        ], how="diagonal_relaxed")
        keyed = _with_work_keys(probe)
        covered = keyed.filter(~pl.col("_old")).select(MERGE_KEY).unique()
        replaced = (keyed.filter(pl.col("_old")).join(covered, on=MERGE_KEY, how="semi", nulls_equal=True)
                    ["_stored"])
        report.replaced_rows = replaced.len()
        kept = (stored.with_row_index("_stored").join(replaced.to_frame(), on="_stored", how="anti")
                .drop("_stored"))
        if report.replaced_rows:
            report.warnings.append(f"{report.replaced_rows} stored row(s) for the same platform, month, metric and "
                                   f"title were replaced by this report (an import replaces, it never adds up).")
    merged = pl.concat([kept, new_rows.select(CANONICAL_COLUMNS)]) if kept is not None else new_rows.select(
        CANONICAL_COLUMNS)
    table = _with_work_keys(merged)
    return table.sort([*CANONICAL_COLUMNS, "work_key"], nulls_last=True)
