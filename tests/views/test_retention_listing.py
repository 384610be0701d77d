"""My data's list of the institution's own retention commitments."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics.core.access import Principal
from analytics.ingest.run import run_import
from analytics.views.retention import own_commitments

SYSTEM = Principal.system_job()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_own_commitments_listed_with_their_work_and_status(data_dir, tmp_path):
    assert own_commitments(SYSTEM, data_dir, "UNI1") is None
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,isbn\nX-1,Beloved (our copy),9780679744726\n")
    run_import(data_dir, SYSTEM, "UNI1", "items", items)
    run_import(data_dir, SYSTEM, "UNI1", "retention-commitments", FIXTURES / "retention_commitments.csv",
               mapping={"oclc_number": "OCLC", "committed_on": "Commitment Date"})
    listed = own_commitments(SYSTEM, data_dir, "UNI1", today=date(2026, 6, 1))
    rows = listed.select("program", "retain_until", "status", "title", "identifier").rows()
    assert rows == [
        ("HathiTrust Shared Print", None, "current", None, "OCLC 12345678"),
        ("EAST", date(2035, 12, 31), "current", "Beloved (our copy)", "ISBN 9780679744726"),
        ("WEST", date(2015, 12, 31), "ended", "Middlemarch", None),
    ]
