"""Import of the canonical tabular kinds: items, loans, e-usage, reading-lists, annual-stats.

The import turns a file into the canonical table of docs/data-contract.md §1 in the
institution's private store, or fails with a message that names the file, the row and
the column, and then changes nothing: the new table is written to a temporary file
beside the old one and swapped in with one atomic rename only after it validated.

Personal and financial columns are dropped before anything is stored and are named in
the report; a financial column mapped onto a canonical name with --map is refused. Rows
whose required values are blank are rejected and counted; no row is lost silently
(read = kept + rejected).

annual-stats holds survey figures, one row per year: negative numbers are the surveys'
codes for "not reported" (IMLS: -1 not reported, -3 closed, -9 suppressed) and are stored
as null, counted per column in the report's warnings.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analytics.core import access
from analytics.ingest import identifiers
from analytics.core.access import Principal
from analytics.core.schema import (
    ACCEPTED_VALUES,
    CANONICAL,
    TABLE_FILES,
    Column,
    classify_sensitive,
    is_financial,
    normalize_column_name,
)
from analytics.ingest.reader import InputError, RawTable, read_table

KINDS = tuple(CANONICAL)
MAX_LISTED = 10

FORMAT_SYNONYMS = {
    "print": "print", "p": "print", "physical": "print", "book": "print", "paper": "print",
    "electronic": "electronic", "e": "electronic", "online": "electronic", "ebook": "electronic",
    "e-book": "electronic", "digital": "electronic", "e-resource": "electronic", "eresource": "electronic",
}
MATERIAL_SYNONYMS = {
    "book": "book", "books": "book", "monograph": "book", "ebook": "book", "e-book": "book",
    "journal": "journal", "journals": "journal", "serial": "journal", "periodical": "journal",
    "magazine": "journal", "media": "media", "dvd": "media", "video": "media", "audio": "media",
    "cd": "media", "other": "other",
}
CITATION_SYNONYMS = {
    "required": "required", "essential": "required", "core": "required", "recommended": "recommended",
    "further": "further", "background": "further", "optional": "further", "further reading": "further",
}


@dataclass
class ImportReport:
    kind: str
    file: str
    read: int = 0
    kept: int = 0
    rejected: int = 0
    rejected_rows: list[dict] = field(default_factory=list)
    dropped_columns: list[dict] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    mapped_columns: dict[str, str] = field(default_factory=dict)
    invalid_isbns: int = 0
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    match: dict = field(default_factory=dict)
    table: str | None = None
    mode: str = "replace"  # replace | update
    rows_before: int = 0  # rows of the table before this import
    rows_after: int = 0
    added: int = 0  # update mode: new ids
    updated: int = 0  # update mode: ids that were there and were replaced by the file's row

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "file": self.file, "read": self.read, "kept": self.kept,
            "rejected": self.rejected, "rejected_rows": self.rejected_rows,
            "dropped_columns": self.dropped_columns, "ignored_columns": self.ignored_columns,
            "mapped_columns": self.mapped_columns, "invalid_isbns": self.invalid_isbns,
            "encoding": self.encoding, "warnings": self.warnings, "match": self.match, "table": self.table,
            "mode": self.mode, "rows_before": self.rows_before, "rows_after": self.rows_after,
            "added": self.added, "updated": self.updated,
        }


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """'canonical=source' pairs from the command line into a dict."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--map {pair!r}: write it as canonical=source, e.g. item_id=Barcode.")
        canonical, source = (part.strip() for part in pair.split("=", 1))
        if not canonical or not source:
            raise InputError(f"--map {pair!r}: both sides are needed, e.g. item_id=Barcode.")
        mapping[normalize_column_name(canonical)] = source
    return mapping


def institution_dir(data_dir: Path, code: str) -> Path:
    return Path(data_dir) / "institutions" / code


# Tables whose rows have a local id: the file's rows may add to or update the table by it.
ID_COLUMNS = {"items": ("item_id",)}
MODES = ("replace", "update")


def import_file(data_dir: Path, actor: Principal, code: str, kind: str, path: str | Path, *,
                mapping: dict[str, str] | None = None, null_dates: list[str] | None = None,
                encoding: str | None = None, display_name: str | None = None, mode: str = "replace") -> ImportReport:
    """Validate a file and write the institution's canonical table from it: `replace` (a full
    export: the table becomes the file) or `update` (add the file's rows, replace those whose id
    is there already; items only). The previous table is kept (undo_import).

    Raises InputError (nothing changed) on a bad file, PermissionDenied if the actor
    may not import for this institution.
    """
    access.require_admin(actor, code, "the institution's data (imports)")
    if kind not in CANONICAL:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}.")
    if mode not in MODES:
        raise InputError(f"mode: {mode!r} is not one of {', '.join(MODES)}.")
    if mode == "update" and kind not in ID_COLUMNS:
        raise InputError(f"{kind}: add/update by id is for {', '.join(ID_COLUMNS)}; import a full export "
                         f"(replace) instead.")
    raw = read_table(path, encoding=encoding, display_name=display_name)
    report = ImportReport(kind=kind, file=raw.file_name, encoding=raw.encoding, warnings=list(raw.warnings), mode=mode)
    frame = canonicalize(raw, kind, mapping or {}, null_dates or [], report)
    target = institution_dir(data_dir, code) / TABLE_FILES[kind]
    report.table = str(target)
    exists = target.exists()
    report.rows_before = pl.scan_parquet(target).select(pl.len()).collect().item() if exists else 0
    if mode == "update" and exists:
        key = list(ID_COLUMNS[kind])
        old = pl.read_parquet(target)
        report.updated = frame.join(old.select(key).unique(), on=key, how="semi").height
        frame = pl.concat([old.join(frame.select(key), on=key, how="anti"), frame], how="diagonal_relaxed")
    report.added = report.kept - report.updated if mode == "update" else 0
    report.rows_after = frame.height
    if exists:
        _keep_previous(target)  # the last import can be undone
    write_atomically(frame, target)
    if kind == "items":
        _warn_orphan_loans(target.parent, frame, report)
    return report


def previous_path(target: Path) -> Path:
    return target.with_name(target.stem + ".previous.parquet")


def _keep_previous(target: Path) -> None:
    """The current table as the previous version: a hard link (no copy), or a copy where links fail."""
    previous = previous_path(target)
    previous.unlink(missing_ok=True)
    try:
        os.link(target, previous)
    except OSError:
        import shutil

        shutil.copyfile(target, previous)


def undo_import(data_dir: Path, actor: Principal, code: str, kind: str) -> dict:
    """Put the table back as it was before the last import (and keep the undone one, so that
    undoing again redoes it). Returns the row counts before and after."""
    access.require_admin(actor, code, "the institution's data (imports)")
    if kind not in TABLE_FILES:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(TABLE_FILES)}.")
    target = institution_dir(data_dir, code) / TABLE_FILES[kind]
    previous = previous_path(target)
    if not previous.exists():
        raise InputError(f"{kind}: there is no earlier version to go back to (only the last import can be undone).")
    current_rows = pl.scan_parquet(target).select(pl.len()).collect().item() if target.exists() else 0
    swap = target.with_name(target.stem + ".undo.parquet")
    if target.exists():
        os.replace(target, swap)
    os.replace(previous, target)
    if swap.exists():
        os.replace(swap, previous)
    restored = pl.scan_parquet(target).select(pl.len()).collect().item()
    return {"kind": kind, "rows_before_undo": current_rows, "rows_after_undo": restored}


def _warn_orphan_loans(folder: Path, items: pl.DataFrame, report: ImportReport) -> None:
    loans = folder / TABLE_FILES["loans"]
    if not loans.exists():
        return
    orphans = (pl.scan_parquet(loans).select("item_id").join(items.lazy().select("item_id"), on="item_id", how="anti")
               .select(pl.len().alias("loans"), pl.col("item_id").n_unique().alias("items")).collect().row(0))
    if orphans[0]:
        report.warnings.append(
            f"{orphans[0]:,} loan record(s) refer to {orphans[1]:,} item(s) that are not in the items table any more: "
            f"was this a partial export? Use add/update for new acquisitions, or undo this import.")


def canonicalize(raw: RawTable, kind: str, mapping: dict[str, str], null_dates: list[str],
                 report: ImportReport) -> pl.DataFrame:
    """Rename, drop, validate and type the columns of one kind. Pure: writes nothing."""
    columns = CANONICAL[kind]
    frame = _select_columns(raw, kind, mapping, report)
    report.read = frame.height
    frame = frame.with_row_index("_row", offset=1)
    frame = frame.with_columns(pl.col(c.name).str.strip_chars() for c in columns if c.name in frame.columns)
    frame = frame.with_columns(
        pl.when(pl.col(c.name) == "").then(None).otherwise(pl.col(c.name)).alias(c.name)
        for c in columns if c.name in frame.columns
    )
    for column in columns:
        if column.name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(column.name))

    frame = _reject_blank_required(frame, raw, columns, report)
    if kind == "items":
        frame = frame.with_columns(pl.col("pub_year").alias("_pub_year_raw"))
    if kind == "annual-stats":
        frame = frame.select("_row", *(c.name for c in columns), pl.col("year").alias("_year_raw"))
    typed = []
    for column in columns:
        typed.append(_parse_column(frame, raw, kind, column, null_dates))
    frame = frame.with_columns(typed)
    frame = _kind_rules(frame, raw, kind, report)
    report.kept = frame.height
    assert report.read == report.kept + report.rejected, "an import must never lose a row silently"
    return frame.drop("_row")


def _select_columns(raw: RawTable, kind: str, mapping: dict[str, str], report: ImportReport) -> pl.DataFrame:
    frame = raw.frame
    canonical_names = {c.name for c in CANONICAL[kind]}
    by_normalized: dict[str, str] = {}
    for original in frame.columns:
        normalized = normalize_column_name(original)
        if normalized in by_normalized:
            raise InputError(f"{raw.file_name}: two columns are both named {original!r} (after ignoring case "
                             f"and punctuation); rename one of them.")
        by_normalized[normalized] = original
    rename: dict[str, str] = {}
    for canonical, source in mapping.items():
        if canonical not in canonical_names:
            raise InputError(f"--map {canonical}={source}: {canonical!r} is not a column of {kind} "
                             f"({', '.join(sorted(canonical_names))}).")
        original = by_normalized.get(normalize_column_name(source))
        if original is None:
            raise InputError(f"--map {canonical}={source}: {raw.file_name} has no column {source!r}.")
        if is_financial(normalize_column_name(original)):
            raise InputError(
                f"--map {canonical}={source}: column {original!r} of {raw.file_name} carries money; financial "
                f"values are never stored or shared, so it cannot be imported as {canonical}. Nothing was imported."
            )
        rename[original] = canonical
        report.mapped_columns[canonical] = original
    mapped_sources = set(rename)
    for normalized, original in by_normalized.items():
        if original in mapped_sources:
            continue
        if normalized in canonical_names and normalized not in rename.values():
            rename[original] = normalized
    keep = [original for original in frame.columns if original in rename]
    # Named in the report's dropped_columns, once: not repeated among its warnings.
    report.dropped_columns, report.ignored_columns = unimported_columns(frame.columns, set(keep))
    selected = frame.select(keep).rename({k: rename[k] for k in keep})
    missing = [c.name for c in CANONICAL[kind] if c.required and c.name not in selected.columns]
    if missing:
        found = ", ".join(frame.columns[:20])
        raise InputError(
            f"{raw.file_name}: required column(s) missing for {kind}: {', '.join(missing)}. "
            f"Columns found: {found}. Rename them in the file or map them with --map {missing[0]}=<your column>."
        )
    return selected


def unimported_columns(columns: list[str], kept: set[str]) -> tuple[list[dict], list[str]]:
    """The columns of a file that are not imported: dropped ({"column", "reason"}: personal or
    financial, never stored) and ignored (not a column of the kind)."""
    dropped, ignored = [], []
    for original in columns:
        if original in kept:
            continue
        sensitivity = classify_sensitive(normalize_column_name(original))
        if sensitivity:
            dropped.append({"column": original, "reason": sensitivity})
        else:
            ignored.append(original)
    return dropped, ignored


def _reject_blank_required(frame: pl.DataFrame, raw: RawTable, columns: tuple[Column, ...],
                           report: ImportReport) -> pl.DataFrame:
    required = [c.name for c in columns if c.required]
    blank = pl.any_horizontal(pl.col(name).is_null() for name in required)
    rejected = frame.filter(blank)
    if rejected.height:
        report.rejected += rejected.height
        for row in rejected.head(MAX_LISTED).iter_rows(named=True):
            empty = [name for name in required if row[name] is None]
            report.rejected_rows.append(
                {"row": row["_row"], "reason": f"{raw.where(row['_row'])}: empty {', '.join(empty)}"}
            )
    return frame.filter(~blank)


def _fail_on(frame: pl.DataFrame, bad: pl.Expr, raw: RawTable, column: str, expected: str) -> None:
    """Raise an InputError naming the first bad rows of a column, if there are any."""
    offenders = frame.filter(bad).select("_row", column)
    if offenders.height == 0:
        return
    first_row, first_value = offenders.row(0)
    more = ""
    if offenders.height > 1:
        rows = ", ".join(str(r) for r in offenders["_row"].head(MAX_LISTED).to_list()[1:])
        more = f" {offenders.height - 1} more row(s) have the same problem (rows {rows}{', ...' if offenders.height > MAX_LISTED else ''})."
    raise InputError(
        f"{raw.file_name}, {raw.where(first_row)}, column {column}: {first_value!r} is not {expected}.{more} "
        f"Nothing was imported."
    )


DATE_EXPECTED = "a date (YYYY-MM-DD, M/D/YY or M/D/YYYY)"


def parse_dates(col: pl.Expr) -> pl.Expr:
    """Dates in the forms the data contract accepts; null where none fits."""
    iso = col.str.extract(r"^(\d{4}-\d{1,2}-\d{1,2})(?:[ T].*)?$", 1)
    us4 = col.str.extract(r"^(\d{1,2}/\d{1,2}/\d{4})(?: .*)?$", 1)
    us2 = col.str.extract(r"^(\d{1,2}/\d{1,2}/\d{2})(?: .*)?$", 1)
    return pl.coalesce(
        iso.str.to_date("%Y-%m-%d", strict=False),
        us4.str.to_date("%m/%d/%Y", strict=False),
        us2.str.to_date("%m/%d/%y", strict=False),
    )


def parse_month_or_date(col: pl.Expr) -> pl.Expr:
    month = col.str.extract(r"^(\d{4}-\d{1,2})$", 1)
    return pl.coalesce((month + "-01").str.to_date("%Y-%m-%d", strict=False), parse_dates(col))


# Cells that mean "not reported" in a measure (compared lower-cased; blank cells too).
MISSING_MARKERS = ("n/a", "na", "-", ".")
NUMBER_EXPECTED = ("a number (e.g. 7502, 7502.0, 7,502 or 1.5e3; leave the cell blank or write N/A when "
                   "not reported)")
_PLAIN_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_GROUPED_NUMBER = (r"^[+-]?[0-9]{1,3}(?:(?:,[0-9]{3})+|(?:[ \x{a0}\x{202f}][0-9]{3})+)(?:\.[0-9]*)?$")


def parse_number(col: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(value, missing): the Float64 value of a measure cell, null where none fits; and
    whether the cell says "not reported" (blank, N/A, NA, - or .).

    Accepted: 7502, 7502.0, -1, 1.5e3, and thousands grouped by commas or spaces in
    groups of three (7,502 and 1 234 567.5). A comma in any other place (1,5) is not a
    number, so a decimal comma is never misread as a thousands separator.
    """
    missing = col.is_null() | col.str.to_lowercase().is_in(MISSING_MARKERS)
    grouped = col.str.contains(_GROUPED_NUMBER)
    cleaned = pl.when(grouped).then(col.str.replace_all(r"[, \x{a0}\x{202f}]", "")).otherwise(col)
    value = pl.when(cleaned.str.contains(_PLAIN_NUMBER)).then(cleaned.cast(pl.Float64, strict=False))
    value = pl.when(~missing & value.is_finite()).then(value)
    return value, missing


YEAR_EXPECTED = "a year (e.g. 2020, FY2020, 2019-20, 2019/2020 or the period's end date, 06/30/2020)"
YEAR_RANGE = (1900, 2100)


def parse_fiscal_year(col: pl.Expr) -> pl.Expr:
    """The year a reporting period ends in, null where the cell holds none.

    2020, 2020.0 (a number cell), FY2020 and FY 2020 give 2020; a period "2019-20",
    "2019/20", "2019-2020" or "FY2019/2020" gives its second year, 2020 ("1999-00" gives
    2000), and must span at most one year; a date (YYYY-MM-DD, M/D/YYYY, M/D/YY, as the
    period's end date) gives its year: 06/30/2020 gives 2020.
    """
    text = col.str.replace(r"^(?i:fy)[\s_-]*", "")
    single = text.str.extract(r"^([0-9]{4})(?:\.0+)?$", 1).cast(pl.Int64, strict=False)
    period = r"^([0-9]{4})\s*[-/\x{2013}\x{2014}]\s*([0-9]{2}|[0-9]{4})$"
    start = text.str.extract(period, 1).cast(pl.Int64, strict=False)
    end_text = text.str.extract(period, 2)
    end = (pl.when(end_text.str.len_chars() == 4)
           .then(end_text.cast(pl.Int64, strict=False))
           .otherwise(start // 100 * 100 + end_text.cast(pl.Int64, strict=False)))
    end = pl.when(end < start).then(end + 100).otherwise(end)
    ended = pl.when((end - start).is_between(0, 1)).then(end)
    dated = parse_dates(text).dt.year().cast(pl.Int64)
    return pl.coalesce(single, ended, dated)


def _parse_column(frame: pl.DataFrame, raw: RawTable, kind: str, column: Column, null_dates: list[str]) -> pl.Expr:
    name = column.name
    col = pl.col(name)
    if column.kind == "str":
        expr = col
        if column.default is not None:
            expr = expr.fill_null(pl.lit(column.default))
        return expr.alias(name)
    if column.kind == "int":
        cleaned = col.str.replace_all(r"[,\s]", "")
        as_float = cleaned.cast(pl.Float64, strict=False)
        bad = col.is_not_null() & (as_float.is_null() | (as_float != as_float.floor()) | (as_float.abs() > 1e15))
        _fail_on(frame, bad, raw, name, "a whole number")
        expr = as_float.cast(pl.Int64)
        if column.default is not None:
            expr = expr.fill_null(column.default)
        return expr.alias(name)
    if column.kind == "year":
        # Catalogue years come decorated ("c2009.", "[2015]", "2009-2012"): take the first
        # plausible 4-digit year. A value without one is left empty and counted, not fatal.
        return col.str.extract(r"(1[0-9]{3}|20[0-9]{2}|2100)", 1).cast(pl.Int64).alias(name)
    if column.kind == "fiscal_year":
        year = parse_fiscal_year(col)
        _fail_on(frame, col.is_not_null() & year.is_null(), raw, name, YEAR_EXPECTED)
        low, high = YEAR_RANGE
        _fail_on(frame, ~year.is_between(low, high), raw, name, f"a year between {low} and {high}")
        return year.alias(name)
    if column.kind == "number":
        value, missing = parse_number(col)
        _fail_on(frame, ~missing & value.is_null(), raw, name, NUMBER_EXPECTED)
        return value.alias(name)
    if column.kind in ("date", "month_or_date"):
        source = col
        if null_dates:
            source = pl.when(col.is_in(null_dates)).then(None).otherwise(col)
        parsed = parse_dates(source) if column.kind == "date" else parse_month_or_date(source)
        expected = DATE_EXPECTED if column.kind == "date" else "a month (YYYY-MM) or " + DATE_EXPECTED
        if not null_dates:
            expected += (" (if your system writes it for “never”, declare it: --null-date with that value on the "
                         "command line, or under “Dates that mean never” on the Import data page)")
        _fail_on(frame, source.is_not_null() & parsed.is_null(), raw, name, expected)
        return parsed.alias(name)
    raise ValueError(f"unknown column kind {column.kind}")


def _accepted(frame: pl.DataFrame, raw: RawTable, kind: str, name: str, synonyms: dict[str, str]) -> pl.DataFrame:
    mapped = pl.col(name).str.to_lowercase().replace_strict(synonyms, default=None, return_dtype=pl.String)
    allowed = ACCEPTED_VALUES[(kind, name)]
    _fail_on(frame, pl.col(name).is_not_null() & mapped.is_null(), raw, name, "one of " + ", ".join(allowed))
    return frame.with_columns(mapped.alias(name))


def _kind_rules(frame: pl.DataFrame, raw: RawTable, kind: str, report: ImportReport) -> pl.DataFrame:
    if kind == "items":
        frame = _accepted(frame, raw, kind, "format", FORMAT_SYNONYMS)
        frame = _accepted(frame, raw, kind, "material_type", MATERIAL_SYNONYMS)
        frame = _count_unreadable_years(frame, report)
        _fail_on(frame, pl.col("lifetime_loans") < 0, raw, "lifetime_loans", "zero or more")
        frame = _reject(frame, raw, ~pl.col("item_id").is_first_distinct(), "item_id appears on an earlier row",
                        report)
        frame = _identifiers(frame, report)
    elif kind == "loans":
        _fail_on(frame, pl.col("count") < 0, raw, "count", "zero or more")
        _fail_on(frame, pl.col("renewals") < 0, raw, "renewals", "zero or more")
    elif kind == "e-usage":
        _fail_on(frame, pl.col("count") < 0, raw, "count", "zero or more")
        frame = _identifiers(frame, report)
    elif kind == "reading-lists":
        frame = _accepted(frame, raw, kind, "citation_type", CITATION_SYNONYMS)
        _fail_on(frame, pl.col("enrolment") < 0, raw, "enrolment", "zero or more")
        frame = _identifiers(frame, report)
    elif kind == "annual-stats":
        frame = _annual_stats_rules(frame, raw, report)
    elif kind == "retention-commitments":
        frame = retention_rules(frame, raw, report)
    return frame


def retention_rules(frame: pl.DataFrame, raw: RawTable, report: ImportReport, source: str = "table") -> pl.DataFrame:
    """Commitments: a work must be identified (isbn, issn, oclc_number, or title and author);
    retain_until before committed_on is an error of the row (rejected); the work key as items
    have it; `source` says where the row came from ("table" or "marc")."""
    identified = (pl.col("isbn").is_not_null() | pl.col("issn").is_not_null() | pl.col("oclc_number").is_not_null()
                  | (pl.col("title").is_not_null() & pl.col("author").is_not_null()))
    frame = _reject(frame, raw, ~identified, "no isbn, issn, oclc_number, or title and author: which work is "
                                             "committed cannot be told", report)
    frame = _reject(frame, raw, pl.col("retain_until") < pl.col("committed_on"),
                    "retain_until is before committed_on", report)
    frame = _identifiers(frame, report)
    frame = _reject(frame, raw, pl.col("work_key").is_null(), "no usable identifier (ISBNs invalid, no title "
                                                              "and author)", report)
    names = [c.name for c in CANONICAL["retention-commitments"]]
    return frame.select("_row", *names, "work_key", "match_method", pl.lit(source).alias("source"))


def _annual_stats_rules(frame: pl.DataFrame, raw: RawTable, report: ImportReport) -> pl.DataFrame:
    """One row per year; negative survey codes read as not reported; sorted by year."""
    if frame.height == 0:
        first = report.rejected_rows[0]["reason"] if report.rejected_rows else "no data rows"
        raise InputError(f"{raw.file_name}: no row has a year; all {report.rejected} row(s) were rejected "
                         f"(first: {first}). Nothing was imported.")
    repeated = frame.filter(~pl.col("year").is_first_distinct()).sort("_row")
    if repeated.height:
        again = repeated.row(0, named=True)
        first = frame.filter(pl.col("year") == again["year"]).sort("_row").row(0, named=True)
        more = f" {repeated.height - 1} more row(s) repeat a year." if repeated.height > 1 else ""
        raise InputError(
            f"{raw.file_name}, {raw.where(again['_row'])}, column year: {again['_year_raw']!r} is the year "
            f"{again['year']} again; {raw.where(first['_row'])} already has it ({first['_year_raw']!r}). "
            f"One row per year.{more} Nothing was imported."
        )
    measures = [c.name for c in CANONICAL["annual-stats"] if c.kind == "number"]
    for name in measures:
        negative = frame.filter(pl.col(name) < 0)[name]
        if negative.len():
            codes = sorted(negative.unique().to_list(), reverse=True)
            shown = ", ".join(str(int(v)) if v.is_integer() else repr(v) for v in codes[:5])
            shown += ", ..." if len(codes) > 5 else ""
            noun = "negative survey code" if negative.len() == 1 else "negative survey codes"
            report.warnings.append(f"{name}: {negative.len()} {noun} ({shown}) read as not reported.")
    # abs() only turns -0.0 into 0.0: every negative value is null by then.
    frame = frame.with_columns(pl.when(pl.col(n) < 0).then(None).otherwise(pl.col(n).abs()).alias(n)
                               for n in measures)
    return frame.drop("_year_raw").sort("year")


def _count_unreadable_years(frame: pl.DataFrame, report: ImportReport) -> pl.DataFrame:
    unreadable = frame.filter(pl.col("_pub_year_raw").is_not_null() & pl.col("pub_year").is_null())
    if unreadable.height:
        examples = ", ".join(repr(v) for v in unreadable["_pub_year_raw"].unique().head(3).to_list())
        report.warnings.append(f"pub_year: {unreadable.height} value(s) without a year (e.g. {examples}) "
                               f"were left empty.")
    return frame.drop("_pub_year_raw")


def _reject(frame: pl.DataFrame, raw: RawTable, condition: pl.Expr, reason: str, report: ImportReport) -> pl.DataFrame:
    mask = frame.select(condition.fill_null(False)).to_series()
    rejected = int(mask.sum())
    if not rejected:
        return frame
    report.rejected += rejected
    for row in frame.filter(mask)["_row"].head(MAX_LISTED).to_list():
        if len(report.rejected_rows) < MAX_LISTED:
            report.rejected_rows.append({"row": row, "reason": f"{raw.where(row)}: {reason}"})
    return frame.filter(~mask)


def _identifiers(frame: pl.DataFrame, report: ImportReport) -> pl.DataFrame:
    """Normalize identifiers and derive the work key. Invalid ISBNs are dropped, the row kept."""
    has = {name: name in frame.columns for name in ("isbn", "issn", "oclc_number")}
    enriched = identifiers.add_identifier_columns(
        frame,
        isbn_col="isbn" if has["isbn"] else None,
        issn_col="issn" if has["issn"] else None,
        oclc_col="oclc_number" if has["oclc_number"] else None,
    )
    report.invalid_isbns = int(enriched["invalid_isbn_count"].sum() or 0)
    if report.invalid_isbns:
        report.warnings.append(
            f"{report.invalid_isbns} ISBN(s) failed the check digit or were not ISBNs; they were left out "
            f"and their rows kept."
        )
    keyed = identifiers.assign_work_keys(enriched)
    report.match = identifiers.match_report(keyed)
    updates = [pl.col("isbn13_list").list.join(";").replace("", None).alias("isbn")]
    if has["issn"]:
        updates.append(pl.col("issn_norm").alias("issn"))
    if has["oclc_number"]:
        updates.append(pl.col("oclc_norm").alias("oclc_number"))
    keyed = keyed.with_columns(updates)
    return keyed.drop([c for c in ("isbn13_list", "issn_norm", "oclc_norm", "invalid_isbn_count")
                       if c in keyed.columns])


def write_atomically(frame: pl.DataFrame, target: Path) -> None:
    """Write next to the target, then rename over it: readers see the old or the new file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".parquet.tmp", dir=target.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp_name, compression="zstd", statistics=True)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
