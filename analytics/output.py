"""Printing records as a table, CSV or JSON for the CLI (DATA_CONTRACT.md §5)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime


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
            writer.writerow({k: _cell(record.get(k)) for k in columns})
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
