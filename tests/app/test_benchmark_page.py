"""The Benchmarks page (AppTest) on a constructed community with known medians."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.views import benchmark
from analytics.release.publish import publish
from tests.community import build
from tests.views.test_benchmark import AS_OF, NOW, lender

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def community(tmp_path, monkeypatch):
    members = [lender(f"L{i}", n) for i, n in enumerate([10, 20, 20, 30, 40, 50])]
    members.append(lender("NOSHARE", 5000, services=("collection_development",)))
    settings, store = build(tmp_path / "data", members)
    publish(settings, store, as_of=AS_OF, now=NOW)
    store.dispose()
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(settings.data_dir))
    return settings


def page(code: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = f"admin@{code.lower()}.example.org"
    at.run()
    return at.switch_page("pages/benchmarks.py").run()


def cells(table) -> list[str]:
    return [str(v) for v in table.to_numpy().ravel()]


def captions(at) -> str:
    """The page's captions as a reader sees them (Markdown escapes and word joiners removed)."""
    return re.sub(r"\\(.)", r"\1", " ".join(c.value for c in at.caption)).replace("\u2060", "")


def test_watchlist_shows_peer_median_own_value_and_position(community):
    at = page("L0")
    assert not at.exception, at.exception
    watch = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    loans = watch[watch["KPI"] == "Loans"].iloc[0]
    assert (loans["Period"], loans["Your value"]) == ("2025", "10")  # loans are counted in whole numbers
    assert float(loans["Peer median"]) == pytest.approx(25.0, rel=0.05)  # peers' 2-5% protective factors
    assert loans["Precision"] == "peers ±2–5% each"
    assert loans["Your position"] == "lower quarter" and loans["Institutions"] == "6"
    # A month (2026-10) fits the Period column even after switching from years (the width is kept).
    element = next(df for df in at.dataframe if "KPI" in df.value.columns)
    assert json.loads(element.proto.columns)["Period"]["width"] == 80
    # No internal word or missing-value text in any cell.
    shown = cells(watch)
    assert not [c for c in shown if c in ("None", "nan", "null", "NaN") or "p25" in c or "p75" in c], shown
    assert not [c for c in shown if c.startswith("suppressed")], shown
    # The caption says the data date in words, not the release id.
    caption = at.caption[0].value
    assert "data as of 15 June 2026" in caption and "release" not in caption and "Europe" in caption
    # Every KPI of the catalog is documented on the page, by name (no internal ids).
    about = " ".join(m.value for m in at.markdown)
    assert all(f"**{k.name}**" in about for k in benchmark.CATALOG.values())
    assert not re.search(r"`[a-z]+(_[a-z]+)+`", about)
    # Six institutions are too few to trim 10% at each end without singling one out: a short status in
    # the cell, the reason in full under the table.
    at.toggle(key="benchmark_trim").set_value(True).run()
    watch = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    assert watch[watch["KPI"] == "Loans"].iloc[0]["Peer median"] == "too few to trim"
    assert set(watch["Institutions"]) == {"—"} and set(watch["Precision"]) == {"—"}
    notes = captions(at)
    assert "**Too few to trim**: Too few institutions to trim 10% at each end without singling one out" in notes
    assert "No KPI has a released peer statistic" in at.info[0].value


def test_box_and_your_value_share_one_row_and_legends_leave_the_axes_free(community):
    at = page("L0")
    at.selectbox(key="benchmark_kpi").set_value("loans").run()
    assert not at.exception, at.exception
    box, trend = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    peers, you = box["data"]
    assert peers["type"] == "box" and you["name"] == "You (10)"
    assert peers["y"] == you["y"] == ["6 peers"] and box["layout"]["yaxis"]["type"] == "category"
    assert [t["name"] for t in trend["data"] if t.get("showlegend", True)] == [
        "Middle half of peers", "Peer median", "You"]
    for figure in (box, trend):
        legend = figure["layout"]["legend"]
        assert legend["orientation"] == "h" and legend["yanchor"] == "bottom" and legend["y"] > 1  # above the plot
        assert "title" not in figure["layout"]  # the title is a subheader above the chart, never cut
    assert [h.value for h in at.subheader][-2:] == ["Loans, 2025: you and your peers", "Loans over time"]


@pytest.fixture
def small_region(tmp_path, monkeypatch):
    """Three institutions of Europe share benchmark data: fewer than K_BENCH, so every cell is suppressed."""
    settings, store = build(tmp_path / "data", [lender(f"S{i}", 10 * (i + 1)) for i in range(3)])
    publish(settings, store, as_of=AS_OF, now=NOW)
    store.dispose()
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(settings.data_dir))
    return settings


def test_region_without_released_benchmarks_says_why_at_page_level(small_region):
    at = page("S0")
    assert not at.exception, at.exception
    options = at.selectbox(key="benchmark_group").options
    assert options == ["All in the region (yours) — none released"]
    assert not [o for o in options if "up to 0" in o]
    warning = at.warning[0].value
    assert "No peer statistics for Europe yet" in warning
    assert "at least 5 institutions" in warning and "only 3 institutions of Europe" in warning
    assert "data sharing profile" in warning  # what can be done
    watch = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    assert set(watch["Peer median"]) == {"not enough peers"} and set(watch["Institutions"]) == {"—"}
    assert not [c for c in cells(watch) if c in ("None", "nan", "null")]
    assert "Fewer than 5 institutions of the peer group have data" in captions(at)


def test_peer_group_options_name_groups_in_words(community):
    at = page("L0")
    options = at.selectbox(key="benchmark_group").options
    assert options[0] == "All in the region (yours)"
    assert not [o for o in options if "=" in o or "up to 0" in o]
    assert "All in the region: up to 6 institutions in each statistic." in [c.value for c in at.caption]


def test_institution_without_benchmark_sharing_sees_no_peer_numbers(community):
    at = page("NOSHARE")
    assert not at.exception
    assert "does not share Benchmark Analytics" in at.info[0].value
    assert not at.dataframe and not at.get("plotly_chart")


def test_noisy_release_shows_quartiles_and_their_precision(tmp_path, monkeypatch):
    members = [lender(f"L{i}", n) for i, n in enumerate([10, 20, 20, 30, 40, 50])]
    settings, store = build(tmp_path / "data", members)
    publish(settings, store, as_of=AS_OF, now=NOW, epsilon=1.0)
    store.dispose()
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(settings.data_dir))
    at = page("L0")
    assert not at.exception, at.exception
    assert "per institution and year" in at.warning[0].value
    watch = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    turnover = watch[watch["KPI"] == "Turnover rate"].iloc[0]
    assert turnover["Period"] == "2025" and turnover["Institutions"] == "6"
    assert turnover["Precision"] == "noisy: quartiles close to random at this privacy budget, grid step 0.0784"
    loans = watch[watch["KPI"] == "Loans"].iloc[0]
    assert loans["Peer median"] == "not released (privacy)"
    assert "Not released with differential privacy" in captions(at)
    at.selectbox(key="benchmark_kpi").set_value("turnover_rate").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # the box without a mean, and the trend
    assert any("middle half of the peer group" in c.value and "median (line)" in c.value for c in at.caption)
