"""Bounded uploads: sizes are checked while reading, so a decompression bomb is refused in
seconds with little memory and nothing changes; the limits are configurable."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.ingest.reader import InputError, read_table
from analytics.ingest.local import table_path
from analytics.control.store import Store

ROOT = Path(__file__).resolve().parents[2]

CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                 'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                 'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/'
                 'xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
                 'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
                 'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
            '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
            '<sheet name="items" sheetId="1" r:id="rId1"/></sheets></workbook>')
WB_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
           'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
           'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')


def workbook(path: Path, rows: int, cell: str = "x") -> Path:
    """A minimal .xlsx whose one sheet has a header and `rows` rows of inline strings, deflated."""
    head = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
            '2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>item_id</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>title</t></is></c></row>')
    row = f'<row><c t="inlineStr"><is><t>{cell}</t></is></c><c t="inlineStr"><is><t>{cell}</t></is></c></row>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WB_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            block = (row * 10_000).encode()
            for _ in range(rows // 10_000):
                sheet.write(block)
            sheet.write((row * (rows % 10_000)).encode())
            sheet.write(b"</sheetData></worksheet>")
    return path


# The CLI import in a child process that reports its own peak memory (VmHWM, KiB) at exit.
MEASURED = """
import sys
from analytics.cli import main
code = main(["import", sys.argv[1], "items", sys.argv[2]])
# VmHWM: this process image's peak (ru_maxrss would carry over the forking pytest's size)
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("PEAK_KB", peak, file=sys.stderr)
sys.exit(code)
"""


def test_small_workbook_is_read(tmp_path):
    table = read_table(workbook(tmp_path / "ok.xlsx", 3, "A-1"))
    assert table.frame.height == 3 and table.frame.columns == ["item_id", "title"]


def test_workbook_bomb_is_refused_in_seconds_with_little_memory_and_nothing_changes(demo_community, tmp_path):
    bomb = workbook(tmp_path / "new-acquisitions.xlsx", 4_000_000)
    assert bomb.stat().st_size < 3_000_000  # a couple of MB on disk, hundreds of MB unpacked
    data_dir = tmp_path / "data"
    shutil.copytree(demo_community, data_dir)
    store = Store(load_settings(data_dir).database_url)
    code = store.list_institutions(Principal.system_job())[0].code
    store.dispose()
    items = table_path(data_dir, code, "items")
    before = hashlib.sha256(items.read_bytes()).hexdigest()
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", MEASURED, code, str(bomb)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    peak_mb = int(done.stderr.rsplit("PEAK_KB ", 1)[1].split()[0]) / 1024
    print(f"\nworkbook bomb refused in {seconds:.1f} s, peak {peak_mb:.0f} MB")
    assert done.returncode != 0
    assert "new-acquisitions.xlsx: xl/worksheets/sheet1.xml has more rows than Excel's limit" in done.stderr + done.stdout
    assert seconds < 30, seconds
    assert peak_mb < 500, peak_mb
    assert hashlib.sha256(items.read_bytes()).hexdigest() == before  # nothing changed


def test_inflated_size_limit_is_configurable(tmp_path, monkeypatch):
    path = workbook(tmp_path / "wide.xlsx", 20_000, "y" * 100)  # about 4.5 MB unpacked
    assert read_table(path).frame.height == 20_000
    monkeypatch.setenv("IMPORT_MAX_INFLATED_MB", "1")
    with pytest.raises(InputError, match=r"wide.xlsx: the workbook expands to more than 1 MB when unpacked"):
        read_table(path)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "xlsx"])
def test_row_limit_is_configurable(tmp_path, monkeypatch, suffix):
    frame = pl.DataFrame({"item_id": [f"I-{i}" for i in range(10)], "title": ["t"] * 10})
    path = tmp_path / f"ten.{suffix}"
    if suffix == "csv":
        frame.write_csv(path)
    elif suffix == "parquet":
        frame.write_parquet(path)
    else:
        workbook(path, 10)
    assert read_table(path).frame.height == 10
    monkeypatch.setenv("IMPORT_MAX_ROWS", "9")
    with pytest.raises(InputError, match="ten"):
        read_table(path)
    monkeypatch.setenv("IMPORT_MAX_ROWS", "lots")
    with pytest.raises(InputError, match="IMPORT_MAX_ROWS must be a positive whole number"):
        read_table(path)
