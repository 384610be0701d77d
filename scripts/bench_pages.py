"""Page speed in a real browser: every page of the app, cold and warm; print the times as JSON.

Used by `python -m analytics bench --only pages` (analytics/ never imports Streamlit or
Playwright, so the browser part lives here). Usage:
    python scripts/bench_pages.py DATA_DIR CODE HOME_HEADING [--visit ROLE=PAGE ...] [--warm 3]
        [--demo-domain .bench.example.org]

For each visit (a role and a page title of app.py's navigation; by default every page as
manager, and Import data and Data sharing profile, which show administrators more, as admin),
the app is started afresh: `streamlit run app.py` headless on a free port with
ANALYTICS_SIGN_IN=demo on DATA_DIR; Debian's Chromium (Playwright, by executable path, with
--no-sandbox --headless, a new browser context, so nothing is in the browser's cache) opens it
and signs in through the demo sign-in as the institution's user of that role, which lands on
Home. Then:

- cold: the first visit of the page after the server started: from the click on its link in
  the sidebar until the page is ready (for Home: from the click on "Sign in");
- warm: the median of WARM later visits, each from a click on the page's link after a visit
  to another page (Home, or My data for Home itself).

A page is *ready* at the later of two moments:
  - drawn: Streamlit has finished the script run (the app root [data-testid=stApp] says
    data-test-script-state="notRunning": the status widget's "Running…" is gone), the page's
    own heading is on screen (an h1 in the main area reading the page's title, the
    institution's name on Home: so the run that finished is the new page's), nothing of the
    previous page is left (no [data-stale=true] element, no spinner), and every visible Plotly
    chart has its SVG and every visible table (st.dataframe) its canvas;
  - settled: the last DOM change, the end of the last long task of the browser's main thread
    (parsing a script, drawing a grid) and the last file loaded (Streamlit loads each kind of
    element's code on first use), once QUIET_MS have passed without another and no request
    is open.
So the time covers the server's run, the browser's drawing and the code it had to load, up to
the moment the page stops changing and the user can work with it. A page that shows an
exception (stException) fails the bench: its time would mean nothing. The clock starts just
before Playwright clicks (a few ms of Playwright's own are included).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROLE_LABELS = {"admin": "General System Administrator", "manager": "Manager", "librarian": "Collection librarian"}
# Pages that show an administrator what others do not get (the upload, the profile's forms):
# measured as administrator too.
ADMIN_PAGES = ("Import data", "Data sharing profile")
TIMEOUT_MS = 120_000

# Installed in every document before the app's own scripts: when the page last changed (a DOM
# mutation), when the browser last finished a long task (parsing a script, drawing a grid) and
# when it last finished loading a file (Streamlit loads each kind of element's code on first use).
WATCH = """(() => {
  window.__bench = {changed: 0, busy: 0, loaded: 0};
  new MutationObserver(() => { window.__bench.changed = performance.now(); })
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const end = e.startTime + e.duration;
      if (e.entryType === 'longtask') window.__bench.busy = Math.max(window.__bench.busy, end);
      else window.__bench.loaded = Math.max(window.__bench.loaded, e.responseEnd || end);
    }
  }).observe({entryTypes: ['longtask', 'resource']});
})()"""

# The state of the page as the readiness rule sees it.
STATE = """([heading]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const main = document.querySelector('[data-testid="stMain"]') || document;
  const shown = (e) => e.checkVisibility();
  const drawn = app && app.getAttribute('data-test-script-state') === 'notRunning'
    && [...main.querySelectorAll('h1')].some(h => h.textContent.trim() === heading)
    && !document.querySelector('[data-stale="true"], [data-testid="stSpinner"]')
    && [...main.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(shown).every(c => c.querySelector('.main-svg'))
    && [...main.querySelectorAll('[data-testid="stDataFrame"]')].filter(shown).every(g => g.querySelector('canvas'));
  const b = window.__bench;
  return {now: performance.now(), drawn: !!drawn, settled: Math.max(b.changed, b.busy, b.loaded),
          exception: !!document.querySelector('[data-testid="stException"]')};
}"""
QUIET_MS = 500  # nothing changed, ran long or loaded for this long: the page has settled
POLL_S = 0.02


def app_pages() -> list[tuple[str, str]]:
    """(file, title) of every page in app.py's st.navigation, in order, read from its source."""
    tree = ast.parse((ROOT / "app.py").read_text())
    pages = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page":
            title = next(k.value.value for k in node.keywords if k.arg == "title")
            pages.append((node.args[0].value, title))
    return pages


def url_path(file: str) -> str:
    """The URL path Streamlit gives a page file (pages/my_data.py -> my_data)."""
    return Path(file).stem


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(data_dir: str, demo_domain: str | None):
    """`streamlit run app.py` on a free port, on DATA_DIR with the demo sign-in; yields its URL
    and the milliseconds until its health probe answered."""
    port = free_port()
    env = {**os.environ, "ANALYTICS_DATA_DIR": data_dir, "ANALYTICS_SIGN_IN": "demo", "PYTHONUNBUFFERED": "1"}
    if demo_domain:
        env["ANALYTICS_DEMO_DOMAIN"] = demo_domain
    log = tempfile.NamedTemporaryFile(prefix="bench-pages-", suffix=".log", delete=False)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the app server stopped (exit {proc.returncode}):\n{_tail(log.name)}")
            with contextlib.suppress(OSError):
                with opener.open(base + "/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            if time.perf_counter() - started > 60:
                raise SystemExit(f"the app server did not answer in 60 s:\n{_tail(log.name)}")
            time.sleep(0.05)
        yield base, (time.perf_counter() - started) * 1000, log.name
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
        os.unlink(log.name)


def _tail(path: str, lines: int = 40) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def timed(page, action, heading: str, log: str, inflight: set) -> float:
    """Milliseconds from `action` (a click) until the page reading `heading` is ready: drawn
    (STATE) and settled, i.e. the time of its last change, long task or file load, once
    QUIET_MS have passed without another and no request of the page is still open."""
    clicked = page.evaluate("performance.now()")
    action()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    drawn_at = None
    while True:
        state = page.evaluate(STATE, [heading])
        if state["exception"]:
            text = page.get_by_test_id("stException").first.inner_text()
            raise SystemExit(f"page {heading!r} shows an exception:\n{text}\n{_tail(log)}")
        if not state["drawn"]:
            drawn_at = None
        elif drawn_at is None:
            drawn_at = state["now"]
        if drawn_at is not None and not inflight and state["now"] - state["settled"] >= QUIET_MS \
                and state["now"] - drawn_at >= QUIET_MS:
            return max(drawn_at, state["settled"]) - clicked
        if time.monotonic() > deadline:
            raise SystemExit(f"page {heading!r} not ready after {TIMEOUT_MS / 1000:.0f} s: {state}\n{_tail(log)}")
        time.sleep(POLL_S)


def link(page, file: str):
    """The sidebar's link to a page."""
    path = url_path(file)
    return page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]') if path != "home" else \
        page.locator('[data-testid="stSidebarNav"] a').first


def sign_in(page, base: str, code: str, role: str) -> None:
    """The demo sign-in up to the click on "Sign in" (not clicked)."""
    import re

    page.goto(base, wait_until="domcontentloaded")
    page.get_by_text("Demo mode").wait_for(timeout=TIMEOUT_MS)
    page.get_by_label("Institution", exact=True).click()
    page.get_by_role("option", name=f"({code})", exact=False).click()
    label = re.compile(rf"\({re.escape(code)}\) — {re.escape(ROLE_LABELS[role])}$")
    radio = page.get_by_role("radio", name=label)
    radio.wait_for(state="attached", timeout=TIMEOUT_MS)
    page.get_by_text(label).click()
    deadline = time.monotonic() + 10
    while not radio.is_checked():
        if time.monotonic() > deadline:
            raise SystemExit(f"the demo sign-in offers no {role} of {code}")
        time.sleep(0.05)


def measure(browser, data_dir: str, code: str, home_heading: str, role: str, file: str, title: str,
            warm_runs: int, demo_domain: str | None) -> dict:
    """One page as one role on a server of its own: cold, then warm."""
    pages = dict(app_pages())
    home = next(f for f in pages if url_path(f) == "home")
    other = home if file != home else next(f for f in pages if url_path(f) == "my_data")
    heading = {**pages, home: home_heading}
    with app_server(data_dir, demo_domain) as (base, server_ms, log):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(WATCH)
        try:
            page = context.new_page()
            inflight: set = set()
            page.on("request", lambda request: inflight.add(request))
            page.on("requestfinished", lambda request: inflight.discard(request))
            page.on("requestfailed", lambda request: inflight.discard(request))
            sign_in(page, base, code, role)
            signed_in = timed(page, lambda: page.get_by_role("button", name="Sign in").click(), home_heading, log, inflight)
            cold = signed_in if file == home else timed(page, lambda: link(page, file).click(), heading[file], log, inflight)
            warm = []
            for _ in range(warm_runs):
                timed(page, lambda: link(page, other).click(), heading[other], log, inflight)
                warm.append(timed(page, lambda: link(page, file).click(), heading[file], log, inflight))
        finally:
            context.close()
    return {"page": title, "role": role, "cold_ms": round(cold), "warm_ms": round(statistics.median(warm)),
            "warm_runs_ms": [round(w) for w in warm], "server_start_ms": round(server_ms),
            "sign_in_ms": round(signed_in)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("code", help="the institution whose users sign in")
    parser.add_argument("home_heading", help="Home's heading: the institution's name")
    parser.add_argument("--visit", action="append", default=[],
                        help="ROLE=PAGE TITLE (repeatable); default every page as manager, and the "
                             "administrators' pages (ADMIN_PAGES) as admin")
    parser.add_argument("--warm", type=int, default=3, help="warm visits per page (the median is reported)")
    parser.add_argument("--demo-domain", help="ANALYTICS_DEMO_DOMAIN for the server (whose users sign-in offers)")
    args = parser.parse_args(argv)
    pages = app_pages()
    by_title = {title: file for file, title in pages}
    visits = []
    default = [f"manager={title}" for _file, title in pages] + [f"admin={title}" for title in ADMIN_PAGES]
    for visit in args.visit or default:
        role, _, title = visit.partition("=")
        if role not in ROLE_LABELS or title not in by_title:
            raise SystemExit(f"--visit {visit!r}: expected ROLE=PAGE with ROLE one of {', '.join(ROLE_LABELS)} and "
                             f"PAGE one of {', '.join(by_title)}")
        visits.append((role, by_title[title], title))

    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    if not os.access(executable, os.X_OK):
        raise SystemExit(f"Chromium not found at {executable}: install the Debian package 'chromium' "
                         "(make system-deps) or set CHROMIUM_PATH.")
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            for role, file, title in visits:
                result = measure(browser, args.data_dir, args.code, args.home_heading, role, file, title,
                                 args.warm, args.demo_domain)
                print(f"  {title} ({role}): cold {result['cold_ms']:,} ms, warm {result['warm_ms']:,} ms",
                      file=sys.stderr, flush=True)
                results.append(result)
        finally:
            browser.close()
    print(json.dumps({"pages": results}))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
