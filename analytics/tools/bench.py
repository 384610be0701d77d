"""Performance harness: python -m analytics bench [--scale s|m|l] [--only STAGE].

Stages:
- import: a generated items export (default 1,000,000 rows, any scale) through the
  real canonical import;
- formats: a generated MARC file (50,000 records) and a COUNTER TR_J1 (100,008 monthly
  cells) through their importers;
- contributions, publish, verify: a generated community of the chosen scale, built
  straight into the institutions' local stores (the import is measured on its own), then
  the system job's two halves and release verify;
- queries: the collection development page queries, cold and warm;
- recommend: every recommendation for the largest institution, cold, and the
  Recommendations page rendered warm;
- benchmark: the largest institution's own KPI values and benchmark report, and the
  Benchmarks page, cold and warm;
- utility: how close a protected release stays to the unprotected one (utility.py): for
  the demo community (build_demo with its defaults, built once under data/bench/utility-demo)
  and for the generated community of scale s (always s, whatever --scale says), an
  unprotected and a protected release are published with the same as-of date and time and
  compared. Its table row times the whole stage; the note gives each publish and the
  comparison, and the figures and target lines print below the table.

Each stage runs in a child process that reports its own time and peak memory (max RSS),
so one stage's memory never hides in another's. Results print as a table and are
written as JSON under data/bench/ with the machine's core count.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from analytics.core.config import Settings, load_settings
from analytics.core.output import render

IMPORT_ROWS = 1_000_000
# institutions, works, items, loan-month rows
SCALES = {
    "s": (20, 100_000, 1_000_000, 4_000_000),
    "m": (200, 300_000, 10_000_000, 40_000_000),
    "l": (500, 1_000_000, 25_000_000, 100_000_000),
}
COMMUNITY_STAGES = ("contributions", "publish", "verify", "queries", "recommend", "benchmark")
UTILITY_SCALE = "s"


def generate_items_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A realistic items export: ISBNs (some invalid, some missing), LC call numbers, US dates."""
    rng = np.random.default_rng(seed)
    works = max(1, rows // 3)
    work = rng.integers(0, works, rows)
    isbn = _isbn13s(work)
    isbn = np.where(rng.random(rows) < 0.02, "97800000000X", isbn)
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


def _isbn13s(work: np.ndarray) -> np.ndarray:
    """A valid ISBN-13 per work number (978 prefix, check digit computed)."""
    body = 978_000_000_000 + (work.astype(np.int64) * 7919) % 999_999_999
    digits = np.stack([(body // 10 ** (11 - i)) % 10 for i in range(12)], axis=1)
    check = (10 - (digits * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    return (body * 10 + check).astype(str)


def generate_community(settings: Settings, scale: str, seed: int = 5, progress=print) -> dict:
    """A community of the given scale written straight into the local stores, all sharing on."""
    from analytics.core.access import Principal
    from analytics.core.schema import SERVICES
    from analytics.control.store import Store

    n_inst, n_works, n_items, n_loans = SCALES[scale]
    rng = np.random.default_rng(seed)
    store = Store.from_settings(settings)
    system = Principal.system_job()
    if store.list_institutions(system):
        store.dispose()
        return json.loads((settings.data_dir / "community.json").read_text())
    today = datetime.now(timezone.utc).date()
    first = date(today.year, today.month, 1)
    month_labels = []
    for back in range(36, 0, -1):
        y, m = first.year, first.month - back
        while m <= 0:
            y, m = y - 1, m + 12
        month_labels.append(f"{y:04d}-{m:02d}")
    popularity = rng.pareto(1.2, n_works) + 0.05
    log_p = np.log(popularity / popularity.sum())
    isbns = _isbn13s(np.arange(n_works))
    classes = np.array(["QA", "PS", "HV", "BF", "DQ", "HM", "PA", "KF", "RC", "TK", "HD", "PR", "BX", "JK"])
    sizes = rng.lognormal(0, 0.6, n_inst)
    sizes = np.maximum(500, (sizes / sizes.sum() * n_items).astype(int))
    regions = np.array(["NA", "EU", "APAC"])
    types = np.array(["research", "teaching", "community_college", "public", "special"])
    started = time.perf_counter()
    totals = {"institutions": n_inst, "works": n_works, "items": 0, "loan_rows": 0}
    for i in range(n_inst):
        code = f"B{i:04d}"
        store.add_institution(system, code=code, name=f"Bench institution {i}", type=str(types[i % 5]),
                              region=str(regions[i % 3]), fte_students=int(rng.integers(500, 40_000)),
                              go_live_date=date(2018, 1, 1))
        size = min(int(sizes[i]), n_works)
        # Gumbel top-k: a weighted sample without replacement in one vectorized step.
        chosen = np.argpartition(-(log_p + rng.gumbel(size=n_works)), size - 1)[:size]
        work_ids = chosen
        acquired = np.datetime64("2000-01-01") + rng.integers(0, 9600, size).astype("timedelta64[D]")
        items = pl.DataFrame({
            "item_id": np.char.add(f"{code}-", np.arange(size).astype(str)),
            "title_id": np.char.add("b", work_ids.astype(str)),
            "title": np.char.add("Work ", work_ids.astype(str)),
            "author": np.char.add("Author ", (work_ids % 9973).astype(str)),
            "isbn": isbns[work_ids],
            "publisher": "Bench Press",
            "pub_year": (1950 + work_ids % 75).astype(np.int64),
            "language": "eng",
            "call_number": [f"{c}{n}" for c, n in zip(classes[work_ids % len(classes)], 1 + work_ids % 900)],
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
        # Flattened popularity keeps repeated draws of one item and month (which merge) rare
        # enough that the loan-month rows come close to the scale's figure.
        target_loans = int(1.25 * n_loans * size / n_items)
        item_p = popularity[work_ids] ** 0.35
        item_p = item_p / item_p.sum()
        picked = rng.choice(size, size=target_loans, p=item_p)
        month_idx = rng.integers(0, 36, target_loans)
        loans = (
            pl.DataFrame({"item": picked, "m": month_idx})
            .group_by("item", "m").len("count")
            .select(
                pl.col("item").map_batches(lambda s: pl.Series(np.char.add(f"{code}-", s.to_numpy().astype(str)))
                                           ).alias("item_id"),
                pl.col("m").map_batches(lambda s: pl.Series(np.array(month_labels)[s.to_numpy()])).alias("month"),
                pl.col("count").cast(pl.Int64),
            )
            .select("item_id", (pl.col("month") + "-01").str.to_date().alias("loan_date"), "count",
                    pl.lit(0, dtype=pl.Int64).alias("renewals"))
        )
        folder = settings.data_dir / "institutions" / code
        folder.mkdir(parents=True, exist_ok=True)
        items.write_parquet(folder / "items.parquet")
        loans.write_parquet(folder / "loans.parquet")
        totals["items"] += items.height
        totals["loan_rows"] += loans.height
        admin = store.add_user(system, f"admin@{code.lower()}.bench.example.org", code, ["admin"]).principal()
        joined = datetime(2024, 1, 10, tzinfo=timezone.utc)
        for service in SERVICES:
            store.set_sharing(admin, code, service, True, store.institution(admin, code).version, now=joined)
        if (i + 1) % 20 == 0:
            progress(f"  generated {i + 1}/{n_inst} institutions ({time.perf_counter() - started:.0f} s)")
    totals["generate_seconds"] = round(time.perf_counter() - started, 1)
    (settings.data_dir / "community.json").write_text(json.dumps(totals))
    store.dispose()
    return totals


def stage_child(stage: str, data_dir: str, arg: str) -> None:
    """Run one stage in this (child) process; print its time and peak memory as JSON."""
    from analytics.core.access import Principal
    from analytics.control.store import Store

    settings = load_settings(data_dir)
    started = time.perf_counter()
    extra: dict = {}
    if stage in ("marc", "counter"):
        from analytics.ingest.run import run_import

        report = run_import(Path(data_dir), Principal.system_job(), "BENCH", stage, arg)
        extra = {"rows": report.read, "kept": report.kept}
    elif stage == "import":
        from analytics.ingest.tabular import import_file

        report = import_file(Path(data_dir), Principal.system_job(), "BENCH", "items", arg,
                             mapping={"item_id": "Barcode", "acquired_date": "Created",
                                      "last_loan_date": "Last Checkout", "lifetime_loans": "Checkouts"},
                             null_dates=["1/1/00"])
        extra = {"rows": report.read, "invalid_isbns": report.invalid_isbns}
    else:
        store = Store.from_settings(settings)
        if stage == "contributions":
            from analytics.contribute import contributions
            from analytics.control.store import SystemJobStore

            system = Principal.system_job()
            today = datetime.now(timezone.utc).date()
            institutions = {i.code: i for i in store.list_institutions(system)}
            included = contributions.refresh(settings, SystemJobStore(store, system), institutions,
                                             store.sharing_in_effect(system, today), today)
            extra = {"contributions": len(included)}
        elif stage == "publish":
            from analytics.release.publish import publish

            lines: list[str] = []
            engine_stats: dict = {}
            extra = {"release": publish(settings, store, progress=lines.append, engine=arg or "duckdb",
                                        engine_stats=engine_stats), "engine": arg or "duckdb", **engine_stats}
            extra["steps"] = publish_steps(lines)
        elif stage == "queries":
            extra = _page_queries(settings, store)
        elif stage == "recommend":
            extra = _recommendations(settings, store)
        elif stage == "benchmark":
            extra = _benchmarks(settings, store)
        elif stage == "utility":
            from analytics.tools.utility import compare, publish_pair

            extra = publish_pair(settings, store)
            step = time.perf_counter()
            extra["utility"] = compare(settings, store, extra["protected"], extra["unprotected"])
            extra["compare_seconds"] = round(time.perf_counter() - step, 2)
        elif stage == "verify":
            from analytics.release.manifest import verify_release

            problems = verify_release(settings, store)
            if problems:
                raise SystemExit("verify failed: " + "; ".join(problems[:5]))
            extra = {"problems": 0}
        store.dispose()
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, **extra}))


def publish_steps(lines: list[str]) -> dict[str, float]:
    """Seconds per publish step from its progress lines ("loans (12 rows) in 3.1 s" and the like)."""
    steps = {}
    for line in lines:
        found = re.match(r"(?P<step>[^(]+?)(?: \([\d,]+ \w+\))? in (?P<s>[\d.]+) s$", line)
        if found and not found["step"].startswith("release files"):
            steps[found["step"].strip()] = float(found["s"])
    return steps


def _page_queries(settings: Settings, store) -> dict:
    """Cold (first call after opening the release) and warm (median of 5) page queries, in ms."""
    from analytics.core.access import Principal
    from analytics.views.deselection import DeselectionRules, deselection
    from analytics.views.trends import Filters, SelectionFilters, open_release, own_identifiers, selection, trending

    code = store.list_institutions(Principal.system_job())[0].code
    timings: dict = {}
    started = time.perf_counter()
    release = open_release(settings.community_dir)
    timings["open_release_ms"] = round((time.perf_counter() - started) * 1000)
    keys, isbns = own_identifiers(Principal.system_job(), settings.data_dir, code)
    cases = {
        "trending": lambda: trending(release, Filters(region="NA", window=6, limit=100)),
        "trending_not_held_subject": lambda: trending(
            release, Filters(region="NA", window=12, lc_class="Q", not_held=True, limit=100), keys, isbns),
        "selection": lambda: selection(release, SelectionFilters(region="NA", min_acquired_percent=10), keys, isbns),
        "deselection": lambda: deselection(Principal.system_job(), release, settings.data_dir, code,
                                           DeselectionRules(region="NA", no_loans_years=2), settings.k_title),
    }
    for name, run in cases.items():
        started = time.perf_counter()
        run()
        timings[f"{name}_cold_ms"] = round((time.perf_counter() - started) * 1000)
        warm = []
        for _ in range(5):
            started = time.perf_counter()
            run()
            warm.append(time.perf_counter() - started)
        timings[f"{name}_warm_ms"] = round(sorted(warm)[2] * 1000)
    return timings


def _recommendations(settings: Settings, store) -> dict:
    """All recommendations for the largest institution: cold (open the release's recommendations
    part, generate every type, record them) and the Recommendations page rendered warm (median
    of 5 reruns of the page in Streamlit's AppTest, which includes the test harness's own cost)."""
    from collections import Counter

    from analytics.views import recommend
    from analytics.core.access import Principal

    system = Principal.system_job()
    institution = _largest_institution(settings, store)
    code = institution.code
    timings: dict = {"institution": code,
                     "items": pl.scan_parquet(settings.institutions_dir / code / "items.parquet").select(
                         pl.len()).collect().item()}
    started = time.perf_counter()
    part = recommend.open_part(settings.community_dir)
    timings["open_ms"] = round((time.perf_counter() - started) * 1000)
    step = time.perf_counter()
    candidates = recommend.generate(Principal.system_job(), part, settings.data_dir, code, institution.region)
    timings["generate_ms"] = round((time.perf_counter() - step) * 1000)
    step = time.perf_counter()
    recommend.recommendations(system, store, part, settings.data_dir, code, candidates=candidates)
    timings["record_ms"] = round((time.perf_counter() - step) * 1000)
    timings["cold_total_ms"] = round((time.perf_counter() - started) * 1000)
    timings["by_type"] = "/".join(f"{t}:{n}" for t, n in sorted(Counter(c.type for c in candidates).items()))

    # The page is measured by a script beside the app: analytics/ never imports Streamlit.
    timings.update(_page_timings(settings, store, code, "pages/recommendations.py"))
    return timings


def _largest_institution(settings: Settings, store):
    from analytics.core.access import Principal

    institutions = store.list_institutions(Principal.system_job())
    sizes = {i.code: (settings.institutions_dir / i.code / "items.parquet").stat().st_size for i in institutions
             if (settings.institutions_dir / i.code / "items.parquet").exists()}
    code = max(sizes, key=sizes.get)
    return next(i for i in institutions if i.code == code)


def _page_timings(settings: Settings, store, code: str, page: str) -> dict:
    """Cold and warm render of one page by scripts/bench_page.py, as a manager of `code`."""
    from analytics.core.access import Principal

    email = f"manager@{code.lower()}.bench.example.org"
    if store.user(email) is None:
        store.add_user(Principal.system_job(), email, code, ["manager"])
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "scripts" / "bench_page.py"), str(settings.data_dir), email,
                           page], capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{page} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _benchmarks(settings: Settings, store) -> dict:
    """Benchmark queries for the largest institution: own KPI values and the report, cold and
    warm (median of 5), then the Benchmarks page rendered cold and warm."""
    from analytics.views import benchmark
    from analytics.core.access import Principal
    from analytics.views.trends import open_release

    institution = _largest_institution(settings, store)
    timings: dict = {"institution": institution.code}
    started = time.perf_counter()
    release = open_release(settings.community_dir)
    timings["open_release_ms"] = round((time.perf_counter() - started) * 1000)
    as_of = date.fromisoformat(release.manifest["as_of"])
    step = time.perf_counter()
    own = benchmark.own_counted(Principal.system_job(), settings.data_dir, institution, as_of,
                                store.own_kpi_values(Principal.system_job(), institution.code, release.release_id))
    timings["own_values_ms"] = round((time.perf_counter() - step) * 1000)
    runs = []
    for _ in range(6):
        step = time.perf_counter()
        rows = benchmark.report(release, institution, own)
        runs.append(time.perf_counter() - step)
    timings["report_cold_ms"] = round(runs[0] * 1000)
    timings["report_warm_ms"] = round(sorted(runs[1:])[2] * 1000)
    timings["released_cells"] = int(release.cursor().sql(
        "SELECT count(*) AS c FROM benchmarks WHERE NOT suppressed").pl()["c"][0])
    timings["kpis_with_own_value"] = rows.filter(rows["own_value"].is_not_null())["kpi"].n_unique()
    timings.update(_page_timings(settings, store, institution.code, "pages/benchmarks.py"))
    return timings


def _run_stage(stage: str, data_dir: Path, arg: str = "") -> dict:
    code = f"from analytics.tools.bench import stage_child; stage_child({stage!r}, {str(data_dir)!r}, {arg!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # Without the Java stack frames of a Spark error, which would hide its message.
        lines = [line for line in done.stderr.splitlines() if not line.lstrip().startswith("at ")]
        raise RuntimeError(f"bench stage {stage} failed:\n" + "\n".join(lines[-60:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_import(base: Path, rows: int) -> dict:
    csv_path = base / f"items_{rows}.csv"
    if not csv_path.exists():
        print(f"generating {rows:,} item rows -> {csv_path}", file=sys.stderr)
        generate_items_csv(csv_path, rows)
    work = base / "import-data"
    result = _run_stage("import", work, str(csv_path))
    return {"stage": "import items", "rows": result["rows"], "seconds": round(result["seconds"], 2),
            "rows_per_second": int(result["rows"] / result["seconds"]), "peak_mib": round(result["peak_mib"]),
            "note": f"{csv_path.stat().st_size / 2**20:.0f} MiB CSV, {result['invalid_isbns']} invalid ISBNs"}


def bench_formats(base: Path) -> list[dict]:
    """MARC records/s (50,000 generated records with 0-3 items each) and COUNTER cells/s (a TR_J1
    of 4,167 titles x 2 metrics x 12 months = 100,008 cells)."""
    from analytics.synthetic.counter_files import generate_counter_tsv
    from analytics.synthetic.marc_files import generate_marc

    results = []
    marc = base / "records_50000.mrc"
    if not marc.exists():
        generate_marc(marc, 50_000)
    counter = base / "tr_j1_100k.tsv"
    cells = generate_counter_tsv(counter, 4167, 12)
    for stage, path, unit in (("marc", marc, "records"), ("counter", counter, "title rows")):
        result = _run_stage(stage, base / f"{stage}-data", str(path))
        note = f"{path.stat().st_size / 2**20:.0f} MiB; {result['kept']:,} {unit} kept"
        if stage == "counter":
            note += f"; {cells:,} monthly cells, {cells / result['seconds']:,.0f} cells/s"
        results.append({"stage": f"import {stage}", "rows": result["rows"], "seconds": round(result["seconds"], 2),
                        "rows_per_second": int(result["rows"] / result["seconds"]),
                        "peak_mib": round(result["peak_mib"]), "note": note})
    return results


def bench_community(base: Path, scale: str, stages: list[str], engine: str = "duckdb") -> list[dict]:
    data_dir = base / f"community-{scale}"
    settings = load_settings(data_dir)
    print(f"community at scale {scale} in {data_dir}", file=sys.stderr)
    totals = generate_community(settings, scale, progress=lambda line: print(line, file=sys.stderr))
    print(f"  {totals}", file=sys.stderr)
    results = []
    for stage in stages:
        result = _run_stage(stage, data_dir, engine if stage == "publish" else "")
        rows = totals["items"] if stage in ("contributions", "queries", "recommend", "benchmark") \
            else totals["loan_rows"]
        results.append({"stage": f"{stage} (scale {scale})", "rows": rows, "seconds": round(result["seconds"], 2),
                        "rows_per_second": int(rows / result["seconds"]) if result["seconds"] else 0,
                        "peak_mib": round(result["peak_mib"]),
                        "note": ", ".join(f"{k}={v}" for k, v in result.items()
                                          if k not in ("seconds", "peak_mib", "steps")),
                        **({"steps": result["steps"]} if "steps" in result else {})})
    return results


UTILITY_DEMO_INSTITUTIONS = 60


def bench_utility(base: Path) -> list[dict]:
    """The utility stage on the demo community and on the generated community of scale s."""
    from analytics.core.access import Principal
    from analytics.synthetic.demo import build_demo
    from analytics.control.store import Store

    demo_dir = base / "utility-demo"
    settings = load_settings(demo_dir)
    store = Store.from_settings(settings)
    built = bool(store.list_institutions(Principal.system_job()))
    store.dispose()
    if not built:
        print(f"demo community in {demo_dir}", file=sys.stderr)
        # 60 institutions, so that peer groups of 10 or more exist (the default demo has 7-8 a region)
        build_demo(settings, institutions=UTILITY_DEMO_INSTITUTIONS, progress=lambda line: print(line, file=sys.stderr))
    generated_dir = base / f"community-{UTILITY_SCALE}"
    print(f"community at scale {UTILITY_SCALE} in {generated_dir}", file=sys.stderr)
    generate_community(load_settings(generated_dir), UTILITY_SCALE, progress=lambda line: print(line, file=sys.stderr))
    results = []
    for name, data_dir in (("demo", demo_dir), (f"scale {UTILITY_SCALE}", generated_dir)):
        result = _run_stage("utility", data_dir)
        note = (f"publish unprotected {result['publish_unprotected_seconds']} s, protected "
                f"{result['publish_protected_seconds']} s, compare {result['compare_seconds']} s")
        results.append({"stage": f"utility ({name})", "rows": result["utility"]["institutions"],
                        "seconds": round(result["seconds"], 2), "rows_per_second": None,
                        "peak_mib": round(result["peak_mib"]), "note": note, "utility": result["utility"],
                        "releases": {k: result[k] for k in ("protected", "unprotected")}})
    return results


def print_utility(result: dict) -> None:
    """The utility figures of one community, below the table."""
    figures = result["utility"]
    trend, medians = figures["trending"], figures["peer_medians"]
    print(f"\n{result['stage']}: {figures['institutions']} institutions "
          f"({figures['institutions_allowed']} see collection development), releases "
          f"{figures['protected_release']} (protected) and {figures['unprotected_release']} (unprotected)")
    print(f"  stage {result['seconds']} s: {result['note']}")
    print("  trending top-50 overlap: " + ", ".join(
        f"{region} {r['common']}/{r['unprotected']}" for region, r in trend["regions"].items())
          + f"; regions without trending works: {', '.join(trend['skipped_regions_empty']) or 'none'}")
    print(f"  peer medians: {medians['cells_released_both']} cells released in both "
          f"({medians['cells_lost']} only unprotected, {medians['cells_gained']} only protected); "
          + "; ".join(f"{name.replace('_', ' ')}: {medians[name]['within']}/{medians[name]['cells']} within 5%"
                      for name in ("n_10_plus", "n_5_to_9")))
    for part in ("selection", "deselection"):
        p = figures[part]
        skipped = {k: len(v) for k, v in p.items() if k.startswith("skipped_")}
        print(f"  {part}: {p['compared']} institutions compared, skipped {skipped}")
    for line in figures["targets"]:
        print(f"  {line}")


def run_bench(settings: Settings, scale: str = "s", only: str | None = None, rows: int | None = None,
              engine: str = "duckdb") -> int:
    from analytics.release.engines import check_engine

    check_engine(engine)  # before generating anything: says what to install
    base = settings.data_dir / "bench"
    base.mkdir(parents=True, exist_ok=True)
    stages = [only] if only else ["import", "formats", *COMMUNITY_STAGES, "utility"]
    results = []
    if "import" in stages:
        results.append(bench_import(base, rows or IMPORT_ROWS))
    if "formats" in stages:
        results += bench_formats(base)
    community_stages = [s for s in stages if s in COMMUNITY_STAGES]
    if community_stages:
        results += bench_community(base, scale, community_stages, engine)
    if "utility" in stages:
        results += bench_utility(base)
    print(render([{k: v for k, v in r.items() if k not in ("steps", "utility", "releases")} for r in results],
                 "table"))
    for result in results:
        if result.get("steps"):
            print(f"\n{result['stage']}, {engine}, seconds per step:")
            print("\n".join(f"  {step:45} {seconds:8.1f}" for step, seconds in result["steps"].items()))
    for result in results:
        if result.get("utility"):
            print_utility(result)
    out = base / f"bench-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"scale": scale, "cores": os.cpu_count(), "engine": engine, "results": results},
                              indent=2))
    print(f"\nwritten: {out}")
    return 0
