"""Differentially private benchmark cells, released through OpenDP.

In plain words (for librarians)
-------------------------------
When releases are published with a privacy budget (``publish --epsilon E``),
the benchmark figures (25th percentile, median and 75th percentile of a KPI
over a group of institutions) are not published exactly.  Each figure gets
random noise, large enough that nobody -- not another member, not a vendor,
not us -- can work out any single institution's own number from the published
figures, even if they know every other institution's number.  The number of
institutions in a group (*n*) is still shown exactly: who takes part is not
secret, what each one reports is.

E is a budget per institution and calendar year, shared by all releases of
that year.  Noise is drawn once and kept: a figure whose data did not change
is published again with the same noise and costs nothing; a figure whose data
changed gets new noise at most once a month.  When an institution's budget for
the year is spent, figures it is part of keep their last noisy values (marked
"stale") or, if they never had any, are withheld ("suppressed: this year's
privacy budget is spent").  A new year starts a new budget.

Honestly: at E = 1 the figures are noise.  With one institution as the unit,
up to 72 figures per institution and month (24 cells x 3 quartiles) and groups
of tens of institutions, every figure gets about 0.001 of the budget, and the
released quartiles are as good as a random point of the KPI's range (see
*Accuracy* below).  They become useful only with budgets in the hundreds, or
with far fewer figures.

Precisely (for reviewers)
-------------------------
* Privacy unit: one institution.  Each institution contributes exactly one
  value to a cell.  Neighbouring datasets differ in the *value* of one
  institution (bounded / substitution DP).  Cell membership and cell size
  ``n`` are treated as public: they follow from the released profile lattice
  and are published as-is.  In OpenDP terms the input space is
  ``vector_domain(atom_domain(T=float, nan=False), size=n)`` with
  ``symmetric_distance()`` and ``d_in = 2`` (one substitution = one removal plus
  one insertion).  Nothing here protects the *fact* that an institution is in
  a cell.
* Guarantee: pure epsilon-DP (OpenDP ``max_divergence``) per calendar year.
  Every statistic is calibrated so that OpenDP's own privacy map gives
  ``map(2) <= eps_stat``; a cell of S statistics costs ``S * eps_stat`` (basic
  composition, checked by OpenDP's ``make_composition`` and reported as
  ``noise["epsilon_cell"]``).  dp_budget.py charges every member of a cell
  that cost each time the cell is drawn and never draws a cell that would take
  a member over E in the year of the release's as-of date, so the releases of
  one year together are E-DP for every institution (basic sequential
  composition; re-publishing earlier noisy values is post-processing and free).
  The budget resets each year, the protection does not: k years of releases
  are (k * E)-DP.
* The plan (dp_budget.Plan, the defaults): S = 3 statistics (p25, median, p75:
  what the Benchmarks page shows; no mean, no trimmed variant), the last
  complete year only, the peer groups ``all`` and ``type=...``, the 12 ratio
  KPIs of dp_budget.DP_KPIS, and at most 12 draws of a cell per year (once per
  calendar month).  An institution is in at most C = 12 KPIs x 2 groups = 24
  drawn cells, so ``eps_stat = E / (12 * 24 * 3) = E / 864`` and even a year
  in which every cell changes every month stays within E.
* Not covered by epsilon: whether a cell's inputs changed since its last draw.
  Unchanged cells repeat their figures, changed ones get new figures or are
  marked stale, so each release reveals per cell one bit: "some member's value
  or the member set changed" -- and, through it, the spend the manifest
  reports (maxima over institutions, never per institution).
* Pre-processing: values are clamped to public ``Bounds`` (``make_clamp``,
  1-stable).  Bounds must come from the KPI catalog, never from the data.
* Quantiles (p25, median, p75): ``make_private_quantile`` with
  ``max_divergence()`` over a fixed grid of ``QUANTILE_CANDIDATES = 256``
  evenly spaced candidates ``lower + i * (upper - lower) / 255``.  Internally
  this scores candidates (``make_quantile_score_candidates``, Smith 2011) and
  selects one by report-noisy-max with exponential noise (equivalent to
  permute-and-flip, McKenna & Sheldon 2020).  The released value is always a
  grid candidate, so resolution is one candidate spacing
  ``(upper - lower) / 255``.  The selection scale is set from the
  measurement's privacy map: ``scale = map_at_scale_1(2) / eps_stat`` (for a
  sized domain this is ``2 / eps_stat`` in integerised score units).
* Mean (available, not used by the benchmark plan): ``make_clamp -> make_sum
  -> make_laplace``, divided by the public ``n``.  With a known size the sum's
  sensitivity under one substitution is ``upper - lower`` (OpenDP adds a tiny
  float-rounding allowance, read from ``make_sum(...).map(2)``), so the
  Laplace scale of the sum is ``b_sum = sensitivity / eps_stat`` and of the
  mean ``b = b_sum / n`` (~ ``(upper - lower) / (eps_stat * n)``); its standard
  deviation is ``sqrt(2) * b``.
* Post-processing (does not weaken the guarantee): the quantiles are sorted so
  that ``p25 <= median <= p75`` (each is drawn independently and could
  otherwise cross), and the mean is clamped to ``[lower, upper]``.
* Randomness: all noise is drawn by OpenDP's cryptographically secure sampler
  (Laplace via exact discrete sampling on floats).  No Python ``random`` is
  used.
* Noise is drawn by ``private_cell``; every call draws fresh noise and spends
  the budget again.  Only dp_budget.py calls it at publish time, and it keeps
  the drawn values (and a keyed fingerprint of the inputs, never the values)
  in the control database so that unchanged cells are never redrawn.

Accuracy
--------
Measured with ``scripts/dp_accuracy.py`` (OpenDP draws, a KPI with bounds
(0, 20) such as turnover_rate, n values spread evenly over 4 .. 12, exact
median 8): absolute error of the released median, median and 90th percentile
of 400 draws.  A uniformly random grid point would give 5.0 and 10.0.

==========  =========  =====  ===========  =========  =======================
E per year  eps_stat   n      median err   90th pct   mean sd (not released)
==========  =========  =====  ===========  =========  =======================
1           0.00116    10     5.3          10.2       2,440
1           0.00116    30     4.9          9.7        815
1           0.00116    100    4.9          10.0       244
10          0.0116     100    4.5          9.3        24.4
100         0.116      30     4.2          9.6        8.15
100         0.116      100    1.3          7.8        2.44
432         0.5        10     3.4          9.9        5.66
432         0.5        30     0.86         5.5        1.89
432         0.5        100    0.24         0.78       0.57
==========  =========  =====  ===========  =========  =======================

Rule of thumb: in 9 draws of 10 a released quantile lies within about
``ln(256) / eps_stat`` = ``5.5 / eps_stat`` institutions (by rank) of the exact
one (``quantile_rank_error``); at E = 1 that is ~4,800 institutions, i.e. the
quartiles carry no information for any group size.  They are informative when
``eps_stat * n`` is about 30 or more.  At E = 1 the mean, had it been
released, would have had a noise sd of ``sqrt(2) * 20 / (eps_stat * 10)``
~ 2,440 for n = 10 (the KPI's whole range is 20).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

import opendp.prelude as dp

#: Number of evenly spaced quantile candidates between the bounds (inclusive).
QUANTILE_CANDIDATES = 256
#: Symmetric distance between two equal-size datasets that differ in the value
#: of one institution (one removal + one insertion).
D_IN = 2
#: Number of statistics one cell releases by default (p25, median, p75, mean).
STATISTICS_PER_CELL = 4
#: The statistics private_cell can release.
STATISTICS = ("p25", "median", "p75", "mean")

_QUANTILES = (("p25", 0.25), ("median", 0.5), ("p75", 0.75))
_QUANTILE_MECHANISM = (
    "opendp.measurements.make_private_quantile (max_divergence): "
    "quantile score over a fixed candidate grid + report-noisy-max with "
    "exponential noise (permute-and-flip)"
)
_MEAN_MECHANISM = (
    "opendp.transformations.make_clamp -> make_sum -> "
    "opendp.measurements.make_laplace, divided by the public n"
)


@dataclass(frozen=True)
class Bounds:
    """Public clamping range of one KPI, from the KPI catalog (never the data)."""

    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError(f"bounds must be finite, got [{self.lower}, {self.upper}]")
        if not self.lower < self.upper:
            raise ValueError(f"bounds need lower < upper, got [{self.lower}, {self.upper}]")


def split_budget(epsilon: float, cells_per_institution: int,
                 statistics_per_cell: int = STATISTICS_PER_CELL, refreshes: int = 1) -> float:
    """Epsilon for one statistic under basic sequential composition.

    One institution appears in at most ``cells_per_institution`` cells per
    refresh, each cell releases ``statistics_per_cell`` numbers, and each cell
    may be drawn ``refreshes`` times within the budget's period (a calendar
    year), so the total ``epsilon`` is divided evenly:
    ``epsilon / (refreshes * cells_per_institution * statistics_per_cell)``.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
            or not math.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"privacy budget epsilon must be a finite number > 0, got {epsilon!r}")
    for name, count in (("cells_per_institution", cells_per_institution),
                        ("statistics_per_cell", statistics_per_cell), ("refreshes", refreshes)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {count!r}")
    return epsilon / (refreshes * cells_per_institution * statistics_per_cell)


def candidate_grid(bounds: Bounds) -> list[float]:
    """The public quantile candidates: ``QUANTILE_CANDIDATES`` evenly spaced
    values from ``bounds.lower`` to ``bounds.upper`` inclusive."""
    steps = QUANTILE_CANDIDATES - 1
    width = bounds.upper - bounds.lower
    grid = [bounds.lower + width * i / steps for i in range(steps)]
    return grid + [bounds.upper]


def _calibrated(make, d_in, epsilon: float, scale: float | None = None):
    """Build ``make(scale)`` with the smallest scale OpenDP certifies as
    ``epsilon``-DP at ``d_in``.

    Both mechanisms used here have a privacy loss proportional to 1/scale,
    so unless a candidate ``scale`` is given it is read off OpenDP's own map
    at scale 1; a few upward nudges absorb OpenDP's conservative float
    rounding.  The returned measurement always satisfies
    ``measurement.map(d_in) <= epsilon``.  Returns (measurement, scale).
    """
    if scale is None:
        scale = make(1.0).map(d_in) / epsilon
    for _ in range(64):
        measurement = make(scale)
        if measurement.map(d_in) <= epsilon:
            return measurement, scale
        scale *= 1 + 1e-12
    raise RuntimeError(f"could not calibrate an OpenDP measurement to epsilon={epsilon}")


def private_cell(values: Sequence[float], bounds: Bounds, epsilon_per_statistic: float,
                 n: int | None = None, statistics: Sequence[str] = STATISTICS) -> dict:
    """Release p25, median, p75 and mean (or the subset ``statistics``) of one
    cell with differential privacy.

    ``values`` holds one number per institution.  ``n`` is the public cell
    size (it follows from the released profile lattice and is published
    exactly); it defaults to ``len(values)`` and, if given, must equal it.
    Each released statistic costs ``epsilon_per_statistic`` (pure DP, one
    institution's value changed); see the module docstring for the guarantee.
    A statistic not in ``statistics`` is not computed, costs nothing and is
    returned as None.

    Returns ``{"p25", "median", "p75", "mean", "noise"}``.  ``noise`` tells the
    UI how noisy the figures are::

        {"epsilon_per_statistic", "epsilon_cell", "n", "statistics",
         "mean": {"mechanism", "epsilon", "laplace_scale", "std",
                  "sum_sensitivity", "sum_laplace_scale"} or None,
         "quantiles": {"mechanism", "epsilon", "candidates", "spacing",
                       "selection_scale"} or None}

    ``mean.laplace_scale`` is the Laplace scale b of the released mean in KPI
    units (``sum_laplace_scale / n``), ``mean.std = sqrt(2) * b``.  Quantiles
    are grid candidates, so ``quantiles.spacing`` is their resolution.

    Call once per cell per release; every call draws fresh noise and spends
    the budget again (dp_budget.py keeps the drawn values and the account).
    """
    data, n, wanted, quantiles = _checked(values, n, epsilon_per_statistic, statistics)
    dp.enable_features("contrib")
    lower, upper = float(bounds.lower), float(bounds.upper)
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False), size=n),
             dp.symmetric_distance())
    t_clamp = dp.t.make_clamp(*space, bounds=(lower, upper))
    clamped = (t_clamp.output_domain, t_clamp.output_metric)
    d_mid = t_clamp.map(D_IN)  # clamping is 1-stable: still 2

    measurements, selection_scale = _quantile_measurements(clamped, bounds, d_mid, epsilon_per_statistic, quantiles)
    mean_noise = None
    if "mean" in wanted:
        m_sum, mean_noise = _mean_measurement(clamped, d_mid, epsilon_per_statistic, n)
        measurements.append(m_sum)

    release = t_clamp >> dp.c.make_composition(measurements)
    epsilon_cell = release.map(D_IN)

    drawn = release(data)  # the only place noise is drawn
    result: dict = {name: None for name in STATISTICS}
    # post-processing: quantiles sorted (each is drawn independently and could cross),
    # the mean clamped to the bounds
    for (name, _), value in zip(quantiles, sorted(drawn[:len(quantiles)])):
        result[name] = value
    if "mean" in wanted:
        result["mean"] = min(max(drawn[-1] / n, lower), upper)

    result["noise"] = {
        "epsilon_per_statistic": epsilon_per_statistic,
        "epsilon_cell": epsilon_cell,
        "n": n,
        "statistics": list(wanted),
        "mean": mean_noise,
        "quantiles": None if not quantiles else {
            "mechanism": "exponential report-noisy-max over candidates",
            "epsilon": epsilon_per_statistic,
            "candidates": QUANTILE_CANDIDATES,
            "spacing": (upper - lower) / (QUANTILE_CANDIDATES - 1),
            "selection_scale": selection_scale,
        },
    }
    return result


def _checked(values: Sequence[float], n: int | None, epsilon_per_statistic: float,
             statistics: Sequence[str]) -> tuple[list[float], int, tuple[str, ...], list[tuple[str, float]]]:
    """private_cell's inputs checked: the values as floats, n, the statistics wanted and their quantiles."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("a private cell needs at least one value")
    if any(math.isnan(v) for v in data):
        raise ValueError("values must not contain NaN; drop missing values before the cell")
    if n is None:
        n = len(data)
    elif n != len(data):
        raise ValueError(f"public cell size n={n} does not match {len(data)} values")
    if isinstance(epsilon_per_statistic, bool) or not math.isfinite(epsilon_per_statistic) \
            or epsilon_per_statistic <= 0:
        raise ValueError(f"epsilon_per_statistic must be a finite number > 0, "
                         f"got {epsilon_per_statistic!r}")
    wanted = tuple(name for name in STATISTICS if name in statistics)
    if not wanted or set(statistics) - set(STATISTICS):
        raise ValueError(f"statistics must be a non-empty subset of {STATISTICS}, got {tuple(statistics)!r}")
    return data, n, wanted, [(name, alpha) for name, alpha in _QUANTILES if name in wanted]


def _quantile_measurements(clamped, bounds: Bounds, d_mid, epsilon_per_statistic: float,
                           quantiles: list[tuple[str, float]]) -> tuple[list, float | None]:
    """One exponential-mechanism measurement per quantile, each calibrated to the budget."""
    measurements: list = []
    selection_scale = None
    if not quantiles:
        return measurements, selection_scale
    lower, upper = float(bounds.lower), float(bounds.upper)
    grid = candidate_grid(bounds)
    # The quantile's privacy map depends on n, alpha and scale, not on the
    # candidates: probe it cheaply with the two end points, then build and
    # check (``_calibrated``) each real 256-candidate measurement.
    _, selection_scale = _calibrated(
        lambda s: dp.m.make_private_quantile(
            *clamped, dp.max_divergence(), candidates=[lower, upper], alpha=0.5, scale=s),
        d_mid, epsilon_per_statistic)
    for _, alpha in quantiles:
        m_quantile, selection_scale = _calibrated(
            lambda s, a=alpha: dp.m.make_private_quantile(
                *clamped, dp.max_divergence(), candidates=grid, alpha=a, scale=s),
            d_mid, epsilon_per_statistic, selection_scale)
        measurements.append(m_quantile)
    return measurements, selection_scale


def _mean_measurement(clamped, d_mid, epsilon_per_statistic: float, n: int) -> tuple[object, dict]:
    """The Laplace measurement of the clamped sum (the mean is the sum / the public n), and its noise."""
    t_sum = dp.t.make_sum(*clamped)
    sum_sensitivity = t_sum.map(d_mid)
    m_sum, sum_scale = _calibrated(lambda s: t_sum >> dp.m.then_laplace(scale=s),
                                   d_mid, epsilon_per_statistic)
    mean_scale = sum_scale / n
    return m_sum, {
        "mechanism": "laplace",
        "epsilon": epsilon_per_statistic,
        "laplace_scale": mean_scale,
        "std": math.sqrt(2) * mean_scale,
        "sum_sensitivity": sum_sensitivity,
        "sum_laplace_scale": sum_scale,
    }


def quantile_rank_error(epsilon_per_statistic: float) -> float:
    """About how far, in institutions by rank, a released quantile lands from the exact one in
    9 draws of 10: ``ln(QUANTILE_CANDIDATES) / epsilon_per_statistic`` (measured with
    scripts/dp_accuracy.py; the exponential mechanism's utility bound is of the same order).
    Once it nears ``n / 2`` the quantile is close to a uniform draw from the candidate grid."""
    if not epsilon_per_statistic > 0:
        raise ValueError(f"epsilon_per_statistic must be > 0, got {epsilon_per_statistic!r}")
    return math.log(QUANTILE_CANDIDATES) / epsilon_per_statistic


def privacy_summary(epsilon: float, cells_per_institution: int, statistics_per_cell: int,
                    epsilon_per_statistic: float, refreshes: int = 1,
                    statistics: Sequence[str] = STATISTICS) -> dict:
    """What the release manifest records about the differential-privacy plan.

    ``epsilon`` is the budget of one institution over the accounting period (a
    calendar year), planned as ``refreshes`` draws of at most
    ``cells_per_institution`` cells of ``statistics_per_cell`` statistics.
    Raises ValueError if the per-statistic epsilon would overspend ``epsilon``
    under basic composition.  What was actually spent is recorded by
    dp_budget.py (``budget``), not here.
    """
    split_budget(epsilon, cells_per_institution, statistics_per_cell, refreshes)  # validates
    planned = refreshes * cells_per_institution * statistics_per_cell * epsilon_per_statistic
    if not epsilon_per_statistic > 0 or planned > epsilon * (1 + 1e-9):
        raise ValueError(f"{refreshes} refreshes x {cells_per_institution} cells x {statistics_per_cell} "
                         f"statistics x epsilon {epsilon_per_statistic} = {planned} exceeds the budget {epsilon}")
    mechanisms = {}
    if any(name in statistics for name, _ in _QUANTILES):
        mechanisms["quantiles"] = _QUANTILE_MECHANISM
    if "mean" in statistics:
        mechanisms["mean"] = _MEAN_MECHANISM
    return {
        "epsilon": epsilon,
        "epsilon_planned": planned,
        "epsilon_per_statistic": epsilon_per_statistic,
        "epsilon_per_cell": statistics_per_cell * epsilon_per_statistic,
        "refreshes": refreshes,
        "cells_per_institution": cells_per_institution,
        "statistics_per_cell": statistics_per_cell,
        "statistics": [name for name in STATISTICS if name in statistics],
        "composition": "basic sequential composition: epsilon_planned = refreshes x cells_per_institution x "
                       "statistics_per_cell x epsilon_per_statistic <= epsilon",
        "privacy_unit": "one institution",
        "neighbouring": "datasets differing in the value of one institution; "
                        "cell membership and n are public",
        "measure": "pure epsilon-DP (max divergence)",
        "mechanisms": mechanisms,
        "quantile_candidates": QUANTILE_CANDIDATES,
        "post_processing": "quantiles sorted" + ("; mean clamped to the KPI bounds" if "mean" in statistics else ""),
        "noise_drawn": "once per cell and refresh, at publish; a cell whose inputs are unchanged keeps its "
                       "released values and spends nothing",
        "library": f"opendp {metadata.version('opendp')}",
    }
