"""End to end in a real browser: a demo admin turns benchmark sharing off.

The real server runs on a free port over the session's demo community; Debian's
chromium is driven by Playwright. A screenshot is saved under test-artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import demo_email
from analytics.control.store import Store

SYSTEM = Principal.system_job()

pytestmark = pytest.mark.browser


def _admin_sharing_benchmark(data_dir: Path) -> tuple[str, str]:
    store = Store(load_settings(data_dir).database_url)
    try:
        for inst in store.list_institutions(SYSTEM):
            state = store.sharing_state(SYSTEM, inst.code)["benchmark"]
            if state.requested and not state.pending:
                return inst.code, inst.name
    finally:
        store.dispose()
    raise AssertionError("no institution in the demo shares benchmark data")


def test_admin_turns_benchmark_off_and_sees_effective_date_and_audit(signed_in, demo_community, artifacts_dir,
                                                                     tmp_path):
    code, name = _admin_sharing_benchmark(demo_community)
    admin = demo_email(code, "admin")
    env = {"ANALYTICS_DATA_DIR": str(demo_community)}
    with signed_in(demo_community, code, name, "Ada Admin", env=env,
                   viewport={"width": 1400, "height": 1000}) as (page, base_url):
        page.get_by_text("Titles held").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artifacts_dir / "e2e-home.png"))

        page.get_by_role("link", name="Data sharing profile").first.click()
        page.get_by_role("heading", name="Data sharing profile").wait_for(timeout=60_000)
        switch = page.get_by_role("switch", name="Benchmark Analytics")
        assert switch.is_checked()
        page.locator("label").filter(has=switch).click()  # the input itself is visually hidden
        assert not switch.is_checked()
        page.get_by_role("button", name="Save sharing settings").click()

        confirmation = page.get_by_text(re.compile(r"Benchmark Analytics turned off\. On now since .*; turns off on \d{4}-\d{2}-01"))
        confirmation.wait_for(timeout=60_000)
        effective = re.search(r"turns off on (\d{4}-\d{2}-01)", confirmation.inner_text()).group(1)
        page.get_by_text(re.compile(r"Pending")).first.wait_for(timeout=30_000)

        audit = page.get_by_role("heading", name="Audit history")
        audit.scroll_into_view_if_needed()
        page.get_by_text(re.compile(rf"Latest change: .* {re.escape(admin)} .*Sharing: Benchmark Analytics.*on → "
                                    rf"off \(effective {effective}\)")).wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # let the data grid paint
        page.screenshot(path=str(artifacts_dir / "e2e-profile-benchmark-off.png"))

    store = Store(load_settings(demo_community).database_url)
    try:
        state = store.sharing_state(SYSTEM, code)["benchmark"]
        assert state.requested is False and state.effective_from.isoformat() == effective
        newest = store.audit_history(SYSTEM, code)[0]
        assert (newest.actor, newest.action, newest.new_value) == (admin, "sharing.benchmark",
                                                                   f"off (effective {effective})")
    finally:
        store.dispose()
