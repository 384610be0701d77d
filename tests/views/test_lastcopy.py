"""The batch last-copy check on a constructed community where the right answer is known by hand."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone

import polars as pl
import pytest

from analytics.core.access import Principal
from analytics.ingest.local import institution_dir
from analytics.ingest.reader import InputError
from analytics.release.handle import open_release
from analytics.views import lastcopy
from analytics.views.holders import band
from tests.community import Member, build, publish_exact

SYSTEM_JOB = Principal.system_job()
AS_OF = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
PRINT, EBOOK = "9780385334570", "9780441017805"
OLD, RARE = "9781893007161", "9780393337129"
ISSN, OCLC = "0378-5955", "12345"
ITEMS_HEADER = "item_id,title,author,isbn,issn,oclc_number,call_number,acquired_date,pub_year\n"
WIDE = [
    ("Old Idle Book", "Singer, Peter", OLD, "", ""),
    ("Unnumbered Work", "Doe, Jane", "", "", ""),
    ("Hearing Research", "", "", ISSN, ""),
    ("Catalogued Elsewhere", "Roe, Rick", "", "", f"(OCoLC)ocm000{OCLC}"),
]
PAIR = ("Pair Work", "King, Richard", f"{PRINT};{EBOOK}", "", "")
RARE_BOOK = ("Rare Book", "Nobody", RARE, "", "")
CODES = "ABCDEFGH"


def items(code: str, works) -> str:
    return ITEMS_HEADER + "".join(f'{code}-{i},"{t}","{a}",{isbn},{issn},{oclc},QA1,2010-01-01,1990\n'
                                  for i, (t, a, isbn, issn, oclc) in enumerate(works))


@pytest.fixture(scope="module")
def community(tmp_path_factory):
    """Eight members hold the WIDE works (widely held: the rule asks for 4 of 8), A, B and C the pair
    (3: released, but scarce), A alone the rare book (not released at all)."""
    tmp_path = tmp_path_factory.mktemp("lastcopy")
    members = [Member(code, tables={"items": items(code, WIDE + [PAIR] * (code in "ABC") + [RARE_BOOK] * (code == "A"))})
               for code in CODES]
    settings, store = build(tmp_path / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    yield settings, store, open_release(settings.community_dir)
    store.dispose()


def list_file(tmp_path, text: str, name: str = "weeding.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def run(settings, release, path, **kwargs):
    return lastcopy.run(SYSTEM_JOB, release, settings.data_dir, "A", "EU", path, **kwargs)


WEEDING = (
    "Barcode,ISBN,Title,Author,Note\n"
    "b1,978-0-385-33457-0,Pair (print),,keep?\n"      # print ISBN, hyphens
    "b2,0441017800,Pair (e-book),,\n"                 # ISBN-10 of the e-book: the same work
    "b3,9780385334571,Bad checksum,,\n"                # wrong check digit
    "b4,,,,only a note\n"                              # nothing to match on
    f"b5,{RARE},Rare Book,Nobody,\n"                   # held only by A
    "b6,,The unnumbered work : a subtitle,\"Doe, Jane, 1950-\",\n"   # title and author only
    "b7,9780000000002,Not Anywhere,Someone,\n"        # valid ISBN nobody contributed
)


def test_matching_by_every_identifier_and_at_work_level(community, tmp_path):
    settings, _store, release = community
    result = run(settings, release, list_file(tmp_path, WEEDING))
    rows = result.rows
    assert result.mapping == {"isbn": "ISBN", "title": "Title", "author": "Author"}
    assert rows["Match"].to_list() == ["ISBN", "ISBN", None, None, None, "title and author", None]
    assert rows["Matched work"].to_list() == ["Pair Work", "Pair Work", None, None, None, "Unnumbered Work", None]
    other = list_file(tmp_path, "ISSN;OCLC no.\n03785955;\n;ocn0012345\n;(OCoLC)99\n", "serials.csv")
    serials = run(settings, release, other)
    assert serials.mapping == {"issn": "ISSN", "oclc_number": "OCLC no."}
    assert serials.rows["Match"].to_list() == ["ISSN", "OCLC number", None]
    assert serials.rows["Matched work"].to_list() == ["Hearing Research", "Catalogued Elsewhere", None]


def test_every_row_is_accounted_for_with_a_reason(community, tmp_path):
    settings, _store, release = community
    result = run(settings, release, list_file(tmp_path, WEEDING))
    assert result.summary["read"] == 7 == result.rows.height
    assert result.summary["matched"] + result.summary["unmatched"] == result.summary["read"]
    # b5 and b7 name works the community data does not have (fewer than K_TITLE holders, or none):
    # last-copy protection keeps them; only b3 (invalid ISBN) and b4 (nothing) cannot be judged.
    assert result.summary["verdicts"] == {"keep: you committed": 0, "safe to withdraw": 1, "keep: scarce": 4,
                                          "not matched": 2}
    assert result.rows["Verdict"].to_list()[2:5] + result.rows["Verdict"].to_list()[6:] == [
        "not matched", "not matched", "keep: scarce", "keep: scarce"]
    assert result.unmatched["Row"].to_list() == ["row 3 (line 4)", "row 4 (line 5)", "row 5 (line 6)",
                                                 "row 7 (line 8)"]
    reasons = result.unmatched["Reason"].to_list()
    assert "invalid ISBN" in reasons[0] and "no identifier" in reasons[1]
    # The rare book is not released (held by 1): the reason says what that means, without telling 1 from 0.
    assert reasons[2] == reasons[3]
    assert "fewer than 3 institutions of Europe (or none)" in reasons[2]
    assert result.unmatched["Barcode"].to_list() == ["b3", "b4", "b5", "b7"]


def test_original_columns_come_first_unchanged(community, tmp_path):
    settings, _store, release = community
    # Duplicate and blank header names, an empty column, ISBNs with leading zeros, a column named like an added one.
    text = ("ISBN,,ISBN,Empty,Verdict\n"
            "0441017800,x,0001,,mine\n"
            "0385334575,,,,\n")
    result = run(settings, release, list_file(tmp_path, text))
    original = ["ISBN", "", "ISBN_duplicated_0", "Empty", "Verdict"]
    assert result.rows.columns[:5] == original
    assert result.rows.columns[5:] == ["Matched work", "Match", "Holders in region", "Retained in region",
                                       "Your commitment", "Verdict (last-copy check)", "Reason"]
    assert result.rows.select(original).rows() == [("0441017800", "x", "0001", None, "mine"),
                                                   ("0385334575", None, None, None, None)]
    assert all(dtype == pl.String for dtype in result.rows.select(original).dtypes)
    back = pl.read_csv(io.BytesIO(lastcopy.csv_bytes(result)), infer_schema=False)
    assert back["ISBN"].to_list() == ["0441017800", "0385334575"]
    assert back.columns[:5] == original


def test_verdicts_under_the_rule_with_commitments(community, tmp_path):
    settings, _store, release = community
    k = release.manifest["privacy"]["K_TITLE"]
    result = run(settings, release, list_file(tmp_path, WEEDING))
    assert result.summary["many_holders"] == 4  # half of the 8 sharing institutions
    assert result.rows["Holders in region"].to_list() == [f"{k}–5", f"{k}–5", None, None, f"fewer than {k}", "6–9",
                                                          f"fewer than {k}"]
    # This release carries the retention table (empty): "fewer than K (or none)". A release made before
    # retention commitments has no file (opening it gives an empty table): "not in this release".
    assert result.rows["Retained in region"][0] == f"fewer than {k} (or none)"
    path = release.path / "retention.parquet"
    hidden = path.with_suffix(".hidden")
    path.rename(hidden)
    try:
        assert run(settings, release, list_file(tmp_path, WEEDING)).rows["Retained in region"][0] == \
            "not in this release"
    finally:
        hidden.rename(path)
    assert result.rows["Verdict"].to_list() == ["keep: scarce", "keep: scarce", "not matched", "not matched",
                                                "keep: scarce", "safe to withdraw", "keep: scarce"]
    # A hand-built retention table: K institutions retain the pair; A itself committed to the
    # unnumbered work (found by title and author) and, until 2021, to the old book.
    release.con.execute("DROP TABLE retention")
    release.con.execute("CREATE TABLE retention AS SELECT * FROM (VALUES "
                        f"('isbn:{PRINT}', 'EU', {k}, ['WEST', 'EAST'], 2035), "
                        f"('isbn:{PRINT}', 'US', 50, ['WEST'], NULL)) "
                        "t(work_key, region, institutions_committed, programs, retained_until)")
    commitments = institution_dir(settings.data_dir, "A") / "retention_commitments.parquet"
    pl.DataFrame({"isbn": [None, OLD], "issn": [None, None], "oclc_number": [None, None],
                  "title": ["Unnumbered work", "Old"], "author": ["Jane Doe", None], "program": ["WEST", "WEST"],
                  "committed_on": [date(2020, 1, 1)] * 2, "retain_until": [None, date(2021, 1, 1)],
                  "work_key": [None, f"isbn:{OLD}"], "match_method": ["fingerprint", "isbn"],
                  "source": ["csv"] * 2},
                 schema_overrides={"isbn": pl.String, "issn": pl.String, "oclc_number": pl.String,
                                   "author": pl.String, "retain_until": pl.Date, "work_key": pl.String}
                 ).write_parquet(commitments)
    try:
        result = run(settings, release, list_file(tmp_path, WEEDING + f"b8,{OLD},,,\n"))
    finally:
        release.con.execute("DROP TABLE retention")
        release.con.execute("CREATE TABLE retention AS SELECT * FROM read_parquet($f)", {"f": str(path)})
        commitments.unlink()
    assert result.rows["Verdict"].to_list() == ["safe to withdraw", "safe to withdraw", "not matched",
                                                "not matched", "keep: scarce", "keep: you committed", "keep: scarce",
                                                "safe to withdraw"]  # the old book's commitment ran out in 2021
    assert result.rows["Retained in region"].to_list()[:2] == [f"{k}–5 (WEST, EAST; until 2035)"] * 2
    assert result.rows["Retained in region"][5] == f"fewer than {k} (or none)"
    assert result.rows["Your commitment"].to_list() == ["no", "no", None, None, None, "yes (WEST; indefinitely)",
                                                        None, "no"]
    assert result.rows["Reason"][0] == f"retained by {k}–5 institutions in Europe"


def test_own_commitment_to_a_work_the_community_lacks_keeps_it(community, tmp_path):
    """A work only you hold (so not in the community data) that you committed to retain: the row is
    still unmatched (every row accounted for), but its verdict is "keep: you committed", not "scarce"."""
    settings, _store, release = community
    only_ours = "9780000000002"  # a valid ISBN-13 no institution contributed
    commitments = institution_dir(settings.data_dir, "A") / "retention_commitments.parquet"
    pl.DataFrame({"isbn": [only_ours], "issn": [None], "oclc_number": ["777"], "title": ["Local history"],
                  "author": ["Roe, Ann"], "program": ["EAST"], "committed_on": [date(2020, 1, 1)],
                  "retain_until": [date(2099, 1, 1)], "work_key": [f"isbn:{only_ours}"],
                  "match_method": ["isbn"], "source": ["csv"]},
                 schema_overrides={"issn": pl.String, "retain_until": pl.Date}).write_parquet(commitments)
    try:
        result = run(settings, release, list_file(
            tmp_path, "Barcode,ISBN,OCLC,Title,Author\n"
                      "b1,978-0-00-000000-2,,Local history,\n"   # by ISBN
                      "b2,,(OCoLC)777,,\n"                        # by OCLC number
                      "b3,9780393337129,,Rare,\n"))               # not committed: scarce as before
    finally:
        commitments.unlink()
    assert result.rows["Verdict"].to_list() == ["keep: you committed", "keep: you committed", "keep: scarce"]
    assert result.rows["Your commitment"].to_list()[:2] == ["yes (EAST; until 2099-01-01)"] * 2
    assert result.rows["Reason"][0] == ("you committed to retain it (EAST; until 2099-01-01); not in the community "
                                        "data of this release")
    assert result.summary["unmatched"] == 3 and result.summary["matched"] + result.summary["unmatched"] == 3
    assert result.unmatched["Reason"].to_list()[0].startswith("you committed to retain it")


def test_bands_never_tell_below_k():
    assert [band(n, 3) for n in (None, 0, 1, 2, 3, 5, 6, 9, 10, 500)] == [
        "fewer than 3"] * 4 + ["3–5", "3–5", "6–9", "6–9", "10 or more", "10 or more"]
    assert [band(n, 7) for n in (6, 7, 9, 10)] == ["fewer than 7", "7–9", "7–9", "10 or more"]
    # The expression the views use (no Python call from Polars' threads) says the same for every K.
    from analytics.views.holders import band_expr

    counts = pl.DataFrame({"n": [None, *range(30)]}, schema={"n": pl.Int64})
    for k in (1, 2, 3, 5, 6, 7, 9, 10, 11, 15):
        assert counts.select(band_expr(pl.col("n"), k).alias("b"))["b"].to_list() == [band(n, k) for n in counts["n"]], k


def test_mapping_detection_and_override(community, tmp_path):
    settings, _store, release = community
    assert lastcopy.detect_columns(["Barcode", "ISBN13", "Main Author", "Title Proper", "OCoLC"]) == {
        "isbn": "ISBN13", "oclc_number": "OCoLC", "title": "Title Proper", "author": "Main Author"}
    path = list_file(tmp_path, "Numbers,Shelf\n0441017800,x\n")
    with pytest.raises(InputError, match="no identifier column found"):
        run(settings, release, path)
    result = run(settings, release, path, overrides={"isbn": "Numbers"})
    assert result.rows["Matched work"].to_list() == ["Pair Work"]
    assert run(settings, release, path, overrides={"isbn": "Numbers", "title": ""}).mapping == {"isbn": "Numbers"}
    with pytest.raises(InputError, match="has no column 'Nope'"):
        run(settings, release, path, overrides={"isbn": "Nope"})


def test_excel_list_keeps_text(community, tmp_path):
    settings, _store, release = community
    path = tmp_path / "list.xlsx"
    pl.DataFrame({"ISBN": ["0441017800"], "Copies": ["2"]}).write_excel(path)
    result = run(settings, release, path)
    assert result.rows["ISBN"].to_list() == ["0441017800"]
    back = pl.read_excel(io.BytesIO(lastcopy.excel_bytes(result)), infer_schema_length=0)
    assert back.columns[:2] == ["ISBN", "Copies"] and back["Verdict"].to_list() == ["keep: scarce"]


def test_cli_formats_and_exit_codes(community, tmp_path, capsys):
    from analytics.cli import main

    settings, _store, _release = community
    path = list_file(tmp_path, WEEDING)
    base = ["--data-dir", str(settings.data_dir), "lastcopy", "A", str(path)]
    assert main(base + ["--format", "json"]) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert len(records) == 7 and list(records[0])[:5] == ["Barcode", "ISBN", "Title", "Author", "Note"]
    assert "7 rows read: 3 matched, 4 not matched" in captured.err
    assert main(base + ["--format", "csv"]) == 0
    csv_rows = pl.read_csv(io.BytesIO(capsys.readouterr().out.encode()), infer_schema=False)
    assert csv_rows.height == 7 and csv_rows["Verdict"][5] == "safe to withdraw"
    assert main(base) == 0
    table = capsys.readouterr().out
    assert "7 rows read: 3 matched, 4 not matched" in table and "row 3 (line 4)" in table
    assert main(base + ["--format", "xlsx"]) == 2
    assert "--output" in capsys.readouterr().err
    out = tmp_path / "checked.xlsx"
    assert main(base + ["--format", "xlsx", "--output", str(out)]) == 0
    assert pl.read_excel(out, infer_schema_length=0).height == 7
    assert main(base[:-1] + [str(tmp_path / "missing.csv")]) == 2
    assert main(base + ["--map", "isbn=Nope"]) == 2
    assert "has no column 'Nope'" in capsys.readouterr().err
    assert main(base + ["--map", "shelf=Note"]) == 2
    assert main(["--data-dir", str(settings.data_dir), "lastcopy", "ZZ", str(path)]) == 2


def test_files_are_formula_safe_and_keep_text(community, tmp_path):
    settings, _store, release = community
    result = run(settings, release, list_file(tmp_path, 'ISBN,Note\n0441017800,"=HYPERLINK(""http://x"")"\n'))
    back = pl.read_csv(io.BytesIO(lastcopy.csv_bytes(result)), infer_schema=False)
    assert back["Note"].to_list() == ["'=HYPERLINK(\"http://x\")"]  # a spreadsheet shows it as text
    workbook = pl.read_excel(io.BytesIO(lastcopy.excel_bytes(result)), infer_schema_length=0)
    assert workbook["ISBN"].to_list() == ["0441017800"] and workbook["Note"][0].startswith("=HYPERLINK")
    assert workbook.columns == result.rows.columns


def test_a_real_library_system_export_comes_back_whole(community, tmp_path):
    """Seattle Public Library's inventory export (tests/fixtures/spl_inventory_excerpt.csv): a blank
    first header, ISBN cells like "0441017800, 9780441017805", bracketed years, titles with
    statements of responsibility. Every row comes back with its own text; "On the Edge" finds the
    pair the community knows by its print ISBN, through the e-book's ISBN-10."""
    from pathlib import Path

    settings, _store, release = community
    source = Path(__file__).resolve().parents[1] / "fixtures" / "spl_inventory_excerpt.csv"
    original = pl.read_csv(source, infer_schema=False)
    result = run(settings, release, source)
    assert result.mapping == {"isbn": "ISBN", "title": "Title", "author": "Author"}
    assert result.rows.height == original.height == result.summary["read"]
    assert result.summary["matched"] + result.summary["unmatched"] == original.height
    assert result.rows.select(original.columns).equals(original)
    edge = result.rows.filter(pl.col("Title") == "On the Edge/ Illona Andrews.")
    assert edge["Matched work"].to_list() == ["Pair Work"] and edge["Match"].to_list() == ["ISBN"]
    no_isbn = result.rows.filter(pl.col("ISBN").is_null() & pl.col("Title").is_not_null())
    assert no_isbn.height > 0 and set(no_isbn["Verdict"]) == {"keep: scarce"}
    assert all("not in the community data" in reason for reason in no_isbn["Reason"])
