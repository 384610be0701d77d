"""The code for charts and tables loads while the user is on the sign-in form and Home, once per
tab, from the app's own server at the address Streamlit loads it from: the first page with a chart
or a table then finds it loaded (the browser asks for each file once)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from tests.support.tour import sharing_institution

pytestmark = pytest.mark.browser

CODE_FILE = re.compile(r"/static/js/(PlotlyChart|DataFrame)\.[A-Za-z0-9_-]+\.js$")


def test_chart_and_table_code_loads_before_the_first_chart_page(signed_in, published_community):
    code, name = sharing_institution(published_community)
    requests: list[str] = []
    with signed_in(published_community, code, name, "Max Manager", requests=requests,
                   viewport={"width": 1400, "height": 1000}) as (page, base_url):
        # Home has neither a chart nor a table; the files arrive while it is on screen.
        page.wait_for_function("""() => performance.getEntriesByType('resource')
            .filter(e => /\\/static\\/js\\/(PlotlyChart|DataFrame)\\./.test(e.name)).length === 2""", timeout=60_000)
        before = sorted({urlparse(u).path.rsplit("/", 1)[1].split(".")[0] for u in requests if CODE_FILE.search(u)})
        assert before == ["DataFrame", "PlotlyChart"]
        for title in ("Trending titles", "Subject overview", "Home"):
            page.get_by_role("link", name=title).first.click()
            page.get_by_role("heading", name=title if title != "Home" else name).first.wait_for(timeout=90_000)
            page.wait_for_load_state("networkidle")
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 0  # back on Home
        page.get_by_role("link", name="Trending titles").first.click()
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=90_000)
        # The element that asks for them takes no room on the page.
        scripts = page.locator('[data-testid="stHtml"]')
        assert scripts.count() == 1 and scripts.first.bounding_box()["height"] == 0
    loaded = [u for u in requests if CODE_FILE.search(u)]
    # Asked for once each (the pages with a chart and a table used what was loaded), from this server.
    assert len(loaded) == 2 and len(set(loaded)) == 2
    assert {urlparse(u).netloc for u in loaded} == {urlparse(base_url).netloc}
