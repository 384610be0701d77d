"""Settings read from the environment.

One place decides where data lives and which thresholds apply, so that the CLI, the
app and the tests can never disagree about them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from analytics.core.contract import THRESHOLDS
from analytics.core.errors import InvalidValue

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO_ROOT / "data" / "reference"


def _env_number(name: str, default, parse, what: str):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise InvalidValue(f"environment variable {name} must be {what}, got {raw!r}") from exc


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "a whole number")


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


@dataclass(frozen=True)
class Settings:
    """Where the data is and the disclosure thresholds of the community data."""

    data_dir: Path
    database_url: str
    k_title: int = THRESHOLDS["K_TITLE"]
    k_bench: int = THRESHOLDS["K_BENCH"]
    dominance: float = THRESHOLDS["DOMINANCE"]
    duckdb_memory: str = "3GB"
    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    spark_shuffle_partitions: int = 0  # 0: twice the cores for a local master, Spark's 200 otherwise
    sign_in: str = "oidc"  # "oidc" (single sign-on, [auth] in secrets.toml) or "demo" (explicit, never a fallback)
    allow_unverified_email: bool = False  # for identity providers that never send email_verified

    @property
    def institutions_dir(self) -> Path:
        return self.data_dir / "institutions"

    @property
    def community_dir(self) -> Path:
        return self.data_dir / "community"

    @property
    def contributions_dir(self) -> Path:
        return self.data_dir / "contributions"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(data_dir: str | os.PathLike | None = None) -> Settings:
    """Settings from arguments first, then environment, then defaults (Settings' own: the
    thresholds' defaults are the data contract's, core.contract.THRESHOLDS).

    ANALYTICS_DATA_DIR (default ./data), DATABASE_URL (default a SQLite file in the
    data dir), K_TITLE, K_BENCH, DOMINANCE, DUCKDB_MEMORY_LIMIT (publish's DuckDB, default 3GB),
    and for `publish --engine spark`: SPARK_MASTER (default local[*]), SPARK_DRIVER_MEMORY
    (default 2g), SPARK_SHUFFLE_PARTITIONS (default: twice the cores for a local master, else 200).
    The app's sign-in: ANALYTICS_SIGN_IN=oidc (default: single sign-on configured in
    .streamlit/secrets.toml) or demo (password-less pick of a demo user; `make run` sets it),
    ANALYTICS_ALLOW_UNVERIFIED_EMAIL=true for identity providers that never send email_verified.
    """
    base = Path(data_dir or os.environ.get("ANALYTICS_DATA_DIR") or "data").resolve()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{base / 'control.db'}"
    return Settings(
        data_dir=base,
        database_url=url,
        k_title=_env_int("K_TITLE", Settings.k_title),
        k_bench=_env_int("K_BENCH", Settings.k_bench),
        dominance=_env_float("DOMINANCE", Settings.dominance),
        duckdb_memory=os.environ.get("DUCKDB_MEMORY_LIMIT") or Settings.duckdb_memory,
        spark_master=os.environ.get("SPARK_MASTER") or Settings.spark_master,
        spark_driver_memory=os.environ.get("SPARK_DRIVER_MEMORY") or Settings.spark_driver_memory,
        spark_shuffle_partitions=_env_int("SPARK_SHUFFLE_PARTITIONS", Settings.spark_shuffle_partitions),
        sign_in=_sign_in_mode(),
        allow_unverified_email=_env_flag("ANALYTICS_ALLOW_UNVERIFIED_EMAIL"),
    )


SIGN_IN_MODES = ("oidc", "demo")


def _sign_in_mode() -> str:
    raw = (os.environ.get("ANALYTICS_SIGN_IN") or Settings.sign_in).strip().lower()
    if raw not in SIGN_IN_MODES:
        raise InvalidValue(f"environment variable ANALYTICS_SIGN_IN must be one of {', '.join(SIGN_IN_MODES)}, "
                         f"got {raw!r}")
    return raw


def _env_flag(name: str) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise InvalidValue(f"environment variable {name} must be true or false, got {raw!r}")
