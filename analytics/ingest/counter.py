"""COUNTER title reports into the canonical e-usage table (docs/data-contract.md §1, KIND counter).

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

The modules: counter_header.py (supported reports, header checks, months),
counter_tabular.py (the TSV, CSV and Excel layouts of R5 / R5.1 and R4), counter_json.py
(SUSHI JSON) and counter_merge.py (typing the monthly cells, and the merge rule: why a
second upload never doubles counts).
"""

from __future__ import annotations

from pathlib import Path

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import TABLE_FILES
from analytics.ingest.counter_header import ParsedReport
from analytics.ingest.counter_json import read_json
from analytics.ingest.counter_merge import CounterReport, Progress, merge, monthly_rows, stored_table
from analytics.ingest.counter_tabular import read_tabular
from analytics.ingest.reader import InputError, file_format
from analytics.ingest.tabular import institution_dir, write_atomically

KIND = "counter"


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
    new_rows, scope = monthly_rows(parsed, report, progress)
    target = institution_dir(data_dir, code) / TABLE_FILES["e-usage"]
    table = merge(stored_table(target, name), new_rows, scope, report)
    report.table = str(target)
    report.table_rows = table.height
    write_atomically(table, target)
    return report


def read_counter(path: str | Path, *, display_name: str | None = None) -> ParsedReport:
    """Read and validate a COUNTER report file without storing anything."""
    path = Path(path)
    name = display_name or path.name
    if not path.exists():
        raise InputError(f"{name}: no such file.")
    if path.suffix.lower() == ".json":
        return read_json(path, name)
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
    return read_tabular(path, name, fmt)
