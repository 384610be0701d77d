"""MARC records counted, rejected or turned into item rows, then typed by the canonical items import.

Broken records are skipped and reported by position: "record 4 (byte 381)", or in
MARCXML "record 4 (line 120)", with the reason. UNIMARC records (title in 200, no 245)
and MARC 21 holdings or authority records are refused the same way; a file with at
least as many UNIMARC records as usable ones fails as a whole. read, kept and rejected count records (read = kept +
rejected); report.items counts the items written. The import fails (InputError, nothing
changed) when no record is usable; a MARCXML file that is not well-formed fails as a
whole, because the records after the error cannot be counted.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from analytics.ingest.marc_fields import BIB_COLUMNS, Fields, Rejected, Text, bibliographic, commitments
from analytics.ingest.reader import InputError, RawTable
from analytics.ingest.tabular import MAX_LISTED, ImportReport, canonicalize

FRAME_BATCH = 50_000
COLUMNS = ("item_id", "call_number", *BIB_COLUMNS)
ENCODING_LABELS = {"marc-8": "MARC-8", "utf-8": "UTF-8", "cp1251": "Windows-1251"}


@dataclass
class MarcImportReport(ImportReport):
    """The import report, with the items the records gave."""

    items: int = 0
    items_rejected: int = 0
    records_without_items: int = 0
    item_fields: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, int] = field(default_factory=dict)
    commitments: int = 0  # retention commitments (583) stored
    commitments_table: str | None = None

    def as_dict(self) -> dict:
        return {**super().as_dict(), "items": self.items, "items_rejected": self.items_rejected,
                "records_without_items": self.records_without_items, "item_fields": self.item_fields,
                "encodings": self.encodings, "commitments": self.commitments,
                "commitments_table": self.commitments_table}


@dataclass
class _ItemRows(RawTable):
    """The items as canonical text columns; canonicalize names a row by its record."""

    collector: Collector | None = None

    def where(self, data_row: int) -> str:
        return self.collector.item_place(data_row - 1)


@dataclass
class _CommitmentRows(RawTable):
    """The commitments as canonical text columns; canonicalize names a row by its record."""

    collector: Collector | None = None

    def where(self, data_row: int) -> str:
        return f"{self.collector.place(self.collector.commitment_records[data_row - 1])}, 583"


class Collector:
    """Counts records, keeps the rejected ones, and accumulates items as text columns
    (in frames of FRAME_BATCH rows)."""

    def __init__(self, name: str, unit: str, own_symbols: frozenset[str] = frozenset()) -> None:
        self.name = name
        # Retention commitments (583): rows of text columns, the record of each, and problems.
        self.own_symbols = frozenset(s.lower() for s in own_symbols)
        self.commitment_rows: list[dict] = []
        self.commitment_records: list[int] = []
        self.commitment_problems: list[str] = []
        self.others: Counter[str] = Counter()  # commitments whose $5 names another institution
        self.unit = unit  # "byte" (binary) or "line" (MARCXML)
        self.read = 0
        self.positions = array("q")  # byte offset or line of each record
        self.rejections: list[tuple[int, str]] = []  # (record number, reason)
        self.reasons: Counter[str] = Counter()
        self.unimarc = 0
        self.encodings: Counter[str] = Counter()
        self.fallbacks: Counter[tuple[str, str]] = Counter()  # (declared, used)
        self.item_fields: Counter[str] = Counter()
        self.without_items = 0
        self.item_records = array("q")  # record number of each item
        self.item_numbers = array("l")  # place of each item in its record, 0 when it is the only one
        self.columns: dict[str, list] = {c: [] for c in COLUMNS}
        self.batches: list[pl.DataFrame] = []
        self.xml_encoding: str | None = None

    def start(self, position: int) -> int:
        """Count a record read (usable or not); its 1-based number."""
        self.read += 1
        self.positions.append(position)
        return self.read

    def place(self, number: int) -> str:
        return f"record {number} ({self.unit} {self.positions[number - 1]})"

    def item_place(self, index: int) -> str:
        place = self.place(self.item_records[index])
        return f"{place}, item {self.item_numbers[index]}" if self.item_numbers[index] else place

    def add(self, number: int, leader: str, fields: Fields, text: Text, label: str) -> None:
        try:
            bib, item_tag, items = bibliographic(leader, fields, text)
        except Rejected as exc:
            self.unimarc += str(exc).startswith("looks like UNIMARC")
            raise
        except (UnicodeError, ValueError, LookupError, TypeError, AttributeError) as exc:
            raise Rejected(f"cannot be decoded as {ENCODING_LABELS.get(label, label)} "
                            f"({type(exc).__name__}: {exc})") from None
        self.encodings[label] += 1
        if item_tag is None:
            self.without_items += 1
        else:
            self.item_fields[item_tag] += len(items)
        if "583" in fields:
            self._commitments(number, bib, fields, text)
        stem = bib["title_id"] or f"record{number}"
        columns = self.columns
        for n, (barcode, call_number) in enumerate(items, start=1):
            columns["item_id"].append(barcode or f"{stem}-{n}")
            columns["call_number"].append(bib["call_number"] or call_number)
            for name in BIB_COLUMNS:
                columns[name].append(bib[name])
            self.item_records.append(number)
            self.item_numbers.append(n if len(items) > 1 else 0)
        if len(columns["item_id"]) >= FRAME_BATCH:
            self._flush()

    def _commitments(self, number: int, bib: dict, fields: Fields, text: Text) -> None:
        found, problems = commitments(fields, text)
        self.commitment_problems.extend(f"{self.place(number)}, {problem}" for problem in problems)
        for row in found:
            institution = row.pop("institution")
            if institution and institution.lower() not in self.own_symbols:
                self.others[institution] += 1  # another institution's commitment: not ours to claim
                continue
            self.commitment_rows.append({**{c: bib[c] for c in ("isbn", "issn", "oclc_number", "title", "author")},
                                         **row})
            self.commitment_records.append(number)

    def commitments_frame(self) -> tuple[ImportReport | None, pl.DataFrame | None]:
        """The records' retention commitments through the canonical retention-commitments rules
        (None when the records hold none)."""
        if not self.commitment_rows:
            return None, None
        from analytics.core.schema import CANONICAL

        names = [c.name for c in CANONICAL["retention-commitments"]]
        rows = pl.DataFrame([{n: r.get(n) for n in names} for r in self.commitment_rows],
                            schema=dict.fromkeys(names, pl.String))
        report = ImportReport(kind="retention-commitments", file=self.name)
        frame = canonicalize(_CommitmentRows(rows, self.name, "marc", collector=self), "retention-commitments", {},
                             [], report)
        return report, frame.with_columns(pl.lit("marc").alias("source"))

    def reject(self, number: int, reason: str) -> None:
        self.rejections.append((number, reason))
        self.reasons[re.split(r"[:(;]", reason, maxsplit=1)[0].strip()] += 1

    def _flush(self) -> None:
        if self.columns["item_id"]:
            self.batches.append(pl.DataFrame(self.columns, schema=dict.fromkeys(COLUMNS, pl.String)))
            self.columns = {c: [] for c in COLUMNS}

    def finish(self, kind: str, forced: str | None) -> tuple[MarcImportReport, pl.DataFrame]:
        """The report and the typed items table, through the canonical import; raises
        InputError when no record is usable."""
        self._flush()
        name = self.name
        if self.read == 0:
            raise InputError(f"{name}: the file holds no MARC record. Nothing was imported.")
        usable = self.read - len(self.rejections)
        if self.unimarc and self.unimarc >= usable:
            first = next(number for number, reason in self.rejections if "UNIMARC" in reason)
            raise InputError(
                f"{name}: this is UNIMARC, not MARC 21: {self.unimarc} of {self.read} record(s) have their title in "
                f"field 200 and no 245 (the first is {self.place(first)}). Convert the records to MARC 21 (for "
                f"example with MarcEdit or USEMARCON) and import them again. Nothing was imported."
            )
        if usable == 0:
            number, reason = self.rejections[0]
            raise InputError(f"{name}: no MARC record could be read: all {self.read} record(s) were rejected "
                             f"(first: {self.place(number)}: {reason}). Nothing was imported.")
        items = pl.concat(self.batches) if len(self.batches) > 1 else self.batches[0]
        items_report = ImportReport(kind="items", file=name)
        frame = canonicalize(_ItemRows(items, name, "marc", collector=self), "items", {}, [], items_report)
        report = MarcImportReport(kind="marc", file=name, invalid_isbns=items_report.invalid_isbns,
                                  match=items_report.match, encoding=self._encoding(kind, forced))
        self._item_rejections(items["item_id"], frame["item_id"], items_report, report)
        report.read = self.read
        report.rejected = len(self.rejections)
        report.kept = self.read - report.rejected
        assert len({number for number, _ in self.rejections}) == report.rejected, "a record is rejected once"
        report.rejected_rows = [{"row": number, "reason": f"{self.place(number)}: {reason}"}
                                for number, reason in sorted(self.rejections)[:MAX_LISTED]]
        report.items = frame.height
        report.records_without_items = self.without_items
        report.item_fields = dict(self.item_fields)
        report.encodings = dict(self.encodings)
        report.warnings = self._warnings(report) + items_report.warnings
        return report, frame

    def _item_rejections(self, all_ids: pl.Series, kept_ids: pl.Series, items_report: ImportReport,
                         report: MarcImportReport) -> None:
        """Items the canonical rules refused: an item_id repeated (the same barcode
        twice, or two records with the same 001). A record whose every item was refused
        is rejected; other refused items are counted in a warning."""
        report.items_rejected = items_report.rejected
        if not items_report.rejected:
            return
        # canonicalize keeps rows in order: walk both lists to see which items survived.
        kept = kept_ids.to_list()
        kept_records: set[int] = set()
        refused: dict[int, str] = {}  # record -> its first refused item_id
        j = 0
        for item_id, number in zip(all_ids.to_list(), self.item_records, strict=True):
            if j < len(kept) and kept[j] == item_id:
                kept_records.add(number)
                j += 1
            else:
                refused.setdefault(number, item_id)
        for number, item_id in refused.items():
            if number not in kept_records:
                self.reject(number, f"every item was rejected: item_id {item_id!r} repeats an earlier item "
                                    f"(the same barcode, or the same 001)")
        listed = "; ".join(r["reason"] for r in items_report.rejected_rows[:3])
        more = "; ..." if items_report.rejected > 3 else ""
        report.warnings.append(f"{items_report.rejected} item(s) were rejected ({listed}{more}).")

    def _encoding(self, kind: str, forced: str | None) -> str:
        if kind == "xml":
            return self.xml_encoding or "utf-8"
        if forced or len(self.encodings) == 1:
            return forced or next(iter(self.encodings))
        return "mixed: " + ", ".join(f"{label} {n}" for label, n in self.encodings.most_common())

    def _warnings(self, report: MarcImportReport) -> list[str]:
        out = list(report.warnings)
        by_tag = ", ".join(f"{tag}: {n}" for tag, n in sorted(self.item_fields.items()))
        held = f"; {self.without_items} record(s) without an item field are held once each" \
            if self.without_items else ""
        out.insert(0, f"{report.kept} record(s) gave {report.items} item(s)"
                      + (f" (from item fields {by_tag})" if by_tag else "") + held + ".")
        for (declared, used), n in sorted(self.fallbacks.items()):
            says = "UTF-8 (leader/09 'a')" if declared == "utf-8" else "MARC-8 (leader/09 blank)"
            if used == "utf-8":
                out.append(f"{n} record(s) say {says} but are UTF-8; they were read as UTF-8.")
            else:
                out.append(f"{n} record(s) say {says} but hold bytes that are not valid in it; they were read "
                           f"as {ENCODING_LABELS.get(used, used)}. Check their titles, and name the encoding if "
                           f"they look wrong.")
        if report.rejected:
            counts = ", ".join(f"{reason} ({n})" for reason, n in self.reasons.most_common())
            more = f"; the first {MAX_LISTED} are listed" if report.rejected > MAX_LISTED else ""
            out.append(f"{report.rejected} record(s) rejected: {counts}{more}.")
        return out
