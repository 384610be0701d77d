"""The command line: documented commands, exit status 2 with a one-line reason on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(data_dir, capsys) -> str:
    """The shared data dir with one institution and its users."""
    path = str(data_dir)
    assert run(capsys, "--data-dir", path, "institution", "add", "UNI1", "--name", "Uni One", "--type",
               "research", "--region", "eu", "--fte", "12000", "--go-live", "2020-01-01", "--country", "DE")[0] == 0
    assert run(capsys, "--data-dir", path, "user", "add", "ada@uni1.example.org", "--institution", "UNI1",
               "--role", "admin", "--name", "Ada")[0] == 0
    assert run(capsys, "--data-dir", path, "user", "add", "lib@uni1.example.org", "--institution", "UNI1",
               "--role", "librarian")[0] == 0
    return path


def test_institution_and_user_lists_as_json(capsys, data_dir):
    code, out, _ = run(capsys, "--data-dir", data_dir, "institution", "list", "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"code": "UNI1", "name": "Uni One", "type": "research", "region": "EU",
                                "country": "DE", "fte_students": 12000, "consortium": None,
                                "go_live_date": "2020-01-01"}]
    code, out, _ = run(capsys, "--data-dir", data_dir, "user", "list", "--institution", "UNI1", "--format", "csv")
    assert out.splitlines() == ["email,name,institution,roles", "ada@uni1.example.org,Ada,UNI1,admin",
                                "lib@uni1.example.org,,UNI1,librarian"]


def test_sharing_set_and_show(capsys, data_dir):
    code, out, _ = run(capsys, "--data-dir", data_dir, "sharing", "UNI1", "--benchmark", "on",
                       "--collection-development", "on", "--actor", "ada@uni1.example.org")
    assert code == 0
    assert "benchmark: on, takes effect on" in out and "(the next monthly benchmark cycle)" in out
    assert "collection_development: on, takes effect at the next community release" in out
    code, out, _ = run(capsys, "--data-dir", data_dir, "sharing", "show", "UNI1", "--format", "json")
    records = {r["service"]: r for r in json.loads(out)}
    assert records["benchmark"]["requested"] == "on" and records["benchmark"]["in_effect"] == "off"
    assert records["collection_development"]["in_effect"] == "on"
    assert records["recommendations"]["requested"] == "off"


@pytest.mark.parametrize("args, reason", [
    (["sharing", "UNI1", "--benchmark", "on", "--actor", "lib@uni1.example.org"], "Only a General System Administrator"),
    (["sharing", "UNI1", "--benchmark", "on"], "--actor USER is required"),
    (["sharing", "UNI1", "--actor", "ada@uni1.example.org"], "name at least one switch"),
    (["sharing", "UNI1", "--benchmark", "on", "--actor", "ghost@example.org"], "no such user"),
    (["institution", "add", "UNI1", "--name", "Again", "--type", "research", "--region", "EU",
      "--go-live", "2020-01-01"], "exists already"),
    (["institution", "add", "UNI2", "--name", "X", "--type", "research", "--region", "EU",
      "--go-live", "yesterday"], "go_live_date"),
    (["user", "add", "not-an-email", "--institution", "UNI1", "--role", "admin"], "is not an e-mail address"),
    (["import", "NOPE", "items", "x.csv"], "No institution with code 'NOPE'"),
    (["import", "UNI1", "items", "/nonexistent/items.csv"], "no such file"),
])
def test_bad_input_exits_2_with_one_line_reason(capsys, data_dir, args, reason):
    code, out, err = run(capsys, "--data-dir", data_dir, *args)
    assert code == 2
    assert reason in err
    assert len(err.strip().splitlines()) == 1


def test_import_reports_json_with_contract_fields(capsys, data_dir, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("Barcode,Title,ISBN,Patron ID\nB1,A,9780679744726,P1\nB2,,0385334575,P2\n")
    code, out, _ = run(capsys, "--data-dir", data_dir, "import", "UNI1", "items", str(path),
                       "--map", "item_id=Barcode", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert {"kind", "read", "kept", "rejected", "dropped_columns", "ignored_columns"} <= set(report)
    assert (report["kind"], report["read"], report["kept"], report["rejected"]) == ("items", 2, 1, 1)
    assert report["dropped_columns"] == [{"column": "Patron ID", "reason": "personal"}]


def test_failed_import_changes_nothing_and_exits_2(capsys, data_dir, tmp_path):
    good = tmp_path / "items.csv"
    good.write_text("item_id,title\nB1,A\n")
    assert run(capsys, "--data-dir", data_dir, "import", "UNI1", "items", str(good))[0] == 0
    stored = Path(data_dir) / "institutions" / "UNI1" / "items.parquet"
    before = stored.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,title,acquired_date\nB1,A,someday\n")
    code, _, err = run(capsys, "--data-dir", data_dir, "import", "UNI1", "items", str(bad))
    assert code == 2 and "bad.csv, row 1 (line 2), column acquired_date" in err
    assert stored.read_bytes() == before


def test_module_entry_point_exit_status(tmp_path):
    done = subprocess.run([sys.executable, "-m", "analytics", "--data-dir", str(tmp_path), "sharing", "show", "X"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: No institution with code 'X'")


def test_demo_command_builds_and_publishes(capsys, tmp_path):
    path = str(tmp_path / "data")
    code, out, _ = run(capsys, "--data-dir", path, "demo", "--institutions", "5", "--months", "12", "--seed", "2")
    assert code == 0
    assert "Demo community in" in out and "First community release: " in out
    release_id = out.strip().splitlines()[-1].split(": ")[1]
    code, out, _ = run(capsys, "--data-dir", path, "release", "show", "--format", "json")
    assert json.loads(out)["release_id"] == release_id
    code, _, err = run(capsys, "--data-dir", path, "demo", "--institutions", "5")
    assert code == 2 and "--reset" in err
