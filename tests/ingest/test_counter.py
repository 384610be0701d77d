"""COUNTER report import (KIND counter): official R5/R5.1 samples, pycounter's R4 files, merging."""

from __future__ import annotations

import csv
import json
import string
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from analytics.core.access import PermissionDenied, Principal
from analytics.ingest.counter import import_counter
from analytics.ingest.reader import InputError
from analytics.ingest.tabular import import_file
from analytics.synthetic.counter_files import generate_counter_tsv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "counter"
R50, R51, R4 = FIXTURES / "r50", FIXTURES / "r51", FIXTURES / "r4"
SYSTEM = Principal.system_job()
CODE = "UNI1"

# Every TR view of the official samples: file stem -> (read, kept, rejected, stored rows,
# zero cells not stored) and a spot check (title, month, metric, count). The JSON twin of
# each TSV gives the same rows (R5 JSON leaves zero months out, so it has no zero cells).
R5_SAMPLES = {
    "r50/Sample-TR": ((21, 21, 0, 35, 16), ("Book 1715", date(2016, 3, 1), "Total_Item_Requests", 5)),
    "r50/Sample-TR_B1": ((2, 2, 0, 2, 4), ("Book 1715", date(2016, 3, 1), "Unique_Title_Requests", 5)),
    "r50/Sample-TR_B2": ((2, 2, 0, 3, 3), ("Book 1715", date(2016, 2, 1), "No_License", 2)),
    "r50/Sample-TR_B3": ((6, 6, 0, 6, 12), ("Book 1715", date(2016, 3, 1), "Total_Item_Investigations", 10)),
    "r50/Sample-TR_J1": ((4, 4, 0, 12, 0), ("Journal 10", date(2016, 2, 1), "Total_Item_Requests", 9)),
    "r50/Sample-TR_J2": ((1, 1, 0, 2, 1), ("Journal 12", date(2016, 1, 1), "No_License", 1)),
    "r50/Sample-TR_J3": ((12, 12, 0, 24, 0), ("Journal 10", date(2016, 3, 1), "Total_Item_Investigations", 20)),
    "r50/Sample-TR_J4": ((4, 4, 0, 12, 0), ("Journal 11", date(2016, 2, 1), "Unique_Item_Requests", 6)),
    # TR: Title 3 has Controlled/Open x Regular/TDM x YOP 2021/2022 rows: 2 x (150+216+451+650).
    "r51/TR_sample_r51": ((156, 156, 0, 768, 0), ("Title 3", date(2022, 1, 1), "Total_Item_Requests", 2934)),
    "r51/TRB1_sample_r51": ((4, 4, 0, 48, 0), ("Title 1", date(2022, 1, 1), "Total_Item_Requests", 662)),
    "r51/TRB2_sample_r51": ((4, 4, 0, 48, 0), ("Title 7", date(2022, 12, 1), "No_License", 38)),
    "r51/TRB3_sample_r51": ((12, 12, 0, 144, 0), ("Title 1", date(2022, 1, 1), "Total_Item_Investigations", 1104)),
    "r51/TRJ1_sample_r51": ((2, 2, 0, 24, 0), ("Title 3", date(2022, 12, 1), "Total_Item_Requests", 1050)),
    "r51/TRJ2_sample_r51": ((2, 2, 0, 24, 0), ("Title 3", date(2022, 1, 1), "Limit_Exceeded", 174)),
    # TR_J3 sums Access_Type Controlled (500) and Open (1504); TR_J4 sums YOP 2022 and 2021.
    "r51/TRJ3_sample_r51": ((8, 8, 0, 48, 0), ("Title 3", date(2022, 1, 1), "Total_Item_Investigations", 2004)),
    "r51/TRJ4_sample_r51": ((4, 4, 0, 24, 0), ("Title 3", date(2022, 1, 1), "Total_Item_Requests", 300)),
}

# pycounter's R4 reports (and two early R5 drafts): file -> (report id, read, kept, stored, zero
# cells, platforms) and a spot check.
R4_SAMPLES = {
    "C4BR1.tsv": (("BR1", 2, 2, 1, 11, ["HHGTTG Online"]),
                  ("Hitchhikers Guide to the Galaxy", date(2012, 2, 1), "Unique_Title_Requests", 25)),
    "C4BR2.tsv": (("BR2", 2, 2, 1, 11, ["HHGTTG Online"]),
                  ("Hitchhikers Guide to the Galaxy", date(2012, 2, 1), "Total_Item_Requests", 25)),
    "C4JR1.csv": (("JR1", 2, 2, 7, 17, ["MJO"]), ("Acta Numerica", date(2011, 1, 1), "Total_Item_Requests", 2)),
    "C4JR1mul.csv": (("JR1", 2, 2, 7, 17, ["MJO", "MJO2"]),
                     ("Acta Numerica", date(2011, 12, 1), "Total_Item_Requests", None)),
    "JR1.xlsx": (("JR1", 11, 11, 132, 0, ["Silverchair"]), ("JAMA", date(2013, 1, 1), "Total_Item_Requests", 5414)),
    "simpleJR1.tsv": (("JR1", 4, 4, 29, 11, ["Journal of Periodontology Online"]),
                      ("Journal of Periodontology", date(2013, 10, 1), "Total_Item_Requests", 124)),
    "tsvC4JR1.tsv": (("JR1", 4, 4, 29, 11, ["Journal of Periodontology Online"]),  # Jan-13 month headers
                     ("Journal of Periodontology", date(2013, 10, 1), "Total_Item_Requests", 124)),
    "issue_14.tsv": (("JR1", 4, 4, 29, 11, ["Journal of Periodontology Online"]),  # period begins 2013-01-31
                     ("Annals of Periodontology", date(2013, 1, 1), "Total_Item_Requests", 1)),
    "tr_j1.tsv": (("TR_J1", 4, 4, 0, 24, ["PlatformX"]), None),  # every month blank
    "tr_j2.tsv": (("TR_J2", 4, 4, 1, 23, ["PlatformX"]), ("Journal A", date(2017, 1, 1), "Limit_Exceeded", 3)),
}


def table_path(data_dir: Path, code: str = CODE) -> Path:
    return data_dir / "institutions" / code / "e_usage.parquet"


def table(data_dir: Path, code: str = CODE) -> pl.DataFrame:
    return pl.read_parquet(table_path(data_dir, code))


def count_of(usage: pl.DataFrame, title: str, month: date, metric: str) -> int | None:
    found = usage.filter((pl.col("title") == title) & (pl.col("month") == month) & (pl.col("metric_type") == metric))
    assert found.height <= 1
    return found["count"].item() if found.height else None


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sample_text(stem: str = "r50/Sample-TR_J1") -> str:
    return (FIXTURES / f"{stem}.tsv").read_text(encoding="utf-8-sig")


@pytest.fixture
def imported(data_dir) -> bytes:
    """r50 TR_J1 already stored, to prove later failures leave the table byte for byte intact."""
    import_counter(data_dir, SYSTEM, CODE, R50 / "Sample-TR_J1.tsv")
    return table_path(data_dir).read_bytes()


# --------------------------------------------------------------- official samples


@pytest.mark.parametrize("suffix", [".tsv", ".json"])
@pytest.mark.parametrize("stem", sorted(R5_SAMPLES))
def test_official_title_report_samples(data_dir, stem, suffix):
    (read, kept, rejected, stored, zero), (title, month, metric, count) = R5_SAMPLES[stem]
    report = import_counter(data_dir, SYSTEM, CODE, FIXTURES / f"{stem}{suffix}")
    assert (report.read, report.kept, report.rejected, report.stored_rows) == (read, kept, rejected, stored)
    assert report.read == report.kept + report.rejected
    assert report.zero_cells == (zero if suffix == ".tsv" else 0)
    assert report.release == ("5" if stem.startswith("r50") else "5.1")
    usage = table(data_dir)
    assert usage.height == stored == report.table_rows
    assert count_of(usage, title, month, metric) == count
    assert usage.schema == pl.Schema({"title": pl.String, "isbn": pl.String, "issn": pl.String,
                                      "platform": pl.String, "month": pl.Date, "metric_type": pl.String,
                                      "count": pl.Int64, "work_key": pl.String, "match_method": pl.String})
    assert usage["count"].min() > 0 and usage["work_key"].null_count() == 0


@pytest.mark.parametrize("stem", sorted(R5_SAMPLES))
def test_tsv_and_json_of_a_sample_give_the_same_table(tmp_path, stem):
    import_counter(tmp_path / "a", SYSTEM, CODE, FIXTURES / f"{stem}.tsv")
    import_counter(tmp_path / "b", SYSTEM, CODE, FIXTURES / f"{stem}.json")
    assert_frame_equal(table(tmp_path / "a"), table(tmp_path / "b"))


def test_identifiers_go_through_the_canonical_path(data_dir):
    report = import_counter(data_dir, SYSTEM, CODE, R51 / "TRB1_sample_r51.tsv")
    usage = table(data_dir)
    # Title 7's ISBN 979-8-88888-888-9 is valid; Title 1's 979-8-88888-888-8 fails the check digit.
    assert usage.filter(pl.col("title") == "Title 7")["isbn"].unique().to_list() == ["9798888888889"]
    assert usage.filter(pl.col("title") == "Title 7")["work_key"].unique().to_list() == ["isbn:9798888888889"]
    assert usage.filter(pl.col("title") == "Title 1")["isbn"].null_count() == 24
    assert report.invalid_isbns == 2 and any("check digit" in w for w in report.warnings)
    import_counter(data_dir, SYSTEM, "J", R50 / "Sample-TR_J1.tsv")
    journal = table(data_dir, "J").filter(pl.col("title") == "Journal 10")
    assert journal["issn"].unique().to_list() == ["2042-5813"]  # Print_ISSN first, as the canonical import
    assert journal["work_key"].unique().to_list() == ["issn:2042-5813"]


def test_institution_identity_is_never_stored_or_echoed(data_dir):
    for path in (R50 / "Sample-TR_J1.tsv", R50 / "Sample-TR_J1.json"):
        report = import_counter(data_dir, SYSTEM, CODE, path)
        said = json.dumps(report.as_dict())
        stored = str(table(data_dir).rows())
        for secret in ("Client Demo Site", "1234123412341234", "cid-123456"):
            assert secret not in said and secret not in stored
            assert secret.encode() not in table_path(data_dir).read_bytes()


def test_r5_excel_and_csv_forms_give_the_same_table(tmp_path):
    rows = list(csv.reader((R51 / "TRJ1_sample_r51.tsv").read_text(encoding="utf-8-sig").splitlines(),
                           delimiter="\t"))
    xlsx = tmp_path / "trj1.xlsx"
    workbook = xlsxwriter.Workbook(xlsx)
    sheet = workbook.add_worksheet()
    for r, cells in enumerate(rows):
        for c, cell in enumerate(cells):
            if cell.isdigit() and r > 14:
                sheet.write_number(r, c, int(cell))  # counts are numbers in a spreadsheet
            elif cell:
                sheet.write_string(r, c, cell)
    workbook.close()
    with (tmp_path / "trj1.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    import_counter(tmp_path / "from-tsv", SYSTEM, CODE, R51 / "TRJ1_sample_r51.tsv")
    for name in ("trj1.xlsx", "trj1.csv"):
        report = import_counter(tmp_path / f"from-{name}", SYSTEM, CODE, tmp_path / name)
        assert (report.read, report.kept, report.stored_rows) == (2, 2, 24)
        assert_frame_equal(table(tmp_path / f"from-{name}"), table(tmp_path / "from-tsv"))


# ------------------------------------------------------------------------ R4


@pytest.mark.parametrize("name", sorted(R4_SAMPLES))
def test_r4_and_early_r5_reports(data_dir, name):
    (report_id, read, kept, stored, zero, platforms), spot = R4_SAMPLES[name]
    report = import_counter(data_dir, SYSTEM, CODE, R4 / name)
    assert (report.report_id, report.read, report.kept, report.rejected) == (report_id, read, kept, 0)
    assert (report.stored_rows, report.zero_cells, report.platforms) == (stored, zero, platforms)
    assert table(data_dir).height == stored
    if spot:
        title, month, metric, count = spot
        assert count_of(table(data_dir), title, month, metric) == count
    if report_id in ("BR1", "BR2", "JR1"):
        assert report.release == "4"
        assert any(w.startswith(f"COUNTER R4 {report_id} counts") for w in report.warnings)


def test_r4_metric_mapping_is_named_in_the_report(data_dir):
    said = {name: import_counter(data_dir, SYSTEM, CODE, R4 / name).warnings[0]
            for name in ("C4BR1.tsv", "C4BR2.tsv", "C4JR1.csv")}
    assert "Successful Title Requests; stored as the R5 metric Unique_Title_Requests" in said["C4BR1.tsv"]
    assert "Successful Section Requests; stored as the R5 metric Total_Item_Requests" in said["C4BR2.tsv"]
    assert "Full-Text Article Requests; stored as the R5 metric Total_Item_Requests" in said["C4JR1.csv"]


@pytest.mark.parametrize("name, message", [
    ("C4JR1_bad.csv", r"C4JR1_bad\.csv, line 8, column '4-2011': not a month"),
    ("JR1_bad.xlsx", r"JR1_bad\.xlsx, sheet row 8, column '11-Feb': not a month"),
    ("C4JR1big.csv", (r"C4JR1big\.csv, line 8, column 'Jan-2013': 2013-01 lies outside the reporting period "
                      r"2011-01-01 to 2012-12-31")),
])
def test_bad_r4_reports_fail_clearly_and_change_nothing(data_dir, imported, name, message):
    with pytest.raises(InputError, match=message):
        import_counter(data_dir, SYSTEM, CODE, R4 / name)
    assert table_path(data_dir).read_bytes() == imported


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("path, message", [
    (R50 / "Sample-PR.tsv", r"Sample-PR\.tsv, line 2, Report_ID: 'PR' is a Platform Report"),
    (R50 / "Sample-PR.json", r"Sample-PR\.json, Report_Header\.Report_ID: 'PR' is a Platform Report"),
    (R51 / "PRP1_sample_r51.tsv", r"line 2, Report_ID: 'PR_P1' is a Platform Report"),
    (R4 / "PR1.tsv", r"PR1\.tsv, line 1: 'Platform Report 1 \(R4\)' is COUNTER R4 PR1"),
    (R4 / "C4JR1GOA.csv", r"'Journal Report 1 GOA \(R4\)' is COUNTER R4 JR1 GOA"),
])
def test_other_reports_are_refused(data_dir, imported, path, message):
    with pytest.raises(InputError, match=message) as err:
        import_counter(data_dir, SYSTEM, CODE, path)
    assert "Supported: COUNTER Release 5 / 5.1 title reports TR, TR_B1" in str(err.value)
    assert "Release 4 BR1, BR2, JR1" in str(err.value)
    assert table_path(data_dir).read_bytes() == imported


def test_sushi_error_answer_is_shown(data_dir):
    with pytest.raises(InputError, match="SUSHI server said: 2000 Requestor Not Authorized to Access Service"):
        import_counter(data_dir, SYSTEM, CODE, R4 / "not_authorized.json")
    assert not table_path(data_dir).exists()


def edited(old: str, new: str, stem: str = "r50/Sample-TR_J1") -> str:
    text = sample_text(stem)
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("text, message", [
    (edited("Report_ID\tTR_J1\n", ""), r"the header block \(lines 1-11\) has no Report_ID row"),
    (edited("Release\t5\n", "Release\t4\n"), r"line 3, Release: '4' is not a supported COUNTER release"),
    (edited("Begin_Date=2016-01-01; End_Date=2016-03-31", "2016-01-01 until 2016-03-31"),
     r"line 10, Reporting_Period: '2016-01-01 until 2016-03-31' is not a reporting period"),
    (edited("Begin_Date=2016-01-01; End_Date=2016-03-31", "Begin_Date=2016-04-01; End_Date=2016-03-31"),
     r"line 10, Reporting_Period: the period begins \(2016-04-01\) after it ends"),
    (edited("Reporting_Period\tBegin_Date=2016-01-01; End_Date=2016-03-31\n", ""),
     r"has no Reporting_Period row"),
    (edited("End_Date=2016-03-31", "End_Date=2016-02-29"),
     r"line 14, column 'Mar-2016': 2016-03 lies outside the reporting period 2016-01-01 to 2016-02-29"),
    (edited("\nTitle\tPublisher", "\nName\tPublisher"), r"line 14: expected the column header row"),
    (edited("\tMar-2016\n", "\tMarch\n"), r"line 14, column 'March': not a month"),
    (edited("Total_Item_Requests\t25\t6\t9\t10", "Total_Item_Requests\t25\t6\tnine\t10"),
     r"line 15, column Feb-2016: 'nine' is not a whole number of zero or more"),
    (edited("Total_Item_Requests\t25\t6\t9\t10", "Total_Item_Requests\t25\t6\t-9\t10"),
     r"line 15, column Feb-2016: '-9' is not a whole number"),
    ("title,platform,month,metric_type,count\nA,X,2024-01,Total_Item_Requests,3\n",
     r"plain\.tsv, line 1: no COUNTER header block: the first cell should be Report_Name"),
    ("Report_Name\tx\nReport_ID\tTR_J1\nRelease\t5\nReporting_Period\tBegin_Date=2016-01-01; End_Date=2016-03-31\n",
     r"is not followed by a column header row and data"),
])
def test_garbled_header_block_or_cells_name_file_and_line(data_dir, imported, tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        import_counter(data_dir, SYSTEM, CODE, write(tmp_path, "plain.tsv", text))
    assert table_path(data_dir).read_bytes() == imported


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"{not json", r"not valid JSON \(line 1, column 2\)"),
    (b"[]", "not a COUNTER report"),
    (b'{"Report_Header": {"Report_ID": "TR_J1", "Release": "5"}, "Report_Items": [{"Title": "x"}]}',
     "no Begin_Date and End_Date"),
])
def test_broken_json(data_dir, tmp_path, content, message):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_counter(data_dir, SYSTEM, CODE, path)


def test_json_month_outside_period_names_the_item(data_dir, tmp_path):
    document = json.loads((R51 / "TRJ1_sample_r51.json").read_text(encoding="utf-8"))
    document["Report_Header"]["Report_Filters"]["End_Date"] = "2022-11-30"
    path = write(tmp_path, "trj1.json", json.dumps(document))
    with pytest.raises(InputError, match=r"Report_Items\[0\]\.Attribute_Performance\[0\]\.Performance\."
                                         r"Total_Item_Requests\.2022-12: the month 2022-12 lies outside"):
        import_counter(data_dir, SYSTEM, CODE, path)


def test_blank_titles_are_rejected_and_counted(data_dir, tmp_path):
    text = edited("Journal 11\tPublisher 111\t\tPPDelta\t\tppdelta:11\t2042-5163\t2042-5139\t\tTotal_Item_Requests",
                  "\tPublisher 111\t\tPPDelta\t\tppdelta:11\t2042-5163\t2042-5139\t\tTotal_Item_Requests")
    report = import_counter(data_dir, SYSTEM, CODE, write(tmp_path, "blank.tsv", text))
    assert (report.read, report.kept, report.rejected) == (4, 3, 1)
    assert report.rejected_rows == [{"row": 3, "reason": "line 17: empty title"}]
    assert report.stored_rows == 9


def test_only_an_admin_of_the_institution_imports(data_dir):
    librarian = Principal("lib@uni1.example.org", CODE, frozenset({"librarian"}))
    with pytest.raises(PermissionDenied):
        import_counter(data_dir, librarian, CODE, R50 / "Sample-TR_J1.tsv")
    assert not (data_dir / "institutions" / CODE).exists()


# -------------------------------------------------------------------- merging


def test_same_report_twice_gives_the_identical_table(data_dir, imported):
    first = table(data_dir)
    report = import_counter(data_dir, SYSTEM, CODE, R50 / "Sample-TR_J1.tsv")
    assert report.replaced_rows == 12 and report.table_rows == 12
    assert_frame_equal(table(data_dir), first)
    assert table_path(data_dir).read_bytes() == imported
    # The JSON of the same report replaces the same rows too.
    import_counter(data_dir, SYSTEM, CODE, R50 / "Sample-TR_J1.json")
    assert_frame_equal(table(data_dir), first)
    assert table(data_dir)["count"].sum() == 25 + 22 + 15 + 15


def test_two_platforms_are_merged(data_dir, imported):
    before = table(data_dir)
    report = import_counter(data_dir, SYSTEM, CODE, R51 / "TRJ1_sample_r51.tsv")
    assert (report.replaced_rows, report.table_rows) == (0, 12 + 24)
    both = table(data_dir)
    assert sorted(both["platform"].unique().to_list()) == ["PPDelta", "Platform 1"]
    assert_frame_equal(both.filter(pl.col("platform") == "PPDelta"), before)
    import_counter(data_dir, SYSTEM, CODE, R50 / "Sample-TR_J1.tsv")
    assert_frame_equal(table(data_dir), both)


def test_journal_and_book_views_of_one_platform_keep_each_other(data_dir):
    import_counter(data_dir, SYSTEM, CODE, R51 / "TRJ1_sample_r51.tsv")
    report = import_counter(data_dir, SYSTEM, CODE, R51 / "TRB1_sample_r51.tsv")
    assert (report.replaced_rows, report.table_rows) == (0, 24 + 48)
    both = table(data_dir)
    import_counter(data_dir, SYSTEM, CODE, R51 / "TRJ1_sample_r51.tsv")
    import_counter(data_dir, SYSTEM, CODE, R51 / "TRB1_sample_r51.tsv")
    assert_frame_equal(table(data_dir), both)
    assert count_of(both, "Title 3", date(2022, 12, 1), "Total_Item_Requests") == 1050
    assert count_of(both, "Title 1", date(2022, 1, 1), "Total_Item_Requests") == 662


def test_a_report_replaces_only_its_own_months_titles_and_platform(data_dir, tmp_path):
    canonical = write(tmp_path, "usage.csv",
                      "title,issn,platform,month,metric_type,count\n"
                      "Journal 10,2042-5813,PPDelta,2016-02,Total_Item_Requests,999\n"   # replaced
                      "Journal 10,2042-5813,PPDelta,2015-12,Total_Item_Requests,7\n"     # other month
                      "Journal 99,0317-8471,PPDelta,2016-02,Total_Item_Requests,4\n"     # other title
                      "Journal 10,2042-5813,JSTOR,2016-02,Total_Item_Requests,5\n")      # other platform
    import_file(data_dir, SYSTEM, CODE, "e-usage", canonical)
    report = import_counter(data_dir, SYSTEM, CODE, R50 / "Sample-TR_J1.tsv")
    assert (report.replaced_rows, report.table_rows) == (1, 3 + 12)
    usage = table(data_dir)
    assert count_of(usage.filter(pl.col("platform") == "PPDelta"), "Journal 10", date(2016, 2, 1),
                    "Total_Item_Requests") == 9
    assert count_of(usage, "Journal 10", date(2015, 12, 1), "Total_Item_Requests") == 7
    assert count_of(usage, "Journal 99", date(2016, 2, 1), "Total_Item_Requests") == 4
    assert count_of(usage.filter(pl.col("platform") == "JSTOR"), "Journal 10", date(2016, 2, 1),
                    "Total_Item_Requests") == 5


def test_a_corrected_report_replaces_counts_and_zeroes(data_dir, imported, tmp_path):
    # A later report for March only, where Journal 10's requests went to 0 and Journal 11's changed.
    text = sample_text().replace("Begin_Date=2016-01-01", "Begin_Date=2016-03-01")
    lines = text.splitlines()
    header = lines[:13] + ["\t".join(lines[13].split("\t")[:11] + ["Mar-2016"])]
    body = ["\t".join(line.split("\t")[:11] + [new]) for line, new in zip(lines[14:], ["0", "0", "8", "7"])]
    report = import_counter(data_dir, SYSTEM, CODE, write(tmp_path, "march.tsv", "\n".join(header + body)))
    assert (report.stored_rows, report.zero_cells, report.replaced_rows) == (2, 2, 4)
    usage = table(data_dir)
    assert usage.height == 12 - 2
    assert count_of(usage, "Journal 10", date(2016, 3, 1), "Total_Item_Requests") is None
    assert count_of(usage, "Journal 10", date(2016, 2, 1), "Total_Item_Requests") == 9  # other month kept
    assert count_of(usage, "Journal 11", date(2016, 3, 1), "Total_Item_Requests") == 8


# ------------------------------------------------------------ progress and size


def test_progress_and_generated_report(data_dir, tmp_path):
    path = tmp_path / "generated.tsv"
    cells = generate_counter_tsv(path, titles=500, months=12)
    assert cells == 12_000
    calls = []
    report = import_counter(data_dir, SYSTEM, CODE, path, progress=lambda done, total: calls.append((done, total)))
    assert (report.read, report.kept, report.report_id) == (1000, 1000, "TR_J1")
    assert report.stored_rows + report.zero_cells == cells
    assert calls[-1] == (report.stored_rows, report.stored_rows) and len(calls) == 2
    assert all(done <= total for done, total in calls)
    assert table(data_dir)["work_key"].str.starts_with("issn:").all()


# ------------------------------------------------------------------ properties


def fresh(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prop")


def outcome(data_dir: Path, path: Path) -> None:
    """Either a report that accounts for every row, or an InputError and no table."""
    try:
        report = import_counter(data_dir, SYSTEM, CODE, path)
    except InputError:
        assert not table_path(data_dir).exists()
        return
    assert report.read == report.kept + report.rejected
    assert table(data_dir).height == report.table_rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=st.text(alphabet=string.printable + "éü€\u00a0٣", max_size=14))
def test_any_text_in_a_count_cell(tmp_path_factory, cell):
    tmp = fresh(tmp_path_factory)
    text = sample_text().replace("Total_Item_Requests\t25\t6\t9\t10", f"Total_Item_Requests\t25\t6\t{cell}\t10")
    outcome(tmp / "data", write(tmp, "cell.tsv", text))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300),
                         st.binary(max_size=200).map(lambda b: sample_text().encode()[:400] + b)),
       suffix=st.sampled_from([".tsv", ".csv", ".json", ".xlsx"]))
def test_any_file_bytes(tmp_path_factory, content, suffix):
    tmp = fresh(tmp_path_factory)
    path = tmp / f"report{suffix}"
    path.write_bytes(content)
    outcome(tmp / "data", path)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3),
                           max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, where=st.sampled_from(["count", "month", "title", "item_id", "performance"]))
def test_any_json_value(tmp_path_factory, value, where):
    tmp = fresh(tmp_path_factory)
    document = json.loads((R50 / "Sample-TR_J1.json").read_text(encoding="utf-8"))
    item = document["Report_Items"][0]
    if where == "count":
        item["Performance"][1]["Instance"][0]["Count"] = value
    elif where == "month":
        item["Performance"][1]["Period"]["Begin_Date"] = value
    elif where == "title":
        item["Title"] = value
    elif where == "item_id":
        item["Item_ID"] = value
    else:
        item["Performance"] = value
    outcome(tmp / "data", write(tmp, "report.json", json.dumps(document)))
