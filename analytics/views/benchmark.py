"""Benchmarks as an institution sees them: the released statistics of its peer group next to
its own values. The KPI formulas are in `contribute.kpis`; which cells are released, and
why others are suppressed, in `release.benchmark_cells`.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl

from analytics.contribute.kpis import CATALOG, counted_periods, derive, measures
from analytics.core import access
from analytics.core.access import Principal
from analytics.core.contract import RELEASE_TABLES
from analytics.core.errors import InvalidValue
from analytics.ingest.local import institution_dir
from analytics.release.benchmark_cells import VARIANT_LABELS, VARIANTS

__all__ = ["CATALOG", "VARIANT_LABELS", "VARIANTS", "format_value", "group_label", "own_counted", "own_values",
           "parse_peers", "percentile_band", "reason_note", "reason_status", "released_groups", "report",
           "require_benchmark_view", "watchlist"]

def parse_peers(text: str | None) -> str:
    """`--peers type=research,size=5,000-14,999` -> the group name 'type=research&size=5,000-14,999'."""
    if not text or text.strip().lower() == "all":
        return "all"
    parts = [p.strip() for p in re.split(r",(?=\s*(?:type|size|country)\s*=)", text.strip()) if p.strip()]
    pairs = {}
    for part in parts:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key not in ("type", "size", "country") or not value.strip():
            raise InvalidValue(f"--peers {text!r}: give ATTR=VALUE pairs with ATTR type, size or country, "
                             f"e.g. type=research,size=5,000-14,999.")
        pairs[key] = value.strip().upper() if key == "country" else value.strip()
    if set(pairs) == {"type", "size"}:
        return f"type={pairs['type']}&size={pairs['size']}"
    if len(pairs) != 1:
        raise InvalidValue(f"--peers {text!r}: released groups are all, type, size, country, or type with size.")
    key, value = next(iter(pairs.items()))
    return f"{key}={value}"


# -- reading the released statistics with your own values ------------------------------------------


def require_benchmark_view(actor: Principal, store, code: str) -> None:
    """Only institutions with benchmark sharing in effect see benchmark data (live for under a
    year: they see it although their own data is not yet included)."""
    access.require_member(actor, code, "benchmarks")
    state = store.sharing_state(actor, code)["benchmark"]
    if not state.in_effect:
        pending = (f" Sharing was turned on and takes effect on {state.effective_from.isoformat()} (benchmark "
                   f"changes take effect at the next monthly cycle)." if state.pending and state.requested else "")
        raise access.PermissionDenied(
            f"{code} does not share Benchmark Analytics data, so it does not see the community's benchmarks.{pending}"
            f" A General System Administrator can turn sharing on in the data sharing profile.")


def own_values(actor: Principal, data_dir: Path, institution) -> pl.DataFrame:
    """The institution's own KPI values for every period of its data (period, kpi, value); its
    own users (or the system job) only."""
    access.require_member(actor, institution.code, "the KPI values")

    base = measures(institution_dir(data_dir, institution.code), institution.code)
    return derive(base, institution.fte_students).drop("unit")


# Your position among the peers' quartiles, in words a librarian reads at a glance.
BANDS = ("lower quarter", "below the middle", "above the middle", "upper quarter")


def percentile_band(value: float | None, p25: float | None, median: float | None, p75: float | None) -> str | None:
    """Where `value` falls among the peer quartiles: below the 25th percentile is the lower quarter,
    from there to the median below the middle, from the median to the 75th percentile above the
    middle, beyond it the upper quarter."""
    if value is None or p25 is None or median is None or p75 is None:
        return None
    if value < p25:
        return BANDS[0]
    if value < median:
        return BANDS[1]
    if value <= p75:
        return BANDS[2]
    return BANDS[3]


# -- words for the page and reports -------------------------------------------------------------

TYPE_WORDS = {"research": "Research institutions", "teaching": "Teaching institutions",
              "community_college": "Community colleges", "public": "Public libraries",
              "national": "National libraries", "special": "Special libraries"}
# Units counted in whole numbers: a peer median of 250.4 items reads as 250 items.
COUNT_UNITS = frozenset({"e-books", "items", "loans", "requests", "titles", "visits", "volumes"})


def group_label(name: str) -> str:
    """A released peer-group name ('all', 'type=research', 'size=5,000-14,999', 'country=US',
    'type=research&size=...') in words."""
    if name == "all":
        return "All in the region"
    parts = dict(part.partition("=")[::2] for part in name.split("&"))
    words = []
    if "type" in parts:
        words.append(TYPE_WORDS.get(parts["type"], parts["type"].replace("_", " ").capitalize()))
    if "size" in parts:
        words.append(f"{parts['size']} FTE students")
    if "country" in parts:
        words.append(f"In {parts['country']}")
    return ", ".join(words) or name


def format_value(value: float | None, unit: str = "", signed: bool = False) -> str:
    """A KPI value as the page shows it: thousands separators, whole numbers for counts and large
    values, one decimal for percentages and values from 10 to 100, two below; a dash when missing."""
    if value is None or value != value:  # None or NaN
        return "—"
    sign = "+" if signed and value >= 0 else ""
    if unit == "%":
        return f"{sign}{value:,.1f}%"
    if unit in COUNT_UNITS or abs(value) >= 100:
        return f"{sign}{value:,.0f}"
    return f"{sign}{value:,.1f}" if abs(value) >= 10 else f"{sign}{value:,.2f}"


def reason_status(reason: str | None) -> str:
    """A suppressed cell's reason as a short status for a table cell (reason_note gives it in full)."""
    text = (reason or "").removeprefix("suppressed: ")
    if text.startswith("fewer than"):
        return "not enough peers"
    if text.startswith("differs from the released group"):
        return "overlaps another group"
    if text.startswith("too few institutions to trim"):
        return "too few to trim"
    if "privacy budget" in text:
        return "privacy budget spent"
    if "differential privacy" in text:
        return "not released (privacy)"
    return "not released"


def reason_note(reason: str | None) -> str:
    """A release's reason in full, as a sentence: without the 'suppressed:' prefix and with peer-group
    names in words."""
    text = (reason or "not released").removeprefix("suppressed: ")
    few = re.fullmatch(r"fewer than (\d+) institutions", text)
    if few:
        return f"Fewer than {few.group(1)} institutions of the peer group have data for the KPI and period."
    text = re.sub(r"'([^']+)'", lambda m: f"“{group_label(m.group(1))}”", text)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# -- the institution's view: released statistics next to its own values --------------------------

# The released statistics of a cell: every column of benchmarks.parquet but the cell's key.
CELL_KEY = ("region", "peer_group", "kpi", "period")
REPORT_COLUMNS = ("kpi", "name", "unit", "direction", "period", "peer_group",
                  *(column for column in RELEASE_TABLES["benchmarks"] if column not in CELL_KEY),
                  "own_value", "band", "own_previous", "own_change")


def released_groups(release, region: str) -> pl.DataFrame:
    """Peer groups with at least one released cell in the region, and their largest n."""
    return release.cursor().sql(
        "SELECT peer_group, max(n) AS institutions FROM benchmarks WHERE region = $region AND NOT suppressed "
        "GROUP BY peer_group ORDER BY peer_group", params={"region": region}).pl()


def own_counted(actor: Principal, data_dir: Path, institution, as_of: date, computed: list[dict] = ()) -> pl.DataFrame:
    """Own KPI values for complete periods before the release's as-of date, plus the values only
    the system job can compute (`computed`: Store.own_kpi_values of the release)."""
    own = counted_periods(own_values(actor, data_dir, institution).with_columns(pl.lit(0).alias("unit")), as_of,
                          date(1900, 1, 1)).drop("unit")
    if computed:
        extra = pl.DataFrame(list(computed), schema={"period": pl.String, "kpi": pl.String, "value": pl.Float64})
        own = pl.concat([own.filter(~pl.col("kpi").is_in(extra["kpi"].unique().implode())),
                         extra.select(own.columns)])
    return own


def report(release, institution, own: pl.DataFrame, *, peer_group: str = "all", kpis: list[str] | None = None,
           period: str | None = None, variant: str = "none", monthly: bool = False) -> pl.DataFrame:
    """One row per KPI and period: the released statistics of the peer group in the institution's
    region (or why they are suppressed) with the institution's own value, its band and change."""
    if variant not in VARIANTS:
        raise InvalidValue(f"variant {variant!r}: choose {' or '.join(VARIANTS)}.")
    unknown = [k for k in kpis or [] if k not in CATALOG]
    if unknown:
        raise InvalidValue(f"KPI {', '.join(unknown)}: choose from {', '.join(CATALOG)}.")
    if period is not None and not re.fullmatch(r"\d{4}(-(0[1-9]|1[0-2]))?", period):
        raise InvalidValue(f"period {period!r}: give a year (2025) or a month (2025-03).")
    monthly = monthly or (period is not None and len(period) == 7)
    released = release.cursor().sql(
        "SELECT kpi, period, n, p25, median, p75, mean, method, mean_noise_sd, quantile_step, suppressed, reason "
        "FROM benchmarks WHERE region = $region AND peer_group = $group AND variant = $variant",
        params={"region": institution.region, "group": peer_group, "variant": variant}).pl()
    monthly_expr = pl.col("period").str.len_chars() == 7
    released = released.filter(monthly_expr if monthly else ~monthly_expr)
    own = own.filter(monthly_expr if monthly else ~monthly_expr).rename({"value": "own_value"})
    own = own.sort("kpi", "period").with_columns(pl.col("own_value").shift(1).over("kpi").alias("own_previous"))
    rows = released.join(own, on=["kpi", "period"], how="full", coalesce=True)
    if kpis:
        rows = rows.filter(pl.col("kpi").is_in(kpis))
    if period:
        rows = rows.filter(pl.col("period") == period)
    catalog = pl.DataFrame([{"kpi": k.id, "name": k.name, "unit": k.unit, "direction": k.direction}
                            for k in CATALOG.values()])
    rows = rows.join(catalog, on="kpi", how="inner").with_columns(
        pl.lit(peer_group).alias("peer_group"), pl.lit(variant).alias("variant"),
        # A cell the release does not list at all has fewer than K_BENCH institutions with data.
        pl.col("suppressed").fill_null(True),
        pl.when(pl.col("suppressed").is_null())
        .then(pl.lit(f"suppressed: fewer than {release.manifest['privacy']['K_BENCH']} institutions"))
        .otherwise(pl.col("reason")).alias("reason"),
        (pl.col("own_value") - pl.col("own_previous")).alias("own_change"),
    )
    bands = [percentile_band(v, a, m, b) for v, a, m, b in
             zip(rows["own_value"], rows["p25"], rows["median"], rows["p75"])]
    order = {k: i for i, k in enumerate(CATALOG)}
    return (rows.with_columns(pl.Series("band", bands, dtype=pl.String),
                              pl.col("kpi").replace_strict(order, return_dtype=pl.Int32).alias("_order"))
            .sort("_order", "period").select(REPORT_COLUMNS))


def watchlist(report_rows: pl.DataFrame) -> pl.DataFrame:
    """The latest period of each KPI that has a released statistic or an own value."""
    usable = report_rows.filter(~pl.col("suppressed") | pl.col("own_value").is_not_null())
    # report() orders rows by the catalog, then by period: the last row of each KPI is its latest.
    return usable.group_by("kpi", maintain_order=True).last()
