"""The control database: institutions, profiles, users, sharing switches, audit, imports.

SQLAlchemy Core over SQLite (default, WAL) or PostgreSQL (DATABASE_URL). Rules kept here:

- Every change of a profile or a switch is one transaction that also writes its audit
  rows, so the audit log can never miss a change nor record one that did not happen.
- Concurrent edits never lose an update: each institution row carries a version; a
  change names the version it was based on and fails with ``ChangedMeanwhile`` when
  somebody else changed the institution in between.
- The audit log is append-only: the database itself refuses UPDATE and DELETE on it.
- Switch history is kept as events with an effective date, so the publish job can ask
  what was in effect on any as-of date (benchmark changes take effect on the first day
  of the next month; the other services at the next community release).
- Permission checks happen here (through access.py), not only in the UI.

``Store`` is a thin front: one mixin per concern, each in its own module --
tables.py (the tables, the engine, the clock), audit.py, institutions.py, users.py,
sharing.py, imports.py, recommendations.py and contributions.py (which also holds
``SystemJobStore``, the system job's operations).
"""

from __future__ import annotations

from analytics.core import access
from analytics.core.access import Principal
from analytics.control.store.audit import AuditEntry, AuditMixin
from analytics.control.store.contributions import Contribution, ContributionsMixin, SystemJobStore, new_secret
from analytics.control.store.errors import ChangedMeanwhile, NotFound, StoreError
from analytics.control.store.imports import ImportsMixin
from analytics.control.store.institutions import PROFILE_FIELDS, Institution, InstitutionsMixin, validate_profile
from analytics.control.store.recommendations import RecommendationRecord, RecommendationsMixin
from analytics.control.store.sharing import SharingMixin, SwitchState, effective_from
from analytics.control.store.sharing import _switch_state  # noqa: F401 (tests fold switch events with it)
from analytics.control.store.tables import (
    audit_log, contributions, dp_cells, dp_charges, import_runs, institutions, metadata, noise_keys, own_kpi_values,
    recommendation_events, recommendation_runs, recommendations, release_contributors, releases, sharing_events,
    user_roles, users, utcnow,
)
from analytics.control.store import tables as _tables
from analytics.control.store.users import User, UsersMixin

__all__ = [
    "AuditEntry", "ChangedMeanwhile", "Contribution", "Institution", "NotFound", "PROFILE_FIELDS",
    "RecommendationRecord", "Store", "StoreError", "SwitchState", "SystemJobStore", "User",
    "effective_from", "new_secret", "utcnow", "validate_profile",
    "metadata", "audit_log", "contributions", "dp_cells", "dp_charges", "import_runs", "institutions", "noise_keys",
    "own_kpi_values", "recommendation_events", "recommendation_runs", "recommendations", "release_contributors",
    "releases", "sharing_events", "user_roles", "users",
]


class Store(AuditMixin, InstitutionsMixin, UsersMixin, SharingMixin, ImportsMixin, RecommendationsMixin,
            ContributionsMixin):
    """Access to the control database. One instance per process is enough."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _tables.connect(url)
        _tables.create_schema(self.engine)

    @classmethod
    def from_settings(cls, settings) -> Store:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings.database_url)

    def dispose(self) -> None:
        self.engine.dispose()

    def drop_everything(self, actor: Principal) -> None:
        """Remove every table (the demo's --reset). The audit log goes with it."""
        access.require_system(actor, "Resetting the control database")
        _tables.drop_schema(self.engine)
        _tables.create_schema(self.engine)
