"""Browser test of the Recommendations page: a manager reads a card, downloads its list and dismisses it."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from playwright.sync_api import expect

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.control.store import Store
from tests.support.tour import wait_ready

SYSTEM = Principal.system_job()

pytestmark = pytest.mark.browser


def test_manager_dismisses_a_recommendation_with_a_reason(signed_in, published_community, tmp_path, artifacts_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    store = Store(load_settings(data_dir).database_url)
    code, name = next((i.code, i.name) for i in store.list_institutions(SYSTEM)
                      if i.region == "NA" and store.sharing_state(SYSTEM, i.code)["recommendations"].in_effect)
    try:
        with signed_in(data_dir, code, name, "Max Manager",
                       viewport={"width": 1500, "height": 1200}, accept_downloads=True) as (page, base_url):
            page.get_by_role("link", name="Recommendations").first.click()
            page.get_by_role("heading", name="Recommendations").first.wait_for(timeout=60_000)
            page.get_by_role("button", name="Implemented by hand").first.wait_for(timeout=90_000)
            # Grouped and collapsed: only the first recommendation is open, so the page stays short.
            height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
                                   ".scrollHeight")
            assert height < 4_000, height
            manager = store.user(f"manager@{code.lower()}.demo.example.org").principal()
            open_before = [r for r in store.recommendation_records(manager, code) if r.status == "new"]

            download = page.get_by_role("button", name="Download list").first
            wait_ready(page)  # the run that drew the button is the last one
            with page.expect_download() as listed:
                download.click()
            rows = pl.read_csv(listed.value.path(), infer_schema=False)
            assert rows.height > 0

            page.get_by_role("button", name="Dismiss…").first.click()
            dialog = page.get_by_test_id("stPopoverBody")
            dialog.get_by_label("Reason").click()
            page.get_by_role("option", name="Not relevant to our collection policy").click()
            expect(dialog.get_by_role("combobox", name="Reason")).to_have_value(
                "Not relevant to our collection policy", timeout=30_000)
            dialog.get_by_role("button", name="Dismiss", exact=True).click()
            page.get_by_text("dismissed. It is listed under Handled").wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "e2e-recommendations.png"), full_page=False)

            records = store.recommendation_records(manager, code)
            dismissed = [r for r in records if r.status == "dismissed"]
            # The confirmation is shown under the dismissed recommendation's type, where the user acted.
            assert page.locator(f".st-key-recommend_type_{dismissed[0].type}").get_by_text(
                "dismissed. It is listed under Handled").is_visible()
            assert len(dismissed) == 1 and dismissed[0].reason == "not_relevant"
            assert dismissed[0].updated_by == manager.email
            assert sum(r.status == "new" for r in records) == len(open_before) - 1
            page.get_by_role("tab", name="Handled").click()
            page.get_by_role("button", name="Reopen").wait_for(timeout=30_000)
    finally:
        store.dispose()
