"""The contribution builder: what leaves an institution, per service.

A contribution holds only allow-listed content: the work key, public bibliographic
facts and counts per month or term. Local ids (items, titles, lists, courses), owner
codes, locations, notes, the institution's code and name, patron and money values are
never selected, so they cannot leave. In a consortium (Network Zone) only the rows the
institution owns are used.

The administrator's preview ("What will be shared") calls these same functions, so
the preview cannot drift from what the system job sends. The columns of each table, and
which service sends which table, are the data contract's (core.contract).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analytics.contribute import kpis as kpi_formulas
from analytics.core import access
from analytics.core.contract import CONTRIBUTION_COLUMNS, SERVICE_TABLES
from analytics.ingest import subjects
from analytics.ingest.local import institution_dir
from analytics.core.schema import SERVICES, TABLE_FILES
from analytics.control.store import Institution

SERVICE_DESCRIPTIONS = {
    "collection_development": (
        "Title-level holdings (which works you hold, how many copies, when first acquired), "
        "monthly loan counts per work, COUNTER usage counts per e-title and reading-list "
        "statistics per work and term, and your current shared-print retention commitments (work, program and "
        "the year retained until; released only as counts of committing institutions)."
    ),
    "recommendations": (
        "The same title-level holdings, loan, e-usage and reading-list counts, used to compute recommendations "
        "for you and, anonymously, for other participating institutions."
    ),
    "benchmark": (
        "Yearly (and for loans, additions and e-usage monthly) figures of your collection and its use: titles "
        "and items held, additions, loans, items that circulated, e-usage, reading-list titles held, median "
        "age, and your annual statistics (money columns are never imported). Pooled into statistics only "
        "where enough institutions contribute (see When); your FTE students from the profile are used for ratios. "
        "The works you hold (work key and ISBNs, no copies or ids) are used only to compute each "
        "institution's share of holdings unique in the region."
    ),
}

NEVER_SHARED = (
    "item barcodes and ids, local title ids, reading-list and course ids, locations, owner codes, "
    "notes, your institution's code and name, anything about patrons (ids, names, e-mails, "
    "addresses, birth dates) and anything financial (funds, orders, invoices, prices, fines, fees)"
)


def _local(inst_dir: Path, kind: str) -> pl.LazyFrame | None:
    path = Path(inst_dir) / TABLE_FILES[kind]
    return pl.scan_parquet(path) if path.exists() else None


def owned_items(inst_dir: Path, institution: Institution) -> pl.LazyFrame | None:
    """Items the institution owns. In a consortium export, other members' rows are left out."""
    items = _local(inst_dir, "items")
    if items is None:
        return None
    return items.filter(pl.col("owner").is_null() | (pl.col("owner") == institution.code))


def _month(col: str) -> pl.Expr:
    return pl.col(col).dt.strftime("%Y-%m")


def holdings(inst_dir: Path, institution: Institution) -> pl.DataFrame | None:
    items = owned_items(inst_dir, institution)
    if items is None:
        return None
    items = items.filter(pl.col("work_key").is_not_null()).collect()
    items = subjects.classify_frame(items, "call_number")
    held = pl.col("withdrawn_date").is_null()
    grouped = (
        items.group_by("work_key", "format")
        .agg(
            pl.col("isbn").drop_nulls().str.split(";").list.explode(keep_nulls=False, empty_as_null=False).unique().sort().alias("isbns"),
            pl.col("title").drop_nulls().mode().sort().first().alias("title"),
            pl.col("author").drop_nulls().mode().sort().first().alias("author"),
            pl.col("publisher").drop_nulls().mode().sort().first().alias("publisher"),
            pl.col("pub_year").min().alias("pub_year"),
            pl.col("language").drop_nulls().mode().sort().first().alias("language"),
            pl.col("lc_class").drop_nulls().mode().sort().first().alias("lc_class"),
            pl.col("lc_subclass").drop_nulls().mode().sort().first().alias("lc_subclass"),
            pl.col("subject").drop_nulls().mode().sort().first().alias("subject"),
            held.sum().cast(pl.Int64).alias("copies_held"),
            (~held).sum().cast(pl.Int64).alias("copies_withdrawn"),
            _month("acquired_date").min().alias("first_acquired_month"),
        )
        .sort("work_key", "format")
    )
    return grouped.select(CONTRIBUTION_COLUMNS["holdings"])


def _per_work(frame: pl.LazyFrame | None, table: str, by: list, aggregates: list[pl.Expr],
              keep: pl.Expr | None = None) -> pl.DataFrame | None:
    """Rows of a work (with a work key) summed per `by`, those that `keep` keeps, sorted, with
    the contribution table's columns; None without the local table."""
    if frame is None:
        return None
    grouped = frame.filter(pl.col("work_key").is_not_null()).group_by("work_key", *by).agg(*aggregates)
    if keep is not None:
        grouped = grouped.filter(keep)
    order = ["work_key", *(b if isinstance(b, str) else b.meta.output_name() for b in by)]
    return grouped.sort(order).collect().select(CONTRIBUTION_COLUMNS[table])


def loans(inst_dir: Path, institution: Institution) -> pl.DataFrame | None:
    items = owned_items(inst_dir, institution)
    events = _local(inst_dir, "loans")
    if items is None or events is None:
        return None
    keyed = events.join(items.select("item_id", "work_key"), on="item_id", how="inner")
    return _per_work(keyed, "loans", [_month("loan_date").alias("month")],
                     [pl.col("count").sum().cast(pl.Int64).alias("loans"),
                      pl.col("renewals").sum().cast(pl.Int64).alias("renewals")],
                     keep=pl.col("loans") > 0)  # a lender of the work that month, whatever its noisy value


def e_usage(inst_dir: Path, institution: Institution) -> pl.DataFrame | None:
    isbns = pl.col("isbn").drop_nulls().str.split(";").list.explode(keep_nulls=False, empty_as_null=False)
    return _per_work(_local(inst_dir, "e-usage"), "e_usage", ["platform", _month("month").alias("month"), "metric_type"],
                     [isbns.unique().sort().alias("isbns"), pl.col("title").drop_nulls().first().alias("title"),
                      pl.col("count").sum().cast(pl.Int64).alias("count")],
                     keep=pl.col("count") > 0)  # a user of the title that month, whatever its noisy value


def reading_lists(inst_dir: Path, institution: Institution) -> pl.DataFrame | None:
    return _per_work(_local(inst_dir, "reading-lists"), "reading_lists", ["term"],
                     [pl.col("list_id").n_unique().cast(pl.Int64).alias("lists"),
                      pl.len().cast(pl.Int64).alias("citations"),
                      (pl.col("citation_type") == "required").sum().cast(pl.Int64).alias("required_citations")])


def kpis(inst_dir: Path, institution: Institution) -> pl.DataFrame | None:
    """Base measures per period for benchmarks (contribute.kpis defines them): only the
    institution's own items in a consortium export."""
    frame = kpi_formulas.measures(inst_dir, institution.code)
    return frame.select(CONTRIBUTION_COLUMNS["kpis"]) if frame.height else None


def held_works(inst_dir: Path, institution: Institution) -> pl.DataFrame | None:
    """The works the institution holds now (key and ISBNs only): the input of the benchmark
    KPI "share of holdings unique in the region"."""
    items = owned_items(inst_dir, institution)
    if items is None:
        return None
    return (items.filter(pl.col("withdrawn_date").is_null() & pl.col("work_key").is_not_null())
            .group_by("work_key")
            .agg(pl.col("isbn").drop_nulls().str.split(";").list.explode(keep_nulls=False, empty_as_null=False)
                 .unique().sort().alias("isbns"))
            .sort("work_key").collect().select(CONTRIBUTION_COLUMNS["held_works"]))


def retention(inst_dir: Path, institution: Institution, today=None) -> pl.DataFrame | None:
    """Current retention commitments (retain_until not before this year, or indefinite): per work
    and program, the latest year retained until (null when any is indefinite). Nothing else of a
    commitment leaves: not the dates themselves, not the source, never the 583 $5 (not stored)."""
    import datetime as dt

    frame = _local(inst_dir, "retention-commitments")
    if frame is None:
        return None
    year = (today or dt.date.today()).year
    until = pl.col("retain_until").dt.year().cast(pl.Int64)
    isbns = pl.col("isbn").drop_nulls().str.split(";").list.explode(keep_nulls=False, empty_as_null=False)
    return (frame.filter(pl.col("work_key").is_not_null() & (pl.col("retain_until").is_null() | (until >= year)))
            .group_by("work_key", "program")
            .agg(isbns.unique().sort().alias("isbns"),
                 pl.when(pl.col("retain_until").is_null().any()).then(None).otherwise(until.max())
                 .alias("retain_until_year"))
            .sort("work_key", "program").collect().select(CONTRIBUTION_COLUMNS["retention"]))


BUILDERS = {"holdings": holdings, "loans": loans, "e_usage": e_usage, "reading_lists": reading_lists, "kpis": kpis,
            "held_works": held_works, "retention": retention}


def build_contribution(inst_dir: Path, institution: Institution, service: str,
                       cache: dict[str, pl.DataFrame | None] | None = None) -> dict[str, pl.DataFrame]:
    """The tables one service would send, keyed by table name (absent tables are left out).

    Services share tables (collection development and recommendations send the same
    holdings); pass one `cache` dict for all services of an institution to build each once.
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    cache = {} if cache is None else cache
    tables: dict[str, pl.DataFrame] = {}
    for table in SERVICE_TABLES[service]:
        if table not in cache:
            cache[table] = BUILDERS[table](inst_dir, institution)
        frame = cache[table]
        if frame is not None:
            assert tuple(frame.columns) == CONTRIBUTION_COLUMNS[table], f"{table} left the allow-list"
            tables[table] = frame
    return tables


def preview(actor, data_dir: Path, institution: Institution, service: str) -> dict[str, pl.DataFrame]:
    """What would leave the institution for one service; for its own users only."""
    access.require_member(actor, institution.code, "what the institution shares")
    return build_contribution(institution_dir(data_dir, institution.code), institution, service)
