"""Generating every type's candidates and their lifecycle in the control database: offered once
per release, refreshed, expired, and offered again only after a material change."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analytics.control.recommend_catalog import CATALOG
from analytics.control.store import Store
from analytics.core import access
from analytics.core.access import Principal
from analytics.release.handle import Release
from analytics.views.recommend.collection_rules import acquire_teaching, acquire_trending, add_copies, retain, withdraw
from analytics.views.recommend.context import Candidate, build_context, require_recommendations
from analytics.views.recommend.usage_rules import (data_quality, load_usage, print_e_duplication, review_e_titles,
                                                   subject_balance)


RULES = {
    "withdraw": withdraw,
    "retain": retain,
    "add_copies": add_copies,
    "acquire_teaching": acquire_teaching,
    "acquire_trending": acquire_trending,
    "review_e_titles": review_e_titles,
    "load_usage": load_usage,
    "print_e_duplication": print_e_duplication,
    "subject_balance": subject_balance,
    "data_quality": data_quality,
}
assert set(RULES) == set(CATALOG), "every catalog type needs a rule"


def generate(actor: Principal, release: Release, data_dir: Path, code: str, region: str) -> list[Candidate]:
    """Every type's candidates for one institution, best first within each type; from its own
    data, so for its own users (or the system job) only."""
    access.require_member(actor, code, "the local data behind recommendations")
    ctx = build_context(actor, release, data_dir, code, region)
    out: list[Candidate] = []
    for rule in RULES.values():
        out += rule(ctx)
    return out


# -- lifecycle --------------------------------------------------------------------------------

def _relative(old: float, new: float) -> float:
    return abs(new - old) / old if old else (0.0 if new == old else math.inf)


def material_change(type_id: str, old: dict | None, new: dict) -> bool:
    """Whether a dismissed or implemented recommendation's evidence changed enough to offer it again.
    `old` is the evidence basis at the time of the user's decision (catalog: materiality)."""
    if not old:
        return True
    if type_id in ("withdraw", "review_e_titles", "load_usage", "data_quality", "retain"):
        key = {"withdraw": "items", "review_e_titles": "unused", "load_usage": "titles", "data_quality": "items",
               "retain": "works"}[type_id]
        return _relative(old.get(key, 0), new.get(key, 0)) >= 0.25
    if type_id == "add_copies":
        return old.get("copies") != new.get("copies") or _relative(old.get("per_copy", 0), new.get("per_copy", 0)) >= 0.5
    if type_id == "acquire_teaching":
        return new.get("listing", 0) - old.get("listing", 0) >= 2
    if type_id == "acquire_trending":
        return new.get("score", 0) - old.get("score", 0) >= 0.5
    if type_id == "print_e_duplication":
        return old.get("print_copies") != new.get("print_copies")
    if type_id == "subject_balance":
        return old.get("direction") != new.get("direction") or abs(new.get("ratio", 0) - old.get("ratio", 0)) >= 0.5
    raise KeyError(type_id)


def _decision_basis(record) -> dict | None:
    """The evidence numbers when a user implemented or dismissed it: the store keeps the
    evidence of that moment, which carries the numbers under "basis"."""
    basis = record.basis or {}
    return basis.get("basis", basis) if isinstance(basis, dict) else None


def plan_sync(records: list, candidates: list[Candidate]) -> dict:
    """What the control database should do with this release's candidates."""
    by_target = {(r.type, r.target): r for r in records}
    seen = set()
    new, refresh, reoffer = [], [], []
    for c in candidates:
        seen.add((c.type, c.target))
        record = by_target.get((c.type, c.target))
        if record is None:
            new.append(c.offer())
        elif record.status == "new":
            refresh.append((record.id, c.offer()))
        elif record.status == "expired":
            reoffer.append((record.id, c.offer()))  # true again
        elif material_change(c.type, _decision_basis(record), c.basis):
            reoffer.append((record.id, c.offer()))
    expire = [r.id for r in records if r.status == "new" and (r.type, r.target) not in seen]
    return {"new": new, "refresh": refresh, "reoffer": reoffer, "expire": expire}


@dataclass
class Result:
    release_id: str
    records: list  # RecommendationRecord, every status
    candidates: dict[tuple[str, str], Candidate]


def recommendations(actor: Principal, store: Store, release: Release, data_dir: Path, code: str,
                    candidates: list[Candidate] | None = None) -> Result:
    """The institution's recommendations for a release: generated, synced once, then read back.

    `candidates` lets the app pass a cached generate() result (same release and local data)."""
    require_recommendations(actor, store, code)
    if candidates is None:
        region = store.institution(actor, code).region
        candidates = generate(actor, release, data_dir, code, region)
    if not store.recommendations_synced(actor, code, release.release_id):
        # The lifecycle follows the release, whoever opens the page first: the sync runs as the
        # system job, so that a librarian's visit also expires a manager-only recommendation, while
        # a user calling sync_recommendations directly changes only the types of its role.
        system = Principal.system_job()
        plan = plan_sync(store.recommendation_records(system, code), candidates)
        store.sync_recommendations(system, code, release.release_id, **plan)
    records = store.recommendation_records(actor, code)
    return Result(release.release_id, records, {(c.type, c.target): c for c in candidates})


def may_act(actor: Principal, type_id: str) -> bool:
    return actor.system or bool(set(actor.roles) & set(CATALOG[type_id].roles))


def usage_overview(actor: Principal, store: Store, code: str) -> pl.DataFrame:
    """How recommendations were used: per month, type and status, the number of changes to it."""
    access.require_member(actor, code, "the recommendation history")
    events = store.recommendation_events_for(actor, code)
    schema = {"month": pl.String, "type": pl.String, "value": pl.String, "count": pl.UInt32}
    if not events:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame([{"month": e["at"].strftime("%Y-%m"), "type": e["type"], "kind": e["kind"],
                           "value": e["value"]} for e in events])
    return (frame.filter(pl.col("kind") == "status").group_by("month", "type", "value").agg(pl.len().alias("count"))
            .sort("month", "type", "value").select(list(schema)))
