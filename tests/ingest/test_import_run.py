"""One entry point for every import kind: CLI, dry run, suggestions for the import page."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from analytics.cli import main
from analytics.core.access import Principal
from analytics.ingest import run
from analytics.ingest.local import table_path
from analytics.release.manifest import sha256

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSTEM = Principal.system_job()


@pytest.fixture
def data_dir(data_dir):
    """The shared data dir with one institution."""
    data = data_dir
    assert main(["--data-dir", str(data), "institution", "add", "A", "--name", "Alpha", "--type", "research",
                 "--region", "EU", "--fte", "1000", "--go-live", "2020-01-01"]) == 0
    return data


def test_cli_imports_marc_and_counter(data_dir, capsys):
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "import", "A", "marc", str(FIXTURES / "marc" / "evergreen_oss.marc"),
                 "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["kind"], report["read"], report["kept"], report["rejected"]) == ("marc", 42, 41, 1)
    assert pl.read_parquet(table_path(data_dir, "A", "items")).height == 42
    counter = FIXTURES / "counter" / "r51" / "TRJ1_sample_r51.tsv"
    assert main(["--data-dir", str(data_dir), "import", "A", "counter", str(counter), "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)
    stored = pl.read_parquet(table_path(data_dir, "A", "e-usage"))
    assert first["kind"] == "counter" and stored.height == 24
    # The same report again does not double the counts.
    assert main(["--data-dir", str(data_dir), "import", "A", "counter", str(counter)]) == 0
    again = pl.read_parquet(table_path(data_dir, "A", "e-usage"))
    assert again.sort(again.columns).equals(stored.sort(stored.columns))
    assert main(["--data-dir", str(data_dir), "import", "A", "marc", str(FIXTURES / "marc" / "testunimarc.dat")]) == 2
    assert "UNIMARC" in capsys.readouterr().err


def test_dry_run_reports_without_changing_anything(data_dir, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("Barcode,Title,ISBN\nX-1,One,9780679744726\nX-2,,\n")
    assert main(["--data-dir", str(data_dir), "import", "A", "marc",
                 str(FIXTURES / "marc" / "evergreen_oss.marc")]) == 0
    stored = table_path(data_dir, "A", "items")
    before = sha256(stored)
    report = run.dry_run(data_dir, SYSTEM, "A", "items", items, mapping={"item_id": "Barcode"})
    assert (report.read, report.kept, report.rejected) == (2, 1, 1)
    assert sha256(stored) == before


@pytest.mark.parametrize("name, head, kind", [
    ("records.mrc", b"00714cam a2200205 a 4500", "marc"),
    ("export.xml", b"<?xml version='1.0'?><collection xmlns='http://www.loc.gov/MARC21/slim'><record><leader>",
     "marc"),
    ("tr_j1.tsv", b"Report_Name\tJournal Requests (Excluding OA_Gold)\nReport_ID\tTR_J1\n", "counter"),
    ("sushi.json", b'{"Report_Header": {"Report_ID": "TR_J1"}}', "counter"),
    ("loans.csv", b"item_id,loan_date,count\n", "loans"),
    ("survey.csv", b"FSCSKEY,Year,TOTCIR,VISITS\n", "annual-stats"),
    ("alma.csv", b"Barcode,Title,ISBN\n", "items"),
    ("checkouts.csv", b'"Item ID","Checkout Date"\n', "loans"),
    # UVA's item export: its last_checkout_date is a column of items, not a loans file.
    ("uva.csv", b"catalog_id,item_barcode,title,item_created_date,last_checkout_date,lifetime_checkouts\n", "items"),
])
def test_suggest_kind(name, head, kind):
    assert run.suggest_kind(name, head) == kind


def test_suggest_mapping_from_export_names():
    suggestion = run.suggest_mapping("items", ["Barcode", "Title", "ISBN", "Permanent Call Number", "Creation Date",
                                               "Checkouts", "Last Checkout"])
    assert suggestion == {"item_id": "Barcode", "call_number": "Permanent Call Number",
                          "acquired_date": "Creation Date", "lifetime_loans": "Checkouts",
                          "last_loan_date": "Last Checkout"}
