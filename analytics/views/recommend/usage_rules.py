"""The rules of e-resources, usage data, subject balance and data quality. One function per
recommendation type."""

from __future__ import annotations

import math
from datetime import date

import polars as pl

from analytics.control.recommend_catalog import MAX_PER_TYPE
from analytics.views import deselection
from analytics.views import subject_overview
from analytics.views.recommend.context import (
    BALANCE_MIN_ITEMS, BALANCE_MIN_LOANS, BALANCE_RATIO, DUPLICATION_IDLE_YEARS, DUPLICATION_MIN_REQUESTS,
    E_REVIEW_MIN_TITLES, LOAD_USAGE_MIN_TITLES, NO_SUBJECT, QUALITY_MIN_ITEMS, QUALITY_MIN_SHARE, TRENDING_WINDOW,
    Candidate, Context, best_first, evidence_item, subject_label)


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
    used_in_region = pl.Series("community_key", sorted(region_used), dtype=pl.String).implode()
    # Candidates only for the subjects best_first keeps: the MAX_PER_TYPE with the most unused titles.
    kept = (e.group_by("subject_key").agg((~pl.col("used")).sum().alias("unused"))
            .filter(pl.col("unused") >= E_REVIEW_MIN_TITLES)
            .with_columns(pl.col("subject_key").fill_null(NO_SUBJECT).alias("target"))
            .sort(["unused", "target"], descending=[True, False]).head(MAX_PER_TYPE))
    out = []
    for subject in kept["subject_key"]:
        group = e.filter(pl.col("subject_key").eq_missing(subject))
        unused = group.filter(~pl.col("used"))
        used_elsewhere = unused.filter(pl.col("community_key").is_in(used_in_region)).height
        label = subject_label(subject)
        target = subject or NO_SUBJECT
        out.append(Candidate(
            "review_e_titles", target, label,
            f"Review {unused.height:,} e-titles in {label} with no COUNTER use in your data for 12 months.",
            [evidence_item("Your e-titles in the subject", group.height, "yours"),
             evidence_item("with no use in the last 12 months", unused.height, "yours"),
             evidence_item("Share unused", f"{unused.height / group.height:.0%}", "yours"),
             evidence_item(f"of these, used at institutions of {ctx.region_words}", used_elsewhere, "community")],
            f"{unused.height:,} e-titles to review at renewal", float(unused.height), float(unused.height),
            {"unused": unused.height},
            unused.sort("title").select("item_id", "title", "author", "isbn", "pub_year"),
        ))
    return best_first(out)


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
            f"{row['loading']} of the {row['holding']} institutions of {ctx.region_words} holding it load usage.",
            [evidence_item("Your e-titles the community reports on the platform", row["titles"], "yours"),
             evidence_item("Your usage loaded for it in the last 12 months", "none", "yours"),
             evidence_item(f"Institutions of {ctx.region_words} holding e-titles on it", row["holding"], "community"),
             evidence_item("of which load usage for it", row["loading"], "community")],
            f"use of {row['titles']:,} e-titles becomes visible", float(row["titles"]), float(row["titles"]),
            {"titles": int(row["titles"])},
            link={"page": "pages/my_data.py", "label": "Open My data", "hint": "import the COUNTER title report"},
        ))
    return best_first(out)


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
            f"“{title}”: {copies:,} print {'copy' if copies == 1 else 'copies'} unused for "
            f"{DUPLICATION_IDLE_YEARS} years while the e-version had {row['requests']:,} requests in 12 months.",
            [evidence_item("Your print copies", copies, "yours"),
             evidence_item("Last print loan", last.isoformat() if last else "never", "yours"),
             evidence_item("E-version requests in the last 12 months (COUNTER Total_Item_Requests)", int(row["requests"]),
                 "yours")],
            f"{copies:,} {'item' if copies == 1 else 'items'} of shelf space freed", float(copies),
            float(row["requests"]), {"print_copies": copies},
            print_items.filter(pl.col("work_key") == row["work_key"]).select(
                "item_id", "title", "author", "isbn", "call_number", "uses", "last_use"),
        ))
    return best_first(out)


def subject_balance(ctx: Context) -> list[Candidate]:
    own = (ctx.items.filter(pl.col("lc_class").is_not_null()).group_by("lc_class", "lc_subclass")
           .agg(pl.len().cast(pl.Int64).alias("own_holdings"), pl.col("loans_12m").sum().cast(pl.Int64)
                .alias("own_loans")))
    overview = subject_overview.subject_overview(ctx.actor, ctx.release, ctx.data_dir, ctx.code, ctx.region, TRENDING_WINDOW,
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
        label = subject_label(row["lc_subclass"])
        direction = "under-invested" if under else "over-invested"
        out.append(Candidate(
            "subject_balance", row["lc_subclass"], label,
            f"{label} looks {direction}: your relative use is {row['own_relative_use']:.2f}, the region's "
            f"{row['community_relative_use']:.2f} ({ratio:.1f} times).",
            [evidence_item("Your items in the subject", int(row["own_holdings"]), "yours"),
             evidence_item("Your share of holdings", f"{row['own_holdings_share']:.2%}", "yours"),
             evidence_item("Your share of loans (12 months)", f"{row['own_loans_share']:.2%}", "yours"),
             evidence_item("Your relative use", float(row["own_relative_use"]), "yours"),
             evidence_item(f"Relative use in {ctx.region_words}", float(row["community_relative_use"]), "community")],
            (f"{int(row['own_holdings']):,} items circulating {ratio:.1f} times as intensively as in the region"
             if under else f"{int(row['own_holdings']):,} items circulating at {ratio:.0%} of the region's "
                           f"intensity"),
            float(row["own_holdings"]), abs(math.log(ratio)), {"direction": direction, "ratio": round(ratio, 3)},
            link={"page": "pages/subjects.py", "label": "Open Subjects", "hint": f"subclass {row['lc_subclass']}"},
        ))
    return best_first(out)


def data_quality(ctx: Context) -> list[Candidate]:
    items = ctx.items
    if items.height == 0:
        return []
    problems = {
        "no_identifiers": ("no ISBN, ISSN or OCLC number",
                           "the community matches them by title and author only, or not at all",
                           pl.col("match_method").is_in(["fingerprint", "unmatched"])),
        "call_numbers": ("a call number that is not an LC call number",
                         "they cannot be placed in a subject",
                         pl.col("call_number").is_not_null() & pl.col("lc_class").is_null()),
    }
    out = []
    for target, (what, consequence, condition) in problems.items():
        affected = items.filter(condition)
        share = affected.height / items.height
        if affected.height < QUALITY_MIN_ITEMS or share < QUALITY_MIN_SHARE:
            continue
        out.append(Candidate(
            "data_quality", target, what[0].upper() + what[1:],
            f"{affected.height:,} held items ({share:.1%}) have {what}: {consequence}.",
            [evidence_item("Held items affected", affected.height, "yours"), evidence_item("Share of your held items", f"{share:.1%}",
                                                                       "yours")],
            f"{affected.height:,} items become visible to every other recommendation", float(affected.height),
            float(affected.height), {"items": affected.height},
            affected.sort("title").select("item_id", "title", "author", "isbn", "call_number"),
            {"page": "pages/my_data.py", "label": "Open My data", "hint": "records without identifiers or LC call numbers"},
        ))
    return best_first(out)
