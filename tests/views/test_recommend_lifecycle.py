"""Recommendations across releases: offered once, dismissed ones stay away unless the evidence
changes materially, stale ones expire, and only the roles of a type may act on it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from analytics.views import recommend
from analytics.core.access import PermissionDenied, Principal
from analytics.core.config import load_settings
from analytics.ingest.tabular import import_file
from analytics.control.store import Store
from tests.views.test_recommend import CODE, _csv, holding, item, title, write_release

SYSTEM = Principal.system_job()
ON = datetime(2024, 1, 10, tzinfo=UTC)


@pytest.fixture
def setup(tmp_path):
    settings = load_settings(tmp_path / "data")
    store = Store.from_settings(settings)
    store.add_institution(SYSTEM, code=CODE, name="Focal University", type="research", region="EU",
                          fte_students=9000, go_live_date=date(2020, 1, 1))
    people = {role: store.add_user(SYSTEM, f"{role}@f.example.org", CODE, [role]).principal()
              for role in ("admin", "manager", "librarian")}
    store.set_sharing(people["admin"], CODE, "recommendations", True, store.institution(SYSTEM, CODE).version,
                      now=ON)
    return settings, store, people


def _import_items(settings, tmp_path, n_items: int, acquired="2001-01-01"):
    rows = [item(i, f"QA{i}.5 .B{i} 1999", acquired=acquired) for i in range(1, n_items + 1)]
    source = tmp_path / "items.csv"
    source.write_text(_csv(rows))
    import_file(settings.data_dir, SYSTEM, CODE, "items", source)


def _release(settings, n_works: int, release_id: str):
    return write_release(settings.data_dir, {"titles": [title(i) for i in range(1, n_works + 1)],
                                             "holdings": [holding(i, 6) for i in range(1, n_works + 1)]},
                         release_id=release_id)


def _withdraw(store, actor, settings, release):
    result = recommend.recommendations(actor, store, release, settings.data_dir, CODE)
    return [r for r in result.records if r.type == "withdraw"]


def test_dismissed_stays_dismissed_until_evidence_changes_materially(setup, tmp_path):
    settings, store, people = setup
    manager = people["manager"]
    _import_items(settings, tmp_path, 8)
    [offered] = _withdraw(store, manager, settings, _release(settings, 8, "20260615T000000Z-000001"))
    assert (offered.status, offered.target, offered.evidence["items"][0]["value"]) == ("new", "QA", 8)
    store.set_recommendation_status(manager, CODE, offered.id, "dismissed", expected_version=offered.version,
                                    reason="local_reason", note="Retention agreement")

    # Next release, same evidence (8 -> 9 items is less than 25%): still dismissed, not offered again.
    _import_items(settings, tmp_path, 9)
    [again] = _withdraw(store, manager, settings, _release(settings, 9, "20260616T000000Z-000002"))
    assert (again.id, again.status, again.reason, again.note) == (offered.id, "dismissed", "local_reason",
                                                                  "Retention agreement")

    # Evidence changed materially (8 -> 12 items, +50%): offered again, with the new numbers.
    _import_items(settings, tmp_path, 12)
    [back] = _withdraw(store, manager, settings, _release(settings, 12, "20260617T000000Z-000003"))
    assert (back.id, back.status, back.evidence["items"][0]["value"]) == (offered.id, "new", 12)
    assert back.last_release == "20260617T000000Z-000003"
    actions = [(e.action, e.new_value) for e in store.audit_history(people["admin"], CODE)]
    assert ("recommendation.withdraw", "new (evidence changed: QA)") in actions
    assert any(a == "recommendation.withdraw" and v.startswith("dismissed: A local reason") for a, v in actions)


def test_open_recommendation_expires_when_no_longer_true(setup, tmp_path):
    settings, store, people = setup
    _import_items(settings, tmp_path, 8)
    [offered] = _withdraw(store, people["manager"], settings, _release(settings, 8, "20260615T000000Z-000001"))
    # The items were re-acquired recently (a new import): no longer idle for ten years.
    _import_items(settings, tmp_path, 8, acquired="2024-01-01")
    [expired] = _withdraw(store, people["manager"], settings, _release(settings, 8, "20260616T000000Z-000002"))
    assert (expired.id, expired.status) == (offered.id, "expired")
    events = [(e["type"], e["value"]) for e in store.recommendation_events_for(people["manager"], CODE)]
    assert events.count(("withdraw", "new")) == 1 and events.count(("withdraw", "expired")) == 1


def test_synced_once_per_release(setup, tmp_path):
    settings, store, people = setup
    _import_items(settings, tmp_path, 8)
    release = _release(settings, 8, "20260615T000000Z-000001")
    first = _withdraw(store, people["manager"], settings, release)
    second = _withdraw(store, people["librarian"], settings, release)
    assert [r.id for r in first] == [r.id for r in second] and len(first) == 1


def test_librarian_cannot_act_on_a_manager_only_type(setup, tmp_path):
    settings, store, people = setup
    _import_items(settings, tmp_path, 8)
    release = _release(settings, 8, "20260615T000000Z-000001")
    recommend.recommendations(people["manager"], store, release, settings.data_dir, CODE)
    # A manager-only type, offered directly through the sync API.
    offer = {"type": "subject_balance", "target": "QA", "summary": "QA looks under-invested",
             "evidence": {"items": [{"label": "x", "value": 1, "source": "yours"}]}, "impact": "60 items",
             "basis": {"direction": "under-invested", "ratio": 1.6}}
    store.sync_recommendations(SYSTEM, CODE, "20260616T000000Z-000002", new=[offer], refresh=[], reoffer=[],
                               expire=[])
    record = next(r for r in store.recommendation_records(people["librarian"], CODE) if r.type == "subject_balance")
    assert not recommend.may_act(people["librarian"], "subject_balance")
    with pytest.raises(PermissionDenied, match="Only a Manager"):
        store.set_recommendation_status(people["librarian"], CODE, record.id, "dismissed",
                                        expected_version=record.version, reason="not_relevant")
    unchanged = next(r for r in store.recommendation_records(people["manager"], CODE) if r.id == record.id)
    assert unchanged.status == "new"
    done = store.set_recommendation_status(people["manager"], CODE, record.id, "implemented",
                                           expected_version=record.version, how="manual")
    assert (done.status, done.how, done.updated_by) == ("implemented", "manual", "manager@f.example.org")
    # A librarian may act on a type for librarians.
    [withdraw] = [r for r in store.recommendation_records(people["librarian"], CODE) if r.type == "withdraw"]
    store.grade_recommendation(people["librarian"], CODE, withdraw.id, "helpful", expected_version=withdraw.version)


def test_no_recommendations_without_sharing(setup, tmp_path):
    settings, store, people = setup
    store.set_sharing(people["admin"], CODE, "recommendations", False, store.institution(SYSTEM, CODE).version)
    _import_items(settings, tmp_path, 8)
    release = _release(settings, 8, "20260615T000000Z-000001")
    with pytest.raises(recommend.NotSharing, match="receives none"):
        recommend.recommendations(people["manager"], store, release, settings.data_dir, CODE)
    assert store.recommendation_records(people["manager"], CODE) == []


def test_usage_overview_counts_status_changes(setup, tmp_path):
    settings, store, people = setup
    _import_items(settings, tmp_path, 8)
    [offered] = _withdraw(store, people["manager"], settings, _release(settings, 8, "20260615T000000Z-000001"))
    store.set_recommendation_status(people["manager"], CODE, offered.id, "implemented",
                                    expected_version=offered.version, how="tool")
    overview = recommend.usage_overview(people["librarian"], store, CODE)
    assert sorted(zip(overview["type"], overview["value"], overview["count"])) == [
        ("withdraw", "implemented", 1), ("withdraw", "new", 1)]
