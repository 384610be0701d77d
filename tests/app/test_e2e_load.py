"""Under load: ten sessions sign in at once on a freshly started server and open the first
page with a chart (Trending titles). Before pandas was imported up front, a session could
draw while another was still importing it and crash ("partially initialized module
'pandas' has no attribute 'NaT'"). No session may see an error box."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.control.store import Store
from tests.support.browser import CHROMIUM_ARGS, chromium_path, streamlit_server

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()
SESSIONS = int(os.environ.get("LOAD_SESSIONS", "10"))

pytestmark = pytest.mark.browser


async def _ready_to_sign_in(context, base_url: str, code: str):
    """A session on the sign-in view with the institution's librarian picked."""
    page = await context.new_page()
    await page.goto(base_url, wait_until="networkidle")
    await page.get_by_label("Institution", exact=True).click()
    await page.get_by_role("option", name=f"({code})", exact=False).click()
    label = re.compile(rf"Lena Librarian.*\({re.escape(code)}\)")
    await page.get_by_role("radio", name=label).wait_for(state="attached", timeout=60_000)
    await page.get_by_text(label).click()
    return page


async def _sign_in(page, name: str) -> None:
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name=name).wait_for(timeout=120_000)


async def _open_chart(page) -> str:
    """Trending titles until its chart is drawn; the page's error count and text."""
    await page.get_by_role("link", name="Trending titles").first.click()
    error = "[data-testid='stException'], [data-testid='stAlertContentError']"
    await page.locator(f".js-plotly-plot, {error}").first.wait_for(timeout=120_000)  # the chart, or an error box
    errors = await page.locator(error).count()
    if errors:
        await page.screenshot(path=f"test-artifacts/e2e-load-error-{id(page)}.png")
    return f"errors={errors}\n" + await page.locator("body").inner_text()


async def _settled(page) -> None:
    """Until the script run has finished (Streamlit's 'running' indicator is gone)."""
    await page.wait_for_timeout(500)
    await page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=120_000)


async def _rest_of_journey(page) -> int:
    """Benchmarks, then Recommendations, each until drawn; the error boxes seen."""
    error = "[data-testid='stException'], [data-testid='stAlertContentError']"
    errors = 0
    for link in ("Benchmarks", "Recommendations"):
        await page.get_by_role("link", name=link).first.click()
        await page.get_by_role("heading", name=link).first.wait_for(timeout=120_000)
        await _settled(page)
        errors += await page.locator(error).count()
    return errors


async def _all(base_url: str, code: str, name: str) -> list[str]:
    """Every step taken by all sessions at the same moment: the sign-ins, then the first chart."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            contexts = [await browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(SESSIONS)]
            pages = await asyncio.gather(*(_ready_to_sign_in(c, base_url, code) for c in contexts))
            await asyncio.gather(*(_sign_in(p, name) for p in pages))
            charts = await asyncio.gather(*(_open_chart(p) for p in pages))
            rest = await asyncio.gather(*(_rest_of_journey(p) for p in pages))
            return [f"{chart}\nlater errors={n}" for chart, n in zip(charts, rest)]
        finally:
            await browser.close()


def _server_pid(port: int) -> int:
    """The streamlit process serving `port` (its command line names the port)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(args) and str(port).encode() in args:
                return int(proc.name)
    raise AssertionError(f"no streamlit process on port {port}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (/proc/PID/stat)."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def test_ten_sessions_at_once_on_a_fresh_server_draw_their_charts(published_community, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    store = Store(load_settings(data_dir).database_url)
    code, name = next((i.code, i.name) for i in store.list_institutions(SYSTEM)
                      if i.region == "NA" and store.sharing_state(SYSTEM, i.code)["collection_development"].in_effect)
    store.dispose()
    log = Path(tempfile.mkdtemp()) / "server.log"
    with streamlit_server(ROOT, {"ANALYTICS_DATA_DIR": str(data_dir)}, log_path=log) as base_url:
        server = _server_pid(int(base_url.rsplit(":", 1)[1]))
        before = _cpu_seconds(server)
        pages = asyncio.run(_all(base_url, code, name))
        spent = _cpu_seconds(server) - before
    # The figure this test reports: server CPU per journey (sign in, trending, benchmarks, recommendations).
    print(f"\nserver CPU: {spent:.1f} s for {SESSIONS} journeys, {spent / SESSIONS:.2f} s per journey")
    assert len(pages) == SESSIONS
    for text in pages:
        assert text.startswith("errors=0"), text[:500]
        assert "partially initialized" not in text and "AttributeError" not in text
        assert text.endswith("later errors=0"), text[-300:]
    assert "partially initialized" not in log.read_text()
