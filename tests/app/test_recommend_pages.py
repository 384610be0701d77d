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
from analytics.release.manifest import read_manifest, release_path

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
    evidence = [t.value for t in at.table if "Evidence" in t.value.columns]
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
    assert target.summary not in [e.label for e in at.expander]  # no longer an open card
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
    data_dir, _store, code, _ = community
    at = page(demo_email(code, "manager"))
    k_title = read_manifest(release_path(load_settings(data_dir).community_dir))["privacy"]["K_TITLE"]
    about = " ".join(markdown(at))
    expanders = [e.label for e in at.expander]
    readme = (ROOT / "README.md").read_text()
    for type_id, kind in CATALOG.items():
        assert f"{kind.title} — {kind.category}" in expanders
        # The rule as the page states it: the release's title threshold instead of its name K_TITLE.
        rule = kind.rule.replace("K_TITLE - 1", str(k_title - 1)).replace("K_TITLE", str(k_title))
        assert rule in about and kind.materiality[1:] in about
        assert f"`{type_id}`" not in about  # the internal type id is for the CLI and the README only
        assert re.search(rf"`{type_id}`", readme), f"README does not document {type_id}"
        assert kind.title in readme
    for label in DISMISS_REASONS.values():
        assert label in readme


# -- the page's structure: grouped, collapsed, feedback where the user acted, no internal words ------------

INTERNAL = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b|\.parquet\b|\d{8}T\d{6}Z-[0-9a-f]{6}|\d{2}:\d{2}:\d{2}\.\d+"
                      r"|K_TITLE")


def shown_texts(at: AppTest) -> list[str]:
    """Every text the page shows: Markdown, captions, headings, messages, labels and table cells."""
    texts = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "success", "error", "warning",
                 "toast"):
        texts += [e.value for e in at.get(kind)]
    texts += [e.label for e in at.expander] + [t.label for t in at.tabs] + [m.label for m in at.metric]
    texts += [b.label for b in at.button] + [w.label for w in at.selectbox] + [w.label for w in at.toggle]
    texts += [str(v) for df in at.dataframe for column in df.value.columns for v in df.value[column]]
    return texts


def internal_words(at: AppTest) -> list[str]:
    return [text for text in shown_texts(at) if INTERNAL.search(text)]


def open_for(store, email: str, code: str) -> list:
    actor = store.user(email).principal()
    return [r for r in store.recommendation_records(actor, code)
            if r.status == "new" and set(CATALOG[r.type].roles) & set(actor.roles)]


def inside(block, kind: str) -> list[str]:
    """The values of the elements of `kind` (error, success, ...) anywhere inside `block`."""
    return [node.value for node in block if node.type == kind]


def test_open_recommendations_are_grouped_by_category_and_collapsed(community):
    from collections import Counter

    import ui
    from analytics.control.recommend_catalog import CATEGORIES

    _data_dir, store, code, _ = community
    email = demo_email(code, "manager")
    at = page(email)
    assert not at.exception, at.exception
    records = open_for(store, email, code)
    per_type = Counter(r.type for r in records)
    cards = [e for e in at.expander if (e.key or "").startswith("recommend_card_")]
    # One expander per recommendation shown (3 per type, more behind a toggle), only the first one open.
    assert len(cards) == sum(min(n, 3) for n in per_type.values()) and len(cards) >= 3
    assert [c.proto.expanded for c in cards] == [True] + [False] * (len(cards) - 1)
    # Its label is the recommendation's summary; its evidence table is inside it.
    by_id = {r.id: r for r in records}
    for card in cards:
        record = by_id[int(card.key.rsplit("_", 1)[1])]
        assert card.label == ui.md_text(record.summary)
        assert [list(t.value.columns) for t in card.get("table")] == [["Evidence", "Value", "Source"]]
    # Grouped by category, each with its count in words, in the catalog's order.
    per_category = Counter(CATALOG[r.type].category for r in records)
    expected = [f"{c} ({per_category[c]:,} open recommendation{'s' if per_category[c] != 1 else ''})"
                for c in CATEGORIES if per_category[c]]
    assert [h.value for h in at.subheader] == expected
    more = [t for t in per_type if per_type[t] > 3]
    assert more, "the demo gives this manager a type with more than 3 recommendations"
    at.toggle(key=f"recommend_more_{more[0]}").set_value(True).run()
    assert len([e for e in at.expander if (e.key or "").startswith("recommend_card_")]) == len(cards) + per_type[
        more[0]] - 3


def test_feedback_appears_where_the_user_acted(community):
    import ui

    _data_dir, store, code, _ = community
    email = demo_email(code, "manager")
    at = page(email)
    target = open_for(store, email, code)[0]
    card, dialog = f"recommend_card_{target.id}", f"recommend_dismiss_{target.id}"
    at.selectbox(key=f"recommend_reason_{target.id}").set_value("other").run()
    at.button(key=f"recommend_dismiss_go_{target.id}").click().run()
    # The refusal is inside the Dismiss dialog of that card, and nowhere else on the page.
    assert len(inside(at.get_by_key(dialog), "error")) == 1 and "note" in inside(at.get_by_key(dialog), "error")[0]
    assert any(node is at.get_by_key(dialog) for node in at.get_by_key(card))
    assert len(at.error) == 1
    # Grading: the thanks is inside the card.
    at.button(key=f"recommend_grade_helpful_{target.id}").click().run()
    assert inside(at.get_by_key(card), "success") == ["Graded helpful. Thank you."] and len(at.success) == 1
    # Done: the card leaves the open list; the confirmation is where it was, under its type, in words.
    at.text_input(key=f"recommend_note_{target.id}").input("Covered by a consortium agreement").run()
    at.button(key=f"recommend_dismiss_go_{target.id}").click().run()
    assert not at.error
    confirmed = inside(at.get_by_key(f"recommend_type_{target.type}"), "success")
    label = ui.md_text(target.evidence.get("label"))  # text from data is literal in the message
    assert confirmed == [f"“{CATALOG[target.type].title}” for {label}: dismissed. It is listed under Handled, where "
                         f"you can reopen it."] and len(at.success) == 1
    assert target.target not in confirmed[0] or target.target in label
    # Reopened from the Handled tab: the confirmation is in that tab, next to the Reopen button.
    at.button(key="recommend_reopen").click().run()
    handled = next(t for t in at.tabs if t.label == "Handled")
    assert inside(handled, "success") == [f"“{CATALOG[target.type].title}” for {label}: reopened. It is open again."]


def test_no_internal_words_on_the_page(community):
    import ui

    _data_dir, store, code, _ = community
    for role in ("manager", "librarian"):
        email = demo_email(code, role)
        at = page(email)
        assert internal_words(at) == [], role
    # A librarian dismisses a data-quality recommendation (its target is a key such as no_identifiers):
    # the confirmation names it in words.
    quality = [r for r in open_for(store, email, code) if r.type == "data_quality"]
    assert quality, "the demo gives this institution a data-quality recommendation"
    target = quality[0]
    assert "_" in target.target
    at.toggle(key=f"recommend_more_{target.type}").set_value(True).run() if len(quality) > 3 else None
    at.button(key=f"recommend_manual_{target.id}").click().run()
    assert not at.error
    done = at.success[0].value
    assert target.target not in done and ui.md_text(target.evidence["label"]) in done
    assert "implemented by hand" in done
    assert internal_words(at) == []


def test_dismissal_uses_the_reason_chosen_when_clicked(community):
    """A reason changed and Dismiss clicked before the page redrew (one run in AppTest): the
    dismissal takes the reason shown in the dialog, not the one the button was drawn with."""
    _data_dir, store, code, _ = community
    email = demo_email(code, "manager")
    at = page(email)
    target = open_for(store, email, code)[0]
    at.selectbox(key=f"recommend_reason_{target.id}").set_value("not_relevant")
    at.button(key=f"recommend_dismiss_go_{target.id}").click().run()
    after = next(r for r in store.recommendation_records(store.user(email).principal(), code) if r.id == target.id)
    assert (after.status, after.reason) == ("dismissed", "not_relevant")
