"""What the header of a COUNTER report says, checked: report, release, reporting period, months.

Shared by the two readers, counter_tabular.py (TSV, CSV, Excel) and counter_json.py (SUSHI
JSON); ParsedReport is what both hand to the import (counter.py).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from analytics.core.months import first_day, month_of
from analytics.ingest.reader import InputError, RawTable

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

ISBN_COLUMNS = ("isbn", "print_isbn", "online_isbn")
ISSN_COLUMNS = ("print_issn", "online_issn", "issn", "linking_issn")
PERIOD_YEARS = (1995, 2100)  # COUNTER began in 2003; anything outside is a typo or garbage
COUNT_EXPECTED = "a whole number of zero or more (a COUNTER count)"
# A count cell: digits, or thousands grouped by commas (spreadsheet exports), an optional
# ".0" tail (Excel numbers); at most 15 digits so it fits an Int64.
COUNT_PATTERN = r"^(?:[0-9]{1,15}|[0-9]{1,3}(?:,[0-9]{3}){1,4})(?:\.0+)?$"
DATE_PATTERN = r"[0-9]{4}-[0-9]{1,2}(?:-[0-9]{1,2})?"
_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_MONTH_NAMES |= {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTH_NAMES["sept"] = 9


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


def check_report_id(value: object, where: str) -> str:
    report_id = str(value or "").strip().upper().replace(" ", "_")
    if report_id in R5_REPORTS:
        return report_id
    if not report_id:
        raise InputError(f"{where}: empty; expected one of {', '.join(R5_REPORTS)}.")
    family = REPORT_FAMILIES.get(report_id.split("_")[0], "not a title report")
    raise InputError(f"{where}: {report_id!r} is {family}; KIND counter imports title usage only. Supported: "
                     f"{SUPPORTED_TEXT}. Nothing was imported.")


def check_release(value: object, where: str) -> str:
    text = str(value if value is not None else "").strip()
    if text in R5_RELEASES:
        return R5_RELEASES[text]
    raise InputError(f"{where}: {text[:20]!r} is not a supported COUNTER release (5, 5.1; Release 4 reports "
                     f"start with their name, e.g. 'Journal Report 1 (R4)'). Nothing was imported.")


def period_bounds(begin_text: str, end_text: str, where: str) -> tuple[date, date]:
    begin, end = parse_day(begin_text, first=True), parse_day(end_text, first=False)
    if begin is None or end is None:
        raise InputError(f"{where}: {begin_text!r} to {end_text!r} is not a valid pair of dates.")
    if begin > end:
        raise InputError(f"{where}: the period begins ({begin}) after it ends ({end}).")
    if begin.year < PERIOD_YEARS[0] or end.year > PERIOD_YEARS[1]:
        raise InputError(f"{where}: {begin} to {end} is not a plausible COUNTER reporting period "
                         f"(years {PERIOD_YEARS[0]} to {PERIOD_YEARS[1]}).")
    return begin, end


def parse_day(text: str, *, first: bool) -> date | None:
    """A YYYY-MM-DD date; YYYY-MM means the first (or last) day of that month."""
    parts = [int(p) for p in str(text).strip().split("-")]
    try:
        if len(parts) == 2:
            year, month = parts
            return date(year, month, 1 if first else calendar.monthrange(year, month)[1])
        return date(*parts) if len(parts) == 3 else None
    except (ValueError, TypeError, OverflowError):
        return None


def month_of_header(text: str) -> str | None:
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


def in_period(month: str, begin: date, end: date) -> bool:
    """Whether the month ("YYYY-MM") lies in the reporting period begin..end."""
    return month_of(begin) <= month and first_day(month) <= end
