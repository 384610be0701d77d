"""The distributions the demo community draws from (data/reference/demo_profile.csv).

The file is built by scripts/build_demo_profile.py from real item exports (a university
library's stacks, a public library's inventory); data/reference/README.md says which
share is measured and which is an estimate. Two profiles: `academic` (every type of
institution but public libraries) and `public`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

PROFILE_PATH = Path(__file__).resolve().parents[2] / "data" / "reference" / "demo_profile.csv"
PROFILES = ("academic", "public")


def profile_of(institution_type: str) -> str:
    return "public" if institution_type == "public" else "academic"


@lru_cache(maxsize=1)
def _table() -> pl.DataFrame:
    return pl.read_csv(PROFILE_PATH, schema_overrides={"key": pl.String})


def shares(profile: str, dimension: str) -> dict[str, float]:
    """Key -> share of one profile's dimension, in file order (lc_subclass: "P:PR" -> share within P)."""
    rows = _table().filter((pl.col("profile") == profile) & (pl.col("dimension") == dimension))
    if rows.is_empty():
        raise KeyError(f"{PROFILE_PATH.name}: no rows for profile {profile!r}, dimension {dimension!r}")
    return dict(rows.select("key", "share").iter_rows())


def bin_bounds(label: str, open_end: int) -> tuple[int, int]:
    """Inclusive bounds of a bin label: "7" -> (7, 7), "3-5" -> (3, 5), "100+" -> (100, open_end)."""
    match = re.fullmatch(r"(\d+)(?:-(\d+)|(\+))?", label)
    if not match:
        raise ValueError(f"{PROFILE_PATH.name}: bin {label!r} is not 'N', 'N-M' or 'N+'")
    lo = int(match.group(1))
    return lo, open_end if match.group(3) else int(match.group(2) or lo)


def draw_binned(rng: np.random.Generator, table: dict[str, float], size: int, open_end: int) -> np.ndarray:
    """Integers drawn from a binned distribution: a bin by its share, then uniformly inside it."""
    bounds = np.array([bin_bounds(label, open_end) for label in table])
    p = np.array(list(table.values()))
    picks = rng.choice(len(p), size=size, p=p / p.sum())
    lo, hi = bounds[picks, 0], bounds[picks, 1]
    return lo + np.floor(rng.random(size) * (hi - lo + 1)).astype(int)


def bin_of(values: np.ndarray, table: dict[str, float], open_end: int) -> np.ndarray:
    """Index of the bin each value falls in (values outside every bin go to the nearest end)."""
    bounds = np.array([bin_bounds(label, open_end) for label in table])
    order = np.argsort(bounds[:, 0])
    index = np.searchsorted(bounds[order, 0], values, side="right") - 1
    return order[np.clip(index, 0, len(order) - 1)]


def mean(table: dict[str, float], open_end: int) -> float:
    """Mean of a binned distribution (each bin at its midpoint)."""
    total = sum(table.values())
    return sum(share * sum(bin_bounds(label, open_end)) / 2 for label, share in table.items()) / total
