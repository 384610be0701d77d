"""Browser tests of the collection development pages: a filter changes the table, downloads work."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.control.store import Store
from tests.support.tour import wait_ready

SYSTEM = Principal.system_job()

pytestmark = pytest.mark.browser


def _north_american_sharer(data_dir: Path) -> tuple[str, str]:
    store = Store(load_settings(data_dir).database_url)
    try:
        for inst in store.list_institutions(SYSTEM):
            if inst.region == "NA" and store.sharing_state(SYSTEM, inst.code)["collection_development"].in_effect:
                return inst.code, inst.name
    finally:
        store.dispose()
    raise AssertionError("no North American institution shares collection development data")


def test_trending_page_filter_and_downloads(signed_in, published_community, artifacts_dir):
    code, name = _north_american_sharer(published_community)
    with signed_in(published_community, code, name, "Lena Librarian",
                   viewport={"width": 1500, "height": 1100}, accept_downloads=True) as (page, base_url):
        page.get_by_role("link", name="Trending titles").first.click()
        page.get_by_role("heading", name="Trending titles").wait_for(timeout=60_000)
        page.get_by_text("Top rising works in North America").wait_for(timeout=60_000)
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as first:
            page.get_by_role("button", name="Download CSV").click()
        everything = pl.read_csv(first.value.path(), infer_schema=False)
        assert everything.height > 0 and {"Title", "ISBNs", "Score", "Recent", "Baseline"} <= set(everything.columns)

        page.get_by_label("LC class").click()
        page.get_by_role("option", name="P — Language and Literature").click()
        page.wait_for_timeout(2500)
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as second:
            page.get_by_role("button", name="Download CSV").click()
        literature = pl.read_csv(second.value.path(), infer_schema=False)
        assert literature.height > 0 and set(literature["LC class"]) == {"P"}
        assert literature["Title"].to_list() != everything["Title"].to_list()
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as third:
            page.get_by_role("button", name="Download Excel").click()
        sheet = pl.read_excel(io.BytesIO(Path(third.value.path()).read_bytes()))
        assert sheet["Title"].to_list() == literature["Title"].to_list()
        page.screenshot(path=str(artifacts_dir / "e2e-trending.png"))


def test_deselection_page_lists_and_downloads(signed_in, published_community, artifacts_dir):
    code, name = _north_american_sharer(published_community)
    with signed_in(published_community, code, name, "Lena Librarian",
                   viewport={"width": 1500, "height": 1100}, accept_downloads=True) as (page, base_url):
        page.get_by_role("link", name="Deselection and retention").first.click()
        page.get_by_role("heading", name="Deselection and retention").wait_for(timeout=60_000)
        page.get_by_text("Withdrawal candidates").first.wait_for(timeout=60_000)
        # The small test community has four institutions per region at most: ask for three.
        holders = page.get_by_role("spinbutton", name="Held by at least (institutions in the region)")
        holders.fill("3")
        holders.press("Enter")
        years = page.get_by_role("spinbutton", name="No loans for at least (years)")
        years.fill("1")
        years.press("Enter")
        page.get_by_text("held by at least 3 institutions").wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as withdrawal:
            page.get_by_role("button", name="Download CSV").click()
        candidates = pl.read_csv(withdrawal.value.path(), infer_schema=False)
        assert candidates.height > 0
        assert (candidates["Holders in region"].cast(pl.Int64) >= 3).all()
        page.get_by_text("Retention candidates").first.click()
        page.get_by_text("at most 2 institutions").wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # the list and its download buttons are redrawn
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as retention:
            page.get_by_role("button", name="Download Excel").click()
        sheet = pl.read_excel(io.BytesIO(Path(retention.value.path()).read_bytes()))
        assert sheet.height > 0 and "Holders in region" not in sheet.columns
        page.screenshot(path=str(artifacts_dir / "e2e-deselection.png"))


def test_subject_overview_page(signed_in, published_community, artifacts_dir):
    code, name = _north_american_sharer(published_community)
    with signed_in(published_community, code, name, "Lena Librarian",
                   viewport={"width": 1500, "height": 1100}, accept_downloads=True) as (page, base_url):
        page.get_by_role("link", name="Subject overview").first.click()
        page.get_by_role("heading", name="Subject overview").wait_for(timeout=60_000)
        page.get_by_text("Community holdings in North America by LC class").wait_for(timeout=60_000)
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as by_class:
            page.get_by_role("button", name="Download CSV").click()
        classes = pl.read_csv(by_class.value.path(), infer_schema=False)
        page.get_by_role("radio", name="Subclass").click()
        page.wait_for_timeout(2500)
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as by_subclass:
            page.get_by_role("button", name="Download Excel").click()
        subclasses = pl.read_excel(io.BytesIO(Path(by_subclass.value.path()).read_bytes()))
        assert "LC subclass" in subclasses.columns and subclasses.height > classes.height
        page.screenshot(path=str(artifacts_dir / "e2e-subjects.png"))



def test_selection_page_filter_and_order_list(signed_in, tmp_path, artifacts_dir):
    """On a community where three of six research institutions bought a new book this year."""
    from tests.views.test_trends import _peer_community

    settings, store, _release = _peer_community(tmp_path, research=5, teaching=5)
    store.dispose()
    # This community's users are @z.example.org: the demo sign-in is told to offer them.
    env = {"ANALYTICS_DATA_DIR": str(settings.data_dir), "ANALYTICS_DEMO_DOMAIN": ".example.org"}
    with signed_in(env["ANALYTICS_DATA_DIR"], "Z", "Institution Z", env=env,
                   viewport={"width": 1500, "height": 1100}, accept_downloads=True) as (page, base_url):
        page.get_by_role("link", name="Selection report").first.click()
        page.get_by_role("heading", name="Selection report").wait_for(timeout=60_000)
        page.get_by_text("1 work, best first").wait_for(timeout=60_000)
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as order_list:
            page.get_by_role("button", name="Download order list (CSV)").click()
        orders = pl.read_csv(order_list.value.path(), infer_schema=False)
        assert orders.select("Title", "ISBNs", "Acquired (12 months)", "Group size").rows() == [
            ("Sudden Hit", "9780345806567", "3", "11")]
        wait_ready(page)  # the run that drew the button is the last one
        with page.expect_download() as order_sheet:
            page.get_by_role("button", name="Download order list (Excel)").click()
        sheet = pl.read_excel(io.BytesIO(Path(order_sheet.value.path()).read_bytes()))
        assert sheet["Title"].to_list() == ["Sudden Hit"]
        page.screenshot(path=str(artifacts_dir / "e2e-selection.png"))
        # Raise the bar above 3 of 11: the list empties.
        page.get_by_role("slider").focus()
        page.keyboard.press("End")
        page.get_by_text("No work you lack was acquired by 100%").wait_for(timeout=30_000)
