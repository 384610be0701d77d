"""AppTest of the Collection comparison page on the published demo community."""

from __future__ import annotations

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.release.handle import open_release
from analytics.synthetic.demo import demo_email
from analytics.views.comparison import ComparisonFilters, compare
from tests.app.test_collection_pages import codes, page  # noqa: F401  (codes is a fixture)

SYSTEM = Principal.system_job()


def test_compare_page_figures_chart_and_lists(codes, published_community):  # noqa: F811
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/compare.py")
    assert not at.exception
    settings = load_settings(published_community)
    expected = compare(SYSTEM, open_release(settings.community_dir), settings.data_dir, code,
                       ComparisonFilters(region="NA"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Your works"] == f"{expected.totals['your_works']:,}"
    assert metrics["Not shown as held (fewer than 3, or none)"] == f"{expected.totals['not_shown']:,}"
    assert expected.totals["your_works"] > 0
    assert at.get("plotly_chart")
    assert any("cannot tell a work no peer holds from one that 1 or 2 hold" in c.value for c in at.caption)
    summary = [df.value for df in at.dataframe if "your_works" in df.value.columns][0]
    assert summary["your_works"].sum() == expected.totals["your_works"]
    # Drill down: your works in one band, then the gaps at a lower share.
    at.segmented_control(key="compare_view").set_value("Your works").run()
    at.selectbox(key="compare_band").set_value("fewer than 3").run()
    assert not at.exception
    works = [df.value for df in at.dataframe if "region_band" in df.value.columns]
    fewer = expected.works.filter(expected.works["band"] == "fewer than 3").height
    if fewer:
        assert len(works[0]) == fewer and set(works[0]["region_band"]) == {"fewer than 3"}
        assert at.get("download_button")
    else:
        assert not works and at.info
    at.segmented_control(key="compare_view").set_value("Gaps").run()
    at.slider(key="compare_percent").set_value(5).run()
    assert not at.exception
    gaps = [df.value for df in at.dataframe if "group_share" in df.value.columns]
    assert gaps or any("No work that you lack" in i.value for i in at.info)


def test_compare_page_needs_collection_sharing(codes):  # noqa: F811
    _, code = codes
    at = page(demo_email(code, "librarian"), "pages/compare.py")
    assert not at.exception
    assert "does not share Selection and Collection Development" in at.info[0].value
    assert not at.dataframe
