"""The audit log: one row per change, written in the transaction of the change; append-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from analytics.core import access
from analytics.core.access import Principal
from analytics.control.store.tables import audit_log, aware


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    institution_code: str | None
    action: str
    old_value: str | None
    new_value: str | None


def display(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def write_audit(con, actor: Principal | str, code: str | None, action: str, old, new, at: datetime) -> None:
    """Add one audit row on the connection of the change it records."""
    con.execute(
        audit_log.insert().values(
            at=at,
            actor=actor.email if isinstance(actor, Principal) else actor,
            institution_code=code,
            action=action,
            old_value=display(old),
            new_value=display(new),
        )
    )


class AuditMixin:
    """The institution's audit trail."""

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
        return [AuditEntry(**{**row, "at": aware(row["at"])}) for row in rows]

