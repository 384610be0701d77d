"""What every recommendation rule reads: the thresholds, the recommendations part of the release,
the institution's own data (`Context`), and the small helpers the rules share."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from analytics.control.recommend_catalog import MAX_PER_TYPE
from analytics.control.store import Store
from analytics.core import access, months
from analytics.core.contract import RECOMMENDATIONS_PART
from analytics.core.schema import region_name
from analytics.core.access import Principal
from analytics.ingest import subjects
from analytics.ingest.local import table_path
from analytics.release.handle import Release, open_release
from analytics.release.manifest import read_manifest, release_path
from analytics.views import deselection

PART = RECOMMENDATIONS_PART
PART_TABLES = ("titles", "holdings", "peer_selection", "monthly_signal", "trend_rows", "work_use", "platforms",
               "platform_titles")
IDLE_YEARS = 10
WITHDRAW_MIN_ITEMS = 5
RETAIN_MIN_WORKS = 5
COPIES_MIN_LOANS = 10
COPIES_MIN_RATIO = 3.0
TEACHING_MIN_INSTITUTIONS = 3
TRENDING_WINDOW = 6
TRENDING_MIN_SCORE = math.log(2)
STRONGEST_SUBJECTS = 5
E_REVIEW_MIN_TITLES = 5
LOAD_USAGE_MIN_TITLES = 10
DUPLICATION_IDLE_YEARS = 3
DUPLICATION_MIN_REQUESTS = 5
BALANCE_MIN_ITEMS = 50
BALANCE_MIN_LOANS = 20
BALANCE_RATIO = 1.5
QUALITY_MIN_ITEMS = 10
QUALITY_MIN_SHARE = 0.01
NO_SUBJECT = "(no LC subclass)"


class NotSharing(access.PermissionDenied):
    """The institution does not share for recommendations, so it receives none."""


@dataclass
class Candidate:
    """One recommendation computed from the current data, before the lifecycle."""

    type: str
    target: str
    label: str
    summary: str
    evidence: list[dict]  # {"label", "value", "source": "community" | "yours"}
    impact: str
    impact_value: float
    score: float
    basis: dict
    rows: pl.DataFrame | None = field(default=None, repr=False)
    link: dict | None = None  # {"page": "pages/x.py", "label": ..., "hint": ...}

    def offer(self) -> dict:
        return {"type": self.type, "target": self.target, "summary": self.summary,
                "evidence": {"label": self.label, "items": self.evidence, "impact_value": self.impact_value,
                             "link": self.link, "basis": self.basis},
                "impact": self.impact, "basis": self.basis}


# -- access -------------------------------------------------------------------------------

def require_recommendations(actor: Principal, store: Store, code: str) -> None:
    """Only institutions with recommendations sharing in effect receive recommendations."""
    access.require_member(actor, code, "recommendations")
    state = store.sharing_state(actor, code)["recommendations"]
    if not state.in_effect:
        pending = (f" Sharing was turned on and takes effect on {state.effective_from.isoformat()}."
                   if state.pending and state.requested else "")
        raise NotSharing(
            f"{code} does not share its data for Recommendations, so it receives none (its data is not used "
            f"to create recommendations either).{pending} A General System Administrator can turn sharing on in "
            f"the data sharing profile.")


def open_part(community_dir: Path, release_id: str | None = None) -> Release:
    """The recommendations part of a release, opened like a release (same table names)."""
    manifest = read_manifest(release_path(community_dir, release_id))
    last_complete = months.last_complete(date.fromisoformat(manifest["as_of"]))
    # Only the rows the rules read: the current holdings snapshot, the last 12 complete months
    # of the signal (subject balance, e-title use), the 6-month trend window, the 'all' peer group.
    only = {"holdings": ("month = $v", manifest["as_of"][:7]),
            "monthly_signal": ("month >= $v", months.add(last_complete, -11)),
            "trend_rows": ("window_months = $v", TRENDING_WINDOW),
            "peer_selection": ("peer_group = $v", "all")}
    return open_release(community_dir, release_id, part=PART, tables=PART_TABLES, where=only)


# -- own data -----------------------------------------------------------------------------

@dataclass
class Context:
    code: str
    region: str
    as_of: date
    last_complete: str
    last12_start: str
    k_title: int
    release: Release
    items: pl.DataFrame  # held items with subject, uses, loans_12m, community key and holders
    own_keys: pl.Series
    own_isbns: pl.Series
    usage: pl.DataFrame  # own Total_Item_Requests in the last 12 months: work_key, isbn, platform, count
    loaded_usage: bool
    data_dir: Path
    actor: Principal  # who asked: the rules read local data on its behalf

    @property
    def region_words(self) -> str:
        """The region as the texts name it: "Europe", not "EU"."""
        return region_name(self.region)


def _own_usage(data_dir: Path, code: str, first: str, last: str) -> pl.DataFrame:
    path = table_path(data_dir, code, "e-usage")
    schema = {"work_key": pl.String, "isbn": pl.String, "platform": pl.String, "count": pl.Int64}
    if not path.exists():
        return pl.DataFrame(schema=schema)
    present = pl.read_parquet_schema(path)
    scan = pl.scan_parquet(path).with_columns(
        pl.lit(None, dtype=dtype).alias(col) for col, dtype in schema.items() if col not in present)
    start, stop = date.fromisoformat(f"{first}-01"), months.first_day(months.add(last, 1))
    return (scan.filter((pl.col("month") >= start) & (pl.col("month") < stop)
                        & (pl.col("metric_type") == "Total_Item_Requests"))
            .select(pl.col("work_key"), pl.col("isbn"), pl.col("platform"), pl.col("count").cast(pl.Int64))
            .collect())


def build_context(actor: Principal, release: Release, data_dir: Path, code: str, region: str) -> Context:
    as_of = date.fromisoformat(release.manifest["as_of"])
    last_complete = months.last_complete(as_of)
    last12_start = months.add(last_complete, -11)
    k_title = release.manifest["privacy"]["K_TITLE"]
    if not table_path(data_dir, code, "items").exists():
        items = pl.DataFrame(schema={"item_id": pl.String, "title": pl.String, "author": pl.String,
                                     "isbn": pl.String, "call_number": pl.String, "pub_year": pl.Int64,
                                     "format": pl.String, "acquired_date": pl.Date, "work_key": pl.String,
                                     "uses": pl.Int64,
                                     "last_use": pl.Date, "lc_class": pl.String, "lc_subclass": pl.String,
                                     "community_key": pl.String, "institutions_holding": pl.Int64,
                                     "loans_12m": pl.Int64, "match_method": pl.String, "committed": pl.Boolean})
    else:
        window = (date.fromisoformat(f"{last12_start}-01"), date(as_of.year, as_of.month, 1))
        items = deselection.own_items(actor, data_dir, code, loans_between=window)
        items = subjects.classify_frame(items, "call_number").drop("subject")
        holders = deselection.community_holders(release, items, region)
        items = items.join(holders, on="item_id", how="left").with_columns(
            pl.col("loans_window").fill_null(0).alias("loans_12m")).drop("loans_window")
        # Works the institution committed to retain (shared print): never proposed for withdrawal.
        items = items.with_columns(deselection.committed_items(
            items, deselection.own_commitments(actor, data_dir, code, as_of)).alias("committed"))
    keys = items["work_key"].drop_nulls().unique()
    isbns = items["isbn"].drop_nulls().str.split(";").explode().drop_nulls().unique()
    usage = _own_usage(data_dir, code, last12_start, last_complete)
    return Context(code, region, as_of, last_complete, last12_start, k_title, release, items, keys, isbns, usage,
                   usage.height > 0, data_dir, actor)


@functools.lru_cache(maxsize=4096)
def subject_label(subclass: str | None) -> str:
    """"QA — Mathematics": a subclass with its caption from the LC outline (a fixed reference file)."""
    if not subclass:
        return NO_SUBJECT
    captions = subjects.outline().filter(pl.col("lc_subclass") == subclass)
    caption = captions["lc_subclass_caption"].drop_nulls().first() if captions.height else None
    return f"{subclass} — {caption}" if caption else subclass


def held_by_us(ctx: Context, frame: pl.DataFrame) -> pl.Series:
    """Whether each work of `frame` (work_key, isbns) is held by the institution in any edition."""
    rows = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), "work_key", "isbns")
    by_isbn = rows.explode("isbns").join(ctx.own_isbns.to_frame("isbns"), on="isbns", how="semi")["row"]
    by_key = rows.join(ctx.own_keys.to_frame("work_key"), on="work_key", how="semi")["row"]
    return rows["row"].is_in(pl.concat([by_isbn, by_key]).unique().implode())


def best_first(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (-c.score, c.target))[:MAX_PER_TYPE]


def count_of(value) -> int:
    return int(value or 0)


def evidence_item(label: str, value, source: str) -> dict:
    if isinstance(value, float):
        value = round(value, 2)
    return {"label": label, "value": value, "source": source}


def held_print(ctx: Context) -> pl.DataFrame:
    return ctx.items.filter(pl.col("format").fill_null("print") == "print")
