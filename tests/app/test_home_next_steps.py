"""Home: next steps for every role (administrator, manager, librarian), following the institution's state,
each a link to a page the user can use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.control.recommend_catalog import CATALOG
from analytics.control.store import Store, recommendation_events, recommendation_runs, recommendations
from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import demo_email
from tests.community import Member, build

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()


def home(email: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = email
    at.run()
    assert not at.exception, at.exception
    return at


def steps(at: AppTest) -> list[tuple[str, str]]:
    """(page, label) of each next step: the links inside the Next steps block."""
    block = at.get_by_key("home_next_steps")
    return [(node.proto.page, node.value) for node in block if node.type == "page_link"]


@pytest.fixture
def empty(data_dir, monkeypatch):
    """An institution with nothing imported, sharing nothing, before any community release."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    _settings, store = build(data_dir, [Member("EMP", services=())])
    for role in ("manager", "librarian"):
        store.add_user(SYSTEM, f"{role}@emp.example.org", "EMP", [role], name=role.title())
    store.dispose()
    return "EMP"


def test_new_institution_steps_per_role(empty):
    admin = steps(home("admin@emp.example.org"))
    assert admin == [("import_data", "Import your data"),
                     ("profile", "Turn on sharing for Selection and Collection Development, Recommendations and "
                                 "Benchmark Analytics")]
    assert steps(home("manager@emp.example.org")) == [("import_data", "See what has been imported"),
                                                      ("profile", "See why benchmarks are closed")]
    assert steps(home("librarian@emp.example.org")) == [("import_data", "See what has been imported"),
                                                        ("profile", "See why the collection reports are closed")]


@pytest.fixture
def sharing(published_community, tmp_path, monkeypatch):
    """A demo institution that shares everything, in a copy of the published community."""
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    store = Store(load_settings(data_dir).database_url)
    code = next(i.code for i in store.list_institutions(SYSTEM)
                # switched on and in effect: another test may have turned a switch off (still in effect)
                if all(s.in_effect and s.requested for s in store.sharing_state(SYSTEM, i.code).values()))
    # Whatever other tests did with the shared community: this release's recommendations not made yet.
    with store.engine.begin() as con:
        for table in (recommendation_events, recommendations, recommendation_runs):
            con.execute(table.delete().where(table.c.institution_code == code))
    yield code, store
    store.dispose()


def test_sharing_institution_steps_per_role(sharing):
    code, store = sharing
    fresh = ("recommendations", "See the recommendations of the new community data")
    assert steps(home(demo_email(code, "admin"))) == [
        fresh, ("my_data", "Check the quality of your data"), ("profile", "Review what your institution shares")]
    assert steps(home(demo_email(code, "manager"))) == [
        fresh, ("benchmarks", "Compare your KPIs with similar institutions"),
        ("subjects", "See how your subjects compare")]
    assert steps(home(demo_email(code, "librarian"))) == [
        fresh, ("trending", "See what is trending in your subjects"),
        ("selection", "Find titles to buy in the selection report"),
        ("deselection", "Review candidates to withdraw or retain")]

    # Once the recommendations of the release are made, Home counts the ones waiting for the user's role.
    at = home(demo_email(code, "manager")).switch_page("pages/recommendations.py").run()
    assert not at.exception
    manager = store.user(demo_email(code, "manager")).principal()
    waiting = [r for r in store.recommendation_records(manager, code)
               if r.status == "new" and "manager" in CATALOG[r.type].roles]
    assert len(waiting) > 1
    assert steps(home(demo_email(code, "manager")))[0] == ("recommendations",
                                                          f"Act on {len(waiting):,} recommendations")
