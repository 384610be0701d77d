"""AppTest of the collection development pages on the published demo community."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import demo_email
from analytics.control.store import Store
from analytics.core.access import Principal as _Principal

SYSTEM_JOB = _Principal.system_job()

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()


@pytest.fixture
def codes(published_community, monkeypatch):
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(published_community))
    store = Store(load_settings(published_community).database_url)
    sharing, not_sharing = None, None
    for inst in store.list_institutions(SYSTEM):
        state = store.sharing_state(SYSTEM, inst.code)["collection_development"]
        # With six demo institutions only North America has three lenders of one work.
        if state.in_effect and sharing is None and inst.region == "NA":
            sharing = inst.code
        if not state.requested and not_sharing is None:
            not_sharing = inst.code
    store.dispose()
    assert sharing and not_sharing
    return sharing, not_sharing


def page(email: str, path: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["signed_in_email"] = email
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    return at.switch_page(path).run()


def table(at: AppTest, column: str):
    return [df.value for df in at.dataframe if column in df.value.columns][0]


def test_trending_filter_changes_table_and_chart(codes):
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/trending.py")
    assert not at.exception
    assert not at.info, [i.value for i in at.info]
    before = table(at, "score")
    assert len(before) > 0 and list(before["score"]) == sorted(before["score"], reverse=True)
    chart_before = at.get("plotly_chart")[0].proto.spec
    at.selectbox(key="trending_class").set_value("P").run()
    after = table(at, "score")
    assert len(after) > 0 and set(after["subject"]) != set(before["subject"])
    assert at.get("plotly_chart")[0].proto.spec != chart_before
    at.toggle(key="trending_not_held").set_value(True).run()
    assert not at.exception


def test_trending_downloads_are_valid_csv_and_xlsx(codes, published_community):
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/trending.py")
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Download Excel"]
    import ui  # the page's own export helpers, on the same ranking the page shows

    from analytics.views.trends import Filters, trending
    from analytics.release.handle import open_release

    settings = load_settings(published_community)
    store = Store(settings.database_url)
    region = store.institution(SYSTEM, code).region
    store.dispose()
    ranked = trending(open_release(settings.community_dir), Filters(region=region, window=6, limit=100))
    assert ranked["title"].to_list() == list(table(at, "score")["title"])
    export = ranked.drop("sparkline")
    parsed = pl.read_csv(io.BytesIO(ui.csv_bytes(export)), infer_schema=False)
    # The spreadsheet has the page's headers, no internal work key ("isbn:…", "fp:…") and rounded scores.
    assert parsed.height == ranked.height and parsed.columns[:2] == ["Title", "Author"]
    assert "work_key" not in parsed.columns and "Work" not in parsed.columns
    assert not any(str(v).startswith(("isbn:", "fp:")) for column in parsed.iter_columns() for v in column)
    assert parsed["ISBNs"].fill_null("").to_list() == ranked["isbns"].list.join("; ").to_list()
    scores = [float(v) for v in parsed["Score"]]
    assert scores == [round(v, 2) if abs(v) >= 1 else float(f"{v:.3g}") for v in ranked["score"]]
    # Printed short: 2 decimals at 1 and above, 3 significant digits below (0.0123, not 0.012300000000000002).
    assert all(len(v.split(".")[1]) <= 2 if abs(float(v)) >= 1 else len(v.lstrip("-0.").replace(".", "")) <= 3
               for v in parsed["Score"] if "." in v)
    xlsx = ui.excel_bytes(export)
    assert xlsx[:2] == b"PK"
    sheet = pl.read_excel(io.BytesIO(xlsx))
    assert sheet["Title"].to_list() == ranked["title"].to_list()
    assert sheet["ISBNs"].fill_null("").to_list() == ranked["isbns"].list.join("; ").to_list()


def test_window_from_the_url_out_of_range_gets_a_message(codes):
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/trending.py", {"months": "5"})
    assert not at.exception
    assert any("choose" in e.value or "3, 6 or 12" in e.value for e in at.error)
    assert len(table(at, "score")) > 0


def test_institutions_that_do_not_share_see_an_explanation(codes):
    _, code = codes
    for path in ("pages/trending.py", "pages/deselection.py"):
        at = page(demo_email(code, "admin"), path)
        assert not at.exception
        assert "does not share Selection and Collection Development" in at.info[0].value
        assert not at.dataframe
        librarian = page(demo_email(code, "librarian"), path)
        assert "does not share" in librarian.info[0].value


def test_deselection_page_tiles_and_lists(codes, published_community):
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/deselection.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    items = pl.read_parquet(published_community / "institutions" / code / "items.parquet").filter(
        pl.col("withdrawn_date").is_null())
    assert metrics["Items"] == f"{items.height:,}"
    at.number_input(key="deselection_holders").set_value(3)
    at.number_input(key="deselection_years").set_value(1).run()
    withdraw = table(at, "institutions_holding")
    assert len(withdraw) > 0 and (withdraw["institutions_holding"] >= 3).all()
    at.segmented_control(key="deselection_view").set_value("Retention candidates").run()
    retain = [df.value for df in at.dataframe][0]
    assert "institutions_holding" not in retain.columns
    assert len(retain) == int(metrics["Scarce (held by ≤ 2)"].replace(",", "")) or len(retain) == 5000


def test_subject_overview_page_switches_level(codes):
    code, _ = codes
    at = page(demo_email(code, "manager"), "pages/subjects.py")
    assert not at.exception
    by_class = table(at, "lc_class_caption")
    assert len(by_class) > 5 and by_class["own_holdings_share"].sum() == pytest.approx(1.0)
    at.segmented_control(key="subjects_level").set_value("Subclass").run()
    by_subclass = table(at, "lc_subclass_caption")
    assert len(by_subclass) > len(by_class)
    assert at.get("plotly_chart")


def test_selection_page_lists_unheld_works_with_isbns(codes, published_community):
    from analytics.views.selection import SelectionFilters, selection
    from analytics.release.handle import open_release
    from analytics.views.collection import own_identifiers

    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/selection.py")
    assert not at.exception
    groups = at.selectbox(key="selection_group").options
    assert groups and groups[0].startswith("All institutions (")
    at.slider(key="selection_percent").set_value(5).run()
    assert not at.exception
    settings = load_settings(published_community)
    keys, isbns = own_identifiers(SYSTEM_JOB, settings.data_dir, code)
    expected = selection(open_release(settings.community_dir),
                         SelectionFilters(region="NA", min_acquired_percent=5, limit=1000), keys, isbns)
    shown = [df.value for df in at.dataframe if "acquired_share" in df.value.columns]
    if expected.height:
        assert list(shown[0]["title"]) == expected["title"].to_list()
    else:
        assert not shown and "No work you lack" in at.info[0].value


def test_trending_lists_only_rising_works_and_says_when_the_toggle_empties_it(codes, published_community,
                                                                               monkeypatch):
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/trending.py")
    ranked = table(at, "score")
    assert len(ranked) > 0 and (ranked["score"] > 0).all()  # rising means rising
    assert (ranked["recent"] >= ranked["baseline"]).all()  # shown rounded to whole numbers
    # An institution that holds every work of the community: "Not held by us" empties the list,
    # and the page says that the toggle did it.
    from analytics.release.handle import open_release
    from analytics.views import collection

    release = open_release(load_settings(published_community).community_dir)
    every_work = release.cursor().sql("SELECT DISTINCT work_key FROM trend_rows").pl()["work_key"].to_list()
    release.con.close()
    monkeypatch.setattr(collection, "own_identifiers", lambda *_args: (every_work, []))
    import streamlit as st

    st.cache_data.clear()  # "held by us" is cached per institution and data version
    at.toggle(key="trending_not_held").set_value(True).run()
    assert not at.exception and not [df for df in at.dataframe if "score" in df.value.columns]
    assert any("already holds every rising work" in i.value and "Not held by us" in i.value for i in at.info)


def test_deselection_defaults_fit_the_region_and_an_empty_list_offers_the_change(codes, published_community):
    from analytics.release.handle import current_manifest
    from analytics.views.deselection import many_holders

    code, _ = codes
    manifest = current_manifest(load_settings(published_community).community_dir)
    region = Store(load_settings(published_community).database_url).institution(SYSTEM, code).region
    sharing_in_region = manifest["contributors"]["collection_development"][region]
    assert sharing_in_region < 20  # a small community: "held by 10" would empty every list
    at = page(demo_email(code, "librarian"), "pages/deselection.py")
    default = at.number_input(key="deselection_holders").value
    assert default == many_holders(manifest, "collection_development", region) <= max(3, sharing_in_region)
    at.number_input(key="deselection_years").set_value(1).run()
    assert len(table(at, "institutions_holding")) > 0  # the first screen lists candidates
    # More holders than the region has: the list is empty, the page says why and offers the change.
    at.number_input(key="deselection_holders").set_value(50).run()
    assert any("With at least 3 holders" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key="deselection_fewer_holders").click().run()
    assert at.number_input(key="deselection_holders").value == 3
    assert len(table(at, "institutions_holding")) > 0


def test_subject_treemap_colours_relative_use_on_a_scale_centred_on_one(codes):
    import json

    code, _ = codes
    at = page(demo_email(code, "manager"), "pages/subjects.py")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    axis = spec["layout"]["coloraxis"]
    assert (axis["cmin"], axis["cmax"]) == (-2, 2) and axis.get("cmid", 0) == 0  # symmetric in log: ¼× .. 4×
    assert axis["colorbar"]["ticktext"][2].startswith("1×")
    import base64

    import numpy as np

    raw = spec["data"][0]["marker"]["colors"]  # Plotly sends numbers as a typed array
    colours = np.frombuffer(base64.b64decode(raw["bdata"]), dtype=raw["dtype"]).tolist()
    assert colours and all(-2 <= c <= 2 for c in colours)
    assert len({round(c, 1) for c in colours}) > 3  # tiles differ: not all washed out to white


def test_selection_empty_list_says_why_and_offers_the_percentage_that_fills_it(codes, published_community):
    """Counts below K_TITLE are withheld, so a released work is acquired by at least K_TITLE / group
    size of its group: at or below that percentage every released work shows."""
    from analytics.views.selection import widest_percent

    assert [widest_percent(n, 3) for n in (3, 5, 10, 11, 15, 40, 100)] == [100, 60, 30, 25, 20, 5, 5]
    assert widest_percent(2, 3) == 100
    code, _ = codes
    at = page(demo_email(code, "librarian"), "pages/selection.py")
    group = at.selectbox(key="selection_group")
    size = int(group.format_func(group.value).rsplit("(", 1)[1].split()[0])
    widest = widest_percent(size, 3)
    assert at.slider(key="selection_percent").value == 20
    if widest < 100:
        at.slider(key="selection_percent").set_value(100).run()
        message = at.info[0].value
        assert f"group's {size:,} institutions" in message and f"At {widest}%" in message
        at.button(key="selection_lower").click().run()
        assert at.slider(key="selection_percent").value == widest
    if not [df for df in at.dataframe if "acquired_share" in df.value.columns]:
        assert f"at least 3 of the group's {size:,} institutions" in at.info[0].value
