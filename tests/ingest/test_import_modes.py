"""Import must not lose data: replace vs add/update by id, the previous version kept and
undoable (API and CLI), and a warning when loans refer to items that are gone."""

from __future__ import annotations

import polars as pl
import pytest

from analytics.cli import main
from analytics.core.access import Principal
from analytics.ingest.reader import InputError
from analytics.ingest.tabular import import_file, undo_import
from analytics.ingest.local import table_path
from tests.community import Member, build, items_csv, loans_csv

SYSTEM = Principal.system_job()
BOOKS = [(f"A-{i}", f"Book {i}", "Author, An", "", "PS3545 .B5", "2019-01-05") for i in range(13)]


@pytest.fixture
def community(tmp_path):
    loans = loans_csv([("A-0", "2026-03", 2), ("A-12", "2026-04", 1)])
    settings, store = build(tmp_path / "data", [Member("A", tables={"items": items_csv(BOOKS), "loans": loans})])
    yield settings
    store.dispose()


def _file(tmp_path, rows) -> str:
    path = tmp_path / "new.csv"
    path.write_text(items_csv(rows))
    return str(path)


def test_update_adds_and_updates_by_item_id(community, tmp_path):
    new = [("A-1", "Book 1, second edition", "Author, An", "", "PS3545 .B5", "2019-01-05"),
           ("A-2", "Book 2 (rebound)", "Author, An", "", "PS3545 .B5", "2019-01-05")] + \
          [(f"N-{i}", f"New {i}", "Writer, A", "", "QA76 .N4", "2026-11-01") for i in range(3)]
    report = import_file(community.data_dir, SYSTEM, "A", "items", _file(tmp_path, new), mode="update")
    assert (report.rows_before, report.added, report.updated, report.rows_after) == (13, 3, 2, 16)
    stored = pl.read_parquet(table_path(community.data_dir, "A", "items"))
    assert stored.height == 16
    assert stored.filter(pl.col("item_id") == "A-1")["title"].item() == "Book 1, second edition"


def test_replace_keeps_the_previous_version_warns_about_loans_and_undoes(community, tmp_path, capsys):
    items = table_path(community.data_dir, "A", "items")
    before = items.read_bytes()
    report = import_file(community.data_dir, SYSTEM, "A", "items", _file(tmp_path, BOOKS[:5]))
    assert (report.mode, report.rows_before, report.rows_after) == ("replace", 13, 5)
    assert any("1 loan record(s) refer to 1 item(s) that are not in the items table" in w for w in report.warnings)
    result = undo_import(community.data_dir, SYSTEM, "A", "items")
    assert result == {"kind": "items", "rows_before_undo": 5, "rows_after_undo": 13}
    assert items.read_bytes() == before
    assert undo_import(community.data_dir, SYSTEM, "A", "items")["rows_after_undo"] == 5  # undo again: redo


def test_cli_undo_and_refusals(community, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(community.data_dir))
    assert main(["import", "A", "items", _file(tmp_path, BOOKS[:5])]) == 0
    assert "replaced 13 rows by 5" in capsys.readouterr().out
    assert main(["undo-import", "A", "items"]) == 0
    assert "back to the version before the last import (5 rows -> 13)" in capsys.readouterr().out
    with pytest.raises(InputError, match="add/update by id is for items"):
        import_file(community.data_dir, SYSTEM, "A", "loans", _file(tmp_path, BOOKS[:1]), mode="update")
    with pytest.raises(InputError, match="no earlier version"):
        undo_import(community.data_dir, SYSTEM, "A", "reading-lists")
