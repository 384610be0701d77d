"""COUNTER title reports into the canonical e-usage table (DATA_CONTRACT.md §1, KIND counter).

What is read
------------
* COUNTER Release 5 and 5.1 title reports: the Title Report TR and its standard views
  TR_B1, TR_B2, TR_B3, TR_J1, TR_J2, TR_J3, TR_J4, in the tabular form (TSV, CSV, Excel:
  the header block of ``Report_Name / Report_ID / Release / ... / Reporting_Period``
  rows, a blank row, the column header row, then one row per title and metric with a
  column per month such as ``Jan-2022``) or as SUSHI JSON (R5: ``Report_Items`` →
  ``Performance`` → ``Period`` + ``Instance``; R5.1: ``Report_Items`` →
  ``Attribute_Performance`` → ``Performance`` {metric: {"2022-01": n}}).
* COUNTER Release 4 BR1, BR2 and JR1 in the tabular form (report name in the first cell,
  "Period covered by Report" and its "YYYY-MM-DD to YYYY-MM-DD" line, the column header
  row, a "Total for all ..." row that is skipped). R4 has no metric types; its single
  measure is stored as the R5 metric that counts the same thing, and the report says so:

  =====  =========================================  =====================
  R4     what it counts                             stored metric_type
  =====  =========================================  =====================
  BR1    Successful Title Requests (whole books)    Unique_Title_Requests
  BR2    Successful Section Requests (chapters)     Total_Item_Requests
  JR1    Successful Full-Text Article Requests      Total_Item_Requests
  =====  =========================================  =====================

Every other report (PR, DR, IR and their views, R4 JR1 GOA, JR2, BR3, DB1, PR1 ...) is
refused with a message naming what was found and what is supported. The header block
is validated (report, release, reporting period); every month column or JSON period
must lie in the reporting period. Institution_Name, Institution_ID and Customer_ID
identify the institution: they are read past, never stored and never echoed.

Rows
----
``read`` counts the title rows of the report: in the tabular form a data line (a title,
its attributes such as YOP or Access_Type, and one metric), in JSON the same unit (an
item or attribute set and one metric), so a TSV and its JSON agree. Rows without a title
(or a metric) are rejected and counted: read = kept + rejected. Each kept row gives one
e-usage row per month with usage; zero and blank months are not stored (counted in the
report's warnings). Rows that differ only in attributes the canonical table does not
keep (YOP, Access_Type, Access_Method, Data_Type, Section_Type) are summed per title,
metric and month. For the Unique_* metrics of the master report TR such a sum can count
a title twice when one session falls into two attribute rows; the standard views
(TR_B1, TR_J1, ...) have no such split.

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

import calendar
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from pathlib import Path

import polars as pl

from analytics.core import access
from analytics.ingest import identifiers
from analytics.core.access import Principal
from analytics.core.schema import TABLE_FILES, normalize_column_name
from analytics.ingest.reader import InputError, RawTable, _separator, decode, file_format
from analytics.ingest.tabular import (
    ImportReport,
    _fail_on,
    _identifiers,
    _reject,
    canonicalize,
    institution_dir,
    write_atomically,
)

KIND = "counter"
R5_REPORTS = ("TR", "TR_B1", "TR_B2", "TR_B3", "TR_J1", "TR_J2", "TR_J3", "TR_J4")
R5_RELEASES = {"5": "5", "5.0": "5", "5.1": "5.1"}
# R4 report code -> (what its single measure counts, the R5 metric type it is stored as).
R4_REPORTS = {
    "BR1": ("Successful Title Requests", "Unique_Title_Requests"),
    "BR2": ("Successful Section Requests", "Total_Item_Requests"),
    "JR1": ("Successful Full-Text Article Requests", "Total_Item_Requests"),
}
SUPPORTED_TEXT = ("COUNTER Release 5 / 5.1 title reports TR, TR_B1, TR_B2, TR_B3, TR_J1, TR_J2, TR_J3, TR_J4 "
                  "(TSV, CSV, Excel or SUSHI JSON) and COUNTER Release 4 BR1, BR2, JR1 (TSV, CSV, Excel)")
REPORT_FAMILIES = {"PR": "a Platform Report", "DR": "a Database Report", "IR": "an Item Report",
                   "TR": "a Title Report"}
R4_FAMILIES = {"book": "BR", "journal": "JR", "database": "DB", "platform": "PR", "multimedia": "MR",
               "title": "TR", "consortium": "CR"}

CANONICAL_COLUMNS = ["title", "isbn", "issn", "platform", "month", "metric_type", "count"]
CELL_KEY = ["title", "isbn", "issn", "platform", "month", "metric_type"]
MERGE_KEY = ["platform", "month", "metric_type", "work_key"]
ISBN_COLUMNS = ("isbn", "print_isbn", "online_isbn")
ISSN_COLUMNS = ("print_issn", "online_issn", "issn", "linking_issn")
PROGRESS_EVERY = 10_000
HEADER_BLOCK_MAX = 40  # rows scanned for the header block before giving up
PERIOD_YEARS = (1995, 2100)  # COUNTER began in 2003; anything outside is a typo or garbage
COUNT_EXPECTED = "a whole number of zero or more (a COUNTER count)"
# A count cell: digits, or thousands grouped by commas (spreadsheet exports), an optional
# ".0" tail (Excel numbers); at most 15 digits so it fits an Int64.
_COUNT = r"^(?:[0-9]{1,15}|[0-9]{1,3}(?:,[0-9]{3}){1,4})(?:\.0+)?$"
_DATE = r"[0-9]{4}-[0-9]{1,2}(?:-[0-9]{1,2})?"
_R5_PERIOD = re.compile(rf"(?i)^\s*begin_date\s*=\s*({_DATE})\s*[;,]\s*end_date\s*=\s*({_DATE})\s*$")
_RANGE_PERIOD = re.compile(rf"^\s*({_DATE})\s+to\s+({_DATE})\s*$")
_R4_NAME = re.compile(r"(?i)^\s*(book|journal|database|platform|multimedia|title|consortium)\s+report\s+"
                      r"([0-9]+)\s*([a-z]*)\s*\(\s*r\s*([0-9]+)\s*\)")
_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_MONTH_NAMES |= {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTH_NAMES["sept"] = 9

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
class _Lines(RawTable):
    """A report's title rows, located by file line (sheet row for Excel)."""

    lines: list[int] = field(default_factory=list)

    def where(self, data_row: int) -> str:
        unit = "sheet row" if self.file_format == "xlsx" else "line"
        return f"{unit} {self.lines[data_row - 1]}"


@dataclass
class _Labels(RawTable):
    """A JSON report's title rows, located by their path in the document."""

    labels: list[str] = field(default_factory=list)

    def where(self, data_row: int) -> str:
        return self.labels[data_row - 1]


@dataclass
class _Cells(RawTable):
    """Monthly cells (one chunk of them) on their way through canonicalize."""

    rows: RawTable | None = None
    source: pl.Series | None = None
    month_labels: pl.Series | None = None

    def where(self, data_row: int) -> str:
        return f"{self.rows.where(self.source[data_row - 1])}, month {self.month_labels[data_row - 1]}"


@dataclass
class ParsedReport:
    """What a reader found: header facts, title rows and their monthly cells."""

    report_id: str
    release: str
    begin: date
    end: date
    rows: pl.DataFrame          # _row, title, isbn, issn, platform, metric_type (strings)
    cells: pl.DataFrame         # _row, month ("YYYY-MM"), count (Int64), all cells incl. zeros
    months: list[str]           # months the report covers, "YYYY-MM"
    located: RawTable
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def import_counter(data_dir: Path, actor: Principal, code: str, path: str | Path, *,
                   display_name: str | None = None, progress: Progress | None = None) -> CounterReport:
    """Validate a COUNTER title report and merge its monthly counts into e_usage.parquet.

    Raises InputError (nothing changed) on a bad or unsupported report, PermissionDenied
    if the actor may not import for this institution. progress(rows_done, rows_total)
    is called about every 10,000 monthly rows (title x month cells with usage).
    """
    access.require_admin(actor, code, "the institution's data (imports)")
    path = Path(path)
    name = display_name or path.name
    parsed = read_counter(path, display_name=name)
    report = CounterReport(kind=KIND, file=name, encoding=parsed.encoding, warnings=list(parsed.warnings),
                           ignored_columns=parsed.ignored_columns, report_id=parsed.report_id,
                           release=parsed.release,
                           period={"begin": parsed.begin.isoformat(), "end": parsed.end.isoformat()},
                           months=parsed.months)
    new_rows, scope = _monthly_rows(parsed, report, progress)
    target = institution_dir(data_dir, code) / TABLE_FILES["e-usage"]
    table = _merge(_stored(target, name), new_rows, scope, report)
    report.table = str(target)
    report.table_rows = table.height
    write_atomically(table, target)
    return report


# ------------------------------------------------------------------------ reading


def read_counter(path: str | Path, *, display_name: str | None = None) -> ParsedReport:
    """Read and validate a COUNTER report file without storing anything."""
    path = Path(path)
    name = display_name or path.name
    if not path.exists():
        raise InputError(f"{name}: no such file.")
    if path.suffix.lower() == ".json":
        return _read_json(path, name)
    try:
        fmt = file_format(path)
    except InputError:
        raise InputError(f"{name}: unsupported file type {path.suffix or '(none)'}; a COUNTER report is read as "
                         f"TSV, CSV, Excel (.xlsx) or SUSHI JSON (.json).") from None
    if fmt == "parquet":
        raise InputError(f"{name}: a COUNTER report comes as TSV, CSV, Excel (.xlsx) or SUSHI JSON, not Parquet. "
                         f"A Parquet table of monthly counts imports with KIND e-usage.")
    if path.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty (no header block, no data).")
    if fmt == "xlsx":
        rows, encoding, warnings = _excel_rows(path, name), None, []
    else:
        rows, encoding, warnings = _delimited_rows(path, name, fmt)
    parsed = _read_tabular(rows, name, fmt)
    parsed.encoding = encoding
    parsed.warnings[:0] = warnings
    return parsed


def _delimited_rows(path: Path, name: str, fmt: str) -> tuple[list[tuple[int, list[str]]], str, list[str]]:
    """(line, cells) per physical row; the csv module keeps header block and data apart exactly."""
    text, encoding, warnings = decode(path.read_bytes(), name, None)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{name}: the file is empty (no header block, no data).")
    separator = _separator(text.split("\n", 1)[0], fmt)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, quotechar='"')
    rows = []
    line = 1
    try:
        for cells in reader:
            rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        kind = "TSV" if separator == "\t" else "CSV"
        raise InputError(f"{name}: line {reader.line_num}: not a well-formed {kind} file ({exc}).") from None
    return rows, encoding, warnings


def _excel_rows(path: Path, name: str) -> list[tuple[int, list[str]]]:
    try:
        frame = pl.read_excel(path, engine="calamine", has_header=False, infer_schema_length=0,
                              raise_if_empty=False)
    except Exception as exc:  # noqa: BLE001 - calamine raises its own error types for broken workbooks
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{name}: cannot be read as an Excel workbook: {first}") from None
    if frame.height == 0:
        raise InputError(f"{name}: the workbook's first sheet is empty (no header block, no data).")
    frame = frame.with_columns(pl.all().cast(pl.String))
    return [(number, ["" if cell is None else cell for cell in cells])
            for number, cells in enumerate(frame.iter_rows(), start=1)]


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) and cells[index] is not None else ""


def _blank(cells: list[str]) -> bool:
    return not any(cell and cell.strip() for cell in cells)


def _read_tabular(rows: list[tuple[int, list[str]]], name: str, fmt: str) -> ParsedReport:
    unit = "sheet row" if fmt == "xlsx" else "line"
    first = next((i for i, (_, cells) in enumerate(rows) if not _blank(cells)), None)
    if first is None:
        raise InputError(f"{name}: the file is empty (no header block, no data).")
    line, cells = rows[first]
    opening = _cell(cells, 0)
    if normalize_column_name(opening) == "report_name":
        return _read_r5_tabular(rows, first, name, fmt, unit)
    if _R4_NAME.match(opening):
        return _read_r4_tabular(rows, first, name, fmt, unit)
    raise InputError(
        f"{name}, {unit} {line}: no COUNTER header block: the first cell should be Report_Name (Release 5 / 5.1) "
        f"or a Release 4 report name such as 'Journal Report 1 (R4)'; found {opening[:60]!r}. Supported: "
        f"{SUPPORTED_TEXT}. A plain table of monthly counts imports with KIND e-usage."
    )


def _read_r5_tabular(rows, first: int, name: str, fmt: str, unit: str) -> ParsedReport:
    header: dict[str, tuple[str, int]] = {}
    position = first
    while position < len(rows):
        line, cells = rows[position]
        if _blank(cells) or normalize_column_name(_cell(cells, 0)) == "title":
            break
        if position - first >= HEADER_BLOCK_MAX:
            raise InputError(f"{name}, {unit} {line}: the header block does not end: a blank row and the column "
                             f"header row (Title, ..., Metric_Type, Reporting_Period_Total, months) should follow "
                             f"the Reporting_Period and Created_By rows.")
        header.setdefault(normalize_column_name(_cell(cells, 0)), (_cell(cells, 1), line))
        position += 1
    block = f"{unit}s {rows[first][0]}-{rows[max(first, position - 1)][0]}"
    report_id = _r5_report_id(header, name, unit, block)
    release = _r5_release(header, name, unit, block)
    begin, end = _header_period(header, name, unit, block)
    while position < len(rows) and _blank(rows[position][1]):
        position += 1
    if position >= len(rows):
        raise InputError(f"{name}: the header block ({block}) is not followed by a column header row and data.")
    header_line, columns = rows[position]
    names = [normalize_column_name(c) for c in columns]
    if not names or names[0] != "title" or "metric_type" not in names:
        raise InputError(f"{name}, {unit} {header_line}: expected the column header row (Title, ..., Metric_Type, "
                         f"Reporting_Period_Total, Jan-2022, ...) after the header block; found "
                         f"{', '.join(c for c in columns[:6] if c)[:120]!r}.")
    layout = {
        "title": [names.index("title")],
        "metric_type": [names.index("metric_type")],
        "platform": [i for i, n in enumerate(names) if n == "platform"][:1],
        "isbn": _ordered(names, ISBN_COLUMNS),
        "issn": _ordered(names, ISSN_COLUMNS),
    }
    parsed = _tabular_rows(rows, position, columns, layout, None, name, fmt, report_id, release, begin, end)
    exceptions, _ = header.get("exceptions", ("", 0))
    if exceptions:
        parsed.warnings.append(f"The report's header lists exceptions: {exceptions[:300]}.")
    return parsed


def _read_r4_tabular(rows, first: int, name: str, fmt: str, unit: str) -> ParsedReport:
    line, cells = rows[first]
    opening = _cell(cells, 0)
    match = _R4_NAME.match(opening)
    family, number, variant, release = match.groups()
    found = f"{R4_FAMILIES[family.lower()]}{number}{(' ' + variant.upper()) if variant else ''}"
    if release != "4":
        raise InputError(f"{name}, {unit} {line}: {opening!r} is a COUNTER Release {release} report; supported "
                         f"releases are 4, 5 and 5.1 ({SUPPORTED_TEXT}). Nothing was imported.")
    if found not in R4_REPORTS:
        raise InputError(f"{name}, {unit} {line}: {opening!r} is COUNTER R4 {found}, not a title usage report "
                         f"this import reads. Supported: {SUPPORTED_TEXT}. Nothing was imported.")
    period, position = None, first + 1
    while position < len(rows) and position - first <= HEADER_BLOCK_MAX:
        row_line, cells = rows[position]
        names = [normalize_column_name(c) for c in cells]
        if "reporting_period_total" in names:
            break
        for cell in cells:
            found_period = _RANGE_PERIOD.match(cell or "")
            if found_period and period is None:
                period = _period_bounds(*found_period.groups(), f"{name}, {unit} {row_line}")
        position += 1
    else:
        raise InputError(f"{name}: no column header row (Journal/Title, Publisher, Platform, ..., Reporting Period "
                         f"Total, Jan-2013, ...) in the first {HEADER_BLOCK_MAX} {unit}s of this R4 report.")
    if period is None:
        raise InputError(f"{name}, {unit}s {line}-{rows[position - 1][0]}: the R4 header block has no reporting "
                         f"period: line 5 should read like '2013-01-01 to 2013-12-31' (after 'Period covered by "
                         f"Report:').")
    columns = rows[position][1]
    names = [normalize_column_name(c) for c in columns]
    layout = {
        "title": [0],
        "metric_type": [],
        "platform": [i for i, n in enumerate(names) if n == "platform"][:1],
        "isbn": _ordered(names, ISBN_COLUMNS),
        "issn": _ordered(names, ISSN_COLUMNS),
    }
    measure, metric = R4_REPORTS[found]
    parsed = _tabular_rows(rows, position, columns, layout, metric, name, fmt, found, "4", *period)
    parsed.warnings.append(f"COUNTER R4 {found} counts {measure}; stored as the R5 metric {metric}. "
                           f"The 'Total for all ...' row of the report is not a title and was skipped.")
    return parsed


def _ordered(names: list[str], wanted: tuple[str, ...]) -> list[int]:
    return [i for want in wanted for i, n in enumerate(names) if n == want]


def _r5_report_id(header: dict, name: str, unit: str, block: str) -> str:
    if "report_id" not in header:
        raise InputError(f"{name}: the header block ({block}) has no Report_ID row; a COUNTER R5 report names its "
                         f"report there (TR, TR_J1, ...).")
    value, line = header["report_id"]
    return _check_report_id(value, f"{name}, {unit} {line}, Report_ID")


def _check_report_id(value: object, where: str) -> str:
    report_id = str(value or "").strip().upper().replace(" ", "_")
    if report_id in R5_REPORTS:
        return report_id
    if not report_id:
        raise InputError(f"{where}: empty; expected one of {', '.join(R5_REPORTS)}.")
    family = REPORT_FAMILIES.get(report_id.split("_")[0], "not a title report")
    raise InputError(f"{where}: {report_id!r} is {family}; KIND counter imports title usage only. Supported: "
                     f"{SUPPORTED_TEXT}. Nothing was imported.")


def _r5_release(header: dict, name: str, unit: str, block: str) -> str:
    if "release" not in header:
        raise InputError(f"{name}: the header block ({block}) has no Release row (5 or 5.1).")
    value, line = header["release"]
    return _check_release(value, f"{name}, {unit} {line}, Release")


def _check_release(value: object, where: str) -> str:
    text = str(value if value is not None else "").strip()
    if text in R5_RELEASES:
        return R5_RELEASES[text]
    raise InputError(f"{where}: {text[:20]!r} is not a supported COUNTER release (5, 5.1; Release 4 reports "
                     f"start with their name, e.g. 'Journal Report 1 (R4)'). Nothing was imported.")


def _header_period(header: dict, name: str, unit: str, block: str) -> tuple[date, date]:
    if "reporting_period" not in header:
        raise InputError(f"{name}: the header block ({block}) has no Reporting_Period row "
                         f"(Begin_Date=YYYY-MM-DD; End_Date=YYYY-MM-DD).")
    value, line = header["reporting_period"]
    where = f"{name}, {unit} {line}, Reporting_Period"
    found = _R5_PERIOD.match(value) or _RANGE_PERIOD.match(value)
    if not found:
        raise InputError(f"{where}: {value[:60]!r} is not a reporting period; expected "
                         f"'Begin_Date=2022-01-01; End_Date=2022-12-31'.")
    return _period_bounds(*found.groups(), where)


def _period_bounds(begin_text: str, end_text: str, where: str) -> tuple[date, date]:
    begin, end = _day(begin_text, first=True), _day(end_text, first=False)
    if begin is None or end is None:
        raise InputError(f"{where}: {begin_text!r} to {end_text!r} is not a valid pair of dates.")
    if begin > end:
        raise InputError(f"{where}: the period begins ({begin}) after it ends ({end}).")
    if begin.year < PERIOD_YEARS[0] or end.year > PERIOD_YEARS[1]:
        raise InputError(f"{where}: {begin} to {end} is not a plausible COUNTER reporting period "
                         f"(years {PERIOD_YEARS[0]} to {PERIOD_YEARS[1]}).")
    return begin, end


def _day(text: str, *, first: bool) -> date | None:
    """A YYYY-MM-DD date; YYYY-MM means the first (or last) day of that month."""
    parts = [int(p) for p in str(text).strip().split("-")]
    try:
        if len(parts) == 2:
            year, month = parts
            return date(year, month, 1 if first else calendar.monthrange(year, month)[1])
        return date(*parts) if len(parts) == 3 else None
    except (ValueError, TypeError, OverflowError):
        return None


def _month_of_header(text: str) -> str | None:
    """'Jan-2022', 'Jan-22', 'January 2022', '2022-01' or an Excel date '2022-01-01 00:00:00' -> '2022-01'."""
    text = (text or "").strip()
    named = re.fullmatch(r"([A-Za-z]{3,9})[-\s/]?([0-9]{4}|[0-9]{2})", text)
    if named:
        month = _MONTH_NAMES.get(named.group(1).lower())
        year = int(named.group(2)) + (2000 if len(named.group(2)) == 2 else 0)
    else:
        numeric = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})(?:-01(?:[ T]00:00(?::00(?:\.0+)?)?)?)?", text)
        if not numeric:
            return None
        year, month = int(numeric.group(1)), int(numeric.group(2))
    if not month or not 1 <= month <= 12 or not 1900 <= year <= 2200:
        return None
    return f"{year:04d}-{month:02d}"


def _in_period(month: str, begin: date, end: date) -> bool:
    year, number = (int(p) for p in month.split("-"))
    return date(begin.year, begin.month, 1) <= date(year, number, 1) <= end


def _tabular_rows(rows, position: int, columns: list[str], layout: dict, metric: str | None, name: str, fmt: str,
                  report_id: str, release: str, begin: date, end: date) -> ParsedReport:
    """Title rows and monthly cells of a tabular report whose column header is rows[position]."""
    unit = "sheet row" if fmt == "xlsx" else "line"
    header_line = rows[position][0]
    names = [normalize_column_name(c) for c in columns]
    if "reporting_period_total" not in names:
        raise InputError(f"{name}, {unit} {header_line}: the column header row has no Reporting_Period_Total "
                         f"column; the month columns follow it.")
    total = names.index("reporting_period_total")
    last_total = max(i for i, n in enumerate(names) if n.startswith("reporting_period"))
    data = [(line, cells) for line, cells in rows[position + 1:] if not _blank(cells)]
    if metric is not None:  # R4: the first data row sums all titles
        data = [(line, cells) for line, cells in data if not _cell(cells, 0).lower().startswith("total for all")]
    width = len(columns)
    month_columns: dict[int, str] = {}
    for index in range(last_total + 1, width):
        label = (columns[index] or "").strip()
        if not label:
            if any(_cell(cells, index) for _, cells in data):
                raise InputError(f"{name}, {unit} {header_line}: column {index + 1} has no month in its header but "
                                 f"holds counts.")
            continue
        month = _month_of_header(label)
        if month is None:
            raise InputError(f"{name}, {unit} {header_line}, column {label!r}: not a month; the columns after "
                             f"Reporting_Period_Total must be months such as Jan-2022. Nothing was imported.")
        if month in month_columns.values():
            raise InputError(f"{name}, {unit} {header_line}, column {label!r}: the month {month} appears twice.")
        if not _in_period(month, begin, end):
            raise InputError(f"{name}, {unit} {header_line}, column {label!r}: {month} lies outside the reporting "
                             f"period {begin} to {end} of the header block. Nothing was imported.")
        month_columns[index] = month
    if not month_columns:
        raise InputError(f"{name}, {unit} {header_line}: no month columns after Reporting_Period_Total (was the "
                         f"report run with Exclude_Monthly_Details?); run it with monthly details.")
    for line, cells in data:
        if len(cells) > width and not _blank(cells[width:]):
            raise InputError(f"{name}, {unit} {line}: {len(cells)} cells but the column header row ({unit} "
                             f"{header_line}) names {width} columns. Nothing was imported.")

    wanted = sorted({i for group in layout.values() for i in group} | set(month_columns) | {total})
    pick, top = itemgetter(*wanted), wanted[-1]
    picked = [pick(cells) if len(cells) > top else pick(cells + [""] * (top + 1 - len(cells))) for _, cells in data]
    if len(wanted) == 1:
        picked = [(cell,) for cell in picked]
    by_index = dict(zip(wanted, zip(*picked))) if picked else {i: () for i in wanted}
    frame = pl.DataFrame({f"c{i}": pl.Series(list(by_index[i]), dtype=pl.String) for i in wanted})
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in frame.columns)
    frame = frame.with_columns(pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
                               for c in frame.columns)

    def joined(indexes: list[int]) -> pl.Expr:
        if not indexes:
            return pl.lit(None, dtype=pl.String)
        parts = pl.concat_str([pl.col(f"c{i}") for i in indexes], separator=";", ignore_nulls=True)
        return pl.when(parts == "").then(None).otherwise(parts)

    labels = {index: (columns[index] or "").strip() for index in month_columns}
    wide = frame.select(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("_row"),
        pl.col(f"c{layout['title'][0]}").alias("title"),
        joined(layout["isbn"]).alias("isbn"),
        joined(layout["issn"]).alias("issn"),
        joined(layout["platform"]).alias("platform"),
        (pl.lit(metric, dtype=pl.String) if metric else pl.col(f"c{layout['metric_type'][0]}")).alias("metric_type"),
        pl.col(f"c{total}").alias("_total"),
        *[pl.col(f"c{index}").alias(label) for index, label in labels.items()],
    )
    located = _Lines(wide, name, fmt, lines=[line for line, _ in data])
    warnings = []
    for label in labels.values():
        _fail_on(wide, pl.col(label).is_not_null() & ~pl.col(label).str.contains(_COUNT), located, label,
                 COUNT_EXPECTED)
    cells = (
        wide.select("_row", *labels.values())
        .unpivot(index="_row", variable_name="_label", value_name="count")
        .with_columns(
            pl.col("_label").replace_strict({label: month_columns[i] for i, label in labels.items()},
                                            return_dtype=pl.String).alias("month"),
            _count_value(pl.col("count")).fill_null(0).alias("count"),
        )
        .select("_row", "month", "count")
    )
    mismatched = _total_mismatches(wide, cells)
    if mismatched:
        warnings.append(f"{mismatched} row(s) have a Reporting_Period_Total that differs from the sum of their "
                        f"months; the months were stored.")
    used = {i for group in layout.values() for i in group} | set(month_columns)
    ignored = [c for i, c in enumerate(columns) if i not in used and c and c.strip()]
    title_rows = wide.select("_row", "title", "isbn", "issn", "platform", "metric_type")
    return ParsedReport(report_id, release, begin, end, title_rows, cells, sorted(month_columns.values()), located,
                        warnings=warnings, ignored_columns=ignored)


def _count_value(text: pl.Expr) -> pl.Expr:
    """Int64 of a validated count cell (null stays null)."""
    return text.str.replace_all(",", "").str.replace(r"\.0+$", "").cast(pl.Int64, strict=False)


def _total_mismatches(wide: pl.DataFrame, cells: pl.DataFrame) -> int:
    totals = wide.select(
        "_row", pl.when(pl.col("_total").str.contains(_COUNT)).then(_count_value(pl.col("_total"))).alias("_total")
    ).drop_nulls("_total")
    if totals.height == 0:
        return 0
    sums = cells.group_by("_row").agg(pl.col("count").sum().alias("_sum"))
    return totals.join(sums, on="_row", how="left").filter(pl.col("_total") != pl.col("_sum")).height


# ---------------------------------------------------------------------- SUSHI JSON


def _read_json(path: Path, name: str) -> ParsedReport:
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{name}: the file is empty (no Report_Header, no Report_Items).")
    text, encoding, warnings = decode(raw, name, None)
    try:
        document = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None
    except RecursionError:
        raise InputError(f"{name}: not valid COUNTER JSON: nested too deeply.") from None
    if isinstance(document, dict) and "Report_Header" not in document and {"Code", "Message"} <= set(document):
        document = [document]
    if isinstance(document, list):
        said = _exceptions_text(document)
        raise InputError(f"{name}: not a COUNTER report" + (f"; the SUSHI server answered: {said}" if said else
                                                             " (a JSON list, no Report_Header)") + ".")
    if not isinstance(document, dict) or not isinstance(document.get("Report_Header"), dict):
        raise InputError(f"{name}: not a COUNTER SUSHI report: no Report_Header object at the top level.")
    header = document["Report_Header"]
    report_id = _check_report_id(header.get("Report_ID"), f"{name}, Report_Header.Report_ID")
    release = _check_release(header.get("Release"), f"{name}, Report_Header.Release")
    said = _exceptions_text(header.get("Exceptions"))
    items = document.get("Report_Items")
    if not items:
        raise InputError(f"{name}: the report holds no usage (no Report_Items)"
                         + (f"; the SUSHI server said: {said}" if said else "") + ". Nothing was imported.")
    begin, end = _json_period(header, name)
    if not isinstance(items, list):
        raise InputError(f"{name}, Report_Items: expected a list of title items.")
    rows = _JsonRows(name, begin, end)
    for index, item in enumerate(items):
        rows.add_item(index, item)
    months = []
    cursor = date(begin.year, begin.month, 1)
    while cursor <= end:
        months.append(f"{cursor.year:04d}-{cursor.month:02d}")
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    if said:
        warnings.append(f"The report's header lists exceptions: {said}.")
    frame = pl.DataFrame(rows.columns, schema={"_row": pl.Int64, **dict.fromkeys(
        ("title", "isbn", "issn", "platform", "metric_type"), pl.String)})
    texts = ("title", "isbn", "issn", "platform", "metric_type")
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in texts)
    frame = frame.with_columns(pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in texts)
    cells = pl.DataFrame(rows.cells, schema={"_row": pl.Int64, "month": pl.String, "count": pl.Int64})
    return ParsedReport(report_id, release, begin, end, frame, cells, months,
                        _Labels(frame, name, "json", labels=rows.labels), encoding=encoding, warnings=warnings)


def _exceptions_text(exceptions: object) -> str:
    if isinstance(exceptions, dict):
        exceptions = [exceptions]
    if not isinstance(exceptions, list):
        return ""
    said = []
    for exception in exceptions[:5]:
        if isinstance(exception, dict) and ("Code" in exception or "Message" in exception):
            said.append(f"{exception.get('Code', '')} {exception.get('Message', '')}".strip()[:200])
    return "; ".join(said)


def _json_period(header: dict, name: str) -> tuple[date, date]:
    filters = header.get("Report_Filters")
    values: dict[str, object] = {}
    if isinstance(filters, dict):  # R5.1
        values = filters
    elif isinstance(filters, list):  # R5: [{"Name": "Begin_Date", "Value": "2016-01-01"}, ...]
        values = {f.get("Name"): f.get("Value") for f in filters if isinstance(f, dict)}
    begin, end = values.get("Begin_Date"), values.get("End_Date")
    where = f"{name}, Report_Header.Report_Filters"
    if not isinstance(begin, str) or not isinstance(end, str):
        raise InputError(f"{where}: no Begin_Date and End_Date; the reporting period cannot be checked.")
    if not re.fullmatch(_DATE, begin.strip()) or not re.fullmatch(_DATE, end.strip()):
        raise InputError(f"{where}: Begin_Date {begin[:20]!r} / End_Date {end[:20]!r} are not dates (YYYY-MM-DD).")
    return _period_bounds(begin.strip(), end.strip(), where)


class _JsonRows:
    """Title rows (item x attribute set x metric) and their monthly cells from Report_Items."""

    def __init__(self, name: str, begin: date, end: date):
        self.name, self.begin, self.end = name, begin, end
        self.columns: dict[str, list] = {c: [] for c in ("_row", "title", "isbn", "issn", "platform", "metric_type")}
        self.labels: list[str] = []
        self.cells: dict[str, list] = {"_row": [], "month": [], "count": []}

    def add_item(self, index: int, item: object) -> None:
        where = f"Report_Items[{index}]"
        if not isinstance(item, dict):
            raise InputError(f"{self.name}, {where}: expected an object with Title, Item_ID and Performance.")
        ids = _item_ids(item.get("Item_ID"))
        base = {
            "title": _text(item.get("Title")),
            "isbn": ";".join(v for key in ISBN_COLUMNS for v in ids.get(key, [])) or None,
            "issn": ";".join(v for key in ISSN_COLUMNS for v in ids.get(key, [])) or None,
            "platform": _text(item.get("Platform")),
        }
        if "Attribute_Performance" in item:  # R5.1
            sets = item["Attribute_Performance"]
            if not isinstance(sets, list):
                raise InputError(f"{self.name}, {where}.Attribute_Performance: expected a list.")
            if not sets:
                self._row(base, None, where)
            for number, attributes in enumerate(sets):
                self._attribute_set(base, attributes, f"{where}.Attribute_Performance[{number}]")
        else:  # R5
            self._performance(base, item.get("Performance"), where)

    def _row(self, base: dict, metric: str | None, label: str) -> int:
        row = len(self.labels) + 1
        self.columns["_row"].append(row)
        for key, value in base.items():
            self.columns[key].append(value)
        self.columns["metric_type"].append(metric)
        self.labels.append(label)
        return row

    def _cell(self, row: int, month: str, value: object, where: str) -> None:
        if not _in_period(month, self.begin, self.end):
            raise InputError(f"{self.name}, {where}: the month {month} lies outside the reporting period "
                             f"{self.begin} to {self.end} (Report_Filters). Nothing was imported.")
        self.cells["_row"].append(row)
        self.cells["month"].append(month)
        self.cells["count"].append(_json_count(value, f"{self.name}, {where}"))

    def _attribute_set(self, base: dict, attributes: object, where: str) -> None:
        performance = attributes.get("Performance") if isinstance(attributes, dict) else None
        if not isinstance(performance, dict):
            raise InputError(f"{self.name}, {where}: expected an object with Performance "
                             f"{{metric: {{'YYYY-MM': count}}}}.")
        if not performance:
            self._row(base, None, where)
        for metric, by_month in performance.items():
            row = self._row(base, _text(metric), where)
            if not isinstance(by_month, dict):
                raise InputError(f"{self.name}, {where}.Performance.{metric}: expected {{'YYYY-MM': count}}.")
            for key, value in by_month.items():
                month = _month_of_header(str(key)) if re.fullmatch(r"[0-9]{4}-[0-9]{2}", str(key)) else None
                if month is None:
                    raise InputError(f"{self.name}, {where}.Performance.{metric}: {str(key)[:20]!r} is not a "
                                     f"month (YYYY-MM).")
                self._cell(row, month, value, f"{where}.Performance.{metric}.{key}")

    def _performance(self, base: dict, performance: object, where: str) -> None:
        if not isinstance(performance, list):
            raise InputError(f"{self.name}, {where}.Performance: expected a list of Period and Instance objects.")
        rows: dict[str | None, int] = {}
        if not performance:
            self._row(base, None, where)
        for number, entry in enumerate(performance):
            at = f"{where}.Performance[{number}]"
            if not isinstance(entry, dict):
                raise InputError(f"{self.name}, {at}: expected an object with Period and Instance.")
            month = self._month(entry.get("Period"), at)
            instances = entry.get("Instance")
            if not isinstance(instances, list):
                raise InputError(f"{self.name}, {at}.Instance: expected a list of Metric_Type and Count.")
            for k, instance in enumerate(instances):
                if not isinstance(instance, dict):
                    raise InputError(f"{self.name}, {at}.Instance[{k}]: expected Metric_Type and Count.")
                metric = _text(instance.get("Metric_Type"))
                if metric not in rows:
                    rows[metric] = self._row(base, metric, where)
                self._cell(rows[metric], month, instance.get("Count"), f"{at}.Instance[{k}] ({metric})")

    def _month(self, period: object, at: str) -> str:
        if not isinstance(period, dict):
            raise InputError(f"{self.name}, {at}.Period: expected Begin_Date and End_Date.")
        begin = _day(str(period.get("Begin_Date", "")), first=True) if re.fullmatch(
            _DATE, str(period.get("Begin_Date", "")).strip()) else None
        end = _day(str(period.get("End_Date", "")), first=False) if re.fullmatch(
            _DATE, str(period.get("End_Date", "")).strip()) else None
        if begin is None or end is None:
            raise InputError(f"{self.name}, {at}.Period: Begin_Date / End_Date are not dates (YYYY-MM-DD).")
        if (begin.year, begin.month) != (end.year, end.month):
            raise InputError(f"{self.name}, {at}.Period: {begin} to {end} is not one month; run the report with "
                             f"Granularity=Month.")
        return f"{begin.year:04d}-{begin.month:02d}"


def _text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _item_ids(item_ids: object) -> dict[str, list[str]]:
    """Item_ID as {normalized type: [values]}: R5 lists {Type, Value}, R5.1 maps type -> value."""
    found: dict[str, list[str]] = {}
    if isinstance(item_ids, list):
        pairs = [(i.get("Type"), i.get("Value")) for i in item_ids if isinstance(i, dict)]
    elif isinstance(item_ids, dict):
        pairs = [(key, v) for key, value in item_ids.items() for v in (value if isinstance(value, list) else [value])]
    else:
        pairs = []
    for kind, value in pairs:
        text = _text(value)
        if kind is not None and text:
            found.setdefault(normalize_column_name(str(kind)), []).append(text)
    return found


def _json_count(value: object, where: str) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(_COUNT, value.strip()):
        value = int(value.strip().replace(",", "").split(".")[0])
    if isinstance(value, int) and 0 <= value < 10**15:
        return value
    raise InputError(f"{where}: Count {str(value)[:30]!r} is not {COUNT_EXPECTED}. Nothing was imported.")


# ------------------------------------------------------------- typing and merging


def _monthly_rows(parsed: ParsedReport, report: CounterReport,
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

    covered = pl.DataFrame({"month": parsed.months}).select(
        (pl.col("month") + "-01").str.to_date("%Y-%m-%d"))
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


def _stored(target: Path, name: str) -> pl.DataFrame | None:
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


def _merge(stored: pl.DataFrame | None, new_rows: pl.DataFrame, scope: pl.DataFrame,
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
