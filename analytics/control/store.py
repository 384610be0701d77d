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
"""

from __future__ import annotations

from analytics.core.errors import UserError

import json
import re
from dataclasses import dataclass, asdict
from datetime import date, datetime, timezone

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from analytics.core import access
from analytics.core.access import Principal
from analytics.control.recommend_catalog import CATALOG, DISMISS_REASONS, GRADES, HOW_IMPLEMENTED, HOW_LABELS, STATUSES
from analytics.core.schema import INSTITUTION_TYPES, REGIONS, ROLE_LABELS, ROLES, SERVICES, size_band


class StoreError(UserError):
    """A refused or invalid change; the message is meant for the user."""


class NotFound(StoreError):
    pass


class ChangedMeanwhile(StoreError):
    """Somebody else changed the institution after this user loaded it."""


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

# One row per institution and release whose recommendations were synced: the first
# session to insert it applies the sync, any other one finds it there and does nothing.
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

PROFILE_FIELDS = ("name", "type", "region", "country", "fte_students", "consortium", "go_live_date")
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def first_of_next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def effective_from(service: str, requested: datetime) -> date:
    """When a switch change takes effect.

    Benchmark sharing follows the monthly benchmark cycle: the first day of the next
    month. Collection development and recommendations take effect at the next
    community release, i.e. from the day of the request on.
    """
    day = requested.astimezone(timezone.utc).date()
    return first_of_next_month(day) if service == "benchmark" else day


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    type: str
    region: str
    country: str | None
    fte_students: int | None
    consortium: str | None
    go_live_date: date
    version: int

    @property
    def size_band(self) -> str:
        return size_band(self.fte_students)

    @property
    def first_anniversary(self) -> date:
        try:
            return self.go_live_date.replace(year=self.go_live_date.year + 1)
        except ValueError:  # went live on 29 February
            return date(self.go_live_date.year + 1, 3, 1)

    def live_for_a_year(self, on: date) -> bool:
        """Institutions live for less than a year may view benchmarks but do not contribute."""
        return on >= self.first_anniversary

    def as_record(self) -> dict:
        record = asdict(self)
        record.pop("version")
        return record


@dataclass(frozen=True)
class SwitchState:
    """The state of one sharing switch.

    ``requested`` is what the administrator last chose; ``in_effect`` is what applies on
    the given day. They differ while a benchmark change waits for the next month.
    """

    service: str
    requested: bool
    in_effect: bool
    requested_at: datetime | None
    effective_from: date | None  # of the last change requested (may be in the future)
    actor: str | None
    since: date | None = None  # when the value in effect now began (never in the future)
    pending_from: date | None = None  # when the requested value takes effect, if it differs

    @property
    def pending(self) -> bool:
        return self.requested != self.in_effect

    def describe(self, last_release_at: datetime | None = None) -> tuple[str, str]:
        """(label, sentence): what is in effect now and what is pending, with dates, in the
        words every page uses. `last_release_at`: when the current community release was built
        (collection development and recommendations change the community data at a release)."""
        now_word = "on" if self.in_effect else "off"
        since = f" since {self.since.isoformat()}" if self.since else ""
        if self.pending:
            turns = "on" if self.requested else "off"
            return "Pending", (f"{now_word.capitalize()} now{since}; turns {turns} on "
                               f"{self.pending_from.isoformat()} (requested "
                               f"{self.requested_at.date().isoformat()}).")
        if not self.in_effect and self.since is None:
            return "Off", "Off; never turned on."
        sentence = f"{now_word.capitalize()}{since}."
        changed_after_release = (self.service != "benchmark" and self.requested_at is not None
                                 and last_release_at is not None and last_release_at < self.requested_at)
        if changed_after_release and self.in_effect:
            sentence += " Your data joins the community data at the next community release."
        elif changed_after_release:
            sentence += " The current community release still holds your data; the next release leaves it out."
        return now_word.capitalize(), sentence


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    institution_code: str | None
    action: str
    old_value: str | None
    new_value: str | None


@dataclass(frozen=True)
class User:
    email: str
    name: str
    institution_code: str
    roles: tuple[str, ...]

    def principal(self) -> Principal:
        return Principal(self.email, self.institution_code, frozenset(self.roles), self.name)


@dataclass(frozen=True)
class RecommendationRecord:
    """One recommendation of an institution as stored; evidence and basis are decoded JSON."""

    id: int
    institution_code: str
    type: str
    target: str
    status: str
    how: str | None
    reason: str | None
    note: str | None
    grade: str | None
    summary: str
    evidence: object
    impact: str
    basis: object
    first_release: str
    last_release: str
    offered_at: datetime
    updated_at: datetime
    updated_by: str | None
    version: int

    @classmethod
    def from_row(cls, row) -> RecommendationRecord:
        values = {k: row[k] for k in cls.__dataclass_fields__}
        values.update(evidence=json.loads(row["evidence"]), basis=json.loads(row["basis"]),
                      offered_at=_aware(row["offered_at"]), updated_at=_aware(row["updated_at"]))
        return cls(**values)


def validate_profile(values: dict) -> dict:
    """Check and clean the General section. Raises StoreError naming the field."""
    clean: dict = {}
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name:
            raise StoreError("name: the institution needs a name.")
        if len(name) > 200:
            raise StoreError("name: at most 200 characters.")
        clean["name"] = name
    if "type" in values:
        kind = str(values["type"] or "").strip().lower()
        if kind not in INSTITUTION_TYPES:
            raise StoreError(f"type: {values['type']!r} is not one of {', '.join(INSTITUTION_TYPES)}.")
        clean["type"] = kind
    if "region" in values:
        region = str(values["region"] or "").strip().upper()
        if region not in REGIONS:
            raise StoreError(f"region: {values['region']!r} is not a data center ({', '.join(REGIONS)}).")
        clean["region"] = region
    if "country" in values:
        country = str(values["country"] or "").strip().upper() or None
        if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
            raise StoreError(f"country: {values['country']!r} is not a two-letter ISO 3166 code such as US or DE.")
        clean["country"] = country
    if "fte_students" in values:
        raw = values["fte_students"]
        if raw is None or str(raw).strip() == "":
            clean["fte_students"] = None
        else:
            try:
                fte = int(str(raw).strip().replace(",", ""))
            except ValueError:
                raise StoreError(f"fte_students: {raw!r} is not a whole number.") from None
            if fte < 0 or fte > 2_000_000:
                raise StoreError(f"fte_students: {fte} is outside 0 to 2,000,000.")
            clean["fte_students"] = fte
    if "consortium" in values:
        consortium = str(values["consortium"] or "").strip() or None
        clean["consortium"] = consortium
    if "go_live_date" in values:
        raw = values["go_live_date"]
        if isinstance(raw, datetime):
            raw = raw.date()
        if not isinstance(raw, date):
            try:
                raw = date.fromisoformat(str(raw).strip())
            except ValueError:
                raise StoreError(f"go_live_date: {values['go_live_date']!r} is not a date (YYYY-MM-DD).") from None
        if raw.year < 1990:
            raise StoreError(f"go_live_date: {raw} is before 1990.")
        clean["go_live_date"] = raw
    return clean


def _display(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


class Store:
    """Access to the control database. One instance per process is enough."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            self.engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa_event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._create()

    @classmethod
    def from_settings(cls, settings) -> "Store":
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings.database_url)

    def _create(self) -> None:
        metadata.create_all(self.engine)
        statements = _APPEND_ONLY_SQLITE if self.engine.dialect.name == "sqlite" else _APPEND_ONLY_POSTGRES
        with self.engine.begin() as con:
            for statement in statements:
                con.exec_driver_sql(statement)

    def dispose(self) -> None:
        self.engine.dispose()

    def drop_everything(self, actor: Principal) -> None:
        """Remove every table (the demo's --reset). The audit log goes with it."""
        access.require_system(actor, "Resetting the control database")
        metadata.drop_all(self.engine)
        self._create()

    # -- audit -----------------------------------------------------------------
    @staticmethod
    def _audit(con, actor: Principal | str, code: str | None, action: str, old, new, at: datetime) -> None:
        con.execute(
            audit_log.insert().values(
                at=at,
                actor=actor.email if isinstance(actor, Principal) else actor,
                institution_code=code,
                action=action,
                old_value=_display(old),
                new_value=_display(new),
            )
        )

    def audit_history(self, actor: Principal, code: str, limit: int = 200) -> list[AuditEntry]:
        """The institution's audit trail, newest first."""
        access.require_member(actor, code, "the audit history")
        query = (
            sa.select(audit_log)
            .where(audit_log.c.institution_code == code)
            .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as con:
            rows = con.execute(query).mappings().all()
        return [AuditEntry(**{**row, "at": _aware(row["at"])}) for row in rows]

    # -- institutions ----------------------------------------------------------
    def add_institution(self, actor: Principal, *, code: str, name: str, type: str, region: str,
                        go_live_date, country: str | None = None, fte_students=None,
                        consortium: str | None = None, now: datetime | None = None) -> Institution:
        """Register an institution (an operator's system job). Sharing starts off: opt-in only."""
        access.require_system(actor, "Adding an institution")
        code = str(code or "").strip()
        if not _CODE_RE.match(code):
            raise StoreError(
                f"code: {code!r} must be 1-32 letters, digits, '-', '_' or '.', starting with a letter or digit."
            )
        profile = validate_profile(
            dict(name=name, type=type, region=region, country=country, fte_students=fte_students,
                 consortium=consortium, go_live_date=go_live_date)
        )
        now = now or utcnow()
        with self.engine.begin() as con:
            exists = con.execute(sa.select(institutions.c.code).where(institutions.c.code == code)).first()
            if exists:
                raise StoreError(f"code: an institution {code} exists already.")
            con.execute(institutions.insert().values(code=code, version=1, created_at=now, **profile))
            self._audit(con, actor, code, "institution.created", None, profile["name"], now)
        return self.institution(actor, code)

    def institution(self, actor: Principal, code: str) -> Institution:
        access.require_member(actor, code, "the profile")
        with self.engine.connect() as con:
            row = con.execute(sa.select(institutions).where(institutions.c.code == code)).mappings().first()
        if row is None:
            raise NotFound(f"No institution with code {code!r}.")
        return Institution(**{k: row[k] for k in Institution.__dataclass_fields__})

    def list_institutions(self, actor: Principal) -> list[Institution]:
        access.require_system(actor, "Listing every institution")
        with self.engine.connect() as con:
            rows = con.execute(sa.select(institutions).order_by(institutions.c.code)).mappings().all()
        return [Institution(**{k: row[k] for k in Institution.__dataclass_fields__}) for row in rows]

    def update_profile(self, actor: Principal, code: str, changes: dict, expected_version: int,
                       now: datetime | None = None) -> Institution:
        """Change General-section fields. One audit row per changed field, same transaction."""
        access.require_admin(actor, code)
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise StoreError(f"Unknown profile field(s): {', '.join(sorted(unknown))}.")
        clean = validate_profile(changes)
        now = now or utcnow()
        with self.engine.begin() as con:
            current = self._lock_version(con, code, expected_version)
            changed = {k: v for k, v in clean.items() if current[k] != v}
            if not changed:
                return self._institution_in(con, code)
            con.execute(institutions.update().where(institutions.c.code == code).values(**changed))
            for field_name, value in changed.items():
                self._audit(con, actor, code, f"profile.{field_name}", current[field_name], value, now)
            return self._institution_in(con, code)

    def _lock_version(self, con, code: str, expected_version: int):
        """Bump the version only if nobody changed the institution since it was read."""
        current = con.execute(sa.select(institutions).where(institutions.c.code == code)).mappings().first()
        if current is None:
            raise NotFound(f"No institution with code {code!r}.")
        result = con.execute(
            institutions.update()
            .where(institutions.c.code == code, institutions.c.version == expected_version)
            .values(version=institutions.c.version + 1)
        )
        if result.rowcount != 1:
            raise ChangedMeanwhile(
                f"The settings of {code} were changed by someone else after you opened them "
                f"(your copy is version {expected_version}). Reload the page and make your change again."
            )
        return current

    @staticmethod
    def _require_exists(con, code: str) -> None:
        if con.execute(sa.select(institutions.c.code).where(institutions.c.code == code)).first() is None:
            raise NotFound(f"No institution with code {code!r}.")

    @staticmethod
    def _institution_in(con, code: str) -> Institution:
        row = con.execute(sa.select(institutions).where(institutions.c.code == code)).mappings().one()
        return Institution(**{k: row[k] for k in Institution.__dataclass_fields__})

    # -- sharing switches ------------------------------------------------------
    def set_sharing(self, actor: Principal, code: str, service: str, enabled: bool,
                    expected_version: int, now: datetime | None = None,
                    agreed_on: date | None = None) -> SwitchState:
        """Turn one service on or off; the change and its audit row commit together.

        `agreed_on` records an opt-in the institution agreed to earlier (onboarding, or annual
        statistics of past years): the switch counts as requested on that day, so its effective
        date follows from it; the audit row keeps the real time and says so. Only for turning
        sharing on, never before the service's last recorded change, never in the future."""
        if service not in SERVICES:
            raise StoreError(f"service: {service!r} is not one of {', '.join(SERVICES)}.")
        access.require_admin(actor, code, "the sharing switches")
        now = now or utcnow()
        requested = now
        if agreed_on is not None:
            if not enabled:
                raise StoreError("agreed on: only turning sharing on can be recorded with an earlier date.")
            if agreed_on > now.date():
                raise StoreError(f"agreed on {agreed_on.isoformat()}: the date is in the future.")
            requested = datetime(agreed_on.year, agreed_on.month, agreed_on.day, tzinfo=timezone.utc)
        with self.engine.begin() as con:
            self._lock_version(con, code, expected_version)
            before = self._requested(con, code, service)
            if before == enabled:
                raise StoreError(
                    f"{service} sharing of {code} is already {'on' if enabled else 'off'}; nothing changed."
                )
            if agreed_on is not None:
                last = con.execute(sa.select(sa.func.max(sharing_events.c.requested_at)).where(
                    sharing_events.c.institution_code == code, sharing_events.c.service == service)).scalar()
                if last is not None and _aware(last) > requested:
                    raise StoreError(f"agreed on {agreed_on.isoformat()}: {service} sharing of {code} last changed "
                                     f"on {_aware(last).date().isoformat()}, after that date.")
            starts = effective_from(service, requested)
            con.execute(
                sharing_events.insert().values(
                    institution_code=code, service=service, enabled=enabled, requested_at=requested,
                    effective_from=starts, actor=actor.email,
                )
            )
            note = f" (agreed on {agreed_on.isoformat()}, recorded later)" if agreed_on else ""
            self._audit(con, actor, code, f"sharing.{service}", _display(before),
                        f"{_display(enabled)} (effective {starts.isoformat()}){note}", now)
        return self.sharing_state(actor, code, on=now.date())[service]

    @staticmethod
    def _requested(con, code: str, service: str) -> bool:
        row = con.execute(
            sa.select(sharing_events.c.enabled)
            .where(sharing_events.c.institution_code == code, sharing_events.c.service == service)
            .order_by(sharing_events.c.requested_at.desc(), sharing_events.c.id.desc())
            .limit(1)
        ).first()
        return bool(row[0]) if row else False

    def sharing_state(self, actor: Principal, code: str, on: date | None = None) -> dict[str, SwitchState]:
        """Requested and in-effect state of each switch on a day (default today, UTC)."""
        access.require_member(actor, code, "the sharing switches")
        on = on or utcnow().date()
        with self.engine.connect() as con:
            self._require_exists(con, code)
            rows = con.execute(
                sa.select(sharing_events)
                .where(sharing_events.c.institution_code == code)
                .order_by(sharing_events.c.requested_at, sharing_events.c.id)
            ).mappings().all()
        return {service: _switch_state(service, [r for r in rows if r["service"] == service], on)
                for service in SERVICES}

    def sharing_in_effect(self, actor: Principal, on: date) -> dict[str, dict[str, bool]]:
        """For the publish job: institution -> service -> in effect on the as-of date."""
        access.require_system(actor, "Reading every institution's sharing state")
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(sharing_events).order_by(sharing_events.c.requested_at, sharing_events.c.id)
            ).mappings().all()
            codes = [r[0] for r in con.execute(sa.select(institutions.c.code))]
        state: dict[str, dict[str, bool]] = {code: {s: False for s in SERVICES} for code in codes}
        for row in rows:
            if row["effective_from"] <= on:
                state[row["institution_code"]][row["service"]] = bool(row["enabled"])
        return state

    def sharing_history(self, actor: Principal, code: str) -> list[dict]:
        access.require_member(actor, code, "the sharing history")
        with self.engine.connect() as con:
            self._require_exists(con, code)
            rows = con.execute(
                sa.select(sharing_events)
                .where(sharing_events.c.institution_code == code)
                .order_by(sharing_events.c.requested_at.desc(), sharing_events.c.id.desc())
            ).mappings().all()
        return [
            {"service": r["service"], "enabled": bool(r["enabled"]), "requested_at": _aware(r["requested_at"]),
             "effective_from": r["effective_from"], "actor": r["actor"]}
            for r in rows
        ]

    # -- users -----------------------------------------------------------------
    def add_user(self, actor: Principal, email: str, institution_code: str, roles, name: str = "",
                 now: datetime | None = None) -> User:
        """Add a user, or add roles to an existing user of the same institution."""
        email = str(email or "").strip().lower()
        if not _EMAIL_RE.match(email):
            raise StoreError(f"email: {email!r} is not an e-mail address.")
        roles = tuple(sorted({str(r).strip().lower() for r in ([roles] if isinstance(roles, str) else roles)}))
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise StoreError(f"role: {', '.join(bad) or 'none given'}; choose from {', '.join(ROLES)}.")
        if not actor.system:
            access.require_admin(actor, institution_code, "the users")
        now = now or utcnow()
        with self.engine.begin() as con:
            if not con.execute(sa.select(institutions.c.code).where(institutions.c.code == institution_code)).first():
                raise NotFound(f"No institution with code {institution_code!r}.")
            existing = con.execute(sa.select(users).where(users.c.email == email)).mappings().first()
            if existing and existing["institution_code"] != institution_code:
                raise StoreError(f"email: {email} is already a user of another institution.")
            if not existing:
                con.execute(users.insert().values(email=email, name=name.strip(),
                                                  institution_code=institution_code, created_at=now))
            elif name.strip():
                con.execute(users.update().where(users.c.email == email).values(name=name.strip()))
            have = {r[0] for r in con.execute(sa.select(user_roles.c.role).where(user_roles.c.email == email))}
            for role in roles:
                if role not in have:
                    con.execute(user_roles.insert().values(email=email, role=role))
                    self._audit(con, actor, institution_code, "user.role_added", None, f"{email}: {role}", now)
        return self.user(email)

    def user(self, email: str) -> User | None:
        """Look up a signed-in e-mail. Used by sign-in, so it needs no principal."""
        email = str(email or "").strip().lower()
        with self.engine.connect() as con:
            row = con.execute(sa.select(users).where(users.c.email == email)).mappings().first()
            if row is None:
                return None
            roles = tuple(sorted(r[0] for r in con.execute(
                sa.select(user_roles.c.role).where(user_roles.c.email == email))))
        return User(row["email"], row["name"], row["institution_code"], roles)

    def list_users(self, actor: Principal, institution_code: str | None = None) -> list[User]:
        if institution_code is None:
            access.require_system(actor, "Listing the users of every institution")
        else:
            access.require_member(actor, institution_code, "the users")
        query = sa.select(users.c.email).order_by(users.c.institution_code, users.c.email)
        if institution_code is not None:
            query = query.where(users.c.institution_code == institution_code)
        with self.engine.connect() as con:
            emails = [r[0] for r in con.execute(query)]
        return [self.user(e) for e in emails]

    # -- import runs -----------------------------------------------------------
    def record_import(self, actor: Principal, code: str, kind: str, file_name: str, status: str,
                      report: dict, now: datetime | None = None) -> int:
        """Record an import in the institution's history and audit log: its administrators (or
        the system job) only, never into another institution's log."""
        access.require_admin(actor, code, "the imports")
        now = now or utcnow()
        with self.engine.begin() as con:
            result = con.execute(
                import_runs.insert().values(
                    institution_code=code, kind=kind, file_name=file_name, at=now, actor=actor.email,
                    status=status, rows_read=int(report.get("read", 0)), rows_kept=int(report.get("kept", 0)),
                    rows_rejected=int(report.get("rejected", 0)), report=json.dumps(report, default=str),
                )
            )
            self._audit(con, actor, code, f"import.{kind}.{status}", None, file_name, now)
            return int(result.inserted_primary_key[0])

    def own_kpi_values(self, actor: Principal, code: str, release_id: str) -> list[dict]:
        """The institution's own values that only the system job can compute (period, kpi, value)."""
        access.require_member(actor, code, "the institution's benchmark values")
        with self.engine.connect() as con:
            rows = con.execute(sa.select(own_kpi_values.c.period, own_kpi_values.c.kpi, own_kpi_values.c.value)
                               .where(own_kpi_values.c.release_id == release_id,
                                      own_kpi_values.c.institution_code == code)
                               .order_by(own_kpi_values.c.kpi, own_kpi_values.c.period)).mappings().all()
        return [dict(r) for r in rows]

    def import_history(self, actor: Principal, code: str, limit: int = 50) -> list[dict]:
        access.require_member(actor, code, "the import history")
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(import_runs).where(import_runs.c.institution_code == code)
                .order_by(import_runs.c.at.desc(), import_runs.c.id.desc()).limit(limit)
            ).mappings().all()
        return [{**row, "at": _aware(row["at"]), "report": json.loads(row["report"])} for row in rows]


    # -- recommendations -------------------------------------------------------
    def recommendation_records(self, actor: Principal, code: str) -> list[RecommendationRecord]:
        """Every recommendation ever offered to the institution, by type, then id."""
        access.require_member(actor, code, "the recommendations")
        with self.engine.connect() as con:
            self._require_exists(con, code)
            rows = con.execute(
                sa.select(recommendations).where(recommendations.c.institution_code == code)
                .order_by(recommendations.c.type, recommendations.c.id)
            ).mappings().all()
        return [RecommendationRecord.from_row(row) for row in rows]

    def recommendations_synced(self, actor: Principal, code: str, release_id: str) -> bool:
        """Whether the institution's recommendations were synced against the release already."""
        access.require_member(actor, code, "the recommendations")
        with self.engine.connect() as con:
            row = con.execute(sa.select(recommendation_runs.c.at).where(
                recommendation_runs.c.institution_code == code,
                recommendation_runs.c.release_id == release_id)).first()
        return row is not None

    def sync_recommendations(self, actor: Principal, code: str, release_id: str, *, new: list[dict],
                             refresh: list[tuple[int, dict]], reoffer: list[tuple[int, dict]],
                             expire: list[int], now: datetime | None = None) -> bool:
        """Apply the caller's decisions for one release in one transaction.

        ``new`` offers are inserted; ``refresh`` updates the evidence of a recommendation
        without touching its status; ``reoffer`` sets it back to new (its evidence changed);
        ``expire`` marks it expired. Returns False, changing nothing, when the release was
        synced for the institution already (perhaps by another session meanwhile).
        """
        access.require_member(actor, code, "the recommendations")
        release_id = str(release_id or "").strip()
        if not release_id or len(release_id) > 64:
            raise StoreError(f"release: {release_id!r} is not a release id.")
        new = [_clean_offer(offer) for offer in new]
        refresh = [(int(rec_id), _clean_offer(offer)) for rec_id, offer in refresh]
        reoffer = [(int(rec_id), _clean_offer(offer)) for rec_id, offer in reoffer]
        expire = [int(rec_id) for rec_id in expire]
        ids = [rec_id for rec_id, _ in refresh] + [rec_id for rec_id, _ in reoffer] + expire
        if len(ids) != len(set(ids)):
            twice = sorted({rec_id for rec_id in ids if ids.count(rec_id) > 1})
            raise StoreError(f"Recommendation(s) {', '.join(map(str, twice))} named more than once in one sync.")
        keys = [(offer["type"], offer["target"]) for offer in new]
        if len(keys) != len(set(keys)):
            raise StoreError("The same recommendation (type and target) is offered twice in one sync.")
        now = now or utcnow()
        with self.engine.connect() as con:
            self._require_exists(con, code)
        try:
            with self.engine.begin() as con:
                try:
                    con.execute(recommendation_runs.insert().values(institution_code=code, release_id=release_id,
                                                                    at=now))
                except sa.exc.IntegrityError:
                    raise _AlreadySynced() from None
                rows = {row["id"]: row for row in con.execute(
                    sa.select(recommendations).where(recommendations.c.institution_code == code)).mappings()}
                missing = sorted(set(ids) - set(rows))
                if missing:
                    raise NotFound(f"{code} has no recommendation(s) {', '.join(map(str, missing))}.")
                # A user changes only the types its role acts on (the app's own sync runs as the system job).
                types = {offer["type"] for offer in new} | {rows[rec_id]["type"] for rec_id in ids}
                refused = sorted(t for t in types if not actor.system and not set(actor.roles) & set(CATALOG[t].roles))
                if refused:
                    raise access.PermissionDenied(
                        f"{actor.email} may not change recommendations of type(s) {', '.join(refused)} of {code}: "
                        f"their role(s) {', '.join(sorted(actor.roles)) or 'none'} do not act on them.")
                offered = {(row["type"], row["target"]): rec_id for rec_id, row in rows.items()}
                for key in keys:
                    if key in offered:
                        raise StoreError(f"{key[0]} recommendation {key[1]!r} was offered to {code} already "
                                         f"(id {offered[key]}); refresh or reoffer it instead.")
                for rec_id, offer in refresh + reoffer:
                    _same_target(rows[rec_id], offer)
                for offer in new:
                    rec_id = con.execute(recommendations.insert().values(
                        institution_code=code, type=offer["type"], target=offer["target"], status="new",
                        summary=offer["summary"], evidence=offer["evidence"], impact=offer["impact"],
                        basis=offer["basis"], first_release=release_id, last_release=release_id,
                        offered_at=now, updated_at=now, updated_by=None, version=1,
                    )).inserted_primary_key[0]
                    self._recommendation_event(con, rec_id, code, offer["type"], "status", "new", now, "system",
                                               release_id)
                for rec_id, offer in refresh:
                    con.execute(recommendations.update().where(recommendations.c.id == rec_id).values(
                        summary=offer["summary"], evidence=offer["evidence"], impact=offer["impact"],
                        last_release=release_id))
                for rec_id, offer in reoffer:
                    row = rows[rec_id]
                    if row["status"] == "new":
                        raise StoreError(f"{row['type']} recommendation {row['target']!r} of {code} is new "
                                         "already; refresh it instead of reoffering it.")
                    con.execute(recommendations.update().where(recommendations.c.id == rec_id).values(
                        status="new", how=None, reason=None, note=None, grade=None, summary=offer["summary"],
                        evidence=offer["evidence"], impact=offer["impact"], basis=offer["basis"],
                        last_release=release_id, offered_at=now, updated_at=now, updated_by="system",
                        version=recommendations.c.version + 1))
                    self._recommendation_event(con, rec_id, code, row["type"], "status", "new", now, "system",
                                               release_id)
                    self._audit(con, "system", code, f"recommendation.{row['type']}", row["status"],
                                f"new (evidence changed: {row['target']})", now)
                for rec_id in expire:
                    row = rows[rec_id]
                    if row["status"] == "expired":
                        raise StoreError(f"{row['type']} recommendation {row['target']!r} of {code} "
                                         "has expired already.")
                    con.execute(recommendations.update().where(recommendations.c.id == rec_id).values(
                        status="expired", updated_at=now, updated_by="system",
                        version=recommendations.c.version + 1))
                    self._recommendation_event(con, rec_id, code, row["type"], "status", "expired", now, "system",
                                               release_id)
                    self._audit(con, "system", code, f"recommendation.{row['type']}", row["status"],
                                f"expired at release {release_id} (target {row['target']})", now)
        except _AlreadySynced:
            return False
        except sa.exc.IntegrityError:
            # Another session offered the same type and target meanwhile (a sync of another release).
            raise ChangedMeanwhile(
                f"The recommendations of {code} were updated by another session meanwhile. Reload the page."
            ) from None
        return True

    def set_recommendation_status(self, actor: Principal, code: str, rec_id: int, status: str, *,
                                  expected_version: int, how: str | None = None, reason: str | None = None,
                                  note: str | None = "", now: datetime | None = None) -> RecommendationRecord:
        """Implement, dismiss or reopen a recommendation; the change and its audit row commit together."""
        access.require_member(actor, code, "the recommendations")
        note = str(note or "").strip()
        if status not in STATUSES:
            raise StoreError(f"status: {status!r} is not one of {', '.join(STATUSES)}.")
        if status == "expired":
            raise StoreError("status: recommendations expire by themselves when a release no longer supports them.")
        if len(note) > 2000:
            raise StoreError("note: at most 2,000 characters.")
        if status == "implemented":
            if how not in HOW_IMPLEMENTED:
                raise StoreError(f"how: say how it was implemented ({', '.join(HOW_IMPLEMENTED)}), not {how!r}.")
            if reason is not None:
                raise StoreError("reason: only a dismissal takes a reason.")
        elif status == "dismissed":
            if reason not in DISMISS_REASONS:
                raise StoreError(f"reason: choose why it is dismissed ({', '.join(DISMISS_REASONS)}), "
                                 f"not {reason!r}.")
            if reason == "other" and not note:
                raise StoreError("note: say why in the note when the reason is “Other”.")
            if how is not None:
                raise StoreError("how: only an implementation takes how it was done.")
        elif how is not None or reason is not None or note:
            raise StoreError("Reopening takes no how, reason or note; they are cleared.")
        now = now or utcnow()
        with self.engine.begin() as con:
            row = self._recommendation_for_change(con, actor, code, rec_id, expected_version)
            old, target = row["status"], row["target"]
            if old == status:
                raise StoreError(f"This recommendation ({target}) is {status} already; nothing changed.")
            if old == "expired":
                raise StoreError(f"This recommendation ({target}) has expired: the current release no longer "
                                 "supports it, so it cannot be acted on.")
            if old != "new" and status != "new":
                raise StoreError(f"This recommendation ({target}) is {old}; reopen it before marking it {status}.")
            self._bump_recommendation(con, actor, rec_id, expected_version, now, status=status,
                                      how=how if status == "implemented" else None,
                                      reason=reason if status == "dismissed" else None,
                                      note=note if status != "new" and note else None,
                                      basis=recommendations.c.evidence)
            self._recommendation_event(con, rec_id, code, row["type"], "status", status, now, actor.email,
                                       row["last_release"])
            if status == "implemented":
                told = f"implemented {HOW_LABELS[how]}"
            elif status == "dismissed":
                told = f"dismissed: {DISMISS_REASONS[reason]}"
            else:
                told = "new: reopened"
            if note and status != "new":
                told += f" — {note}"
            self._audit(con, actor, code, f"recommendation.{row['type']}", old, f"{told} (target {target})", now)
            return self._recommendation_in(con, rec_id)

    def grade_recommendation(self, actor: Principal, code: str, rec_id: int, grade: str | None, *,
                             expected_version: int, now: datetime | None = None) -> RecommendationRecord:
        """Grade a recommendation helpful or not helpful, or clear the grade (None)."""
        access.require_member(actor, code, "the recommendations")
        if grade is not None and grade not in GRADES:
            raise StoreError(f"grade: {grade!r} is not one of {', '.join(GRADES)} (or none to clear it).")
        now = now or utcnow()
        with self.engine.begin() as con:
            row = self._recommendation_for_change(con, actor, code, rec_id, expected_version)
            if row["grade"] == grade:
                raise StoreError(f"This recommendation ({row['target']}) is graded {grade or 'not'} already; "
                                 "nothing changed.")
            self._bump_recommendation(con, actor, rec_id, expected_version, now, grade=grade)
            self._recommendation_event(con, rec_id, code, row["type"], "grade", grade or "cleared", now,
                                       actor.email, row["last_release"])
            self._audit(con, actor, code, f"recommendation.{row['type']}.grade", row["grade"],
                        f"{grade or 'no grade'} (target {row['target']})", now)
            return self._recommendation_in(con, rec_id)

    def recommendation_events_for(self, actor: Principal, code: str) -> list[dict]:
        """Every status and grade change of the institution's recommendations, oldest first."""
        access.require_member(actor, code, "the recommendations")
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(recommendation_events).where(recommendation_events.c.institution_code == code)
                .order_by(recommendation_events.c.at, recommendation_events.c.id)
            ).mappings().all()
        return [{"recommendation_id": r["recommendation_id"], "type": r["type"], "kind": r["kind"],
                 "value": r["value"], "at": _aware(r["at"]), "actor": r["actor"], "release_id": r["release_id"]}
                for r in rows]

    @staticmethod
    def _recommendation_event(con, rec_id: int, code: str, rtype: str, kind: str, value: str, at: datetime,
                              actor: str, release_id: str | None) -> None:
        con.execute(recommendation_events.insert().values(
            recommendation_id=rec_id, institution_code=code, type=rtype, kind=kind, value=value, at=at,
            actor=actor, release_id=release_id))

    @staticmethod
    def _recommendation_in(con, rec_id: int) -> RecommendationRecord:
        row = con.execute(sa.select(recommendations).where(recommendations.c.id == rec_id)).mappings().one()
        return RecommendationRecord.from_row(row)

    @staticmethod
    def _recommendation_for_change(con, actor: Principal, code: str, rec_id: int, expected_version: int):
        """The row a user acts on, after the role and version checks."""
        row = con.execute(sa.select(recommendations).where(
            recommendations.c.id == rec_id, recommendations.c.institution_code == code)).mappings().first()
        if row is None:
            raise NotFound(f"{code} has no recommendation {rec_id}.")
        kind = CATALOG.get(row["type"])
        if kind is None:
            raise StoreError(f"Recommendations of type {row['type']!r} are no longer offered; nothing can change.")
        if not (actor.system or any(role in actor.roles for role in kind.roles)):
            allowed = " or ".join(ROLE_LABELS[role] for role in kind.roles)
            raise access.PermissionDenied(
                f"Only a {allowed} may act on “{kind.title}” recommendations; "
                f"{actor.email} has the role(s): {', '.join(sorted(actor.roles)) or 'none'}."
            )
        if row["version"] != expected_version:
            raise _recommendation_changed(row, expected_version)
        return row

    @staticmethod
    def _bump_recommendation(con, actor: Principal, rec_id: int, expected_version: int, now: datetime,
                             **values) -> None:
        """Write a user's change only if nobody changed the recommendation since it was read."""
        result = con.execute(
            recommendations.update()
            .where(recommendations.c.id == rec_id, recommendations.c.version == expected_version)
            .values(updated_at=now, updated_by=actor.email, version=recommendations.c.version + 1, **values)
        )
        if result.rowcount != 1:
            row = con.execute(sa.select(recommendations).where(recommendations.c.id == rec_id)).mappings().one()
            raise _recommendation_changed(row, expected_version)


class _AlreadySynced(Exception):
    """The release was synced for the institution already; roll back and report False."""


def _recommendation_changed(row, expected_version: int) -> ChangedMeanwhile:
    who = row["updated_by"]
    by = f"at release {row['last_release']}" if who in (None, "system") else f"by {who}"
    return ChangedMeanwhile(
        f"This recommendation ({row['target']}) was changed meanwhile {by}, after you opened it "
        f"(your copy is version {expected_version}, now {row['version']}). Reload the page and decide again."
    )


_OFFER_KEYS = ("type", "target", "summary", "evidence", "impact", "basis")


def _json_default(value):
    if hasattr(value, "item"):  # numpy and pandas scalars
        return value.item()
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _clean_offer(offer: dict) -> dict:
    """Check an offer of the caller and encode its evidence and basis as JSON."""
    missing = [k for k in _OFFER_KEYS if k not in offer]
    if missing:
        raise StoreError(f"A recommendation offer lacks {', '.join(missing)}.")
    rtype, target = str(offer["type"]), str(offer["target"] or "").strip()
    if rtype not in CATALOG:
        raise StoreError(f"type: {rtype!r} is not a recommendation type ({', '.join(CATALOG)}).")
    if not target or len(target) > 200:
        raise StoreError(f"target: {target!r} must be 1-200 characters.")
    try:
        evidence = json.dumps(offer["evidence"], sort_keys=True, default=_json_default)
        basis = json.dumps(offer["basis"], sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"The evidence of {rtype} recommendation {target!r} is not JSON: {exc}.") from None
    return {"type": rtype, "target": target, "summary": str(offer["summary"] or ""), "evidence": evidence,
            "impact": str(offer["impact"] or ""), "basis": basis}


def _same_target(row, offer: dict) -> None:
    if (row["type"], row["target"]) != (offer["type"], offer["target"]):
        raise StoreError(f"Recommendation {row['id']} is {row['type']} {row['target']!r}, "
                         f"not {offer['type']} {offer['target']!r}.")


@dataclass(frozen=True)
class Contribution:
    token: str
    institution_code: str
    service: str
    source_version: str | None


class SystemJobStore:
    """Control-database operations of the system job (publish). System principal only."""

    def __init__(self, store: Store, actor: Principal):
        access.require_system(actor, "The community data system job")
        self.store = store
        self.actor = actor
        self.engine = store.engine

    def contributions(self) -> list[Contribution]:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(contributions)).mappings().all()
        return [Contribution(r["token"], r["institution_code"], r["service"], r["source_version"]) for r in rows]

    def ensure_contribution(self, code: str, service: str, now: datetime | None = None) -> Contribution:
        """The institution's token for a service, created on first use (random, opaque)."""
        import secrets

        now = now or utcnow()
        with self.engine.begin() as con:
            row = con.execute(sa.select(contributions).where(
                contributions.c.institution_code == code, contributions.c.service == service)).mappings().first()
            if row is None:
                token = secrets.token_hex(16)
                con.execute(contributions.insert().values(token=token, institution_code=code, service=service,
                                                          created_at=now))
                Store._audit(con, self.actor, code, f"contribution.{service}.created", None, "contribution", now)
                return Contribution(token, code, service, None)
        return Contribution(row["token"], row["institution_code"], row["service"], row["source_version"])

    def mark_refreshed(self, token: str, source_version: str, now: datetime | None = None) -> None:
        with self.engine.begin() as con:
            con.execute(contributions.update().where(contributions.c.token == token)
                        .values(refreshed_at=now or utcnow(), source_version=source_version))

    def remove_contribution(self, token: str, reason: str, now: datetime | None = None) -> None:
        """Forget a contribution (opt-out). Its files are deleted by the caller."""
        now = now or utcnow()
        with self.engine.begin() as con:
            row = con.execute(sa.select(contributions).where(contributions.c.token == token)).mappings().first()
            if row is None:
                return
            con.execute(contributions.delete().where(contributions.c.token == token))
            Store._audit(con, self.actor, row["institution_code"], f"contribution.{row['service']}.removed",
                         "contribution", reason, now)

    def record_release(self, release_id: str, created_at: datetime, as_of: date,
                       contributors: list[tuple[str, str, str]],
                       own_values: list[tuple[str, str, str, float]] = ()) -> None:
        """The release, the tokens it was built from, and each institution's private own values
        (code, kpi, period, value) computed with it."""
        with self.engine.begin() as con:
            con.execute(releases.insert().values(release_id=release_id, created_at=created_at, as_of=as_of,
                                                 status="retained"))
            if contributors:
                con.execute(release_contributors.insert(), [
                    {"release_id": release_id, "token": t, "service": s, "region": r} for t, s, r in contributors])
            if own_values:
                con.execute(own_kpi_values.insert(), [
                    {"release_id": release_id, "institution_code": c, "kpi": k, "period": p, "value": float(v)}
                    for c, k, p, v in own_values])

    def release_contributors(self, release_id: str) -> list[tuple[str, str, str]]:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(release_contributors).where(
                release_contributors.c.release_id == release_id)).mappings().all()
        return [(r["token"], r["service"], r["region"]) for r in rows]

    def record_switch(self, previous: str | None, release_id: str) -> None:
        """An operator pointed `current` at a retained release (python -m analytics release use)."""
        now = utcnow()
        with self.engine.begin() as con:
            Store._audit(con, self.actor, None, "release.use", previous, release_id, now)

    def mark_release_deleted(self, release_id: str, reason: str) -> None:
        with self.engine.begin() as con:
            con.execute(own_kpi_values.delete().where(own_kpi_values.c.release_id == release_id))
            con.execute(releases.update().where(releases.c.release_id == release_id)
                        .values(status="deleted", deleted_reason=reason))

    def release_history(self) -> list[dict]:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(releases).order_by(releases.c.created_at.desc())).mappings().all()
        return [{**r, "created_at": _aware(r["created_at"])} for r in rows]

    def noise_secrets(self, codes: list[str], now: datetime | None = None) -> dict[str, str]:
        """Each institution's disclosure secret, drawn on first use (disclosure.new_secret)."""
        from analytics.contribute.disclosure import new_secret

        wanted = sorted(set(codes))
        with self.engine.begin() as con:
            found = dict(con.execute(sa.select(noise_keys.c.institution_code, noise_keys.c.secret)).all())
            missing = [c for c in wanted if c not in found]
            if missing:
                fresh = {c: new_secret() for c in missing}
                con.execute(noise_keys.insert(), [{"institution_code": c, "secret": v, "created_at": now or utcnow()}
                                                  for c, v in fresh.items()])
                found.update(fresh)
        return {c: found[c] for c in wanted}

    def institution_of(self, token: str) -> str | None:
        with self.engine.connect() as con:
            row = con.execute(sa.select(contributions.c.institution_code)
                              .where(contributions.c.token == token)).first()
        return row[0] if row else None


def _switch_state(service: str, rows: list, on: date) -> SwitchState:
    """Fold the ordered events of one switch into its requested and in-effect state."""
    if not rows:
        return SwitchState(service, False, False, None, None, None)
    last = rows[-1]
    # In request order, effective dates never go back; of several changes that take effect on
    # the same day, the last one is what applies that day (off and on again: it never went off).
    by_day: dict[date, bool] = {}
    for row in rows:
        by_day[row["effective_from"]] = bool(row["enabled"])
    in_effect, since = False, None
    for day, enabled in by_day.items():
        if day <= on and enabled != in_effect:
            in_effect, since = enabled, day
    requested = bool(last["enabled"])
    # The requested value applies from the first later event that set it and was not undone.
    pending_from = None
    if requested != in_effect:
        for row in reversed(rows):
            if bool(row["enabled"]) != requested or row["effective_from"] <= on:
                break
            pending_from = row["effective_from"]
    return SwitchState(service, requested, in_effect, _aware(last["requested_at"]), last["effective_from"],
                       last["actor"], since, pending_from)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# The differential-privacy budget account declares its tables on `metadata` (created and dropped
# with the others); imported last because it imports `metadata` from here.
from analytics.release import dp_budget as _dp_budget  # noqa: E402,F401
