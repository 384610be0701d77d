"""The bench harness (analytics/tools/bench.py) at a tiny scale: every stage runs, the table
and the JSON have their columns, and each stage reports its own peak memory, not the
harness's: the test process holds a large buffer while the stages run, which a figure
inherited from the parent (ru_maxrss of a child carries the parent's high-water mark)
would include."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.core.config import load_settings
from analytics.tools.bench import STAGES, TINY, run_bench

ROOT = Path(__file__).resolve().parents[2]
BALLAST_MIB = 600
COLUMNS = ["stage", "rows", "seconds", "rows_per_second", "peak_mib", "note"]
STAGE_ROWS = ["import items", "import marc", "import counter",
              *(f"{stage} (scale xs)" for stage in ("contributions", "publish", "verify", "queries", "recommend",
                                                    "benchmark")),
              "utility (demo)", "utility (scale xs)"]
# A stage's own process at the tiny scale: an interpreter with polars, DuckDB and (for the
# pages) Streamlit, far less than the buffer the harness's process holds.
STAGE_BOUND_MIB = 450
FILE_STAGE_BOUND_MIB = 250

# A child that allocates 300 MiB, lets it go and then reads its own peak.
PEAK_AFTER_FREE = """
from analytics.tools.bench_stages import own_peak_mib
buffer = b"x" * (300 * 2**20)
del buffer
print(own_peak_mib())
"""


def _ballast() -> bytes:
    """BALLAST_MIB of memory written to, so that it is resident in this process."""
    return b"x" * (BALLAST_MIB * 2**20)


def _child_peak(code: str) -> float:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def test_own_peak_is_the_process_high_water_mark_without_its_parents():
    ballast = _ballast()
    assert _child_peak(PEAK_AFTER_FREE) >= 300  # the peak, not what is resident at the end
    idle = _child_peak("from analytics.tools.bench_stages import own_peak_mib; print(own_peak_mib())")
    assert 5 < idle < 150, idle  # a bare interpreter, not the parent's buffer
    del ballast


@pytest.mark.slow
def test_every_stage_at_a_tiny_scale_reports_its_own_peak(tmp_path, capsys):
    ballast = _ballast()
    assert run_bench(load_settings(tmp_path / "data"), scale="xs", sizes=TINY) == 0
    del ballast
    out = capsys.readouterr().out
    written = Path(re.search(r"^written: (.+)$", out, re.MULTILINE)[1])
    report = json.loads(written.read_text())
    assert written.parent == tmp_path / "data" / "bench"
    assert report["scale"] == "xs" and report["engine"] == "duckdb" and report["cores"] >= 1
    results = report["results"]

    assert STAGES == ("import", "formats", "contributions", "publish", "verify", "queries", "recommend",
                      "benchmark", "utility")
    assert [r["stage"] for r in results] == STAGE_ROWS
    table = out.splitlines()
    assert re.split(r"\s+", table[0].strip()) == COLUMNS
    assert [line.split("  ")[0] for line in table[2:2 + len(STAGE_ROWS)]] == STAGE_ROWS
    for result in results:
        assert list(result)[:len(COLUMNS)] == COLUMNS, result
        assert result["seconds"] > 0 and result["rows"] > 0, result
        assert 20 < result["peak_mib"] < STAGE_BOUND_MIB, result
        rate = result["rows_per_second"]
        assert rate is None if result["stage"].startswith("utility") else rate > 0, result
    for result in results[:3]:
        assert result["peak_mib"] < FILE_STAGE_BOUND_MIB, result
    for result in results[7:9]:  # recommend and benchmark: the page's own process
        page_peak = int(re.search(r"page_peak_mib=(\d+)", result["note"])[1])
        assert 20 < page_peak < STAGE_BOUND_MIB, result
    assert "publish (scale xs), duckdb, seconds per step:" in out
    assert "utility (demo): 6 institutions" in out and "utility (scale xs): 9 institutions" in out
