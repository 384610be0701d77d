"""Canonical import: good files, bad files, real export shapes. A failed import changes nothing."""

from __future__ import annotations

import string
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.core.access import PermissionDenied, Principal
from analytics.ingest.reader import InputError
from analytics.ingest.tabular import import_file, parse_mapping

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSTEM = Principal.system_job()

GOOD_ITEMS = """item_id,title,author,isbn,pub_year,call_number,format,acquired_date,withdrawn_date
B001,The Fire Next Time,"Baldwin, James",978-0-679-74472-6,1963,PS3552.A45 F5 1993,print,2019-01-05,
B002,Go Tell It on the Mountain,"Baldwin, James",0385334575,1953,PS3552.A45 G6 2005,print,3/4/2020,
B003,Giovanni's Room,"Baldwin, James",9780345806567,1956,PS3552.A45 G5 2013,electronic,3/4/21,
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def items_table(data_dir: Path, code: str = "UNI1") -> pl.DataFrame:
    return pl.read_parquet(data_dir / "institutions" / code / "items.parquet")


@pytest.fixture
def imported(data_dir, tmp_path):
    """A good items import already in place, to prove later failures leave it intact."""
    report = import_file(data_dir, SYSTEM, "UNI1", "items", write(tmp_path, "items.csv", GOOD_ITEMS))
    assert report.kept == 3
    return items_table(data_dir)


def test_good_items_file(imported):
    assert imported["item_id"].to_list() == ["B001", "B002", "B003"]
    assert imported["isbn"].to_list() == ["9780679744726", "9780385334570", "9780345806567"]
    assert imported["acquired_date"].to_list() == [date(2019, 1, 5), date(2020, 3, 4), date(2021, 3, 4)]
    assert imported["format"].to_list() == ["print", "print", "electronic"]
    assert imported["material_type"].to_list() == ["book"] * 3
    assert imported["pub_year"].dtype == pl.Int64
    assert imported["work_key"].null_count() == 0


def test_missing_required_column_names_file_and_column(data_dir, tmp_path, imported):
    bad = write(tmp_path, "no_title.csv", "item_id,author\nX1,Someone\n")
    with pytest.raises(InputError, match=r"no_title\.csv: required column\(s\) missing for items: title"):
        import_file(data_dir, SYSTEM, "UNI1", "items", bad)
    assert items_table(data_dir).equals(imported)


def test_unparseable_date_names_file_row_and_column(data_dir, tmp_path, imported):
    bad = write(tmp_path, "dates.csv", "item_id,title,acquired_date\nX1,A,2020-01-01\nX2,B,31/31/2020\nX3,C,soon\n")
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "items", bad)
    message = str(err.value)
    assert "dates.csv, row 2 (line 3), column acquired_date: '31/31/2020' is not a date" in message
    assert "1 more row(s) have the same problem (rows 3)" in message
    assert "Nothing was imported" in message
    assert items_table(data_dir).equals(imported)


def test_invalid_isbn_keeps_the_row_and_counts_it(data_dir, tmp_path):
    path = write(tmp_path, "isbn.csv", "item_id,title,isbn\nX1,A,9780679744727\nX2,B,0385334575|0385334576\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "items", path)
    assert (report.read, report.kept, report.rejected, report.invalid_isbns) == (2, 2, 0, 2)
    assert items_table(data_dir)["isbn"].to_list() == [None, "9780385334570"]
    assert any("ISBN" in w for w in report.warnings)


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("   \n\n", "the file is empty"),
    ("item_id,title\n", "header row but no data rows"),
])
def test_empty_files(data_dir, tmp_path, imported, content, message):
    with pytest.raises(InputError, match=message):
        import_file(data_dir, SYSTEM, "UNI1", "items", write(tmp_path, "empty.csv", content))
    assert items_table(data_dir).equals(imported)


def test_patron_and_money_columns_are_dropped_and_reported(data_dir, tmp_path):
    loans = write(tmp_path, "loans.csv",
                  "item_id,loan_date,patron_id,Patron Email,fund,fine_amount,count\n"
                  "B001,2024-01,P-CANARY-1,canary@example.org,FUND-CANARY,2.50,3\n"
                  "B002,2024-02-15,P-CANARY-2,x@example.org,FUND-CANARY,0,\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "loans", loans)
    assert {(d["column"], d["reason"]) for d in report.dropped_columns} == {
        ("patron_id", "personal"), ("Patron Email", "personal"), ("fund", "financial"),
        ("fine_amount", "financial")}
    stored = pl.read_parquet(data_dir / "institutions" / "UNI1" / "loans.parquet")
    assert stored.columns == ["item_id", "loan_date", "count", "renewals"]
    assert stored["loan_date"].to_list() == [date(2024, 1, 1), date(2024, 2, 15)]
    assert stored["count"].to_list() == [3, 1]
    raw = (data_dir / "institutions" / "UNI1" / "loans.parquet").read_bytes()
    assert b"CANARY" not in raw and b"canary" not in raw


def test_windows_1252_csv_is_read_and_reported(data_dir, tmp_path):
    path = write(tmp_path, "latin.csv", "item_id,title,author\nX1,Bühler-Studien,Müller\n", encoding="cp1252")
    report = import_file(data_dir, SYSTEM, "UNI1", "items", path)
    assert report.encoding == "windows-1252"
    assert "not UTF-8" in report.warnings[0] and "line 2" in report.warnings[0]
    assert items_table(data_dir)["title"].to_list() == ["Bühler-Studien"]


def test_undecodable_bytes_fail_with_line_number(data_dir, tmp_path, imported):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"item_id,title\nX1,ok\nX2,bad \x81 byte\n")
    with pytest.raises(InputError, match=r"broken\.csv: line 3 has byte 0x81"):
        import_file(data_dir, SYSTEM, "UNI1", "items", path)
    assert items_table(data_dir).equals(imported)


def test_blank_required_values_are_rejected_and_counted(data_dir, tmp_path):
    path = write(tmp_path, "blank.csv", "item_id,title\nX1,A\n,B\nX3,\nX1,dup\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "items", path)
    assert (report.read, report.kept, report.rejected) == (4, 1, 3)
    reasons = [r["reason"] for r in report.rejected_rows]
    assert reasons == ["row 2 (line 3): empty item_id", "row 3 (line 4): empty title",
                       "row 4 (line 5): item_id appears on an earlier row"]


def test_uva_export_with_map_and_null_date_sentinel(data_dir):
    """Real UVA Alderman item export: M/D/YY dates and 1/1/00 meaning 'never'."""
    mapping = parse_mapping(["item_id=item_barcode", "title_id=catalog_id", "acquired_date=item_created_date",
                             "last_loan_date=last_checkout_date", "lifetime_loans=lifetime_checkouts"])
    report = import_file(data_dir, SYSTEM, "UVA", "items", FIXTURES / "uva_items_excerpt.csv",
                         mapping=mapping, null_dates=["1/1/00"])
    assert (report.read, report.kept, report.rejected) == (20, 20, 0)
    items = items_table(data_dir, "UVA")
    first = items.row(0, named=True)
    assert first["item_id"] == "X006057697"
    assert first["acquired_date"] == date(1997, 9, 15)
    assert first["last_loan_date"] is None
    assert first["pub_year"] == 1996
    assert items["last_loan_date"].null_count() == 6  # six rows say 1/1/00
    assert "item_shelving_id" in report.ignored_columns


def test_uva_export_without_sentinel_explains_how(data_dir):
    mapping = parse_mapping(["item_id=item_barcode", "acquired_date=item_created_date"])
    # 1/1/00 parses as 2000-01-01 here, so the import succeeds; the sentinel only matters when
    # declared. A value that is not a date at all fails with the --null-date hint.
    report = import_file(data_dir, SYSTEM, "UVA", "items", FIXTURES / "uva_items_excerpt.csv", mapping=mapping)
    assert report.kept == 20


def test_spl_inventory_with_several_isbns_and_decorated_years(data_dir):
    """Seattle Public Library inventory: 'c2009.' and '[2015]' years, two ISBNs in one cell."""
    mapping = parse_mapping(["item_id=BibNum", "pub_year=PublicationYear"])
    report = import_file(data_dir, SYSTEM, "SPL", "items", FIXTURES / "spl_inventory_excerpt.csv", mapping=mapping)
    assert report.read == 20 and report.read == report.kept + report.rejected
    items = items_table(data_dir, "SPL")
    edge = items.filter(pl.col("item_id") == "2599591").row(0, named=True)
    assert edge["isbn"] == "9780441017805"  # the ISBN-10 and ISBN-13 of one book collapse to one
    assert edge["pub_year"] == 2009
    assert items.filter(pl.col("item_id") == "3186270")["pub_year"].to_list() == [2015]


def test_excel_parquet_and_tsv_inputs(data_dir, tmp_path):
    frame = pl.DataFrame({"Item ID": ["E1", "E2"], "Title": ["A", "B"], "Acquired Date": ["2020-01-02", "1/2/2021"]})
    xlsx = tmp_path / "items.xlsx"
    frame.write_excel(xlsx)
    assert import_file(data_dir, SYSTEM, "X", "items", xlsx).kept == 2
    assert items_table(data_dir, "X")["acquired_date"].to_list() == [date(2020, 1, 2), date(2021, 1, 2)]
    parquet = tmp_path / "items.parquet"
    frame.write_parquet(parquet)
    assert import_file(data_dir, SYSTEM, "Y", "items", parquet).kept == 2
    tsv = write(tmp_path, "items.tsv", "item_id\ttitle\nT1\tA, with comma\n")
    import_file(data_dir, SYSTEM, "Z", "items", tsv)
    assert items_table(data_dir, "Z")["title"].to_list() == ["A, with comma"]


def test_unsupported_file_type_and_bad_map(data_dir, tmp_path):
    with pytest.raises(InputError, match="unsupported file type .pdf"):
        import_file(data_dir, SYSTEM, "UNI1", "items", write(tmp_path, "x.pdf", "x"))
    with pytest.raises(InputError, match="write it as canonical=source"):
        parse_mapping(["item_id"])
    with pytest.raises(InputError, match="has no column 'Barcode'"):
        import_file(data_dir, SYSTEM, "UNI1", "items", write(tmp_path, "i.csv", GOOD_ITEMS),
                    mapping={"item_id": "Barcode"})


def test_only_an_admin_of_the_institution_imports(data_dir, tmp_path):
    librarian = Principal("lib@uni1.example.org", "UNI1", frozenset({"librarian"}))
    other_admin = Principal("a@uni2.example.org", "UNI2", frozenset({"admin"}))
    path = write(tmp_path, "items.csv", GOOD_ITEMS)
    for actor in (librarian, other_admin):
        with pytest.raises(PermissionDenied):
            import_file(data_dir, actor, "UNI1", "items", path)
    assert not (data_dir / "institutions" / "UNI1").exists()


def test_other_kinds(data_dir, tmp_path):
    usage = write(tmp_path, "usage.csv", "title,isbn,platform,month,metric_type,count\n"
                                         "Giovanni's Room,9780345806567,JSTOR,2024-03,Total_Item_Requests,12\n")
    assert import_file(data_dir, SYSTEM, "UNI1", "e-usage", usage).kept == 1
    lists = write(tmp_path, "lists.csv", "list_id,course_code,term,title,isbn,enrolment,citation_type\n"
                                         "L1,ENG101,2025-FALL,Giovanni's Room,9780345806567,120,Essential\n")
    import_file(data_dir, SYSTEM, "UNI1", "reading-lists", lists)
    stored = pl.read_parquet(data_dir / "institutions" / "UNI1" / "reading_lists.parquet")
    assert stored["citation_type"].to_list() == ["required"]
    bad = write(tmp_path, "lists2.csv", "list_id,term,title,citation_type\nL1,2025-FALL,X,compulsory\n")
    with pytest.raises(InputError, match="column citation_type: 'compulsory' is not one of required"):
        import_file(data_dir, SYSTEM, "UNI1", "reading-lists", bad)


cells = st.one_of(st.none(), st.text(alphabet=string.printable + "éü€", max_size=12))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=25))
def test_no_row_is_lost_silently(tmp_path_factory, rows):
    """Whatever the cells hold, the import either fails clearly or accounts for every row."""
    tmp = tmp_path_factory.mktemp("prop")
    frame = pl.DataFrame({"item_id": [r[0] for r in rows], "title": [r[1] for r in rows],
                          "isbn": [r[2] for r in rows]}, schema={c: pl.String for c in ("item_id", "title", "isbn")})
    path = tmp / "items.parquet"
    frame.write_parquet(path)
    try:
        report = import_file(tmp / "data", SYSTEM, "P", "items", path)
    except InputError:
        assert not (tmp / "data" / "institutions" / "P" / "items.parquet").exists()
        return
    assert report.read == len(rows) == report.kept + report.rejected
    assert items_table(tmp / "data", "P").height == report.kept


def test_report_names_dropped_columns_once(data_dir, tmp_path):
    """The dropped columns are in the report's dropped_columns; its warnings do not repeat them."""
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,Borrower email\nB-1,A book,jane@example.org\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "items", path)
    assert report.dropped_columns == [{"column": "Borrower email", "reason": "personal"}]
    assert not [w for w in report.warnings if "Borrower email" in w]


def test_an_undeclared_non_date_names_the_page_box(data_dir, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,last_loan_date\nA,One,2020-01-02\nB,Two,0000-00-00\n")
    with pytest.raises(InputError, match=r"items\.csv, row 2 \(line 3\), column last_loan_date: '0000-00-00' "
                                         r"is not a date .*under “Dates that mean never” on the Import data page"):
        import_file(data_dir, SYSTEM, "UNI1", "items", path)
