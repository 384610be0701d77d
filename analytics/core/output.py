"""Printing records as a table, CSV or JSON for the CLI (docs/data-contract.md §5), and the one
rule every CSV the product writes follows for text (safe_csv_text, safe_csv_frame)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime

# OWASP's CSV-injection rule: a spreadsheet reads a cell that starts with = + - @ (or a tab or
# carriage return, which some strip before deciding) as a formula. Titles, authors and
# publishers come from other members' catalogues, so such a text cell is written with a
# leading apostrophe, which spreadsheets show as text. Leading blanks and control characters
# are looked through, as are the full-width forms of the four signs.
_FORMULA = re.compile(r"^(?:[\t\r]|[\s\x00-\x1f]*[=+\-@\uff1d\uff0b\uff0d\uff20])")
_FORMULA_PATTERN = r"^(?:[\t\r]|[\s\x00-\x1f]*[=+\-@\x{ff1d}\x{ff0b}\x{ff0d}\x{ff20}])"


def safe_csv_text(value: str) -> str:
    """`value` as a CSV cell that no spreadsheet evaluates: prefixed with ' when it would start a formula."""
    return "'" + value if _FORMULA.match(value) else value


def safe_csv_frame(frame):
    """A polars frame with every text column made safe for CSV (numbers are left as they are)."""
    import polars as pl

    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_PATTERN)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "; ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _csv_cell(value) -> str:
    """Text (and lists of it) through safe_csv_text; numbers and dates as _cell writes them."""
    cell = _cell(value)
    return safe_csv_text(cell) if isinstance(value, (str, list, tuple)) else cell


def render(records: list[dict], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(records, default=_json_default, indent=2, ensure_ascii=False)
    if not records:
        return "" if fmt == "csv" else "(no rows)"
    columns = list(records[0].keys())
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _csv_cell(record.get(k)) for k in columns})
        return buffer.getvalue().rstrip("\n")
    rows = [[_cell(r.get(c)) for c in columns] for r in records]
    widths = [min(60, max(len(c), *(len(row[i]) for row in rows))) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    for row in rows:
        lines.append("  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(row, widths)))
    return "\n".join(lines)


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
