"""Checks in every function: each public function of `analytics` that reads or changes one
institution's data takes the acting principal and refuses another institution's user (and a
role without the right). The enumeration keeps the README's claim true as functions are added."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from datetime import date

import pytest

import analytics
from analytics.views import benchmark
from analytics.views import deselection, lastcopy
from analytics.ingest.reader import RawTable
import polars as pl
from analytics.views import recommend
from analytics.release.handle import open_release
from analytics.views import collection, comparison, subject_overview
from analytics.core.access import PermissionDenied, Principal
from analytics.core.config import load_settings
from analytics.control.store import Store, SystemJobStore

SYSTEM = Principal.system_job()
INSTITUTION_PARAMS = {"code", "institution", "institution_code"}
ACTOR_PARAMS = {"actor", "principal"}

# Public functions that take an institution but no principal, and why that is right.
NO_PRINCIPAL = {
    "analytics.contribute.anonymize.owned_items": "builds a contribution inside the system job (contributions.refresh)",
    "analytics.contribute.anonymize.holdings": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.loans": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.e_usage": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.reading_lists": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.kpis": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.held_works": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.retention": "builds a contribution inside the system job",
    "analytics.contribute.anonymize.build_contribution": "the system job's contribution builder",
    "analytics.views.benchmark.report": "reads only the release and the own values its caller read with a principal",
    "analytics.contribute.contributions.eligible": "a rule over settings the system job already read",
    "analytics.synthetic.demo.demo_email": "formats an address",
    "analytics.ingest.tabular.institution_dir": "a path, read nothing",
    "analytics.ingest.local.institution_dir": "a path, read nothing",
    "analytics.ingest.local.table_path": "a path, read nothing",
    "analytics.ingest.local.data_version": "file modification times for cache keys, no data",
    "SystemJobStore.ensure_contribution": "SystemJobStore exists only with the system principal",
}


def _public_functions():
    for info in pkgutil.walk_packages(analytics.__path__, "analytics."):
        if info.name.endswith(("__main__", ".cli")) or info.name.endswith("spark_sql"):
            continue
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", fn
    for cls in (Store, SystemJobStore):
        for name in dir(cls):  # with the methods of Store's per-concern mixins
            fn = inspect.getattr_static(cls, name)
            if not name.startswith("_") and inspect.isfunction(fn):
                yield f"{cls.__name__}.{name}", fn


def test_every_public_function_that_takes_an_institution_takes_the_actor():
    found, missing = set(), []
    for qualified, fn in _public_functions():
        params = set(inspect.signature(fn).parameters)
        if params & INSTITUTION_PARAMS:
            found.add(qualified)
            if not params & ACTOR_PARAMS and qualified not in NO_PRINCIPAL:
                missing.append(qualified)
    assert missing == [], f"take the acting principal and check it (or list the function with a reason): {missing}"
    assert set(NO_PRINCIPAL) <= found  # the exceptions still exist; remove stale ones
    assert len(found) > 30


@pytest.fixture(scope="module")
def setting(published_community):
    settings = load_settings(published_community)
    store = Store(settings.database_url)
    institutions = store.list_institutions(SYSTEM)
    victim, other = institutions[0], institutions[1]
    stranger = store.user(f"admin@{other.code.lower()}.demo.example.org").principal()
    librarian = store.user(f"librarian@{victim.code.lower()}.demo.example.org").principal()
    yield settings, store, victim, stranger, librarian
    store.dispose()


def _calls(settings, store, victim):
    """Each function that reads one institution's local data, called for `victim`."""
    release = open_release(settings.community_dir)
    part = recommend.open_part(settings.community_dir)
    rules = deselection.DeselectionRules(region=victim.region)
    return {
        "deselection.own_items": lambda a: deselection.own_items(a, settings.data_dir, victim.code),
        "deselection.deselection": lambda a: deselection.deselection(a, release, settings.data_dir, victim.code,
                                                                     rules),
        "lastcopy.own_commitments": lambda a: lastcopy.own_commitments(a, release, settings.data_dir, victim.code),
        "lastcopy.check": lambda a: lastcopy.check(a, release, settings.data_dir, victim.code, victim.region,
                                                   RawTable(pl.DataFrame({"ISBN": ["9780441017805"]}), "l.csv", "csv"),
                                                   {"isbn": "ISBN"}),
        "collection.own_identifiers": lambda a: collection.own_identifiers(a, settings.data_dir, victim.code),
        "comparison.own_works": lambda a: comparison.own_works(a, release, settings.data_dir, victim.code),
        "comparison.compare": lambda a: comparison.compare(a, release, settings.data_dir, victim.code,
                                                           comparison.ComparisonFilters(region=victim.region)),
        "subject_overview.subject_overview": lambda a: subject_overview.subject_overview(
            a, release, settings.data_dir, victim.code, victim.region),
        "benchmark.own_values": lambda a: benchmark.own_values(a, settings.data_dir, victim),
        "benchmark.own_counted": lambda a: benchmark.own_counted(a, settings.data_dir, victim, date.today()),
        "recommend.generate": lambda a: recommend.generate(a, part, settings.data_dir, victim.code, victim.region),
        "Store.record_import": lambda a: store.record_import(a, victim.code, "items", "x.csv", "ok", {}),
        "Store.audit_history": lambda a: store.audit_history(a, victim.code),
        "Store.import_history": lambda a: store.import_history(a, victim.code),
        "Store.recommendation_records": lambda a: store.recommendation_records(a, victim.code),
        "Store.sharing_state": lambda a: store.sharing_state(a, victim.code),
        "Store.sharing_history": lambda a: store.sharing_history(a, victim.code),
        "Store.recommendation_events_for": lambda a: store.recommendation_events_for(a, victim.code),
        "Store.sync_recommendations": lambda a: store.sync_recommendations(a, victim.code, "r1", new=[], refresh=[],
                                                                           reoffer=[], expire=[]),
    }


def test_another_institutions_user_is_refused_everywhere(setting):
    settings, store, victim, stranger, _ = setting
    calls = _calls(settings, store, victim)
    allowed = []
    for name, call in calls.items():
        try:
            call(stranger)
            allowed.append(name)
        except PermissionDenied:
            pass
    assert allowed == []
    # ... and the institution's own users (the system job here) get their data
    assert calls["collection.own_identifiers"](SYSTEM)[0]
    assert calls["deselection.own_items"](SYSTEM).height > 0


def test_a_role_without_the_right_is_refused(setting):
    settings, store, victim, _, librarian = setting
    with pytest.raises(PermissionDenied, match="Only a General System Administrator"):
        store.record_import(librarian, victim.code, "items", "x.csv", "ok", {})  # imports: administrators only
    assert collection.own_identifiers(librarian, settings.data_dir, victim.code)[0]  # reading own data: any user
