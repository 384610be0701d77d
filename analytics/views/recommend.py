"""Recommendations (DARA-style): rules over the community release and the institution's own data.

The catalog (recommend_catalog.py) says what each type is; this module computes them.
Community evidence comes only from the ``recommendations/`` part of the current release,
which is built from the institutions that share for recommendations; an institution
receives recommendations only while its own recommendations sharing is in effect
(reciprocity, DOMAIN.md). Own evidence comes from the institution's local store.

generate() computes the candidates of every type (at most MAX_PER_TYPE each, best first)
with their evidence, impact and a downloadable list. sync() records them in the control
database once per release: new targets are offered, open ones get the latest evidence,
ones no longer true expire, and dismissed or implemented ones come back only when the
evidence changed materially (``material_change``; the catalog states the rule per type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from analytics.core import access, months
from analytics.views import deselection
from analytics.ingest import subjects
from analytics.views import trends
from analytics.core.access import Principal
from analytics.ingest.local import table_path
from analytics.control.recommend_catalog import CATALOG, MAX_PER_TYPE
from analytics.release.handle import Release, open_release
from analytics.release.manifest import read_manifest, release_path
from analytics.control.store import Store

PART = "recommendations"
PART_TABLES = ("titles", "holdings", "peer_selection", "monthly_signal", "trend_rows", "work_use", "platforms",
               "platform_titles")
IDLE_YEARS = 10
WITHDRAW_MIN_HOLDERS = 10
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
                                     "loans_12m": pl.Int64, "match_method": pl.String})
    else:
        window = (date.fromisoformat(f"{last12_start}-01"), date(as_of.year, as_of.month, 1))
        items = deselection.own_items(actor, data_dir, code, loans_between=window)
        items = subjects.classify_frame(items, "call_number").drop("subject")
        holders = deselection.community_holders(release, items, region)
        items = items.join(holders, on="item_id", how="left").with_columns(
            pl.col("loans_window").fill_null(0).alias("loans_12m")).drop("loans_window")
    keys = items["work_key"].drop_nulls().unique()
    isbns = items["isbn"].drop_nulls().str.split(";").explode().drop_nulls().unique()
    usage = _own_usage(data_dir, code, last12_start, last_complete)
    return Context(code, region, as_of, last_complete, last12_start, k_title, release, items, keys, isbns, usage,
                   usage.height > 0, data_dir, actor)


def _subject_label(subclass: str | None) -> str:
    if not subclass:
        return NO_SUBJECT
    captions = subjects.outline().filter(pl.col("lc_subclass") == subclass)
    caption = captions["lc_subclass_caption"].drop_nulls().first() if captions.height else None
    return f"{subclass} — {caption}" if caption else subclass


def _held_by_us(ctx: Context, frame: pl.DataFrame) -> pl.Series:
    """Whether each work of `frame` (work_key, isbns) is held by the institution in any edition."""
    rows = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), "work_key", "isbns")
    by_isbn = rows.explode("isbns").join(ctx.own_isbns.to_frame("isbns"), on="isbns", how="semi")["row"]
    by_key = rows.join(ctx.own_keys.to_frame("work_key"), on="work_key", how="semi")["row"]
    return rows["row"].is_in(pl.concat([by_isbn, by_key]).unique().implode())


def _top(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (-c.score, c.target))[:MAX_PER_TYPE]


def _n(value) -> int:
    return int(value or 0)


def _ev(label: str, value, source: str) -> dict:
    if isinstance(value, float):
        value = round(value, 2)
    return {"label": label, "value": value, "source": source}


def _held_print(ctx: Context) -> pl.DataFrame:
    return ctx.items.filter(pl.col("format").fill_null("print") == "print")


# -- the rules, one function per type --------------------------------------------------------

def withdraw_min_holders(ctx: Context) -> int:
    """"Many" institutions: 10, or half of the region's contributors when it has fewer than 20,
    never fewer than K_TITLE (smaller counts are not released)."""
    contributors = ctx.release.manifest.get("contributors", {}).get(PART, {}).get(ctx.region, 0)
    return max(ctx.k_title, min(WITHDRAW_MIN_HOLDERS, math.ceil(contributors / 2)))


def withdraw(ctx: Context) -> list[Candidate]:
    cutoff = date(ctx.as_of.year - IDLE_YEARS, ctx.as_of.month, 1)
    minimum = withdraw_min_holders(ctx)
    idle = _held_print(ctx).filter(
        deselection.idle_since(cutoff)
        & (pl.col("institutions_holding").fill_null(0) >= minimum)
        & pl.col("lc_subclass").is_not_null())
    out = []
    for (subclass,), group in idle.group_by("lc_subclass"):
        if group.height < WITHDRAW_MIN_ITEMS:
            continue
        never = group.filter(pl.col("uses") == 0).height
        oldest = group["last_use"].drop_nulls().min()
        label = _subject_label(subclass)
        out.append(Candidate(
            "withdraw", subclass, label,
            f"Withdraw {group.height:,} print items in {label}: no loan for {IDLE_YEARS} years, and at least "
            f"{int(group['institutions_holding'].min())} institutions of {ctx.region} hold each.",
            [_ev("Print items with no loan in 10 years", group.height, "yours"),
             _ev("of which never borrowed", never, "yours"),
             _ev("Oldest last loan", oldest.isoformat() if oldest else "never", "yours"),
             _ev(f"Median institutions of {ctx.region} holding them", float(group["institutions_holding"].median()),
                 "community"),
             _ev(f"Fewest institutions of {ctx.region} holding one", int(group["institutions_holding"].min()),
                 "community")],
            f"{group.height:,} items of shelf space freed", float(group.height), float(group.height),
            {"items": group.height},
            group.sort("institutions_holding", "title", descending=[True, False]).select(
                "item_id", "title", "author", "isbn", "call_number", "pub_year", "uses", "last_use",
                "institutions_holding"),
            {"page": "pages/deselection.py", "label": "Open Deselection and retention",
             "hint": f"no loans for {IDLE_YEARS} years, held by at least {minimum}"},
        ))
    return _top(out)


def retain(ctx: Context) -> list[Candidate]:
    cutoff = date(ctx.as_of.year - IDLE_YEARS, ctx.as_of.month, 1)
    scarce = _held_print(ctx).filter(pl.col("institutions_holding").is_null() & pl.col("lc_subclass").is_not_null())
    out = []
    for (subclass,), group in scarce.group_by("lc_subclass"):
        works = group["work_key"].n_unique()
        if works < RETAIN_MIN_WORKS:
            continue
        used = group.filter(pl.col("last_use") >= cutoff)["work_key"].n_unique()
        label = _subject_label(subclass)
        out.append(Candidate(
            "retain", subclass, label,
            f"Retain {works:,} scarce works in {label}: at most two institutions of {ctx.region} hold them.",
            [_ev(f"Works at most two institutions of {ctx.region} hold", works, "community"),
             _ev("Your items of these works", group.height, "yours"),
             _ev("Works used in the last 10 years", used, "yours")],
            f"{works:,} scarce works protected", float(works), float(works), {"works": works},
            group.sort("title", "item_id").select("item_id", "title", "author", "isbn", "call_number", "pub_year",
                                                  "uses", "last_use"),
            {"page": "pages/deselection.py", "label": "Open Deselection and retention", "hint": "retention list"},
        ))
    return _top(out)


def add_copies(ctx: Context) -> list[Candidate]:
    held = _held_print(ctx).filter(pl.col("community_key").is_not_null())
    per_work = held.group_by("community_key").agg(
        pl.len().alias("copies"), pl.col("loans_12m").sum().alias("loans"), pl.col("title").first(),
        pl.col("author").first(), pl.col("isbn").drop_nulls().first(), pl.col("lc_subclass").first())
    per_work = per_work.filter(pl.col("loans") >= COPIES_MIN_LOANS)
    if per_work.height == 0:
        return []
    cur = ctx.release.cursor()
    cur.register("own_works", per_work.select("community_key"))
    peers = cur.sql(
        "SELECT u.work_key AS community_key, u.holders, u.median_loans_per_copy, t.format AS community_format "
        "FROM work_use u JOIN titles t ON u.work_key = t.work_key "
        "WHERE u.region = $region AND u.work_key IN (SELECT community_key FROM own_works)",
        params={"region": ctx.region}).pl()
    own_e = set(ctx.items.filter(pl.col("format") == "electronic")["community_key"].drop_nulls().to_list())
    joined = (per_work.join(peers, on="community_key")
              .with_columns((pl.col("loans") / pl.col("copies")).alias("per_copy"))
              # A peer median below one loan per copy is taken as one: "far above" needs real use.
              .with_columns((pl.col("per_copy") / pl.max_horizontal("median_loans_per_copy", pl.lit(1.0)))
                            .alias("ratio"))
              .filter(pl.col("ratio") >= COPIES_MIN_RATIO)
              .sort(["ratio", "community_key"], descending=[True, False]).head(MAX_PER_TYPE))
    out = []
    for row in joined.iter_rows(named=True):
        ratio = row["ratio"]
        e_exists = row["community_format"] in ("electronic", "both") and row["community_key"] not in own_e
        what = "an e-version" if e_exists else "a copy"
        gained = row["loans"] / (row["copies"] + 1)
        out.append(Candidate(
            "add_copies", row["community_key"], row["title"] or row["community_key"],
            f"Add {what} of “{row['title']}”: {row['per_copy']:.1f} loans per copy in 12 months, "
            f"{ratio:.1f} times the peer median.",
            [_ev("Your print copies", row["copies"], "yours"),
             _ev("Your loans in the last 12 months", row["loans"], "yours"),
             _ev("Your loans per copy", float(row["per_copy"]), "yours"),
             _ev(f"Median loans per copy at the {row['holders']} institutions of {ctx.region} holding it",
                 float(row["median_loans_per_copy"]), "community"),
             _ev("Peers hold an e-version you lack", "yes" if e_exists else "no", "community")],
            f"about {gained:.0f} loans a year for one more copy or an e-version", float(gained), float(ratio),
            {"per_copy": float(row["per_copy"]), "copies": int(row["copies"])},
            pl.DataFrame([{"title": row["title"], "author": row["author"], "isbn": row["isbn"],
                           "copies": row["copies"], "loans_12m": row["loans"],
                           "loans_per_copy": round(row["per_copy"], 2),
                           "peer_median_loans_per_copy": row["median_loans_per_copy"]}]),
        ))
    return _top(out)


def _own_list_subjects(ctx: Context) -> pl.DataFrame:
    """LC subclasses the institution's own reading lists cite: lc_subclass, citations."""
    path = table_path(ctx.data_dir, ctx.code, "reading-lists")
    empty = pl.DataFrame(schema={"lc_subclass": pl.String, "citations": pl.UInt32})
    if not path.exists():
        return empty
    lists = pl.read_parquet(path, columns=["work_key", "isbn"])
    exploded = lists.with_row_index("row").with_columns(pl.col("isbn").str.split(";")).explode("isbn")
    cur = ctx.release.cursor()
    cur.register("own_lists", exploded)
    # A citation's subject: the community's description of the work (by ISBN or key), else
    # the call number of the institution's own copy.
    by_community = cur.sql(
        "SELECT DISTINCT o.row, t.lc_subclass FROM own_lists o "
        "JOIN title_isbns i ON o.isbn = i.isbn JOIN titles t ON t.work_key = i.work_key "
        "WHERE t.lc_subclass IS NOT NULL "
        "UNION SELECT DISTINCT o.row, t.lc_subclass FROM own_lists o JOIN titles t ON o.work_key = t.work_key "
        "WHERE t.lc_subclass IS NOT NULL").pl()
    by_own = (lists.with_row_index("row").join(
        ctx.items.select("work_key", "lc_subclass").drop_nulls().unique("work_key"), on="work_key")
        .select(pl.col("row"), pl.col("lc_subclass")))
    return (pl.concat([by_community.select(pl.col("row").cast(pl.UInt32), "lc_subclass"),
                       by_own.select(pl.col("row").cast(pl.UInt32), "lc_subclass")])
            .unique().group_by("lc_subclass").agg(pl.len().alias("citations")))


def acquire_teaching(ctx: Context) -> list[Candidate]:
    taught = _own_list_subjects(ctx)
    if taught.height == 0:
        return []
    cur = ctx.release.cursor()
    rows = cur.sql(
        "SELECT t.work_key, t.title, t.author, t.isbns, t.lc_subclass, t.pub_year, p.institutions_listing, "
        "p.institutions_holding, p.group_size FROM peer_selection p JOIN titles t ON p.work_key = t.work_key "
        "WHERE p.region = $region AND p.peer_group = 'all' AND p.institutions_listing >= $minimum",
        params={"region": ctx.region, "minimum": max(TEACHING_MIN_INSTITUTIONS, ctx.k_title)}).pl()
    rows = rows.join(taught, on="lc_subclass")
    if rows.height == 0:
        return []
    rows = (rows.filter(~_held_by_us(ctx, rows))
            .sort(["institutions_listing", "institutions_holding", "work_key"], descending=[True, True, False],
                  nulls_last=True).head(MAX_PER_TYPE))
    out = []
    for row in rows.iter_rows(named=True):
        label = _subject_label(row["lc_subclass"])
        out.append(Candidate(
            "acquire_teaching", row["work_key"], row["title"] or row["work_key"],
            f"Acquire “{row['title']}”: on the reading lists of {row['institutions_listing']} institutions of "
            f"{ctx.region}, in {label}, where your courses cite {row['citations']} works.",
            [_ev(f"Institutions of {ctx.region} listing it (this year or last)", row["institutions_listing"],
                 "community"),
             _ev(f"Institutions of {ctx.region} holding it", row["institutions_holding"] or "fewer than 3",
                 "community"),
             _ev(f"Your reading-list citations in {row['lc_subclass']}", row["citations"], "yours"),
             _ev("You hold it", "no, in no edition", "yours")],
            f"used in teaching at {row['institutions_listing']} peers; supports your {row['citations']} citations "
            f"in {row['lc_subclass']}", float(row["institutions_listing"]),
            float(row["institutions_listing"]) + (row["institutions_holding"] or 0) / 1000,
            {"listing": int(row["institutions_listing"])},
            pl.DataFrame([{"title": row["title"], "author": row["author"], "isbns": "; ".join(row["isbns"] or []),
                           "subject": label, "institutions_listing": row["institutions_listing"]}]),
            {"page": "pages/selection.py", "label": "Open Selection", "hint": "peer group all"},
        ))
    return _top(out)


def _strongest_subjects(ctx: Context) -> list[str]:
    loans = (ctx.items.filter(pl.col("lc_subclass").is_not_null() & (pl.col("loans_12m") > 0))
             .group_by("lc_subclass").agg(pl.col("loans_12m").sum().alias("loans"))
             .sort(["loans", "lc_subclass"], descending=[True, False]))
    return loans["lc_subclass"].head(STRONGEST_SUBJECTS).to_list()


def acquire_trending(ctx: Context) -> list[Candidate]:
    strongest = _strongest_subjects(ctx)
    if not strongest:
        return []
    cur = ctx.release.cursor()
    rows = cur.sql(
        "SELECT work_key, title, author, isbns, lc_subclass, score, recent, baseline, loans_recent, "
        "institutions_holding FROM trend_rows WHERE region = $region AND window_months = $window "
        "AND score >= $min_score AND list_contains($subjects, lc_subclass)",
        params={"region": ctx.region, "window": TRENDING_WINDOW, "min_score": TRENDING_MIN_SCORE,
                "subjects": strongest}).pl()
    if rows.height == 0:
        return []
    rows = (rows.filter(~_held_by_us(ctx, rows)).sort(["score", "work_key"], descending=[True, False])
            .head(MAX_PER_TYPE))
    out = []
    for row in rows.iter_rows(named=True):
        rank = strongest.index(row["lc_subclass"]) + 1
        holders = row["institutions_holding"]
        per_holder = row["loans_recent"] / holders if holders else None
        label = _subject_label(row["lc_subclass"])
        out.append(Candidate(
            "acquire_trending", row["work_key"], row["title"] or row["work_key"],
            f"Acquire “{row['title']}”: rising in {ctx.region} (signal {row['baseline']:.0f} → {row['recent']:.0f} "
            f"over {TRENDING_WINDOW} months) in {label}, your number {rank} subject by loans.",
            [_ev("Trend score (ln of recent / earlier, smoothed)", float(row["score"]), "community"),
             _ev(f"Signal in the last {TRENDING_WINDOW} months", float(row["recent"]), "community"),
             _ev(f"Signal in the {TRENDING_WINDOW} months before", float(row["baseline"]), "community"),
             _ev(f"Loans in the region in the last {TRENDING_WINDOW} months", row["loans_recent"], "community"),
             _ev(f"Institutions of {ctx.region} holding it", holders or "fewer than 3", "community"),
             _ev("Rank of the subject among your loans", rank, "yours")],
            (f"about {per_holder:.0f} loans per holding institution in {TRENDING_WINDOW} months" if per_holder
             is not None else "new in the region: too few holders to estimate its use per copy"),
            float(per_holder or 0.0), float(row["score"]), {"score": float(row["score"])},
            pl.DataFrame([{"title": row["title"], "author": row["author"], "isbns": "; ".join(row["isbns"] or []),
                           "subject": label, "score": round(row["score"], 3)}]),
            {"page": "pages/trending.py", "label": "Open Trending titles", "hint": f"subclass {row['lc_subclass']}"},
        ))
    return _top(out)


def _used_e(ctx: Context) -> tuple[set[str], set[str]]:
    used = ctx.usage.filter(pl.col("count") > 0)
    keys = set(used["work_key"].drop_nulls().to_list())
    isbns = set(used["isbn"].drop_nulls().str.split(";").explode().drop_nulls().to_list())
    return keys, isbns


def _is_used(frame: pl.DataFrame, keys: set[str], isbns: set[str]) -> pl.Series:
    return pl.Series([
        (k in keys) or any(i in isbns for i in (ib.split(";") if ib else []))
        for k, ib in zip(frame["work_key"].to_list(), frame["isbn"].to_list())
    ], dtype=pl.Boolean)


def _e_titles(ctx: Context) -> pl.DataFrame:
    """Held electronic items, one row per work, with a subject from the call number or the community."""
    e = ctx.items.filter(pl.col("format") == "electronic")
    if e.height == 0:
        return e.with_columns(pl.lit(None, dtype=pl.String).alias("subject_key"))
    cur = ctx.release.cursor()
    cur.register("e_keys", e.select("community_key").drop_nulls().unique())
    community = cur.sql("SELECT work_key AS community_key, lc_subclass AS community_subclass FROM titles "
                        "WHERE work_key IN (SELECT community_key FROM e_keys)").pl()
    return (e.join(community, on="community_key", how="left")
            .with_columns(pl.coalesce("lc_subclass", "community_subclass").alias("subject_key"))
            .unique("work_key", keep="first", maintain_order=True))


def review_e_titles(ctx: Context) -> list[Candidate]:
    if not ctx.loaded_usage:
        return []  # without usage data "no use" cannot be told from "not loaded": see load_usage
    e = _e_titles(ctx)
    if e.height == 0:
        return []
    keys, isbns = _used_e(ctx)
    e = e.with_columns(_is_used(e, keys, isbns).alias("used"))
    cur = ctx.release.cursor()
    cur.register("e_keys", e.select("community_key").drop_nulls().unique())
    region_used = set(cur.sql(
        "SELECT DISTINCT work_key FROM monthly_signal WHERE region = $region AND e_requests > 0 "
        "AND month >= $first AND month <= $last AND work_key IN (SELECT community_key FROM e_keys)",
        params={"region": ctx.region, "first": ctx.last12_start, "last": ctx.last_complete}).pl()["work_key"])
    out = []
    for (subject,), group in e.group_by("subject_key"):
        unused = group.filter(~pl.col("used"))
        if unused.height < E_REVIEW_MIN_TITLES:
            continue
        used_elsewhere = unused.filter(pl.col("community_key").is_in(list(region_used))).height
        label = _subject_label(subject)
        target = subject or NO_SUBJECT
        out.append(Candidate(
            "review_e_titles", target, label,
            f"Review {unused.height:,} e-titles in {label} with no COUNTER use in your data for 12 months.",
            [_ev("Your e-titles in the subject", group.height, "yours"),
             _ev("with no use in the last 12 months", unused.height, "yours"),
             _ev("Share unused", f"{unused.height / group.height:.0%}", "yours"),
             _ev(f"of these, used at institutions of {ctx.region}", used_elsewhere, "community")],
            f"{unused.height:,} e-titles to review at renewal", float(unused.height), float(unused.height),
            {"unused": unused.height},
            unused.sort("title").select("item_id", "title", "author", "isbn", "pub_year"),
        ))
    return _top(out)


def _norm_platform(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.to_lowercase()


def load_usage(ctx: Context) -> list[Candidate]:
    e = ctx.items.filter((pl.col("format") == "electronic") & pl.col("community_key").is_not_null())
    if e.height == 0:
        return []
    cur = ctx.release.cursor()
    cur.register("e_keys", e.select("community_key").unique())
    on_platform = cur.sql(
        "SELECT t.platform, count(DISTINCT t.work_key) AS titles, any_value(p.institutions_holding) AS holding, "
        "any_value(p.institutions_loading) AS loading "
        "FROM platform_titles t JOIN platforms p ON t.region = p.region AND t.platform = p.platform "
        "WHERE t.region = $region AND t.work_key IN (SELECT community_key FROM e_keys) GROUP BY t.platform",
        params={"region": ctx.region}).pl()
    loaded = set(ctx.usage.select(_norm_platform(pl.col("platform"))).to_series().drop_nulls().to_list())
    out = []
    for row in on_platform.iter_rows(named=True):
        if row["titles"] < LOAD_USAGE_MIN_TITLES or row["platform"].strip().lower() in loaded:
            continue
        if row["loading"] is None or row["loading"] * 2 <= row["holding"]:
            continue
        out.append(Candidate(
            "load_usage", row["platform"], row["platform"],
            f"Load COUNTER usage for {row['platform']}: {row['titles']:,} of your e-titles are on it, and "
            f"{row['loading']} of the {row['holding']} institutions of {ctx.region} holding it load usage.",
            [_ev("Your e-titles the community reports on the platform", row["titles"], "yours"),
             _ev("Your usage loaded for it in the last 12 months", "none", "yours"),
             _ev(f"Institutions of {ctx.region} holding e-titles on it", row["holding"], "community"),
             _ev("of which load usage for it", row["loading"], "community")],
            f"use of {row['titles']:,} e-titles becomes visible", float(row["titles"]), float(row["titles"]),
            {"titles": int(row["titles"])},
            link={"page": "pages/my_data.py", "label": "Open My data", "hint": "import the COUNTER title report"},
        ))
    return _top(out)


def print_e_duplication(ctx: Context) -> list[Candidate]:
    cutoff = date(ctx.as_of.year - DUPLICATION_IDLE_YEARS, ctx.as_of.month, 1)
    items = ctx.items.filter(pl.col("work_key").is_not_null())
    e = items.filter(pl.col("format") == "electronic")
    if e.height == 0 or ctx.usage.height == 0:
        return []
    # E-requests per work: by the usage row's work key, else by any ISBN of the e-version.
    by_key = ctx.usage.group_by("work_key").agg(pl.col("count").sum().alias("by_key")).drop_nulls("work_key")
    by_isbn = (ctx.usage.with_columns(pl.col("isbn").str.split(";")).explode("isbn").drop_nulls("isbn")
               .group_by("isbn").agg(pl.col("count").sum().alias("by_isbn")))
    e_isbns = (e.select("work_key", pl.col("isbn").str.split(";")).explode("isbn")
               .join(by_isbn, on="isbn").group_by("work_key").agg(pl.col("by_isbn").max()))
    requests = (e.select("work_key").unique().join(by_key, on="work_key", how="left")
                .join(e_isbns, on="work_key", how="left")
                .select("work_key", pl.when(pl.col("by_key") > 0).then("by_key").otherwise("by_isbn")
                        .fill_null(0).alias("requests"))
                .filter(pl.col("requests") >= DUPLICATION_MIN_REQUESTS))
    print_items = items.filter(pl.col("format").fill_null("print") == "print").join(requests, on="work_key")
    works = (print_items.group_by("work_key")
             .agg(pl.len().alias("copies"), deselection.idle_since(cutoff).all().alias("idle"),
                  pl.col("last_use").max(), pl.col("title").first(), pl.col("requests").first())
             .filter(pl.col("idle"))
             .sort(["requests", "work_key"], descending=[True, False]).head(MAX_PER_TYPE))
    out = []
    for row in works.iter_rows(named=True):
        copies, last, title = row["copies"], row["last_use"], row["title"]
        out.append(Candidate(
            "print_e_duplication", row["work_key"], title or row["work_key"],
            f"“{title}”: {copies} print {'copy' if copies == 1 else 'copies'} unused for "
            f"{DUPLICATION_IDLE_YEARS} years while the e-version had {row['requests']} requests in 12 months.",
            [_ev("Your print copies", copies, "yours"),
             _ev("Last print loan", last.isoformat() if last else "never", "yours"),
             _ev("E-version requests in the last 12 months (COUNTER Total_Item_Requests)", int(row["requests"]),
                 "yours")],
            f"{copies} {'item' if copies == 1 else 'items'} of shelf space freed", float(copies),
            float(row["requests"]), {"print_copies": copies},
            print_items.filter(pl.col("work_key") == row["work_key"]).select(
                "item_id", "title", "author", "isbn", "call_number", "uses", "last_use"),
        ))
    return _top(out)


def subject_balance(ctx: Context) -> list[Candidate]:
    own = (ctx.items.filter(pl.col("lc_class").is_not_null()).group_by("lc_class", "lc_subclass")
           .agg(pl.len().cast(pl.Int64).alias("own_holdings"), pl.col("loans_12m").sum().cast(pl.Int64)
                .alias("own_loans")))
    overview = trends.subject_overview(ctx.actor, ctx.release, ctx.data_dir, ctx.code, ctx.region, TRENDING_WINDOW,
                                       own=own)
    rows = overview.filter(
        (pl.col("own_holdings") >= BALANCE_MIN_ITEMS) & (pl.col("own_loans") >= BALANCE_MIN_LOANS)
        & (pl.col("community_relative_use") > 0) & pl.col("own_relative_use").is_not_null()
        & pl.col("lc_subclass").is_not_null())
    out = []
    for row in rows.iter_rows(named=True):
        ratio = row["own_relative_use"] / row["community_relative_use"]
        if 1 / BALANCE_RATIO < ratio < BALANCE_RATIO:
            continue
        under = ratio >= BALANCE_RATIO
        label = _subject_label(row["lc_subclass"])
        direction = "under-invested" if under else "over-invested"
        out.append(Candidate(
            "subject_balance", row["lc_subclass"], label,
            f"{label} looks {direction}: your relative use is {row['own_relative_use']:.2f}, the region's "
            f"{row['community_relative_use']:.2f} ({ratio:.1f} times).",
            [_ev("Your items in the subject", int(row["own_holdings"]), "yours"),
             _ev("Your share of holdings", f"{row['own_holdings_share']:.2%}", "yours"),
             _ev("Your share of loans (12 months)", f"{row['own_loans_share']:.2%}", "yours"),
             _ev("Your relative use", float(row["own_relative_use"]), "yours"),
             _ev(f"Relative use in {ctx.region}", float(row["community_relative_use"]), "community")],
            (f"{int(row['own_holdings']):,} items circulating {ratio:.1f} times as intensively as in the region"
             if under else f"{int(row['own_holdings']):,} items circulating at {ratio:.0%} of the region's "
                           f"intensity"),
            float(row["own_holdings"]), abs(math.log(ratio)), {"direction": direction, "ratio": round(ratio, 3)},
            link={"page": "pages/subjects.py", "label": "Open Subjects", "hint": f"subclass {row['lc_subclass']}"},
        ))
    return _top(out)


def data_quality(ctx: Context) -> list[Candidate]:
    items = ctx.items
    if items.height == 0:
        return []
    problems = {
        "no_identifiers": ("no ISBN, ISSN or OCLC number",
                           pl.col("match_method").is_in(["fingerprint", "unmatched"])),
        "call_numbers": ("a call number that is not an LC call number",
                         pl.col("call_number").is_not_null() & pl.col("lc_class").is_null()),
    }
    out = []
    for target, (what, condition) in problems.items():
        affected = items.filter(condition)
        share = affected.height / items.height
        if affected.height < QUALITY_MIN_ITEMS or share < QUALITY_MIN_SHARE:
            continue
        out.append(Candidate(
            "data_quality", target, what[0].upper() + what[1:],
            f"{affected.height:,} held items ({share:.1%}) have {what}: the community cannot match or place them.",
            [_ev("Held items affected", affected.height, "yours"), _ev("Share of your held items", f"{share:.1%}",
                                                                       "yours")],
            f"{affected.height:,} items become visible to every other recommendation", float(affected.height),
            float(affected.height), {"items": affected.height},
            affected.sort("title").select("item_id", "title", "author", "isbn", "call_number"),
            {"page": "pages/my_data.py", "label": "Open My data", "hint": "records that cannot be matched"},
        ))
    return _top(out)


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
