"""The yearly differential-privacy budget of the benchmark release, accounted across releases.

``publish --epsilon E`` gives every institution a budget of E per calendar year (the year of
the release's as-of date). The budget is planned (``Plan``) and accounted here, in the control
database, across all releases of the year; the mechanisms themselves are in privacy.py.

The plan (defaults of ``Plan``; the module docstring of privacy.py states the resulting
epsilon per statistic and the accuracy):

* Scope: only what the Benchmarks page needs is released with differential privacy: p25,
  median and p75 (the watchlist, the position band, the box and the trend); the mean (a
  dashed line in the box) and the trimmed variant are not. Only the yearly periods, the broad
  peer groups ``all`` and ``type=...``, and the KPIs that are ratios or percentages (``DP_KPIS``:
  the public bounds of the absolute counts, up to 100 million, leave a quantile grid step of up
  to 390,000 and cannot carry useful noise). Other cells are suppressed with a reason.
* Only the last complete year (as-of year - 1) is drawn. Earlier years keep the figures drawn
  while they were the last complete year (without charge); they are never redrawn.
* A cell is drawn at most once per refresh period (``refreshes`` per year, 12 = monthly, the
  benchmark cycle). An institution is in at most ``cells_per_institution`` drawn cells
  (one per DP KPI and broad group), so ``refreshes x cells x statistics x epsilon_per_statistic
  = E``: even if every cell changed every month the budget would last the year.

Accounting, per cell (region, peer group, KPI, period) that select_cells() releases:

* A keyed fingerprint (HMAC-SHA256 under a key kept in the community directory, outside the
  database) of the cell's inputs -- member codes, the multiset of values, the KPI bounds, the
  statistics -- is stored with the released noisy statistics and the member codes
  (``dp_cells``). Never the values.
* Unchanged fingerprint: the stored noisy values are released again; nothing is spent
  (post-processing of an earlier release).
* Changed or new: new noise is drawn and every member is charged ``statistics x
  epsilon_per_statistic`` in ``dp_charges`` -- unless the cell was already drawn in this
  refresh period, or a member's remaining budget is too small. Then the previous noisy values
  are released marked stale (``reason`` starts with "stale:") -- only if every institution they
  were drawn from still contributes: figures of an institution that stopped sharing are never
  published again -- or else the cell is suppressed ("suppressed: this year's privacy budget is
  spent").
* Charges and drawn values are committed together when drawn, before the release is written:
  a release that then fails still counts (conservative); the next publish reuses its values.
* A new calendar year starts a new budget.

What this does not hide: whether a cell's inputs changed since its last draw (its figures
change or are marked stale), and from it the spend in the manifest. That one bit per cell and
release is not covered by epsilon.
"""

from __future__ import annotations

from analytics.core.errors import InvalidValue

import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import sqlalchemy as sa

# The ledger's tables are declared with the control database's other tables (created and dropped with them).
from analytics.control.store import dp_cells, dp_charges, utcnow

# -- the plan -------------------------------------------------------------------------------------

#: KPIs released with differential privacy: ratios and percentages with narrow public bounds.
DP_KPIS = ("turnover_rate", "pct_circulated", "loans_per_fte", "e_usage_per_fte", "e_usage_per_etitle",
           "concentration_of_use", "unique_share", "reading_list_held_pct", "median_age",
           "circulation_per_fte", "visits_per_fte", "circulation_per_capita")

REASON_SPENT = "suppressed: this year's privacy budget is spent"
REASON_TRIMMED = "suppressed: the trimmed variant is not released with differential privacy"
REASON_MONTHLY = "suppressed: monthly figures are not released with differential privacy"
KEY_FILE = ".dp-fingerprint.key"


@dataclass(frozen=True)
class Plan:
    """How the yearly budget is spent: which cells are drawn and how often."""

    kpis: tuple[str, ...] = DP_KPIS
    group_kinds: tuple[str, ...] = ("all", "type")  # peer-group kinds, as group_kind() names them
    statistics: tuple[str, ...] = ("p25", "median", "p75")
    refreshes: int = 12  # draws per cell and year at most: 12 = once per calendar month

    def __post_init__(self) -> None:
        if not (isinstance(self.refreshes, int) and 1 <= self.refreshes <= 12):
            raise ValueError(f"refreshes must be a whole number from 1 to 12, got {self.refreshes!r}")
        if not self.kpis or not self.group_kinds or not self.statistics:
            raise ValueError("a plan needs at least one KPI, peer-group kind and statistic")

    @property
    def cells_per_institution(self) -> int:
        """Drawn cells one institution is in per refresh: one per KPI and group kind, one period."""
        return len(self.kpis) * len(self.group_kinds)

    def epsilon_per_statistic(self, epsilon: float) -> float:
        from analytics.release import privacy

        return privacy.split_budget(epsilon, self.cells_per_institution, len(self.statistics), self.refreshes)

    def epsilon_per_cell(self, epsilon: float) -> float:
        """What one draw of one cell charges each of its members."""
        return len(self.statistics) * self.epsilon_per_statistic(epsilon)

    def refresh_of(self, day: date) -> int:
        """The refresh period (0 .. refreshes - 1) of the year that `day` falls in."""
        return (day.month - 1) * self.refreshes // 12


PLAN = Plan()


def group_kind(peer_group: str) -> str:
    """'all', 'type', 'size', 'country' or 'type&size' for a released peer-group name."""
    if peer_group == "all":
        return "all"
    return "&".join(part.split("=", 1)[0] for part in peer_group.split("&"))


# -- fingerprints -----------------------------------------------------------------------------------

def fingerprint_key(directory: Path) -> bytes:
    """The secret key of the cell fingerprints: `directory`/.dp-fingerprint.key, created on first
    use (mode 0600). It is kept out of the control database so that a copy of the database alone
    cannot be used to test guesses of a value against a fingerprint. Losing it makes every cell
    look changed (they are then redrawn and charged again, or released stale)."""
    path = Path(directory) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def fingerprint(key: bytes, region: str, peer_group: str, kpi: str, period: str, members: Iterable[str],
                values: Iterable[float], bounds: tuple[float, float], statistics: Iterable[str]) -> str:
    """HMAC-SHA256 (hex) of everything a cell's noisy statistics are drawn from: the member codes,
    the multiset of values (order does not matter: the statistics do not depend on it), the
    clamping bounds and the statistics drawn."""
    payload = json.dumps({
        "version": 1,
        "cell": [region, peer_group, kpi, period],
        "members": sorted(members),
        "values": sorted((float(v) + 0.0).hex() for v in values),
        "bounds": [float(b).hex() for b in bounds],
        "statistics": list(statistics),
    }, separators=(",", ":"), sort_keys=True)
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


# -- the account ------------------------------------------------------------------------------------

def yearly_spend(job, year: int) -> dict[str, float]:
    """Epsilon each institution has spent in `year` (institution code -> epsilon). `job` is a
    SystemJobStore: the account is the system job's."""
    with job.engine.connect() as con:
        return _spend(con, year)


def _spend(con, year: int) -> dict[str, float]:
    rows = con.execute(sa.select(dp_charges.c.institution_code, sa.func.sum(dp_charges.c.epsilon))
                       .where(dp_charges.c.year == year).group_by(dp_charges.c.institution_code)).all()
    return {code: float(total) for code, total in rows}


class DPRelease:
    """The differential-privacy side of one publish.

    ``job`` is the publish's SystemJobStore, ``epsilon`` the budget per institution and calendar
    year, ``as_of`` the release's as-of date (its year is the budget's), ``key`` the fingerprint
    key (fingerprint_key()). ``release_rows`` decides, draws, charges and records every cell.
    """

    def __init__(self, job, epsilon: float, as_of: date, release_id: str, key: bytes, plan: Plan = PLAN):
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) \
                or epsilon <= 0:
            raise InvalidValue(f"privacy budget epsilon must be a finite number > 0, got {epsilon!r}")
        self.engine = job.engine
        self.epsilon = float(epsilon)
        self.as_of = as_of
        self.release_id = release_id
        self.key = key
        self.plan = plan

    def release_rows(self, cells: list[dict], codes: Mapping[int, str]) -> tuple[pl.DataFrame, dict]:
        """benchmarks.parquet rows (both variants of every cell) and the manifest's note, for
        `cells` after benchmark_cells.select_cells(). `codes` maps the members' ids to institution codes."""
        from analytics.release.benchmark_cells import group_rank
        from analytics.release.manifest import RELEASE_SCHEMA

        schema = RELEASE_SCHEMA["benchmarks.parquet"]
        with self.engine.begin() as con:
            stored = {(r["region"], r["peer_group"], r["kpi"], r["period"]): r
                      for r in con.execute(sa.select(dp_cells)).mappings()}
            spent = _spend(con, self.as_of.year)
            drawing = _Drawing(self, schema, codes, stored, spent)
            for cell in sorted(cells, key=lambda c: (c["region"], c["kpi"], c["period"],
                                                     group_rank(c["peer_group"]))):
                drawing.add(cell)
            self._record(con, self.as_of.year, drawing.drawn, stored, drawing.charged, drawing.charged_cells)
        note = self._note(drawing, spent)
        rows = drawing.rows
        frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
        return frame.sort("region", "peer_group", "kpi", "period", "variant"), note

    def _note(self, drawing: "_Drawing", spent: dict[str, float]) -> dict:
        """What the manifest records about this release's differential privacy (over institutions,
        never per institution: the manifest is public to members)."""
        from analytics.release import privacy

        plan, charged = self.plan, drawing.charged
        year_spend = {m: spent.get(m, 0.0) + charged.get(m, 0.0) for m in {*spent, *charged}}
        spent_max = max(year_spend.values(), default=0.0)
        return {
            "method": "differential privacy",
            **privacy.privacy_summary(self.epsilon, plan.cells_per_institution, len(plan.statistics),
                                      drawing.per_statistic, plan.refreshes, plan.statistics),
            "scope": {
                "kpis": list(plan.kpis),
                "peer_groups": list(plan.group_kinds),
                "periods": f"yearly; the last complete year ({drawing.drawn_period}) is drawn, earlier years keep "
                           f"the figures drawn while they were the last complete year; monthly figures and the "
                           f"trimmed variant are not released",
            },
            "budget": {
                "year": self.as_of.year,
                "epsilon_per_year": self.epsilon,
                "refresh": f"{drawing.refresh + 1} of {plan.refreshes}",
                "epsilon_spent_release_max": max(charged.values(), default=0.0),
                "epsilon_spent_year_max": spent_max,
                "epsilon_remaining_min": max(self.epsilon - spent_max, 0.0),
                "cells": drawing.counts,
            },
        }

    def _out_of_scope(self, cell: dict) -> str | None:
        """Why the plan does not release the cell with differential privacy, or None."""
        plan = self.plan
        if len(cell["period"]) != 4:
            return REASON_MONTHLY
        if group_kind(cell["peer_group"]) not in plan.group_kinds:
            return ("suppressed: only the peer groups " + " and ".join(plan.group_kinds) +
                    " are released with differential privacy")
        if cell["kpi"] not in plan.kpis:
            return ("suppressed: not released with differential privacy (the KPI's public range is too wide "
                    "for useful noise)")
        return None

    def _record(self, con, year: int, drawn: list[dict], stored: Mapping, charged: Mapping[str, float],
                charged_cells: Mapping[str, int]) -> None:
        now = utcnow()
        if charged:
            con.execute(dp_charges.insert(), [
                {"year": year, "institution_code": code, "release_id": self.release_id, "epsilon": epsilon,
                 "cells": charged_cells[code], "charged_at": now} for code, epsilon in sorted(charged.items())])
        for record in drawn:
            key = (record["region"], record["peer_group"], record["kpi"], record["period"])
            if key in stored:
                con.execute(dp_cells.update().where(
                    dp_cells.c.region == key[0], dp_cells.c.peer_group == key[1], dp_cells.c.kpi == key[2],
                    dp_cells.c.period == key[3]).values(record))
            else:
                con.execute(dp_cells.insert().values(record))


class _Drawing:
    """One release's pass over the benchmark cells: the rows it writes, what it counts, and the
    budget it charges each institution."""

    def __init__(self, release: "DPRelease", schema: dict, codes: Mapping[int, str], stored: dict,
                 spent: dict[str, float]):
        plan = release.plan
        self.release, self.plan, self.schema, self.codes = release, plan, schema, codes
        self.stored, self.spent = stored, spent
        self.year = release.as_of.year
        self.drawn_period, self.refresh = str(self.year - 1), plan.refresh_of(release.as_of)
        self.per_statistic = plan.epsilon_per_statistic(release.epsilon)
        self.per_cell = plan.epsilon_per_cell(release.epsilon)
        self.contributing = set(codes.values())
        self.rows: list[dict] = []
        self.counts = dict.fromkeys(("drawn", "kept", "stale", "suppressed_budget", "out_of_scope"), 0)
        self.charged: dict[str, float] = {}
        self.charged_cells: dict[str, int] = {}
        self.drawn: list[dict] = []

    def row(self, cell: dict, variant: str, **values) -> dict:
        base = dict.fromkeys(self.schema)
        base.update(region=cell["region"], peer_group=cell["peer_group"], kpi=cell["kpi"],
                    period=cell["period"], variant=variant, suppressed=False, reason=None)
        base.update(values)
        return base

    def suppressed(self, cell: dict, reason: str) -> None:
        self.rows.append(self.row(cell, "none", suppressed=True, reason=reason))

    def noisy(self, cell: dict, values: Mapping, reason: str | None = None) -> None:
        self.rows.append(self.row(cell, "none", n=values["n"], p25=values["p25"], median=values["median"],
                                  p75=values["p75"], mean=values["mean"], method="dp",
                                  mean_noise_sd=values["mean_noise_sd"], quantile_step=values["quantile_step"],
                                  reason=reason))

    def stale(self, cell: dict, previous: Mapping, why: str) -> None:
        self.counts["stale"] += 1
        self.noisy(cell, previous, f"stale: figures drawn from the data as of {previous['drawn_on'].isoformat()}; "
                                   f"the data changed since and {why}")

    def add(self, cell: dict) -> None:
        """The rows of one cell: suppressed, kept, stale or newly drawn."""
        from analytics.contribute.kpis import CATALOG

        if not cell["released"]:
            for variant in ("none", "trim10"):
                self.rows.append(self.row(cell, variant, suppressed=True, reason=cell["reason"]))
            return
        self.rows.append(self.row(cell, "trim10", suppressed=True, reason=REASON_TRIMMED))
        scope = self.release._out_of_scope(cell)
        if scope:
            self.counts["out_of_scope"] += 1
            self.suppressed(cell, scope)
            return
        key = (cell["region"], cell["peer_group"], cell["kpi"], cell["period"])
        members = [self.codes[m] for m in cell["members"]]
        bounds = CATALOG[cell["kpi"]].bounds
        digest = fingerprint(self.release.key, *key, members, cell["values"], bounds, self.plan.statistics)
        previous = self.stored.get(key)
        if previous is not None and previous["fingerprint"] == digest:
            self.counts["kept"] += 1
            self.noisy(cell, previous)
            return
        if previous is not None and not set(json.loads(previous["members"])) <= self.contributing:
            previous = None  # drawn with an institution that no longer contributes: never shown again
        if cell["period"] != self.drawn_period:
            if previous is None:
                self.counts["out_of_scope"] += 1
                self.suppressed(cell, f"suppressed: with differential privacy only the last complete year "
                                      f"({self.drawn_period}) is drawn; earlier years keep the figures drawn while "
                                      f"they were the last complete year")
            else:
                self.stale(cell, previous, "earlier years are not redrawn")
        elif previous is not None and (previous["drawn_year"], previous["drawn_refresh"]) == (self.year, self.refresh):
            self.stale(cell, previous, "figures are redrawn at most " +
                       ("once a month" if self.plan.refreshes == 12 else f"{self.plan.refreshes} times a year"))
        elif all(self.spent.get(m, 0.0) + self.charged.get(m, 0.0) + self.per_cell
                 <= self.release.epsilon * (1 + 1e-9) for m in members):
            self.draw(cell, key, members, bounds, digest)
        elif previous is not None:
            self.stale(cell, previous, "this year's privacy budget is spent")
        else:
            self.counts["suppressed_budget"] += 1
            self.suppressed(cell, REASON_SPENT)

    def draw(self, cell: dict, key: tuple, members: list[str], bounds: tuple, digest: str) -> None:
        """Draw the cell's noisy figures, record them and charge its members."""
        from analytics.release import privacy

        low, high = bounds
        values = privacy.private_cell(cell["values"], privacy.Bounds(low, high), self.per_statistic,
                                      n=cell["n"], statistics=self.plan.statistics)
        quantiles, mean = values["noise"]["quantiles"], values["noise"]["mean"]
        record = {"region": key[0], "peer_group": key[1], "kpi": key[2], "period": key[3],
                  "fingerprint": digest, "members": json.dumps(sorted(members)), "n": cell["n"],
                  **{name: values[name] for name in ("p25", "median", "p75", "mean")},
                  "mean_noise_sd": mean and mean["std"],
                  "quantile_step": quantiles and quantiles["spacing"],
                  "epsilon_per_statistic": self.per_statistic, "drawn_year": self.year,
                  "drawn_refresh": self.refresh, "drawn_on": self.release.as_of,
                  "release_id": self.release.release_id}
        self.drawn.append(record)
        for m in members:
            self.charged[m] = self.charged.get(m, 0.0) + self.per_cell
            self.charged_cells[m] = self.charged_cells.get(m, 0) + 1
        self.counts["drawn"] += 1
        self.noisy(cell, record)
