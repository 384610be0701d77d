"""Utility of a protected release: how close it stays to the same release built without noise.

compare() opens two releases of the same contributions and as-of date, one protected (the
release users get) and one unprotected (`publish(..., protect=False)`, built for this
measurement only), and asks both the questions the product asks, through the same public
functions the pages and the CLI call:

- trending: per region, the top 50 works (trends.trending with the default Filters of the
  region: 6-month window, every subject and format, no own-holdings filter); overlap
  |A ∩ B| / |B| of the work keys, A protected, B unprotected. Target: every region ≥ 90%.
- peer medians: benchmarks.parquet, variant 'none', the cells released (not suppressed) in
  both releases, keyed by region, peer group, KPI and period. A cell agrees when the
  protected median is within 5% of the unprotected one, |a - b| ≤ 0.05·|b|; when the
  unprotected median is 0 that means exactly 0 (up to 1e-9: a relative tolerance of 0 is 0),
  and a missing median on either side never agrees. Cells are split by the unprotected n:
  n ≥ 10 (target ≥ 95% agree) and n 5–9 (reported, no target). Cells released only by one
  of the two releases are counted, not compared.
- selection: per institution that may see collection development reports (its sharing of
  collection development data is in effect, the check the CLI and the pages make), the
  Selection page's default list: its region, peer group 'all', acquired by ≥ 20% of the
  group or on reading lists of ≥ K_TITLE institutions, up to 1,000 works, its own holdings
  (collection.own_identifiers) left out. Overlap of the work keys as above; an institution whose
  unprotected list is empty, or whose region has no released 'all' group, is skipped and
  counted. Target: mean ≥ 95% (the minimum is reported too).
- deselection: per institution allowed as above and with items, the Deselection page's
  default rules (its region, no loans for 10 years, any publication year, held by ≥ 10
  institutions of the region, up to 5,000 items); overlap of the withdrawal candidates'
  item ids, empty unprotected lists skipped and counted. Target: mean ≥ 95%. Retention
  candidates are compared the same way and reported without a target.

The result is JSON-serialisable: counts, rates and `targets`, one "...: met|missed" line
per target ("not measured" when there was nothing to compare).

publish_pair() builds the two releases. Until publish() takes `protect`, both releases are
built the same way and every figure is 100%, which checks the plumbing. The unprotected
release stays on disk among the retained releases: run this on bench or test data only.
"""

from __future__ import annotations

import time
from datetime import datetime

import polars as pl

from analytics.core.access import Principal
from analytics.core.config import Settings
from analytics.views.deselection import DeselectionRules, deselection
from analytics.core.schema import REGIONS
from analytics.control.store import Store, utcnow
from analytics.release.handle import open_release
from analytics.views.trends import Filters, trending
from analytics.views.collection import FilterError, own_identifiers
from analytics.views.selection import SelectionFilters, selection

TRENDING_LIMIT = 50
MEDIAN_TOLERANCE = 0.05
ZERO_TOLERANCE = 1e-9
SELECTION_LIMIT = 1000      # pages/selection.py
SELECTION_PERCENT = 20.0    # the page's slider default
# Widely held: 5 or more institutions of the region (the page's default of 10 is more than most
# regions of the demo and bench communities have).
DESELECTION_MIN_HOLDERS = 5
DESELECTION_LIMIT = 5000    # pages/deselection.py
TARGETS = {"trending": 0.90, "medians_n10": 0.95, "selection": 0.95, "deselection": 0.95}


def overlap(protected: list[str] | set[str], unprotected: list[str] | set[str]) -> float | None:
    """|A ∩ B| / |B|, B the unprotected list; None when B is empty."""
    truth = set(unprotected)
    if not truth:
        return None
    return len(set(protected) & truth) / len(truth)


def median_agrees(protected: float | None, truth: float | None, tolerance: float = MEDIAN_TOLERANCE) -> bool:
    """Within `tolerance` relative of the truth; a truth of 0 must be met (up to 1e-9)."""
    if protected is None or truth is None:
        return False
    return abs(protected - truth) <= max(tolerance * abs(truth), ZERO_TOLERANCE if truth == 0 else 0.0)


def compare(settings: Settings, store: Store, protected_id: str, unprotected_id: str) -> dict:
    """Trending, peer medians, selection and deselection of two releases side by side."""
    protected = open_release(settings.community_dir, protected_id)
    unprotected = open_release(settings.community_dir, unprotected_id)
    try:
        system = Principal.system_job()
        institutions = store.list_institutions(system)
        allowed = [i for i in institutions
                   if store.sharing_state(system, i.code)["collection_development"].in_effect]
        result = {
            "protected_release": protected_id,
            "unprotected_release": unprotected_id,
            "institutions": len(institutions),
            "institutions_allowed": len(allowed),
            "trending": _trending(protected, unprotected),
            "peer_medians": _medians(protected, unprotected),
            "selection": _selection(settings, protected, unprotected, allowed),
            "deselection": _deselection(settings, protected, unprotected, allowed),
        }
    finally:
        protected.con.close()
        unprotected.con.close()
    result["targets"] = target_lines(result)
    return result


def _trending(protected, unprotected) -> dict:
    regions: dict[str, dict] = {}
    skipped = []
    for region in REGIONS:
        filters = Filters(region=region, limit=TRENDING_LIMIT)
        truth = trending(unprotected, filters)["work_key"].to_list()
        if not truth:
            skipped.append(region)
            continue
        got = trending(protected, filters)["work_key"].to_list()
        regions[region] = {"overlap": overlap(got, truth), "common": len(set(got) & set(truth)),
                           "unprotected": len(truth), "protected": len(got)}
    rates = [r["overlap"] for r in regions.values()]
    return {"limit": TRENDING_LIMIT, "window": Filters().window, "regions": regions,
            "skipped_regions_empty": skipped, "min_overlap": min(rates) if rates else None}


def _medians(protected, unprotected) -> dict:
    query = ("SELECT region, peer_group, kpi, period, n, median, suppressed FROM benchmarks "
             "WHERE variant = 'none'")
    key = ["region", "peer_group", "kpi", "period"]
    truth = unprotected.cursor().sql(query).pl()
    got = protected.cursor().sql(query).pl()
    return median_figures(got, truth, key)


def median_figures(got: pl.DataFrame, truth: pl.DataFrame, key: list[str]) -> dict:
    """Agreement of the medians of cells released in both frames (columns: key, n, median, suppressed)."""
    truth = truth.filter(~pl.col("suppressed"))
    got = got.filter(~pl.col("suppressed"))
    both = truth.join(got.select(*key, pl.col("median").alias("protected_median")), on=key, how="inner")
    buckets = {"n_10_plus": pl.col("n") >= 10, "n_5_to_9": pl.col("n").is_between(5, 9)}
    figures: dict = {"tolerance": MEDIAN_TOLERANCE, "cells_released_unprotected": truth.height,
                     "cells_released_protected": got.height, "cells_released_both": both.height,
                     "cells_lost": truth.height - both.height, "cells_gained": got.height - both.height}
    for name, condition in buckets.items():
        cells = both.filter(condition)
        within = sum(median_agrees(p, t) for p, t in zip(cells["protected_median"], cells["median"]))
        zero = cells.filter(pl.col("median") == 0).height
        figures[name] = {"cells": cells.height, "within": within, "truth_zero": zero,
                         "rate": within / cells.height if cells.height else None}
    figures["cells_other_n"] = both.height - sum(figures[name]["cells"] for name in buckets)
    return figures


def _selection(settings: Settings, protected, unprotected, allowed) -> dict:
    k_title = unprotected.manifest["privacy"]["K_TITLE"]
    per: dict[str, dict] = {}
    skipped_empty, skipped_no_group = [], []
    for institution in allowed:
        keys, isbns = own_identifiers(Principal.system_job(), settings.data_dir, institution.code)
        filters = SelectionFilters(region=institution.region, peer_group="all",
                                   min_acquired_percent=SELECTION_PERCENT, min_lists=k_title,
                                   limit=SELECTION_LIMIT)
        try:
            truth = selection(unprotected, filters, keys, isbns)["work_key"].to_list()
        except FilterError:  # no 'all' group released for the region
            skipped_no_group.append(institution.code)
            continue
        if not truth:
            skipped_empty.append(institution.code)
            continue
        try:
            got = selection(protected, filters, keys, isbns)["work_key"].to_list()
        except FilterError:
            got = []
        per[institution.code] = {"overlap": overlap(got, truth), "unprotected": len(truth), "protected": len(got)}
    return {"limit": SELECTION_LIMIT, **_summary(per), "skipped_empty": skipped_empty,
            "skipped_no_group": skipped_no_group, "per_institution": per}


def _deselection(settings: Settings, protected, unprotected, allowed) -> dict:
    system = Principal.system_job()
    withdraw: dict[str, dict] = {}
    retain: dict[str, dict] = {}
    skipped_empty, skipped_no_items = [], []
    for institution in allowed:
        rules = DeselectionRules(region=institution.region, min_holders=DESELECTION_MIN_HOLDERS,
                                 limit=DESELECTION_LIMIT)
        try:
            truth = deselection(system, unprotected, settings.data_dir, institution.code, rules)
        except FileNotFoundError:  # no items imported yet
            skipped_no_items.append(institution.code)
            continue
        got = deselection(system, protected, settings.data_dir, institution.code, rules)
        kept = got["retain"]["item_id"].to_list()
        if truth["retain"].height:
            retain[institution.code] = {"overlap": overlap(kept, truth["retain"]["item_id"].to_list()),
                                        "unprotected": truth["retain"].height, "protected": len(kept)}
        if truth["withdraw"].height == 0:
            skipped_empty.append(institution.code)
            continue
        ids = got["withdraw"]["item_id"].to_list()
        withdraw[institution.code] = {"overlap": overlap(ids, truth["withdraw"]["item_id"].to_list()),
                                      "unprotected": truth["withdraw"].height, "protected": len(ids),
                                      "unprotected_total": truth["withdraw_total"],
                                      "protected_total": got["withdraw_total"]}
    return {"limit": DESELECTION_LIMIT, **_summary(withdraw), "skipped_empty": skipped_empty,
            "skipped_no_items": skipped_no_items, "per_institution": withdraw,
            "retention": {**_summary(retain), "per_institution": retain}}


def _summary(per: dict[str, dict]) -> dict:
    rates = [p["overlap"] for p in per.values()]
    return {"compared": len(rates), "mean_overlap": sum(rates) / len(rates) if rates else None,
            "min_overlap": min(rates) if rates else None}


def target_lines(result: dict) -> list[str]:
    """One line per target: what was measured, the target and met / missed / not measured."""
    n10 = result["peer_medians"]["n_10_plus"]
    checks = [
        ("trending top-50 overlap, minimum over regions", result["trending"]["min_overlap"],
         TARGETS["trending"], f"{len(result['trending']['regions'])} regions"),
        ("peer medians within 5%, cells with n >= 10", n10["rate"], TARGETS["medians_n10"],
         f"{n10['within']}/{n10['cells']} cells"),
        ("selection overlap, mean over institutions", result["selection"]["mean_overlap"], TARGETS["selection"],
         f"{result['selection']['compared']} institutions, minimum {_pct(result['selection']['min_overlap'])}"),
        ("deselection overlap, mean over institutions", result["deselection"]["mean_overlap"],
         TARGETS["deselection"], f"{result['deselection']['compared']} institutions, minimum "
                                 f"{_pct(result['deselection']['min_overlap'])}"),
    ]
    lines = []
    for what, value, target, detail in checks:
        verdict = "not measured" if value is None else ("met" if value >= target else "missed")
        lines.append(f"{what}: {_pct(value)} (target >= {target:.0%}; {detail}): {verdict}")
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def publish_pair(settings: Settings, store: Store, now: datetime | None = None, progress=lambda _line: None) -> dict:
    """Publish the unprotected release (publish(protect=False), measurement only), then the
    protected one (which is left current), with the same as-of date and creation time; return
    their ids and how long each publish took."""
    from analytics.release.publish import publish

    now = now or utcnow()
    ids, seconds = {}, {}
    for name, protect in (("unprotected", False), ("protected", True)):
        started = time.perf_counter()
        ids[name] = publish(settings, store, as_of=now.date(), now=now, progress=progress, protect=protect)
        seconds[name] = round(time.perf_counter() - started, 2)
    return {"protected": ids["protected"], "unprotected": ids["unprotected"],
            "publish_protected_seconds": seconds["protected"],
            "publish_unprotected_seconds": seconds["unprotected"]}