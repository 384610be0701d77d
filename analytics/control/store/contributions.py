"""Contributions, releases and disclosure secrets: the control data of the system job (publish).

The token -> institution map lives only here, so that opt-out can find and delete an
institution's contributions while nothing in the community data names it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from analytics.core import access
from analytics.core.access import Principal
from analytics.control.store.audit import write_audit
from analytics.control.store.tables import (aware, contributions, noise_keys, own_kpi_values, release_contributors,
                                            releases, utcnow)

if TYPE_CHECKING:
    from analytics.control.store import Store


def new_secret() -> str:
    """A fresh institution secret (hex); stored once in the control database, never released."""
    return secrets.token_hex(32)


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
        now = now or utcnow()
        with self.engine.begin() as con:
            row = con.execute(sa.select(contributions).where(
                contributions.c.institution_code == code, contributions.c.service == service)).mappings().first()
            if row is None:
                token = secrets.token_hex(16)
                con.execute(contributions.insert().values(token=token, institution_code=code, service=service,
                                                          created_at=now))
                write_audit(con, self.actor, code, f"contribution.{service}.created", None, "contribution", now)
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
            write_audit(con, self.actor, row["institution_code"], f"contribution.{row['service']}.removed",
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
            write_audit(con, self.actor, None, "release.use", previous, release_id, now)

    def mark_release_deleted(self, release_id: str, reason: str) -> None:
        with self.engine.begin() as con:
            con.execute(own_kpi_values.delete().where(own_kpi_values.c.release_id == release_id))
            con.execute(releases.update().where(releases.c.release_id == release_id)
                        .values(status="deleted", deleted_reason=reason))

    def release_history(self) -> list[dict]:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(releases).order_by(releases.c.created_at.desc())).mappings().all()
        return [{**r, "created_at": aware(r["created_at"])} for r in rows]

    def noise_secrets(self, codes: list[str], now: datetime | None = None) -> dict[str, str]:
        """Each institution's disclosure secret (contribute/disclosure.py), drawn on first use."""
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


class ContributionsMixin:
    """What an institution may read of the system job's data about it."""

    def own_kpi_values(self, actor: Principal, code: str, release_id: str) -> list[dict]:
        """The institution's own values that only the system job can compute (period, kpi, value)."""
        access.require_member(actor, code, "the institution's benchmark values")
        with self.engine.connect() as con:
            rows = con.execute(sa.select(own_kpi_values.c.period, own_kpi_values.c.kpi, own_kpi_values.c.value)
                               .where(own_kpi_values.c.release_id == release_id,
                                      own_kpi_values.c.institution_code == code)
                               .order_by(own_kpi_values.c.kpi, own_kpi_values.c.period)).mappings().all()
        return [dict(r) for r in rows]
