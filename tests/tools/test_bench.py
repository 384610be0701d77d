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
                                                    "benchmark", "lastcopy", "pages")),
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
                      "benchmark", "lastcopy", "pages", "utility")
    assert [r["stage"] for r in results] == STAGE_ROWS
    table = out.splitlines()
    assert re.split(r"\s+", table[0].strip()) == COLUMNS
    assert [line.split("  ")[0] for line in table[2:2 + len(STAGE_ROWS)]] == STAGE_ROWS
    for result in results:
        assert list(result)[:len(COLUMNS)] == COLUMNS, result
        assert result["seconds"] > 0 and result["rows"] > 0, result
        assert 20 < result["peak_mib"] < STAGE_BOUND_MIB, result
        rate = result["rows_per_second"]
        assert rate is None if result["stage"].startswith(("utility", "pages")) else rate > 0, result
    for result in results[:3]:
        assert result["peak_mib"] < FILE_STAGE_BOUND_MIB, result
    for result in results[7:9]:  # recommend and benchmark: the page's own process
        page_peak = int(re.search(r"page_peak_mib=(\d+)", result["note"])[1])
        assert 20 < page_peak < STAGE_BOUND_MIB, result
    pages = results[10]["pages"]
    assert [(p["page"], p["role"]) for p in pages] == [("Home", "manager"), ("Trending titles", "manager")]
    assert all(p["cold_ms"] > 0 and p["warm_ms"] > 0 for p in pages), pages
    assert "pages (scale xs): ready in ms" in out
    assert "publish (scale xs), duckdb, seconds per step:" in out
    assert "utility (demo): 6 institutions" in out and "utility (scale xs): 9 institutions" in out


PAGE_COLUMNS = ["page", "role", "cold_ms", "warm_ms", "warm_runs_ms", "target"]


@pytest.mark.slow
@pytest.mark.browser
def test_pages_stage_on_a_published_community(published_community, tmp_path, capsys):
    """`bench --only pages --community DIR` (here two pages, two warm visits each): every page's
    cold and warm time in a real browser, in the JSON and in a table below the main one."""
    import shutil

    community = tmp_path / "community"
    shutil.copytree(published_community, community, symlinks=True)
    assert run_bench(load_settings(tmp_path / "data"), only="pages", community=community, sizes=TINY) == 0
    out = capsys.readouterr().out
    report = json.loads(Path(re.search(r"^written: (.+)$", out, re.MULTILINE)[1]).read_text())
    assert report["community"] == str(community)
    [result] = report["results"]
    assert result["stage"] == f"pages ({community})"
    assert result["rows"] > 0 and result["seconds"] > 0 and result["rows_per_second"] is None
    assert re.match(r"institution=\w+, \d/2 pages within target; slowest cold ", result["note"]), result["note"]
    pages = result["pages"]
    assert [(p["page"], p["role"]) for p in pages] == [("Home", "manager"), ("Trending titles", "manager")]
    for page in pages:
        assert isinstance(page["cold_ms"], int) and page["cold_ms"] > 0, page
        assert len(page["warm_runs_ms"]) == 2 and all(isinstance(w, int) and w > 0 for w in page["warm_runs_ms"])
        assert abs(page["warm_ms"] - sum(page["warm_runs_ms"]) / 2) <= 1, page  # the median of two
        assert page["server_start_ms"] > 0 and page["sign_in_ms"] > 0, page
    # Home's first visit is the sign-in itself.
    assert pages[0]["cold_ms"] == pages[0]["sign_in_ms"]
    lines = out.splitlines()
    start = lines.index(f"pages ({community}): ready in ms (target 2,000 cold, 1,000 warm)")
    assert re.split(r"\s+", lines[start + 1].strip()) == PAGE_COLUMNS
    assert [line.split("  ")[0] for line in lines[start + 3:start + 5]] == ["Home", "Trending titles"]
    cold = lines[start + 4].split()[3]
    assert cold == f"{pages[1]['cold_ms']:,}"


def test_pages_stage_needs_only_pages_and_a_community(tmp_path):
    from analytics.core.errors import InvalidValue

    with pytest.raises(InvalidValue, match="add --only pages"):
        run_bench(load_settings(tmp_path / "data"), only="publish", community=tmp_path)
    with pytest.raises(InvalidValue, match=r"holds no community \(no control.db\); build one with"):
        run_bench(load_settings(tmp_path / "data"), only="pages", community=tmp_path / "nothing")


@pytest.mark.slow
def test_lastcopy_stage_checks_every_row_of_a_generated_list(tmp_path, capsys):
    """`bench --only lastcopy` at scale xs (a 2,000-row list): every row is read and accounted
    for, and the note gives the answer time against the target (no time is asserted)."""
    assert run_bench(load_settings(tmp_path / "data"), scale="xs", only="lastcopy", sizes=TINY) == 0
    out = capsys.readouterr().out
    [result] = json.loads(Path(re.search(r"^written: (.+)$", out, re.MULTILINE)[1]).read_text())["results"]
    assert list(result)[:len(COLUMNS)] == COLUMNS
    assert result["stage"] == "lastcopy (scale xs)" and result["rows"] == 2_000
    assert result["answer_seconds"] > 0 and result["rows_per_second"] > 0
    matched, unmatched = (int(n.replace(",", "")) for n in re.search(r"([\d,]+) matched, ([\d,]+) not",
                                                                     result["note"]).groups())
    assert matched + unmatched == 2_000 and matched > 200 and unmatched > 200
    assert re.match(r"answered in [\d.]+ s \(target < 10 s: read ", result["note"]), result["note"]
    assert "lastcopy (scale xs)" in out.splitlines()[2]
