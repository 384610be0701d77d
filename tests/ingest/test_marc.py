"""MARC import: real MARC-8, UTF-8, cp1251 and MARCXML records, broken records, UNIMARC,
items from holdings fields. A failed import changes nothing; no record is lost silently."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymarc import Field, Indicators, Leader, Record, Subfield

from analytics.core.access import PermissionDenied, Principal
from analytics.ingest import marc_collect, marc_read
from analytics.ingest.marc import import_marc
from analytics.ingest.reader import InputError
from analytics.ingest.tabular import import_file
from analytics.synthetic.marc_files import generate_marc

MARC = Path(__file__).resolve().parents[1] / "fixtures" / "marc"
SYSTEM = Principal.system_job()


def items_path(data_dir: Path, code: str = "UNI1") -> Path:
    return data_dir / "institutions" / code / "items.parquet"


def items_table(data_dir: Path, code: str = "UNI1") -> pl.DataFrame:
    return pl.read_parquet(items_path(data_dir, code))


def by_title_id(items: pl.DataFrame, title_id: str) -> dict:
    rows = items.filter(pl.col("title_id") == title_id)
    assert rows.height == 1
    return rows.row(0, named=True)


def subfields(*pairs: str) -> list[Subfield]:
    """subfields("a", "Title :", "b", "subtitle") -> [Subfield("a", ...), Subfield("b", ...)]"""
    return [Subfield(code, value) for code, value in zip(pairs[::2], pairs[1::2], strict=True)]


def record(control_number: str | None, title: str | None, *fields: Field, leader: str = "00000nam a2200000 a 4500",
           f008: str = "200101s2019    xxu           000 0 eng d") -> Record:
    """A UTF-8 MARC 21 record with 001, 008, 245 $a and the given fields."""
    rec = Record(force_utf8=True)
    rec.leader = Leader(leader)  # as given, even with leader/09 blank: the bytes stay UTF-8
    if control_number:
        rec.add_field(Field(tag="001", data=control_number))
    if f008:
        rec.add_field(Field(tag="008", data=f008))
    if title:
        rec.add_field(Field(tag="245", indicators=Indicators("1", "0"), subfields=subfields("a", title)))
    rec.add_ordered_field(*fields)
    return rec


def datafield(tag: str, *pairs: str, ind1: str = " ", ind2: str = " ") -> Field:
    return Field(tag=tag, indicators=Indicators(ind1, ind2), subfields=subfields(*pairs))


def write_records(path: Path, *records: Record) -> Path:
    path.write_bytes(b"".join(r.as_marc() for r in records))
    return path


@pytest.fixture
def imported(data_dir):
    """A good MARC import already in place, to prove later failures leave it intact."""
    import_marc(data_dir, SYSTEM, "UNI1", MARC / "marc8.dat")
    return items_path(data_dir).read_bytes()


# ----------------------------------------------------------------------- encodings


def test_evergreen_export_marc8_with_one_malformed_record(data_dir):
    """Evergreen's 42-record sample: MARC-8 diacritics, 949 items, e-books, one record
    whose leader holds a stray 0x92."""
    report = import_marc(data_dir, SYSTEM, "UNI1", MARC / "evergreen_oss.marc")
    assert (report.read, report.kept, report.rejected) == (42, 41, 1)
    assert report.rejected_rows == [{"row": 28, "reason": "record 28 (byte 40499): cannot be read: the leader "
                                                          "holds bytes that are not ASCII"}]
    assert report.encoding == "marc-8" and report.encodings == {"marc-8": 41}
    assert (report.items, report.records_without_items, report.item_fields) == (42, 23, {"949": 19})
    assert "41 record(s) gave 42 item(s) (from item fields 949: 19); 23 record(s) without an item field are " \
           "held once each." in report.warnings
    items = items_table(data_dir)
    assert items.height == 42
    # MARC-8 umlaut (0xE8 before the letter) decoded and composed; the missing "s" is the source's.
    security = by_title_id(items, "978-3-540-22028-2")
    assert security["title"] == ("Security@Work : Pragmatische Konzeption und Implementierung von IT-Sicherheit "
                                 "mit Löungsbeispielen auf Open-Source-Basis")
    assert "o\u0308" not in security["title"]
    mexican = items.filter(pl.col("title") == "Mexican Law Review").row(0, named=True)
    assert mexican["publisher"] == "Instituto de Investigaciones Jurídicas de la Universidad Nacional Autónoma de México"
    assert mexican["item_id"] == "record41-1"  # no 001: the record's position names it


def test_marc8_record_fields(data_dir):
    report = import_marc(data_dir, SYSTEM, "UNI1", MARC / "marc8.dat")
    assert (report.read, report.kept, report.rejected, report.encoding) == (1, 1, 0, "marc-8")
    row = items_table(data_dir).row(0, named=True)
    assert {k: row[k] for k in ("item_id", "title_id", "title", "author", "call_number", "pub_year", "publisher",
                                "language", "format", "material_type")} == {
        "item_id": "2-1", "title_id": "2", "title": "Escape from loneliness", "author": "Tournier, Paul",
        "call_number": "BF697 .T623",  # 050 wins over the local 090 BF575.L7 T68 1962
        "pub_year": 1962, "publisher": "Westminster Press", "language": "eng", "format": "print",
        "material_type": "book"}


def test_utf8_records_are_composed(data_dir):
    """Library of Congress records in UTF-8 (leader/09 'a') with decomposed diacritics."""
    report = import_marc(data_dir, SYSTEM, "UNI1", MARC / "regression45_first2.dat")
    assert (report.read, report.kept, report.rejected, report.encoding) == (2, 2, 0, "utf-8")
    assert "podarennyi\u0306".encode() in (MARC / "regression45_first2.dat").read_bytes()
    first = by_title_id(items_table(data_dir), "prk2000001890")
    assert first["title"] == unicodedata.normalize(
        "NFC", "Pokrov, podarennyĭ Dimitrīem Ivanovichem Godunovym. [Ipatʹevskīĭ monastyrʹ, Kostroma]")
    assert first["author"] == "Prokudin-Gorskiĭ, Sergeĭ Mikhaĭlovich" and "\u0306" not in first["author"]
    # 852 without a barcode: one item named after 001; 007 "cr" beside 007 "kg" is a
    # digitized glass negative, held physically.
    assert (first["item_id"], first["format"], first["pub_year"], first["language"]) == (
        "prk2000001890-1", "print", 1910, "rus")
    assert report.item_fields == {"852": 2}


def test_utf8_isbns_with_qualifiers(data_dir):
    import_marc(data_dir, SYSTEM, "UNI1", MARC / "multi_isbn.dat")
    row = items_table(data_dir).row(0, named=True)
    # 020 $a "0914378295 (lim. ed.) (v. 1)": the qualifiers are left out, every ISBN kept.
    assert row["isbn"] == "9780914378280;9780914378297;9780914378266"
    assert (row["title"], row["author"], row["call_number"], row["pub_year"], row["publisher"]) == (
        "The town scold", "Johnson, Judith Emlyn", "PS3569.H44 W3 pt. 1", 1977, "Countryman Press")


def test_cp1251_records_are_detected_and_reported(data_dir):
    """pymarc's 1251.dat: Russian records in Windows-1251 with leader/09 blank."""
    report = import_marc(data_dir, SYSTEM, "UNI1", MARC / "1251.dat")
    assert (report.read, report.kept, report.rejected, report.encoding) == (6, 6, 0, "cp1251")
    assert any("6 record(s) say MARC-8 (leader/09 blank)" in w and "Windows-1251" in w for w in report.warnings)
    items = items_table(data_dir)
    first = items.row(0, named=True)
    assert first["title"] == ("Основы гидравлического расчета инженерных сетей : [учеб. пособие для вузов по "
                              "специальностям <Теплогазоснабжение и вентиляция>, <Водоснабжение и водоотведение>]")
    assert (first["author"], first["publisher"], first["language"]) == (
        "Ильина, Татьяна Николаевна", "Изд-во Ассоц. строит. вузов", "rus")
    # 852 $i holds the author mark; no 050/090, so it is the item's call number.
    assert (first["item_id"], first["call_number"]) == ("ru03-000001RKP-1", "И46")
    assert items["isbn"].null_count() == 0

    forced = import_marc(data_dir, SYSTEM, "UNI2", MARC / "1251.dat", encoding="windows-1251")
    assert forced.encoding == "cp1251" and not any("leader/09" in w for w in forced.warnings)
    assert items_table(data_dir, "UNI2")["title"].equals(items["title"])


def test_a_wrong_encoding_named_by_the_caller_rejects_the_records(data_dir, imported):
    with pytest.raises(InputError, match=r"all 6 record\(s\) were rejected \(first: record 1 \(byte 0\): cannot "
                                         r"be decoded as UTF-8"):
        import_marc(data_dir, SYSTEM, "UNI1", MARC / "1251.dat", encoding="utf-8")
    with pytest.raises(InputError, match="encoding 'klingon' is not known"):
        import_marc(data_dir, SYSTEM, "UNI1", MARC / "1251.dat", encoding="klingon")
    assert items_path(data_dir).read_bytes() == imported


def test_utf8_record_that_says_marc8_is_read_as_utf8(data_dir, tmp_path):
    rec = record("u1", "Études de données", leader="00000nam  2200000 a 4500")
    path = tmp_path / "mislabelled.mrc"
    data = rec.as_marc()  # pymarc sets leader/09 to "a" when it writes UTF-8
    path.write_bytes(data[:9] + b" " + data[10:])
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert report.encoding == "utf-8"
    assert "1 record(s) say MARC-8 (leader/09 blank) but are UTF-8; they were read as UTF-8." in report.warnings
    assert items_table(data_dir)["title"].to_list() == ["Études de données"]


def test_mixed_encodings_are_counted(data_dir, tmp_path):
    path = tmp_path / "mixed.mrc"
    path.write_bytes(b"".join((MARC / name).read_bytes() for name in ("marc8.dat", "multi_isbn.dat", "1251.dat")))
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert (report.read, report.kept) == (8, 8)
    assert report.encoding == "mixed: cp1251 6, marc-8 1, utf-8 1"


# ----------------------------------------------------------------------- MARCXML


def test_marcxml(data_dir):
    report = import_marc(data_dir, SYSTEM, "UNI1", MARC / "batch.xml")
    assert (report.read, report.kept, report.rejected, report.items, report.encoding) == (2, 2, 0, 2, "utf-8")
    items = items_table(data_dir)
    assert items["title"].to_list() == ["The Great Ray Charles", "The White House"]
    ray, white_house = items.rows(named=True)
    assert (ray["item_id"], ray["material_type"], ray["format"], ray["pub_year"]) == ("5637241-1", "media", "print",
                                                                                      1957)
    assert (white_house["oclc_number"], white_house["format"], white_house["match_method"]) == (
        "44279786", "electronic", "oclc")

    report = import_marc(data_dir, SYSTEM, "UNI2", MARC / "utf8.xml")
    assert (report.read, report.kept) == (1, 1)
    assert items_table(data_dir, "UNI2")["title"].to_list() == ["Zen Classics"]


def test_marcxml_bad_records_and_bad_xml(data_dir, tmp_path, imported):
    head = '<?xml version="1.0"?>\n<collection xmlns="http://www.loc.gov/MARC21/slim">\n'
    good = ('<record><leader>00000nam a2200000 a 4500</leader><controlfield tag="001">x1</controlfield>'
            '<datafield tag="245" ind1="1" ind2="0"><subfield code="a">Good</subfield></datafield></record>\n')
    no_tag = '<record><datafield ind1=" " ind2=" "><subfield code="a">?</subfield></datafield></record>\n'
    no_title = '<record><controlfield tag="001">x3</controlfield></record>\n'
    path = tmp_path / "records.xml"
    path.write_text(head + good + no_tag + no_title + "</collection>\n")
    report = import_marc(data_dir, SYSTEM, "UNI2", path)
    assert (report.read, report.kept, report.rejected) == (3, 1, 2)
    assert [r["reason"] for r in report.rejected_rows] == [
        "record 2 (line 4): <datafield> is malformed (KeyError: (None, 'tag'))",
        "record 3 (line 5): no title: the record has no field 245"]

    path.write_text(head + good + "<record><leader>broken</record>\n</collection>\n")
    with pytest.raises(InputError, match=r"records\.xml: not well-formed XML at line 4, column \d+: mismatched tag "
                                         r"\(1 record\(s\) before it\)\. Nothing was imported\."):
        import_marc(data_dir, SYSTEM, "UNI1", path)
    path.write_text('<?xml version="1.0"?>\n<html><body>Not MARC</body></html>\n')
    with pytest.raises(InputError, match="holds no MARC record"):
        import_marc(data_dir, SYSTEM, "UNI1", path)
    assert items_path(data_dir).read_bytes() == imported


# ----------------------------------------------------------------------- broken input


def test_bad_records_are_skipped_and_named_by_position(data_dir):
    """pymarc's bad_records.mrc: the same record eight times, six of them broken."""
    report = import_marc(data_dir, SYSTEM, "UNI1", MARC / "bad_records.mrc")
    assert (report.read, report.kept, report.rejected, report.items) == (8, 2, 6, 2)
    assert report.rejected_rows == [
        {"row": 2, "reason": "record 2 (byte 127): cannot be read: the base address (leader/12-16) 99937 is past "
                             "the end of the record (127 bytes)"},
        {"row": 3, "reason": "record 3 (byte 254): cannot be read: the base address (leader/12-16) is 00000"},
        {"row": 4, "reason": "record 4 (byte 381): cannot be read: the directory is not a list of 12-character "
                             "entries (tag, length, offset)"},
        {"row": 5, "reason": "record 5 (byte 509): cannot be read: the directory is not a list of 12-character "
                             "entries (tag, length, offset)"},
        {"row": 6, "reason": "record 6 (byte 637): cannot be read: the base address (leader/12-16) 'f0037' is not "
                             "a number"},
        {"row": 7, "reason": "record 7 (byte 764): cannot be read: no fields (the directory is empty)"},
    ]
    assert "6 record(s) rejected: cannot be read (6)." in report.warnings
    assert items_table(data_dir)["item_id"].to_list() == ["record1-1", "record8-1"]


def test_padding_between_records_and_a_truncated_last_record(data_dir, tmp_path):
    records = [r + b"\x1d" for r in (MARC / "evergreen_oss.marc").read_bytes().split(b"\x1d")[:3]]
    path = tmp_path / "crlf.mrc"
    path.write_bytes(b"\r\n".join(records) + b"\r\n" + records[0][:300])
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert (report.read, report.kept, report.rejected) == (4, 3, 1)
    offset = sum(len(r) + 2 for r in records)
    assert report.rejected_rows[0]["reason"] == (
        f"record 4 (byte {offset}): cannot be read: truncated: leader/00-04 says 1614 bytes, the record has 301")


def test_a_missing_terminator_and_a_run_of_garbage(data_dir, tmp_path, monkeypatch):
    marc8, multi_isbn = (MARC / "marc8.dat").read_bytes(), (MARC / "multi_isbn.dat").read_bytes()
    path = tmp_path / "unterminated.mrc"
    path.write_bytes(marc8.removesuffix(b"\x1d") + multi_isbn)
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert (report.read, report.kept, report.rejected) == (2, 2, 0)
    assert items_table(data_dir)["title_id"].to_list() == ["2", "4612195"]

    monkeypatch.setattr(marc_read, "BLOCK_SIZE", 4096)
    path.write_bytes(marc8 + b"12345" + b"z" * 120_000 + marc8 + multi_isbn)
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert (report.read, report.kept, report.rejected) == (3, 2, 1)
    assert report.rejected_rows[0]["reason"] == (f"record 2 (byte {len(marc8)}): no record terminator within "
                                                 f"99,999 bytes; skipped to the next one")


def test_unimarc_is_refused(data_dir, imported):
    with pytest.raises(InputError, match=r"testunimarc\.dat: this is UNIMARC, not MARC 21: 1 of 1 record\(s\) have "
                                         r"their title in field 200 and no 245 \(the first is record 1 \(byte 0\)\)"):
        import_marc(data_dir, SYSTEM, "UNI1", MARC / "testunimarc.dat")
    assert items_path(data_dir).read_bytes() == imported


def test_a_stray_unimarc_record_in_a_marc21_file_is_rejected(data_dir, tmp_path):
    path = tmp_path / "mostly21.mrc"
    path.write_bytes((MARC / "multi_isbn.dat").read_bytes() + (MARC / "testunimarc.dat").read_bytes()
                     + (MARC / "marc8.dat").read_bytes())
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    assert (report.read, report.kept, report.rejected) == (3, 2, 1)
    assert report.rejected_rows[0]["reason"] == ("record 2 (byte 794): looks like UNIMARC (title in field 200, "
                                                 "no 245), not MARC 21")


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b" \r\n" * 5000, "the file is empty"),
    (b"item_id,title\nB1,Some title\n", r"not a MARC 21 file: binary MARC starts with the record length"),
    (b"00000garbage", "no MARC record could be read: all 1 record"),
    (b"[{\"leader\": \"00000nam\"}]", "not a MARC 21 file"),
])
def test_files_that_are_not_marc(data_dir, tmp_path, imported, content, message):
    path = tmp_path / "input.mrc"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_marc(data_dir, SYSTEM, "UNI1", path)
    assert items_path(data_dir).read_bytes() == imported


def test_a_failing_import_leaves_the_previous_items_byte_identical(data_dir, tmp_path):
    import_file(data_dir, SYSTEM, "UNI1", "items", _csv(tmp_path))
    before = items_path(data_dir).read_bytes()
    path = tmp_path / "all_bad.mrc"
    path.write_bytes((MARC / "bad_records.mrc").read_bytes().replace(b"2200037", b"2299937"))
    with pytest.raises(InputError, match=r"all 8 record\(s\) were rejected .*Nothing was imported"):
        import_marc(data_dir, SYSTEM, "UNI1", path)
    assert items_path(data_dir).read_bytes() == before
    assert not [p.name for p in items_path(data_dir).parent.iterdir() if p.name != "items.parquet"]
    # A good import replaces the table as a whole.
    import_marc(data_dir, SYSTEM, "UNI1", MARC / "marc8.dat")
    assert items_table(data_dir)["item_id"].to_list() == ["2-1"]


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title\nB1,A title\n")
    return path


def test_only_an_admin_of_the_institution_imports(data_dir):
    librarian = Principal("lib@uni1.example.org", "UNI1", frozenset({"librarian"}))
    with pytest.raises(PermissionDenied):
        import_marc(data_dir, librarian, "UNI1", MARC / "marc8.dat")
    assert not items_path(data_dir).exists()


# ----------------------------------------------------------------------- mapping


def test_bibliographic_mapping_on_known_records(data_dir):
    import_marc(data_dir, SYSTEM, "UNI1", MARC / "evergreen_oss.marc")
    items = items_table(data_dir)
    two_bits = by_title_id(items, "15116074")
    assert {k: two_bits[k] for k in ("title", "author", "isbn", "oclc_number", "call_number", "pub_year",
                                     "publisher", "language", "format", "material_type", "work_key",
                                     "match_method")} == {
        "title": "Two bits : the cultural significance of free software",
        "author": "Kelty, Christopher M.",
        # four 020s: ISBN-10 and ISBN-13 of the cloth and paperback editions, "(cloth : alk. paper)"
        "isbn": "9780822342427;9780822342649",
        "oclc_number": "183914703",  # 035 "(OCoLC)ocn183914703"
        "call_number": "HM851 .K45 2008",  # 050 $a $b
        "pub_year": 2008, "publisher": "Duke University Press", "language": "eng",
        "format": "print", "material_type": "book",
        "work_key": "isbn:9780822342427", "match_method": "isbn"}
    journal = items.filter(pl.col("title") == "Clinical Child Psychology and Psychiatry").row(0, named=True)
    assert (journal["issn"], journal["format"], journal["material_type"], journal["work_key"], journal["pub_year"]) \
        == ("1461-7021", "electronic", "journal", "issn:1461-7021", None)
    # 001 "ocm56723416" with 003 OCoLC is the OCLC number when no 035 carries one.
    assert by_title_id(items, "ocm56723416")["oclc_number"] == "56723416"
    # 856 41 "Table of contents" on a print book does not make it electronic; 007 "cr" does.
    assert by_title_id(items, "13375234")["format"] == "print"
    assert by_title_id(items, "978-0-387-35767-6")["format"] == "electronic"
    assert by_title_id(items, "978-0-387-35767-6")["title"] == "Open Source GIS : A GRASS GIS Approach"


def test_fallbacks_of_year_language_publisher_and_format(data_dir, tmp_path):
    path = write_records(
        tmp_path / "fallbacks.mrc",
        record("f1", "Undated :", datafield("041", "a", "frespa", ind1="1"),
               datafield("264", "a", "Paris :", "b", "Printer,", "c", "1999", ind2="3"),
               datafield("264", "a", "Paris :", "b", "Éditions du Seuil,", "c", "[2015]", ind2="1"),
               f008="150101n    uuuu    fr            000 0 und d"),
        record("f2", "Sine nomine", datafield("260", "a", "[S.l.] :", "b", "[s.n.],", "c", "c1887."),
               datafield("856", "u", "https://example.org/f2", ind1="4", ind2="0"),
               f008="150101s19uu    xx            000 0     d"),
    )
    import_marc(data_dir, SYSTEM, "UNI1", path)
    undated, sine = items_table(data_dir).rows(named=True)
    assert (undated["title"], undated["pub_year"], undated["language"], undated["publisher"], undated["format"]) \
        == ("Undated", 2015, "fre", "Éditions du Seuil", "print")
    assert (sine["pub_year"], sine["language"], sine["publisher"], sine["format"]) == (1887, None, None, "electronic")


def test_items_from_holdings_and_item_fields(data_dir, tmp_path):
    path = write_records(
        tmp_path / "items.mrc",
        record("h852", "Two copies", datafield("050", "a", "QA76.73.P98", "b", "L88 2019", ind1="0", ind2="0"),
               datafield("852", "b", "MAIN", "h", "QA76.73.P98", "i", "L88 2019", "p", "31111000000011"),
               datafield("852", "b", "BRANCH", "h", "QA76.73.P98", "i", "L88 2019 c.2", "p", "31111000000029")),
        record("i949", "Sirsi item", datafield("949", "a", "PS3552.A45 F5 1993", "i", "39007047703517",
                                               "l", "STACKS", "m", "MAIN")),
        record("both", "Holdings and items",
               datafield("852", "b", "MAIN", "h", "Z699"),
               datafield("949", "a", "Z699 .A1", "i", "30007001638807", "l", "STACKS"),
               datafield("949", "a", "Z699 .A1 c.2", "l", "STACKS")),
        record("koha", "Koha item", datafield("952", "a", "MAIN", "o", "823 SMI", "p", "K0001")),
        record("alma", "Alma items", datafield("ITM", "b", "A0001", "c", "STACKS"),
               datafield("ITM", "b", "A0002", "c", "STACKS")),
        record("ava", "Alma availability", datafield("AVA", "b", "MAIN", "c", "Stacks", "d", "HF5548 .B3", "f", "3")),
        record("none", "Held once"),
    )
    progress = []
    report = import_marc(data_dir, SYSTEM, "UNI1", path, progress=lambda done, total: progress.append((done, total)))
    assert (report.read, report.kept, report.rejected, report.items) == (7, 7, 0, 12)
    assert report.item_fields == {"852": 2, "949": 3, "952": 1, "ITM": 2, "AVA": 3}
    assert report.warnings[0] == ("7 record(s) gave 12 item(s) (from item fields 852: 2, 949: 3, 952: 1, AVA: 3, "
                                  "ITM: 2); 1 record(s) without an item field are held once each.")
    assert report.as_dict()["items"] == 12
    items = items_table(data_dir)
    assert items.select("title_id", "item_id", "call_number").rows() == [
        ("h852", "31111000000011", "QA76.73.P98 L88 2019"),  # the 050 wins over 852 $h $i
        ("h852", "31111000000029", "QA76.73.P98 L88 2019"),
        ("i949", "39007047703517", "PS3552.A45 F5 1993"),
        ("both", "30007001638807", "Z699 .A1"),  # 949 items, not the 852 holdings statement
        ("both", "both-2", "Z699 .A1 c.2"),  # no barcode: <001>-<n>
        ("koha", "K0001", "823 SMI"),
        ("alma", "A0001", None),
        ("alma", "A0002", None),
        ("ava", "ava-1", "HF5548 .B3"),  # AVA $f: three copies
        ("ava", "ava-2", "HF5548 .B3"),
        ("ava", "ava-3", "HF5548 .B3"),
        ("none", "none-1", None),
    ]
    # Locations are not a canonical column: nothing but the canonical table is stored.
    assert "location" not in items.columns and set(items["format"]) == {"print"}
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)


def test_a_repeated_barcode_rejects_the_item_and_a_record_left_without_items(data_dir, tmp_path):
    path = write_records(
        tmp_path / "dupes.mrc",
        record("r1", "First", datafield("949", "i", "B1"), datafield("949", "i", "B2")),
        record("r2", "Shares one copy", datafield("949", "i", "B2"), datafield("949", "i", "B3")),
        record("r3", "Same copy again", datafield("949", "i", "B1")),
        record("r1", "Same 001 again"),
        record("r1", "And once more"),
    )
    offsets = [0]
    for size in (int(r[:5]) for r in path.read_bytes().split(b"\x1d")[:4]):
        offsets.append(offsets[-1] + size)
    report = import_marc(data_dir, SYSTEM, "UNI1", path)
    # Record 2 keeps B3, record 4's generated "r1-1" is new; records 3 and 5 have nothing new.
    assert (report.read, report.kept, report.rejected) == (5, 3, 2)
    assert (report.items, report.items_rejected) == (4, 3)
    assert [r["reason"] for r in report.rejected_rows] == [
        f"record {n} (byte {offsets[n - 1]}): every item was rejected: item_id {item_id!r} repeats an earlier item "
        f"(the same barcode, or the same 001)" for n, item_id in ((3, "B1"), (5, "r1-1"))]
    assert f"3 item(s) were rejected (record 2 (byte {offsets[1]}), item 1: item_id appears on an earlier row; " \
           f"record 3 (byte {offsets[2]}): item_id appears on an earlier row; record 5 (byte {offsets[4]}): item_id " \
           f"appears on an earlier row)." in report.warnings
    assert items_table(data_dir)["item_id"].to_list() == ["B1", "B2", "B3", "r1-1"]


# ----------------------------------------------------------------------- volume


def test_generated_file_in_several_batches(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(marc_collect, "FRAME_BATCH", 100)
    monkeypatch.setattr(marc_read, "PROGRESS_EVERY", 250)
    path = generate_marc(tmp_path / "synthetic.mrc", 1_000)
    progress = []
    report = import_marc(data_dir, SYSTEM, "UNI1", path, progress=lambda done, total: progress.append((done, total)))
    assert (report.read, report.kept, report.rejected, report.encoding) == (1_000, 1_000, 0, "utf-8")
    items = items_table(data_dir)
    assert items.height == report.items and items["item_id"].is_unique().all()
    assert report.items == report.item_fields["852"] + report.records_without_items
    assert items.filter(pl.col("format") == "electronic").height == 100
    assert report.match["counts"]["isbn"] == report.items and report.invalid_isbns == 0
    size = path.stat().st_size
    assert [total for _, total in progress] == [size] * 5
    assert [done for done, _ in progress] == sorted(done for done, _ in progress) and progress[-1][0] == size


# ----------------------------------------------------------------------- properties


_SAMPLES = ((MARC / "marc8.dat").read_bytes(), (MARC / "utf8.xml").read_bytes())


@st.composite
def marc_like_bytes(draw) -> bytes:
    """Arbitrary bytes, or a real binary or MARCXML record with a few bytes changed, cut
    or repeated."""
    sample = draw(st.sampled_from((None, *_SAMPLES)))
    if sample is None:
        return draw(st.binary(max_size=400))
    data = bytearray(sample * draw(st.integers(1, 3)))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=marc_like_bytes())
def test_any_bytes_give_a_report_or_an_input_error(tmp_path_factory, content):
    tmp = tmp_path_factory.mktemp("marc")
    path = tmp / "input.mrc"
    path.write_bytes(content)
    try:
        report = import_marc(tmp / "data", SYSTEM, "P", path)
    except InputError:
        assert not (tmp / "data").exists()
        return
    assert report.read == report.kept + report.rejected and report.kept >= 1
    assert pl.read_parquet(items_path(tmp / "data", "P")).height == report.items >= report.kept
