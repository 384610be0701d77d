"""Hostile text from other members' catalogues never becomes a link, an image or markup in the
browser: every title of a published release is replaced by an attack string, and a manager
opens Trending titles (chart labels, table) and Recommendations (cards quoting titles)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from analytics.views import recommend
from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.control.store import Store
from tests.support.browser import browser_page, demo_sign_in, streamlit_server

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()

pytestmark = pytest.mark.browser

HOSTILE = [
    "[Renew your library password](http://evil.example/login)",
    "![pixel](http://evil.example/pixel.png) Tracking title",
    "<img src=http://evil.example/img.png> <a href=http://evil.example/a>Anchor title</a>",
    "Bare link http://evil.example/bare and www.evil.example and mail@evil.example",
    "# Heading title :red[red] **bold** $x^2$",
]

# Every link and image in the document, SVG (Plotly) included, that points at the attacker.
FROM_DATA = """() => {
  const hits = [];
  for (const a of document.querySelectorAll('a')) {
    const href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (href.includes('evil.example')) hits.push('a ' + href);
  }
  for (const img of document.querySelectorAll('img, image')) {
    const src = img.getAttribute('src') || img.getAttribute('href') || img.getAttribute('xlink:href') || '';
    if (src.includes('evil.example')) hits.push('img ' + src);
  }
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    if (h.textContent.includes('Heading title')) hits.push('heading ' + h.textContent);
  }
  return hits;
}"""


def _poison_titles(release: Path) -> int:
    """Every title of every file of the release replaced by one of HOSTILE; returns the files changed."""
    return sum(_poison_file(path) for path in sorted(release.rglob("*.parquet")))


def _poison_file(path: Path) -> bool:
    frame = pl.read_parquet(path)
    if "title" not in frame.columns:
        return False
    hostile = [HOSTILE[i % len(HOSTILE)] for i in range(frame.height)]
    frame.with_columns(pl.Series("title", hostile, dtype=pl.String)).write_parquet(path)
    return True


def test_hostile_titles_stay_text_in_the_browser(published_community, tmp_path, artifacts_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    settings = load_settings(data_dir)
    assert _poison_titles((settings.community_dir / "current").resolve()) >= 2  # titles and trend rows
    # The institutions' own catalogues too: some cards quote the title of one's own item.
    for items in sorted((data_dir / "institutions").glob("*/items.parquet")):
        _poison_file(items)
    store = Store(settings.database_url)
    part = recommend.open_part(settings.community_dir)
    # An institution of which a recommendation quotes a (now hostile) title.
    code, name = next((i.code, i.name) for i in store.list_institutions(SYSTEM)
                      if store.sharing_state(SYSTEM, i.code)["recommendations"].in_effect
                      and store.sharing_state(SYSTEM, i.code)["collection_development"].in_effect
                      and any("evil.example" in c.summary
                              for c in recommend.generate(SYSTEM, part, settings.data_dir, i.code, i.region)))
    part.con.close()
    requests: list[str] = []
    try:
        with streamlit_server(ROOT, {"ANALYTICS_DATA_DIR": str(data_dir)}) as base_url, \
                browser_page(viewport={"width": 1500, "height": 1400}) as page:
            page.on("request", lambda request: requests.append(request.url))
            demo_sign_in(page, base_url, code, name, "Max Manager")

            page.get_by_role("link", name="Trending titles").first.click()
            page.get_by_role("heading", name="Trending titles").first.wait_for(timeout=60_000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            # A chart label quoting a hostile title, as text (which of them rank depends on the day's data).
            page.locator(".js-plotly-plot").get_by_text(re.compile(r"evil\.example|Heading title")).first \
                .wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "e2e-hostile-trending.png"), full_page=True)
            assert page.evaluate(FROM_DATA) == []

            page.get_by_role("link", name="Recommendations").first.click()
            page.get_by_role("heading", name="Recommendations").first.wait_for(timeout=60_000)
            page.get_by_role("button", name="Implemented by hand").first.wait_for(timeout=90_000)
            cards = page.locator("[class*='st-key-recommend_card_']")
            quoted = cards.filter(has_text="evil")
            quoted.first.wait_for(timeout=30_000)  # a card quotes a hostile title
            quoted.first.scroll_into_view_if_needed()
            quoted.first.screenshot(path=str(artifacts_dir / "e2e-hostile-recommendations.png"))
            assert page.evaluate(FROM_DATA) == []
            text = quoted.first.inner_text()
            assert "evil" in text and ("](" in text or "<" in text or "http" in text)  # shown literally
    finally:
        store.dispose()
    assert [url for url in requests if "evil.example" in url] == []
