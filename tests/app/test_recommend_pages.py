"""The Recommendations page (AppTest), the CLI command, and the catalog documented in app and README."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.cli import main
from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import demo_email
from analytics.control.recommend_catalog import CATALOG, DISMISS_REASONS
from analytics.control.store import Store

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()


@pytest.fixture
def community(published_community, tmp_path, monkeypatch):
    """A private copy: these tests change recommendation states in the control database."""
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    store = Store(load_settings(data_dir).database_url)
    sharing = not_sharing = None
    for inst in store.list_institutions(SYSTEM):
        state = store.sharing_state(SYSTEM, inst.code)["recommendations"]
        if state.in_effect and inst.region == "NA" and sharing is None:
            sharing = inst.code
        if not state.requested and not_sharing is None:
            not_sharing = inst.code
    yield data_dir, store, sharing, not_sharing
    store.dispose()


def page(email: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = email
    at.run()
    return at.switch_page("pages/recommendations.py").run()


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_manager_sees_cards_with_evidence_and_dismisses_one(community):
    _data_dir, store, code, _ = community
    at = page(demo_email(code, "manager"))
    assert not at.exception, at.exception
    manager = store.user(demo_email(code, "manager")).principal()
    records = [r for r in store.recommendation_records(manager, code) if r.status == "new"]
    shown_types = {r.type for r in records if set(CATALOG[r.type].roles) & {"manager"}}
    assert shown_types, "the demo community should give this institution recommendations"
    headings = [m for m in markdown(at) if m.startswith("#### ")]
    assert {h[5:].rsplit(" (", 1)[0] for h in headings} == {CATALOG[t].title for t in shown_types}
    # An admin-and-librarian type is not shown to a manager by default.
    assert CATALOG["data_quality"].title not in " ".join(headings)
    # Each card shows its evidence as a table of label, value and source.
    evidence = [df.value for df in at.dataframe if "Evidence" in df.value.columns]
    assert evidence and set(evidence[0]["Source"]) <= {"yours", "community"}

    target = next(r for r in records if r.type in shown_types)
    at.selectbox(key=f"recommend_reason_{target.id}").set_value("other").run()
    at.button(key=f"recommend_dismiss_go_{target.id}").click().run()
    assert "note" in at.error[0].value.lower()  # Other needs a note: refused, nothing changed
    assert next(r for r in store.recommendation_records(manager, code) if r.id == target.id).status == "new"
    at.text_input(key=f"recommend_note_{target.id}").input("Covered by a consortium agreement").run()
    at.button(key=f"recommend_dismiss_go_{target.id}").click().run()
    assert not at.exception and not at.error
    after = next(r for r in store.recommendation_records(manager, code) if r.id == target.id)
    assert (after.status, after.reason, after.note, after.updated_by) == (
        "dismissed", "other", "Covered by a consortium agreement", demo_email(code, "manager"))
    audit = store.audit_history(manager, code)[0]
    assert audit.action == f"recommendation.{target.type}" and audit.new_value.startswith("dismissed: Other")
    assert f"**{target.summary}**" not in markdown(at)  # no longer an open card
    handled = next(df.value for df in at.dataframe if "Status" in df.value.columns)
    assert list(handled["Status"]) == ["Dismissed"]
    # The usage overview counts the offer and the dismissal.
    assert at.get("plotly_chart")
    # Grading another one: helpful, then cleared by a second click.
    other = next(r for r in records if r.type in shown_types and r.id != target.id
                 and f"recommend_grade_helpful_{r.id}" in {b.key for b in at.button})
    at.button(key=f"recommend_grade_helpful_{other.id}").click().run()
    graded = next(r for r in store.recommendation_records(manager, code) if r.id == other.id)
    assert graded.grade == "helpful"
    at.button(key=f"recommend_grade_helpful_{other.id}").click().run()
    assert next(r for r in store.recommendation_records(manager, code) if r.id == other.id).grade is None


def test_librarian_cannot_act_on_manager_only_cards(community):
    _data_dir, store, code, _ = community
    at = page(demo_email(code, "librarian"))
    assert not at.exception
    manager_only = [t for t, k in CATALOG.items() if k.roles == ("manager",)]
    headings = " ".join(m for m in markdown(at) if m.startswith("#### "))
    assert not any(CATALOG[t].title in headings for t in manager_only)
    at.toggle(key="recommend_show_all").set_value(True).run()
    librarian = store.user(demo_email(code, "librarian")).principal()
    records = [r for r in store.recommendation_records(librarian, code)
               if r.status == "new" and r.type in manager_only]
    assert records, "the demo gives this institution a manager-only recommendation"
    assert "Only a Manager may act on this type." in [c.value for c in at.caption]
    buttons = {b.key for b in at.button}
    assert not any(key.endswith(f"_{r.id}") for r in records for key in buttons if key)


def test_institution_not_sharing_receives_none(community):
    _data_dir, _store, _code, not_sharing = community
    at = page(demo_email(not_sharing, "manager"))
    assert not at.exception
    assert "receives none" in at.info[0].value
    assert not at.button


def test_cli_recommend_json_has_the_contract_fields(community, capsys):
    data_dir, _store, code, not_sharing = community
    assert main(["--data-dir", str(data_dir), "recommend", code, "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records
    for record in records:
        assert {"type", "category", "summary", "evidence", "impact", "status"} <= set(record)
        assert record["evidence"] and record["status"] == "new" and record["type"] in CATALOG
    assert main(["--data-dir", str(data_dir), "recommend", not_sharing]) == 2
    assert "receives none" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "recommend", code, "--type", "nonsense"]) == 2


def test_every_type_is_documented_in_the_app_and_the_readme(community):
    _data_dir, _store, code, _ = community
    at = page(demo_email(code, "manager"))
    about = " ".join(markdown(at))
    expanders = [e.label for e in at.expander]
    readme = (ROOT / "README.md").read_text()
    for type_id, kind in CATALOG.items():
        assert f"{kind.title} — {kind.category}" in expanders
        assert kind.rule in about and kind.materiality[1:] in about
        assert re.search(rf"`{type_id}`", readme), f"README does not document {type_id}"
        assert kind.title in readme
    for label in DISMISS_REASONS.values():
        assert label in readme
