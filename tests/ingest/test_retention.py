"""Retention commitments: MARC 583 action notes shaped like real shared-print records, and the
CSV route (tests/fixtures/SOURCES.md says where the shapes come from)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from pymarc import Field, Indicators, Record, Subfield, XMLWriter

from analytics.core.access import Principal
from analytics.ingest.marc import import_marc
from analytics.ingest.run import run_import

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSTEM = Principal.system_job()


def field(tag: str, ind1: str, *pairs: str) -> Field:
    return Field(tag=tag, indicators=Indicators(ind1, " "),
                 subfields=[Subfield(c, v) for c, v in zip(pairs[::2], pairs[1::2], strict=True)])


def book(control: str, title: str, isbn: str | None, *extra: Field, oclc: str | None = None) -> Record:
    rec = Record(force_utf8=True)
    rec.add_field(Field(tag="001", data=control))
    rec.add_field(Field(tag="008", data="200101s2019    xxu           000 0 eng d"))
    if isbn:
        rec.add_field(field("020", " ", "a", isbn))
    if oclc:
        rec.add_field(field("035", " ", "a", f"(OCoLC){oclc}"))
    rec.add_field(field("245", "1", "a", title))
    rec.add_ordered_field(*extra)
    return rec


def shared_print_records() -> list[Record]:
    return [
        # EAST monograph: retention plus a completeness review (not a commitment).
        book("r1", "Beloved", "9780679744726",
             field("583", "1", "a", "committed to retain", "c", "20160630", "d", "20351231", "f", "EAST",
                   "u", "https://eastlibraries.org/retained-materials", "5", "UNI1"),
             field("583", "1", "a", "completeness reviewed", "c", "20160630", "f", "EAST", "i", "volume-level",
                   "l", "Facsimile", "5", "UNI1")),
        # Two programs on one item (repeated 583s), one permanent; case and punctuation vary.
        book("r2", "The Odyssey", "9780140449136",
             field("583", "1", "a", "Committed to retain.", "c", "2017", "d", "permanent",
                   "f", "HathiTrust Shared Print", "5", "UNI1", "2", "spa"),
             field("583", "1", "a", "committed to retain", "c", "2011-07-01", "d", "2025-12-31", "f", "WEST")),
        # Expired commitment (kept locally), and a private note (first indicator 0: not a commitment).
        book("r3", "Middlemarch", None,
             field("583", "1", "a", "committed to retain", "c", "20100101", "d", "20151231", "f", "Maine SC",
                   "3", "c.1", "5", "UNI1"),
             field("583", "0", "a", "committed to retain", "c", "20100101", "d", "20991231", "f", "EAST"),
             oclc="12345678"),
        # Another institution's commitment in a shared catalogue: skipped, and never stored.
        book("r4", "Ulysses", "9780394743127",
             field("583", "1", "a", "committed to retain", "c", "20160630", "d", "20351231", "f", "EAST",
                   "5", "CANARY-OTHER-LIB")),
        # A rolling expiry that is no date, and a condition review.
        book("r5", "Walden", "9780691096124",
             field("583", "1", "a", "committed to retain", "c", "20240123", "d", "five years from receipt date",
                   "f", "FDLP PDT"),
             field("583", "1", "a", "condition reviewed", "c", "20240123", "l", "torn", "f", "EAST")),
        # No 583 at all.
        book("r6", "Dubliners", "9780140186475"),
    ]


def commitments(data_dir: Path, code: str = "UNI1") -> pl.DataFrame:
    return pl.read_parquet(data_dir / "institutions" / code / "retention_commitments.parquet")


def check_commitments(report, table: pl.DataFrame) -> None:
    rows = {(r["program"], r["committed_on"], r["retain_until"]) for r in table.iter_rows(named=True)}
    assert rows == {
        ("EAST", dt.date(2016, 6, 30), dt.date(2035, 12, 31)),
        ("HathiTrust Shared Print", dt.date(2017, 1, 1), None),
        ("WEST", dt.date(2011, 7, 1), dt.date(2025, 12, 31)),
        ("Maine SC", dt.date(2010, 1, 1), dt.date(2015, 12, 31)),
    }
    assert set(table["source"]) == {"marc"}
    assert table.filter(pl.col("program") == "EAST")["work_key"].to_list() == ["isbn:9780679744726"]
    assert table.filter(pl.col("program") == "Maine SC")["match_method"].to_list() == ["oclc"]
    # $5 is never stored, nor anything of another institution's commitment.
    assert "CANARY-OTHER-LIB" not in str(table.to_dicts())
    assert not any("institution" in c or c == "5" for c in table.columns)
    assert report.commitments == 4
    text = " ".join(report.warnings)
    assert "1 commitment(s) name another institution" in text and "CANARY-OTHER-LIB" in text
    assert "record 5" in text and "583 #1 $d" in text and "five years from receipt date" in text


def test_marc_583_binary(data_dir, tmp_path):
    path = tmp_path / "shared_print.mrc"
    path.write_bytes(b"".join(r.as_marc() for r in shared_print_records()))
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert report.kept == 6  # every record is still an item
    check_commitments(report, commitments(data_dir))


def test_marc_583_marcxml(data_dir, tmp_path):
    path = tmp_path / "shared_print.xml"
    with open(path, "wb") as fh:
        writer = XMLWriter(fh)
        for rec in shared_print_records():
            writer.write(rec)
        writer.close(close_fh=False)
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    check_commitments(report, commitments(data_dir))


def test_own_marc_symbol_accepts_its_583s(data_dir, tmp_path):
    path = tmp_path / "shared_print.mrc"
    path.write_bytes(b"".join(r.as_marc() for r in shared_print_records()))
    report = import_marc(data_dir, SYSTEM, "UNI1", path, symbols=("canary-other-lib",))
    assert report.commitments == 5


def test_marc_without_commitments_leaves_the_table(data_dir, tmp_path):
    run_import(data_dir, SYSTEM, "UNI1", "retention-commitments", FIXTURES / "retention_commitments.csv")
    before = commitments(data_dir)
    path = tmp_path / "plain.mrc"
    path.write_bytes(book("x", "Dubliners", "9780140186475").as_marc())
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert report.commitments == 0
    assert commitments(data_dir).equals(before)


def test_csv_route(data_dir):
    report = run_import(data_dir, SYSTEM, "UNI1", "retention-commitments", FIXTURES / "retention_commitments.csv",
                        mapping={"oclc_number": "OCLC", "committed_on": "Commitment Date"})
    table = commitments(data_dir)
    assert (report.read, report.kept, report.rejected) == (5, 3, 2)
    reasons = " ".join(r["reason"] for r in report.rejected_rows)
    assert "row 4" in reasons and "no isbn, issn, oclc_number, or title and author" in reasons
    assert "row 5" in reasons and "empty program" in reasons
    assert {d["column"] for d in report.dropped_columns} == {"Patron Email"}
    assert "Local Note" in report.ignored_columns
    assert table.columns[:8] == ["isbn", "issn", "oclc_number", "title", "author", "program", "committed_on",
                                 "retain_until"]
    assert {"work_key", "match_method", "source"} <= set(table.columns)
    assert set(table["source"]) == {"table"}
    assert table.filter(pl.col("program") == "HathiTrust Shared Print")["retain_until"].to_list() == [None]
    assert table.filter(pl.col("program") == "WEST")["match_method"].to_list() == ["fingerprint"]
    assert "nobody@example.org" not in str(table.to_dicts())
