"""The stages of the bench harness (bench.py), each run by stage_child in a process of its own.

A stage's child prints one JSON line: its time, its own peak memory and the stage's figures.
The peak is the process's own high-water mark (VmHWM), read when the stage ends: ru_maxrss
would not do, since a process started by fork (or vfork) and exec carries its parent's
high-water mark in ru_maxrss, and every stage would report at least the harness's own peak.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

from analytics.core.access import Principal
from analytics.core.config import Settings, load_settings


def own_peak_mib() -> float | None:
    """This process's own peak resident memory so far, in MiB (VmHWM in /proc/self/status);
    None where there is no /proc (not Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stage_child(stage: str, data_dir: str, arg: str) -> None:
    """Run one stage in this (child) process; print its time and own peak memory as JSON."""
    settings = load_settings(data_dir)
    started = time.perf_counter()
    if stage in FILE_STAGES:
        extra = FILE_STAGES[stage](settings, stage, arg)
    else:
        from analytics.control.store import Store

        store = Store.from_settings(settings)
        extra = STORE_STAGES[stage](settings, store, arg)
        store.dispose()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": own_peak_mib(), **extra}))


def _import_format(settings: Settings, stage: str, path: str) -> dict:
    from analytics.ingest.run import run_import

    report = run_import(settings.data_dir, Principal.system_job(), "BENCH", stage, path)
    return {"rows": report.read, "kept": report.kept}


def _import_items(settings: Settings, _stage: str, path: str) -> dict:
    from analytics.ingest.tabular import import_file

    report = import_file(settings.data_dir, Principal.system_job(), "BENCH", "items", path,
                         mapping={"item_id": "Barcode", "acquired_date": "Created",
                                  "last_loan_date": "Last Checkout", "lifetime_loans": "Checkouts"},
                         null_dates=["1/1/00"])
    return {"rows": report.read, "invalid_isbns": report.invalid_isbns}


def _contributions(settings: Settings, store, _arg: str) -> dict:
    from analytics.contribute import contributions
    from analytics.control.store import SystemJobStore

    system = Principal.system_job()
    today = datetime.now(timezone.utc).date()
    institutions = {i.code: i for i in store.list_institutions(system)}
    included = contributions.refresh(settings, SystemJobStore(store, system), institutions,
                                     store.sharing_in_effect(system, today), today)
    return {"contributions": len(included)}


def _publish(settings: Settings, store, engine: str) -> dict:
    from analytics.release.publish import publish

    lines: list[str] = []
    engine_stats: dict = {}
    extra = {"release": publish(settings, store, progress=lines.append, engine=engine or "duckdb",
                                engine_stats=engine_stats), "engine": engine or "duckdb", **engine_stats}
    extra["steps"] = publish_steps(lines)
    return extra


def publish_steps(lines: list[str]) -> dict[str, float]:
    """Seconds per publish step from its progress lines ("loans (12 rows) in 3.1 s" and the like)."""
    steps = {}
    for line in lines:
        found = re.match(r"(?P<step>[^(]+?)(?: \([\d,]+ \w+\))? in (?P<s>[\d.]+) s$", line)
        if found and not found["step"].startswith("release files"):
            steps[found["step"].strip()] = float(found["s"])
    return steps


def _verify(settings: Settings, store, _arg: str) -> dict:
    from analytics.release.manifest import verify_release

    problems = verify_release(settings, store)
    if problems:
        raise SystemExit("verify failed: " + "; ".join(problems[:5]))
    return {"problems": 0}


def _utility(settings: Settings, store, _arg: str) -> dict:
    from analytics.tools.utility import compare, publish_pair

    extra = publish_pair(settings, store)
    step = time.perf_counter()
    extra["utility"] = compare(settings, store, extra["protected"], extra["unprotected"])
    extra["compare_seconds"] = round(time.perf_counter() - step, 2)
    return extra


def _page_queries(settings: Settings, store, _arg: str) -> dict:
    """Cold (first call after opening the release) and warm (median of 5) page queries, in ms."""
    from analytics.views.deselection import DeselectionRules, deselection
    from analytics.views.trends import Filters, trending
    from analytics.views.selection import SelectionFilters, selection
    from analytics.release.handle import open_release
    from analytics.views.collection import own_identifiers

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
                                           DeselectionRules(region="NA", no_loans_years=2)),
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


def _lastcopy(settings: Settings, store, path: str) -> dict:
    """The last-copy check of the list at `path` for the largest institution, as the command does
    it: open the release (timed apart: the app keeps it open), read the list, check every row,
    write the CSV; then the Excel workbook, timed apart. Publishes first if the community has no release yet (not in answer_seconds)."""
    from analytics.release.handle import open_release
    from analytics.release.manifest import current_release_id
    from analytics.views import lastcopy

    published = None
    if current_release_id(settings.community_dir) is None:
        from analytics.release.publish import publish

        published = publish(settings, store, progress=lambda _line: None)
    system = Principal.system_job()
    institution = _largest_institution(settings, store)
    started = time.perf_counter()
    release = open_release(settings.community_dir)
    open_seconds = time.perf_counter() - started
    started = time.perf_counter()
    table = lastcopy.read_list(path)
    read_seconds = time.perf_counter() - started
    result = lastcopy.check(system, release, settings.data_dir, institution.code, institution.region, table,
                            lastcopy.resolve_mapping(table.frame.columns))
    check_seconds = time.perf_counter() - started - read_seconds
    written = len(lastcopy.csv_bytes(result))
    answer_seconds = time.perf_counter() - started
    lastcopy.excel_bytes(result)
    excel_seconds = time.perf_counter() - started - answer_seconds
    summary = result.summary
    return {"institution": institution.code, "rows": summary["read"], "matched": summary["matched"],
            "unmatched": summary["unmatched"], "answer_seconds": round(answer_seconds, 2),
            "read_seconds": round(read_seconds, 2), "check_seconds": round(check_seconds, 2),
            "open_release_seconds": round(open_seconds, 2), "excel_seconds": round(excel_seconds, 2), "csv_mib": round(written / 2**20, 1),
            "verdicts": "/".join(f"{v}:{n}" for v, n in summary["verdicts"].items()),
            **({"published_first": published} if published else {})}


def _recommendations(settings: Settings, store, _arg: str) -> dict:
    """All recommendations for the largest institution: cold (open the release's recommendations
    part, generate every type, record them) and the Recommendations page rendered warm (median
    of 5 reruns of the page in Streamlit's AppTest, which includes the test harness's own cost)."""
    from analytics.views import recommend

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


def _largest_institution(settings: Settings, store, institutions: list | None = None):
    """The institution with the largest items file (of `institutions`, default all)."""
    institutions = institutions or store.list_institutions(Principal.system_job())
    sizes = {i.code: (settings.institutions_dir / i.code / "items.parquet").stat().st_size for i in institutions
             if (settings.institutions_dir / i.code / "items.parquet").exists()}
    code = max(sizes, key=sizes.get)
    return next(i for i in institutions if i.code == code)


def _page_timings(settings: Settings, store, code: str, page: str) -> dict:
    """Cold and warm render of one page by scripts/bench_page.py, as a manager of `code`, and
    the peak memory of the process that rendered it (page_peak_mib)."""
    email = f"manager@{code.lower()}.bench.example.org"
    if store.user(email) is None:
        store.add_user(Principal.system_job(), email, code, ["manager"])
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "scripts" / "bench_page.py"), str(settings.data_dir), email,
                           page], capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{page} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _benchmarks(settings: Settings, store, _arg: str) -> dict:
    """Benchmark queries for the largest institution: own KPI values and the report, cold and
    warm (median of 5), then the Benchmarks page rendered cold and warm."""
    from analytics.views import benchmark
    from analytics.release.handle import open_release

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


BENCH_DOMAIN = ".bench.example.org"


def _pages(settings: Settings, store, arg: str) -> dict:
    """Every page of the app in a real browser, cold and warm (scripts/bench_pages.py), as the
    manager (and on the administrators' pages the admin) of the largest institution that shares
    every service. `arg` is JSON: {"visits": ["ROLE=PAGE", ...] (default: the script's), "warm": N}.
    Publishes first if the community has no release yet (not timed)."""
    from analytics.release.manifest import current_release_id
    from analytics.synthetic.demo import demo_email

    options = json.loads(arg or "{}")
    published = None
    if current_release_id(settings.community_dir) is None:
        from analytics.release.publish import publish

        published = publish(settings, store, progress=lambda _line: None)
    system = Principal.system_job()
    sharing = [i for i in store.list_institutions(system)
               if all(s.in_effect for s in store.sharing_state(system, i.code).values())]
    institution = _largest_institution(settings, store, sharing or None)
    code = institution.code
    # The demo sign-in offers only users of the demo domain: a demo community's own users, or
    # users of the bench's domain added here (the server is told that domain).
    domain = BENCH_DOMAIN if any(store.user(demo_email(code, role)) is None for role in ("manager", "admin")) else None
    if domain:
        for role in ("manager", "admin"):
            email = f"{role}@{code.lower()}{BENCH_DOMAIN}"
            if store.user(email) is None:
                store.add_user(system, email, code, [role], name=f"Bench {role}")
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, str(root / "scripts" / "bench_pages.py"), str(settings.data_dir), code,
               institution.name, "--warm", str(options.get("warm", 3))]
    command += [f"--visit={visit}" for visit in options.get("visits", ())]
    command += ["--demo-domain", domain] if domain else []
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"scripts/bench_pages.py failed:\n{done.stderr[-3000:]}")
    pages = json.loads(done.stdout.strip().splitlines()[-1])["pages"]
    return {"institution": code, "published_first": published, "pages": pages}


# The stages a child runs: on a file (no store), and on a community (with its store open).
FILE_STAGES = {"marc": _import_format, "counter": _import_format, "import": _import_items}
STORE_STAGES = {"contributions": _contributions, "publish": _publish, "verify": _verify,
                    "queries": _page_queries, "recommend": _recommendations, "benchmark": _benchmarks,
                    "lastcopy": _lastcopy, "pages": _pages, "utility": _utility}
