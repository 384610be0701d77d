"""annual-stats import: survey-style yearly figures of one institution, for benchmarks.

Fixture: tests/fixtures/imls_pls_fy2020_excerpt.csv holds the header and six rows, copied
verbatim, of the IMLS Public Libraries Survey FY2020 library-systems file
(realdata/imls/imls_pls_fy2020_library_systems.csv, US federal public data): lines 2-5
(AK0001, AK0002, AK0003, AK0006: respondents with FY ends 06/30/2020 and 12/31/2019), line
58 (AK0082: a closed library, every figure blank) and line 639 (CA0212: a non-respondent with
TOTCIR blank). In that file blanks mean "not reported"; numbers are written like 7502.0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import string
import struct
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.core.access import Principal
from analytics.ingest.reader import InputError
from analytics.ingest.tabular import import_file, parse_mapping
from analytics.core.schema import CANONICAL, classify_sensitive, normalize_column_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IMLS = FIXTURES / "imls_pls_fy2020_excerpt.csv"
SYSTEM = Principal.system_job()
MEASURES = [c.name for c in CANONICAL["annual-stats"] if c.name != "year"]
IMLS_MAP = ["year=ENDDATE", "total_circulation=TOTCIR", "gate_count=VISITS", "staff_fte=TOTSTAFF"]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def stats_path(data_dir: Path, code: str = "UNI1") -> Path:
    return data_dir / "institutions" / code / "annual_stats.parquet"


def stats(data_dir: Path, code: str = "UNI1") -> pl.DataFrame:
    return pl.read_parquet(stats_path(data_dir, code))


def imls_rows() -> tuple[list[str], dict[str, list[str]]]:
    """The excerpt's header and its rows keyed by FSCSKEY, read with the csv module."""
    with IMLS.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, {row[0]: row for row in reader}


def imls_library_file(tmp_path: Path, *keys: str) -> Path:
    """A CSV with the IMLS header and the rows of the given libraries, as one institution's figures."""
    header, rows = imls_rows()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for key in keys:
        writer.writerow(rows[key])
    return write(tmp_path, "imls_" + "_".join(keys) + ".csv", buffer.getvalue())


@pytest.fixture
def imported(data_dir, tmp_path) -> bytes:
    """A good import already in place, to prove that later failures leave it byte-identical."""
    path = write(tmp_path, "good.csv", "year,total_circulation,gate_count\n2020,100,10\n2021,200,20\n")
    assert import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path).kept == 2
    return stats_path(data_dir).read_bytes()


# --- real IMLS figures ---------------------------------------------------------------------------

def test_imls_fixture_is_the_documented_excerpt():
    header, rows = imls_rows()
    assert header[:6] == ["FSCSKEY", "C_FSCS", "LIBID", "LIBNAME", "STARTDAT", "ENDDATE"]
    assert list(rows) == ["AK0001", "AK0002", "AK0003", "AK0006", "AK0082", "CA0212"]


@pytest.mark.parametrize("key, year, circulation, visits, staff", [
    ("AK0001", 2020, 7502.0, 4292.0, 0.68),        # FY 07/01/2019-06/30/2020
    ("AK0002", 2019, 1498017.0, 712885.0, 74.85),  # calendar year, ENDDATE 12/31/2019
    ("CA0212", 2020, None, None, 7.0),             # non-respondent: TOTCIR, VISITS blank = not reported
])
def test_imls_row_as_one_institutions_figures(data_dir, tmp_path, key, year, circulation, visits, staff):
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", imls_library_file(tmp_path, key),
                         mapping=parse_mapping(IMLS_MAP))
    assert (report.read, report.kept, report.rejected) == (1, 1, 0)
    assert report.mapped_columns == {"year": "ENDDATE", "total_circulation": "TOTCIR", "gate_count": "VISITS",
                                     "staff_fte": "TOTSTAFF"}
    assert report.dropped_columns == [{"column": "TOTOPEXP", "reason": "financial"},
                                      {"column": "TOTINCM", "reason": "financial"}]
    assert not [w for w in report.warnings if "TOTOPEXP" in w]  # named once, in dropped_columns
    assert {"LIBNAME", "STARTDAT", "PHYSCIR", "ELMATCIR", "REGBOR", "LIBRARIA", "RESPONSE_STATUS"} <= set(
        report.ignored_columns)
    stored = stats(data_dir)
    assert stored.columns == ["year", *MEASURES]
    assert stored.schema["year"] == pl.Int64
    assert all(stored.schema[m] == pl.Float64 for m in MEASURES)
    row = stored.row(0, named=True)
    assert (row["year"], row["total_circulation"], row["gate_count"], row["staff_fte"]) == (
        year, circulation, visits, staff)
    assert all(row[m] is None for m in MEASURES if m not in ("total_circulation", "gate_count", "staff_fte"))
    # No financial value (TOTOPEXP, TOTINCM), name or id reaches the stored file.
    header, rows = imls_rows()
    source = dict(zip(header, rows[key]))
    raw = stats_path(data_dir).read_bytes()
    for money in ("TOTOPEXP", "TOTINCM"):
        assert struct.pack("<d", float(source[money])) not in raw
    assert source["LIBNAME"].encode() not in raw and key.encode() not in raw


def test_imls_closed_library_has_no_year_and_fails(data_dir, tmp_path):
    """AK0082 (closed) has a blank ENDDATE: its only row is rejected, so nothing is imported."""
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", imls_library_file(tmp_path, "AK0082"),
                    mapping=parse_mapping(IMLS_MAP))
    assert str(err.value) == ("imls_AK0082.csv: no row has a year; all 1 row(s) were rejected "
                              "(first: row 1 (line 2): empty year). Nothing was imported.")
    assert not stats_path(data_dir).exists()


def test_whole_imls_excerpt_repeats_a_year(data_dir):
    """Six libraries are not one institution: two rows end their year on 06/30/2020."""
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", IMLS, mapping=parse_mapping(IMLS_MAP))
    assert str(err.value) == (
        "imls_pls_fy2020_excerpt.csv, row 3 (line 4), column year: '06/30/2020' is the year 2020 again; "
        "row 1 (line 2) already has it ('06/30/2020'). One row per year. 2 more row(s) repeat a year. "
        "Nothing was imported.")


# --- years ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, year", [
    ("2020", 2020), ("2020.0", 2020), ("FY2020", 2020), ("fy 2020", 2020), ("FY-2020", 2020),
    ("2019-20", 2020), ("2019/20", 2020), ("2019/2020", 2020), ("2019-2020", 2020), ("FY2019-20", 2020),
    ("2019 - 20", 2020), ("2019\u201320", 2020), ("1999-00", 2000), ("2020-2020", 2020),
    ("06/30/2020", 2020), ("6/30/20", 2020), ("12/31/2019", 2019), ("2020-06-30", 2020),
    ("2020-06-30 00:00:00", 2020), ("1900", 1900), ("2100", 2100),
])
def test_year_forms_give_the_year_the_period_ends_in(data_dir, tmp_path, cell, year):
    path = tmp_path / "years.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["year", "gate_count"], [cell, "1"]])
    import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    assert stats(data_dir)["year"].to_list() == [year]


@pytest.mark.parametrize("cell, expected", [
    ("abc", "is not a year (e.g. 2020, FY2020, 2019-20, 2019/2020 or the period's end date, 06/30/2020)"),
    ("2019-2022", "is not a year"),   # a period of three years
    ("2020-06", "is not a year"),     # a month, not a reporting year
    ("FY20", "is not a year"),        # two-digit years alone are ambiguous
    ("N/A", "is not a year"),
    ("1899", "is not a year between 1900 and 2100"),
    ("2101", "is not a year between 1900 and 2100"),
    ("01/01/1850", "is not a year between 1900 and 2100"),
])
def test_bad_year_fails_naming_row_and_changes_nothing(data_dir, tmp_path, imported, cell, expected):
    path = write(tmp_path, "bad_year.csv", f"year,gate_count\n2018,1\n{cell},2\n")
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    message = str(err.value)
    assert message.startswith(f"bad_year.csv, row 2 (line 3), column year: {cell!r} {expected}")
    assert message.endswith("Nothing was imported.")
    assert stats_path(data_dir).read_bytes() == imported


def test_duplicate_year_fails_naming_both_rows_and_changes_nothing(data_dir, tmp_path, imported):
    path = write(tmp_path, "dup.csv", "year,gate_count\n2018,1\n2019-20,2\nFY2020,3\n")
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    assert str(err.value) == ("dup.csv, row 3 (line 4), column year: 'FY2020' is the year 2020 again; "
                              "row 2 (line 3) already has it ('2019-20'). One row per year. Nothing was imported.")
    assert stats_path(data_dir).read_bytes() == imported


def test_items_pub_year_is_unchanged(data_dir, tmp_path):
    """The catalogue year keeps taking the first year it finds; only annual-stats reads periods."""
    path = write(tmp_path, "items.csv", "item_id,title,pub_year\nA,x,2019-20\nB,y,c2009.\nC,z,unknown\n")
    import_file(data_dir, SYSTEM, "UNI1", "items", path)
    items = pl.read_parquet(data_dir / "institutions" / "UNI1" / "items.parquet")
    assert items["pub_year"].to_list() == [2019, 2009, None]


def test_blank_year_is_rejected_and_counted_rows_sorted_by_year(data_dir, tmp_path):
    path = write(tmp_path, "blank.csv", "Year,Gate Count,staff_fte\n2021,30,2.5\n,99,9\n2019,10,1.25\n 2020 ,20,2\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    assert (report.read, report.kept, report.rejected) == (4, 3, 1)
    assert report.rejected_rows == [{"row": 2, "reason": "row 2 (line 3): empty year"}]
    stored = stats(data_dir)
    assert stored["year"].to_list() == [2019, 2020, 2021]
    assert stored["gate_count"].to_list() == [10.0, 20.0, 30.0]
    assert stored["staff_fte"].to_list() == [1.25, 2.0, 2.5]


# --- measures ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, value", [
    ("7502", 7502.0), ("7502.0", 7502.0), ("7,502", 7502.0), (" 12 ", 12.0), ("1.5e3", 1500.0),
    ("1,234,567.5", 1234567.5), ("1 234 567", 1234567.0), ("0.68", 0.68), (".5", 0.5), ("+3", 3.0),
    ("0", 0.0), ("-0", 0.0),
    ("", None), ("N/A", None), ("n/a", None), ("NA", None), ("na", None), ("-", None), (".", None),
])
def test_measure_forms(data_dir, tmp_path, cell, value):
    path = tmp_path / "measure.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["year", "volumes_held"], ["2020", cell]])
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    stored = stats(data_dir)["volumes_held"].to_list()
    assert stored == [value]
    if value == 0.0:
        assert math.copysign(1.0, stored[0]) == 1.0  # "-0" is stored as 0, not -0
    assert not any("negative survey code" in w for w in report.warnings)


@pytest.mark.parametrize("cell", ["abc", "1,5", "12 books", "inf", "NaN", "1e400", "0x10", "7.502,5", "$100"])
def test_non_numeric_measure_fails_naming_file_row_line_and_column(data_dir, tmp_path, imported, cell):
    path = tmp_path / "text.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["year", "ill_lending", "gate_count"], ["2018", "1", "1"],
                                      ["2019", "2", cell], ["2020", "3", "abc"]])
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    message = str(err.value)
    assert message.startswith(
        f"text.csv, row 2 (line 3), column gate_count: {cell!r} is not a number (e.g. 7502, 7502.0, 7,502 or "
        f"1.5e3; leave the cell blank or write N/A when not reported).")
    if cell != "abc":
        assert "1 more row(s) have the same problem (rows 3)" in message
    assert message.endswith("Nothing was imported.")
    assert stats_path(data_dir).read_bytes() == imported


def test_negative_survey_codes_read_as_not_reported(data_dir, tmp_path):
    path = write(tmp_path, "codes.csv",
                 "year,total_circulation,gate_count,staff_fte\n"
                 "2017,-1,100,-9\n2018,-3,-1,2.5\n2019,-9,300,3\n2020,1500.0,400,-1\n"
                 "2021,,500,-2.5\n2022,-1,600,-1234567\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path)
    assert (report.read, report.kept, report.rejected) == (6, 6, 0)
    assert report.warnings == [
        "total_circulation: 4 negative survey codes (-1, -3, -9) read as not reported.",
        "gate_count: 1 negative survey code (-1) read as not reported.",
        "staff_fte: 4 negative survey codes (-1, -2.5, -9, -1234567) read as not reported.",
    ]
    stored = stats(data_dir)
    assert stored["total_circulation"].to_list() == [None, None, None, 1500.0, None, None]
    assert stored["gate_count"].to_list() == [100.0, None, 300.0, 400.0, 500.0, 600.0]
    assert stored["staff_fte"].to_list() == [None, 2.5, 3.0, None, None, None]
    assert stored.select(pl.col(MEASURES).min()).row(0, named=True) == {
        m: {"total_circulation": 1500.0, "gate_count": 100.0, "staff_fte": 2.5}.get(m) for m in MEASURES}


# --- money ---------------------------------------------------------------------------------------

MONEY_NAMES = ["expenditure", "Total Expenditures", "salary", "Salaries and Wages", "wages", "price", "cost", "budget",
               "fund", "income", "TOTOPEXP", "TOTINCM", "SALARIES", "BENEFIT", "PRMATEXP", "ELMATEXP", "OTHMATEX",
               "CAP_REV", "LCAP_REV", "TOTEXPCO", "STAFFEXP", "OTHOPEXP", "OTHINCM", "LOCGVT", "STGVT", "FEDGVT",
               "LSALWAGES", "LFRNGBEN", "Materials Exp", "StaffSalaries"]
NOT_MONEY = ["TOTCIR", "PHYSCIR", "ELMATCIR", "VISITS", "REGBOR", "TOTSTAFF", "LIBRARIA", "POPU_LSA", "HRS_OPEN",
             "STARTDAT", "ENDDATE", "LIBNAME", "CAPACITY", "cap", "loan_cap", "export_id", "time_spent"]


@pytest.mark.parametrize("name", MONEY_NAMES)
def test_money_column_names_are_financial(name):
    assert classify_sensitive(normalize_column_name(name)) == "financial"


@pytest.mark.parametrize("name", NOT_MONEY)
def test_survey_measures_are_not_financial(name):
    assert classify_sensitive(normalize_column_name(name)) is None


def test_no_canonical_column_of_any_kind_is_sensitive():
    flagged = {(kind, c.name): classify_sensitive(c.name) for kind, columns in CANONICAL.items() for c in columns
               if classify_sensitive(c.name)}
    assert flagged == {}
    assert {c.name for c in CANONICAL["annual-stats"]} >= {"year", "ebooks_held", "gate_count", "ill_lending",
                                                           "full_text_requests", "population_served"}


def test_money_columns_are_dropped_and_named(data_dir, tmp_path):
    header = ["year", "gate_count", *MONEY_NAMES, "Comments"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(["2020", "5", *["987654321"] * len(MONEY_NAMES), "ok"])
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", write(tmp_path, "money.csv", buffer.getvalue()))
    assert [d["column"] for d in report.dropped_columns] == MONEY_NAMES
    assert {d["reason"] for d in report.dropped_columns} == {"financial"}
    assert report.ignored_columns == ["Comments"]
    assert not [w for w in report.warnings if "expenditure" in w]  # named once, in dropped_columns
    assert stats(data_dir)["gate_count"].to_list() == [5.0]
    assert struct.pack("<d", 987654321.0) not in stats_path(data_dir).read_bytes()


@pytest.mark.parametrize("pair", ["staff_fte=TOTOPEXP", "total_circulation=Materials Exp", "gate_count=budget"])
def test_mapping_a_money_column_is_refused(data_dir, tmp_path, imported, pair):
    path = write(tmp_path, "map.csv", "year,TOTOPEXP,Materials Exp,budget\n2020,55082.0,100,5\n")
    canonical, source = pair.split("=")
    with pytest.raises(InputError) as err:
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path, mapping=parse_mapping([pair]))
    assert str(err.value) == (f"--map {pair}: column {source!r} of map.csv carries money; financial values are never "
                              f"stored or shared, so it cannot be imported as {canonical}. Nothing was imported.")
    assert stats_path(data_dir).read_bytes() == imported


def test_mapping_a_money_column_is_refused_for_other_kinds_too(data_dir, tmp_path):
    path = write(tmp_path, "loans.csv", "item_id,loan_date,fine_amount\nB1,2024-01,2\n")
    with pytest.raises(InputError, match="column 'fine_amount' of loans.csv carries money"):
        import_file(data_dir, SYSTEM, "UNI1", "loans", path, mapping={"count": "fine_amount"})
    assert not (data_dir / "institutions" / "UNI1").exists()


# --- file formats --------------------------------------------------------------------------------

def test_windows_1252_csv(data_dir, tmp_path):
    text = ("Année,Période,Prêts,Entrées,Budget (€)\n"
            "x,2018\u201319,\"1,250\",300,1000\n"
            "y,2019\u201320,1300,N/A,1100\n")
    path = write(tmp_path, "stats_fr.csv", text, encoding="cp1252")
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", path,
                         mapping=parse_mapping(["year=Période", "total_circulation=Prêts", "gate_count=Entrées"]))
    assert report.encoding == "windows-1252"
    assert "not UTF-8" in report.warnings[0]
    assert report.dropped_columns == [{"column": "Budget (€)", "reason": "financial"}]
    assert report.ignored_columns == ["Année"]
    stored = stats(data_dir)
    assert stored["year"].to_list() == [2019, 2020]
    assert stored["total_circulation"].to_list() == [1250.0, 1300.0]
    assert stored["gate_count"].to_list() == [300.0, None]


def test_xlsx_with_number_and_date_cells(data_dir, tmp_path):
    frame = pl.DataFrame({
        "Period End": [date(2020, 6, 30), date(2021, 6, 30), date(2019, 6, 30)],
        "Volumes Held": [120500.0, 121000.0, None],
        "Staff FTE": [12.5, 13.0, 12.25],
        "ILL Lending": ["N/A", "-1", "44"],
        "Salaries": [900000.0, 910000.0, 890000.0],
    })
    xlsx = tmp_path / "stats.xlsx"
    frame.write_excel(xlsx)
    report = import_file(data_dir, SYSTEM, "UNI1", "annual-stats", xlsx, mapping={"year": "Period End"})
    assert (report.read, report.kept, report.rejected) == (3, 3, 0)
    assert report.dropped_columns == [{"column": "Salaries", "reason": "financial"}]
    assert "ill_lending: 1 negative survey code (-1) read as not reported." in report.warnings
    stored = stats(data_dir)
    assert stored["year"].to_list() == [2019, 2020, 2021]
    assert stored["volumes_held"].to_list() == [None, 120500.0, 121000.0]
    assert stored["staff_fte"].to_list() == [12.25, 12.5, 13.0]
    assert stored["ill_lending"].to_list() == [44.0, None, None]


def test_bad_value_in_xlsx_names_the_sheet_row(data_dir, tmp_path):
    xlsx = tmp_path / "bad.xlsx"
    pl.DataFrame({"year": [2020, 2021], "gate_count": ["10", "many"]}).write_excel(xlsx)
    with pytest.raises(InputError, match=r"bad\.xlsx, row 2 \(sheet row 3\), column gate_count: 'many' is not a "
                                         r"number"):
        import_file(data_dir, SYSTEM, "UNI1", "annual-stats", xlsx)


# --- command line --------------------------------------------------------------------------------

def test_cli_import_annual_stats(capsys, tmp_path):
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "institution", "add", "UNI1", "--name", "Uni One", "--type", "public",
                 "--region", "NA", "--fte", "0", "--go-live", "2020-01-01", "--country", "US"]) == 0
    capsys.readouterr()
    path = imls_library_file(tmp_path, "AK0002")
    code = main(["--data-dir", data, "import", "UNI1", "annual-stats", str(path), "--format", "json",
                 *[arg for pair in IMLS_MAP for arg in ("--map", pair)]])
    out, _ = capsys.readouterr()
    assert code == 0
    report = json.loads(out)
    assert (report["kind"], report["read"], report["kept"], report["rejected"]) == ("annual-stats", 1, 1, 0)
    assert [d["column"] for d in report["dropped_columns"]] == ["TOTOPEXP", "TOTINCM"]
    assert stats(Path(data))["total_circulation"].to_list() == [1498017.0]
    before = stats_path(Path(data)).read_bytes()
    code = main(["--data-dir", data, "import", "UNI1", "annual-stats", str(path), "--map", "year=ENDDATE",
                 "--map", "staff_fte=TOTOPEXP"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "--map staff_fte=TOTOPEXP: column 'TOTOPEXP' of imls_AK0002.csv carries money" in err
    assert stats_path(Path(data)).read_bytes() == before


# --- property --------------------------------------------------------------------------------------

FORMS = ["7502", "7502.0", "7,502", " 12 ", "1.5e3", "-1", "-3", "-9", "N/A", "NA", "-", ".", "", "abc", "1,5",
         "\u0661\u0662", "\u22121", "1e999", "nan", "\u00a01 234\u00a0", "٣", "1_000", "--1", "+.5e-3"]
measure_cells = st.one_of(
    st.none(),
    st.sampled_from(FORMS),
    st.text(alphabet=string.printable + "\u00a0\u2212éü€٣", max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-10, max_value=10**12).map(str),
)
# Mostly distinct valid years (row i holds 2000 + i), sometimes blank: the measure cells decide.
blank_year = st.sampled_from([False, False, False, False, True])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(blank_year, measure_cells, measure_cells), min_size=1, max_size=12))
def test_any_cell_imports_or_fails_clearly(tmp_path_factory, rows):
    """Whatever a measure cell holds, the import fails with InputError or accounts for every row."""
    tmp = tmp_path_factory.mktemp("prop")
    years = [None if blank else f"FY{2000 + i}" if i % 3 else str(2000 + i) for i, (blank, _, _) in enumerate(rows)]
    frame = pl.DataFrame({"year": years, "total_circulation": [r[1] for r in rows],
                          "staff_fte": [r[2] for r in rows]},
                         schema={"year": pl.String, "total_circulation": pl.String, "staff_fte": pl.String})
    path = tmp / "stats.parquet"
    frame.write_parquet(path)
    try:
        report = import_file(tmp / "data", SYSTEM, "P", "annual-stats", path)
    except InputError:
        assert not stats_path(tmp / "data", "P").exists()
        return
    assert report.read == len(rows) == report.kept + report.rejected
    stored = stats(tmp / "data", "P")
    assert stored.height == report.kept > 0
    assert stored["year"].is_unique().all() and stored["year"].is_sorted()
    for name in ("total_circulation", "staff_fte"):
        values = stored[name].drop_nulls()
        assert values.dtype == pl.Float64
        assert ((values >= 0) & values.is_finite()).all()
