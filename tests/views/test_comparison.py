"""Collection comparison on a small community computed by hand (publish without noise, so every
released count is exact; K_TITLE = 3, K_BENCH = 5).

Ten EU institutions: A-E research, F-J teaching (so type=research and type=teaching are both
released: each group and the rest of the region have 5 members). A is "us".

work  call number   held by                     A's view
W1    QL444         A (print P1 and e-book E1   one work (print and e-book count once:
                    as separate records), B, C  B and C's records list both ISBNs)
W2    PS3545        A                           unique (shown as "not shown as held")
W3    PS3601        A, B                        2 holders: below K_TITLE, not shown
W4    HV4708        A, B, F, G, H, I, J         7 in the region; 2 research
W5    N8600         B, C, D, E                  gap for research (4 of 5)
W6    QA76          F, G, H, I, J               gap for all at 50% (5 of 10)
W7    PR1           B, C                        never released (2)
W8    QL500         A (withdrawn), B, C, D, E   A does not hold it: a gap for research
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from analytics.core.access import PermissionDenied, Principal
from analytics.release.handle import open_release
from analytics.views.collection import FilterError
from analytics.views.comparison import ComparisonFilters, compare, own_works, peer_group_name
from tests.community import Member, build, publish_exact

SYSTEM = Principal.system_job()
AS_OF = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
P1, E1 = "9780385334570", "9780441017805"
WORKS = {
    "W1": ("Pair Work", "King, Richard", f"{P1};{E1}", "QL444 .K5 2011"),
    "W2": ("Only Ours", "Baldwin, James", "9780679744726", "PS3545 .B5 1963"),
    "W3": ("Two Holders", "Andrews, Ilona", "9780345806567", "PS3601 .H5 2024"),
    "W4": ("Many Holders", "Singer, Peter", "9781893007161", "HV4708 .S56 1975"),
    "W5": ("Research Gap", "Nobody, Else", "9780393337129", "N8600 .T4 2008"),
    "W6": ("Teaching Gap", "Knuth, Donald", "9780201896831", "QA76 .K5 1997"),
    "W7": ("Rare Pair", "Austen, Jane", "9780141439518", "PR1 .A9 2003"),
    "W8": ("Withdrawn Here", "Darwin, Charles", "9780451529060", "QL500 .D3 2003"),
}
CODE = "X"  # institution XA is "A" above: a one-letter code would look like an LC class to release verify
US = "XA"
HOLDERS = {"W1": "ABC", "W2": "A", "W3": "AB", "W4": "ABFGHIJ", "W5": "BCDE", "W6": "FGHIJ", "W7": "BC",
           "W8": "ABCDE"}


def _items(letter: str) -> str:
    code = CODE + letter
    lines = ["item_id,title,author,isbn,call_number,acquired_date,withdrawn_date"]
    for work, (title, author, isbns, call) in WORKS.items():
        if letter not in HOLDERS[work]:
            continue
        withdrawn = "2025-01-10" if (letter, work) == ("A", "W8") else ""
        if (letter, work) == ("A", "W1"):  # print and e-book as two records that do not list each other
            lines.append(f'"XA-W1p","{title}","{author}","{P1}","{call}","2015-01-05",""')
            lines.append(f'"XA-W1e","{title} (e-book)","{author}","{E1}","{call}","2015-01-05",""')
            continue
        lines.append(f'"{code}-{work}","{title}","{author}","{isbns}","{call}","2015-01-05","{withdrawn}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def community(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("comparison")
    members = [Member(CODE + letter, type="research" if letter in "ABCDE" else "teaching",
                      tables={"items": _items(letter)}) for letter in "ABCDEFGHIJ"]
    settings, store = build(tmp / "data", members)
    publish_exact(settings, store, as_of=AS_OF, now=NOW)
    yield settings, store, open_release(settings.community_dir)
    store.dispose()


def _key(isbn: str) -> str:
    return f"isbn:{isbn}"


def test_own_works_count_print_and_ebook_once(community):
    settings, _store, release = community
    works = own_works(SYSTEM, release, settings.data_dir, US)
    # W1 (two local records, two local keys) is one community work; W8 is withdrawn.
    assert sorted(works["work_key"]) == sorted([_key(P1), _key(WORKS["W2"][2]), _key(WORKS["W3"][2]),
                                                _key(WORKS["W4"][2])])
    pair = works.filter(pl_col_eq("work_key", _key(P1)))
    assert pair["isbns"].to_list() == [[P1, E1]]
    assert pair["lc_class"].to_list() == ["Q"] and pair["lc_subclass"].to_list() == ["QL"]


def pl_col_eq(column: str, value: str):
    import polars as pl

    return pl.col(column) == value


def test_compare_with_all_institutions_by_hand(community):
    settings, _store, release = community
    result = compare(SYSTEM, release, settings.data_dir, US, ComparisonFilters(region="EU"))
    assert result.group_size == 10 and result.k_title == 3
    assert result.totals == {"your_works": 4, "overlap": 2, "overlap_share": 0.5, "not_shown": 2, "gaps": 1}
    by_work = {r["work_key"]: r for r in result.works.iter_rows(named=True)}
    assert by_work[_key(P1)]["group_holding"] == 3 and by_work[_key(P1)]["overlap"]
    assert by_work[_key(WORKS["W4"][2])]["group_holding"] == 7
    assert by_work[_key(WORKS["W2"][2])]["group_holding"] is None  # unique: not shown, never "0"
    assert by_work[_key(WORKS["W3"][2])]["group_holding"] is None  # 2 holders: not shown, never "2"
    # Holders in the region, banded.
    assert {k: r["band"] for k, r in by_work.items()} == {
        _key(P1): "3–5", _key(WORKS["W4"][2]): "6–9", _key(WORKS["W2"][2]): "fewer than 3",
        _key(WORKS["W3"][2]): "fewer than 3"}
    assert result.bands.rows() == [("fewer than 3", 2), ("3–5", 1), ("6–9", 1), ("10 or more", 0)]
    # Gaps at 50% of 10: W6 only (W5 and W8 have 4 holders).
    assert result.gaps["title"].to_list() == ["Teaching Gap"]
    assert result.gaps["group_holding"].to_list() == [5] and result.gaps["group_share"].to_list() == [0.5]
    summary = {(r["lc_class"], r["lc_subclass"]): (r["your_works"], r["overlap"], r["not_shown"], r["gaps"])
               for r in result.summary.iter_rows(named=True)}
    assert summary == {("H", "HV"): (1, 1, 0, 0), ("P", "PS"): (2, 0, 2, 0), ("Q", "QL"): (1, 1, 0, 0),
                       ("Q", "QA"): (0, 0, 0, 1)}


def test_a_lower_gap_share_lists_more_gaps(community):
    settings, _store, release = community
    result = compare(SYSTEM, release, settings.data_dir, US, ComparisonFilters(region="EU", gap_percent=40))
    assert sorted(result.gaps["title"]) == ["Research Gap", "Teaching Gap", "Withdrawn Here"]


def test_compare_with_a_type_group_by_hand(community):
    settings, _store, release = community
    result = compare(SYSTEM, release, settings.data_dir, US,
                     ComparisonFilters(region="EU", peer_group=peer_group_name("type=research")))
    assert result.group_size == 5
    # W1: A, B, C (3) shown; W4: A, B (2) not shown in the research group.
    assert result.totals == {"your_works": 4, "overlap": 1, "overlap_share": 0.25, "not_shown": 3, "gaps": 2}
    assert sorted(result.gaps["title"]) == ["Research Gap", "Withdrawn Here"]
    assert sorted(result.gaps["group_holding"]) == [4, 4]


def test_only_released_groups_and_own_users(community):
    settings, store, release = community
    with pytest.raises(FilterError, match="not released"):
        compare(SYSTEM, release, settings.data_dir, US, ComparisonFilters(region="EU", peer_group="size=tiny"))
    with pytest.raises(FilterError, match="choose 1 to 100"):
        compare(SYSTEM, release, settings.data_dir, US, ComparisonFilters(region="EU", gap_percent=0))
    stranger = store.user("admin@xb.example.org").principal()
    with pytest.raises(PermissionDenied):
        compare(stranger, release, settings.data_dir, US, ComparisonFilters(region="EU"))
    with pytest.raises(PermissionDenied):
        own_works(stranger, release, settings.data_dir, US)


def test_peer_group_names():
    assert peer_group_name(None) == "all" and peer_group_name("all") == "all"
    assert peer_group_name("type=research") == "type=research"
    assert peer_group_name("size=5,000-14,999") == "size=5,000-14,999"
    with pytest.raises(Exception, match="all, type=TYPE or size=BAND"):
        peer_group_name("type=research,size=5,000-14,999")


def _cli(capsys, settings, *args: str) -> tuple[int, str, str]:
    from analytics.cli import main

    code = main(["--data-dir", str(settings.data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_compare_prints_the_figures_as_json(community, capsys):
    settings, _store, _release = community
    code, out, _ = _cli(capsys, settings, "compare", US, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    total = rows[-1]
    assert total["lc_class"] == "total" and total["peer_group"] == "all" and total["group_size"] == 10
    assert (total["your_works"], total["overlap"], total["overlap_share"], total["not_shown_as_held"],
            total["gaps"]) == (4, 2, 0.5, 2, 1)
    assert {(r["lc_class"], r["lc_subclass"]): r["your_works"] for r in rows[:-1]} == {
        ("H", "HV"): 1, ("P", "PS"): 2, ("Q", "QA"): 0, ("Q", "QL"): 1}

    code, out, _ = _cli(capsys, settings, "compare", US, "--peers", "type=research", "--list", "gaps",
                        "--format", "json")
    gaps = json.loads(out)
    assert code == 0 and sorted(g["title"] for g in gaps) == ["Research Gap", "Withdrawn Here"]
    assert {g["group_holding"] for g in gaps} == {4} and {g["group_share"] for g in gaps} == {0.8}
    assert gaps[0]["isbns"] and gaps[0]["peer_group"] == "type=research"

    code, out, _ = _cli(capsys, settings, "compare", US, "--list", "works", "--format", "json")
    works = {w["title"]: w for w in json.loads(out)}
    assert len(works) == 4 and works["Pair Work"]["region_band"] == "3–5"
    assert works["Only Ours"]["group_holding"] is None and works["Only Ours"]["region_band"] == "fewer than 3"

    code, out, _ = _cli(capsys, settings, "compare", US, "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("peer_group,group_size,lc_class")


def test_cli_compare_refuses_a_group_that_is_not_released(community, capsys):
    settings, _store, _release = community
    code, _, err = _cli(capsys, settings, "compare", US, "--peers", "size=tiny")
    assert code == 2 and "not released" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, settings, "compare", US, "--peers", "country=DE")
    assert code == 2 and "all, type=TYPE or size=BAND" in err
