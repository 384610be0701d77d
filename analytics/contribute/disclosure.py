"""The disclosure layer: every figure a release carries passes through here.

docs/privacy.md states the threat model, the rules and their parameters in plain words.
In short, a member that keeps every release and knows who joined or left must not be able
to subtract two releases, two parts of one release or two peer groups and read out one
institution's figures, nor tell from count differences whether it holds a work.

- **Magnitudes** (loans, renewals, e-usage counts, reading-list counts) are perturbed per
  contributing institution before they are aggregated (noise infusion, as the US Census
  Bureau does for County Business Patterns and QWI): each value moves by at least
  MAGNITUDE_NOISE[0] of itself and never less than one unit, at most MAGNITUDE_NOISE[1]
  (or one unit for small values), up or down. The noise is keyed by the institution's
  secret and the cell (work, month, ...), so it is the same in every release: differencing
  two releases gives the institution's noisy value, never its own, and keeping more
  releases averages nothing away. `perturb_contribution` applies it when the system job
  builds a contribution, so exact values never reach the contributions folder.
- **KPI values** of benchmark contributors get a persistent multiplicative factor per
  institution, KPI and period, 1 ± U(KPI_NOISE): n × mean differences, medians that land
  on a joiner's value and quantiles all return a value that is 2-5% off.
- **Counts of institutions** (holding, acquiring, lending, listing, loading) get
  cell-key perturbation (ABS TableBuilder, ONS Census 2021): noise from COUNT_NOISE drawn
  from a key of the set of institutions in the cell *and* the population the figure is
  computed over (the region's contributors of the service, or the peer group). The same
  cell from the same institutions always gets the same noise; a join or leave in the
  population redraws the noise of every cell, held or not, so the count that changed does
  not single out the works the newcomer holds. A count is released only when both the
  true and the perturbed count reach K_TITLE, so a row appearing or vanishing is itself
  noisy.
- **Descriptive text** is released only when at least K_TITLE holders agree on it
  (release_sql.TITLES); otherwise TITLE_WITHHELD, never one holder's wording.

Nothing here draws fresh randomness at publish: all noise derives from per-institution
secrets kept in the control database (store.noise_keys), drawn once (store.new_secret) and never
released.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

# Per-contributor noise on integer magnitudes: |d| in [max(1, a*x), max(1, b*x)], rounded up.
MAGNITUDE_NOISE = (0.02, 0.10)
# Multiplicative factor on each contributor's KPI value: 1 ± U(a, b).
KPI_NOISE = (0.02, 0.05)
# Cell-key perturbation of counts of institutions: noise value -> probability.
COUNT_NOISE: dict[int, float] = {-2: 0.2, -1: 0.2, 0: 0.2, 1: 0.2, 2: 0.2}
TITLE_WITHHELD = "Title withheld: the holders' records differ"
# Ignored when holders' texts are compared (with case and runs of spaces).
PUNCTUATION = ".,:;/\\[](){}\"'!?-_&+*#|<>=~`^@$%"

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a fixed, well-mixing permutation of 64-bit integers (wraps)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _digest(key: bytes, text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), key=key[:64], digest_size=8).digest(), "little")


def _column_hash(column: pl.Series) -> np.ndarray:
    """A version-stable 64-bit hash per row: integers as they are, strings through BLAKE2b once
    per distinct value. Unkeyed: the secret enters through keyed_uniform's starting state."""
    if column.is_empty():
        return np.zeros(0, dtype=np.uint64)
    if column.dtype.is_integer() or column.dtype.is_decimal():  # DuckDB sums BIGINTs to DECIMAL(38,0)
        return column.fill_null(-1).cast(pl.Int64).to_numpy().astype(np.uint64)
    text = column.cast(pl.String).fill_null("\x00")
    distinct = text.unique()
    codes = pl.Series([_digest(b"", value) for value in distinct.to_list()], dtype=pl.UInt64)
    return np.asarray(text.replace_strict(distinct, codes, return_dtype=pl.UInt64).to_numpy(), dtype=np.uint64)


def hashed(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """`frame` with an integer hash column _h_<name> for each string column named: hash once,
    then draw as many keyed numbers from it as needed."""
    return frame.with_columns(pl.Series(f"_h_{c}", _column_hash(frame[c]).view(np.int64)) for c in columns)


def keyed_uniform(key: bytes, label: str, columns: Sequence[pl.Series], height: int, stream: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) per row, a fixed function of the key, the label and the
    row's values in `columns`: the same cell always gets the same number."""
    state = np.full(height, _digest(key, f"{label}#{stream}"), dtype=np.uint64)
    for column in columns:
        state = _splitmix(state ^ _column_hash(column))
    state = _splitmix(state)
    return (state >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _noisy_integers(values: np.ndarray, u_sign: np.ndarray, u_size: np.ndarray) -> np.ndarray:
    low, high = MAGNITUDE_NOISE
    x = values.astype(np.float64)
    lower, upper = np.maximum(1.0, low * x), np.maximum(1.0, high * x)
    size = np.ceil(lower + (upper - lower) * u_size)
    moved = np.maximum(0.0, x + np.where(u_sign < 0.5, -size, size))
    return np.where(x > 0, moved, x).astype(np.int64)


# The magnitude columns of each contribution table and the columns that identify its cell.
MAGNITUDES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "loans": (("work_key", "month"), ("loans", "renewals")),
    "e_usage": (("work_key", "platform", "month", "metric_type"), ("count",)),
    "reading_lists": (("work_key", "term"), ("lists", "citations", "required_citations")),
}


def perturb_contribution(tables: dict[str, pl.DataFrame], secret: str) -> dict[str, pl.DataFrame]:
    """The contribution with every magnitude replaced by its persistent noisy value.

    Rows keep their place and their number; a value of 0 stays 0 (a row with nothing in it
    says nothing about the work). Tables without magnitudes are returned as they are.
    """
    key = bytes.fromhex(secret)
    out = dict(tables)
    for table, (cell, columns) in MAGNITUDES.items():
        frame = tables.get(table)
        if frame is None or frame.is_empty():
            continue
        hashes = hashed(frame, cell)  # each cell column hashed once, then drawn from as integers
        parts = [hashes[f"_h_{c}"] for c in cell]
        noisy = {}
        for column in columns:
            u_sign = keyed_uniform(key, f"{table}.{column}", parts, frame.height, stream=0)
            u_size = keyed_uniform(key, f"{table}.{column}", parts, frame.height, stream=1)
            noisy[column] = pl.Series(column, _noisy_integers(frame[column].fill_null(0).to_numpy(), u_sign, u_size))
        out[table] = frame.with_columns(
            pl.when(pl.col(c).is_null()).then(None).otherwise(noisy[c]).cast(frame.schema[c]).alias(c)
            for c in columns)
    return out


def kpi_factors(secret: str, kpis: pl.Series, periods: pl.Series) -> np.ndarray:
    """The persistent factor 1 ± U(KPI_NOISE) of one institution for each (kpi, period)."""
    key = bytes.fromhex(secret)
    low, high = KPI_NOISE
    u_sign = keyed_uniform(key, "kpi", [kpis, periods], len(kpis), stream=0)
    u_size = keyed_uniform(key, "kpi", [kpis, periods], len(kpis), stream=1)
    return 1.0 + np.where(u_sign < 0.5, -1.0, 1.0) * (low + (high - low) * u_size)


def record_key(secret: str) -> int:
    """The institution's record key (ABS cell-key method): a fixed random 31-bit integer. The
    XOR of the record keys of the institutions in a cell identifies the set without naming it."""
    return _digest(bytes.fromhex(secret), "record") % (1 << 31)


def population_key(secrets: Iterable[str]) -> bytes:
    """A key for a population (contributors of a region, or a peer group): it changes
    whenever one institution joins or leaves it, and only then."""
    joined = "|".join(sorted(secrets))
    return hashlib.blake2b(joined.encode(), digest_size=32, person=b"population").digest()


def _count_noise(u: np.ndarray) -> np.ndarray:
    values = np.array(sorted(COUNT_NOISE), dtype=np.int64)
    edges = np.cumsum([COUNT_NOISE[v] for v in values])
    return values[np.minimum(np.searchsorted(edges, u, side="right"), len(values) - 1)]


def perturb_count(frame: pl.DataFrame, column: str, set_key: str, label: str,
                  populations: dict[tuple, bytes], by: Sequence[str], cell: Sequence[str],
                  k_title: int | None, floor: bool = False) -> pl.DataFrame:
    """Replace the true count in `column` by its cell-key perturbed value.

    `set_key` is the column holding the XOR of the record keys of the institutions counted;
    `populations` maps the values of the `by` columns (region, or region and peer group) to
    the population key; `cell` names the columns that identify the figure besides its set
    (pass integer columns, e.g. from hashed(); months are left out where the same
    institutions give the same figure, so that every month of a cumulative count carries the
    same noise). With `k_title`, a count is kept only when the true and the perturbed count
    both reach it (else null); with `floor` as well, a true count that reaches it is always
    kept and shown as at least k_title; without `k_title`, it is clipped at 0.
    """
    if frame.is_empty():
        return frame
    # The starting state of every row from its population's key, in one vectorised pass.
    seeds = pl.DataFrame([{**dict(zip(by, values)), "_seed": _digest(key, f"{label}#0")}
                          for values, key in populations.items() if len(values) == len(by)],
                         schema={**{b: frame.schema[b] for b in by}, "_seed": pl.UInt64})
    state = frame.select(by).join(seeds, on=list(by), how="left", maintain_order="left")["_seed"].to_numpy()
    for column_name in (*cell, set_key):
        state = _splitmix(state ^ _column_hash(frame[column_name]))
    u = (_splitmix(state) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    true = frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    noisy = true + _count_noise(u)
    if k_title is None:
        shown = np.where(np.isnan(true), np.nan, np.maximum(noisy, 0))
    elif floor:
        shown = np.where(true >= k_title, np.maximum(noisy, k_title), np.nan)
    else:
        shown = np.where((true >= k_title) & (noisy >= k_title), noisy, np.nan)
    return frame.with_columns(pl.Series(column, shown, nan_to_null=True).cast(pl.Int64))


# -- the released title-level tables ------------------------------------------------------------

# Per release table: the columns that select the population (region, or region and peer group);
# each count of institutions as (column, its set-key column, label, cell columns, threshold) where
# threshold is "both" (true and perturbed count reach K_TITLE), "floor" (the true count reaches it;
# shown as at least K_TITLE) or None (clipped at 0);
# a row is kept when at least one of `required` is released; `sums` are clipped at 0 (their
# noise came in with the contributions).
_HOLDING = ("work_key",)
COUNT_SPECS: dict[str, dict] = {
    "holdings": {"by": ("region",), "required": ("institutions_holding",), "sums": (), "counts": (
        ("institutions_holding", "holding_key", "holding", _HOLDING, "both"),
        ("institutions_acquiring", "acquiring_key", "acquiring", _HOLDING, None))},
    "loans": {"by": ("region",), "required": ("institutions_lending",), "sums": ("loans",), "counts": (
        ("institutions_lending", "lending_key", "lending", _HOLDING, "floor"),)},
    "e_usage": {"by": ("region",), "required": ("institutions",), "sums": ("count",), "counts": (
        ("institutions", "institutions_key", "using", ("work_key", "metric_type"), "floor"),)},
    "reading_lists": {"by": ("region",), "required": ("institutions",), "sums": ("lists",), "counts": (
        ("institutions", "institutions_key", "listing_term", _HOLDING, "floor"),)},
    "peer_selection": {"by": ("region", "peer_group"), "required": ("institutions_holding", "institutions_listing"),
                       "sums": (), "counts": (
        ("institutions_holding", "holding_key", "holding", _HOLDING, "both"),
        ("institutions_acquired_12m", "acquired_key", "acquired_12m", _HOLDING, "both"),
        ("institutions_listing", "listing_key", "listing", _HOLDING, "both"))},
    "retention": {"by": ("region",), "required": ("institutions_committed",), "sums": (), "counts": (
        ("institutions_committed", "committed_key", "committing", _HOLDING, "both"),)},
    # Not a release table: the programs of retention rows, before they are joined into them.
    "retention_programs": {"by": ("region",), "required": ("institutions",), "sums": (), "counts": (
        ("institutions", "institutions_key", "committing_program", ("work_key", "program"), "both"),)},
    "work_use": {"by": ("region",), "required": ("holders",), "sums": (), "counts": (
        ("holders", "holders_key", "holding_print", _HOLDING, "both"),)},
    "platform_titles": {"by": ("region",), "required": ("institutions",), "sums": (), "counts": (
        ("institutions", "institutions_key", "platform_using", ("work_key", "platform"), "both"),)},
    "platforms": {"by": ("region",), "required": ("institutions_holding",), "sums": (), "counts": (
        ("institutions_holding", "holding_key", "platform_holding", ("platform",), "both"),
        ("institutions_loading", "loading_key", "platform_loading", ("platform",), "both"))},
}


def populations(members: dict[tuple, Iterable[str]]) -> dict[tuple, bytes]:
    """Population keys from the secrets of each population's members."""
    return {key: population_key(secrets) for key, secrets in members.items()}


def protect_table(table: str, frame: pl.DataFrame, pops: dict[tuple, bytes], k_title: int) -> pl.DataFrame:
    """A title-level release table with every count of institutions perturbed and thresholded
    (perturb_count), rows without a released count dropped and sums clipped at 0."""
    spec = COUNT_SPECS[table]
    text = sorted({c for _n, _k, _l, cell, _t in spec["counts"] for c in cell})
    work = hashed(frame, text)
    for column, set_key, label, cell, threshold in spec["counts"]:
        work = perturb_count(work, column, set_key, label, pops, spec["by"], [f"_h_{c}" for c in cell],
                             k_title if threshold else None, floor=threshold == "floor")
    kept = pl.any_horizontal(pl.col(c).is_not_null() for c in spec["required"])
    return (work.filter(kept)
            .with_columns(pl.col(c).clip(lower_bound=0) for c in spec["sums"])
            .drop([f"_h_{c}" for c in text]))


def exact_counts(table: str, frame: pl.DataFrame, k_title: int) -> pl.DataFrame:
    """The same table without disclosure control (measurement of the protection's cost only):
    counts below K_TITLE withheld as before the disclosure layer existed."""
    spec = COUNT_SPECS[table]
    work = frame
    for column, _key, _label, _cell, threshold in spec["counts"]:
        if threshold:
            work = work.with_columns(pl.when(pl.col(column) >= k_title).then(pl.col(column)).alias(column))
    return work.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in spec["required"]))


def manifest_note() -> dict:
    """What the manifest says about the disclosure layer (public parameters; never a secret)."""
    return {"protected": True,
            "magnitudes": {"method": "persistent per-institution noise infusion before aggregation",
                           "relative_range": list(MAGNITUDE_NOISE), "minimum_units": 1},
            "kpi_values": {"method": "persistent multiplicative factor per institution, KPI and period",
                           "relative_range": list(KPI_NOISE)},
            "counts": {"method": "cell-key perturbation keyed by the counted institutions and the population",
                       "noise": {str(k): v for k, v in sorted(COUNT_NOISE.items())},
                       "threshold": "true and perturbed count both at least K_TITLE"},
            "text": "released only where at least K_TITLE holders agree (case, punctuation and spacing ignored)"}
