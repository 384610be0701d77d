"""The data the bench harness (bench.py) generates: an items export for the import stage and
a community of a given scale written straight into the institutions' local stores."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from analytics.core import months
from analytics.core.config import Settings

# institutions, works, items, loan-month rows. The CLI offers s, m and l; xs is a tiny
# community for the harness's own test.
SCALES = {
    "xs": (9, 2_000, 12_000, 40_000),
    "s": (20, 100_000, 1_000_000, 4_000_000),
    "m": (200, 300_000, 10_000_000, 40_000_000),
    "l": (500, 1_000_000, 25_000_000, 100_000_000),
}
CALL_CLASSES = np.array(["QA", "PS", "HV", "BF", "DQ", "HM", "PA", "KF", "RC", "TK", "HD", "PR", "BX", "JK"])
REGIONS = np.array(["NA", "EU", "APAC"])
TYPES = np.array(["research", "teaching", "community_college", "public", "special"])


def generate_items_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A realistic items export: ISBNs (some invalid, some missing), LC call numbers, US dates."""
    rng = np.random.default_rng(seed)
    works = max(1, rows // 3)
    work = rng.integers(0, works, rows)
    isbn = isbn13s(work)
    isbn = np.where(rng.random(rows) < 0.02, "97800000000X", isbn)
    isbn = np.where(rng.random(rows) < 0.1, None, isbn)
    classes = CALL_CLASSES[:10]
    call = [f"{c}{n} .{chr(65 + k)}{d} {y}" for c, n, k, d, y in zip(
        classes[work % 10], 1 + work % 900, work % 26, 10 + work % 89, 1950 + work % 75)]
    acquired_year = 1990 + work % 35
    frame = pl.DataFrame({
        "Barcode": [f"X{i:09d}" for i in range(rows)],
        "Title": [f"Title of work {w}" for w in work],
        "Author": [f"Author{w % 5000}, Ann" for w in work],
        "ISBN": isbn,
        "Pub Year": (1950 + work % 75).astype(str),
        "Call Number": call,
        "Created": [f"{1 + w % 12}/{1 + w % 28}/{y % 100:02d}" for w, y in zip(work, acquired_year)],
        "Last Checkout": np.where(rng.random(rows) < 0.4, "1/1/00", "3/15/19"),
        "Checkouts": rng.poisson(2, rows),
        "Patron Note": "canary-patron",
    })
    frame.write_csv(path)


def generate_lastcopy_csv(path: Path, rows: int, scale: str, held: np.ndarray, seed: int = 3) -> None:
    """A weeding list from a library system for the last-copy check of a community of `scale`:
    works the institution holds (`held`: work numbers) and a tenth that nobody contributed, as
    hyphenated ISBN-13s (70%), ISBN-10s (10%), wrong check digits (5%), title and author only
    (10%), nothing to match on (5%), with the columns an export carries beside them."""
    rng = np.random.default_rng(seed)
    n_works = SCALES[scale][1]
    work = np.where(rng.random(rows) < 0.9, rng.choice(held, rows), n_works + rng.integers(0, n_works, rows))
    isbn13 = isbn13s(work)
    kind = rng.random(rows)
    frame = pl.DataFrame({"Barcode": [f"3{i:013d}" for i in range(rows)], "isbn13": isbn13, "work": work,
                          "kind": kind})
    isbn = (pl.when(pl.col("kind") < 0.70)
            .then(pl.concat_str(pl.col("isbn13").str.slice(0, 3), pl.lit("-"), pl.col("isbn13").str.slice(3, 1),
                                pl.lit("-"), pl.col("isbn13").str.slice(4, 4), pl.lit("-"),
                                pl.col("isbn13").str.slice(8, 4), pl.lit("-"), pl.col("isbn13").str.slice(12, 1)))
            .when(pl.col("kind") < 0.85)
            .then(pl.col("isbn13").str.slice(0, 12) + ((pl.col("isbn13").str.slice(12, 1).cast(pl.Int64) + 1) % 10)
                  .cast(pl.String)))
    frame = frame.with_columns(isbn.alias("ISBN"))
    # ISBN-10 check digits: weights 10..2 over the nine digits, mod 11.
    body = pl.col("isbn13").str.slice(3, 9)
    check = (11 - pl.sum_horizontal(body.str.slice(i, 1).cast(pl.Int64) * (10 - i) for i in range(9)) % 11) % 11
    frame = frame.with_columns(
        pl.when((pl.col("kind") >= 0.70) & (pl.col("kind") < 0.80))
        .then(body + pl.when(check == 10).then(pl.lit("X")).otherwise(check.cast(pl.String)))
        .otherwise(pl.col("ISBN")).alias("ISBN"))
    titled = pl.col("kind") < 0.95
    frame.select(
        "Barcode",
        pl.when(titled).then("Work " + pl.col("work").cast(pl.String)).alias("Title"),
        pl.when(titled).then("Author " + (pl.col("work") % 9973).cast(pl.String)).alias("Author"),
        pl.when(pl.col("kind") < 0.85).then(pl.col("ISBN")).alias("ISBN"),
        pl.lit("Main library").alias("Location"),
        ("QA" + (1 + pl.col("work") % 900).cast(pl.String)).alias("Call Number"),
        (pl.col("work") % 7).cast(pl.String).alias("Checkouts"),
    ).write_csv(path)


def isbn13s(work: np.ndarray) -> np.ndarray:
    """A valid ISBN-13 per work number (978 prefix, check digit computed)."""
    body = 978_000_000_000 + (work.astype(np.int64) * 7919) % 999_999_999
    digits = np.stack([(body // 10 ** (11 - i)) % 10 for i in range(12)], axis=1)
    check = (10 - (digits * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    return (body * 10 + check).astype(str)


@dataclass(frozen=True)
class _Shape:
    """What every institution of a generated community draws from."""
    n_works: int
    n_items: int
    n_loans: int
    popularity: np.ndarray   # per work
    log_p: np.ndarray        # log of the normalised popularity, per work
    isbns: np.ndarray        # per work
    sizes: np.ndarray        # items per institution
    month_labels: list[str]  # the 36 complete months before this month


def _shape(scale: str, rng: np.random.Generator) -> _Shape:
    n_inst, n_works, n_items, n_loans = SCALES[scale]
    this_month = months.month_of(datetime.now(timezone.utc).date())
    popularity = rng.pareto(1.2, n_works) + 0.05
    sizes = rng.lognormal(0, 0.6, n_inst)
    return _Shape(n_works=n_works, n_items=n_items, n_loans=n_loans, popularity=popularity,
                  log_p=np.log(popularity / popularity.sum()), isbns=isbn13s(np.arange(n_works)),
                  sizes=np.maximum(500, (sizes / sizes.sum() * n_items).astype(int)),
                  month_labels=[months.add(this_month, -back) for back in range(36, 0, -1)])


def generate_community(settings: Settings, scale: str, seed: int = 5, progress=print) -> dict:
    """A community of the given scale written straight into the local stores, all sharing on."""
    from analytics.control.store import Store
    from analytics.core.access import Principal

    n_inst, n_works = SCALES[scale][:2]
    rng = np.random.default_rng(seed)
    store = Store.from_settings(settings)
    system = Principal.system_job()
    if store.list_institutions(system):
        store.dispose()
        return json.loads((settings.data_dir / "community.json").read_text())
    shape = _shape(scale, rng)
    started = time.perf_counter()
    totals = {"institutions": n_inst, "works": n_works, "items": 0, "loan_rows": 0}
    for i in range(n_inst):
        items, loans = _add_institution(settings, store, rng, shape, i)
        totals["items"] += items
        totals["loan_rows"] += loans
        if (i + 1) % 20 == 0:
            progress(f"  generated {i + 1}/{n_inst} institutions ({time.perf_counter() - started:.0f} s)")
    totals["generate_seconds"] = round(time.perf_counter() - started, 1)
    (settings.data_dir / "community.json").write_text(json.dumps(totals))
    store.dispose()
    return totals


def _add_institution(settings: Settings, store, rng: np.random.Generator, shape: _Shape, i: int) -> tuple[int, int]:
    """Institution number i: registered, its items and loans written, every service shared.
    Returns its item and loan-month row counts."""
    from analytics.core.access import Principal
    from analytics.core.schema import SERVICES

    system = Principal.system_job()
    code = f"B{i:04d}"
    store.add_institution(system, code=code, name=f"Bench institution {i}", type=str(TYPES[i % 5]),
                          region=str(REGIONS[i % 3]), fte_students=int(rng.integers(500, 40_000)),
                          go_live_date=date(2018, 1, 1))
    size = min(int(shape.sizes[i]), shape.n_works)
    # Gumbel top-k: a weighted sample without replacement in one vectorized step.
    work_ids = np.argpartition(-(shape.log_p + rng.gumbel(size=shape.n_works)), size - 1)[:size]
    acquired = np.datetime64("2000-01-01") + rng.integers(0, 9600, size).astype("timedelta64[D]")
    items = _items_frame(code, work_ids, shape.isbns, acquired)
    # Flattened popularity keeps repeated draws of one item and month (which merge) rare
    # enough that the loan-month rows come close to the scale's figure.
    target_loans = int(1.25 * shape.n_loans * size / shape.n_items)
    item_p = shape.popularity[work_ids] ** 0.35
    picked = rng.choice(size, size=target_loans, p=item_p / item_p.sum())
    loans = _loans_frame(code, picked, rng.integers(0, 36, target_loans), shape.month_labels)
    folder = settings.data_dir / "institutions" / code
    folder.mkdir(parents=True, exist_ok=True)
    items.write_parquet(folder / "items.parquet")
    loans.write_parquet(folder / "loans.parquet")
    admin = store.add_user(system, f"admin@{code.lower()}.bench.example.org", code, ["admin"]).principal()
    joined = datetime(2024, 1, 10, tzinfo=timezone.utc)
    for service in SERVICES:
        store.set_sharing(admin, code, service, True, store.institution(admin, code).version, now=joined)
    return items.height, loans.height


def _items_frame(code: str, work_ids: np.ndarray, isbns: np.ndarray, acquired: np.ndarray) -> pl.DataFrame:
    """The canonical items table of one generated institution holding these works."""
    return pl.DataFrame({
        "item_id": np.char.add(f"{code}-", np.arange(len(work_ids)).astype(str)),
        "title_id": np.char.add("b", work_ids.astype(str)),
        "title": np.char.add("Work ", work_ids.astype(str)),
        "author": np.char.add("Author ", (work_ids % 9973).astype(str)),
        "isbn": isbns[work_ids],
        "publisher": "Bench Press",
        "pub_year": (1950 + work_ids % 75).astype(np.int64),
        "language": "eng",
        "call_number": [f"{c}{n}" for c, n in zip(CALL_CLASSES[work_ids % len(CALL_CLASSES)], 1 + work_ids % 900)],
        "format": np.where(work_ids % 7 == 0, "electronic", "print"),
        "material_type": "book",
        "owner": None,
        "acquired_date": acquired,
        "withdrawn_date": None,
        "lifetime_loans": None,
        "last_loan_date": None,
        "work_key": np.char.add("isbn:", isbns[work_ids]),
        "match_method": "isbn",
    }, schema_overrides={"owner": pl.String, "withdrawn_date": pl.Date, "lifetime_loans": pl.Int64,
                         "last_loan_date": pl.Date})


def _loans_frame(code: str, picked: np.ndarray, month_idx: np.ndarray, month_labels: list[str]) -> pl.DataFrame:
    """The canonical loans table (one row per item and month) of the drawn loans."""
    labels = np.array(month_labels)
    return (
        pl.DataFrame({"item": picked, "m": month_idx})
        .group_by("item", "m").len("count")
        .select(
            pl.col("item").map_batches(lambda s: pl.Series(np.char.add(f"{code}-", s.to_numpy().astype(str)))
                                       ).alias("item_id"),
            pl.col("m").map_batches(lambda s: pl.Series(labels[s.to_numpy()])).alias("month"),
            pl.col("count").cast(pl.Int64),
        )
        .select("item_id", (pl.col("month") + "-01").str.to_date().alias("loan_date"), "count",
                pl.lit(0, dtype=pl.Int64).alias("renewals"))
    )
