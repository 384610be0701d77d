"""Opening a release for reading: the one way every view, page and command does it.

A release is immutable, so it is loaded once into an in-memory DuckDB database that every
cursor shares; queries then never touch the files again. `open_release` opens the whole
release, or one part of it (the recommendations part) restricted to the tables and rows
its reader needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from analytics.core.contract import TREND_TABLES
from analytics.release.manifest import (HOW_TO_PUBLISH, NO_RELEASE, ReleaseError, current_release_id, read_manifest,
                                        release_path)
from analytics.release.trending import TITLE_ISBNS, build_trend_tables

__all__ = ["HOW_TO_PUBLISH", "NO_RELEASE", "Release", "current_manifest", "open_release"]
TABLES = ("titles", "holdings", "peer_selection", "benchmarks")
RAW_MONTHLY = ("loans", "e_usage", "reading_lists")  # only to build the trend tables of an older release
OPTIONAL = ("retention",)  # tables a release made before them lacks: opened empty


@dataclass
class Release:
    """An open release: its manifest and a DuckDB connection with one table per file."""

    release_id: str
    path: Path
    manifest: dict
    con: duckdb.DuckDBPyConnection = field(repr=False)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection refuses concurrent use: each call takes its own cursor."""
        return self.con.cursor()


def open_release(community_dir: Path, release_id: str | None = None, *, part: str | None = None,
                 tables: tuple[str, ...] = (), where: dict[str, tuple[str, object]] | None = None) -> Release:
    """The current release (or `release_id`), opened. With `part`, the tables `tables` of that
    sub-folder, each filtered by `where[name]` = (SQL condition on $v, value) where given."""
    path = release_path(community_dir, release_id)
    manifest = read_manifest(path)
    con = duckdb.connect()
    if part is None:
        ready = all((path / f"{name}.parquet").exists() for name in TREND_TABLES)
        for name in TABLES + (TREND_TABLES if ready else RAW_MONTHLY):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet($f)", {"f": str(path / f"{name}.parquet")})
        if not ready:
            build_trend_tables(con, manifest)
        for name in OPTIONAL:
            if (path / f"{name}.parquet").exists():
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet($f)",
                            {"f": str(path / f"{name}.parquet")})
            else:
                from analytics.core.contract import RELEASE_TABLES, polars_schema
                import polars as pl

                empty = pl.DataFrame(schema=polars_schema(RELEASE_TABLES[name]))  # noqa: F841 - read by DuckDB
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM empty")
    else:
        folder = path / part
        missing = [n for n in tables if not (folder / f"{n}.parquet").exists()]
        if missing:
            raise ReleaseError(f"release {path.name} has no {part} evidence ({', '.join(missing)} missing "
                               f"under {part}/); publish a new release.")
        for name in tables:
            condition, value = (where or {}).get(name, ("$v", True))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet($f) WHERE {condition}",
                        {"f": str(folder / f"{name}.parquet"), "v": value})
    con.execute(TITLE_ISBNS)
    return Release(manifest["release_id"] if part is None else path.name, path, manifest, con)


def current_manifest(community_dir: Path) -> dict | None:
    """The manifest of the release in force, or None before the first publish (or if it is unreadable)."""
    release_id = current_release_id(community_dir)
    if release_id is None:
        return None
    try:
        return read_manifest(release_path(community_dir, release_id))
    except ReleaseError:
        return None
