"""Sharing switches: one per service, kept as events with the date each change takes effect.

The publish job asks what was in effect on any as-of date: benchmark changes take effect on
the first day of the next month; the other services at the next community release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

from analytics.core import access, months
from analytics.core.access import Principal
from analytics.core.schema import SERVICES
from analytics.control.store.audit import display, write_audit
from analytics.control.store.errors import StoreError
from analytics.control.store.institutions import _lock_version, _require_exists
from analytics.control.store.tables import aware, institutions, sharing_events, utcnow


def effective_from(service: str, requested: datetime) -> date:
    """When a switch change takes effect.

    Benchmark sharing follows the monthly benchmark cycle: the first day of the next
    month. Collection development and recommendations take effect at the next
    community release, i.e. from the day of the request on.
    """
    day = requested.astimezone(timezone.utc).date()
    return months.shift(day, 1) if service == "benchmark" else day


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
    return SwitchState(service, requested, in_effect, aware(last["requested_at"]), last["effective_from"],
                       last["actor"], since, pending_from)


class SharingMixin:
    """Turning the sharing switches on and off, and reading their state and history."""

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
            _lock_version(con, code, expected_version)
            before = self._requested(con, code, service)
            if before == enabled:
                raise StoreError(
                    f"{service} sharing of {code} is already {'on' if enabled else 'off'}; nothing changed."
                )
            if agreed_on is not None:
                last = con.execute(sa.select(sa.func.max(sharing_events.c.requested_at)).where(
                    sharing_events.c.institution_code == code, sharing_events.c.service == service)).scalar()
                if last is not None and aware(last) > requested:
                    raise StoreError(f"agreed on {agreed_on.isoformat()}: {service} sharing of {code} last changed "
                                     f"on {aware(last).date().isoformat()}, after that date.")
            starts = effective_from(service, requested)
            con.execute(
                sharing_events.insert().values(
                    institution_code=code, service=service, enabled=enabled, requested_at=requested,
                    effective_from=starts, actor=actor.email,
                )
            )
            note = f" (agreed on {agreed_on.isoformat()}, recorded later)" if agreed_on else ""
            write_audit(con, actor, code, f"sharing.{service}", display(before),
                        f"{display(enabled)} (effective {starts.isoformat()}){note}", now)
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
            _require_exists(con, code)
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
            _require_exists(con, code)
            rows = con.execute(
                sa.select(sharing_events)
                .where(sharing_events.c.institution_code == code)
                .order_by(sharing_events.c.requested_at.desc(), sharing_events.c.id.desc())
            ).mappings().all()
        return [
            {"service": r["service"], "enabled": bool(r["enabled"]), "requested_at": aware(r["requested_at"]),
             "effective_from": r["effective_from"], "actor": r["actor"]}
            for r in rows
        ]
