"""A tour of the app in a real browser, as a user sees it: every page of the navigation, opened by
its link, checked on what reached the browser, and photographed.

What reached the browser is read from the app's own messages on the websocket (Streamlit's
ForwardMsg protobuf), so a table is checked on its cells and headers as sent, hidden columns
included, not on the pixels of its canvas. A page fails the tour on:
- a traceback (an exception element);
- a table header that is snake_case or an internal lower-case name;
- a cell reading "None", "nan" or "null", or a missing value without a placeholder (Streamlit
  would write "None");
- a table with no rows (an empty list must be explained in words instead);
- any request to a host other than the app's own.

Used by tests/app/test_e2e_tour.py and scripts/screenshots.py (the README screenshots).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

RAW_HEADER = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$|^[a-z]")
NULL_WORDS = {"none", "nan", "null", "<na>"}
READY = """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
                 && !document.querySelector('[data-testid="stSkeleton"]')
                 && !document.querySelector('[data-testid="stSpinner"]')"""


@dataclass
class Visit:
    """One page as a role saw it."""

    title: str
    problems: list[str] = field(default_factory=list)
    tables: int = 0
    screenshot: Path | None = None


class Messages:
    """The app's messages on the websocket, decoded; `take()` returns those since the last take."""

    def __init__(self, page) -> None:
        self._by_hash: dict[str, object] = {}
        self._pending: list[object] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._received))

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        message = ForwardMsg.FromString(payload)
        if message.hash:
            self._by_hash[message.hash] = message
        if message.ref_hash:  # sent before in this session: the browser replays its cached copy
            message = self._by_hash.get(message.ref_hash, message)
        self._pending.append(message)

    def take(self) -> list:
        taken, self._pending = self._pending, []
        return taken


def sharing_institution(data_dir) -> tuple[str, str]:
    """(code, name) of the first institution of the community at `data_dir` whose every sharing switch
    is on and in effect: the one that sees every page."""
    from analytics.control.store import Store
    from analytics.core.access import Principal
    from analytics.core.config import load_settings

    store = Store(load_settings(data_dir).database_url)
    try:
        system = Principal.system_job()
        return next((i.code, i.name) for i in store.list_institutions(system)
                    if all(s.in_effect and s.requested for s in store.sharing_state(system, i.code).values()))
    finally:
        store.dispose()


def wait_ready(page, timeout_ms: int = 120_000) -> None:
    """Ready: the script has finished (no running indicator, skeleton or spinner) and the network is idle."""
    for _ in range(2):  # twice, some time apart: a rerun may not have shown its indicator yet
        page.wait_for_load_state("networkidle")
        page.wait_for_function(READY, timeout=timeout_ms)
        page.wait_for_timeout(400)


def element_problems(messages) -> tuple[list[str], int]:
    """What is wrong in the elements these messages drew, and how many tables they drew."""
    import pyarrow as pa

    problems, tables = [], 0
    for message in messages:
        if not message.HasField("delta") or not message.delta.HasField("new_element"):
            continue
        element = message.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            problems.append(f"traceback: {element.exception.type}: {element.exception.message[:200]}")
        if kind != "dataframe":
            continue
        tables += 1
        frame = element.dataframe
        config = json.loads(frame.columns or "{}")
        data = pa.ipc.open_stream(frame.arrow_data.data).read_all()
        names = [n for n in data.column_names if not n.startswith("__index_level_")]
        if data.num_rows == 0:
            problems.append(f"empty table (columns {names[:4]}): an empty list needs an explanation in words")
        for name in names:
            setting = config.get(name, {})
            if setting.get("hidden"):
                problems.append(f"hidden column {name!r}: it reaches the browser all the same")
                continue
            label = setting.get("label") or name
            if RAW_HEADER.match(label):
                problems.append(f"raw header {label!r}")
            column = data.column(name)
            if column.null_count and not frame.HasField("placeholder"):
                problems.append(f"column {label!r}: {column.null_count} missing values shown as 'None'")
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                words = {str(v).strip().lower() for v in column.to_pylist() if v is not None}
                if words & NULL_WORDS:
                    problems.append(f"column {label!r} has cells reading {sorted(words & NULL_WORDS)}")
    return problems, tables


def screenshot(page, path: Path, max_height: int = 4000) -> None:
    """The whole page: Streamlit scrolls its main area, not the document, so the window is made as
    tall as the main area's content (up to `max_height`) for the shot."""
    size = page.viewport_size
    height = page.evaluate("""() => { const main = document.querySelector('[data-testid="stMain"]');
                                      return main ? main.scrollHeight : document.body.scrollHeight; }""")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, max_height))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def nav_titles(page) -> list[str]:
    """The page titles of the sidebar navigation, in order."""
    texts = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
    # A link's text starts with its icon's name (a ligature, e.g. "home"): the title is its last line.
    return [t.strip().splitlines()[-1].strip() for t in texts if t.strip()]


def tour(page, base_url: str, messages: Messages, requests: list[str], *, shots: Path | None = None,
         prefix: str = "", only: tuple[str, ...] = ()) -> list[Visit]:
    """Open every page of the navigation (or `only` these titles) by its link; check each as above and,
    with `shots`, save a full-page screenshot as `shots/{prefix}{page-slug}.png`."""
    own = urlparse(base_url).netloc
    visits = []
    wait_ready(page)
    messages.take()
    for title in nav_titles(page):
        if only and title not in only:
            continue
        seen = len(requests)
        link = page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=title).first
        href = link.get_attribute("href")
        link.click()
        page.wait_for_url(lambda url: urlparse(url).path.rstrip("/") == urlparse(href).path.rstrip("/"),
                          timeout=120_000)
        wait_ready(page)
        visit = Visit(title)
        visit.problems, visit.tables = element_problems(messages.take())
        foreign = sorted({u for u in requests[seen:] if urlparse(u).scheme in ("http", "https", "ws", "wss")
                          and urlparse(u).netloc != own})
        visit.problems += [f"request to another host: {u}" for u in foreign]
        visible = page.locator('[data-testid="stMain"]').inner_text()
        if "Traceback (most recent call last)" in visible:
            visit.problems.append("a traceback is shown")
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            visit.screenshot = shots / f"{prefix}{slug}.png"
            screenshot(page, visit.screenshot)
        visits.append(visit)
    return visits
