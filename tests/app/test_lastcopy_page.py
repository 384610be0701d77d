"""AppTest of the Last-copy check page on the published demo community."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.control.store import Store
from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.release.handle import open_release
from analytics.synthetic.demo import demo_email

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()


@pytest.fixture
def codes(published_community, monkeypatch):
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(published_community))
    store = Store(load_settings(published_community).database_url)
    sharing, not_sharing = None, None
    for inst in store.list_institutions(SYSTEM):
        state = store.sharing_state(SYSTEM, inst.code)["collection_development"]
        if state.in_effect and sharing is None:
            sharing = inst
        if not state.requested and not_sharing is None:
            not_sharing = inst.code
    store.dispose()
    assert sharing and not_sharing
    return sharing, not_sharing


def page(email: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = email
    at.run()
    return at.switch_page("pages/lastcopy.py").run()


def test_upload_is_checked_row_by_row(codes, published_community):
    institution, _ = codes
    release = open_release(load_settings(published_community).community_dir)
    held = release.cursor().sql("SELECT h.work_key FROM holdings h JOIN title_isbns t USING (work_key) "
                                "WHERE h.region = $r ORDER BY h.institutions_holding DESC, h.work_key LIMIT 1",
                                params={"r": institution.region}).pl()["work_key"][0]
    isbn = held.removeprefix("isbn:")
    at = page(demo_email(institution.code, "librarian"))
    assert not at.exception
    assert "Upload an export" in at.info[0].value
    text = f"Barcode,ISBN,,ISBN\nb1,{isbn},x,\nb2,12345,,\nb3,,,\n"
    at.file_uploader(key="lastcopy_upload").upload("weeding.csv", text.encode(), "text/csv").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Rows read"], metrics["Matched"], metrics["Not matched"]) == ("3", "1", "2")
    checked = at.dataframe[0].value
    assert list(checked.columns)[:4] == ["Barcode", "ISBN", "", "ISBN_duplicated_0"]
    assert list(checked["Barcode"]) == ["b1", "b2", "b3"] and checked["Match"][0] == "ISBN"
    unmatched = at.dataframe[1].value
    assert list(unmatched["Row"]) == ["row 2 (line 3)", "row 3 (line 4)"]
    # Reading another column for ISBNs changes the answer.
    next(box for box in at.selectbox if box.label == "ISBN").set_value("ISBN_duplicated_0").run()
    assert {m.label: m.value for m in at.metric}["Matched"] == "0"


def test_a_list_without_identifier_columns_asks_for_one(codes):
    institution, _ = codes
    at = page(demo_email(institution.code, "manager"))
    at.file_uploader(key="lastcopy_upload").upload("list.csv", b"Shelf,Copies\nA1,2\n", "text/csv").run()
    assert not at.exception
    assert any("choose one under Columns read" in e.value for e in at.info)
    next(box for box in at.selectbox if box.label == "ISBN").set_value("Shelf").run()
    assert {m.label: m.value for m in at.metric}["Not matched"] == "1"
    assert "invalid ISBN" in at.dataframe[1].value["Reason"][0]


def test_institutions_that_do_not_share_see_an_explanation(codes):
    _, not_sharing = codes
    at = page(demo_email(not_sharing, "librarian"))
    assert not at.exception
    assert any("does not share" in e.value for e in [*at.error, *at.warning, *at.info])
    assert not at.get("file_uploader")
