"""The control database's tables, the engine and the clock.

Every table of the control database is declared here on one ``metadata``: created and dropped
together (``create_schema``, ``drop_schema``), including the differential-privacy budget
ledger that release/dp_budget.py keeps.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import event as sa_event

metadata = sa.MetaData()

institutions = sa.Table(
    "institutions",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("region", sa.String(16), nullable=False),
    sa.Column("country", sa.String(2)),
    sa.Column("fte_students", sa.Integer),
    sa.Column("consortium", sa.String(64)),
    sa.Column("go_live_date", sa.Date, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("email", sa.String(254), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("email", sa.String(254), sa.ForeignKey("users.email"), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),
)

sharing_events = sa.Table(
    "sharing_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), nullable=False),
    sa.Column("service", sa.String(32), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("effective_from", sa.Date, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Index("ix_sharing_events_inst_service", "institution_code", "service"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("institution_code", sa.String(32)),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text),
    sa.Index("ix_audit_inst_at", "institution_code", "at"),
)

import_runs = sa.Table(
    "import_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_kept", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("report", sa.Text, nullable=False),
)

# The token -> institution map lives only here, so that opt-out can find and delete an
# institution's contributions while nothing in the community data names it.
contributions = sa.Table(
    "contributions",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), nullable=False),
    sa.Column("service", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("refreshed_at", sa.DateTime(timezone=True)),
    sa.Column("source_version", sa.Text),
    sa.UniqueConstraint("institution_code", "service", name="uq_contribution_inst_service"),
)

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("release_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # retained | deleted
    sa.Column("deleted_reason", sa.Text),
)

# Which contribution tokens a release was built from. Tokens are never written into the
# release itself; a release whose token no longer exists (opt-out) is stale.
release_contributors = sa.Table(
    "release_contributors",
    metadata,
    sa.Column("release_id", sa.String(64), sa.ForeignKey("releases.release_id"), primary_key=True),
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("service", sa.String(32), nullable=False),
    sa.Column("region", sa.String(16), nullable=False),
)

# Recommendations: each one is offered once per institution (type + target) and keeps its
# row through its lifecycle new -> implemented / dismissed -> (reopened) new, or expired.
# ``basis`` holds the evidence as it was when the status last changed, so that the caller
# can tell whether the evidence has since changed materially.
recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # new | implemented | dismissed | expired
    sa.Column("how", sa.String(16)),  # tool | manual, when implemented
    sa.Column("reason", sa.String(32)),  # a key of DISMISS_REASONS, when dismissed
    sa.Column("note", sa.Text),
    sa.Column("grade", sa.String(16)),  # helpful | not_helpful
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON
    sa.Column("impact", sa.Text, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),  # JSON
    sa.Column("first_release", sa.String(64), nullable=False),
    sa.Column("last_release", sa.String(64), nullable=False),
    sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(254)),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.UniqueConstraint("institution_code", "type", "target", name="uq_recommendation_inst_type_target"),
)

recommendation_events = sa.Table(
    "recommendation_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recommendation_id", sa.Integer, sa.ForeignKey("recommendations.id"), nullable=False),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # status | grade
    sa.Column("value", sa.String(32), nullable=False),  # the new status, the grade, or "cleared"
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("release_id", sa.String(64)),
    sa.Index("ix_recommendation_events_inst_at", "institution_code", "at"),
)

# Values the system job computes for one institution from the whole community (e.g. the
# share of its holdings no other institution of its region holds). Private to the
# institution: never in a release; read only through Store.own_kpi_values.
own_kpi_values = sa.Table(
    "own_kpi_values",
    metadata,
    sa.Column("release_id", sa.String(64), sa.ForeignKey("releases.release_id"), primary_key=True),
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), primary_key=True),
    sa.Column("kpi", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

# Each institution's disclosure-control secret (disclosure.py): drawn once, the first time the
# system job needs it, and kept through opt-out and back so that its protective noise never
# changes (a second draw would give an attacker two noisy copies to average). Never released,
# never shown; read only by the system job.
noise_keys = sa.Table(
    "noise_keys",
    metadata,
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), primary_key=True),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per institution and release whose recommendations were synced: the first
# session to insert it applies the sync, any other one finds it there and does nothing.
recommendation_runs = sa.Table(
    "recommendation_runs",
    metadata,
    sa.Column("institution_code", sa.String(32), sa.ForeignKey("institutions.code"), primary_key=True),
    sa.Column("release_id", sa.String(64), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

_APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
]
_APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]

# -- the differential-privacy budget ledger (release/dp_budget.py) ------------------------------

# One row per institution charged by a release: epsilon it spent in that release (cells drawn x
# statistics x epsilon per statistic). The year's spend is the sum over its releases.
dp_charges = sa.Table(
    "dp_charges",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("institution_code", sa.String(32), primary_key=True),
    sa.Column("release_id", sa.String(64), primary_key=True),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("cells", sa.Integer, nullable=False),
    sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False),
)

# The last noisy statistics drawn for each cell, with the fingerprint of the inputs they were
# drawn from (a keyed hash; never the values) and when they were drawn.
dp_cells = sa.Table(
    "dp_cells",
    metadata,
    sa.Column("region", sa.String(16), primary_key=True),
    sa.Column("peer_group", sa.String(200), primary_key=True),
    sa.Column("kpi", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("members", sa.Text, nullable=False),  # JSON list of the member codes drawn from
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("p25", sa.Float),
    sa.Column("median", sa.Float),
    sa.Column("p75", sa.Float),
    sa.Column("mean", sa.Float),
    sa.Column("mean_noise_sd", sa.Float),
    sa.Column("quantile_step", sa.Float),
    sa.Column("epsilon_per_statistic", sa.Float, nullable=False),
    sa.Column("drawn_year", sa.Integer, nullable=False),
    sa.Column("drawn_refresh", sa.Integer, nullable=False),  # 0 .. refreshes - 1 within drawn_year
    sa.Column("drawn_on", sa.Date, nullable=False),  # as-of date of the release that drew them
    sa.Column("release_id", sa.String(64), nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def connect(url: str) -> sa.Engine:
    """The engine for a database URL: SQLite (WAL, foreign keys, a patient busy timeout) or PostgreSQL."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def create_schema(engine: sa.Engine) -> None:
    """Create the missing tables and the triggers that keep the audit log append-only."""
    metadata.create_all(engine)
    statements = _APPEND_ONLY_SQLITE if engine.dialect.name == "sqlite" else _APPEND_ONLY_POSTGRES
    with engine.begin() as con:
        for statement in statements:
            con.exec_driver_sql(statement)


def drop_schema(engine: sa.Engine) -> None:
    metadata.drop_all(engine)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
