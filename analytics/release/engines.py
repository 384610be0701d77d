"""The engines that run the release SQL: DuckDB (default) and Apache Spark.

publish.build_release speaks to both through the same small interface, so the release is
defined once (release_sql.py) and the disclosure control, manifest, verification and
switch are shared:

    sql(query, params).pl()           a statement's result as a polars frame
    execute(query, params)            CREATE [OR REPLACE] TEMP TABLE / DROP TABLE
    register(name, frame)             a polars frame as a view
    unregister(name)
    contribution_view(name, who, types)  a view over contribution files (see publish)
    register_file(name, path)         a view over a release file just written
    local()                           a DuckDB connection with those release-file views,
                                      for the small steps over released rows (trend tables)
    close()

Spark is imported only when `--engine spark` is asked for: it needs PySpark
(requirements-spark.txt) and a Java 17+ runtime.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import polars as pl

from analytics.release import sql as release_sql
from analytics.core.config import Settings
from analytics.core.contract import polars_schema
from analytics.release.manifest import ReleaseError

ENGINES = ("duckdb", "spark")
SPARK_LOG_CONFIG = Path(__file__).resolve().parent / "spark-log4j2.properties"
# The DuckDB types of the data contract's type names (core.contract).
_DUCK_TYPES = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "list[str]": "VARCHAR[]"}


class EngineUnavailable(ReleaseError):
    """The engine asked for cannot run on this machine; the message says what to install."""


def check_engine(name: str) -> None:
    """Refuse at once (before any work) an engine this machine cannot run."""
    if name not in ENGINES:
        raise EngineUnavailable(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")
    if name == "spark":
        _spark_requirements()


def open_engine(name: str, settings: Settings, spill: Path):
    check_engine(name)
    return DuckDBEngine(settings, spill) if name == "duckdb" else SparkEngine(settings, spill)


def file_view(con, name: str, path: Path) -> None:
    """A DuckDB view over one Parquet file (the path passed as a value, never spliced in)."""
    con.execute(f"SET VARIABLE {name}_file = $p", {"p": str(path)})
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet(getvariable('{name}_file'))")


def _duckdb(settings: Settings, spill: Path):
    """A DuckDB connection for publish: bounded memory (DUCKDB_MEMORY_LIMIT), spilling large
    aggregations into the release's own temporary directory, which publish removes."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = $limit", {"limit": settings.duckdb_memory})
    con.execute("SET temp_directory = $dir", {"dir": str(spill)})
    return con


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, settings: Settings, spill: Path):
        self.con = _duckdb(settings, spill)
        self.stats: dict = {}

    def sql(self, query: str, params: dict | None = None):
        return self.con.sql(query, params=release_sql.used_params(query, params or {}) or None)

    def execute(self, query: str, params: dict | None = None) -> None:
        self.con.execute(query, release_sql.used_params(query, params or {}) or None)

    def register(self, name: str, frame: pl.DataFrame) -> None:
        self.con.register(name, frame)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def contribution_view(self, name: str, who: pl.DataFrame, types: dict[str, str]) -> None:
        """`name` over the files in who["path"], each row with its contributor's columns of `who`.
        Views, not tables: DuckDB streams the Parquet files through each query instead of
        holding every contribution in memory."""
        self.con.execute(f"DROP VIEW IF EXISTS {name}")
        attributes = [c for c in who.columns if c != "path"]
        if who.is_empty():
            nulls = [f"NULL::{'BIGINT' if who.schema[c].is_integer() else 'VARCHAR'} AS {c}" for c in attributes]
            nulls += [f"NULL::{_DUCK_TYPES[t]} AS {column}" for column, t in types.items()]
            self.con.execute(f"CREATE TEMP VIEW {name} AS SELECT {', '.join(nulls)} WHERE false")
            return
        self.con.register("who_frame", who)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_who AS SELECT * FROM who_frame")
        self.con.unregister("who_frame")
        self.con.execute(f"SET VARIABLE {name}_files = $files", {"files": who["path"].to_list()})
        self.con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT {', '.join('w.' + c for c in attributes)}, "
            f"t.* EXCLUDE (filename) FROM read_parquet(getvariable('{name}_files'), filename = true) t "
            f"JOIN {name}_who w ON t.filename = w.path")

    def register_file(self, name: str, path: Path) -> None:
        file_view(self.con, name, path)

    @contextmanager
    def local(self):
        yield self.con

    def close(self) -> None:
        self.con.close()


class _SparkResult:
    def __init__(self, frame):
        self.frame = frame

    def pl(self) -> pl.DataFrame:
        return pl.from_arrow(self.frame.toArrow())


def _arrow(frame: pl.DataFrame):
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string, which Spark reads


def _file_key(path: str) -> str:
    """The part of a contribution file's path that names it: <token>/<service>/<table>.parquet.
    Spark reports file paths as URIs (file:/..., spaces and the like escaped); these last three
    parts are plain letters, digits and underscores in both forms, so the join never depends on
    how the data directory is spelled. Spark takes them with substring_index: a regular
    expression per row made the scan 20 times slower."""
    key = "/".join(Path(path).parts[-3:])
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+", key):
        raise EngineUnavailable(f"contribution file {path}: unexpected name for the Spark engine")
    return key


def _spark_requirements() -> None:
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        raise EngineUnavailable(
            "--engine spark needs PySpark and SQLGlot, which are not installed: pip install -r "
            "requirements-spark.txt (and a Java 17+ runtime; on Debian: apt-get install default-jre-headless)"
        ) from None
    java = _java()
    if java is None:
        raise EngineUnavailable("--engine spark needs a Java 17+ runtime, and none was found (no java on PATH, "
                                "no JAVA_HOME); on Debian: apt-get install default-jre-headless")
    major = _java_major(java)
    if major is None or major < 17:
        raise EngineUnavailable(f"--engine spark needs a Java 17+ runtime; {java} is "
                                f"{'version ' + str(major) if major else 'not a working Java'}. On Debian: "
                                f"apt-get install default-jre-headless, or point JAVA_HOME at a Java 17+")


def _java() -> str | None:
    """The java Spark's launcher will use: $JAVA_HOME/bin/java first, else java on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found[1])
    return int(found[2] or 0) if major == 1 else major  # "1.8.0" is Java 8


def start_spark(settings: Settings, local_dir: Path):
    """A Spark session for one publish: master and memory from the settings (SPARK_MASTER,
    SPARK_DRIVER_MEMORY, SPARK_SHUFFLE_PARTITIONS); shuffle and spill files under `local_dir`,
    which publish removes afterwards; no web UI, no event log, quiet logs. (open_engine has
    checked PySpark and Java.)"""
    # PySpark warns about pandas 3 (a Streamlit dependency) when it converts frames; it converts
    # with Arrow only here, never with pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    from pyspark.sql import SparkSession

    master = settings.spark_master
    local = master.startswith("local")
    local_dir.mkdir(parents=True, exist_ok=True)
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Spark prefers SPARK_LOCAL_DIRS (e.g. from a spark-env.sh) to spark.local.dir: pin both,
        # so that shuffle and spill files of contribution rows stay in the release's temporary
        # directory. (Cluster executors use their own local directories, cleaned by the cluster.)
        os.environ["SPARK_LOCAL_DIRS"] = str(local_dir)
    partitions = settings.spark_shuffle_partitions or (2 * _local_cores(master) if local else 200)
    builder = (SparkSession.builder.master(master).appName("analytics-publish")
               .config("spark.driver.memory", settings.spark_driver_memory)
               .config("spark.sql.shuffle.partitions", str(partitions))
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.eventLog.enabled", "false")
               .config("spark.local.dir", str(local_dir))
               .config("spark.sql.warehouse.dir", str(local_dir / "warehouse"))
               .config("spark.sql.catalogImplementation", "in-memory")  # no metastore_db / derby.log
               # Release tables are aggregates and are collected to the driver by design.
               .config("spark.driver.maxResultSize", "0")
               .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{SPARK_LOG_CONFIG}"))
    if local:
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # PySpark also logs each failed query as JSON from Python; the exception says the same.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    return spark


def _local_cores(master: str) -> int:
    """N of local[N] (local[*] and local: this machine's cores)."""
    found = re.fullmatch(r"local\[(\d+)(?:,\d+)?\]", master)
    return int(found[1]) if found else (1 if master == "local" else os.cpu_count() or 1)


def stop_spark(spark) -> None:
    """Stop the session and its JVM. PySpark keeps the JVM for the next session, and with it
    the first session's temporary directories and memory setting: each publish starts afresh."""
    from pyspark import SparkContext

    try:
        spark.stop()
    finally:
        gateway = SparkContext._gateway
        SparkContext._gateway = None
        SparkContext._jvm = None
        if gateway is not None:
            process = getattr(gateway, "proc", None)
            with suppress(Exception):  # the process is ended below anyway
                gateway.shutdown()
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _jvm_peak_mib(spark) -> float | None:
    """Peak resident memory of the driver JVM (VmHWM), which the Python process's own figure omits."""
    try:
        pid = spark.sparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (AttributeError, OSError, ValueError):
        return None
    return None


class SparkEngine:
    """Runs the same DuckDB SQL on Apache Spark: each statement is transpiled by SQLGlot
    (spark_sql.py); temp tables become checkpointed temp views."""

    name = "spark"

    def __init__(self, settings: Settings, spill: Path):
        from analytics.release import spark_sql

        self._to_spark, self._parse, self._tree = spark_sql.to_spark, spark_sql.parse, spark_sql.spark_tree
        started = time.perf_counter()
        self.settings, self.spill = settings, spill
        try:
            self.spark = start_spark(settings, spill / "spark")
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineUnavailable(f"Apache Spark did not start (SPARK_MASTER={settings.spark_master}): "
                                    f"{first}") from exc
        try:
            self.spark.sql("SELECT 1").collect()
        except Exception:
            stop_spark(self.spark)
            raise
        self.stats: dict = {"session_start_s": round(time.perf_counter() - started, 1)}
        self.files: dict[str, Path] = {}
        self.tables: dict = {}  # temp table name -> its checkpointed frame

    def _run(self, spark_sql: str, params: dict):
        return self.spark.sql(spark_sql, args=params or None)

    def sql(self, query: str, params: dict | None = None) -> _SparkResult:
        return _SparkResult(self._run(self._to_spark(query), release_sql.used_params(query, params or {})))

    def execute(self, query: str, params: dict | None = None) -> None:
        from sqlglot import exp

        params = release_sql.used_params(query, params or {})
        tree = self._parse(query)
        if isinstance(tree, exp.Create) and tree.kind == "TABLE":
            # A temp table is materialised once (like DuckDB's), as a checkpointed temp view:
            # the plan above it is not recomputed by each statement that reads it.
            frame = self._run(self._tree(tree.expression).sql(dialect="spark"), params)
            self._release(tree.this.name)
            self.tables[tree.this.name] = frame.localCheckpoint(eager=True)
            self.tables[tree.this.name].createOrReplaceTempView(tree.this.name)
        elif isinstance(tree, exp.Drop):
            for table in tree.args.get("tables") or [tree.this]:
                self._release(table.name)
                self.spark.catalog.dropTempView(table.name)
        else:
            raise NotImplementedError(f"the Spark engine runs CREATE TEMP TABLE and DROP TABLE only: {query[:80]}")

    def _release(self, name: str) -> None:
        """Free the checkpointed blocks of a temp table that is replaced or dropped."""
        old = self.tables.pop(name, None)
        if old is not None:
            old.unpersist()

    def register(self, name: str, frame: pl.DataFrame) -> None:
        self.spark.createDataFrame(_arrow(frame)).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)

    def contribution_view(self, name: str, who: pl.DataFrame, types: dict[str, str]) -> None:
        from pyspark.sql import functions as F

        attributes = [c for c in who.columns if c != "path"]
        if who.is_empty():
            empty = pl.DataFrame(schema={**{c: who.schema[c] for c in attributes},
                                         **polars_schema(types)})
            self.register(name, empty)
            return
        keyed = who.with_columns(pl.col("path").map_elements(_file_key, return_dtype=pl.String).alias("file_key"))
        data = self.spark.read.parquet(*who["path"].to_list())
        columns = data.columns
        data = data.withColumn("file_key", F.substring_index(F.col("_metadata.file_path"), "/", -3))
        contributors = F.broadcast(self.spark.createDataFrame(_arrow(keyed.drop("path"))))
        data.join(contributors, "file_key").select(*attributes, *columns).createOrReplaceTempView(name)

    def register_file(self, name: str, path: Path) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
        self.files[name] = path

    @contextmanager
    def local(self):
        """Steps over released rows only (trend tables) run on DuckDB over the files written:
        they are small, and the trend SQL uses DuckDB functions Spark lacks."""
        con = _duckdb(self.settings, self.spill)
        try:
            for name, path in self.files.items():
                file_view(con, name, path)
            yield con
        finally:
            con.close()

    def close(self) -> None:
        self.stats["jvm_peak_mib"] = _jvm_peak_mib(self.spark)
        stop_spark(self.spark)

