"""Pages a librarian can read: every table a page shows has human column headers (no snake_case
field names), for every page and role, on the published demo community."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.control.store import Store
from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import demo_email

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()
PAGES = ["pages/home.py", "pages/trending.py", "pages/selection.py", "pages/subjects.py", "pages/deselection.py",
         "pages/recommendations.py", "pages/benchmarks.py", "pages/community.py", "pages/my_data.py",
         "pages/import_data.py", "pages/profile.py"]
RAW = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$|^[a-z]")  # snake_case, or an internal lower-case name


def shown_headers(element) -> list[str]:
    """The headers a table shows: its configured labels, else its column names (hidden ones left out)."""
    config = json.loads(element.proto.columns or "{}")
    order = list(element.proto.column_order) or list(element.value.columns)
    headers = []
    for name in order:
        column = config.get(name, {})
        if column.get("hidden"):
            continue
        headers.append(column.get("label") or name)
    return headers


@pytest.fixture
def institution(published_community, tmp_path, monkeypatch):
    """An institution that shares everything, in a copy of the published demo community."""
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    store = Store(load_settings(data_dir).database_url)
    try:
        return next(i.code for i in store.list_institutions(SYSTEM)
                    if all(s.in_effect for s in store.sharing_state(SYSTEM, i.code).values()))
    finally:
        store.dispose()


@pytest.mark.parametrize("role", ["admin", "manager", "librarian"])
def test_every_table_has_human_headers(institution, role):
    raw = {}
    for path in PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["signed_in_email"] = demo_email(institution, role)
        at.run()
        at = at.switch_page(path).run()
        assert not at.exception, (path, at.exception)
        for element in at.dataframe:
            bad = [h for h in shown_headers(element) if RAW.match(h)]
            if bad:
                raw.setdefault(path, []).extend(bad)
    assert raw == {}, json.dumps(raw)


def test_counts_read_as_words():
    import ui

    assert [ui.count(n, "row") for n in (0, 1, 2, 1396809)] == ["0 rows", "1 row", "2 rows", "1,396,809 rows"]
    assert ui.count(1, "entry", "entries") == "1 entry" and ui.count(3, "entry", "entries") == "3 entries"


def test_home_names_the_data_centre_in_words(institution):
    from analytics.core.schema import REGION_LABELS

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = demo_email(institution, "librarian")
    at.run()
    caption = " ".join(c.value for c in at.caption)
    assert "data center NA" not in caption and any(f"{label} (" in caption for label in REGION_LABELS.values())


def test_audit_history_and_home_use_words_not_codes(institution):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = demo_email(institution, "admin")
    at.run()
    home = " ".join(m.value for m in at.markdown)
    assert "community data in force was built on" in home
    assert not re.search(r"\d{8}T\d{6}Z-[0-9a-f]{6}", home) and not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", home)
    at = at.switch_page("pages/profile.py").run()
    audit = [df.value for df in at.dataframe if "What" in df.value.columns][0]
    code = re.compile(r"^[a-z_]+(\.[a-z_-]+)+$")
    assert len(audit) > 0 and not [w for w in audit["What"] if code.match(w)]
    assert any(w.startswith("Sharing: ") for w in audit["What"])
    latest = next(m.value for m in at.markdown if m.value.startswith("Latest change"))
    assert "`" not in latest


def test_audit_codes_in_words():
    import ui

    assert ui.audit_action("sharing.benchmark") == "Sharing: Benchmark Analytics"
    assert ui.audit_action("contribution.recommendations.created") == "Contribution sent: Recommendations"
    assert ui.audit_action("import.e-usage.ok") == "Import of e-usage: ok"
    assert ui.audit_action("recommendation.withdraw.grade").startswith("Recommendation graded: ")
    assert ui.audit_action("profile.fte_students") == "Profile: FTE students"
