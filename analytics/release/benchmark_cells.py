"""Which benchmark cells a release may show, and their rows in benchmarks.parquet.

Released statistics (publish, `release.sql.BENCHMARK_CELLS` and `select_cells`): per
region, peer group, KPI and period: n, p25, median, p75 and mean (quantiles linear
between order statistics: the median of an even n is the mean of the two middle values).
A cell is released only when n >= K_BENCH and it cannot be differenced against another
released group of the same region, KPI and period (each side of the two member sets differs
by 0 or at least K_BENCH institutions). Otherwise the release states why it is suppressed,
never 0 or blank. The dominance rule (no institution more than DOMINANCE of the total) is
for totals and means only: where it fails, the mean is withheld with the reason and the
quantiles, which say nothing about the largest value's size, are still released. Every
value going in carries its institution's persistent noise factor (`contribute.disclosure.kpi_factors`).
The KPI formulas themselves are in `contribute.kpis`.
"""

from __future__ import annotations

import math

import polars as pl

from analytics.release.manifest import RELEASE_SCHEMA

TRIM = 0.10  # the outlier-trimmed variant drops this share at each end
VARIANTS = ("none", "trim10")
VARIANT_LABELS = {"none": "all values", "trim10": f"outliers trimmed ({TRIM:.0%} at each end)"}

# -- peer groups ---------------------------------------------------------------------------------

def group_names(type_: str, size_band: str, country: str | None) -> list[str]:
    """The peer groups an institution belongs to within its region, broadest first."""
    names = ["all", f"type={type_}", f"size={size_band}"]
    if country:
        names.append(f"country={country}")
    names.append(f"type={type_}&size={size_band}")
    return names


def group_rank(name: str) -> tuple[int, str]:
    order = {"all": 0, "type": 1, "size": 2, "country": 3}
    if "&" in name:
        return 4, name
    return order.get(name.split("=", 1)[0], 5), name


# -- choosing the cells to release ----------------------------------------------------------------

def select_cells(cells: list[dict], k_bench: int, dominance: float) -> list[dict]:
    """Decide, per region, KPI and period, which peer-group cells may be released.

    `cells` hold region, peer_group, kpi, period, members (sorted ids), values, n, largest and
    total. A cell is released when n >= k_bench and for every cell already released in the
    same region, KPI and period (broadest groups first) each side of the two member sets
    differs by 0 or at least k_bench institutions: subtracting one released statistic from
    another can then never isolate fewer than k_bench institutions. Each cell gets `released`
    and `reason`, and `mean_reason` when its mean is withheld because one institution makes up
    more than `dominance` of the total (the dominance rule is for totals and means only).
    """
    by_key: dict[tuple, list[dict]] = {}
    for cell in cells:
        by_key.setdefault((cell["region"], cell["kpi"], cell["period"]), []).append(cell)
    for group in by_key.values():
        accepted: list[tuple[frozenset, str]] = []
        for cell in sorted(group, key=lambda c: group_rank(c["peer_group"])):
            members = frozenset(cell["members"])
            reason = None
            cell["mean_reason"] = dominated(cell["values"], dominance)
            if cell["n"] < k_bench:
                reason = f"suppressed: fewer than {k_bench} institutions"
            else:
                for other, name in accepted:
                    gaps = (len(members - other), len(other - members))
                    if any(0 < gap < k_bench for gap in gaps):
                        reason = (f"suppressed: differs from the released group {name!r} by fewer than "
                                  f"{k_bench} institutions")
                        break
            cell["released"] = reason is None
            cell["reason"] = reason
            if reason is None:
                accepted.append((members, cell["peer_group"]))
    return cells


def dominated(values: list[float], dominance: float) -> str | None:
    """Why the mean of `values` is withheld, or None: the p% dominance rule for totals and means."""
    total = sum(values)
    if total > 0 and max(values) > dominance * total:
        return f"mean withheld: one institution makes up more than {dominance:.0%} of the total"
    return None


def trimmed(values: list[float], k_bench: int) -> tuple[list[float], str | None]:
    """The values with TRIM of them dropped at each end, or a reason why trimming is withheld:
    the exact and trimmed means together reveal the sum of the dropped values, so at least
    k_bench institutions must be dropped in all."""
    cut = math.floor(TRIM * len(values))
    if 2 * cut < k_bench:
        return [], (f"suppressed: too few institutions to trim {TRIM:.0%} at each end without singling one out "
                    f"(needs {math.ceil(k_bench / 2 / TRIM)} or more)")
    ordered = sorted(values)
    return ordered[cut:len(ordered) - cut], None


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (DuckDB quantile_cont, numpy 'linear')."""
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def release_rows(cells: list[dict], k_bench: int, epsilon: float | None, dp=None,
                 codes: dict[int, str] | None = None, dominance: float = 0.5,
                 method: str = "protected") -> tuple[pl.DataFrame, dict]:
    """Released and suppressed rows for every cell and variant, after select_cells(). With
    `epsilon`, `dp` (a dp_budget.DPRelease: the yearly budget accounted in the control database)
    decides, draws and charges the released statistics; `codes` maps member ids to institution codes.
    `method` names how the values going in were protected ("protected", or "exact" in a
    measurement build)."""
    if epsilon is not None:
        if dp is None or dp.epsilon != epsilon:
            raise ValueError("a differentially private release needs the budget account of its epsilon "
                             "(dp_budget.DPRelease)")
        return dp.release_rows(cells, codes or {})
    schema = RELEASE_SCHEMA["benchmarks.parquet"]
    rows: list[dict] = []
    note: dict = {"method": method}

    def row(cell: dict, variant: str, **values) -> dict:
        base = {name: None for name in schema}
        base.update(region=cell["region"], peer_group=cell["peer_group"], kpi=cell["kpi"], period=cell["period"],
                    variant=variant, suppressed=False, reason=None)
        base.update(values)
        return base

    for cell in cells:
        if not cell["released"]:
            for variant in VARIANTS:
                rows.append(row(cell, variant, suppressed=True, reason=cell["reason"]))
            continue
        values = list(cell["values"])
        withheld = cell.get("mean_reason")
        rows.append(row(cell, "none", n=cell["n"], p25=cell["p25"], median=cell["median"], p75=cell["p75"],
                        mean=None if withheld else cell["mean"], method=method, reason=withheld))
        kept, reason = trimmed(values, k_bench)
        if reason:
            rows.append(row(cell, "trim10", suppressed=True, reason=reason))
        else:
            withheld = dominated(kept, dominance)
            rows.append(row(cell, "trim10", n=len(kept), p25=quantile(kept, 0.25), median=quantile(kept, 0.5),
                            p75=quantile(kept, 0.75), mean=None if withheld else sum(kept) / len(kept),
                            method=method, reason=withheld))
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.sort("region", "peer_group", "kpi", "period", "variant"), note
