"""The recommendation lifecycle in the control database, on SQLite and a throwaway PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.core.access import PermissionDenied, Principal
from analytics.control.store import ChangedMeanwhile, NotFound, StoreError

SYSTEM = Principal.system_job()
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 5, 3, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
T3 = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def people(store):
    for code, region in (("UNI1", "EU"), ("UNI2", "NA")):
        store.add_institution(SYSTEM, code=code, name=f"University {code}", type="research", region=region,
                              go_live_date="2020-03-01")
    admin = store.add_user(SYSTEM, "admin@uni1.example.org", "UNI1", ["admin"]).principal()
    manager = store.add_user(SYSTEM, "manager@uni1.example.org", "UNI1", ["manager"]).principal()
    librarian = store.add_user(SYSTEM, "lib@uni1.example.org", "UNI1", ["librarian"]).principal()
    other = store.add_user(SYSTEM, "manager@uni2.example.org", "UNI2", ["manager", "admin"]).principal()
    return admin, manager, librarian, other


def _offer(rtype: str, target: str, items: int = 10) -> dict:
    return {"type": rtype, "target": target, "summary": f"{items} items in {target}",
            "evidence": {"items": items, "never_used": items // 2}, "impact": f"{items} items of shelf space",
            "basis": {"items": items}}


@pytest.fixture
def offered(store, people):
    """Release 2026-05 offered three recommendations to UNI1; returns them by type."""
    _, manager, _, _ = people
    assert store.sync_recommendations(SYSTEM, "UNI1", "2026-05", now=T0, refresh=[], reoffer=[], expire=[], new=[
        _offer("withdraw", "QA"), _offer("review_e_titles", "QA76", 7), _offer("data_quality", "no_identifiers", 40),
    ]) is True
    return {r.type: r for r in store.recommendation_records(manager, "UNI1")}


def _rec_audit(store, actor):
    return [(a.actor, a.action, a.old_value, a.new_value) for a in store.audit_history(actor, "UNI1")
            if a.action.startswith("recommendation.")]


def _record(store, actor, rec_id):
    [record] = [r for r in store.recommendation_records(actor, "UNI1") if r.id == rec_id]
    return record


def test_sync_inserts_new_offers_with_events_once_per_release(store, people, offered):
    admin, manager, librarian, _ = people
    records = store.recommendation_records(librarian, "UNI1")
    assert [(r.type, r.target, r.status, r.version) for r in records] == [
        ("data_quality", "no_identifiers", "new", 1), ("review_e_titles", "QA76", "new", 1),
        ("withdraw", "QA", "new", 1)]
    withdraw = offered["withdraw"]
    assert withdraw.institution_code == "UNI1"
    assert withdraw.evidence == {"items": 10, "never_used": 5}
    assert withdraw.basis == {"items": 10}
    assert (withdraw.summary, withdraw.impact) == ("10 items in QA", "10 items of shelf space")
    assert (withdraw.first_release, withdraw.last_release) == ("2026-05", "2026-05")
    assert withdraw.offered_at == T0 and withdraw.updated_at == T0
    assert withdraw.offered_at.tzinfo is not None
    assert (withdraw.how, withdraw.reason, withdraw.note, withdraw.grade, withdraw.updated_by) == (None,) * 5
    assert store.recommendations_synced(librarian, "UNI1", "2026-05") is True
    assert store.recommendations_synced(librarian, "UNI1", "2026-06") is False
    events = store.recommendation_events_for(admin, "UNI1")
    assert [(e["recommendation_id"], e["type"], e["kind"], e["value"], e["actor"], e["release_id"], e["at"])
            for e in events] == [
        (offered[t].id, t, "status", "new", "system", "2026-05", T0)
        for t in ("withdraw", "review_e_titles", "data_quality")]
    assert _rec_audit(store, admin) == []

    # A second sync of the same release (another session, a reload) changes nothing.
    assert store.sync_recommendations(SYSTEM, "UNI1", "2026-05", new=[_offer("withdraw", "PR")],
                                      refresh=[(withdraw.id, _offer("withdraw", "QA", 99))], reoffer=[],
                                      expire=[offered["data_quality"].id], now=T1) is False
    assert store.recommendation_records(librarian, "UNI1") == records
    assert len(store.recommendation_events_for(admin, "UNI1")) == 3


def test_concurrent_syncs_of_one_release_apply_once(store, people):
    _, manager, librarian, _ = people
    outcomes: list[bool] = []
    barrier = threading.Barrier(5)

    def sync() -> None:
        barrier.wait()
        outcomes.append(store.sync_recommendations(
            manager, "UNI1", "2026-05", new=[_offer("withdraw", "QA"), _offer("retain", "PR")],
            refresh=[], reoffer=[], expire=[]))

    threads = [threading.Thread(target=sync) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * 4 + [True]
    assert [(r.type, r.target) for r in store.recommendation_records(librarian, "UNI1")] == [
        ("retain", "PR"), ("withdraw", "QA")]
    assert len(store.recommendation_events_for(librarian, "UNI1")) == 2


def test_refresh_keeps_status_version_and_basis(store, people, offered):
    admin, manager, librarian, _ = people
    withdraw = offered["withdraw"]
    store.set_recommendation_status(librarian, "UNI1", withdraw.id, "dismissed", expected_version=1,
                                    reason="not_relevant", now=T1)
    assert store.sync_recommendations(SYSTEM, "UNI1", "2026-06", new=[], reoffer=[], expire=[], now=T2,
                                      refresh=[(withdraw.id, _offer("withdraw", "QA", 11))]) is True
    after = _record(store, admin, withdraw.id)
    assert (after.status, after.reason, after.version) == ("dismissed", "not_relevant", 2)
    assert after.evidence == {"items": 11, "never_used": 5} and after.summary == "11 items in QA"
    assert after.basis == {"items": 10, "never_used": 5}  # the evidence when the librarian dismissed it
    assert (after.first_release, after.last_release) == ("2026-05", "2026-06")
    assert (after.offered_at, after.updated_at, after.updated_by) == (T0, T1, "lib@uni1.example.org")
    assert [e["value"] for e in store.recommendation_events_for(admin, "UNI1")] == ["new"] * 3 + ["dismissed"]


def test_reoffer_and_expire_set_status_bump_version_and_audit(store, people, offered):
    admin, manager, librarian, _ = people
    withdraw, quality = offered["withdraw"], offered["data_quality"]
    store.set_recommendation_status(librarian, "UNI1", withdraw.id, "dismissed", expected_version=1,
                                    reason="other", note="Kept for a donor", now=T1)
    store.grade_recommendation(librarian, "UNI1", withdraw.id, "not_helpful", expected_version=2, now=T1)
    assert store.sync_recommendations(SYSTEM, "UNI1", "2026-06", new=[], refresh=[], now=T2,
                                      reoffer=[(withdraw.id, _offer("withdraw", "QA", 20))],
                                      expire=[quality.id]) is True
    reoffered = _record(store, admin, withdraw.id)
    assert (reoffered.status, reoffered.how, reoffered.reason, reoffered.note, reoffered.grade) == (
        "new", None, None, None, None)
    assert reoffered.version == 4
    assert reoffered.evidence == {"items": 20, "never_used": 10} and reoffered.basis == {"items": 20}
    assert (reoffered.first_release, reoffered.last_release, reoffered.offered_at) == ("2026-05", "2026-06", T2)
    expired = _record(store, admin, quality.id)
    assert (expired.status, expired.version, expired.updated_at, expired.updated_by) == ("expired", 2, T2, "system")
    assert expired.last_release == "2026-05"
    assert _rec_audit(store, admin)[:2] == [
        ("system", "recommendation.data_quality", "new", "expired at release 2026-06 (target no_identifiers)"),
        ("system", "recommendation.withdraw", "dismissed", "new (evidence changed: QA)"),
    ]
    events = store.recommendation_events_for(admin, "UNI1")[-2:]
    assert [(e["recommendation_id"], e["kind"], e["value"], e["actor"], e["release_id"]) for e in events] == [
        (withdraw.id, "status", "new", "system", "2026-06"), (quality.id, "status", "expired", "system", "2026-06")]
    # An expired recommendation cannot be acted on.
    with pytest.raises(StoreError, match="expired"):
        store.set_recommendation_status(admin, "UNI1", quality.id, "dismissed", expected_version=2,
                                        reason="already_done")
    # An expired one that fires again is offered again.
    assert store.sync_recommendations(SYSTEM, "UNI1", "2026-07", new=[], refresh=[], expire=[], now=T3,
                                      reoffer=[(quality.id, _offer("data_quality", "no_identifiers", 50))]) is True
    assert (_record(store, admin, quality.id).status, _record(store, admin, quality.id).version) == ("new", 3)


def test_sync_validates_and_applies_nothing_on_error(store, people, offered):
    _, manager, librarian, other = people
    withdraw = offered["withdraw"]
    before = store.recommendation_records(manager, "UNI1")
    nothing: dict = {"new": [], "refresh": [], "reoffer": [], "expire": []}
    calls = {
        "not a recommendation type": nothing | {"new": [_offer("buy_everything", "QA")]},
        "offered to UNI1 already": nothing | {"new": [_offer("withdraw", "QA")]},
        "is new already": nothing | {"reoffer": [(withdraw.id, _offer("withdraw", "QA"))]},
        "not retain": nothing | {"refresh": [(withdraw.id, _offer("retain", "QA"))]},
        "more than once": nothing | {"refresh": [(withdraw.id, _offer("withdraw", "QA"))], "expire": [withdraw.id]},
        "lacks basis": nothing | {"new": [{k: v for k, v in _offer("retain", "PR").items() if k != "basis"}]},
    }
    for message, kwargs in calls.items():
        with pytest.raises(StoreError, match=message):
            store.sync_recommendations(SYSTEM, "UNI1", "2026-06", **kwargs)
    with pytest.raises(NotFound, match="no recommendation"):
        store.sync_recommendations(SYSTEM, "UNI1", "2026-06", new=[_offer("retain", "PR")], refresh=[],
                                   reoffer=[], expire=[withdraw.id + 1000])
    # An id of UNI1 named in a sync of UNI2 is not found there.
    with pytest.raises(NotFound):
        store.sync_recommendations(other, "UNI2", "2026-06", new=[], refresh=[], reoffer=[], expire=[withdraw.id])
    assert store.recommendations_synced(manager, "UNI1", "2026-06") is False
    assert store.recommendations_synced(other, "UNI2", "2026-06") is False
    assert store.recommendation_records(librarian, "UNI1") == before
    # numpy scalars from the rules are stored as plain JSON numbers.
    offer = _offer("retain", "PR") | {"evidence": {"works": np.int64(7), "share": np.float64(0.25)}}
    assert store.sync_recommendations(SYSTEM, "UNI1", "2026-06", new=[offer], refresh=[], reoffer=[], expire=[])
    [retain] = [r for r in store.recommendation_records(manager, "UNI1") if r.type == "retain"]
    assert retain.evidence == {"works": 7, "share": 0.25} and type(retain.evidence["works"]) is int


def test_dismiss_needs_a_listed_reason_and_other_needs_a_note(store, people, offered):
    admin, _, librarian, _ = people
    withdraw = offered["withdraw"]
    for kwargs, message in (
        ({}, "reason: choose why"),
        ({"reason": "too_hard"}, "reason: choose why"),
        ({"reason": "other"}, "say why in the note"),
        ({"reason": "other", "note": "   "}, "say why in the note"),
        ({"reason": "not_relevant", "how": "tool"}, "only an implementation"),
    ):
        with pytest.raises(StoreError, match=message):
            store.set_recommendation_status(librarian, "UNI1", withdraw.id, "dismissed", expected_version=1,
                                            **kwargs)
    with pytest.raises(StoreError, match="expire by themselves"):
        store.set_recommendation_status(librarian, "UNI1", withdraw.id, "expired", expected_version=1)
    assert _record(store, admin, withdraw.id) == withdraw
    assert _rec_audit(store, admin) == []

    done = store.set_recommendation_status(librarian, "UNI1", withdraw.id, "dismissed", expected_version=1,
                                           reason="other", note=" Bought as a package ", now=T1)
    assert (done.status, done.reason, done.note, done.how, done.version) == ("dismissed", "other",
                                                                           "Bought as a package", None, 2)
    assert (done.updated_at, done.updated_by) == (T1, "lib@uni1.example.org")
    assert done.basis == withdraw.evidence
    assert _rec_audit(store, admin) == [(
        "lib@uni1.example.org", "recommendation.withdraw", "new",
        "dismissed: Other (say why in the note) — Bought as a package (target QA)")]
    [event] = store.recommendation_events_for(admin, "UNI1")[3:]
    assert (event["kind"], event["value"], event["actor"], event["at"], event["release_id"]) == (
        "status", "dismissed", "lib@uni1.example.org", T1, "2026-05")


def test_implemented_needs_how(store, people, offered):
    admin, manager, _, _ = people
    titles = offered["review_e_titles"]
    with pytest.raises(StoreError, match="say how it was implemented"):
        store.set_recommendation_status(manager, "UNI1", titles.id, "implemented", expected_version=1)
    with pytest.raises(StoreError, match="say how it was implemented"):
        store.set_recommendation_status(manager, "UNI1", titles.id, "implemented", expected_version=1, how="magic")
    with pytest.raises(StoreError, match="only a dismissal"):
        store.set_recommendation_status(manager, "UNI1", titles.id, "implemented", expected_version=1,
                                        how="manual", reason="other")
    assert _rec_audit(store, admin) == []
    done = store.set_recommendation_status(manager, "UNI1", titles.id, "implemented", expected_version=1,
                                           how="tool", now=T1)
    assert (done.status, done.how, done.reason, done.note, done.version) == ("implemented", "tool", None, None, 2)
    quality = offered["data_quality"]
    store.set_recommendation_status(admin, "UNI1", quality.id, "implemented", expected_version=1, how="manual",
                                    note="Fixed in Alma", now=T1)
    assert _rec_audit(store, admin) == [
        ("admin@uni1.example.org", "recommendation.data_quality", "new",
         "implemented by hand, outside this tool — Fixed in Alma (target no_identifiers)"),
        ("manager@uni1.example.org", "recommendation.review_e_titles", "new",
         "implemented through this tool (target QA76)"),
    ]
    with pytest.raises(StoreError, match="reopen it before"):
        store.set_recommendation_status(manager, "UNI1", titles.id, "dismissed", expected_version=2,
                                        reason="already_done")
    with pytest.raises(StoreError, match="implemented already"):
        store.set_recommendation_status(manager, "UNI1", titles.id, "implemented", expected_version=2, how="tool")


def test_only_the_roles_of_the_type_may_act(store, people, offered):
    admin, manager, librarian, _ = people
    titles, withdraw = offered["review_e_titles"], offered["withdraw"]
    with pytest.raises(PermissionDenied) as denied:
        store.set_recommendation_status(librarian, "UNI1", titles.id, "dismissed", expected_version=1,
                                        reason="not_relevant")
    assert str(denied.value) == ("Only a Manager may act on “Review unused e-titles” recommendations; "
                                 "lib@uni1.example.org has the role(s): librarian.")
    with pytest.raises(PermissionDenied, match="Only a Manager may act"):
        store.grade_recommendation(librarian, "UNI1", titles.id, "helpful", expected_version=1)
    with pytest.raises(PermissionDenied, match="Only a Manager or Collection librarian may act on “Withdraw"):
        store.set_recommendation_status(admin, "UNI1", withdraw.id, "implemented", expected_version=1, how="tool")
    assert store.recommendation_records(librarian, "UNI1") == sorted(offered.values(), key=lambda r: r.type)
    assert _rec_audit(store, admin) == []
    assert len(store.recommendation_events_for(librarian, "UNI1")) == 3
    # The roles named by the type may act; the system job always may.
    assert store.set_recommendation_status(manager, "UNI1", titles.id, "dismissed", expected_version=1,
                                           reason="no_budget_or_space").status == "dismissed"
    assert store.grade_recommendation(SYSTEM, "UNI1", withdraw.id, "helpful", expected_version=1).grade == "helpful"


def test_another_institution_can_neither_read_nor_act(store, people, offered):
    _, manager, _, other = people
    withdraw = offered["withdraw"]
    for call in (
        lambda: store.recommendation_records(other, "UNI1"),
        lambda: store.recommendations_synced(other, "UNI1", "2026-05"),
        lambda: store.recommendation_events_for(other, "UNI1"),
        lambda: store.sync_recommendations(other, "UNI1", "2026-06", new=[], refresh=[], reoffer=[], expire=[]),
        lambda: store.set_recommendation_status(other, "UNI1", withdraw.id, "dismissed", expected_version=1,
                                                reason="not_relevant"),
        lambda: store.grade_recommendation(other, "UNI1", withdraw.id, "helpful", expected_version=1),
    ):
        with pytest.raises(PermissionDenied, match="another institution"):
            call()
    # Naming its own institution does not reach UNI1's recommendation either.
    with pytest.raises(NotFound):
        store.set_recommendation_status(other, "UNI2", withdraw.id, "dismissed", expected_version=1,
                                        reason="not_relevant")
    with pytest.raises(NotFound):
        store.grade_recommendation(other, "UNI2", withdraw.id, "helpful", expected_version=1)
    assert store.recommendation_records(other, "UNI2") == []
    assert _record(store, manager, withdraw.id) == withdraw
    assert store.recommendations_synced(manager, "UNI1", "2026-06") is False


def test_stale_version_gets_changed_meanwhile(store, people, offered):
    admin, manager, librarian, _ = people
    withdraw = offered["withdraw"]
    loaded = withdraw.version  # both open the page at the same time
    store.set_recommendation_status(librarian, "UNI1", withdraw.id, "dismissed", expected_version=loaded,
                                    reason="data_wrong", now=T1)
    with pytest.raises(ChangedMeanwhile, match="changed meanwhile by lib@uni1.example.org.*Reload"):
        store.set_recommendation_status(manager, "UNI1", withdraw.id, "implemented", expected_version=loaded,
                                        how="tool")
    with pytest.raises(ChangedMeanwhile, match="your copy is version 1, now 2"):
        store.grade_recommendation(manager, "UNI1", withdraw.id, "helpful", expected_version=loaded)
    after = _record(store, admin, withdraw.id)
    assert (after.status, after.reason, after.grade, after.version) == ("dismissed", "data_wrong", None, 2)
    assert len(_rec_audit(store, admin)) == 1
    # A release that reoffered it meanwhile is named as the change.
    store.sync_recommendations(SYSTEM, "UNI1", "2026-06", new=[], refresh=[], expire=[], now=T2,
                               reoffer=[(withdraw.id, _offer("withdraw", "QA", 30))])
    with pytest.raises(ChangedMeanwhile, match="changed meanwhile at release 2026-06"):
        store.set_recommendation_status(manager, "UNI1", withdraw.id, "new", expected_version=2)


def test_grade_set_and_cleared(store, people, offered):
    admin, _, librarian, _ = people
    withdraw = offered["withdraw"]
    graded = store.grade_recommendation(librarian, "UNI1", withdraw.id, "helpful", expected_version=1, now=T1)
    assert (graded.grade, graded.status, graded.version, graded.updated_by) == (
        "helpful", "new", 2, "lib@uni1.example.org")
    assert graded.basis == withdraw.basis  # a grade is no decision on the evidence
    with pytest.raises(StoreError, match="graded helpful already"):
        store.grade_recommendation(librarian, "UNI1", withdraw.id, "helpful", expected_version=2)
    with pytest.raises(StoreError, match="grade: 'great'"):
        store.grade_recommendation(librarian, "UNI1", withdraw.id, "great", expected_version=2)
    cleared = store.grade_recommendation(librarian, "UNI1", withdraw.id, None,
                                         expected_version=2, now=T2)
    assert (cleared.grade, cleared.version) == (None, 3)
    assert _rec_audit(store, admin) == [
        ("lib@uni1.example.org", "recommendation.withdraw.grade", "helpful", "no grade (target QA)"),
        ("lib@uni1.example.org", "recommendation.withdraw.grade", None, "helpful (target QA)"),
    ]
    assert [(e["kind"], e["value"], e["at"]) for e in store.recommendation_events_for(admin, "UNI1")[3:]] == [
        ("grade", "helpful", T1), ("grade", "cleared", T2)]


def test_reopen_clears_the_decision(store, people, offered):
    admin, _, librarian, _ = people
    withdraw = offered["withdraw"]
    store.set_recommendation_status(librarian, "UNI1", withdraw.id, "dismissed", expected_version=1,
                                    reason="local_reason", note="Retention agreement", now=T1)
    store.grade_recommendation(librarian, "UNI1", withdraw.id, "not_helpful", expected_version=2, now=T1)
    with pytest.raises(StoreError, match="Reopening takes no"):
        store.set_recommendation_status(librarian, "UNI1", withdraw.id, "new", expected_version=3,
                                        reason="other")
    reopened = store.set_recommendation_status(librarian, "UNI1", withdraw.id, "new", expected_version=3, now=T2)
    assert (reopened.status, reopened.how, reopened.reason, reopened.note, reopened.grade, reopened.version) == (
        "new", None, None, None, "not_helpful", 4)
    assert reopened.offered_at == T0 and reopened.updated_at == T2
    assert _rec_audit(store, admin)[0] == (
        "lib@uni1.example.org", "recommendation.withdraw", "dismissed", "new: reopened (target QA)")
    with pytest.raises(StoreError, match="new already"):
        store.set_recommendation_status(librarian, "UNI1", withdraw.id, "new", expected_version=4)
    # Reopened, it can be decided again.
    assert store.set_recommendation_status(librarian, "UNI1", withdraw.id, "implemented", expected_version=4,
                                           how="manual").status == "implemented"


def test_events_oldest_first_and_audit_history(store, people, offered):
    _, manager, librarian, _ = people
    withdraw, titles = offered["withdraw"], offered["review_e_titles"]
    store.set_recommendation_status(manager, "UNI1", titles.id, "dismissed", expected_version=1,
                                    reason="already_done", now=T3)
    store.set_recommendation_status(librarian, "UNI1", withdraw.id, "implemented", expected_version=1,
                                    how="tool", now=T1)
    store.grade_recommendation(manager, "UNI1", withdraw.id, "helpful", expected_version=2, now=T2)
    events = store.recommendation_events_for(librarian, "UNI1")
    assert [(e["recommendation_id"], e["kind"], e["value"], e["actor"], e["at"]) for e in events] == [
        (withdraw.id, "status", "new", "system", T0),
        (titles.id, "status", "new", "system", T0),
        (offered["data_quality"].id, "status", "new", "system", T0),
        (withdraw.id, "status", "implemented", "lib@uni1.example.org", T1),
        (withdraw.id, "grade", "helpful", "manager@uni1.example.org", T2),
        (titles.id, "status", "dismissed", "manager@uni1.example.org", T3),
    ]
    history = [a for a in store.audit_history(librarian, "UNI1") if a.action.startswith("recommendation.")]
    assert [(a.at, a.actor, a.action) for a in history[:3]] == [
        (T3, "manager@uni1.example.org", "recommendation.review_e_titles"),
        (T2, "manager@uni1.example.org", "recommendation.withdraw.grade"),
        (T1, "lib@uni1.example.org", "recommendation.withdraw"),
    ]
    assert history[0].new_value == "dismissed: Already done or in progress (target QA76)"
    assert history[0].institution_code == "UNI1"


def test_drop_everything_removes_the_recommendation_tables(store, people, offered):
    _, manager, _, _ = people
    store.set_recommendation_status(manager, "UNI1", offered["withdraw"].id, "dismissed", expected_version=1,
                                    reason="not_relevant")
    store.drop_everything(SYSTEM)
    store.add_institution(SYSTEM, code="UNI1", name="University UNI1", type="research", region="EU",
                          go_live_date="2020-03-01")
    assert store.recommendation_records(SYSTEM, "UNI1") == []
    assert store.recommendation_events_for(SYSTEM, "UNI1") == []
    assert store.recommendations_synced(SYSTEM, "UNI1", "2026-05") is False


def test_a_user_syncs_only_the_types_of_its_role(store, people, offered):
    """A librarian calling sync directly cannot expire (or offer) a manager-only recommendation;
    a manager may expire its own type; the app's sync runs as the system job."""
    _, manager, librarian, _ = people
    review = offered["review_e_titles"]  # manager only
    with pytest.raises(PermissionDenied, match="may not change recommendations of type.*review_e_titles"):
        store.sync_recommendations(librarian, "UNI1", "2026-06", new=[], refresh=[], reoffer=[], expire=[review.id])
    with pytest.raises(PermissionDenied, match="review_e_titles"):
        store.sync_recommendations(librarian, "UNI1", "2026-06", new=[_offer("review_e_titles", "QA99")],
                                   refresh=[], reoffer=[], expire=[])
    assert _record(store, manager, review.id).status == "new"
    assert store.recommendations_synced(manager, "UNI1", "2026-06") is False  # the refused sync changed nothing
    assert store.sync_recommendations(manager, "UNI1", "2026-06", new=[], refresh=[], reoffer=[],
                                      expire=[review.id]) is True
    assert _record(store, manager, review.id).status == "expired"
