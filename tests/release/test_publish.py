"""The system job: thresholds, work matching, canaries, opt-out, verify, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.release.publish import publish
from analytics.release.manifest import current_release_id, list_release_dirs, read_manifest, release_path, verify_release
from analytics.contribute import disclosure
from tests.community import (Member, build, items_csv, loans_csv, opt_out, publish_exact, share_noise_keys)

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)

FIRE = ("The Fire Next Time", "Baldwin, James", "9780679744726", "PS3545 .B5 1963", "2019-01-05")
ROOM = ("Giovanni's Room", "Baldwin, James", "9780345806567", "PS3545 .G5 1956", "2019-02-01")
PRINT, EBOOK = "9780385334570", "9780441017805"


def member(code: str, rows: list[tuple], loans: list[tuple] = (), **extra) -> Member:
    items = [(f"{code}-{i}",) + row for i, row in enumerate(rows)]
    tables = {"items": items_csv(items)}
    if loans:
        tables["loans"] = loans_csv([(f"{code}-{i}", month, n) for i, month, n in loans])
    return Member(code, tables=tables, **extra)


def at(minutes: int) -> datetime:
    return NOW.replace(minute=minutes)


@pytest.fixture
def small(tmp_path):
    """A, B, C share The Fire Next Time; only A and B hold Giovanni's Room; the print and
    e-book of a third work are linked only through A's record that lists both ISBNs."""
    members = [
        member("A", [FIRE, ROOM, ("Edge", "Andrews, Ilona", f"{PRINT};{EBOOK}", "PS3601 .E3", "2020-01-01")],
               loans=[(0, "2026-03", 2), (0, "2026-04", 1)]),
        member("B", [FIRE, ROOM, ("On the edge", "Andrews, Ilona", EBOOK, "PS3601 .E3", "2026-03-10")],
               loans=[(0, "2026-03", 5), (0, "2026-04", 7)]),
        member("C", [FIRE, ("Edge (print)", "Andrews, Ilona", PRINT, "PS3601 .E3", "2021-05-01")],
               loans=[(0, "2026-03", 1)]),
    ]
    settings, store = build(tmp_path / "data", members)
    yield settings, store
    store.dispose()


def release_table(settings, name: str, release_id: str | None = None) -> pl.DataFrame:
    return pl.read_parquet(release_path(settings.community_dir, release_id) / name)


def test_title_rows_need_three_institutions(small):
    settings, store = small
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    holdings = release_table(settings, "holdings.parquet")
    current = holdings.filter(pl.col("month") == "2026-06").sort("work_key")
    assert current.select("work_key", "institutions_holding").rows() == [
        (f"isbn:{PRINT}", 3), ("isbn:9780679744726", 3)]
    assert "isbn:9780345806567" not in holdings["work_key"].to_list()  # held by 2 only
    assert holdings.filter(pl.col("month") == "2026-03").select("work_key", "institutions_acquiring").rows() == [
        (f"isbn:{PRINT}", 1)]
    loans = release_table(settings, "loans.parquet")
    assert loans.rows() == [("isbn:9780679744726", "EU", "2026-03", 8, 3)]  # April: 2 lenders, withheld
    titles = release_table(settings, "titles.parquet").sort("work_key")
    assert titles["work_key"].to_list() == [f"isbn:{PRINT}", "isbn:9780679744726"]
    assert titles.filter(pl.col("work_key") == f"isbn:{PRINT}")["format"].to_list() == ["print"]
    assert titles.filter(pl.col("work_key") == f"isbn:{PRINT}")["isbns"].to_list() == [[PRINT, EBOOK]]
    fire = titles.filter(pl.col("work_key") == "isbn:9780679744726").row(0, named=True)
    assert (fire["title"], fire["lc_class"], fire["lc_subclass"], fire["subject"]) == (
        "The Fire Next Time", "P", "PS", "American literature")


def test_protected_title_rows_never_show_fewer_than_three(small):
    settings, store = small
    publish(settings, store, as_of=AS_OF, now=NOW)
    holdings = release_table(settings, "holdings.parquet")
    assert "isbn:9780345806567" not in holdings["work_key"].to_list()  # held by 2 only: never, whatever the noise
    assert holdings["institutions_holding"].min() >= 3 and holdings["institutions_holding"].max() <= 5
    for row in release_table(settings, "loans.parquet").iter_rows(named=True):
        assert row["institutions_lending"] >= 3 and row["month"] == "2026-03"  # April's 2 lenders: never
    titles = release_table(settings, "titles.parquet")
    # "Edge", "On the edge", "Edge (print)": no K_TITLE holders agree, so no holder's wording leaves
    edge = titles.filter(pl.col("work_key") == f"isbn:{PRINT}")
    assert edge.is_empty() or edge.select("title", "author").row(0) == (disclosure.TITLE_WITHHELD, "Andrews, Ilona")
    assert verify_release(settings, store) == []


def test_manifest_and_verify(small):
    settings, store = small
    release_id = publish(settings, store, as_of=AS_OF, now=NOW)
    assert current_release_id(settings.community_dir) == release_id
    manifest = read_manifest(release_path(settings.community_dir))
    assert manifest["as_of"] == "2026-06-15"
    assert manifest["contributors"] == {"collection_development": {"EU": 3}, "recommendations": {"EU": 3},
                                        "benchmark": {"EU": 3}}
    assert manifest["privacy"] == {"K_TITLE": 3, "K_BENCH": 5, "DOMINANCE": 0.5, "epsilon": None,
                                   "benchmark": {"method": "protected"}, "disclosure": disclosure.manifest_note()}
    assert manifest["row_counts"]["loans.parquet"] <= 1
    assert set(manifest["sha256"]) == set(manifest["row_counts"])
    assert verify_release(settings, store) == []


def test_verify_catches_tampering_and_leaks(small):
    settings, store = small
    publish_exact(settings, store, as_of=AS_OF, now=NOW)  # so that the loans row is certainly there
    path = release_path(settings.community_dir)
    titles = pl.read_parquet(path / "titles.parquet")
    leaked = titles.with_columns(pl.lit("A-0").alias("title"))  # a local item id of institution A
    leaked.write_parquet(path / "titles.parquet")
    problems = verify_release(settings, store)
    assert any("titles.parquet: checksum does not match" in p for p in problems)
    assert any("titles.parquet: column title contains a local item_id ('A-0')" in p for p in problems)
    (path / "extra.parquet").write_bytes(b"PAR1")
    loans = pl.read_parquet(path / "loans.parquet").with_columns(pl.lit(2).cast(pl.Int64).alias(
        "institutions_lending"), pl.lit("x").alias("branch"))
    loans.write_parquet(path / "loans.parquet")
    problems = verify_release(settings, store)
    assert any(p.startswith("extra.parquet: file is not listed") for p in problems)
    assert any("loans.parquet: columns outside the release schema: branch" in p for p in problems)
    assert any("loans.parquet: 1 row(s) with institutions_lending below K_TITLE=3" in p for p in problems)


def test_verify_reports_a_threshold_the_manifest_lacks_instead_of_assuming_it(small):
    settings, store = small
    publish(settings, store, as_of=AS_OF, now=NOW)
    path = release_path(settings.community_dir)
    manifest = read_manifest(path)
    del manifest["privacy"]["K_BENCH"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert verify_release(settings, store) == ["manifest: privacy parameter K_BENCH missing"]


def test_release_verify_cli_exit_status(small):
    settings, _store = small
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(settings.data_dir)}
    done = subprocess.run([sys.executable, "-m", "analytics", "release", "verify"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "No community release has been published yet" in done.stderr
    publish(settings, _store, as_of=AS_OF, now=NOW)
    done = subprocess.run([sys.executable, "-m", "analytics", "release", "verify"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (release_path(settings.community_dir) / "loans.parquet").write_bytes(b"tampered")
    done = subprocess.run([sys.executable, "-m", "analytics", "release", "verify"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "FAIL loans.parquet: checksum does not match" in done.stderr


CANARY = "QZXCANARY"


def test_no_canary_reaches_any_release_file(tmp_path):
    canary_items = (
        f"item_id,title_id,title,author,isbn,call_number,owner,location,note,patron_id,fund,price,acquired_date\n"
        f"{CANARY}-ITEM-1,{CANARY}-BIB-1,The Fire Next Time,\"Baldwin, James\",9780679744726,PS3545 .B5,"
        f"{CANARY}CODE,{CANARY}-SHELF,{CANARY}-NOTE,{CANARY}-PATRON,{CANARY}-FUND,12.50,2019-01-05\n"
        f"{CANARY}-ITEM-2,{CANARY}-BIB-2,Other member's record,\"X, Y\",9780345806567,PS1 .X,"
        f"{CANARY}-OTHER-MEMBER,{CANARY}-SHELF,{CANARY}-NOTE,{CANARY}-PATRON,{CANARY}-FUND,1,2019-01-05\n"
    )
    canary_loans = (f"item_id,loan_date,count,patron_id,patron_email,fine_amount\n"
                    f"{CANARY}-ITEM-1,2026-03,4,{CANARY}-P,{CANARY}@example.org,{CANARY}\n")
    canary_lists = (f"list_id,course_code,term,title,isbn,enrolment,citation_type,instructor_name\n"
                    f"{CANARY}-LIST,{CANARY}-COURSE,2026-SPRING,The Fire Next Time,9780679744726,30,required,"
                    f"{CANARY}-TEACHER\n")
    peers = [member(code, [FIRE, ROOM], loans=[(0, "2026-03", 3)]) for code in ("P1", "P2", "P3")]
    for peer in peers:
        peer.tables["reading-lists"] = ("list_id,term,title,isbn\n"
                                        f"{peer.code}-L,2026-SPRING,The Fire Next Time,9780679744726\n")
    # Retention commitments: the canary's through the CSV route (with its code, a local id and a
    # note in extra columns), the peers' too, and one more holder's through MARC 583 whose $5
    # names the canary (its own symbol) or another institution (skipped).
    canary_commitments = (f"isbn,program,committed_on,retain_until,institution,local_id,note\n"
                          f"9780679744726,EAST,2016-06-30,2040-12-31,{CANARY}CODE,{CANARY}-BIB-1,{CANARY}-NOTE\n")
    for peer in peers:
        peer.tables["retention-commitments"] = ("isbn,program,retain_until\n"
                                                "9780679744726,EAST,2035-12-31\n")
    canary = Member(f"{CANARY}CODE", name=f"{CANARY} University", consortium=f"{CANARY}-NZ",
                    tables={"items": canary_items, "loans": canary_loans, "reading-lists": canary_lists,
                            "retention-commitments": canary_commitments})
    settings, store = build(tmp_path / "data", peers + [canary, Member("P4")])
    from pymarc import Field, Indicators, Record, Subfield

    from analytics.ingest.marc import import_marc

    record = Record(force_utf8=True)
    record.add_field(Field(tag="001", data=f"{CANARY}-P4-BIB"))
    record.add_field(Field(tag="020", indicators=Indicators(" ", " "), subfields=[Subfield("a", "9780679744726")]))
    record.add_field(Field(tag="245", indicators=Indicators("1", "0"),
                           subfields=[Subfield("a", "The Fire Next Time")]))
    for symbol in (f"{CANARY}-P4-SYMBOL", f"{CANARY}-OTHER"):
        record.add_field(Field(tag="583", indicators=Indicators("1", " "), subfields=[
            Subfield("a", "committed to retain"), Subfield("c", "20160630"), Subfield("d", "20351231"),
            Subfield("f", "EAST"), Subfield("5", symbol)]))
    marc_file = tmp_path / "p4.mrc"
    marc_file.write_bytes(record.as_marc())
    from analytics.core.access import Principal

    report = import_marc(settings.data_dir, Principal.system_job(), "P4", marc_file, symbols=(f"{CANARY}-P4-SYMBOL",))
    assert report.commitments == 1
    publish(settings, store, as_of=AS_OF, now=NOW)
    retention = release_table(settings, "retention.parquet")  # 5 committing institutions, perturbed
    assert retention["work_key"].to_list() == ["isbn:9780679744726"]
    assert retention["programs"].to_list() == [["EAST"]] and retention["retained_until"].to_list() == [2035]
    release = release_path(settings.community_dir)
    files = [p for p in release.rglob("*") if p.is_file()]
    assert len(files) >= 12
    for file in files:
        assert CANARY.encode() not in file.read_bytes().upper(), file.name
    loans = release_table(settings, "loans.parquet")  # 3 + 3 + 3 + 4 loans by 4 institutions, protected
    assert [(w, m) for w, _r, m, _l, _n in loans.rows()] in ([], [("isbn:9780679744726", "2026-03")])
    assert all(9 <= total <= 17 and 3 <= lenders <= 6 for _w, _r, _m, total, lenders in loans.rows())
    assert verify_release(settings, store) == []
    exact = publish_exact(settings, store, as_of=AS_OF, now=NOW.replace(minute=5))
    assert release_table(settings, "loans.parquet", exact).rows() == [
        ("isbn:9780679744726", "EU", "2026-03", 13, 4)]  # the canary's loans do count
    store.dispose()


def test_backdated_publish_never_includes_an_institution_that_has_opted_out(tmp_path):
    """Opt-out is a present fact: --as-of an earlier date, when X still shared, leaves X out."""
    members = [member(c, [FIRE, ROOM], loans=[(0, "2026-03", 2)]) for c in "ABC"]
    members.append(member("X", [FIRE, ("Only X", "Solo, Han", "9780441017805", "PS1 .S6", "2020-01-01")],
                          loans=[(0, "2026-03", 50)]))
    settings, store = build(tmp_path / "data", members)
    publish(settings, store, as_of=AS_OF, now=at(1))
    for service in ("collection_development", "recommendations", "benchmark"):
        opt_out(store, "X", service, now=at(2))
    backdated = publish(settings, store, as_of=date(2026, 5, 1), now=datetime(2026, 7, 2, tzinfo=timezone.utc))
    manifest = read_manifest(release_path(settings.community_dir, backdated))
    assert manifest["contributors"]["collection_development"] == {"EU": 3}
    assert manifest["contributors"]["benchmark"] == {"EU": 3}
    assert list_release_dirs(settings.community_dir) == [backdated]  # the release with X is gone too
    assert verify_release(settings, store) == []
    store.dispose()


def test_opt_out_leaves_only_releases_computed_without_the_institution(tmp_path):
    def community(with_x: bool) -> list[Member]:
        members = [member(c, [FIRE, ROOM], loans=[(0, "2026-03", 2), (1, "2026-03", 1)]) for c in "ABC"]
        members[0].tables["items"] = items_csv([("A-0",) + FIRE, ("A-1",) + ROOM])
        if with_x:
            members.append(member("X", [FIRE, ROOM, ("Edge", "Andrews, Ilona", f"{PRINT};{EBOOK}", "PS1 .E", "2020-01-01")],
                                  loans=[(0, "2026-03", 9), (1, "2026-03", 4)]))
        return members

    settings, store = build(tmp_path / "with" / "data", community(with_x=True))
    first = publish(settings, store, as_of=AS_OF, now=at(1))
    second = publish(settings, store, as_of=AS_OF, now=at(2))
    assert list_release_dirs(settings.community_dir) == [first, second]
    lending = release_table(settings, "loans.parquet", first)["institutions_lending"].to_list()
    assert len(lending) <= 2 and all(3 <= n <= 6 for n in lending)  # 4 lenders each, perturbed
    for service in ("collection_development", "recommendations", "benchmark"):
        opt_out(store, "X", service, now=at(3))
    # Benchmark opt-out takes effect on the first day of the next month: publish then.
    july = datetime(2026, 7, 1, 6, 0, tzinfo=timezone.utc)
    third = publish(settings, store, as_of=july.date(), now=july)
    assert list_release_dirs(settings.community_dir) == [third]  # the two releases with X are gone

    reference_settings, reference_store = build(tmp_path / "without" / "data", community(with_x=False))
    share_noise_keys(store, reference_store, ["A", "B", "C"])  # the same protective noise, so files can match
    reference = publish(reference_settings, reference_store, as_of=july.date(), now=july)
    for name in read_manifest(release_path(settings.community_dir))["row_counts"]:
        assert_frame_equal(release_table(settings, name, third), release_table(reference_settings, name, reference))
    ours = read_manifest(release_path(settings.community_dir, third))
    theirs = read_manifest(release_path(reference_settings.community_dir, reference))
    assert ours["contributors"] == theirs["contributors"] and ours["privacy"] == theirs["privacy"]
    assert ours["sha256"] == theirs["sha256"]
    live = {p.name for p in settings.contributions_dir.iterdir() if not p.name.startswith(".")}
    assert len(live) == 3 * 3  # A, B, C for three services; X's folders deleted
    audit = [a.action for a in store.audit_history(store.user("admin@x.example.org").principal(), "X")]
    assert "contribution.collection_development.removed" in audit
    assert verify_release(settings, store) == []
    store.dispose()
    reference_store.dispose()


def test_keeps_the_last_three_releases(small):
    settings, store = small
    ids = [publish(settings, store, as_of=AS_OF, now=at(m)) for m in range(1, 6)]
    assert list_release_dirs(settings.community_dir) == ids[-3:]
    assert current_release_id(settings.community_dir) == ids[-1]


def _publish_process(settings, pause: str) -> subprocess.Popen:
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(settings.data_dir), "ANALYTICS_PUBLISH_PAUSE": pause}
    return subprocess.Popen([sys.executable, "-m", "analytics", "publish", "--as-of", AS_OF.isoformat()],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("pause", ["collection_development:loans", "manifest", "before-switch"])
def test_publish_killed_midway_leaves_previous_release_current(small, pause):
    settings, store = small
    previous = publish(settings, store, as_of=AS_OF, now=NOW)
    process = _publish_process(settings, pause)
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if f"paused at {pause}" in line:
            break
        assert time.monotonic() < deadline, "publish never reached the pause point"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert current_release_id(settings.community_dir) == previous
    assert verify_release(settings, store) == []
    leftovers = list((settings.community_dir / "releases").glob(".building-*"))
    if pause == "before-switch":
        assert not leftovers and len(list_release_dirs(settings.community_dir)) == 2
    else:
        assert leftovers  # half-written, hidden from readers
    newest = publish(settings, store, as_of=AS_OF)
    assert current_release_id(settings.community_dir) == newest
    assert not list((settings.community_dir / "releases").glob(".building-*"))
    assert verify_release(settings, store) == []


def test_as_of_excludes_later_data_and_switches(small):
    settings, store = small
    publish_exact(settings, store, as_of=date(2026, 3, 31), now=NOW)
    loans = release_table(settings, "loans.parquet")
    assert loans["month"].to_list() == ["2026-03"]
    holdings = release_table(settings, "holdings.parquet")
    # B's e-book arrived 2026-03-10, so on 2026-03-31 the print/e work is held by three.
    assert holdings.filter(pl.col("month") == "2026-03").select("work_key", "institutions_holding").sort(
        "work_key").rows() == [(f"isbn:{PRINT}", 3), ("isbn:9780679744726", 3)]
    earlier = publish_exact(settings, store, as_of=date(2026, 2, 28), now=at(4))
    february = release_table(settings, "holdings.parquet", earlier)
    assert february["work_key"].to_list() == ["isbn:9780679744726"]  # the e-book was not yet acquired
    # Before anyone shared (JOINED is 2024-01-10), a release has no contributors at all.
    empty = publish(settings, store, as_of=date(2023, 12, 31), now=at(5))
    manifest = read_manifest(release_path(settings.community_dir, empty))
    assert manifest["contributors"] == {"collection_development": {}, "recommendations": {}, "benchmark": {}}
    assert all(n == 0 for n in manifest["row_counts"].values())
    assert json.dumps(manifest)  # serializable


def test_one_publish_at_a_time(small):
    """A second publish while one runs exits 2 and changes nothing; --wait queues behind it.
    Exactly one release per successful run; nothing is left half-written; verify passes."""
    settings, store = small
    first = _publish_process(settings, "collection_development:loans")
    deadline = time.monotonic() + 120
    for line in first.stderr:
        if "paused at collection_development:loans" in line:
            break
        assert time.monotonic() < deadline, "publish never reached the pause point"
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(settings.data_dir)}
    second = subprocess.run([sys.executable, "-m", "analytics", "publish", "--as-of", AS_OF.isoformat()],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    assert "another publish is running (publish, pid" in second.stderr and second.stdout == ""
    waiting = subprocess.Popen([sys.executable, "-m", "analytics", "publish", "--wait", "--as-of",
                                AS_OF.isoformat()], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert waiting.poll() is None  # queued behind the lock
    assert list_release_dirs(settings.community_dir) == []
    first.send_signal(signal.SIGKILL)  # the lock goes with the process
    first.wait(timeout=30)
    out, err = waiting.communicate(timeout=180)
    assert waiting.returncode == 0, err
    assert list_release_dirs(settings.community_dir) == [out.strip()]
    assert current_release_id(settings.community_dir) == out.strip()
    assert not list((settings.community_dir / "releases").glob(".building-*"))
    assert verify_release(settings, store) == []


def test_release_use_rolls_back_to_a_retained_release(small, capsys):
    from analytics.cli import main

    settings, store = small
    older = publish(settings, store, as_of=AS_OF, now=NOW)
    newer = publish(settings, store, as_of=AS_OF, now=at(5))
    assert current_release_id(settings.community_dir) == newer
    data = str(settings.data_dir)
    assert main(["--data-dir", data, "release", "use", older]) == 0
    assert current_release_id(settings.community_dir) == older
    assert f"release {older} is current (was {newer})" in capsys.readouterr().out
    assert main(["--data-dir", data, "release", "use", "20990101T000000Z-000000"]) == 2
    assert "no retained release" in capsys.readouterr().err
    # A tampered release is refused: verification runs before the switch.
    victim = release_path(settings.community_dir, newer) / "loans.parquet"
    victim.write_bytes(victim.read_bytes() + b"x")
    assert main(["--data-dir", data, "release", "use", newer]) == 2
    assert "does not pass verification" in capsys.readouterr().err
    assert current_release_id(settings.community_dir) == older


ORWELL = ("1984", "Orwell, George", "9780451524935", "PR6029 .R8 N5", "2019-01-05")


def test_an_ordinary_title_equal_to_a_members_item_id_does_not_stop_the_release(tmp_path):
    """Institution A numbers an item "1984"; three catalogues hold Orwell's 1984. The agreed title
    "1984" is released, and verify passes: one member's ids must not block the community."""
    members = [
        Member("A", tables={"items": items_csv([("1984",) + ORWELL, ("A-1",) + FIRE])}),
        member("B", [ORWELL, FIRE]),
        member("C", [ORWELL, FIRE]),
    ]
    settings, store = build(tmp_path / "data", members)
    try:
        publish(settings, store, as_of=AS_OF, now=NOW)
        titles = release_table(settings, "titles.parquet")
        assert "1984" in titles["title"].to_list()
        assert verify_release(settings, store) == []
        # ... while a local id that is nobody's title is still a leak, in any column
        path = release_path(settings.community_dir)
        leaked = titles.with_columns(pl.when(pl.col("title") == "1984").then(pl.lit("A-1")).otherwise(pl.col("title"))
                                     .alias("title"), pl.lit("1984").alias("subject"))
        leaked.write_parquet(path / "titles.parquet")
        problems = verify_release(settings, store)
        assert any("column title contains a local item_id ('A-1')" in p for p in problems)
        assert any("column subject contains a local item_id ('1984')" in p for p in problems)  # not free text
    finally:
        store.dispose()
