"""Import runs: each import's report in the institution's history, with its audit row."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from analytics.core import access
from analytics.core.access import Principal
from analytics.control.store.audit import write_audit
from analytics.control.store.tables import aware, import_runs, utcnow


class ImportsMixin:
    """Recording imports and reading their history."""

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
            write_audit(con, actor, code, f"import.{kind}.{status}", None, file_name, now)
            return int(result.inserted_primary_key[0])

    def import_history(self, actor: Principal, code: str, limit: int = 50) -> list[dict]:
        access.require_member(actor, code, "the import history")
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(import_runs).where(import_runs.c.institution_code == code)
                .order_by(import_runs.c.at.desc(), import_runs.c.id.desc()).limit(limit)
            ).mappings().all()
        return [{**row, "at": aware(row["at"]), "report": json.loads(row["report"])} for row in rows]

