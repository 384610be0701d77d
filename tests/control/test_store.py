"""The control database, run against SQLite and a throwaway PostgreSQL server."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from analytics.core.access import PermissionDenied, Principal
from analytics.control.store import ChangedMeanwhile, NotFound, StoreError, effective_from

SYSTEM = Principal.system_job()


def _institution(store, code="UNI1", **extra):
    values = dict(code=code, name=f"University {code}", type="research", region="EU", country="de",
                  fte_students=12_000, go_live_date="2020-03-01")
    values.update(extra)
    return store.add_institution(SYSTEM, **values)


@pytest.fixture
def people(store):
    _institution(store, "UNI1")
    _institution(store, "UNI2", region="NA", country="US")
    admin = store.add_user(SYSTEM, "Admin@Uni1.example.org", "UNI1", ["admin"], "Ada").principal()
    librarian = store.add_user(SYSTEM, "lib@uni1.example.org", "UNI1", ["librarian"], "Lena").principal()
    other_admin = store.add_user(SYSTEM, "admin@uni2.example.org", "UNI2", ["admin"], "Otto").principal()
    return admin, librarian, other_admin


def test_institution_profile_is_validated_and_size_band_derived(store):
    inst = _institution(store)
    assert inst.country == "DE"
    assert inst.size_band == "5,000-14,999"
    assert inst.go_live_date == date(2020, 3, 1)
    with pytest.raises(StoreError, match="type: 'museum'"):
        _institution(store, "X1", type="museum")
    with pytest.raises(StoreError, match="region"):
        _institution(store, "X2", region="MARS")
    with pytest.raises(StoreError, match="go_live_date"):
        _institution(store, "X3", go_live_date="31/12/2020")
    with pytest.raises(StoreError, match="exists already"):
        _institution(store, "UNI1")


def test_sharing_starts_off_and_benchmark_waits_for_next_month(store, people):
    admin, librarian, _ = people
    states = store.sharing_state(admin, "UNI1")
    assert {s.requested for s in states.values()} == {False}
    version = store.institution(admin, "UNI1").version
    now = datetime(2026, 11, 17, 10, 0, tzinfo=timezone.utc)
    state = store.set_sharing(admin, "UNI1", "benchmark", True, version, now=now)
    assert state.effective_from == date(2026, 12, 1)
    assert state.requested is True
    on_nov_30 = store.sharing_state(librarian, "UNI1", on=date(2026, 11, 30))["benchmark"]
    assert on_nov_30.in_effect is False and on_nov_30.pending
    on_dec_1 = store.sharing_state(librarian, "UNI1", on=date(2026, 12, 1))["benchmark"]
    assert on_dec_1.in_effect is True and not on_dec_1.pending
    # The other services take effect at the next release: in effect from the day of the request.
    version = store.institution(admin, "UNI1").version
    cd = store.set_sharing(admin, "UNI1", "collection_development", True, version, now=now)
    assert cd.effective_from == date(2026, 11, 17)
    assert effective_from("benchmark", datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc)) == date(2027, 1, 1)


def test_sharing_in_effect_on_an_as_of_date(store, people):
    admin, _, other_admin = people
    v = store.institution(admin, "UNI1").version
    store.set_sharing(admin, "UNI1", "benchmark", True, v, now=datetime(2026, 1, 10, tzinfo=timezone.utc))
    v = store.institution(admin, "UNI1").version
    store.set_sharing(admin, "UNI1", "benchmark", False, v, now=datetime(2026, 3, 5, tzinfo=timezone.utc))
    assert store.sharing_in_effect(SYSTEM, date(2026, 1, 31))["UNI1"]["benchmark"] is False
    assert store.sharing_in_effect(SYSTEM, date(2026, 2, 1))["UNI1"]["benchmark"] is True
    assert store.sharing_in_effect(SYSTEM, date(2026, 3, 31))["UNI1"]["benchmark"] is True
    assert store.sharing_in_effect(SYSTEM, date(2026, 4, 1))["UNI1"]["benchmark"] is False
    assert store.sharing_in_effect(SYSTEM, date(2026, 4, 1))["UNI2"] == {
        "collection_development": False, "recommendations": False, "benchmark": False}
    with pytest.raises(PermissionDenied):
        store.sharing_in_effect(other_admin, date(2026, 4, 1))


def test_switch_change_and_audit_row_commit_together(store, people):
    admin, _, _ = people
    version = store.institution(admin, "UNI1").version
    store.set_sharing(admin, "UNI1", "recommendations", True, version,
                      now=datetime(2026, 5, 2, 9, 30, tzinfo=timezone.utc))
    [entry] = [a for a in store.audit_history(admin, "UNI1") if a.action.startswith("sharing.")]
    assert entry.actor == "admin@uni1.example.org"
    assert entry.action == "sharing.recommendations"
    assert (entry.old_value, entry.new_value) == ("off", "on (effective 2026-05-02)")
    assert entry.at == datetime(2026, 5, 2, 9, 30, tzinfo=timezone.utc)


def test_failed_change_writes_no_audit_row(store, people):
    admin, _, _ = people
    before = len(store.audit_history(admin, "UNI1"))
    with pytest.raises(StoreError, match="already off"):
        store.set_sharing(admin, "UNI1", "benchmark", False, store.institution(admin, "UNI1").version)
    with pytest.raises(StoreError, match="fte_students"):
        store.update_profile(admin, "UNI1", {"fte_students": "many"}, store.institution(admin, "UNI1").version)
    assert len(store.audit_history(admin, "UNI1")) == before
    assert store.institution(admin, "UNI1").fte_students == 12_000


def test_profile_update_audits_each_changed_field(store, people):
    admin, _, _ = people
    inst = store.institution(admin, "UNI1")
    updated = store.update_profile(admin, "UNI1", {"fte_students": "31,000", "name": inst.name}, inst.version)
    assert updated.fte_students == 31_000 and updated.size_band == "30,000 and over"
    assert updated.version == inst.version + 1
    audit = store.audit_history(admin, "UNI1")
    assert [(a.action, a.old_value, a.new_value) for a in audit[:1]] == [("profile.fte_students", "12000", "31000")]
    assert not any(a.action == "profile.name" for a in audit)


def test_second_concurrent_editor_gets_changed_meanwhile(store, people):
    admin, _, _ = people
    second_admin = store.add_user(SYSTEM, "admin2@uni1.example.org", "UNI1", ["admin"]).principal()
    loaded = store.institution(admin, "UNI1").version  # both open the page at the same time
    store.set_sharing(admin, "UNI1", "benchmark", True, loaded)
    with pytest.raises(ChangedMeanwhile, match="Reload"):
        store.update_profile(second_admin, "UNI1", {"fte_students": 1}, loaded)
    assert store.institution(admin, "UNI1").fte_students == 12_000


def test_concurrent_threads_never_lose_an_update(store, people):
    """Many editors race from the same loaded version: exactly one wins, the rest are told."""
    admin, _, _ = people
    loaded = store.institution(admin, "UNI1").version
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            store.update_profile(admin, "UNI1", {"fte_students": 1000 + i}, loaded)
            outcomes.append("ok")
        except ChangedMeanwhile:
            outcomes.append("changed")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["changed"] * 5 + ["ok"]
    assert store.institution(admin, "UNI1").version == loaded + 1
    fte_rows = [a for a in store.audit_history(admin, "UNI1") if a.action == "profile.fte_students"]
    assert len(fte_rows) == 1


def test_librarian_direct_store_calls_are_refused(store, people):
    _, librarian, _ = people
    version = store.institution(librarian, "UNI1").version  # reading is allowed
    with pytest.raises(PermissionDenied, match="General System Administrator"):
        store.set_sharing(librarian, "UNI1", "benchmark", True, version)
    with pytest.raises(PermissionDenied):
        store.update_profile(librarian, "UNI1", {"fte_students": 5}, version)
    with pytest.raises(PermissionDenied):
        store.add_user(librarian, "new@uni1.example.org", "UNI1", ["admin"])


def test_no_access_to_another_institution(store, people):
    admin, librarian, other_admin = people
    with pytest.raises(PermissionDenied, match="another institution"):
        store.institution(other_admin, "UNI1")
    with pytest.raises(PermissionDenied):
        store.sharing_state(other_admin, "UNI1")
    with pytest.raises(PermissionDenied):
        store.audit_history(other_admin, "UNI1")
    with pytest.raises(PermissionDenied):
        store.set_sharing(other_admin, "UNI1", "benchmark", True, 1)
    with pytest.raises(PermissionDenied):
        store.list_institutions(admin)


def test_audit_log_is_append_only_in_the_database(store, people):
    admin, _, _ = people
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with store.engine.begin() as con:
            con.exec_driver_sql("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with store.engine.begin() as con:
            con.exec_driver_sql("DELETE FROM audit_log")
    assert len(store.audit_history(admin, "UNI1")) >= 2


def test_users_and_roles(store, people):
    admin, _, _ = people
    user = store.user("ADMIN@uni1.example.org")
    assert user.roles == ("admin",) and user.institution_code == "UNI1"
    store.add_user(admin, "admin@uni1.example.org", "UNI1", ["manager"])
    assert store.user("admin@uni1.example.org").roles == ("admin", "manager")
    with pytest.raises(StoreError, match="another institution"):
        store.add_user(SYSTEM, "admin@uni2.example.org", "UNI1", ["admin"])
    with pytest.raises(StoreError, match="role"):
        store.add_user(SYSTEM, "x@uni1.example.org", "UNI1", ["boss"])
    with pytest.raises(NotFound):
        store.add_user(SYSTEM, "x@nowhere.example.org", "NOPE", ["admin"])
    assert [u.email for u in store.list_users(admin, "UNI1")] == [
        "admin@uni1.example.org", "lib@uni1.example.org"]
    assert store.user("nobody@example.org") is None
