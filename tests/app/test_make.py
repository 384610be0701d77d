"""`make run` installs only what running the app needs; the test tools, the browser driver and the
Spark engine (a 456 MB PySpark build) come with `make test` and the Spark extra."""

from __future__ import annotations

import subprocess
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def _planned(target: str) -> str:
    """The commands `make TARGET` would run from scratch (nothing is run)."""
    return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_make_run_installs_only_the_runtime_requirements():
    run = _planned("install")
    assert "-r requirements.txt" in run
    assert "requirements-dev.txt" not in run and "requirements-spark.txt" not in run
    assert "pyspark" not in (ROOT / "requirements.txt").read_text()
    assert "pytest" not in (ROOT / "requirements.txt").read_text()


def test_make_test_installs_the_test_tools_and_spark():
    assert "-r requirements-dev.txt" in _planned("install-dev")
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev and "-r requirements-spark.txt" in dev
