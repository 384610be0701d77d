"""COUNTER reports in the tabular form (TSV, CSV, Excel): the header block and columns of
Release 5 / 5.1, and the layout of Release 4 BR1, BR2, JR1 (counter.py describes both).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from pathlib import Path

import polars as pl

from analytics.core.schema import normalize_column_name
from analytics.ingest.counter_header import (
    COUNT_EXPECTED,
    COUNT_PATTERN,
    DATE_PATTERN,
    ISBN_COLUMNS,
    ISSN_COLUMNS,
    R4_REPORTS,
    SUPPORTED_TEXT,
    ParsedReport,
    check_release,
    check_report_id,
    in_period,
    month_of_header,
    period_bounds,
)
from analytics.ingest.reader import InputError, RawTable, _separator, decode
from analytics.ingest.tabular import _fail_on

HEADER_BLOCK_MAX = 40  # rows scanned for the header block before giving up
R4_FAMILIES = {"book": "BR", "journal": "JR", "database": "DB", "platform": "PR", "multimedia": "MR",
               "title": "TR", "consortium": "CR"}
_R5_PERIOD = re.compile(rf"(?i)^\s*begin_date\s*=\s*({DATE_PATTERN})\s*[;,]\s*end_date\s*=\s*({DATE_PATTERN})\s*$")
_RANGE_PERIOD = re.compile(rf"^\s*({DATE_PATTERN})\s+to\s+({DATE_PATTERN})\s*$")
_R4_NAME = re.compile(r"(?i)^\s*(book|journal|database|platform|multimedia|title|consortium)\s+report\s+"
                      r"([0-9]+)\s*([a-z]*)\s*\(\s*r\s*([0-9]+)\s*\)")


@dataclass
class _Lines(RawTable):
    """A report's title rows, located by file line (sheet row for Excel)."""

    lines: list[int] = field(default_factory=list)

    def where(self, data_row: int) -> str:
        unit = "sheet row" if self.file_format == "xlsx" else "line"
        return f"{unit} {self.lines[data_row - 1]}"



def read_tabular(path: Path, name: str, fmt: str) -> ParsedReport:
    """Read and validate a COUNTER report in the tabular form (fmt csv, tsv or xlsx)."""
    if fmt == "xlsx":
        rows, encoding, warnings = _excel_rows(path, name), None, []
    else:
        rows, encoding, warnings = _delimited_rows(path, name, fmt)
    parsed = _read_layout(rows, name, fmt)
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


def _read_layout(rows: list[tuple[int, list[str]]], name: str, fmt: str) -> ParsedReport:
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
                period = period_bounds(*found_period.groups(), f"{name}, {unit} {row_line}")
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
    return check_report_id(value, f"{name}, {unit} {line}, Report_ID")


def _r5_release(header: dict, name: str, unit: str, block: str) -> str:
    if "release" not in header:
        raise InputError(f"{name}: the header block ({block}) has no Release row (5 or 5.1).")
    value, line = header["release"]
    return check_release(value, f"{name}, {unit} {line}, Release")


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
    return period_bounds(*found.groups(), where)


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
    month_columns = _month_columns(columns, last_total, data, f"{name}, {unit} {header_line}", begin, end)
    for line, cells in data:
        if len(cells) > width and not _blank(cells[width:]):
            raise InputError(f"{name}, {unit} {line}: {len(cells)} cells but the column header row ({unit} "
                             f"{header_line}) names {width} columns. Nothing was imported.")

    frame = _picked(data, sorted({i for group in layout.values() for i in group} | set(month_columns) | {total}))
    labels = {index: (columns[index] or "").strip() for index in month_columns}
    wide = frame.select(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("_row"),
        pl.col(f"c{layout['title'][0]}").alias("title"),
        _joined(layout["isbn"]).alias("isbn"),
        _joined(layout["issn"]).alias("issn"),
        _joined(layout["platform"]).alias("platform"),
        (pl.lit(metric, dtype=pl.String) if metric else pl.col(f"c{layout['metric_type'][0]}")).alias("metric_type"),
        pl.col(f"c{total}").alias("_total"),
        *[pl.col(f"c{index}").alias(label) for index, label in labels.items()],
    )
    located = _Lines(wide, name, fmt, lines=[line for line, _ in data])
    warnings = []
    for label in labels.values():
        _fail_on(wide, pl.col(label).is_not_null() & ~pl.col(label).str.contains(COUNT_PATTERN), located, label,
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


def _month_columns(columns: list[str], last_total: int, data: list[tuple[int, list[str]]], where: str,
                   begin: date, end: date) -> dict[int, str]:
    """{column index: "YYYY-MM"} of the month columns after the last Reporting_Period column,
    each a month of the reporting period, none twice; `where` names the column header row."""
    month_columns: dict[int, str] = {}
    for index in range(last_total + 1, len(columns)):
        label = (columns[index] or "").strip()
        if not label:
            if any(_cell(cells, index) for _, cells in data):
                raise InputError(f"{where}: column {index + 1} has no month in its header but holds counts.")
            continue
        month = month_of_header(label)
        if month is None:
            raise InputError(f"{where}, column {label!r}: not a month; the columns after "
                             f"Reporting_Period_Total must be months such as Jan-2022. Nothing was imported.")
        if month in month_columns.values():
            raise InputError(f"{where}, column {label!r}: the month {month} appears twice.")
        if not in_period(month, begin, end):
            raise InputError(f"{where}, column {label!r}: {month} lies outside the reporting "
                             f"period {begin} to {end} of the header block. Nothing was imported.")
        month_columns[index] = month
    if not month_columns:
        raise InputError(f"{where}: no month columns after Reporting_Period_Total (was the "
                         f"report run with Exclude_Monthly_Details?); run it with monthly details.")
    return month_columns


def _picked(data: list[tuple[int, list[str]]], wanted: list[int]) -> pl.DataFrame:
    """The wanted columns (indexes, sorted) of the data rows as text columns c<index>, stripped,
    blank cells null; short rows are padded with blanks."""
    pick, top = itemgetter(*wanted), wanted[-1]
    picked = [pick(cells) if len(cells) > top else pick(cells + [""] * (top + 1 - len(cells))) for _, cells in data]
    if len(wanted) == 1:
        picked = [(cell,) for cell in picked]
    by_index = dict(zip(wanted, zip(*picked))) if picked else {i: () for i in wanted}
    frame = pl.DataFrame({f"c{i}": pl.Series(list(by_index[i]), dtype=pl.String) for i in wanted})
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in frame.columns)
    return frame.with_columns(pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
                              for c in frame.columns)


def _joined(indexes: list[int]) -> pl.Expr:
    """The non-blank cells of columns c<index> joined with ";" (null when none)."""
    if not indexes:
        return pl.lit(None, dtype=pl.String)
    parts = pl.concat_str([pl.col(f"c{i}") for i in indexes], separator=";", ignore_nulls=True)
    return pl.when(parts == "").then(None).otherwise(parts)


def _count_value(text: pl.Expr) -> pl.Expr:
    """Int64 of a validated count cell (null stays null)."""
    return text.str.replace_all(",", "").str.replace(r"\.0+$", "").cast(pl.Int64, strict=False)


def _total_mismatches(wide: pl.DataFrame, cells: pl.DataFrame) -> int:
    totals = wide.select(
        "_row", pl.when(pl.col("_total").str.contains(COUNT_PATTERN)).then(_count_value(pl.col("_total"))).alias("_total")
    ).drop_nulls("_total")
    if totals.height == 0:
        return 0
    sums = cells.group_by("_row").agg(pl.col("count").sum().alias("_sum"))
    return totals.join(sums, on="_row", how="left").filter(pl.col("_total") != pl.col("_sum")).height
