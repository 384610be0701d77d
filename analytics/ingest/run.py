"""One entry point for every import kind, a dry run, and suggestions for the import page.

Kinds: the canonical tabular kinds (items, loans, e-usage, reading-lists, annual-stats;
tabular.py), `marc` (MARC 21 / MARCXML into items; marc.py) and `counter` (COUNTER
R5 / R5.1 / R4 title reports into e-usage; counter.py). A dry run imports into a
throwaway directory, so the report a user confirms is exactly what the import will do,
and the institution's data is untouched until they confirm.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from analytics.core.access import Principal
from analytics.core.schema import CANONICAL, TABLE_FILES, normalize_column_name
from analytics.ingest.reader import InputError, read_table
from analytics.ingest.tabular import ImportReport, import_file

SPECIAL_KINDS = ("marc", "counter")
ALL_KINDS = (*CANONICAL, *SPECIAL_KINDS)
TARGET = {"marc": "items", "counter": "e-usage"}
KIND_LABELS = {
    "items": "Items (holdings export: one row per copy or e-portfolio)",
    "loans": "Loans (checkout events or counts per month)",
    "e-usage": "E-usage (monthly COUNTER-derived counts, canonical columns)",
    "reading-lists": "Reading lists (citations per list and term)",
    "annual-stats": "Annual statistics (survey figures per year)",
    "retention-commitments": "Retention commitments (shared print: program, committed on, retain until per work)",
    "marc": "MARC 21 records (binary .mrc or MARCXML) → items, and 583 retention commitments",
    "counter": "COUNTER report (R5/R5.1 TR views, R4 BR/JR; TSV, CSV, XLSX or SUSHI JSON) → e-usage",
}

# Column names of common exports, normalized, for the suggested mapping.
SYNONYMS = {
    "item_id": ("barcode", "item_barcode", "item_pid", "itemid", "item_number", "item_id"),
    "title_id": ("mms_id", "bib_id", "bibid", "record_number", "bib_record", "catalog_id", "title_id"),
    "title": ("title", "title_proper", "item_title"),
    "author": ("author", "creator", "main_author"),
    "isbn": ("isbn", "isbns", "isbn_13", "isbn13"),
    "issn": ("issn", "print_issn", "online_issn"),
    "oclc_number": ("oclc", "oclc_number", "oclc_no", "ocolc"),
    "publisher": ("publisher", "publisher_name"),
    "pub_year": ("pub_year", "publication_year", "publication_date", "year", "date1", "pubyear"),
    "call_number": ("call_number", "callnumber", "call_no", "lc_call_number", "permanent_call_number"),
    "acquired_date": ("acquired_date", "created", "creation_date", "item_created_date", "date_added",
                      "receiving_date"),
    "withdrawn_date": ("withdrawn_date", "withdrawal_date", "deleted_date"),
    "lifetime_loans": ("lifetime_loans", "checkouts", "total_checkouts", "lifetime_checkouts", "loans",
                       "circ_count"),
    "last_loan_date": ("last_loan_date", "last_checkout", "last_checkout_date", "last_loan", "last_circ_date"),
    "loan_date": ("loan_date", "checkout_date", "loan_month", "month"),
    "count": ("count", "checkouts", "loans"),
    "month": ("month", "usage_month", "period"),
    "metric_type": ("metric_type", "metric"),
    "list_id": ("list_id", "reading_list_id", "list"),
    "course_code": ("course_code", "course"),
    "term": ("term", "semester"),
    "total_circulation": ("total_circulation", "totcir", "circulation"),
    "gate_count": ("gate_count", "visits", "gatecount"),
    "staff_fte": ("staff_fte", "totstaff"),
    "population_served": ("population_served", "popu_lsa", "population"),
    "program": ("program", "shared_print_program", "retention_program", "programme"),
    "committed_on": ("committed_on", "commitment_date", "committed", "date_committed"),
    "retain_until": ("retain_until", "retention_end", "expires", "expiry_date", "retain_through"),
}


def run_import(data_dir: Path, actor: Principal, code: str, kind: str, path: str | Path, *,
               mapping: dict[str, str] | None = None, null_dates: list[str] | None = None,
               encoding: str | None = None, display_name: str | None = None, progress=None,
               mode: str = "replace", symbols: tuple[str, ...] = ()) -> ImportReport:
    """Import one file of any kind (raises InputError with nothing changed on a bad file)."""
    if kind == "marc":
        from analytics.ingest.marc import import_marc

        return import_marc(data_dir, actor, code, path, display_name=display_name, progress=progress,
                           encoding=encoding, symbols=symbols)
    if kind == "counter":
        from analytics.ingest.counter import import_counter

        return import_counter(data_dir, actor, code, path, display_name=display_name, progress=progress)
    if kind not in CANONICAL:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(ALL_KINDS)}.")
    if progress:
        progress(0, 1)
    report = import_file(data_dir, actor, code, kind, path, mapping=mapping, null_dates=null_dates,
                         encoding=encoding, display_name=display_name, mode=mode)
    if progress:
        progress(1, 1)
    return report


def dry_run(data_dir: Path, actor: Principal, code: str, kind: str, path: str | Path, **options) -> ImportReport:
    """The report the import would give, computed in a throwaway copy; the real store is untouched.
    The table the kind writes is copied in first, so a merging import (COUNTER) reports truly."""
    target = TARGET.get(kind, kind)
    with tempfile.TemporaryDirectory(prefix="analytics-dry-run-") as scratch:
        existing = Path(data_dir) / "institutions" / code / TABLE_FILES.get(target, "")
        if target in TABLE_FILES and existing.is_file():
            copy = Path(scratch) / "institutions" / code / TABLE_FILES[target]
            copy.parent.mkdir(parents=True)
            shutil.copyfile(existing, copy)
        return run_import(Path(scratch), actor, code, kind, path, **options)


def suggest_kind(file_name: str, head: bytes) -> str:
    """A first guess at the kind from the file name and its first bytes."""
    name = file_name.lower()
    text = head[:4096].decode("utf-8", errors="ignore")
    if name.endswith((".mrc", ".marc", ".dat")) or (len(head) > 24 and head[:5].isdigit() and b"\x1e" in head):
        return "marc"
    if "<record" in text and ("marc" in text.lower() or "<leader" in text):
        return "marc"
    if "Report_Header" in text or re.search(r"^\W*(Report_Name|Report Name)\b", text, re.M) or \
            re.search(r"(Journal|Book) Report \d", text):
        return "counter"
    lowered = normalize_column_name(text.splitlines()[0]) if text else ""
    # Whole column names: an item export's last_checkout_date does not make it a loans file.
    names = {normalize_column_name(c) for c in re.split(r"[,\t;|]", text.splitlines()[0])} if text else set()
    if names & {"loan_date", "checkout_date"}:
        return "loans"
    if "metric_type" in names:
        return "e-usage"
    if "list_id" in names:
        return "reading-lists"
    if re.search(r"(^|_)(year|fy)(_|$)", lowered) and any(k in lowered for k in ("circ", "visits", "volumes",
                                                                                   "gate", "staff")):
        return "annual-stats"
    return "items"


def source_columns(path: str | Path, display_name: str | None = None, rows: int = 10):
    """The header and first rows of a tabular file, as text (for the preview and mapping)."""
    table = read_table(path, display_name=display_name)
    return table.frame.head(rows), table


def suggest_mapping(kind: str, columns: list[str]) -> dict[str, str]:
    """canonical -> source column for the canonical columns a file does not name exactly."""
    if kind not in CANONICAL:
        return {}
    normalized = {normalize_column_name(c): c for c in columns}
    suggestion: dict[str, str] = {}
    taken: set[str] = set()
    for column in CANONICAL[kind]:
        if column.name in normalized:
            taken.add(normalized[column.name])
    for column in CANONICAL[kind]:
        if column.name in normalized:
            continue
        for candidate in SYNONYMS.get(column.name, ()):
            source = normalized.get(candidate)
            if source and source not in taken:
                suggestion[column.name] = source
                taken.add(source)
                break
    return suggestion
