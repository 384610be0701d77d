"""Deselection and retention: the institution's own items against community holdings.

Withdrawal candidates are the institution's print items (not withdrawn) with no loan in the
last N years (or never, and added before then), published before year Y, whose work at least M institutions of
the region hold in the current release. Retention candidates are scarce works: works the
institution holds that at most K_TITLE - 1 institutions of the region hold. The release
withholds every holding count below its K_TITLE (the manifest's), so a work absent from the
current holdings snapshot is held by K_TITLE - 1 institutions at most. M is never below
K_TITLE, so a scarce work is never a withdrawal candidate, whatever M is set to.

Own items are matched to community works by any shared ISBN (so a print copy finds the
work the community knows by its e-book) or else by work key.

Retention commitments (shared print): an item whose work the institution itself committed to
retain (a current commitment in its retention_commitments table, matched by work key or a shared
ISBN) is never a withdrawal candidate; how many were left out is returned. Both lists carry
"retained_in_region": the committing institutions of the region and their programs as the
release's retention table gives them, or "fewer than K" (none, or too few to release): works
others retain are safer to withdraw, scarce works nobody retains are the ones to keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from analytics.core import access
from analytics.core.access import Principal
from analytics.ingest.local import table_path
from analytics.release.handle import Release
from analytics.views.collection import FilterError


@dataclass(frozen=True)
class DeselectionRules:
    region: str
    no_loans_years: int = 10
    published_before: int | None = None
    min_holders: int = 10
    limit: int = 500

    def validated(self, k_title: int) -> "DeselectionRules":
        if not 1 <= self.no_loans_years <= 50:
            raise FilterError(f"no loans for {self.no_loans_years} years: choose 1 to 50 years.")
        if self.published_before is not None and not 1000 <= self.published_before <= 2100:
            raise FilterError(f"published before {self.published_before}: give a year between 1000 and 2100.")
        if not 1 <= self.min_holders <= 10_000:
            raise FilterError(f"held by at least {self.min_holders}: choose 1 to 10,000 institutions.")
        if not 1 <= self.limit <= 100_000:
            raise FilterError(f"limit {self.limit}: choose 1 to 100,000.")
        # Counts below K_TITLE are never released, so a smaller minimum could not be checked.
        return DeselectionRules(self.region, self.no_loans_years, self.published_before,
                                max(self.min_holders, k_title), self.limit)


def own_items(actor: Principal, data_dir: Path, code: str,
              loans_between: tuple[date, date] | None = None) -> pl.DataFrame:
    """Held items with their last use: the later of last_loan_date and the latest loan event.
    Only the institution's own users (or the system job) may read them.

    With `loans_between` (first day, day after the last) also `loans_window`: the loans of
    each item in that period, counted in the same pass over the loan events."""
    wanted = {"item_id": pl.String, "title": pl.String, "author": pl.String, "isbn": pl.String,
              "call_number": pl.String, "pub_year": pl.Int64, "format": pl.String, "acquired_date": pl.Date, "withdrawn_date": pl.Date,
              "lifetime_loans": pl.Int64, "last_loan_date": pl.Date, "work_key": pl.String,
              "match_method": pl.String}
    access.require_member(actor, code, "the local items")
    path = table_path(data_dir, code, "items")
    present = pl.read_parquet_schema(path)
    # Other tools may write the local store without the optional columns (docs/data-contract.md §3).
    items = pl.read_parquet(path, columns=[c for c in wanted if c in present]).with_columns(
        pl.lit(None, dtype=dtype).alias(column) for column, dtype in wanted.items() if column not in present)
    items = items.filter(pl.col("withdrawn_date").is_null()).drop("withdrawn_date")
    loans_path = table_path(data_dir, code, "loans")
    if loans_path.exists():
        window = []
        if loans_between:
            first, end = loans_between
            in_window = (pl.col("loan_date") >= first) & (pl.col("loan_date") < end)
            window = [pl.col("count").filter(in_window).sum().cast(pl.Int64).alias("loans_window")]
        events = (pl.scan_parquet(loans_path).group_by("item_id")
                  .agg(pl.col("loan_date").max().alias("last_event"), pl.col("count").sum().alias("event_loans"),
                       *window)
                  .collect())
        items = items.join(events, on="item_id", how="left")
    else:
        items = items.with_columns(pl.lit(None, dtype=pl.Date).alias("last_event"),
                                   pl.lit(None, dtype=pl.Int64).alias("event_loans"))
        if loans_between:
            items = items.with_columns(pl.lit(None, dtype=pl.Int64).alias("loans_window"))
    return items.with_columns(
        pl.max_horizontal("last_loan_date", "last_event").alias("last_use"),
        pl.max_horizontal(pl.col("lifetime_loans").fill_null(0), pl.col("event_loans").fill_null(0)).alias("uses"),
    ).drop("last_event", "event_loans")


def idle_since(cutoff: date) -> pl.Expr:
    """No use since `cutoff`: last used before it, or never used and on the shelf since before it
    (a copy added last year that nobody borrowed yet is not idle for ten years)."""
    return (pl.col("last_use") < cutoff) | (
        pl.col("last_use").is_null() & (pl.col("acquired_date").is_null() | (pl.col("acquired_date") < cutoff)))


def community_holders(release: Release, items: pl.DataFrame, region: str) -> pl.DataFrame:
    """item_id -> community work key and institutions holding it now (null: fewer than K_TITLE)."""
    cur = release.cursor()
    exploded = (items.select("item_id", "work_key", pl.col("isbn").str.split(";").alias("isbn"))
                .explode("isbn"))
    cur.register("own_isbns", exploded.select("item_id", "isbn").drop_nulls())
    cur.register("own_keys", items.select("item_id", "work_key"))
    matched = cur.sql(
        """
        WITH by_isbn AS (
            SELECT o.item_id, min(t.work_key) AS work_key
            FROM own_isbns o JOIN (SELECT work_key, unnest(isbns) AS isbn FROM titles) t ON o.isbn = t.isbn
            GROUP BY o.item_id
        ), matched AS (
            SELECT k.item_id, coalesce(b.work_key, t.work_key) AS community_key
            FROM own_keys k LEFT JOIN by_isbn b ON k.item_id = b.item_id
            LEFT JOIN titles t ON k.work_key = t.work_key
        )
        SELECT m.item_id, m.community_key, h.institutions_holding
        FROM matched m LEFT JOIN holdings h
          ON h.work_key = m.community_key AND h.region = $region AND h.month = $as_of_month
        """,
        params={"region": region, "as_of_month": release.manifest["as_of"][:7]},
    ).pl()
    return matched


def own_commitments(actor: Principal, data_dir: Path, code: str, as_of: date) -> pl.DataFrame:
    """The institution's current commitments (retained until as_of or later, or indefinitely):
    work_key and isbn; empty without a commitments table."""
    access.require_member(actor, code, "the local retention commitments")
    path = table_path(data_dir, code, "retention-commitments")
    if not path.exists():
        return pl.DataFrame(schema={"work_key": pl.String, "isbn": pl.String})
    return (pl.read_parquet(path, columns=["work_key", "isbn", "retain_until"])
            .filter(pl.col("retain_until").is_null() | (pl.col("retain_until") >= as_of))
            .select("work_key", "isbn"))


def committed_items(items: pl.DataFrame, commitments: pl.DataFrame) -> pl.Series:
    """Whether each item's work is one the institution committed to retain (work key or shared ISBN)."""
    if commitments.is_empty():
        return pl.Series("committed", [False] * items.height, dtype=pl.Boolean)
    keys = set(commitments["work_key"].drop_nulls().to_list())
    isbns = set(commitments["isbn"].drop_nulls().str.split(";").explode().to_list())
    by_isbn = items["isbn"].fill_null("").str.split(";").list.eval(pl.element().is_in(list(isbns))).list.any()
    return (items["work_key"].is_in(list(keys)).fill_null(False) | by_isbn.fill_null(False)).alias("committed")


def retained_in_region(release: Release, community_keys: pl.Series, region: str) -> pl.DataFrame:
    """community_key -> "retained_in_region": "3–5 (programs)" from the release's retention table,
    or "fewer than K" where it has no row (none, or fewer than K_TITLE committing institutions)."""
    cur = release.cursor()
    cur.register("wanted_keys", pl.DataFrame({"community_key": community_keys.drop_nulls().unique()},
                                             schema={"community_key": pl.String}))
    rows = cur.sql("SELECT w.community_key, r.institutions_committed, r.programs FROM wanted_keys w "
                   "JOIN retention r ON r.work_key = w.community_key AND r.region = $region",
                   params={"region": region}).pl()
    from analytics.views.holders import band_expr

    k_title = release.manifest["privacy"]["K_TITLE"]
    # Released as the floor of its band (docs/privacy.md): shown as the band, "3–5".
    label = band_expr(pl.col("institutions_committed"), k_title) + \
        pl.when(pl.col("programs").list.len() > 0).then(
        pl.lit(" (") + pl.col("programs").list.join(", ") + pl.lit(")")).otherwise(pl.lit(""))
    return rows.select("community_key", label.alias("retained_in_region"))


MANY_HOLDERS = 10  # "many institutions hold it", in a region with 20 or more contributors


def many_holders(manifest: dict, service: str, region: str) -> int:
    """How many holders make a work "widely held" in a region of this release: MANY_HOLDERS, or half
    of the region's contributors to `service` when it has fewer than 2 x MANY_HOLDERS, never fewer
    than K_TITLE (smaller counts are not released). The default of the deselection page and the
    rule of the "withdraw" recommendation."""
    contributors = manifest.get("contributors", {}).get(service, {}).get(region, 0)
    return max(manifest["privacy"]["K_TITLE"], min(MANY_HOLDERS, math.ceil(contributors / 2)))


def deselection(actor: Principal, release: Release, data_dir: Path, code: str, rules: DeselectionRules) -> dict:
    """Withdrawal and retention candidates and the headline tiles, from the institution's own items,
    under the release's K_TITLE (the manifest's threshold, never the environment's).
    `scarce_max_holders`: the most institutions of the region that hold a retention candidate."""
    k_title = release.manifest["privacy"]["K_TITLE"]
    rules = rules.validated(k_title)
    as_of = date.fromisoformat(release.manifest["as_of"])
    items = own_items(actor, data_dir, code)
    holders = community_holders(release, items, rules.region)
    items = items.join(holders, on="item_id", how="left")
    cutoff = date(as_of.year - rules.no_loans_years, as_of.month, 1)
    idle = idle_since(cutoff)
    old_enough = pl.lit(True) if rules.published_before is None else (pl.col("pub_year") < rules.published_before)
    widely_held = pl.col("institutions_holding").fill_null(0) >= rules.min_holders
    on_shelf = pl.col("format") == "print"  # withdrawal frees shelves: electronic items are reviewed elsewhere
    items = items.with_columns(committed_items(items, own_commitments(actor, data_dir, code, as_of)))
    retained = retained_in_region(release, items["community_key"], rules.region)
    items = (items.join(retained, on="community_key", how="left")
             .with_columns(pl.col("retained_in_region").fill_null(f"fewer than {k_title}")))
    candidates = on_shelf & idle & old_enough & widely_held
    committed_left_out = items.filter(candidates & pl.col("committed")).height
    withdraw = (
        items.filter(candidates & ~pl.col("committed"))
        .sort(["institutions_holding", "uses", "pub_year", "title", "item_id"],
              descending=[True, False, False, False, False], nulls_last=True)
        .select("item_id", "title", "author", "isbn", "call_number", "pub_year", "format", "uses", "last_use",
                "institutions_holding", "retained_in_region")
    )
    scarce = pl.col("institutions_holding").is_null()
    retain = (
        items.filter(scarce)
        .sort(["uses", "pub_year", "title", "item_id"], descending=[True, False, False, False], nulls_last=True)
        .select("item_id", "title", "author", "isbn", "call_number", "pub_year", "format", "uses", "last_use",
                "retained_in_region", pl.col("committed").alias("committed_by_you"))
    )
    tiles = {
        "items": items.height,
        "zero_use": items.filter(pl.col("uses") == 0).height,
        "more_than_3_uses": items.filter(pl.col("uses") > 3).height,
        "older_than_10_years": items.filter(pl.col("pub_year") < as_of.year - 10).height,
        "widely_held": items.filter(widely_held).height,
        "scarce": items.filter(scarce).height,
    }
    return {"withdraw": withdraw.head(rules.limit), "withdraw_total": withdraw.height,
            "retain": retain.head(rules.limit), "retain_total": retain.height, "tiles": tiles,
            "rules": rules, "scarce_max_holders": k_title - 1, "committed_left_out": committed_left_out,
            "nobody_retains": retain.filter(pl.col("retained_in_region").str.starts_with("fewer than")).height}
