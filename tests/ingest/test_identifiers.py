"""Identifier normalisation, fingerprints and work keys (analytics/identifiers.py).

python-stdnum is the oracle for ISBN validity.  The scalar functions call it; frames
compute check digits with Polars expressions for speed, and
test_frame_path_agrees_with_scalar_stdnum_path holds the two paths to each other.
"""

from __future__ import annotations

import csv
import random
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import ValidationError

from analytics.ingest import identifiers
from analytics.ingest.identifiers import (
    MATCH_METHODS,
    add_identifier_columns,
    assign_work_keys,
    first_author_surname,
    fingerprint,
    match_report,
    normalize_isbn,
    normalize_issn,
    normalize_oclc,
    normalize_title,
    parse_isbn_cell,
    split_isbns,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies


@st.composite
def isbn13s(draw) -> str:
    """A valid ISBN-13 (978 or 979 prefix), check digit computed by stdnum."""
    prefix = draw(st.sampled_from(["978", "979"]))
    body = prefix + draw(st.text("0123456789", min_size=9, max_size=9))
    return body + ean.calc_check_digit(body)


@st.composite
def isbn10_pairs(draw) -> tuple[str, str]:
    """(ISBN-10, its ISBN-13), both produced by stdnum."""
    body = "978" + draw(st.text("0123456789", min_size=9, max_size=9))
    isbn13 = body + ean.calc_check_digit(body)
    return stdnum_isbn.to_isbn10(isbn13), isbn13


def hyphenate(draw, number: str) -> str:
    """Insert hyphens or spaces at random gaps, and randomly lower-case an X."""
    out = []
    for i, char in enumerate(number):
        if i and draw(st.booleans()):
            out.append(draw(st.sampled_from(["-", " ", "\u2010"])))
        out.append(char.lower() if char == "X" and draw(st.booleans()) else char)
    return "".join(out)


def stdnum_isbn13(value: str) -> str | None:
    try:
        return stdnum_isbn.validate(value, convert=True)
    except ValidationError:
        return None


# ------------------------------------------------------------------------ ISBN


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9780441017805 (pbk.)", "9780441017805"),
        ("0-380-017822", "9780380017829"),
        ("039333712x", "9780393337129"),
        ("0441017800", "9780441017805"),
        ("ISBN-13: 978-0-441-01780-5", "9780441017805"),
        ("978 0 441 01780 5", "9780441017805"),
        ("307601056", "9780307601056"),  # ISBN-10 that lost its leading zero
        ("9780441017805.0", "9780441017805"),  # float tail from a spreadsheet
        (9780441017805, "9780441017805"),
        ("979-10-90636-07-1", "9791090636071"),
        ("9780441017806", None),  # bad check digit
        ("0441017801", None),
        ("1-86189-795-4", None),
        ("garbage", None),
        ("", None),
        (None, None),
        (3.5, None),
        (["0441017800"], None),
    ],
)
def test_normalize_isbn(value, expected):
    assert normalize_isbn(value) == expected


def test_split_isbns_seattle_cell_keeps_order_and_dedupes():
    # Seattle exports list the ISBN-10 and ISBN-13 of one book: one ISBN.
    assert split_isbns("0441017800, 9780441017805") == ["9780441017805"]
    assert split_isbns("0448484412; 0448484420 | 9780448484419 9780448484426") == [
        "9780448484419",
        "9780448484426",
    ]


def test_parse_isbn_cell_counts_only_isbn_like_garbage():
    assert parse_isbn_cell("146184259X, 9781461842590, DF0004") == (["9781461842590"], 1)
    assert parse_isbn_cell("1565926218 (pbk. : alk. paper)") == (["9781565926219"], 0)
    assert parse_isbn_cell("9780441017806 pbk") == ([], 1)
    assert parse_isbn_cell("pbk.") == ([], 0)
    assert parse_isbn_cell(None) == ([], 0)


def _reference_cell(cell: str) -> tuple[list[str], int]:
    """Plain-Python reading of a real cell (none of the fixtures has spaced ISBNs)."""
    found, invalid = [], 0
    for token in re.split(r"[;|,\s]+", re.sub(r"\([^)]*\)", " ", cell)):
        if not re.search(r"[0-9]", token):
            continue
        number = stdnum_isbn13(token)
        if number is None:
            invalid += 1
        elif number not in found:
            found.append(number)
    return found, invalid


def test_real_isbn_cells_agree_with_stdnum():
    rows = list(csv.DictReader((FIXTURES / "isbn_cells.csv").open(encoding="utf-8")))
    assert len(rows) >= 30
    for row in rows:
        assert parse_isbn_cell(row["cell"]) == _reference_cell(row["cell"]), row
    # The fixture exercises what it claims to.
    assert sum(parse_isbn_cell(r["cell"])[1] for r in rows) == 1
    assert any(len(split_isbns(r["cell"])) == 2 for r in rows)


@PROPERTY
@given(st.lists(st.integers(978_000_000_000, 979_999_999_999), max_size=20))
def test_isbn13_from_prefixes_is_valid(prefixes):
    made = identifiers.isbn13(prefixes)
    assert [isbn[:12] for isbn in made] == [str(p) for p in prefixes]
    assert [normalize_isbn(isbn) for isbn in made] == made


def test_isbn13_pads_short_prefixes():
    assert identifiers.isbn13([978_030_640_615, 5]) == ["9780306406157", "0000000000055"]


@PROPERTY
@given(isbn10_pairs())
def test_isbn10_to_13_round_trip(pair):
    isbn10, isbn13 = pair
    assert normalize_isbn(isbn10) == isbn13
    assert normalize_isbn(isbn13) == isbn13
    assert stdnum_isbn.to_isbn10(normalize_isbn(isbn10)) == isbn10


@PROPERTY
@given(st.data())
def test_any_hyphenation_gives_same_result(data):
    number = data.draw(st.one_of(isbn13s(), isbn10_pairs().map(lambda p: p[0])))
    expected = stdnum_isbn.validate(number, convert=True)
    assert normalize_isbn(hyphenate(data.draw, number)) == expected
    assert normalize_isbn(stdnum_isbn.format(number)) == expected


@PROPERTY
@given(st.data())
def test_check_digits_agree_with_stdnum(data):
    """Valid numbers, one-digit typos and near-misses: same verdict as stdnum."""
    number = data.draw(
        st.one_of(isbn13s(), isbn10_pairs().map(lambda p: p[0]), st.text("0123456789X", min_size=8, max_size=14))
    )
    if number and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(number) - 1))
        number = number[:i] + data.draw(st.sampled_from("0123456789")) + number[i + 1 :]
    assert normalize_isbn(number) == stdnum_isbn13(number)


WORDS = ["pbk.", "(pbk. : alk. paper)", "[ebook]", "(v. 1", "ISBN", "ISBN-13:", "isbn10", "DF0004", "v.1", "x", "0", ""]
SEPARATORS = [", ", ",", ";", " | ", " ", "  ", "\t", "\n", "\u00a0", "\u2009"]


@st.composite
def isbn_cells(draw) -> str:
    """Cells built like real ones: ISBNs in any hyphenation (some with a typo), words,
    qualifiers and separators."""
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["isbn13", "isbn10", "typo", "digits", "word"]))
        if kind == "isbn13":
            parts.append(hyphenate(draw, draw(isbn13s())))
        elif kind == "isbn10":
            parts.append(hyphenate(draw, draw(isbn10_pairs())[0]))
        elif kind == "typo":
            number = draw(isbn13s())
            parts.append(number[:-1] + str((int(number[-1]) + 1) % 10))
        elif kind == "digits":
            parts.append(draw(st.text("0123456789Xx-.", min_size=1, max_size=14)))
        else:
            parts.append(draw(st.sampled_from(WORDS)))
    cell = ""
    for part in parts:
        cell += (draw(st.sampled_from(SEPARATORS)) if cell else "") + part
    return cell


@PROPERTY
@given(st.lists(st.one_of(isbn_cells(), st.text(), st.none()), max_size=12))
def test_frame_path_agrees_with_scalar_stdnum_path(cells):
    """Frames check digits in Polars; the scalar functions use stdnum.  Same answers."""
    out = add_identifier_columns(pl.DataFrame({"isbn": cells}, schema={"isbn": pl.String}))
    assert list(zip(out["isbn13_list"].to_list(), out["invalid_isbn_count"].to_list())) == [
        parse_isbn_cell(cell) for cell in cells
    ]


@PROPERTY
@given(st.text())
def test_random_text_never_raises(text):
    isbns, invalid = parse_isbn_cell(text)
    assert all(stdnum_isbn.is_valid(n) and len(n) == 13 for n in isbns)
    assert invalid >= 0
    assert normalize_issn(text) is None or re.fullmatch(r"[0-9]{4}-[0-9]{3}[0-9X]", normalize_issn(text))
    assert normalize_oclc(text) is None or normalize_oclc(text).isdigit()
    assert normalize_title(text) is None or normalize_title(text).strip() == normalize_title(text) != ""
    assert isinstance(first_author_surname(text), str)
    assert fingerprint(text, text) is None or fingerprint(text, text).startswith("ttl:")


# ------------------------------------------------------------------ ISSN, OCLC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1360-2365", "1360-2365"),
        ("13602365", "1360-2365"),
        ("ISSN 1360-2365 (print)", "1360-2365"),
        ("0378-5955", "0378-5955"),
        ("2434-561x", "2434-561X"),
        ("1360-2366", None),
        ("136-2365", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_issn(value, expected):
    assert normalize_issn(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("(OCoLC)ocm00012345", "12345"),
        ("ocn123", "123"),
        ("on123", "123"),
        ("12345", "12345"),
        ("(OCoLC)857542062", "857542062"),
        ("OCLC: 0042", "42"),
        ("857542062.0", "857542062"),
        (857542062, "857542062"),
        ("(OCoLC)ocm1; (OCoLC)2", "1"),
        ("0", None),
        ("(OCoLC)", None),
        ("ocm12a45", None),
        ("(DLC)12345", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_oclc(value, expected):
    assert normalize_oclc(value) == expected


# ------------------------------------------------------------- titles, authors


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("The Lord of the Rings : the fellowship of the ring /", "lord of the rings"),
        ("Bühler-Studien /", "buhler studien"),
        ("Die Schweiz im internationalen System der Nachkriegszeit, 1943-1950 /",
         "schweiz im internationalen system der nachkriegszeit 1943 1950"),
        ("L'Étranger", "etranger"),
        ("Les Misérables", "miserables"),
        ("El amor en los tiempos del cólera", "amor en los tiempos del colera"),
        ("Il nome della rosa", "nome della rosa"),
        ("A Tale of Two Cities", "tale of two cities"),
        ("Dune [electronic resource]", "dune"),
        ("Input/output", "input output"),
        ("Don't Panic!", "dont panic"),
        ("The", "the"),
        ("Straße", "strasse"),
        ("Братья Карамазовы", "братья карамазовы"),
        (" : ", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_title(title, expected):
    assert normalize_title(title) == expected


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ("Singer, Peter", "singer"),
        ("Peter Singer", "singer"),
        ("Singer, Peter, 1946- author.", "singer"),
        ("Peter Singer, author", "singer"),
        ("Peter Singer and Jim Mason", "singer"),
        ("Tolkien, J. R. R. (John Ronald Reuel), 1892-1973", "tolkien"),
        ("King, Martin Luther, Jr.", "king"),
        ("Martin Luther King, Jr.", "king"),
        ("Penrose, Roland, Sir.", "penrose"),
        ("García Márquez, Gabriel", "garciamarquez"),
        ("KRS-One", "krsone"),
        ("", ""),
        ("   ", ""),
        (None, ""),
    ],
)
def test_first_author_surname(author, expected):
    assert first_author_surname(author) == expected


def test_fingerprint():
    assert fingerprint("Animal Liberation", "Singer, Peter") == "ttl:animal liberation|singer"
    assert fingerprint("Animal liberation : a new ethics /", "Peter Singer") == "ttl:animal liberation|singer"
    assert fingerprint("Animal Liberation", None) == "ttl:animal liberation|"
    assert fingerprint("", "Singer, Peter") is None


# ------------------------------------------------------------------ frames


def test_add_identifier_columns_matches_scalars_in_row_order():
    cells = [r["cell"] for r in csv.DictReader((FIXTURES / "isbn_cells.csv").open(encoding="utf-8"))]
    values = cells + [None, "", "junk"] + cells[::-1]
    df = pl.DataFrame(
        {
            "isbn": values,
            "issn": ["1360-2365", "x", None] * (len(values) // 3) + [None] * (len(values) % 3),
            "oclc_number": ["(OCoLC)ocm0042", None, "0"] * (len(values) // 3) + [None] * (len(values) % 3),
        }
    )
    out = add_identifier_columns(df)
    assert out.schema["isbn13_list"] == pl.List(pl.String)
    assert out.schema["invalid_isbn_count"] == pl.UInt32
    assert out.columns[:3] == ["isbn", "issn", "oclc_number"]
    for row in out.iter_rows(named=True):
        assert (row["isbn13_list"], row["invalid_isbn_count"]) == parse_isbn_cell(row["isbn"])
        assert row["issn_norm"] == normalize_issn(row["issn"])
        assert row["oclc_norm"] == normalize_oclc(row["oclc_number"])


def test_add_identifier_columns_missing_and_numeric_columns():
    out = add_identifier_columns(pl.DataFrame({"title": ["a", "b"]}))
    assert out["isbn13_list"].to_list() == [[], []]
    assert out["invalid_isbn_count"].to_list() == [0, 0]
    assert out["issn_norm"].to_list() == [None, None]
    assert out["oclc_norm"].to_list() == [None, None]

    # As read from a spreadsheet: numbers, leading zeros lost.
    numeric = pl.DataFrame({"isbn": [441017800, None], "issn": [3785955, 13602365], "oclc_number": [12345.0, None]})
    out = add_identifier_columns(numeric)
    assert out["isbn13_list"].to_list() == [["9780441017805"], []]
    assert out["issn_norm"].to_list() == ["0378-5955", "1360-2365"]
    assert out["oclc_norm"].to_list() == ["12345", None]

    assert add_identifier_columns(pl.DataFrame({"isbn": []}, schema={"isbn": pl.String})).height == 0

    nested = assign_work_keys(pl.DataFrame({"isbn": [["0441017800"]], "title": [{"t": "Dune"}]}))
    assert nested["match_method"].to_list() == ["unmatched"]


# --------------------------------------------------------------- work keys

P, E, OTHER = "9780441017805", "9781101146231", "9780380017829"


def test_print_and_electronic_share_one_key():
    df = pl.DataFrame(
        {
            "isbn": [P, E, f"{E}; {P}", "0441017800", OTHER],
            "title": ["Dune", "Dune [electronic resource]", "Dune", "Dune", "Animal liberation"],
        }
    )
    out = assign_work_keys(df)
    assert out["work_key"].to_list() == [f"isbn:{P}"] * 4 + [f"isbn:{OTHER}"]
    assert out["match_method"].to_list() == ["isbn"] * 5
    assert out.columns == ["isbn", "title", "work_key", "match_method"]


def test_components_are_transitive():
    # a-b, b-c, c-d chain linked only through intermediate records.
    a, b, c, d = sorted(
        stdnum_isbn.validate(n, convert=True) for n in ["0441017800", "0380017822", "039333712X", "1893007162"]
    )
    df = pl.DataFrame({"isbn": [d, f"{c} {d}", f"{b} {c}", f"{a}|{b}", "junk"]})
    assert assign_work_keys(df)["work_key"].to_list() == [f"isbn:{a}"] * 4 + [None]


def test_precedence_and_unmatched():
    df = pl.DataFrame(
        {
            "isbn": [P, None, None, None, None, "junk"],
            "issn": ["1360-2365", "1360-2365", None, None, None, None],
            "oclc_number": ["1", "2", "(OCoLC)ocm00012345", None, None, None],
            "title": ["t"] * 3 + ["The Hobbit : or, There and back again /", "", None],
            "author": ["Tolkien, J. R. R."] * 6,
        }
    )
    out = assign_work_keys(df)
    assert out["match_method"].to_list() == ["isbn", "issn", "oclc", "fingerprint", "unmatched", "unmatched"]
    keys = out["work_key"].to_list()
    assert keys[:3] == [f"isbn:{P}", "issn:1360-2365", "oclc:12345"]
    assert re.fullmatch(r"fp:[0-9a-f]{16}", keys[3])
    assert keys[4:] == [None, None]
    # Same fingerprint, same key, whatever the surface form.
    again = assign_work_keys(pl.DataFrame({"title": ["hobbit"], "author": ["J.R.R. Tolkien"]}))
    assert again["work_key"][0] == keys[3]


def test_reuses_identifier_columns_and_tolerates_missing_ones():
    df = add_identifier_columns(pl.DataFrame({"isbn": [P, E]}))
    assert assign_work_keys(df).columns == df.columns + ["work_key", "match_method"]
    bare = assign_work_keys(pl.DataFrame({"x": [1, 2]}))
    assert bare["match_method"].to_list() == ["unmatched", "unmatched"]
    empty = assign_work_keys(pl.DataFrame({"isbn": []}, schema={"isbn": pl.String}))
    assert empty.height == 0 and empty.columns == ["isbn", "work_key", "match_method"]


def _union_find_keys(records: list[list[str]]) -> list[str | None]:
    """Naive oracle: "isbn:" + smallest ISBN of each record's connected component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for isbns in records:
        for other in isbns[1:]:
            ra, rb = find(isbns[0]), find(other)
            parent[max(ra, rb)] = min(ra, rb)
    return [f"isbn:{find(r[0])}" if r else None for r in records]


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.lists(st.integers(0, 14), max_size=3), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
)
def test_work_keys_match_union_find_and_ignore_row_order(records, rnd):
    pool = sorted({"978" + f"{i * 7919:09d}" + ean.calc_check_digit("978" + f"{i * 7919:09d}") for i in range(15)})
    isbn_records = [sorted({pool[i] for i in r}) for r in records]
    cells = [", ".join(r) if r else None for r in isbn_records]
    df = pl.DataFrame({"isbn": cells, "id": list(range(len(cells)))})
    out = assign_work_keys(df)
    assert out["work_key"].to_list() == _union_find_keys(isbn_records)

    order = list(range(len(cells)))
    rnd.shuffle(order)
    shuffled = assign_work_keys(df[order])
    assert dict(zip(shuffled["id"], shuffled["work_key"])) == dict(zip(out["id"], out["work_key"]))


def test_long_chain_converges():
    # One component spanning 20,000 records whose ISBN ids are shuffled: the worst
    # case for label propagation without pointer jumping.
    rnd = random.Random(5)
    bodies = [f"978{n:09d}" for n in rnd.sample(range(10**9), 20_001)]
    isbns = [b + ean.calc_check_digit(b) for b in bodies]
    df = pl.DataFrame({"isbn": [f"{isbns[k]} {isbns[k + 1]}" for k in range(20_000)]})
    keys = assign_work_keys(df)["work_key"]
    assert keys.n_unique() == 1 and keys[0] == f"isbn:{min(isbns)}"


def test_match_report():
    df = pl.DataFrame({"isbn": [P, E, None, None], "oclc_number": [None, None, "7", None], "title": ["a", "b", "c", None]})
    report = match_report(assign_work_keys(df))
    assert report["rows"] == 4
    assert report["works"] == 3
    assert report["counts"] == {"isbn": 2, "issn": 0, "oclc": 1, "fingerprint": 0, "unmatched": 1}
    assert report["rates"]["isbn"] == 0.5
    assert sum(report["counts"].values()) == report["rows"]
    assert match_report(df) == report  # raw frames are keyed first
    empty = match_report(pl.DataFrame({"isbn": []}, schema={"isbn": pl.String}))
    assert empty["rows"] == 0 and set(empty["rates"].values()) == {0.0}
    assert tuple(empty["counts"]) == MATCH_METHODS


def test_analytics_does_not_import_streamlit():
    code = "import sys, analytics.ingest.identifiers, analytics.ingest.subjects; sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0
