"""One definition, two engines: the release SQL run by DuckDB and by Apache Spark.

The fast tests check the SQLGlot transpilation and its rules without a JVM. The slow ones
build the demo community's release with both engines and compare every table: the same
rows (order aside), the same thresholds and the same contributor counts. They need PySpark
and Java; `make test` installs both (scripts/system-deps.sh installs default-jre-headless),
so in CI a missing one is a failure, not a skip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from datetime import UTC, datetime

import polars as pl
import pytest

from analytics.release import engines
from analytics.release import sql as release_sql
from analytics.cli import main
from analytics.core.config import load_settings
from analytics.release.publish import publish
from analytics.release.manifest import current_release_id, list_release_dirs, verify_release
from analytics.control.store import Store
from tests.support.frames import row_differences

STATEMENTS = {name: value for name, value in vars(release_sql).items()
              if name.isupper() and isinstance(value, str) and "SELECT" in value}


def spark_sql(sql: str) -> str:
    from analytics.release.spark_sql import to_spark

    return to_spark(sql)


def test_every_release_statement_transpiles_to_spark_with_its_meaning():
    assert {"HOLDINGS", "LOANS", "E_USAGE", "READING_LISTS", "PEER_SELECTION", "TITLES", "WORK_KEYS", "WORK_MAP",
            "WORK_IDS", "BENCHMARK_CELLS", "UNIQUE_IDS", "UNIQUE_SHARES", "WORK_USE", "PLATFORM_TITLES",
            "PLATFORMS"} <= set(STATEMENTS)
    for name, sql in STATEMENTS.items():
        text = spark_sql(sql)
        assert "$" not in text, name                                     # parameters become :name markers
        for param in re.findall(r"\$(\w+)", sql):
            assert f":{param}" in text, (name, param)
        assert "PERCENTILE_APPROX" not in text.upper(), name             # never an approximate quantile
        assert "PERCENTILE_CONT" not in text.upper(), name               # Spark has no 2-argument form
        assert not re.search(r"(?<![X\w])HASH\(", text.upper()), name    # 32-bit in Spark
        assert not re.search(r"\bLENGTH\(", text.upper()), name          # strings only in Spark
    assert "PERCENTILE(v.value, 0.5)" in spark_sql(release_sql.BENCHMARK_CELLS)
    assert "ARRAY_SORT(COLLECT_LIST(v.tid))" in spark_sql(release_sql.BENCHMARK_CELLS)
    assert "XXHASH64(isbn)" in spark_sql(release_sql.UNIQUE_IDS)


@pytest.mark.parametrize(("duckdb_sql", "spark_text"), [
    ("SELECT quantile_cont(x, 0.25) FROM t", "SELECT PERCENTILE(x, 0.25) FROM t"),
    ("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t", "SELECT PERCENTILE(x, 0.5) FROM t"),
    ("SELECT hash(k) FROM t", "SELECT XXHASH64(k) FROM t"),
    ("SELECT list_sort(list(k)) FROM t GROUP BY g", "SELECT ARRAY_SORT(COLLECT_LIST(k)) FROM t GROUP BY g"),
    ("SELECT count(*) FROM t WHERE m <= $as_of_month", "SELECT COUNT(*) FROM t WHERE m <= :as_of_month"),
])
def test_rewrite_rules(duckdb_sql, spark_text):
    assert spark_sql(duckdb_sql) == spark_text


@pytest.mark.parametrize("duckdb_sql", [
    "SELECT list(k ORDER BY k) FROM t",               # collect_list would drop the order silently
    "SELECT quantile_disc(x, 0.5) FROM t",
    "SELECT quantile(x, 0.5) FROM t",                 # DuckDB: discrete; sqlglot: Spark's continuous
    "SELECT approx_quantile(x, 0.5) FROM t",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x DESC) FROM t",   # the DESC would be dropped
    "SELECT 100.0 * a / b FROM t",                    # Spark would divide in DECIMAL
])
def test_constructs_that_would_change_meaning_are_refused(duckdb_sql):
    from analytics.release.spark_sql import NotPortable

    with pytest.raises(NotPortable):
        spark_sql(duckdb_sql)


def test_unknown_engine_is_refused():
    with pytest.raises(engines.EngineUnavailable, match="unknown engine 'presto': use one of duckdb, spark"):
        engines.check_engine("presto")


def test_a_java_older_than_17_is_refused(monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setattr(engines, "_java", lambda: "/usr/lib/jvm/java-11/bin/java")
    monkeypatch.setattr(engines, "_java_major", lambda _java: 11)
    with pytest.raises(engines.EngineUnavailable, match="needs a Java 17\\+ runtime; .*java-11/bin/java is version 11"):
        engines.check_engine("spark")


@pytest.mark.parametrize(("output", "major"), [('openjdk version "17.0.15" 2025-04-15', 17),
                                               ('java version "1.8.0_392"', 8), ('openjdk version "21" 2023', 21),
                                               ("no version here", None)])
def test_java_version_is_read_from_java_version(monkeypatch, output, major):
    import subprocess

    monkeypatch.setattr(engines.subprocess, "run",
                        lambda *_a, **_k: subprocess.CompletedProcess([], 0, stdout="", stderr=output))
    assert engines._java_major("java") == major


def test_spark_without_java_exits_2_naming_the_package_and_changes_nothing(published_community, tmp_path,
                                                                          monkeypatch, capsys):
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    before = list_release_dirs(data_dir / "community")
    monkeypatch.setattr(engines.shutil, "which", lambda _name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    code = main(["--data-dir", str(data_dir), "publish", "--engine", "spark"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Java 17+ runtime" in err and "default-jre-headless" in err
    assert list_release_dirs(data_dir / "community") == before
    assert not list((data_dir / "community" / "releases").glob(".*"))


# --- The same release from both engines --------------------------------------------------------

def _java_and_pyspark() -> str | None:
    try:
        engines.check_engine("spark")
    except engines.EngineUnavailable as exc:
        return str(exc)
    return None


def _require_spark() -> None:
    missing = _java_and_pyspark()
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI must run the Spark equality test: {missing}")
    if missing:
        pytest.skip(missing)


def _draw_noise_keys(data_dir) -> None:
    """Each institution's disclosure secret, drawn in the source as the first publish would."""
    from analytics.core.access import Principal
    from analytics.control.store import SystemJobStore

    store = Store.from_settings(load_settings(data_dir))
    system = Principal.system_job()
    SystemJobStore(store, system).noise_secrets([i.code for i in store.list_institutions(system)])
    store.dispose()


def _publish_copy(source, target, engine: str, k_title: int, k_bench: int, when: datetime):
    """Publish a copy of `source` with `engine`: its manifest, release directory and the private
    per-institution values it stored in the control database."""
    from analytics.core.access import Principal

    shutil.copytree(source, target, symlinks=True)
    settings = dataclasses.replace(load_settings(target), k_title=k_title, k_bench=k_bench)
    store = Store.from_settings(settings)
    release_id = publish(settings, store, as_of=when.date(), now=when, engine=engine)
    assert current_release_id(settings.community_dir) == release_id
    assert verify_release(settings, store) == []
    system = Principal.system_job()
    own = {i.code: store.own_kpi_values(system, i.code, release_id) for i in store.list_institutions(system)}
    store.dispose()
    path = settings.community_dir / "releases" / release_id
    return json.loads((path / "manifest.json").read_text()), path, own


@pytest.mark.slow
@pytest.mark.spark
# The demo's own thresholds, and the lowest under which every table of the small demo has rows
# (reading lists, released benchmark statistics), so that each statement is compared on data.
@pytest.mark.parametrize(("k_title", "k_bench"), [(3, 5), (1, 2)])
def test_duckdb_and_spark_build_the_same_release(demo_community, tmp_path, k_title, k_bench, monkeypatch):
    _require_spark()
    monkeypatch.chdir(tmp_path)  # nothing of Spark's may land in the working directory
    _draw_noise_keys(demo_community)  # both copies then carry the same protective noise
    when = datetime.now(UTC).replace(microsecond=0)
    duck, duck_dir, duck_own = _publish_copy(demo_community, tmp_path / "duckdb" / "data", "duckdb", k_title,
                                             k_bench, when)
    # A data directory with a space: Spark names files by URI, and the join must not depend on it.
    spark, spark_dir, spark_own = _publish_copy(demo_community, tmp_path / "spark engine" / "data", "spark",
                                                k_title, k_bench, when)

    assert (duck["engine"], spark["engine"]) == ("duckdb", "spark")
    assert spark["privacy"] == duck["privacy"]
    assert (spark["privacy"]["K_TITLE"], spark["privacy"]["K_BENCH"]) == (k_title, k_bench)
    assert spark["contributors"] == duck["contributors"]
    assert sum(duck["contributors"]["benchmark"].values()) >= 5
    assert spark["row_counts"] == duck["row_counts"]
    # The private values the release does not hold (each institution's unique share) agree too.
    assert spark_own.keys() == duck_own.keys()
    for code, rows in duck_own.items():
        assert [(r["kpi"], r["period"]) for r in spark_own[code]] == [(r["kpi"], r["period"]) for r in rows], code
        assert [r["value"] for r in spark_own[code]] == pytest.approx([r["value"] for r in rows], rel=1e-12), code
    assert len(duck["row_counts"]) == 22  # 20 + retention at the top level and under recommendations/
    for name in duck["row_counts"]:
        difference = row_differences(pl.read_parquet(duck_dir / name), pl.read_parquet(spark_dir / name))
        assert difference is None, f"{name}: {difference}"
    title_level = [n for n in duck["row_counts"] if n.removeprefix("recommendations/").removesuffix(".parquet")
                   in (*release_sql.TITLE_LEVEL, "peer_selection", "titles", "work_use", "platform_titles")]
    empty = {n for n in title_level if duck["row_counts"][n] == 0}
    assert empty <= {"reading_lists.parquet", "recommendations/reading_lists.parquet"}
    benchmarks = pl.read_parquet(spark_dir / "benchmarks.parquet")
    released = benchmarks.filter(~pl.col("suppressed"))
    assert benchmarks.height > 1000
    if k_title == 1:
        assert not empty                                   # reading lists compared too
        assert released.height > 100                       # and released statistics
        assert released["n"].min() >= k_bench
        assert released.filter(pl.col("kpi") == "unique_share").height > 0
        assert sum(len(rows) for rows in duck_own.values()) > 0
    assert not list((tmp_path / "spark engine" / "data" / "community" / "releases").glob(".*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["duckdb", "spark engine"]   # no spark-warehouse,
    assert os.environ.get("SPARK_LOCAL_DIRS", "").startswith(str(tmp_path / "spark engine"))  # metastore_db...


def test_the_engines_read_the_same_named_parameters():
    """Each statement's parameters are among those build_release passes (both engines bind by name)."""
    from analytics.release.publish import release_params

    passed = set(release_params(load_settings("unused"), datetime(2026, 11, 29).date()))
    for name, sql in STATEMENTS.items():
        assert set(re.findall(r"\$(\w+)", sql)) <= passed, name
    assert release_sql.used_params(release_sql.WORK_USE, dict.fromkeys(passed, 1)).keys() == {
        "last12_start", "last_complete", "k_title"}
