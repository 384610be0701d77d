"""The import page's column guide, templates, notice of columns not imported and "never" dates."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analytics.core.access import Principal
from analytics.core.schema import CANONICAL
from analytics.ingest import guide
from analytics.ingest.reader import read_table
from analytics.ingest.tabular import import_file

SYSTEM = Principal.system_job()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UVA_SOURCES = {"item_id": "item_barcode", "acquired_date": "item_created_date",
               "last_loan_date": "last_checkout_date"}


@pytest.mark.parametrize("kind", list(CANONICAL))
def test_guide_has_every_input_column_with_meaning_format_and_example(kind):
    table = guide.column_guide(kind)
    assert table.columns == ["column", "required", "meaning", "format", "example"]
    assert table["column"].to_list() == [c.name for c in CANONICAL[kind]]
    assert table["required"].to_list() == ["required" if c.required else "optional" for c in CANONICAL[kind]]
    assert table.filter(pl.col("meaning") == "").height == 0, "every column says what it means"
    assert table.filter(pl.col("example") == "").height == 0


def test_guide_states_the_forms_the_importer_reads():
    items = {row["column"]: row for row in guide.column_guide("items").iter_rows(named=True)}
    assert items["item_id"]["required"] == "required" and items["title"]["required"] == "required"
    assert items["isbn"]["required"] == "optional"
    assert items["format"]["format"] == "one of print, electronic; blank means print"
    assert items["acquired_date"]["format"] == "date (YYYY-MM-DD, M/D/YY or M/D/YYYY)"
    assert items["withdrawn_date"]["example"] == "(blank)"
    assert "blank = still held" in items["withdrawn_date"]["meaning"]
    loans = {row["column"]: row for row in guide.column_guide("loans").iter_rows(named=True)}
    assert loans["loan_date"]["format"] == "month (YYYY-MM) or date (YYYY-MM-DD, M/D/YY or M/D/YYYY)"
    assert loans["count"]["format"] == "whole number (1,234 or 1234); blank means 1"
    stats = {row["column"]: row for row in guide.column_guide("annual-stats").iter_rows(named=True)}
    assert stats["gate_count"]["format"] == "number (7502, 7,502 or 84.5); blank or N/A: not reported"


@pytest.mark.parametrize("kind, column, written", [
    ("items", "acquired_date", ["2019-01-05", "1/5/19", "1/5/2019"]),
    ("loans", "loan_date", ["2025-03", "2025-03-14", "3/14/25"]),
    ("items", "pub_year", ["c2009.", "[2015]"]),
    ("items", "lifetime_loans", ["1,234", "1234"]),
    ("annual-stats", "gate_count", ["7502", "7,502", "84.5", "N/A", ""]),
    ("annual-stats", "year", ["2020", "FY2020", "2019-20", "06/30/2020"]),
])
def test_every_form_the_guide_names_imports(kind, column, written, data_dir, tmp_path):
    """The forms the guide names (in the shape it names them) are read by the importer."""
    names = [c.name for c in CANONICAL[kind] if c.required or c.name == column]
    for i, value in enumerate(written):
        row = {c.name: c.example for c in CANONICAL[kind] if c.name in names}
        row[column] = value
        path = tmp_path / f"{kind}-{i}.csv"
        path.write_text(",".join(names) + "\n" + ",".join(f'"{row[n]}"' for n in names) + "\n")
        report = import_file(data_dir, SYSTEM, "UNI1", kind, path)
        assert report.kept == 1, (value, report.rejected_rows)


@pytest.mark.parametrize("kind", list(CANONICAL))
def test_template_imports_cleanly(kind, data_dir, tmp_path):
    path = tmp_path / guide.template_name(kind)
    path.write_bytes(guide.template_csv(kind))
    assert read_table(path).frame.columns == [c.name for c in CANONICAL[kind]]
    report = import_file(data_dir, SYSTEM, "UNI1", kind, path)
    assert (report.read, report.kept, report.rejected) == (1, 1, 0)
    assert (report.dropped_columns, report.ignored_columns, report.warnings, report.invalid_isbns) == ([], [], [], 0)
    cells = path.read_text().splitlines()[1]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells.split(","))


def test_template_values_arrive_as_the_guide_says(data_dir, tmp_path):
    for kind in ("items", "annual-stats"):
        path = tmp_path / guide.template_name(kind)
        path.write_bytes(guide.template_csv(kind))
        import_file(data_dir, SYSTEM, "UNI1", kind, path)
    items = pl.read_parquet(data_dir / "institutions" / "UNI1" / "items.parquet").row(0, named=True)
    assert (items["item_id"], items["title"], items["isbn"], items["pub_year"]) == (
        "X006057697", "The fire next time", "9780679744726", 1993)
    assert items["withdrawn_date"] is None and items["owner"] is None  # held, by the institution itself
    stats = pl.read_parquet(data_dir / "institutions" / "UNI1" / "annual_stats.parquet").row(0, named=True)
    assert (stats["year"], stats["gate_count"], stats["staff_fte"], stats["population_served"]) == (
        2024, 1_020_000.0, 84.5, None)


def test_column_plan_names_what_the_importer_leaves_out(data_dir, tmp_path):
    columns = ["Barcode", "Title", "Patron Name", "Price", "Shelf note", "ISBN"]
    plan = guide.column_plan(columns, "items", {"item_id": "Barcode", "title": "Title", "isbn": "ISBN"})
    assert plan.imported == {"Barcode": "item_id", "Title": "title", "ISBN": "isbn"}
    assert plan.dropped == [{"column": "Patron Name", "reason": "personal"}, {"column": "Price", "reason": "financial"}]
    assert plan.ignored == ["Shelf note"]
    assert plan.notice() == ("Columns not imported — dropped and never stored: Patron Name (personal data), Price "
                             "(financial); not part of this kind of data: Shelf note.")
    path = tmp_path / "items.csv"
    path.write_text(",".join(columns) + "\nB-1,A book,Jane Doe,12.50,by the window,\n")
    report = import_file(data_dir, SYSTEM, "UNI1", "items", path, mapping={"item_id": "Barcode"})
    assert (report.dropped_columns, report.ignored_columns) == (plan.dropped, plan.ignored)
    assert guide.column_plan(["item_id", "title"], "items", {}).notice() == ""


def test_uva_export_suggests_its_never_date():
    """The real UVA export writes 1/1/00 for 'never lent'; its migration days dominate the creation
    dates too, but they are real dates and are not suggested."""
    frame = read_table(FIXTURES / "uva_items_excerpt.csv").frame
    [never] = guide.never_dates(frame, "items", UVA_SOURCES)
    assert (never.column, never.source, never.value, never.rows, never.total) == (
        "last_loan_date", "last_checkout_date", "1/1/00", 6, 20)
    assert never.sentence().startswith("6 of 20 rows (30%) have 1/1/00 in last_checkout_date (last_loan_date)")


def test_applying_the_suggestion_empties_exactly_those_dates(data_dir):
    frame = read_table(FIXTURES / "uva_items_excerpt.csv").frame
    [never] = guide.never_dates(frame, "items", UVA_SOURCES)
    import_file(data_dir, SYSTEM, "UVA", "items", FIXTURES / "uva_items_excerpt.csv",
                mapping={k: v for k, v in UVA_SOURCES.items()}, null_dates=[never.value])
    items = pl.read_parquet(data_dir / "institutions" / "UVA" / "items.parquet")
    assert items["last_loan_date"].null_count() == never.rows
    assert items["acquired_date"].null_count() == frame["item_created_date"].is_null().sum()


def dates(values: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"item_id": [str(i) for i in range(len(values))], "withdrawn": values},
                        schema={"item_id": pl.String, "withdrawn": pl.String})


@pytest.mark.parametrize("sentinel", ["1/1/00", "1900-01-01", "0000-00-00", "12/31/9999", "1970-01-01"])
def test_a_dominant_never_shaped_date_is_suggested(sentinel):
    frame = dates([sentinel] * 7 + ["2020-03-04", "2021-05-06", None, ""])
    [never] = guide.never_dates(frame, "items", {"withdrawn_date": "withdrawn"})
    assert (never.column, never.value, never.rows, never.filled, never.total) == (
        "withdrawn_date", sentinel, 7, 9, 11)


def test_a_sentinel_among_many_dates_is_suggested_when_five_times_the_next():
    values = ["1/1/00"] * 12 + [f"3/{d}/2019" for d in range(1, 26) for _ in range(2)]
    [never] = guide.never_dates(dates(values), "items", {"withdrawn_date": "withdrawn"})
    assert (never.rows, never.filled) == (12, 62)


@pytest.mark.parametrize("values", [
    ["6/29/96"] * 8 + ["7/1/96", "4/26/18"],  # a migration day: a real date
    ["1/1/00", "1/1/00", "1/1/00"] + [f"5/{d}/2020" for d in range(1, 11)] * 1 + ["5/1/2020"],  # not dominant
    ["1/1/00"] + [None] * 9,  # one cell is not a pattern
    [None] * 10,
])
def test_no_suggestion_without_a_dominant_never_shaped_date(values):
    assert guide.never_dates(dates(values), "items", {"withdrawn_date": "withdrawn"}) == []


def test_required_dates_are_never_suggested():
    frame = pl.DataFrame({"item_id": ["A", "B", "C"], "loan_date": ["2024-01", "2024-01", "2024-01"]})
    assert guide.never_dates(frame, "loans", {"item_id": "item_id", "loan_date": "loan_date"}) == []
