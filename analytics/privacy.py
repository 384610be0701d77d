"""Differentially private benchmark cells, released through OpenDP.

In plain words (for librarians)
-------------------------------
When a release is published with a privacy budget (``publish --epsilon E``),
the benchmark figures (25th percentile, median, 75th percentile and mean of a
KPI over a group of institutions) are not published exactly.  Each figure gets
a small amount of random noise, drawn once when the release is published.
The noise is just large enough that nobody -- not another member, not a
vendor, not us -- can work out any single institution's own number from the
published figures, even if they know every other institution's number.
The number of institutions in a group (*n*) is still shown exactly: who takes
part is not secret, what each one reports is.

Smaller budgets mean more privacy and more noise.  Each published figure comes
with a note on how much noise it may carry (see ``private_cell()["noise"]``),
so the interface can say e.g. "mean +/- 1.4 loans per FTE (typical noise)".
Values outside the plausible range of a KPI (taken from the KPI catalog, never
from the data) are first pulled back to that range, so one extreme value cannot
dominate a figure.

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
* Guarantee: pure epsilon-DP (OpenDP ``max_divergence``).  Every statistic is
  calibrated so that OpenDP's own privacy map gives ``map(2) <= eps_stat``; a
  cell of four statistics costs ``4 * eps_stat`` (basic composition, checked
  by OpenDP's ``make_composition`` and reported as ``noise["epsilon_cell"]``).
  A release in which an institution appears in at most ``C`` cells costs it at
  most ``C * S * eps_stat`` (basic sequential composition, ``split_budget``).
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
* Mean: ``make_clamp -> make_sum -> make_laplace``, divided by the public
  ``n``.  With a known size the sum's sensitivity under one substitution is
  ``upper - lower`` (OpenDP adds a tiny float-rounding allowance, read from
  ``make_sum(...).map(2)``), so the Laplace scale of the sum is
  ``b_sum = sensitivity / eps_stat`` and of the mean ``b = b_sum / n``
  (~ ``(upper - lower) / (eps_stat * n)``); its standard deviation is
  ``sqrt(2) * b``.
* Post-processing (does not weaken the guarantee): the three quantiles are
  sorted so that ``p25 <= median <= p75`` (each is drawn independently and
  could otherwise cross), and the mean is clamped to ``[lower, upper]``
  (the exact clamped mean lies in that interval, so this never increases the
  error).
* Randomness: all noise is drawn by OpenDP's cryptographically secure sampler
  (Laplace via exact discrete sampling on floats).  No Python ``random`` is
  used.
* Noise is drawn once per release: these functions are meant to be called
  once per cell at publish time and the results stored in the release.
  Nothing here caches, memoises or re-draws per view -- re-running
  ``private_cell`` on the same data spends the budget again and must not be
  done for display.
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
#: Number of statistics one cell releases (p25, median, p75, mean).
STATISTICS_PER_CELL = 4

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
                 statistics_per_cell: int = STATISTICS_PER_CELL) -> float:
    """Epsilon for one statistic under basic sequential composition.

    One institution appears in at most ``cells_per_institution`` cells of a
    release and each cell releases ``statistics_per_cell`` numbers, so the
    total ``epsilon`` is divided evenly:
    ``epsilon / (cells_per_institution * statistics_per_cell)``.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
            or not math.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"privacy budget epsilon must be a finite number > 0, got {epsilon!r}")
    for name, count in (("cells_per_institution", cells_per_institution),
                        ("statistics_per_cell", statistics_per_cell)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {count!r}")
    return epsilon / (cells_per_institution * statistics_per_cell)


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
                 n: int | None = None) -> dict:
    """Release p25, median, p75 and mean of one cell with differential privacy.

    ``values`` holds one number per institution.  ``n`` is the public cell
    size (it follows from the released profile lattice and is published
    exactly); it defaults to ``len(values)`` and, if given, must equal it.
    Each of the four statistics costs ``epsilon_per_statistic`` (pure DP, one
    institution's value changed); see the module docstring for the guarantee.

    Returns ``{"p25", "median", "p75", "mean", "noise"}``.  ``noise`` tells the
    UI how noisy the figures are::

        {"epsilon_per_statistic", "epsilon_cell", "n",
         "mean": {"mechanism", "epsilon", "laplace_scale", "std",
                  "sum_sensitivity", "sum_laplace_scale"},
         "quantiles": {"mechanism", "epsilon", "candidates", "spacing",
                       "selection_scale"}}

    ``mean.laplace_scale`` is the Laplace scale b of the released mean in KPI
    units (``sum_laplace_scale / n``), ``mean.std = sqrt(2) * b``.  Quantiles
    are grid candidates, so ``quantiles.spacing`` is their resolution.

    Call once per cell per release; every call draws fresh noise and spends
    the budget again.
    """
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

    dp.enable_features("contrib")
    lower, upper = float(bounds.lower), float(bounds.upper)
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False), size=n),
             dp.symmetric_distance())
    t_clamp = dp.t.make_clamp(*space, bounds=(lower, upper))
    clamped = (t_clamp.output_domain, t_clamp.output_metric)
    d_mid = t_clamp.map(D_IN)  # clamping is 1-stable: still 2

    grid = candidate_grid(bounds)
    # The quantile's privacy map depends on n, alpha and scale, not on the
    # candidates: probe it cheaply with the two end points, then build and
    # check (``_calibrated``) each real 256-candidate measurement.
    _, selection_scale = _calibrated(
        lambda s: dp.m.make_private_quantile(
            *clamped, dp.max_divergence(), candidates=[lower, upper], alpha=0.5, scale=s),
        d_mid, epsilon_per_statistic)
    measurements = []
    for _, alpha in _QUANTILES:
        m_quantile, selection_scale = _calibrated(
            lambda s, a=alpha: dp.m.make_private_quantile(
                *clamped, dp.max_divergence(), candidates=grid, alpha=a, scale=s),
            d_mid, epsilon_per_statistic, selection_scale)
        measurements.append(m_quantile)

    t_sum = dp.t.make_sum(*clamped)
    sum_sensitivity = t_sum.map(d_mid)
    m_sum, sum_scale = _calibrated(lambda s: t_sum >> dp.m.then_laplace(scale=s),
                                   d_mid, epsilon_per_statistic)
    measurements.append(m_sum)

    release = t_clamp >> dp.c.make_composition(measurements)
    epsilon_cell = release.map(D_IN)

    *quantiles, noisy_sum = release(data)  # the only place noise is drawn
    p25, median, p75 = sorted(quantiles)   # post-processing
    mean = min(max(noisy_sum / n, lower), upper)  # post-processing

    mean_scale = sum_scale / n
    return {
        "p25": p25,
        "median": median,
        "p75": p75,
        "mean": mean,
        "noise": {
            "epsilon_per_statistic": epsilon_per_statistic,
            "epsilon_cell": epsilon_cell,
            "n": n,
            "mean": {
                "mechanism": "laplace",
                "epsilon": epsilon_per_statistic,
                "laplace_scale": mean_scale,
                "std": math.sqrt(2) * mean_scale,
                "sum_sensitivity": sum_sensitivity,
                "sum_laplace_scale": sum_scale,
            },
            "quantiles": {
                "mechanism": "exponential report-noisy-max over candidates",
                "epsilon": epsilon_per_statistic,
                "candidates": QUANTILE_CANDIDATES,
                "spacing": (upper - lower) / (QUANTILE_CANDIDATES - 1),
                "selection_scale": selection_scale,
            },
        },
    }


def privacy_summary(epsilon: float, cells_per_institution: int, statistics_per_cell: int,
                    epsilon_per_statistic: float) -> dict:
    """What the release manifest records about the differential-privacy release.

    Raises ValueError if the per-statistic epsilon would overspend ``epsilon``
    under basic composition.
    """
    split_budget(epsilon, cells_per_institution, statistics_per_cell)  # validates
    spent = cells_per_institution * statistics_per_cell * epsilon_per_statistic
    if not epsilon_per_statistic > 0 or spent > epsilon * (1 + 1e-9):
        raise ValueError(f"{cells_per_institution} cells x {statistics_per_cell} statistics x "
                         f"epsilon {epsilon_per_statistic} = {spent} exceeds the budget {epsilon}")
    return {
        "epsilon": epsilon,
        "epsilon_spent": spent,
        "epsilon_per_statistic": epsilon_per_statistic,
        "cells_per_institution": cells_per_institution,
        "statistics_per_cell": statistics_per_cell,
        "composition": "basic sequential composition: epsilon_spent = "
                       "cells_per_institution x statistics_per_cell x epsilon_per_statistic",
        "privacy_unit": "one institution",
        "neighbouring": "datasets differing in the value of one institution; "
                        "cell membership and n are public",
        "measure": "pure epsilon-DP (max divergence)",
        "mechanisms": {"quantiles": _QUANTILE_MECHANISM, "mean": _MEAN_MECHANISM},
        "quantile_candidates": QUANTILE_CANDIDATES,
        "post_processing": "quantiles sorted; mean clamped to the KPI bounds",
        "noise_drawn": "once per release, at publish",
        "library": f"opendp {metadata.version('opendp')}",
    }
