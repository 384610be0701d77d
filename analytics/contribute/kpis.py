"""The KPI catalog and its formulas: one definition for everybody.

`measures()` reads an institution's local store into base measures per period (year
``YYYY``, and month ``YYYY-MM`` for the counts that have a monthly view), and `derive()`
turns base measures and the profile's FTE students into KPI values. The system job runs
both for each benchmark contributor (`contribute.anonymize` sends the base measures;
`release.publish` derives and aggregates them), and the Benchmarks page runs them on the
institution's own data for "your value". How released statistics are chosen and
protected is in `release.benchmark_cells`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from analytics.core import months
from analytics.core.schema import TABLE_FILES

# -- the KPI catalog ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KPI:
    id: str
    name: str
    formula: str
    unit: str
    periods: str  # "year" or "year, month"
    direction: str  # "higher is better", "lower is better" or "neither"
    source: str  # "transactional" or "annual statistics"
    bounds: tuple[float, float]  # public clamping bounds for differential privacy (never from the data)


TRANSACTIONAL = "transactional"
ANNUAL = "annual statistics"
HIGHER, NEITHER = "higher is better", "neither"

CATALOG: dict[str, KPI] = {k.id: k for k in (
    KPI("titles_held", "Titles held", "distinct works with a copy held at the end of the period", "titles",
        "year", NEITHER, TRANSACTIONAL, (0, 5_000_000)),
    KPI("items_held", "Items held", "items held at the end of the period (acquired by then, not withdrawn)",
        "items", "year", NEITHER, TRANSACTIONAL, (0, 20_000_000)),
    KPI("items_added", "Items added", "items with an acquisition date in the period", "items", "year, month",
        NEITHER, TRANSACTIONAL, (0, 1_000_000)),
    KPI("loans", "Loans", "loans (checkouts) in the period", "loans", "year, month", HIGHER, TRANSACTIONAL,
        (0, 10_000_000)),
    KPI("turnover_rate", "Turnover rate", "loans in the year / items held", "loans per item", "year", HIGHER,
        TRANSACTIONAL, (0, 20)),
    KPI("pct_circulated", "Collection circulated", "items with at least one loan in the year / items held × 100",
        "%", "year", HIGHER, TRANSACTIONAL, (0, 100)),
    KPI("loans_per_fte", "Loans per FTE student", "loans in the year / FTE students (profile)", "loans per FTE",
        "year", HIGHER, TRANSACTIONAL, (0, 500)),
    KPI("e_usage_requests", "E-usage", "COUNTER Total_Item_Requests in the period", "requests", "year, month",
        HIGHER, TRANSACTIONAL, (0, 50_000_000)),
    KPI("e_usage_per_fte", "E-usage per FTE student", "COUNTER Total_Item_Requests in the year / FTE students",
        "requests per FTE", "year", HIGHER, TRANSACTIONAL, (0, 5_000)),
    KPI("e_usage_per_etitle", "E-usage per e-title", "COUNTER Total_Item_Requests in the year / e-titles held",
        "requests per e-title", "year", HIGHER, TRANSACTIONAL, (0, 1_000)),
    KPI("concentration_of_use", "Concentration of use",
        "fewest titles that produce 80% of the year's loans / titles held × 100", "%", "year", NEITHER,
        TRANSACTIONAL, (0, 100)),
    KPI("unique_share", "Holdings unique in the region",
        "works you hold that no other benchmark institution of your region holds (a shared ISBN, or the "
        "same key for works without ISBNs) / works you hold × 100 "
        "(holdings at publication, reported with the last complete year; your value is computed by the system "
        "job and kept private to you)", "%", "year", NEITHER, TRANSACTIONAL, (0, 100)),
    KPI("reading_list_held_pct", "Reading-list titles held",
        "titles on the year's reading lists that you hold / titles on them × 100", "%", "year", HIGHER,
        TRANSACTIONAL, (0, 100)),
    KPI("median_age", "Median age of the collection", "median of (year − publication year) over items held",
        "years", "year", NEITHER, TRANSACTIONAL, (0, 200)),
    KPI("volumes_held", "Volumes held", "reported volumes held", "volumes", "year", NEITHER, ANNUAL,
        (0, 20_000_000)),
    KPI("titles_held_reported", "Titles held (reported)", "reported titles held", "titles", "year", NEITHER,
        ANNUAL, (0, 20_000_000)),
    KPI("ebooks_held", "E-books held", "reported e-books held", "e-books", "year", NEITHER, ANNUAL,
        (0, 5_000_000)),
    KPI("initial_circulation", "Initial circulation", "reported checkouts without renewals", "loans", "year",
        HIGHER, ANNUAL, (0, 20_000_000)),
    KPI("total_circulation", "Total circulation", "reported checkouts including renewals", "loans", "year",
        HIGHER, ANNUAL, (0, 50_000_000)),
    KPI("ill_lending", "Interlibrary loans lent", "reported ILL requests filled for other libraries", "loans",
        "year", NEITHER, ANNUAL, (0, 1_000_000)),
    KPI("ill_borrowing", "Interlibrary loans borrowed", "reported ILL requests received from other libraries",
        "loans", "year", NEITHER, ANNUAL, (0, 1_000_000)),
    KPI("gate_count", "Gate count", "reported visits", "visits", "year", HIGHER, ANNUAL, (0, 50_000_000)),
    KPI("staff_fte", "Staff FTE", "reported staff in full-time equivalents", "FTE", "year", NEITHER, ANNUAL,
        (0, 5_000)),
    KPI("full_text_requests", "Full-text requests", "reported full-text article requests", "requests", "year",
        HIGHER, ANNUAL, (0, 100_000_000)),
    KPI("circulation_per_fte", "Circulation per FTE student",
        "reported total circulation / FTE students (reported, else the profile's)", "loans per FTE", "year",
        HIGHER, ANNUAL, (0, 500)),
    KPI("visits_per_fte", "Visits per FTE student", "reported gate count / FTE students (reported, else the "
        "profile's)", "visits per FTE", "year", HIGHER, ANNUAL, (0, 2_000)),
    KPI("circulation_per_capita", "Circulation per capita", "reported total circulation / population served",
        "loans per person", "year", HIGHER, ANNUAL, (0, 200)),
)}

ANNUAL_MEASURES = {  # annual-stats column -> KPI id (direct figures)
    "volumes_held": "volumes_held", "titles_held": "titles_held_reported", "ebooks_held": "ebooks_held",
    "initial_circulation": "initial_circulation", "total_circulation": "total_circulation",
    "ill_lending": "ill_lending", "ill_borrowing": "ill_borrowing", "gate_count": "gate_count",
    "staff_fte": "staff_fte", "full_text_requests": "full_text_requests",
}
ANNUAL_INPUTS = (*ANNUAL_MEASURES, "fte_students", "population_served")
MONTHLY = tuple(k.id for k in CATALOG.values() if "month" in k.periods)
MONTHLY_HISTORY = 24  # months of the monthly view

# -- base measures from the local store --------------------------------------------------------


def _scan(inst_dir: Path, kind: str) -> pl.LazyFrame | None:
    path = Path(inst_dir) / TABLE_FILES[kind]
    return pl.scan_parquet(path) if path.exists() else None


def _years(lo: date | None, hi: date | None) -> list[int]:
    return list(range(lo.year, hi.year + 1)) if lo and hi else []


def measures(inst_dir: Path, owner: str | None = None) -> pl.DataFrame:
    """Base measures of one institution: period, measure, value (Float64).

    `owner` keeps only the items of that member in a consortium export (and items without
    an owner). Periods are every calendar year (and month, for the monthly measures)
    covered by the data; the system job and the page choose which periods count.
    """
    items = _held_items(inst_dir, owner)
    loans = None
    loans_scan = _scan(inst_dir, "loans")
    if loans_scan is not None and items is not None:
        loans = (loans_scan.select("item_id", "loan_date", "count").join(items.lazy().select("item_id", "work"),
                                                                          on="item_id", how="inner").collect())
    usage = None
    usage_scan = _scan(inst_dir, "e-usage")
    if usage_scan is not None:
        usage = usage_scan.filter(pl.col("metric_type") == "Total_Item_Requests").select("month", "count").collect()
    rows = _yearly_rows(_data_years(items, loans, usage), items, loans, usage, _reading_list_titles(inst_dir))
    schema = {"period": pl.String, "measure": pl.String, "value": pl.Float64}
    yearly = pl.DataFrame(rows, schema=schema, orient="row")
    monthly = _monthly_frames(items, loans, usage) + _annual_frames(inst_dir)
    return pl.concat([yearly, *[m.select(list(schema)) for m in monthly]]).sort("period", "measure")


def _held_items(inst_dir: Path, owner: str | None) -> pl.DataFrame | None:
    """The items with the columns the measures read (absent ones as nulls), `work` = work key or item id."""
    items_scan = _scan(inst_dir, "items")
    if items_scan is None:
        return None
    present = items_scan.collect_schema().names()
    wanted = ["item_id", "work_key", "isbn", "format", "pub_year", "acquired_date", "withdrawn_date", "owner"]
    items = items_scan.select([c for c in wanted if c in present]).collect()
    for column, dtype in (("owner", pl.String), ("format", pl.String), ("pub_year", pl.Int64),
                          ("isbn", pl.String), ("acquired_date", pl.Date), ("withdrawn_date", pl.Date)):
        if column not in items.columns:
            items = items.with_columns(pl.lit(None, dtype=dtype).alias(column))
    if owner is not None:
        items = items.filter(pl.col("owner").is_null() | (pl.col("owner") == owner))
    return items.with_columns(pl.coalesce("work_key", "item_id").alias("work"))


def _data_years(items, loans, usage) -> list[int]:
    """Every calendar year from the first to the last date of the loans, usage and acquisitions."""
    span = []
    for frame, column in ((loans, "loan_date"), (usage, "month")):
        if frame is not None and frame.height:
            span += [frame[column].min(), frame[column].max()]
    if items is not None and items["acquired_date"].drop_nulls().len():
        span += [items["acquired_date"].drop_nulls().max()]
        if not span[:-1]:
            span += [items["acquired_date"].drop_nulls().min()]
    return _years(min(span), max(span)) if span else []


def _yearly_rows(years, items, loans, usage, lists) -> list[tuple[str, str, float]]:
    rows: list[tuple[str, str, float]] = []

    def add(period: str, measure: str, value) -> None:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            rows.append((period, measure, float(value)))

    for year in years:
        if items is not None:
            _year_of_items(year, items, loans, lists, add)
        if usage is not None:
            add(str(year), "e_usage_requests", usage.filter(pl.col("month").dt.year() == year)["count"].sum())
    return rows


def _year_of_items(year: int, items: pl.DataFrame, loans, lists, add) -> None:
    """The year's holdings, age, reading-list and loan measures, passed to `add`."""
    end = date(year, 12, 31)
    held = items.filter((pl.col("acquired_date").is_null() | (pl.col("acquired_date") <= end))
                        & (pl.col("withdrawn_date").is_null() | (pl.col("withdrawn_date") > end)))
    add(str(year), "items_held", held.height)
    add(str(year), "titles_held", held["work"].n_unique())
    add(str(year), "e_titles_held", held.filter(pl.col("format") == "electronic")["work"].n_unique())
    ages = held.select((pl.lit(year) - pl.col("pub_year")).alias("age")).filter(pl.col("age") >= 0)["age"]
    if ages.len():
        add(str(year), "median_age", ages.median())
    if lists is not None:
        listed = lists.filter(pl.col("year") == year)
        if listed.height:
            held_isbns = set(held["isbn"].drop_nulls().str.split(";").explode().to_list())
            held_works = set(held["work"].to_list())
            on_shelf = sum(1 for w, i in zip(listed["work"].to_list(), listed["isbns"].to_list())
                           if w in held_works or any(x in held_isbns for x in (i or [])))
            add(str(year), "reading_list_titles", listed.height)
            add(str(year), "reading_list_titles_held", on_shelf)
    if loans is not None:
        in_year = loans.filter(pl.col("loan_date").dt.year() == year)
        add(str(year), "loans", in_year["count"].sum())
        add(str(year), "items_circulated", in_year.filter(pl.col("count") > 0)["item_id"].n_unique())
        per_work = in_year.group_by("work").agg(pl.col("count").sum()).sort("count", descending=True)
        total = per_work["count"].sum()
        if total > 0:
            needed = int((per_work["count"].cum_sum() < 0.8 * total).sum()) + 1
            add(str(year), "titles_for_80pct", needed)
    add(str(year), "items_added", items.filter(pl.col("acquired_date").dt.year() == year).height)


def _monthly_frames(items, loans, usage) -> list[pl.DataFrame]:
    """Loans, e-usage and items added per month (period "YYYY-MM")."""
    monthly = []
    if loans is not None and loans.height:
        monthly.append(loans.group_by(pl.col("loan_date").dt.strftime("%Y-%m").alias("period"))
                       .agg(pl.col("count").sum().cast(pl.Float64).alias("value"))
                       .with_columns(pl.lit("loans").alias("measure")))
    if usage is not None and usage.height:
        monthly.append(usage.group_by(pl.col("month").dt.strftime("%Y-%m").alias("period"))
                       .agg(pl.col("count").sum().cast(pl.Float64).alias("value"))
                       .with_columns(pl.lit("e_usage_requests").alias("measure")))
    if items is not None and items["acquired_date"].drop_nulls().len():
        monthly.append(items.drop_nulls("acquired_date")
                       .group_by(pl.col("acquired_date").dt.strftime("%Y-%m").alias("period"))
                       .agg(pl.len().cast(pl.Float64).alias("value"))
                       .with_columns(pl.lit("items_added").alias("measure")))
    return monthly


def _annual_frames(inst_dir: Path) -> list[pl.DataFrame]:
    """The reported annual statistics, as measures "annual.<column>" per year."""
    annual = _scan(inst_dir, "annual-stats")
    if annual is None:
        return []
    frame = annual.collect()
    columns = [c for c in ANNUAL_INPUTS if c in frame.columns]
    if not columns:
        return []
    return [frame.select(pl.col("year").cast(pl.String).alias("period"), *[pl.col(c).cast(pl.Float64) for c in columns])
            .unpivot(index="period", variable_name="measure", value_name="value")
            .drop_nulls("value")
            .with_columns(("annual." + pl.col("measure")).alias("measure"))]


def _reading_list_titles(inst_dir: Path) -> pl.DataFrame | None:
    scan = _scan(inst_dir, "reading-lists")
    if scan is None:
        return None
    lists = scan.select("work_key", "isbn", "term", "title").collect()
    return (lists.with_columns(pl.col("term").str.extract(r"(\d{4})", 1).cast(pl.Int32, strict=False).alias("year"),
                               pl.coalesce("work_key", "title").alias("work"))
            .drop_nulls("year")
            .group_by("year", "work").agg(pl.col("isbn").drop_nulls().str.split(";").explode().unique()
                                          .alias("isbns")))


# -- KPI values from base measures ---------------------------------------------------------------

def _ratio(num: str, den: str, scale: float = 1.0) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) * scale / pl.col(den))


def derive(base: pl.DataFrame, fte: dict | None = None) -> pl.DataFrame:
    """KPI values from base measures. `base` has columns [unit,] period, measure, value, where
    `unit` identifies an institution (absent: one institution); `fte` maps unit -> FTE students
    from the profile (or is a plain number for one institution). Returns unit, period, kpi, value."""
    if "unit" not in base.columns:
        base = base.with_columns(pl.lit(0).alias("unit"))
        fte = {0: fte} if not isinstance(fte, dict) else fte
    fte = fte or {}
    schema = {"unit": base.schema["unit"], "period": pl.String, "kpi": pl.String, "value": pl.Float64}
    if base.height == 0:
        return pl.DataFrame(schema=schema)
    wide = base.pivot(on="measure", index=["unit", "period"], values="value", aggregate_function="first")
    needed = ["items_held", "titles_held", "e_titles_held", "median_age", "reading_list_titles",
              "reading_list_titles_held", "loans", "items_circulated", "titles_for_80pct", "items_added",
              "e_usage_requests", *[f"annual.{c}" for c in ANNUAL_INPUTS]]
    wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in needed if c not in wide.columns)
    units = pl.DataFrame({"unit": list(fte), "profile_fte": [float(v) if v else None for v in fte.values()]},
                         schema={"unit": base.schema["unit"], "profile_fte": pl.Float64})
    wide = (wide.join(units, on="unit", how="left")
            .with_columns(pl.coalesce("annual.fte_students", "profile_fte").alias("annual_fte")))
    yearly = pl.col("period").str.len_chars() == 4
    values = wide.select(
        "unit", "period",
        pl.col("titles_held"), pl.col("items_held"), pl.col("items_added"), pl.col("loans"),
        _ratio("loans", "items_held").alias("turnover_rate"),
        _ratio("items_circulated", "items_held", 100).alias("pct_circulated"),
        _ratio("loans", "profile_fte").alias("loans_per_fte"),
        pl.col("e_usage_requests"),
        _ratio("e_usage_requests", "profile_fte").alias("e_usage_per_fte"),
        _ratio("e_usage_requests", "e_titles_held").alias("e_usage_per_etitle"),
        _ratio("titles_for_80pct", "titles_held", 100).alias("concentration_of_use"),
        _ratio("reading_list_titles_held", "reading_list_titles", 100).alias("reading_list_held_pct"),
        pl.col("median_age"),
        *[pl.col(f"annual.{column}").alias(kpi) for column, kpi in ANNUAL_MEASURES.items()],
        _ratio("annual.total_circulation", "annual_fte").alias("circulation_per_fte"),
        _ratio("annual.gate_count", "annual_fte").alias("visits_per_fte"),
        _ratio("annual.total_circulation", "annual.population_served").alias("circulation_per_capita"),
    )
    long = values.unpivot(index=["unit", "period"], variable_name="kpi", value_name="value").drop_nulls("value")
    # Monthly periods carry only the monthly KPIs.
    monthly_ok = yearly | pl.col("kpi").is_in(list(MONTHLY))
    return long.filter(monthly_ok & pl.col("value").is_finite()).select(list(schema)).sort("unit", "kpi", "period")


def counted_periods(values: pl.DataFrame, as_of: date, included_from: date) -> pl.DataFrame:
    """Only complete periods that start on or after `included_from` (a year after go-live);
    months only for the last MONTHLY_HISTORY complete months."""
    this_month = months.month_of(as_of)
    first_month = months.add(this_month, -MONTHLY_HISTORY)
    start_month = months.month_of(included_from)
    first_year = included_from.year if (included_from.month, included_from.day) == (1, 1) else included_from.year + 1
    yearly = pl.col("period").str.len_chars() == 4
    year_ok = yearly & (pl.col("period").cast(pl.Int32, strict=False) < as_of.year) & (
        pl.col("period").cast(pl.Int32, strict=False) >= first_year)
    month_ok = ~yearly & (pl.col("period") < this_month) & (pl.col("period") >= first_month) & (
        pl.col("period") >= start_month)
    return values.filter(year_ok | month_ok)
