"""Browser test of the Import data page: a damaged file shows its reason and changes nothing;
a good one is checked, confirmed and listed in the history."""

from __future__ import annotations

import re


import pytest
from playwright.sync_api import expect

from analytics.ingest.local import table_path
from analytics.release.manifest import sha256
from tests.community import Member, build, items_csv


pytestmark = pytest.mark.browser

GOOD = items_csv([("A-1", "The Fire Next Time", "Baldwin, James", "9780679744726", "PS3545 .B5", "2019-01-05"),
                  ("A-2", "Giovanni's Room", "Baldwin, James", "9780345806567", "PS3545 .G5", "2019-02-01")])


def test_damaged_upload_changes_nothing_and_good_upload_imports(signed_in, tmp_path, artifacts_dir):
    settings, store = build(tmp_path / "data", [Member("A", name="Alpha University", tables={"items": GOOD})])
    store.dispose()
    items = table_path(settings.data_dir, "A", "items")
    before = sha256(items)
    damaged = tmp_path / "damaged-items.csv"
    damaged.write_text("Barcode,Title,Created\nB-1,A book,2020-01-01\nB-2,Another,31/31/2020\n")
    good = tmp_path / "new-items.csv"
    good.write_text("Barcode,Title,ISBN\nC-1,Notes of a Native Son,9780807006238\nC-2,Go Tell It,9780345806543\n"
                    "C-3,No ISBN here,\n")
    # This community's users are @a.example.org: the demo sign-in is told to offer them.
    env = {"ANALYTICS_DATA_DIR": str(settings.data_dir), "ANALYTICS_DEMO_DOMAIN": ".example.org"}
    # The only user: Alpha's administrator.
    with signed_in(settings.data_dir, "A", "Alpha University", env=env,
                   viewport={"width": 1500, "height": 1300}) as (page, base_url):
        page.get_by_role("link", name="Import data").first.click()
        page.get_by_role("heading", name="Import data").wait_for(timeout=60_000)

        page.locator("input[type=file]").set_input_files(str(damaged))
        page.get_by_text("Preview").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Check the file").click()
        error = page.get_by_text("damaged-items.csv, row 2 (line 3), column acquired_date")
        error.wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts_dir / "e2e-import-damaged.png"))
        assert page.get_by_role("button", name="Import", exact=True).count() == 0
        assert sha256(items) == before

        page.locator("input[type=file]").set_input_files(str(good))
        page.get_by_text("new-items.csv").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        # On a loaded machine the damaged file's widgets linger until the new run ends: wait for them to go.
        replace = page.get_by_text("Replace the whole table (a full export)")
        expect(replace).to_have_count(1, timeout=30_000)
        replace.click()
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Check the file").click()
        page.get_by_text("The file can be imported: 3 of 3 rows kept.").wait_for(timeout=30_000)
        assert sha256(items) == before  # checking changes nothing
        page.get_by_text("2 rows of items will be replaced by 3.").wait_for(timeout=30_000)  # what will go, before it goes
        confirm = page.get_by_role("button", name="Import", exact=True)
        assert confirm.is_disabled()  # a replace needs the explicit confirmation
        page.get_by_text("Yes, replace all 2 items with the 3 rows of this file").click()
        page.wait_for_timeout(500)
        confirm.click()
        # (file names are shown as literal text: an invisible word joiner keeps "items.csv" from becoming a link)
        page.get_by_text(re.compile(r"Imported 3 rows of new-items\W*\.csv into items\.")).wait_for(timeout=60_000)
        page.get_by_text(re.compile(r"new-items\W*\.csv — ok \(read 3, kept 3, rejected 0\)")).wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts_dir / "e2e-import-done.png"))
        import polars as pl

        assert sorted(pl.read_parquet(items)["item_id"]) == ["C-1", "C-2", "C-3"]
        # The imported upload is gone; only the damaged one (never imported) waits in the private folder.
        uploads = settings.data_dir / "institutions" / "A" / ".uploads"
        assert [p.name for p in uploads.rglob("*.csv")] == ["damaged-items.csv"]
        page.get_by_role("button", name="Undo the last import of items").click()
        page.get_by_text("items: back to the version before the last import (3 rows → 2).").wait_for(timeout=30_000)
        assert sha256(items) == before  # the catalogue is back, byte for byte
