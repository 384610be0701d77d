"""Performance harness: python -m analytics bench [--scale s|m|l] [--only STAGE].

Each stage runs in a child process so that its peak memory (max RSS) is its own, not
that of the generator. Results print as a table and are written as JSON under
data/bench/ with the machine's core count, so figures can be compared across runs.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from .config import Settings
from .output import render

IMPORT_ROWS = 1_000_000


def generate_items_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A realistic items export: ISBNs (some invalid, some double), LC call numbers, US dates."""
    rng = np.random.default_rng(seed)
    works = max(1, rows // 3)
    work = rng.integers(0, works, rows)
    body = 978_000_000_000 + (work * 7919) % 999_999_999
    digits = np.stack([(body // 10 ** (11 - i)) % 10 for i in range(12)], axis=1)
    check = (10 - (digits * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    isbn = (body * 10 + check).astype(str)
    isbn = np.where(rng.random(rows) < 0.02, "97800000000X", isbn)  # invalid ones
    isbn = np.where(rng.random(rows) < 0.1, None, isbn)
    classes = np.array(["QA", "PS", "HV", "BF", "DQ", "HM", "PA", "KF", "RC", "TK"])
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


def _child_import(data_dir: str, csv_path: str) -> None:
    """Run in a child process: import the file and print timing as JSON."""
    from .access import Principal
    from .ingest.tabular import import_file

    started = time.perf_counter()
    report = import_file(Path(data_dir), Principal.system_job(), "BENCH", "items", csv_path,
                         mapping={"item_id": "Barcode", "acquired_date": "Created",
                                  "last_loan_date": "Last Checkout", "lifetime_loans": "Checkouts"},
                         null_dates=["1/1/00"])
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "read": report.read, "kept": report.kept,
                      "invalid_isbns": report.invalid_isbns, "match": report.match}))


def _run_child(args: list[str]) -> tuple[dict, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench stage failed:\n{done.stderr[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(done.stdout.strip().splitlines()[-1]), max(peak_kib, before) / 1024


def bench_import(settings: Settings, rows: int) -> dict:
    work = settings.data_dir / "bench"
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / f"items_{rows}.csv"
    if not csv_path.exists():
        print(f"generating {rows:,} item rows -> {csv_path}", file=sys.stderr)
        generate_items_csv(csv_path, rows)
    code = ("import sys; from analytics.bench import _child_import; "
            f"_child_import({str(work / 'data')!r}, {str(csv_path)!r})")
    result, peak_mib = _run_child([code])
    return {
        "stage": "import items", "rows": result["read"], "seconds": round(result["seconds"], 2),
        "rows_per_second": int(result["read"] / result["seconds"]), "peak_mib": round(peak_mib),
        "file_mib": round(csv_path.stat().st_size / 2**20), "invalid_isbns": result["invalid_isbns"],
        "work_keys": result["match"],
    }


STAGES = {"import": bench_import}


def run_bench(settings: Settings, scale: str = "s", only: str | None = None, rows: int | None = None) -> int:
    """Run the stages. The import stage reads a generated items file of `rows` rows
    (default 1,000,000) whatever the scale; the scale sizes the community stages."""
    stages = [only] if only else list(STAGES)
    results = []
    for stage in stages:
        results.append(STAGES[stage](settings, rows or IMPORT_ROWS))
    print(render([{k: v for k, v in r.items() if k != "work_keys"} for r in results], "table"))
    out = settings.data_dir / "bench" / f"bench-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"scale": scale, "cores": os.cpu_count(), "results": results}, indent=2))
    print(f"\nwritten: {out}")
    return 0
