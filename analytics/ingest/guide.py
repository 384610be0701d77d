"""What the import page tells a librarian about a kind of file, before and after the upload.

- column_guide: each input column of a kind, required or not, what it means, the form the
  importer reads and an example; derived from analytics.core.schema.CANONICAL (the one
  declaration of the input columns) and the parsing rules of tabular.py.
- template_csv: a CSV with the header row and one example row, which imports as it is.
- column_plan: which columns of an uploaded file will be imported, and which will not
  (personal or financial data, or not a column of the kind), by the importer's own rules.
- never_dates: a value that dominates an optional date column and looks like a system's
  "never" (1/1/00, 1900-01-01, 0000-00-00...), to offer as a null date.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import polars as pl

from analytics.core.schema import ACCEPTED_VALUES, CANONICAL, Column, normalize_column_name
from analytics.ingest.tabular import parse_dates, unimported_columns

GUIDE_INTRO = ("The first row of the file names the columns (in any order, upper or lower case); other names "
               "can be matched to these after the upload. Only the required columns must be there; any other "
               "column is left out, and personal or financial columns are never stored.")
# marc and counter read a system's own export as it is: there are no columns to prepare.
SPECIAL_GUIDES = {
    "marc": ("MARC 21 records as your library system exports them: binary (.mrc; MARC-8, UTF-8 or "
             "Windows-1251) or MARCXML. There are no columns to prepare: each record gives a title, and each "
             "holdings or item field (949, 952, 852, ITM or AVA) an item; the ISBN comes from 020, the ISSN from "
             "022, the OCLC number from 035 and the LC call number from 050 or 090. A record that cannot be read "
             "is reported and skipped."),
    "counter": ("A COUNTER title report as the platform or SUSHI delivers it: Release 5 or 5.1 TR and its views "
                "(TR_B1, TR_J1, ...), or Release 4 BR and JR reports; TSV, CSV, Excel or SUSHI JSON. There are "
                "no columns to prepare: the report's header says what it holds. For the same platforms and "
                "months, a new report replaces the usage imported before."),
}

# Short forms of what tabular.py reads (its messages, NUMBER_EXPECTED and YEAR_EXPECTED, say it in full).
KIND_FORMATS = {
    "str": "text",
    "int": "whole number (1,234 or 1234)",
    "number": "number (7502, 7,502 or 84.5); blank or N/A: not reported",
    "year": "year (c2009. and [2015] read as 2009 and 2015)",
    "fiscal_year": "year the period ends in (2020, FY2020, 2019-20 or 06/30/2020)",
    "date": "date (YYYY-MM-DD, M/D/YY or M/D/YYYY)",
    "month_or_date": "month (YYYY-MM) or date (YYYY-MM-DD, M/D/YY or M/D/YYYY)",
}


def column_format(kind: str, column: Column) -> str:
    """How the importer reads a column of `kind`: its form, accepted values and the blank's meaning."""
    accepted = ACCEPTED_VALUES.get((kind, column.name))
    text = ("one of " + ", ".join(accepted)) if accepted else KIND_FORMATS[column.kind]
    if column.default is not None:
        text += f"; blank means {column.default}"
    return text


def column_guide(kind: str) -> pl.DataFrame:
    """One row per input column of `kind`, in the order of the template."""
    columns = CANONICAL[kind]
    return pl.DataFrame({
        "column": [c.name for c in columns],
        "required": ["required" if c.required else "optional" for c in columns],
        "meaning": [c.description for c in columns],
        "format": [column_format(kind, c) for c in columns],
        "example": [c.example or "(blank)" for c in columns],
    })


def template_csv(kind: str) -> bytes:
    """The header row of `kind` and one example row, as CSV (UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in CANONICAL[kind]])
    writer.writerow([c.example for c in CANONICAL[kind]])
    return buffer.getvalue().encode("utf-8")


def template_name(kind: str) -> str:
    return f"{kind}-template.csv"


@dataclass(frozen=True)
class ColumnPlan:
    """What the importer does with each column of a file, for a kind and a mapping."""

    imported: dict[str, str]  # file column -> canonical column
    dropped: list[dict]  # {"column", "reason": "personal" | "financial"}: never stored
    ignored: list[str]  # not a column of the kind

    def notice(self) -> str:
        """One sentence naming every column that will not be imported ('' when all are)."""
        parts = []
        if self.dropped:
            reasons = {"personal": "personal data", "financial": "financial"}
            parts.append("dropped and never stored: " + ", ".join(
                f"{d['column']} ({reasons.get(d['reason'], d['reason'])})" for d in self.dropped))
        if self.ignored:
            parts.append("not part of this kind of data: " + ", ".join(self.ignored))
        return ("Columns not imported — " + "; ".join(parts) + ".") if parts else ""


def column_plan(columns: list[str], kind: str, sources: dict[str, str]) -> ColumnPlan:
    """`sources`: canonical column -> the file's column chosen for it. A file column that is not
    chosen, nor named like a canonical column, is dropped or ignored by the importer's own rule
    (tabular.unimported_columns)."""
    canonical = {c.name for c in CANONICAL[kind]}
    imported = {source: name for name, source in sources.items() if source in columns}
    for column in columns:
        normalized = normalize_column_name(column)
        if column not in imported and normalized in canonical and normalized not in imported.values():
            imported[column] = normalized
    dropped, ignored = unimported_columns(columns, set(imported))
    return ColumnPlan(imported, dropped, ignored)


@dataclass(frozen=True)
class NeverDate:
    """A value that looks like a system's "never" in an optional date column."""

    column: str  # canonical column
    source: str  # the file's column
    value: str
    rows: int  # rows holding the value
    filled: int  # rows with any value in the column
    total: int  # rows of the file

    def sentence(self) -> str:
        where = self.column if self.source == self.column else f"{self.source} ({self.column})"
        share = self.rows / self.total if self.total else 0
        return (f"{self.rows:,} of {self.total:,} rows ({share:.0%}) have {self.value} in {where}, far more "
                f"than any other date. Library systems write such a date for “never” (never lent, never "
                f"withdrawn).")


def looks_like_never(value: str) -> bool:
    """Not a date at all (0000-00-00), or 1 January / 31 December of a round year or out of range:
    the shapes systems use for "no date" (1/1/00, 1900-01-01, 1970-01-01, 12/31/9999, 12/31/1969)."""
    parsed = pl.select(parse_dates(pl.lit(value, dtype=pl.String))).item()
    if parsed is None:
        return True
    return (parsed.month, parsed.day) in ((1, 1), (12, 31)) or not 1901 <= parsed.year <= 2098


def never_dates(frame: pl.DataFrame, kind: str, sources: dict[str, str]) -> list[NeverDate]:
    """Suggestions of a "never" value per optional date column of `kind` found in the file.

    A value dominates its column when it fills at least half of the column's cells, or when it
    is at least five times as frequent as the next value and fills at least a tenth. Only values
    shaped like a "never" are suggested: a migration day that dominates the acquisition dates is
    a real date. Required dates (a loan's date) are never suggested: a loan always has one.
    """
    found = []
    for column in CANONICAL[kind]:
        source = sources.get(column.name)
        if column.required or column.kind not in ("date", "month_or_date") or source not in frame.columns:
            continue
        cells = frame.get_column(source).cast(pl.String).str.strip_chars()
        counts = (cells.filter(cells.is_not_null() & (cells != "")).value_counts(sort=True, name="n")
                  .sort(["n", source], descending=[True, False]))
        if counts.height == 0:
            continue
        value, rows = counts.row(0)
        filled = int(counts["n"].sum())
        runner_up = counts["n"][1] if counts.height > 1 else 0
        dominant = rows >= 2 and (2 * rows >= filled or (rows >= 5 * runner_up and 10 * rows >= filled))
        if dominant and looks_like_never(value):
            found.append(NeverDate(column.name, source, value, rows, filled, frame.height))
    return found
