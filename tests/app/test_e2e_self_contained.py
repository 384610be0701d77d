"""A self-hosted privacy product makes no request outside its own server: every page a manager
opens, from the sign-in on, asks only the app's own host for anything (icons included)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.support.tour import sharing_institution

pytestmark = pytest.mark.browser

PAGES = ("Trending titles", "Selection report", "Subject overview", "Deselection and retention", "Recommendations",
         "Benchmarks", "Community data", "My data")


def test_every_page_asks_only_its_own_server(signed_in, published_community):
    code, name = sharing_institution(published_community)
    requests: list[str] = []
    with signed_in(published_community, code, name, "Max Manager", requests=requests,
                   viewport={"width": 1400, "height": 1000}) as (page, base_url):
        for title in PAGES:
            page.get_by_role("link", name=title).first.click()
            page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
            page.wait_for_load_state("networkidle")
    own = urlparse(base_url).netloc
    assert len(requests) > 20
    foreign = sorted({url for url in requests if urlparse(url).scheme in ("http", "https", "ws", "wss")
                      and urlparse(url).netloc != own})
    assert foreign == []
