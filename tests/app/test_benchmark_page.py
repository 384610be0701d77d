"""The Benchmarks page (AppTest) on a constructed community with known medians."""

from __future__ import annotations

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


def test_watchlist_shows_peer_median_own_value_and_position(community):
    at = page("L0")
    assert not at.exception, at.exception
    watch = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    loans = watch[watch["KPI"] == "Loans"].iloc[0]
    assert (loans["Period"], loans["Your value"]) == ("2025", "10.00")
    assert float(loans["Peer median"]) == pytest.approx(25.0, rel=0.05)  # peers' 2-5% protective factors
    assert loans["Precision"] == "peers ±2–5% each"
    assert loans["Your position"] == "lower quarter" and loans["Institutions"] == 6
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    titles = [c.proto.spec for c in charts]
    assert all('"title"' in spec for spec in titles)
    # Every KPI of the catalog is documented on the page.
    about = " ".join(m.value for m in at.markdown)
    assert all(f"`{k}`" in about for k in benchmark.CATALOG)
    # Six institutions are too few to trim 10% at each end without singling one out.
    at.toggle(key="benchmark_trim").set_value(True).run()
    watch = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    assert "too few institutions to trim" in watch[watch["KPI"] == "Loans"].iloc[0]["Peer median"]


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
    assert turnover["Period"] == "2025" and turnover["Institutions"] == 6
    assert turnover["Precision"] == "noisy: quartiles close to random at this privacy budget, grid step 0.0784"
    loans = watch[watch["KPI"] == "Loans"].iloc[0]
    assert "not released with differential privacy" in loans["Peer median"]
    at.selectbox(key="benchmark_kpi").set_value("turnover_rate").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # the box without a mean, and the trend
    assert any("median (line) of the peer group" in c.value for c in at.caption)
