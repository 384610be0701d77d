"""Comparing release tables built by different engines: the same rows, order aside."""

from __future__ import annotations

import polars as pl


def _normal(frame: pl.DataFrame) -> pl.DataFrame:
    casts = []
    for name, dtype in frame.schema.items():
        if dtype.is_integer():
            casts.append(pl.col(name).cast(pl.Int64))
        elif dtype.is_float() or dtype.is_decimal():
            casts.append(pl.col(name).cast(pl.Float64))
        else:
            casts.append(pl.col(name))
    return frame.select(casts)


def row_differences(a: pl.DataFrame, b: pl.DataFrame, rel: float = 1e-9) -> str | None:
    """None when `a` and `b` hold the same rows in any order (floats equal within `rel`,
    relative); otherwise what differs first."""
    if a.columns != b.columns:
        return f"columns differ: {a.columns} vs {b.columns}"
    if a.height != b.height:
        return f"{a.height} vs {b.height} rows"
    a, b = _normal(a), _normal(b)
    floats = [c for c, t in a.schema.items() if t == pl.Float64]
    keys = [pl.col(c).cast(pl.List(pl.String)).list.join("\x1f") if isinstance(t, pl.List) else pl.col(c)
            for c, t in a.schema.items() if c not in floats] + [pl.col(c) for c in floats]
    if keys:
        a, b = a.sort(keys, nulls_last=True), b.sort(keys, nulls_last=True)
    for col in a.columns:
        x, y = a[col], b[col]
        inner = x.dtype.inner if isinstance(x.dtype, pl.List) else x.dtype
        if inner == pl.Float64:
            if isinstance(x.dtype, pl.List):
                if not x.list.len().equals(y.list.len()):
                    return f"{col}: list lengths differ"
                x, y = x.explode(), y.explode()
            if not (x.is_null() == y.is_null()).all():
                return f"{col}: missing values differ"
            pair = pl.DataFrame({"x": x, "y": y}).drop_nulls()
            worst = pair.select(((pl.col("x") - pl.col("y")).abs()
                                 / pl.max_horizontal(pl.col("x").abs(), pl.col("y").abs(), pl.lit(1e-300)))
                                .max()).item()
            if worst is not None and worst > rel:
                return f"{col}: relative difference {worst:.1e}"
        elif not x.equals(y):
            bad = x.ne_missing(y).arg_true()[0]
            return f"{col}: first difference {x[bad]!r} vs {y[bad]!r}"
    return None
