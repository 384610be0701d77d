"""Recommendations: offered once per institution (type + target), then kept through their lifecycle.

Each one keeps its row through new -> implemented / dismissed -> (reopened) new, or expired.
The system job syncs them with each release (``sync_recommendations``); users act on the types
their role acts on, with a version lock; every status and grade change is an event and an audit row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import ROLE_LABELS
from analytics.control.recommend_catalog import CATALOG, DISMISS_REASONS, GRADES, HOW_IMPLEMENTED, HOW_LABELS, STATUSES
from analytics.control.store.audit import write_audit
from analytics.control.store.errors import ChangedMeanwhile, NotFound, StoreError
from analytics.control.store.institutions import _require_exists
from analytics.control.store.tables import (aware, recommendation_events, recommendation_runs, recommendations,
                                            utcnow)


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
                      offered_at=aware(row["offered_at"]), updated_at=aware(row["updated_at"]))
        return cls(**values)


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
class _SyncPlan:
    """The caller's decisions of one sync, checked, with their offers encoded (_clean_offer)."""

    code: str
    release_id: str
    new: list[dict]
    refresh: list[tuple[int, dict]]
    reoffer: list[tuple[int, dict]]
    expire: list[int]

    @property
    def ids(self) -> list[int]:
        """The recommendations the sync changes, in the order named."""
        return [rec_id for rec_id, _ in self.refresh] + [rec_id for rec_id, _ in self.reoffer] + self.expire


def _sync_plan(code: str, release_id: str, new: list[dict], refresh: list[tuple[int, dict]],
               reoffer: list[tuple[int, dict]], expire: list[int]) -> _SyncPlan:
    """Check a sync's decisions on their own, before the database is read."""
    release_id = str(release_id or "").strip()
    if not release_id or len(release_id) > 64:
        raise StoreError(f"release: {release_id!r} is not a release id.")
    plan = _SyncPlan(code, release_id, [_clean_offer(offer) for offer in new],
                     [(int(rec_id), _clean_offer(offer)) for rec_id, offer in refresh],
                     [(int(rec_id), _clean_offer(offer)) for rec_id, offer in reoffer],
                     [int(rec_id) for rec_id in expire])
    ids = plan.ids
    if len(ids) != len(set(ids)):
        twice = sorted({rec_id for rec_id in ids if ids.count(rec_id) > 1})
        raise StoreError(f"Recommendation(s) {', '.join(map(str, twice))} named more than once in one sync.")
    keys = [(offer["type"], offer["target"]) for offer in plan.new]
    if len(keys) != len(set(keys)):
        raise StoreError("The same recommendation (type and target) is offered twice in one sync.")
    return plan


def _check_sync(actor: Principal, plan: _SyncPlan, rows: dict) -> None:
    """Check a sync's decisions against the institution's recommendations (`rows`, by id)."""
    code, ids = plan.code, plan.ids
    missing = sorted(set(ids) - set(rows))
    if missing:
        raise NotFound(f"{code} has no recommendation(s) {', '.join(map(str, missing))}.")
    # A user changes only the types its role acts on (the app's own sync runs as the system job).
    types = {offer["type"] for offer in plan.new} | {rows[rec_id]["type"] for rec_id in ids}
    refused = sorted(t for t in types if not actor.system and not set(actor.roles) & set(CATALOG[t].roles))
    if refused:
        raise access.PermissionDenied(
            f"{actor.email} may not change recommendations of type(s) {', '.join(refused)} of {code}: "
            f"their role(s) {', '.join(sorted(actor.roles)) or 'none'} do not act on them.")
    offered = {(row["type"], row["target"]): rec_id for rec_id, row in rows.items()}
    for key in [(offer["type"], offer["target"]) for offer in plan.new]:
        if key in offered:
            raise StoreError(f"{key[0]} recommendation {key[1]!r} was offered to {code} already "
                             f"(id {offered[key]}); refresh or reoffer it instead.")
    for rec_id, offer in plan.refresh + plan.reoffer:
        _same_target(rows[rec_id], offer)


def _apply_sync(con, plan: _SyncPlan, rows: dict, now: datetime) -> None:
    """Write a checked sync: insert, refresh, reoffer and expire, each with its events and audit rows."""
    code, release_id = plan.code, plan.release_id
    for offer in plan.new:
        rec_id = con.execute(recommendations.insert().values(
            institution_code=code, type=offer["type"], target=offer["target"], status="new",
            summary=offer["summary"], evidence=offer["evidence"], impact=offer["impact"],
            basis=offer["basis"], first_release=release_id, last_release=release_id,
            offered_at=now, updated_at=now, updated_by=None, version=1,
        )).inserted_primary_key[0]
        _recommendation_event(con, rec_id, code, offer["type"], "status", "new", now, "system", release_id)
    for rec_id, offer in plan.refresh:
        con.execute(recommendations.update().where(recommendations.c.id == rec_id).values(
            summary=offer["summary"], evidence=offer["evidence"], impact=offer["impact"],
            last_release=release_id))
    for rec_id, offer in plan.reoffer:
        row = rows[rec_id]
        if row["status"] == "new":
            raise StoreError(f"{row['type']} recommendation {row['target']!r} of {code} is new "
                             "already; refresh it instead of reoffering it.")
        con.execute(recommendations.update().where(recommendations.c.id == rec_id).values(
            status="new", how=None, reason=None, note=None, grade=None, summary=offer["summary"],
            evidence=offer["evidence"], impact=offer["impact"], basis=offer["basis"],
            last_release=release_id, offered_at=now, updated_at=now, updated_by="system",
            version=recommendations.c.version + 1))
        _recommendation_event(con, rec_id, code, row["type"], "status", "new", now, "system", release_id)
        write_audit(con, "system", code, f"recommendation.{row['type']}", row["status"],
                    f"new (evidence changed: {row['target']})", now)
    for rec_id in plan.expire:
        row = rows[rec_id]
        if row["status"] == "expired":
            raise StoreError(f"{row['type']} recommendation {row['target']!r} of {code} "
                             "has expired already.")
        con.execute(recommendations.update().where(recommendations.c.id == rec_id).values(
            status="expired", updated_at=now, updated_by="system",
            version=recommendations.c.version + 1))
        _recommendation_event(con, rec_id, code, row["type"], "status", "expired", now, "system", release_id)
        write_audit(con, "system", code, f"recommendation.{row['type']}", row["status"],
                    f"expired at release {release_id} (target {row['target']})", now)


def _recommendation_event(con, rec_id: int, code: str, rtype: str, kind: str, value: str, at: datetime,
                          actor: str, release_id: str | None) -> None:
    con.execute(recommendation_events.insert().values(
        recommendation_id=rec_id, institution_code=code, type=rtype, kind=kind, value=value, at=at,
        actor=actor, release_id=release_id))

def _recommendation_in(con, rec_id: int) -> RecommendationRecord:
    row = con.execute(sa.select(recommendations).where(recommendations.c.id == rec_id)).mappings().one()
    return RecommendationRecord.from_row(row)

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


class RecommendationsMixin:
    """Reading, syncing and acting on an institution's recommendations."""

    def recommendation_records(self, actor: Principal, code: str) -> list[RecommendationRecord]:
        """Every recommendation ever offered to the institution, by type, then id."""
        access.require_member(actor, code, "the recommendations")
        with self.engine.connect() as con:
            _require_exists(con, code)
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
        plan = _sync_plan(code, release_id, new, refresh, reoffer, expire)
        now = now or utcnow()
        with self.engine.connect() as con:
            _require_exists(con, code)
        try:
            with self.engine.begin() as con:
                try:
                    con.execute(recommendation_runs.insert().values(institution_code=code,
                                                                    release_id=plan.release_id, at=now))
                except sa.exc.IntegrityError:
                    raise _AlreadySynced() from None
                rows = {row["id"]: row for row in con.execute(
                    sa.select(recommendations).where(recommendations.c.institution_code == code)).mappings()}
                _check_sync(actor, plan, rows)
                _apply_sync(con, plan, rows, now)
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
            row = _recommendation_for_change(con, actor, code, rec_id, expected_version)
            old, target = row["status"], row["target"]
            if old == status:
                raise StoreError(f"This recommendation ({target}) is {status} already; nothing changed.")
            if old == "expired":
                raise StoreError(f"This recommendation ({target}) has expired: the current release no longer "
                                 "supports it, so it cannot be acted on.")
            if old != "new" and status != "new":
                raise StoreError(f"This recommendation ({target}) is {old}; reopen it before marking it {status}.")
            _bump_recommendation(con, actor, rec_id, expected_version, now, status=status,
                                      how=how if status == "implemented" else None,
                                      reason=reason if status == "dismissed" else None,
                                      note=note if status != "new" and note else None,
                                      basis=recommendations.c.evidence)
            _recommendation_event(con, rec_id, code, row["type"], "status", status, now, actor.email,
                                       row["last_release"])
            if status == "implemented":
                told = f"implemented {HOW_LABELS[how]}"
            elif status == "dismissed":
                told = f"dismissed: {DISMISS_REASONS[reason]}"
            else:
                told = "new: reopened"
            if note and status != "new":
                told += f" — {note}"
            write_audit(con, actor, code, f"recommendation.{row['type']}", old, f"{told} (target {target})", now)
            return _recommendation_in(con, rec_id)

    def grade_recommendation(self, actor: Principal, code: str, rec_id: int, grade: str | None, *,
                             expected_version: int, now: datetime | None = None) -> RecommendationRecord:
        """Grade a recommendation helpful or not helpful, or clear the grade (None)."""
        access.require_member(actor, code, "the recommendations")
        if grade is not None and grade not in GRADES:
            raise StoreError(f"grade: {grade!r} is not one of {', '.join(GRADES)} (or none to clear it).")
        now = now or utcnow()
        with self.engine.begin() as con:
            row = _recommendation_for_change(con, actor, code, rec_id, expected_version)
            if row["grade"] == grade:
                raise StoreError(f"This recommendation ({row['target']}) is graded {grade or 'not'} already; "
                                 "nothing changed.")
            _bump_recommendation(con, actor, rec_id, expected_version, now, grade=grade)
            _recommendation_event(con, rec_id, code, row["type"], "grade", grade or "cleared", now,
                                       actor.email, row["last_release"])
            write_audit(con, actor, code, f"recommendation.{row['type']}.grade", row["grade"],
                        f"{grade or 'no grade'} (target {row['target']})", now)
            return _recommendation_in(con, rec_id)

    def recommendation_events_for(self, actor: Principal, code: str) -> list[dict]:
        """Every status and grade change of the institution's recommendations, oldest first."""
        access.require_member(actor, code, "the recommendations")
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(recommendation_events).where(recommendation_events.c.institution_code == code)
                .order_by(recommendation_events.c.at, recommendation_events.c.id)
            ).mappings().all()
        return [{"recommendation_id": r["recommendation_id"], "type": r["type"], "kind": r["kind"],
                 "value": r["value"], "at": aware(r["at"]), "actor": r["actor"], "release_id": r["release_id"]}
                for r in rows]
