"""AppTest of the Import data page: the column guide and template before any upload, the preview
with blanks, the notice of columns not imported (once), the "never" date suggestion, and a bad
file that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from analytics.core.schema import CANONICAL
from analytics.ingest.local import table_path
from analytics.release.manifest import sha256
from tests.community import Member, build, items_csv

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ADMIN = "admin@a.example.org"
GOOD = items_csv([("A-1", "The Fire Next Time", "Baldwin, James", "9780679744726", "PS3545 .B5", "2019-01-05"),
                  ("A-2", "Giovanni's Room", "Baldwin, James", "9780345806567", "PS3545 .G5", "2019-02-01")])


@pytest.fixture
def community(tmp_path, monkeypatch):
    settings, store = build(tmp_path / "data", [Member("A", name="Alpha University", tables={"items": GOOD})])
    store.dispose()
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return settings


def open_page(email: str = ADMIN) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["signed_in_email"] = email
    at.run()
    at = at.switch_page("pages/import_data.py").run()
    assert not at.exception, at.exception
    return at


def headers(element) -> list[str]:
    config = json.loads(element.proto.columns or "{}")
    return [config.get(name, {}).get("label") or name for name in element.value.columns]


def guides(at: AppTest) -> list:
    """The column guides shown (st.dataframe has no key without selections: found by their columns)."""
    return [d for d in at.dataframe if list(d.value.columns) == ["column", "required", "meaning", "format", "example"]]


def texts(at: AppTest) -> list[str]:
    """Every text the page shows, as read (ui.md_text's escapes and word joiners taken out)."""
    return [str(e.value).replace("\\", "").replace("\u2060", "")
            for kind in ("markdown", "caption", "info", "warning", "error", "success") for e in getattr(at, kind)]


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="import_upload").set_value((name, content, "text/csv"))
    at = at.run()
    assert not at.exception, at.exception
    return at


def test_guide_and_template_before_any_upload(community):
    at = open_page()
    assert at.selectbox(key="import_kind").value == "items"
    [guide] = guides(at)
    assert headers(guide) == ["Column name", "Required", "Meaning", "Format", "Example"]
    assert guide.value["column"].tolist() == [c.name for c in CANONICAL["items"]]
    assert guide.value.set_index("column").loc["item_id", "required"] == "required"
    [template] = at.download_button
    assert template.label == "Download a template (items-template.csv)"

    at.selectbox(key="import_kind").set_value("annual-stats")
    at = at.run()
    assert [g.value["column"].tolist() for g in guides(at)] == [[c.name for c in CANONICAL["annual-stats"]]]
    assert [b.label for b in at.download_button] == ["Download a template (annual-stats-template.csv)"]

    at.selectbox(key="import_kind").set_value("marc")
    at = at.run()
    assert not guides(at) and not at.download_button
    assert any("no columns to prepare" in t for t in texts(at))


def test_a_librarian_sees_no_upload_and_no_guide(community):
    from analytics.control.store import Store
    from analytics.core.access import Principal

    store = Store(community.database_url)
    store.add_user(Principal.system_job(), "librarian@a.example.org", "A", ["librarian"])
    store.dispose()
    at = open_page("librarian@a.example.org")
    assert not at.file_uploader and not at.download_button
    assert any("Only a General System Administrator" in t for t in texts(at))


def test_preview_blanks_and_the_notice_of_columns_not_imported_once(community):
    at = open_page()
    at = upload(at, "new-items.csv", b"Barcode,Title,Patron Name,Shelf note,ISBN\n"
                                     b"C-1,Notes of a Native Son,Jane Doe,,9780807006238\n"
                                     b"C-2,Go Tell It,,by the window,\n")
    [preview] = [d for d in at.dataframe if "Barcode" in d.value.columns]
    assert headers(preview) == ["Barcode", "Title", "Patron Name", "Shelf note", "ISBN"]  # the file's own names
    assert preview.value["Shelf note"].tolist() == ["", "by the window"]
    assert preview.value["ISBN"].tolist() == ["9780807006238", ""]
    assert not {"None", "nan", "null"} & {str(v) for v in preview.value.to_numpy().ravel()}
    notice = ("Columns not imported — dropped and never stored: Patron Name (personal data); not part of this "
              "kind of data: Shelf note.")

    def mentions(at):
        return [t for t in texts(at) if "Patron Name" in t]

    assert mentions(at) == [notice]
    at.radio(key=next(r.key for r in at.radio if r.key.startswith("import_mode_"))).set_value("replace")
    at = at.run()
    at.button(key="import_check").click()
    at = at.run()
    assert any(s.startswith("The file can be imported: 2 of 2 rows kept.") for s in texts(at))
    assert mentions(at) == [notice]  # once, not again in the check's report


def test_never_date_suggested_and_applied_with_one_click(community):
    at = open_page()
    at = upload(at, "uva_items_excerpt.csv", (FIXTURES / "uva_items_excerpt.csv").read_bytes())
    suggestion = [t for t in texts(at) if "“never”" in t]
    assert suggestion == ["6 of 20 rows (30%) have 1/1/00 in last_checkout_date (last_loan_date), far more than any "
                          "other date. Library systems write such a date for “never” (never lent, never withdrawn)."]
    [apply] = [b for b in at.button if b.key.startswith("import_never_")]
    apply.click()
    at = at.run()
    [never] = [t for t in at.text_input if t.key.startswith("import_null_")]
    assert never.value == "1/1/00"
    assert not [b for b in at.button if b.key.startswith("import_never_")]  # applied: no longer suggested
    at.radio(key=next(r.key for r in at.radio if r.key.startswith("import_mode_"))).set_value("replace")
    at = at.run()
    at.button(key="import_check").click()
    at = at.run()
    assert any(s.startswith("The file can be imported: 20 of 20 rows kept.") for s in texts(at))
    at.checkbox[0].check()
    at = at.run()
    at.button(key="import_confirm").click()
    at = at.run()
    assert not at.error, [e.value for e in at.error]
    items = pl.read_parquet(table_path(community.data_dir, "A", "items"))
    assert items.height == 20 and items["last_loan_date"].null_count() == 6


def test_bad_file_names_file_row_and_field_and_changes_nothing(community):
    items = table_path(community.data_dir, "A", "items")
    before = sha256(items)
    at = open_page()
    at = upload(at, "damaged-items.csv", b"Barcode,Title,Created\nB-1,A book,2020-01-01\nB-2,Another,31/31/2020\n")
    at.button(key="import_check").click()
    at = at.run()
    [error] = at.error
    assert error.value.startswith("damaged-items.csv, row 2 (line 3), column acquired_date: '31/31/2020' is not a "
                                  "date")
    assert error.value.endswith("Nothing was imported.")
    assert not [b for b in at.button if b.key == "import_confirm"]
    assert sha256(items) == before
