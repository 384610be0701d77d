"""The system job's second half: build, verify and switch a community release.

publish() refreshes the contributions (contribute.contributions), aggregates them with the SQL
of release.sql in DuckDB (or Apache Spark: release.engines), applies the K_TITLE / K_BENCH /
DOMINANCE thresholds, writes the files of the data contract (core.contract) and manifest.json
into a hidden building directory, verifies the result (release.manifest), renames it into
place and only then points ``current`` at it with an atomic rename. A crash at any point
leaves the previous release current; the next publish removes the leftovers. Releases that
contain a contribution that was since withdrawn (opt-out) are deleted; the last three
releases are kept.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import polars as pl

from analytics.contribute import kpis
from analytics.core import access, months
from analytics.release import benchmark_cells, trending
from analytics.contribute import disclosure
from analytics.ingest import identifiers
from analytics.release import sql as release_sql
from analytics.contribute import contributions as contrib
from analytics.core.access import Principal
from analytics.core.config import Settings
from analytics.core.contract import (CONTRIBUTION_TABLES, RECOMMENDATIONS_PART, SCHEMA_VERSION, SERVICE_TABLES,
                                     TREND_TABLES)
from analytics.release.engines import check_engine, file_view, open_engine
from analytics.release.manifest import (KEEP_RELEASES, RELEASE_SCHEMA, ReleaseError, current_release_id,
                                        list_release_dirs, sha256, verify_release)
from analytics.core.schema import SERVICES
from analytics.control.store import Store, SystemJobStore, utcnow


def _pause_for_crash_tests(stage: str) -> None:
    """Tests set ANALYTICS_PUBLISH_PAUSE=<stage> to SIGKILL a publish at a known point."""
    if os.environ.get("ANALYTICS_PUBLISH_PAUSE") == stage:
        print(f"paused at {stage}", file=sys.stderr, flush=True)
        time.sleep(600)


def global_work_map(keys: pl.DataFrame) -> pl.DataFrame:
    """local work key -> community work key, clustering ISBNs across institutions.

    Each institution keys a work by the smallest ISBN of the records it holds; another
    institution holding only the e-book of the same work has another local key. Joining
    all (local key, ISBNs) pairs into connected components gives one key per work
    across the community. Keys without ISBNs (ISSN, OCLC, title fingerprint) are already
    comparable across institutions and map to themselves. `keys` holds one row per
    local key with all its ISBNs (release_sql.WORK_KEYS).
    """
    keys = keys.sort("work_key")
    only_isbns = pl.DataFrame({
        "isbn13_list": keys["isbn13_list"].cast(pl.List(pl.String)),
        "invalid_isbn_count": pl.Series([0] * keys.height, dtype=pl.UInt32),
        "issn_norm": pl.Series([None] * keys.height, dtype=pl.String),
        "oclc_norm": pl.Series([None] * keys.height, dtype=pl.String),
        "title": pl.Series([None] * keys.height, dtype=pl.String),
        "author": pl.Series([None] * keys.height, dtype=pl.String),
    })
    clustered = identifiers.assign_work_keys(only_isbns)["work_key"]
    # wid: an integer per community key (grouping by integers is faster than by strings);
    # merged: several local keys map to it. Computed here rather than with a window over the
    # whole map, which Spark would run in a single partition.
    return (pl.DataFrame({"local_key": keys["work_key"], "work_key": keys["work_key"]})
            .with_columns(pl.coalesce(clustered, pl.col("work_key")).alias("work_key"))
            .with_columns(pl.col("work_key").rank("dense").cast(pl.Int64).alias("wid"),
                          (pl.len().over("work_key") > 1).alias("merged")))


def _included_from_year(institution) -> int:
    anniversary = institution.first_anniversary
    return anniversary.year if (anniversary.month, anniversary.day) == (1, 1) else anniversary.year + 1


def _register_contributions(engine, contributors: list[contrib.Contributor], service: str,
                            rkeys: dict[str, int]) -> None:
    """Views <table>_c over one service's contribution files, each row with its contributor's
    token, tid (an integer per contributor), record key (disclosure.record_key), region, first
    counted year, type and size band."""
    chosen = [c for c in contributors if c.service == service]
    position = {c.token: i for i, c in enumerate(contributors)}
    for table in SERVICE_TABLES[service]:
        present = [c for c in chosen if (c.path / f"{table}.parquet").exists()]
        who = pl.DataFrame({
            "path": [str(c.path / f"{table}.parquet") for c in present],
            "token": [c.token for c in present],
            "tid": [position[c.token] for c in present],
            "rkey": [rkeys[c.institution.code] for c in present],
            "region": [c.region for c in present],
            "included_from_year": [_included_from_year(c.institution) for c in present],
            "type": [c.institution.type for c in present],
            "size_band": [c.institution.size_band for c in present],
        }, schema={"path": pl.String, "token": pl.String, "tid": pl.Int64, "rkey": pl.Int64, "region": pl.String,
                   "included_from_year": pl.Int64, "type": pl.String, "size_band": pl.String})
        engine.contribution_view(f"{table}_c", who, CONTRIBUTION_TABLES[table])


def _write_table(con, sql: str, params: dict, path: Path, name: str, protect=None) -> int:
    """Run a release statement and write its rows; `protect` (a frame -> frame function: the
    disclosure layer) sees them first."""
    # Sorted rows make a release byte-for-byte reproducible from the same contributions.
    ordered = f"SELECT * FROM ({sql}) ORDER BY ALL"
    frame = con.sql(ordered, params=release_sql.used_params(sql, params)).pl()
    return _write_frame(protect(frame) if protect else frame, path, name)


def _protection(table: str, pops: dict[tuple, bytes], settings: Settings, protect: bool):
    """The disclosure layer's step for one title-level table (or, for measuring its cost only,
    the plain K_TITLE threshold)."""
    if protect:
        return lambda frame: disclosure.protect_table(table, frame, pops, settings.k_title)
    return lambda frame: disclosure.exact_counts(table, frame, settings.k_title)


def _populations(contributors: list[contrib.Contributor], service: str, secrets: dict[str, str]) -> dict:
    """Population keys of a service's regions and peer groups (disclosure.population_key)."""
    members: dict[tuple, list[str]] = {}
    for c in contributors:
        if c.service != service:
            continue
        for key in ((c.region,), (c.region, "all"), (c.region, f"type={c.institution.type}"),
                    (c.region, f"size={c.institution.size_band}")):
            members.setdefault(key, []).append(secrets[c.institution.code])
    return disclosure.populations(members)


def _retention_populations(contributors: list[contrib.Contributor], service: str, secrets: dict[str, str]) -> dict:
    """Population keys of the retention counts: the region's contributors and what they commit to.
    A member that adds or drops one commitment stays in the population, so with the plain key
    only the counts it changed would be redrawn and comparing two releases would point at its
    works; with this key every retention count of the region is redrawn (docs/privacy.md)."""
    import hashlib

    members: dict[tuple, list[str]] = {}
    for c in contributors:
        if c.service != service:
            continue
        file = c.path / "retention.parquet"
        held = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else "none"
        members.setdefault((c.region,), []).extend([secrets.get(c.institution.code, ""), f"retention:{held}"])
    return disclosure.populations(members)


def _write_frame(frame: pl.DataFrame, path: Path, name: str) -> int:
    schema = RELEASE_SCHEMA[name]
    # One chunk: row groups then depend on the rows only, not on how the engine handed them over.
    frame = frame.select([pl.col(col).cast(dtype) for col, dtype in schema.items()]).rechunk()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Uncompressed on purpose: anyone can grep a release's bytes for an identifier and
    # trust a miss (the canary test does exactly that).
    frame.write_parquet(path, compression="uncompressed", statistics=True)
    return frame.height


def release_params(settings: Settings, as_of: date) -> dict:
    """The named parameters of the release SQL ($k_title, $as_of_month, ...)."""
    window_start = months.history_start(as_of)
    return {"k_title": settings.k_title, "k_bench": settings.k_bench, "withheld": disclosure.TITLE_WITHHELD,
            "punctuation": disclosure.PUNCTUATION,
            "year_ago_int": int(months.history_start(as_of, 12).replace("-", "")),
            "lists_since": f"{as_of.year - 1:04d}", "as_of_month": months.month_of(as_of), "window_start": window_start,
            "as_of_month_int": as_of.year * 100 + as_of.month, "as_of_year": as_of.year,
            "window_start_int": int(window_start.replace("-", "")),
            "last_complete": months.last_complete(as_of),
            "last12_start": months.add(months.last_complete(as_of), -11)}


def build_release(settings: Settings, building: Path, contributors: list[contrib.Contributor], as_of: date,
                  progress=lambda _line: None, epsilon: float | None = None,
                  privacy_notes: dict | None = None, own_values: list | None = None,
                  engine: str = "duckdb", engine_stats: dict | None = None, secrets: dict[str, str] | None = None,
                  protect: bool = True, dp=None) -> dict:
    """Aggregate the contributions into release files under `building`. Returns row counts;
    `privacy_notes` receives what the manifest records about the benchmark privacy and
    `own_values` the private per-institution values (code, kpi, period, value). `engine`
    runs the SQL: "duckdb" (default) or "spark"; `engine_stats` receives its figures.
    `secrets` are the contributors' disclosure secrets (code -> secret, store.noise_secrets);
    every figure passes the disclosure layer unless `protect` is False (measurement only).
    With `epsilon`, `dp` (dp_budget.DPRelease) accounts the yearly privacy budget."""
    secrets = secrets or {}
    rkeys = {code: disclosure.record_key(secret) for code, secret in secrets.items()}
    privacy_notes = {} if privacy_notes is None else privacy_notes
    own_values = [] if own_values is None else own_values
    params = release_params(settings, as_of)
    counts: dict[str, int] = {}
    spill = building.parent / f".spill-{building.name}"
    started = time.perf_counter()
    con = None
    try:
        con = open_engine(engine, settings, spill)
        if engine != "duckdb":
            progress(f"{engine}: session started in {time.perf_counter() - started:.1f} s")
        done: dict[frozenset, str] = {}  # contributing institutions -> prefix already built from them
        for service, prefix in (("collection_development", ""), ("recommendations", RECOMMENDATIONS_PART + "/")):
            members = frozenset(c.institution.code for c in contributors if c.service == service)
            pops = _populations(contributors, service, secrets)
            rpops = _retention_populations(contributors, service, secrets)
            protection = lambda table, pops=pops, rpops=rpops: _protection(  # noqa: E731
                table, rpops if table.startswith("retention") else pops, settings, protect)
            if members in done:
                _copy_service_tables(building, done[members], prefix, counts)
                progress(f"{service}: same contributors as {done[members] or 'collection development'}, copied")
            else:
                _build_service_tables(con, building, service, prefix, contributors, rkeys, params, as_of, counts,
                                      progress, protection)
                done[members] = prefix
            if service == "recommendations":
                _write_recommendation_evidence(con, building, prefix, params, counts, progress, protection)
        started = time.perf_counter()
        _register_contributions(con, contributors, "benchmark", rkeys)
        frame, privacy_note, own = _benchmark_rows(con, settings, contributors, as_of, epsilon,
                                                   secrets if protect else None, dp)
        counts["benchmarks.parquet"] = _write_frame(frame, building / "benchmarks.parquet", "benchmarks.parquet")
        privacy_notes["benchmark"] = privacy_note
        own_values.extend(own)
        progress(f"benchmark: {frame.height:,} cells in {time.perf_counter() - started:.1f} s")
    finally:
        try:
            if con is not None:
                con.close()
                if engine_stats is not None:
                    engine_stats.update(con.stats)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
    return counts


def _copy_service_tables(building: Path, source_prefix: str, prefix: str, counts: dict[str, int]) -> None:
    """The same institutions contribute the same tables to both services: same release rows
    (and the views registered for them hold the same data)."""
    for table in (*release_sql.TITLE_LEVEL, "peer_selection", "retention", "titles", *TREND_TABLES):
        source, name = f"{source_prefix}{table}.parquet", f"{prefix}{table}.parquet"
        (building / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(building / source, building / name)
        counts[name] = counts[source]


def _build_service_tables(con, building: Path, service: str, prefix: str, contributors: list[contrib.Contributor],
                          rkeys: dict, params: dict, as_of: date, counts: dict[str, int], progress,
                          protection) -> None:
    """The title-level tables, peer selection, titles and trend tables of one service's contributors."""
    started = time.perf_counter()
    _register_contributions(con, contributors, service, rkeys)
    con.register("work_map_frame", global_work_map(con.sql(release_sql.WORK_KEYS).pl()))
    con.execute(release_sql.WORK_MAP)
    con.execute(release_sql.WORK_IDS)
    con.unregister("work_map_frame")
    progress(f"{service}: work map in {time.perf_counter() - started:.1f} s")
    _write_title_tables(con, building, prefix, service, params, protection, progress, counts)
    with con.local() as duck:
        _write_trend_tables(duck, building, prefix, as_of, counts)
    progress(f"{service}: title-level tables in {time.perf_counter() - started:.1f} s")



def _write_trend_tables(con, building: Path, prefix: str, as_of: date, counts: dict[str, int]) -> None:
    """The trending signal and ranked rows, computed once here from the released rows only,
    so that pages open a release quickly. Nothing below K_TITLE is in their inputs."""

    file_view(con, "titles", building / f"{prefix}titles.parquet")
    for table in release_sql.TITLE_LEVEL:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {table}_r")
    for table in ("monthly_signal", "trend_windows", "trend_rows"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    trending.build_trend_tables(con, {"as_of": as_of.isoformat(), "window": {"start": months.history_start(as_of)}})
    for table in TREND_TABLES:
        name = f"{prefix}{table}.parquet"
        counts[name] = _write_table(con, f"SELECT * FROM {table}", {}, building / name, f"{table}.parquet")


def _write_title_tables(con, building: Path, prefix: str, service: str, params: dict, protection, progress,
                        counts: dict[str, int]) -> None:
    """The title-level tables, peer_selection and titles of one part of the release; each but
    titles is registered as <table>_r for the statements after it."""
    steps = [*((table, sql, protection(table)) for table, sql in release_sql.TITLE_LEVEL.items()),
             ("peer_selection", release_sql.PEER_SELECTION, protection("peer_selection")),
             ("retention", release_sql.RETENTION, None),
             ("titles", release_sql.TITLES, None)]
    for table, sql, protect in steps:
        name = f"{prefix}{table}.parquet"
        step = time.perf_counter()
        if table == "retention":
            counts[name] = _write_retention(con, params, building / name, protection)
        else:
            counts[name] = _write_table(con, sql, params, building / name, f"{table}.parquet", protect)
        progress(f"{service}: {table} ({counts[name]:,} rows) in {time.perf_counter() - step:.1f} s")
        if table != "titles":
            con.register_file(f"{table}_r", building / name)
        _pause_for_crash_tests(f"{service}:{table}")


def _write_retention(con, params: dict, path: Path, protection) -> int:
    """The retention table: rows and their programs, each count through the disclosure layer;
    a row's programs are those whose own count of institutions was released."""
    def rows(sql: str) -> pl.DataFrame:
        return con.sql(f"SELECT * FROM ({sql}) ORDER BY ALL", params=release_sql.used_params(sql, params)).pl()

    committed = protection("retention")(rows(release_sql.RETENTION))
    # Released as the floor of its band (K_TITLE, 6, 10): a count that moves by one commitment shows
    # only when it crosses a band, so differencing releases tells little (docs/privacy.md).
    count = pl.col("institutions_committed")
    committed = committed.with_columns(
        pl.when(count >= 10).then(10).when(count >= 6).then(6).otherwise(params["k_title"])
        .cast(pl.Int64).alias("institutions_committed"))
    programs = protection("retention_programs")(rows(release_sql.RETENTION_PROGRAMS))
    named = (programs.filter(pl.col("institutions").is_not_null()).group_by("work_key", "region")
             .agg(pl.col("program").unique().sort().alias("programs")))
    frame = (committed.join(named, on=["work_key", "region"], how="left")
             .with_columns(pl.col("programs").fill_null(pl.lit([], dtype=pl.List(pl.String))))
             .sort("work_key", "region"))
    return _write_frame(frame, path, "retention.parquet")


def _write_recommendation_evidence(con, building: Path, prefix: str, params: dict, counts: dict[str, int],
                                   progress, protection) -> None:
    """Loans per copy, platforms and platform titles: evidence only recommendations use."""
    started = time.perf_counter()
    for table, sql in release_sql.RECOMMENDATION_EVIDENCE.items():
        name = f"{prefix}{table}.parquet"
        counts[name] = _write_table(con, sql, params, building / name, f"{table}.parquet", protection(table))
    progress(f"recommendations: evidence tables in {time.perf_counter() - started:.1f} s")


def _unique_shares(con, as_of: date) -> pl.DataFrame:
    """Per benchmark contributor: % of the works it holds that no other contributor of its region
    holds, where another holds it when it shares an ISBN with it (or, without ISBNs, the key).
    Reported with the last complete year; tid, period, kpi, value."""
    con.execute("CREATE OR REPLACE TEMP TABLE unique_ids AS " + release_sql.UNIQUE_IDS)
    shares = con.sql(release_sql.UNIQUE_SHARES).pl()
    con.execute("DROP TABLE unique_ids")
    return shares.select(pl.col("tid").cast(pl.Int64), pl.lit(str(as_of.year - 1)).alias("period"),
                         pl.lit("unique_share").alias("kpi"), pl.col("value").cast(pl.Float64))


def _benchmark_rows(con, settings: Settings, contributors: list[contrib.Contributor], as_of: date,
                    epsilon: float | None, secrets: dict[str, str] | None, dp=None) -> tuple[pl.DataFrame, dict, list]:
    """benchmarks.parquet: every peer-group cell of every region, KPI and period, released or
    suppressed with its reason (release.benchmark_cells states the rules). With `secrets`, each
    contributor's KPI values carry its persistent noise factor (disclosure.kpi_factors)."""
    chosen = [c for c in contributors if c.service == "benchmark"]
    position = {c.token: i for i, c in enumerate(contributors)}
    base = con.sql("SELECT tid, period, measure, value FROM kpis_c").pl().rename({"tid": "unit"})
    values = []
    for c in chosen:
        tid = position[c.token]
        own = kpis.derive(base.filter(pl.col("unit") == tid), {tid: c.institution.fte_students})
        values.append(kpis.counted_periods(own, as_of, c.institution.first_anniversary))
    schema = {"unit": pl.Int64, "period": pl.String, "kpi": pl.String, "value": pl.Float64}
    unique = _unique_shares(con, as_of)
    values.append(unique.rename({"tid": "unit"}))
    kpi_values = (pl.concat([v.with_columns(pl.col("unit").cast(pl.Int64)) for v in values]) if values
                  else pl.DataFrame(schema=schema)).rename({"unit": "tid"})
    if secrets is not None:
        kpi_values = _noisy_kpis(kpi_values, {position[c.token]: secrets[c.institution.code] for c in chosen})
    groups = pl.DataFrame(
        [(position[c.token], c.region, name) for c in chosen
         for name in benchmark_cells.group_names(c.institution.type, c.institution.size_band, c.institution.country)],
        schema={"tid": pl.Int64, "region": pl.String, "peer_group": pl.String}, orient="row")
    con.register("kpi_values", kpi_values)
    con.register("peer_groups", groups)
    cells = con.sql(release_sql.BENCHMARK_CELLS).pl().to_dicts()
    con.unregister("kpi_values")
    con.unregister("peer_groups")
    benchmark_cells.select_cells(cells, settings.k_bench, settings.dominance)
    frame, note = benchmark_cells.release_rows(cells, settings.k_bench, epsilon, dp,
                                         {position[c.token]: c.institution.code for c in chosen},
                                         settings.dominance, "protected" if secrets is not None else "exact")
    # Each institution's own unique share, kept private in the control database, and only where
    # its region's 'all' cell is released (so it never describes fewer than K_BENCH others).
    released_regions = {c["region"] for c in cells if c["kpi"] == "unique_share" and c["peer_group"] == "all"
                        and c["released"]}
    code_of = {position[c.token]: (c.institution.code, c.region) for c in chosen}
    own = [(code_of[r["tid"]][0], "unique_share", r["period"], r["value"]) for r in unique.to_dicts()
           if code_of[r["tid"]][1] in released_regions]
    return frame, note, own


def _noisy_kpis(values: pl.DataFrame, secret_of: dict[int, str]) -> pl.DataFrame:
    """Each contributor's KPI values times its persistent factor per KPI and period."""
    parts = []
    for (tid,), part in values.group_by(["tid"], maintain_order=True):
        factors = disclosure.kpi_factors(secret_of[tid], part["kpi"], part["period"])
        parts.append(part.with_columns((pl.col("value") * pl.Series(factors)).alias("value")))
    return pl.concat(parts) if parts else values


def write_manifest(building: Path, release_id: str, created_at: datetime, as_of: date, settings: Settings,
                   contributors: list[contrib.Contributor], counts: dict[str, int],
                   privacy_notes: dict | None = None, epsilon: float | None = None,
                   engine: str = "duckdb") -> dict:
    per_service: dict[str, dict[str, int]] = {s: {} for s in SERVICES}
    for c in contributors:
        per_service[c.service][c.region] = per_service[c.service].get(c.region, 0) + 1
    manifest = {
        "release_id": release_id,
        "created_at": created_at.isoformat(),
        "as_of": as_of.isoformat(),
        "schema_version": SCHEMA_VERSION,
        "engine": engine,
        "window": {"start": months.history_start(as_of), "end": months.month_of(as_of)},
        "contributors": per_service,
        "privacy": {"K_TITLE": settings.k_title, "K_BENCH": settings.k_bench, "DOMINANCE": settings.dominance,
                    "epsilon": epsilon, **(privacy_notes or {})},
        "row_counts": dict(sorted(counts.items())),
        "sha256": {name: sha256(building / name) for name in sorted(counts)},
    }
    (building / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def switch_current(community_dir: Path, release_id: str) -> None:
    """Point `current` at a release with one atomic rename of a symlink."""
    link = community_dir / "current"
    staging = community_dir / f".current-{secrets.token_hex(4)}"
    os.symlink(Path("releases") / release_id, staging)
    os.replace(staging, link)


def clean_leftovers(community_dir: Path) -> list[str]:
    """Remove what a killed publish left behind: building dirs and stray symlinks."""
    removed = []
    releases = community_dir / "releases"
    if releases.exists():
        for leftover in [*releases.glob(".building-*"), *releases.glob(".spill-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover.name)
    for stray in community_dir.glob(".current-*"):
        stray.unlink(missing_ok=True)
        removed.append(stray.name)
    return removed


def _delete_release(settings: Settings, job: SystemJobStore, release_id: str, reason: str) -> None:
    shutil.rmtree(settings.community_dir / "releases" / release_id, ignore_errors=True)
    job.mark_release_deleted(release_id, reason)


class PublishRunning(ReleaseError):
    """Another publish (or release switch) holds the lock; nothing was changed."""


@contextmanager
def publish_lock(settings: Settings, wait: bool = False, what: str = "publish"):
    """One publish (or `release use`) at a time, per data directory.

    An exclusive flock on data/community/.publish.lock: the operating system releases it when
    the holding process ends, however it ends, so a killed publish never leaves a stale lock.
    Without `wait` a second caller gets PublishRunning at once (the CLI exits 2); with it, it
    blocks until the first is done.
    """
    community = settings.community_dir
    community.mkdir(parents=True, exist_ok=True)
    handle = open(community / ".publish.lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PublishRunning(f"another publish is running ({holder}); nothing was changed. Try again when it "
                                 f"has finished, or pass --wait to queue behind it.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what}, pid {os.getpid()}, started {utcnow():%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


def use_release(settings: Settings, store: Store, release_id: str, actor: Principal | None = None) -> None:
    """Roll back (or forward) to a retained release: verify it, then switch `current` to it."""
    actor = actor or Principal.system_job()
    access.require_system(actor, "Switching the current release")
    with publish_lock(settings, what=f"release use {release_id}"):
        path = settings.community_dir / "releases" / release_id
        if not (path / "manifest.json").exists():
            raise ReleaseError(f"no retained release {release_id!r}; retained: "
                               f"{', '.join(list_release_dirs(settings.community_dir)) or 'none'}.")
        problems = verify_release(settings, store, release_id)
        if problems:
            raise ReleaseError(f"release {release_id} does not pass verification, so it is not used:\n  "
                               + "\n  ".join(problems))
        previous = current_release_id(settings.community_dir)
        switch_current(settings.community_dir, release_id)
        SystemJobStore(store, actor).record_switch(previous, release_id)


def publish(settings: Settings, store: Store, as_of: date | None = None, progress=lambda _line: None,
            now: datetime | None = None, epsilon: float | None = None, wait: bool = False,
            engine: str = "duckdb", engine_stats: dict | None = None, protect: bool = True) -> str:
    """Build a new release from the contributions in effect on `as_of`; return its id.
    An institution whose switch is off today is never included, whatever `as_of` says.
    `protect=False` builds it without the disclosure layer, for measuring that layer's cost
    only (tests and bench; the CLI never offers it, and `release verify` rejects such a release).
    With `epsilon`, benchmark statistics are released with differential privacy (privacy.py).
    `engine` runs the release SQL: DuckDB (default) or Apache Spark (engines.py); both give
    the same release. Only one publish runs at a time (publish_lock)."""
    check_engine(engine)
    with publish_lock(settings, wait=wait):
        return _publish(settings, store, as_of, progress, now, epsilon, engine, engine_stats, protect)


def in_effect_now_and_then(store: Store, as_of: date, today: date) -> dict[str, dict[str, bool]]:
    """Sharing in effect on the as-of date *and* today: opt-out is a present fact, so a
    backdated publish never brings back an institution that has since stopped sharing."""
    system = Principal.system_job()
    then, now = store.sharing_in_effect(system, as_of), store.sharing_in_effect(system, today)
    return {code: {service: on and now.get(code, {}).get(service, False) for service, on in services.items()}
            for code, services in then.items()}


def _publish(settings: Settings, store: Store, as_of: date | None, progress, now: datetime | None,
             epsilon: float | None, engine: str = "duckdb", engine_stats: dict | None = None,
             protect: bool = True) -> str:
    if epsilon is not None and not (epsilon > 0 and epsilon < float("inf")):
        raise ReleaseError(f"--epsilon {epsilon}: give a positive privacy budget such as 1.0.")
    system = Principal.system_job()
    job = SystemJobStore(store, system)
    now = now or utcnow()
    as_of = as_of or now.date()
    if as_of > now.date():
        raise ReleaseError(f"--as-of {as_of.isoformat()} is in the future.")
    community = settings.community_dir
    (community / "releases").mkdir(parents=True, exist_ok=True)
    for leftover in clean_leftovers(community):
        progress(f"removed leftover of an interrupted publish: {leftover}")

    started = time.perf_counter()
    institutions = {i.code: i for i in store.list_institutions(system)}
    in_effect = in_effect_now_and_then(store, as_of, now.date())
    contributors = contrib.refresh(settings, job, institutions, in_effect, as_of, progress, noise=protect)
    noise_keys = job.noise_secrets(sorted({c.institution.code for c in contributors}))
    progress(f"contributions ready in {time.perf_counter() - started:.1f} s")

    release_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    building = community / "releases" / f".building-{release_id}"
    building.mkdir()
    try:
        started = time.perf_counter()
        notes: dict = {}
        own_values: list = []
        dp = None  # with epsilon: the yearly privacy budget, accounted in the control database
        if epsilon is not None:
            from analytics.release import dp_budget

            dp = dp_budget.DPRelease(job, epsilon, as_of, release_id, dp_budget.fingerprint_key(community))
        counts = build_release(settings, building, contributors, as_of, progress, epsilon, notes, own_values,
                               engine, engine_stats, noise_keys, protect, dp)
        notes["disclosure"] = disclosure.manifest_note() if protect else {"protected": False}
        write_manifest(building, release_id, now, as_of, settings, contributors, counts, notes, epsilon, engine)
        _pause_for_crash_tests("manifest")
        progress(f"release files written in {time.perf_counter() - started:.1f} s")
        job.record_release(release_id, now, as_of, [(c.token, c.service, c.region) for c in contributors],
                           own_values)
        problems = verify_release(settings, store, release_id, directory=building, allow_unprotected=not protect)
        if problems:
            job.mark_release_deleted(release_id, "failed verification")
            raise ReleaseError("the new release failed verification; the previous release stays current:\n  "
                               + "\n  ".join(problems))
        final = community / "releases" / release_id
        building.rename(final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _pause_for_crash_tests("before-switch")
    switch_current(community, release_id)
    progress(f"release {release_id} is current")
    _retire(settings, job, release_id, progress)
    return release_id


def _retire(settings: Settings, job: SystemJobStore, newest: str, progress) -> None:
    """Delete releases that hold withdrawn contributions, then all but the last three."""
    live_tokens = {c.token for c in job.contributions()}
    retained = [r for r in list_release_dirs(settings.community_dir) if r != newest]
    for release_id in retained:
        stale = [t for t, _s, _r in job.release_contributors(release_id) if t not in live_tokens]
        if stale:
            _delete_release(settings, job, release_id, "contained data of an institution that has since "
                                                       "stopped sharing")
            progress(f"deleted release {release_id}: it contained withdrawn contributions")
    remaining = list_release_dirs(settings.community_dir)
    for release_id in remaining[:-KEEP_RELEASES]:
        _delete_release(settings, job, release_id, f"only the last {KEEP_RELEASES} releases are kept")
        progress(f"deleted release {release_id}: older than the last {KEEP_RELEASES}")
    if current_release_id(settings.community_dir) != newest:
        raise ReleaseError("current does not point at the new release")
