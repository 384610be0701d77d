"""COUNTER R5 and R5.1 title reports as SUSHI JSON.

R5: ``Report_Items`` -> ``Performance`` -> ``Period`` + ``Instance``; R5.1: ``Report_Items``
-> ``Attribute_Performance`` -> ``Performance`` {metric: {"2022-01": n}}. A title row is an
item or attribute set and one metric, the same unit as a data line of the tabular form,
so a TSV and its JSON agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from analytics.core.months import add, count, month_of
from analytics.core.schema import normalize_column_name
from analytics.ingest.counter_header import (
    COUNT_EXPECTED,
    COUNT_PATTERN,
    DATE_PATTERN,
    ISBN_COLUMNS,
    ISSN_COLUMNS,
    ParsedReport,
    check_release,
    check_report_id,
    in_period,
    month_of_header,
    parse_day,
    period_bounds,
)
from analytics.ingest.reader import InputError, RawTable, decode


@dataclass
class _Labels(RawTable):
    """A JSON report's title rows, located by their path in the document."""

    labels: list[str] = field(default_factory=list)

    def where(self, data_row: int) -> str:
        return self.labels[data_row - 1]


def read_json(path: Path, name: str) -> ParsedReport:
    """Read and validate a COUNTER R5 / R5.1 report in SUSHI JSON."""
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
    report_id = check_report_id(header.get("Report_ID"), f"{name}, Report_Header.Report_ID")
    release = check_release(header.get("Release"), f"{name}, Report_Header.Release")
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
    months = [add(month_of(begin), n) for n in range(count(month_of(begin), month_of(end)))]
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
    if not re.fullmatch(DATE_PATTERN, begin.strip()) or not re.fullmatch(DATE_PATTERN, end.strip()):
        raise InputError(f"{where}: Begin_Date {begin[:20]!r} / End_Date {end[:20]!r} are not dates (YYYY-MM-DD).")
    return period_bounds(begin.strip(), end.strip(), where)


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
        if not in_period(month, self.begin, self.end):
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
                month = month_of_header(str(key)) if re.fullmatch(r"[0-9]{4}-[0-9]{2}", str(key)) else None
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
        begin = parse_day(str(period.get("Begin_Date", "")), first=True) if re.fullmatch(
            DATE_PATTERN, str(period.get("Begin_Date", "")).strip()) else None
        end = parse_day(str(period.get("End_Date", "")), first=False) if re.fullmatch(
            DATE_PATTERN, str(period.get("End_Date", "")).strip()) else None
        if begin is None or end is None:
            raise InputError(f"{self.name}, {at}.Period: Begin_Date / End_Date are not dates (YYYY-MM-DD).")
        if month_of(begin) != month_of(end):
            raise InputError(f"{self.name}, {at}.Period: {begin} to {end} is not one month; run the report with "
                             f"Granularity=Month.")
        return month_of(begin)


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
    if isinstance(value, str) and re.fullmatch(COUNT_PATTERN, value.strip()):
        value = int(value.strip().replace(",", "").split(".")[0])
    if isinstance(value, int) and 0 <= value < 10**15:
        return value
    raise InputError(f"{where}: Count {str(value)[:30]!r} is not {COUNT_EXPECTED}. Nothing was imported.")
