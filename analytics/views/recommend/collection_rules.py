"""The rules of the print collection and acquisitions: withdraw, retain, add copies, acquire
what peers teach and what is trending. One function per recommendation type."""

from __future__ import annotations

from datetime import date

import polars as pl

from analytics.control.recommend_catalog import MAX_PER_TYPE
from analytics.ingest.local import table_path

from analytics.views import deselection
from analytics.views.recommend.context import (
    COPIES_MIN_LOANS, COPIES_MIN_RATIO, IDLE_YEARS, PART, RETAIN_MIN_WORKS, STRONGEST_SUBJECTS,
    TEACHING_MIN_INSTITUTIONS, TRENDING_MIN_SCORE, TRENDING_WINDOW, WITHDRAW_MIN_ITEMS, Candidate, Context,
    best_first, evidence_item, held_by_us, held_print, subject_label)


def withdraw_min_holders(ctx: Context) -> int:
    """"Many" institutions: 10, or half of the region's contributors when it has fewer than 20,
    never fewer than K_TITLE (smaller counts are not released)."""
    return deselection.many_holders(ctx.release.manifest, PART, ctx.region)


def _largest_groups(frame: pl.DataFrame, size: pl.Expr, minimum: int) -> list[tuple[str, pl.DataFrame]]:
    """The subclasses of `frame` whose size (an aggregate: items, works) is at least `minimum`, the
    MAX_PER_TYPE largest (ties by subclass), with their rows: the ones best_first keeps when a
    candidate's score is that size. Candidates are built for these only, not for every subclass."""
    sizes = (frame.group_by("lc_subclass").agg(size.alias("size")).filter(pl.col("size") >= minimum)
             .sort(["size", "lc_subclass"], descending=[True, False]).head(MAX_PER_TYPE))
    groups = frame.filter(pl.col("lc_subclass").is_in(sizes["lc_subclass"].implode())).partition_by(
        "lc_subclass", as_dict=True)
    return [(subclass, groups[(subclass,)]) for subclass in sizes["lc_subclass"]]


def withdraw(ctx: Context) -> list[Candidate]:
    cutoff = date(ctx.as_of.year - IDLE_YEARS, ctx.as_of.month, 1)
    minimum = withdraw_min_holders(ctx)
    idle = held_print(ctx).filter(
        deselection.idle_since(cutoff) & ~pl.col("committed")  # never what you committed to retain
        & (pl.col("institutions_holding").fill_null(0) >= minimum)
        & pl.col("lc_subclass").is_not_null())
    out = []
    for subclass, group in _largest_groups(idle, pl.len(), WITHDRAW_MIN_ITEMS):
        never = group.filter(pl.col("uses") == 0).height
        oldest = group["last_use"].drop_nulls().min()
        label = subject_label(subclass)
        out.append(Candidate(
            "withdraw", subclass, label,
            f"Withdraw {group.height:,} print items in {label}: no loan for {IDLE_YEARS} years, and at least "
            f"{int(group['institutions_holding'].min())} institutions of {ctx.region_words} hold each.",
            [evidence_item("Print items with no loan in 10 years", group.height, "yours"),
             evidence_item("of which never borrowed", never, "yours"),
             evidence_item("Oldest last loan", oldest.isoformat() if oldest else "never", "yours"),
             evidence_item(f"Median institutions of {ctx.region_words} holding them", float(group["institutions_holding"].median()),
                 "community"),
             evidence_item(f"Fewest institutions of {ctx.region_words} holding one", int(group["institutions_holding"].min()),
                 "community")],
            f"{group.height:,} items of shelf space freed", float(group.height), float(group.height),
            {"items": group.height},
            group.sort("institutions_holding", "title", descending=[True, False]).select(
                "item_id", "title", "author", "isbn", "call_number", "pub_year", "uses", "last_use",
                "institutions_holding"),
            {"page": "pages/deselection.py", "label": "Open Deselection and retention",
             "hint": f"no loans for {IDLE_YEARS} years, held by at least {minimum}"},
        ))
    return best_first(out)


def retain(ctx: Context) -> list[Candidate]:
    cutoff = date(ctx.as_of.year - IDLE_YEARS, ctx.as_of.month, 1)
    scarce = held_print(ctx).filter(pl.col("institutions_holding").is_null() & pl.col("lc_subclass").is_not_null())
    # Works you already committed to retain are protected: the recommendation is about the others.
    already = dict(scarce.filter(pl.col("committed")).group_by("lc_subclass")
                   .agg(pl.col("work_key").n_unique()).iter_rows())
    scarce = scarce.filter(~pl.col("committed"))
    out = []
    for subclass, group in _largest_groups(scarce, pl.col("work_key").n_unique(), RETAIN_MIN_WORKS):
        works = group["work_key"].n_unique()
        used = group.filter(pl.col("last_use") >= cutoff)["work_key"].n_unique()
        label = subject_label(subclass)
        out.append(Candidate(
            "retain", subclass, label,
            f"Retain {works:,} scarce works in {label}: at most {ctx.k_title - 1} institutions of {ctx.region_words} "
            f"hold them.",
            [evidence_item(f"Works at most {ctx.k_title - 1} institutions of {ctx.region_words} hold", works, "community"),
             evidence_item("Your items of these works", group.height, "yours"),
             evidence_item("Works used in the last 10 years", used, "yours"),
             evidence_item("Scarce works you already committed to retain (not counted)",
                           already.get(subclass, 0), "yours")],
            f"{works:,} scarce works protected", float(works), float(works), {"works": works},
            group.sort("title", "item_id").select("item_id", "title", "author", "isbn", "call_number", "pub_year",
                                                  "uses", "last_use"),
            {"page": "pages/deselection.py", "label": "Open Deselection and retention", "hint": "retention list"},
        ))
    return best_first(out)


def add_copies(ctx: Context) -> list[Candidate]:
    held = held_print(ctx).filter(pl.col("community_key").is_not_null())
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
            f"Add {what} of “{row['title']}”: {row['per_copy']:,.1f} loans per copy in 12 months, "
            f"{ratio:.1f} times the peer median.",
            [evidence_item("Your print copies", row["copies"], "yours"),
             evidence_item("Your loans in the last 12 months", row["loans"], "yours"),
             evidence_item("Your loans per copy", float(row["per_copy"]), "yours"),
             evidence_item(f"Median loans per copy at the {row['holders']} institutions of {ctx.region_words} holding it",
                 float(row["median_loans_per_copy"]), "community"),
             evidence_item("Peers hold an e-version you lack", "yes" if e_exists else "no", "community")],
            f"about {gained:,.0f} loans a year for one more copy or an e-version", float(gained), float(ratio),
            {"per_copy": float(row["per_copy"]), "copies": int(row["copies"])},
            pl.DataFrame([{"title": row["title"], "author": row["author"], "isbn": row["isbn"],
                           "copies": row["copies"], "loans_12m": row["loans"],
                           "loans_per_copy": round(row["per_copy"], 2),
                           "peer_median_loans_per_copy": row["median_loans_per_copy"]}]),
        ))
    return best_first(out)


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
    rows = (rows.filter(~held_by_us(ctx, rows))
            .sort(["institutions_listing", "institutions_holding", "work_key"], descending=[True, True, False],
                  nulls_last=True).head(MAX_PER_TYPE))
    out = []
    for row in rows.iter_rows(named=True):
        label = subject_label(row["lc_subclass"])
        out.append(Candidate(
            "acquire_teaching", row["work_key"], row["title"] or row["work_key"],
            f"Acquire “{row['title']}”: on the reading lists of {row['institutions_listing']} institutions of "
            f"{ctx.region_words}, in {label}, where your courses cite {row['citations']} works.",
            [evidence_item(f"Institutions of {ctx.region_words} listing it (this year or last)", row["institutions_listing"],
                 "community"),
             evidence_item(f"Institutions of {ctx.region_words} holding it", row["institutions_holding"] or "fewer than 3",
                 "community"),
             evidence_item(f"Your reading-list citations in {row['lc_subclass']}", row["citations"], "yours"),
             evidence_item("You hold it", "no, in no edition", "yours")],
            f"used in teaching at {row['institutions_listing']} peers; supports your {row['citations']} citations "
            f"in {row['lc_subclass']}", float(row["institutions_listing"]),
            float(row["institutions_listing"]) + (row["institutions_holding"] or 0) / 1000,
            {"listing": int(row["institutions_listing"])},
            pl.DataFrame([{"title": row["title"], "author": row["author"], "isbns": "; ".join(row["isbns"] or []),
                           "subject": label, "institutions_listing": row["institutions_listing"]}]),
            {"page": "pages/selection.py", "label": "Open Selection", "hint": "peer group all"},
        ))
    return best_first(out)


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
    rows = (rows.filter(~held_by_us(ctx, rows)).sort(["score", "work_key"], descending=[True, False])
            .head(MAX_PER_TYPE))
    out = []
    for row in rows.iter_rows(named=True):
        rank = strongest.index(row["lc_subclass"]) + 1
        holders = row["institutions_holding"]
        per_holder = row["loans_recent"] / holders if holders else None
        label = subject_label(row["lc_subclass"])
        out.append(Candidate(
            "acquire_trending", row["work_key"], row["title"] or row["work_key"],
            f"Acquire “{row['title']}”: rising in {ctx.region_words} (signal {row['baseline']:,.0f} → {row['recent']:,.0f} "
            f"over {TRENDING_WINDOW} months) in {label}, your number {rank} subject by loans.",
            [evidence_item("Trend score (ln of recent / earlier, smoothed)", float(row["score"]), "community"),
             evidence_item(f"Signal in the last {TRENDING_WINDOW} months", float(row["recent"]), "community"),
             evidence_item(f"Signal in the {TRENDING_WINDOW} months before", float(row["baseline"]), "community"),
             evidence_item(f"Loans in the region in the last {TRENDING_WINDOW} months", row["loans_recent"], "community"),
             evidence_item(f"Institutions of {ctx.region_words} holding it", holders or "fewer than 3", "community"),
             evidence_item("Rank of the subject among your loans", rank, "yours")],
            (f"about {per_holder:.0f} loans per holding institution in {TRENDING_WINDOW} months" if per_holder
             is not None else "new in the region: too few holders to estimate its use per copy"),
            float(per_holder or 0.0), float(row["score"]), {"score": float(row["score"])},
            pl.DataFrame([{"title": row["title"], "author": row["author"], "isbns": "; ".join(row["isbns"] or []),
                           "subject": label, "score": round(row["score"], 3)}]),
            {"page": "pages/trending.py", "label": "Open Trending titles", "hint": f"subclass {row['lc_subclass']}"},
        ))
    return best_first(out)
