"""Releases on disk: their schema, how to find them, and verify.

verify_release() is the proof that a release keeps the community's promises. It passes
only if: the manifest's checksums match every file and no file is unlisted; no file
has a column outside the release schema; no string value in any file equals an
institution's code, name, consortium or owner code, a local id (item, title, list,
course) or a contribution token; every row meets the threshold in the manifest; and the
contributor counts agree with the control database for the release's as-of date.
"""

from __future__ import annotations

from analytics.core.errors import UserError

import hashlib
import json
import re
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from analytics.core.access import Principal
from analytics.core.config import Settings
from analytics.core.contract import RELEASE_TABLES, THRESHOLD_COLUMNS, THRESHOLDS, polars_schema
from analytics.ingest.local import table_path
from analytics.core.schema import SERVICES
from analytics.control.store import Store, SystemJobStore

KEEP_RELEASES = 3
RELEASE_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


NO_RELEASE = "No community release has been published yet."
HOW_TO_PUBLISH = "The system job (`python -m analytics publish`) builds one."


class ReleaseError(UserError):
    """A release is missing, invalid or could not be built; the message says which."""


# The release schema of the data contract (core.contract), as Polars types per file name.
RELEASE_SCHEMA: dict[str, dict[str, pl.DataType]] = {f"{table}.parquet": polars_schema(columns)
                                                     for table, columns in RELEASE_TABLES.items()}


def schema_of(name: str) -> dict[str, pl.DataType]:
    """Files under recommendations/ share the schema of the top-level file of that name."""
    return RELEASE_SCHEMA[Path(name).name]


def releases_dir(community_dir: Path) -> Path:
    return community_dir / "releases"


def list_release_dirs(community_dir: Path) -> list[str]:
    """Completed releases, oldest first (ids sort by creation time)."""
    folder = releases_dir(community_dir)
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and RELEASE_ID.match(p.name))


def current_release_id(community_dir: Path) -> str | None:
    link = community_dir / "current"
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target.name if target.is_dir() and (target / "manifest.json").exists() else None


def release_path(community_dir: Path, release_id: str | None = None) -> Path:
    release_id = release_id or current_release_id(community_dir)
    if release_id is None:
        raise ReleaseError(f"{NO_RELEASE} {HOW_TO_PUBLISH}")
    path = releases_dir(community_dir) / release_id
    if not (path / "manifest.json").exists():
        raise ReleaseError(f"No release {release_id!r}; retained releases: "
                           f"{', '.join(list_release_dirs(community_dir)) or 'none'}.")
    return path


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path.name}: manifest.json is missing or not valid JSON ({exc}).") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def register_forbidden(con, settings: Settings, store: Store, job: SystemJobStore) -> None:
    """A DuckDB view `forbidden(value, kind)` of every value that must never appear in a release.

    The small lists (codes, names, tokens) come from the control database; the local ids
    are read by DuckDB straight from the institutions' own Parquet files, so millions of
    item ids never pass through Python.
    """
    system = Principal.system_job()
    small: list[tuple[str, str]] = []
    institutions = store.list_institutions(system)
    for inst in institutions:
        small += [(inst.code, "institution code"), (inst.name, "institution name")]
        if inst.consortium:
            small.append((inst.consortium, "consortium code"))
    small += [(c.token, "contribution token") for c in job.contributions()]
    for release in job.release_history():
        small += [(t, "contribution token") for t, _s, _r in job.release_contributors(release["release_id"])]
    con.register("forbidden_small", pl.DataFrame(small, schema={"value": pl.String, "kind": pl.String}, orient="row"))
    parts = ["SELECT value, kind FROM forbidden_small"]
    local_ids = {"items": ("item_id", "title_id", "owner"), "reading-lists": ("list_id", "course_code")}
    for kind, columns in local_ids.items():
        files = [str(table_path(settings.data_dir, i.code, kind)) for i in institutions
                 if table_path(settings.data_dir, i.code, kind).exists()]
        if not files:
            continue
        variable = f"forbidden_{kind.replace('-', '_')}_files"
        con.execute(f"SET VARIABLE {variable} = $files", {"files": files})
        for column in columns:
            parts.append(f"SELECT {column} AS value, 'local {column}' AS kind "
                         f"FROM read_parquet(getvariable('{variable}')) WHERE {column} IS NOT NULL")
    con.execute("CREATE OR REPLACE TEMP VIEW forbidden AS " + " UNION ALL ".join(parts))


# Released free text: a title, author or publisher leaves only where K_TITLE holders agree on
# it, so it may equal one member's ordinary identifier ("1984" is a title and an item id).
FREE_TEXT = ("title", "author", "publisher")


def _ordinary_texts(con, settings: Settings, store: Store, k_title: int) -> set[str]:
    """The forbidden values found in free-text columns that are ordinary catalogue text: the
    title, author or publisher of items in at least `k_title` institutions' own catalogues.
    Such a match is not a leak, and one member's ids must not stop every release."""
    candidates = [row[0] for row in con.execute(
        "SELECT DISTINCT value FROM hits WHERE column_name IN (SELECT unnest($cols))",
        {"cols": list(FREE_TEXT)}).fetchall()]
    files = [str(table_path(settings.data_dir, i.code, "items"))
             for i in store.list_institutions(Principal.system_job())
             if table_path(settings.data_dir, i.code, "items").exists()]
    if not candidates or not files:
        return set()
    con.execute("SET VARIABLE ordinary_items_files = $files", {"files": files})
    con.register("ordinary_candidates", pl.DataFrame({"value": candidates}, schema={"value": pl.String}))
    rows = con.execute(
        "WITH texts AS (SELECT filename, unnest([title, author, publisher]) AS text "
        "FROM read_parquet(getvariable('ordinary_items_files'), filename = true)) "
        "SELECT c.value FROM ordinary_candidates c JOIN texts t ON t.text = c.value "
        "GROUP BY c.value HAVING count(DISTINCT t.filename) >= $k", {"k": k_title}).fetchall()
    con.unregister("ordinary_candidates")
    return {row[0] for row in rows}


def verify_release(settings: Settings, store: Store, release_id: str | None = None,
                   directory: Path | None = None, allow_unprotected: bool = False) -> list[str]:
    """Problems found in a release; an empty list means every rule holds. A release built
    without the disclosure layer (publish(protect=False), for measurement) is one, unless
    `allow_unprotected`."""
    path = directory or release_path(settings.community_dir, release_id)
    manifest = read_manifest(path)
    release_id = manifest.get("release_id", release_id)
    listed = manifest.get("sha256", {})
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*.parquet"))
    privacy = manifest.get("privacy", {})
    problems = _check_listing(path, listed, on_disk) + _check_privacy(privacy, allow_unprotected)
    job = SystemJobStore(store, Principal.system_job())
    con = duckdb.connect()
    try:
        register_forbidden(con, settings, store, job)
        con.execute("CREATE TEMP TABLE release_strings (value VARCHAR, file VARCHAR, column_name VARCHAR)")
        for name in sorted(set(on_disk) & set(listed)):
            problems += _check_file(con, path / name, name, privacy)
        problems += _check_identifiers(con, settings, store, privacy)
    finally:
        con.close()
    problems += _check_contributors(store, job, release_id, manifest)
    return problems


def _check_listing(path: Path, listed: dict[str, str], on_disk: list[str]) -> list[str]:
    """Every file listed in the manifest, present and with its checksum; no other file."""
    problems = [f"{name}: file is not listed in the manifest" for name in sorted(set(on_disk) - set(listed))]
    for name, expected in sorted(listed.items()):
        file = path / name
        if not file.exists():
            problems.append(f"{name}: listed in the manifest but missing")
        elif sha256(file) != expected:
            problems.append(f"{name}: checksum does not match the manifest")
    return problems


def _check_privacy(privacy: dict, allow_unprotected: bool) -> list[str]:
    """The manifest records every threshold and, unless allowed, the disclosure layer."""
    problems = [f"manifest: privacy parameter {key} missing" for key in THRESHOLDS if privacy.get(key) is None]
    if not privacy.get("disclosure", {}).get("protected") and not allow_unprotected:
        problems.append("manifest: the release was built without the disclosure layer (noise on magnitudes and "
                        "counts); it must not be used")
    return problems


def _check_file(con, file: Path, name: str, privacy: dict) -> list[str]:
    """One release file against the release schema and the rules of its table; its strings go
    into release_strings for _check_identifiers."""
    try:
        schema = schema_of(name)
    except KeyError:
        return [f"{name}: not a file of the release schema"]
    try:
        actual = pl.read_parquet_schema(file)
        con.execute("SELECT count(*) FROM read_parquet($f)", {"f": str(file)}).fetchone()
    except Exception as exc:  # polars/duckdb raise several types for damaged files
        return [f"{name}: not a readable Parquet file ({str(exc).splitlines()[0][:120]})"]
    problems = []
    extra = sorted(set(actual) - set(schema))
    missing = sorted(set(schema) - set(actual))
    if extra:
        problems.append(f"{name}: columns outside the release schema: {', '.join(extra)}")
    if missing:
        problems.append(f"{name}: missing columns: {', '.join(missing)}")
    problems += _check_rules(con, file, name, actual, privacy)
    for column, dtype in actual.items():
        if dtype == pl.String and column in schema:
            con.execute(f'INSERT INTO release_strings SELECT DISTINCT "{column}", $name, $column '
                        f'FROM read_parquet($f) WHERE "{column}" IS NOT NULL',
                        {"name": name, "column": column, "f": str(file)})
    return problems


# The rules of a table beyond its thresholds: (a column they need, [(the rows that break a rule, as an SQL
# condition that may name a threshold of the manifest as $K_BENCH, ..., the problem)]).
TABLE_RULES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "benchmarks": ("suppressed", (
        ("suppressed AND (n IS NOT NULL OR median IS NOT NULL OR mean IS NOT NULL OR p25 IS NOT NULL "
         "OR p75 IS NOT NULL)", "suppressed row(s) that still carry numbers"),
        ("(suppressed AND reason IS NULL) OR (NOT suppressed AND n IS NULL)",
         "row(s) neither released with n nor suppressed with a reason"))),
    "peer_selection": ("group_size", (
        ("peer_group <> 'all' AND group_size < $K_BENCH", "row(s) of a peer group smaller than K_BENCH"),
        ("institutions_holding IS NULL AND institutions_listing IS NULL", "row(s) that no released count supports"))),
}


def _rows(con, file: Path, where: str, params: dict) -> int:
    """How many rows of a release file meet `where` (SQL over its columns and `params`)."""
    return con.execute(f"SELECT count(*) FROM read_parquet($f) WHERE {where}", {"f": str(file), **params}).fetchone()[0]


def _check_rules(con, file: Path, name: str, actual: dict, privacy: dict) -> list[str]:
    """The thresholds of a release file's counts (a withheld count is null; a shown count must
    reach its threshold) and the other rules of its table (TABLE_RULES)."""
    table = Path(name).stem
    problems = []
    for column, key in THRESHOLD_COLUMNS.get(table, ()):
        minimum = privacy.get(key)
        if column in actual and minimum is not None:  # a missing column or threshold is reported already
            below = _rows(con, file, f'"{column}" < $m', {"m": minimum})
            if below:
                problems.append(f"{name}: {below} row(s) with {column} below {key}={minimum}")
    needed, rules = TABLE_RULES.get(table, ("", ()))
    for where, problem in rules if needed in actual else ():
        named = [key for key in THRESHOLDS if f"${key}" in where]
        if all(privacy.get(key) is not None for key in named):
            broken = _rows(con, file, where, {key: privacy[key] for key in named})
            if broken:
                problems.append(f"{name}: {broken} {problem}")
    return problems


def _check_identifiers(con, settings: Settings, store: Store, privacy: dict) -> list[str]:
    """No string of the release (release_strings) equals an identifier (the view `forbidden`)."""
    # One pass over the (possibly millions of) forbidden values for all files at once.
    con.execute("CREATE TEMP TABLE hits AS SELECT DISTINCT r.file, r.column_name, f.kind, f.value "
                "FROM release_strings r JOIN forbidden f ON r.value = f.value")
    k_title = privacy.get("K_TITLE")
    ordinary = _ordinary_texts(con, settings, store, k_title) if k_title is not None else set()
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for file_name, column, kind, value in con.execute("SELECT * FROM hits ORDER BY 1, 2, 3, 4").fetchall():
        if column in FREE_TEXT and kind != "contribution token" and value in ordinary:
            continue  # a title "1984" that K_TITLE catalogues share is not institution 1984's item id
        found.setdefault((file_name, column), (kind, value))
    return [f"{file_name}: column {column} contains a {kind} ({value!r})"
            for (file_name, column), (kind, value) in sorted(found.items())]


def _check_contributors(store: Store, job: SystemJobStore, release_id: str, manifest: dict) -> list[str]:
    """Manifest counts = the control database's record, and each contributor was in effect."""
    problems: list[str] = []
    recorded = job.release_contributors(release_id)
    counted: dict[str, dict[str, int]] = {s: {} for s in SERVICES}
    as_of = date.fromisoformat(manifest["as_of"])
    built = datetime.fromisoformat(manifest["created_at"]).date() if manifest.get("created_at") else as_of
    in_effect = store.sharing_in_effect(Principal.system_job(), as_of)
    on_build_day = store.sharing_in_effect(Principal.system_job(), built)
    for token, service, region in recorded:
        counted[service][region] = counted[service].get(region, 0) + 1
        code = job.institution_of(token)
        if code is None:
            problems.append(f"a {service} contributor of this release has since stopped sharing; the release "
                            f"must be deleted or rebuilt (the next publish does so)")
        elif not in_effect.get(code, {}).get(service, False):
            problems.append(f"a {service} contributor was not sharing on {as_of.isoformat()}")
        elif not on_build_day.get(code, {}).get(service, False):
            problems.append(f"a {service} contributor had stopped sharing by {built.isoformat()}, the day the "
                            f"release was built (opt-out is a present fact, whatever the as-of date)")
    stated = {s: {r: n for r, n in manifest.get("contributors", {}).get(s, {}).items() if n} for s in SERVICES}
    if stated != {s: counted[s] for s in SERVICES}:
        problems.append(f"contributor counts in the manifest {stated} differ from the control database {counted}")
    return problems


def community_overview(actor: Principal, settings: Settings, store: Store) -> dict:
    """What any signed-in user may know about the community data: the current release's
    manifest (counts only, never who contributed) and the history of releases."""
    if not actor.system and actor.institution_code is None:
        raise ReleaseError("Sign in as a user of an institution to see the community data.")
    current = current_release_id(settings.community_dir)
    manifest = read_manifest(release_path(settings.community_dir, current)) if current else None
    history = SystemJobStore(store, Principal.system_job()).release_history()
    return {
        "current": manifest,
        "history": [{"release_id": r["release_id"], "created_at": r["created_at"], "as_of": r["as_of"],
                     "status": "current" if r["release_id"] == current else r["status"],
                     "note": r["deleted_reason"] or ""} for r in history],
    }
