"""LC call number parsing and classification (analytics/subjects.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.ingest.subjects import (
    OUTLINE_PATH,
    UNKNOWN_SUBJECT,
    Subject,
    class_captions,
    classify,
    classify_frame,
    outline,
    parse_call_number,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
LC_CLASSES = set("ABCDEFGHJKLMNPQRSTUVZ")


def _rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("call_number", "expected"),
    [
        ("QA76.73.P98 L88 2019", ("QA", 76.73)),
        ("PS3545.I345 Z5 1987", ("PS", 3545.0)),
        ("HV5275 .W15 2001", ("HV", 5275.0)),
        ("DQ 000076 .E85  S38  1996", ("DQ", 76.0)),  # UVA shelving form
        ("DJK000034 .K64  B67  1986", ("DJK", 34.0)),
        ("PZ 000010.3 .P56  2007", ("PZ", 10.3)),
        ("qa 76.9", ("QA", 76.9)),
        ("BL'545'F4", ("BL", 545.0)),
        ("  KF 4550 .A2 ", ("KF", 4550.0)),
        ("KFN5100 .A2", ("KFN", 5100.0)),
        ("E184.5 .B6", ("E", 184.5)),
        ("PZ3.J853 Fi6 PR6019.O9", ("PZ", 3.0)),
        ("Z8999", ("Z", 8999.0)),
    ],
)
def test_parse_call_number(call_number, expected):
    assert parse_call_number(call_number) == expected


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        None,
        "Fiction",
        "FIC SMITH",
        "123.45 DEW",
        "823.912 J85f",
        "XYZ123",
        "IX 12",  # I is not an LC class
        "W 100",  # NLM, not LC
        "QZ 200",  # NLM's QS-QZ
        "CD",  # a letter code without a class number
        "QA12345",  # class numbers have at most four digits
        "ＱＡ７６",
        "QA٧٦",
        "DVD 123",
        12345,
        76.5,
    ],
)
def test_parse_call_number_rejects_garbage(garbage):
    assert parse_call_number(garbage) is None
    assert classify(garbage) == Subject(None, None, None, None, None, UNKNOWN_SUBJECT)


def test_real_uva_call_numbers_all_parse_in_both_forms():
    rows = _rows("uva_call_numbers.csv")
    assert len(rows) >= 30
    for row in rows:
        parsed = parse_call_number(row["call_number"])
        assert parsed is not None and parsed[0] == row["expected_subclass"], row
        if row["item_shelving_id"]:
            assert parse_call_number(row["item_shelving_id"]) == parsed, row


# ---------------------------------------------------------- classification


def test_libbib_answer_key():
    """22 items classified by NYPL libbib: same class and subclass captions.

    Items without a call number must stay unclassified; the rest must all match, so
    a wrong parse, a wrong letter split or a wrong lookup fails the test.
    """
    rows = _rows("lc_answer_key.csv")
    assert len(rows) == 22
    with_call_number = 0
    for row in rows:
        subject = classify(row["lccall"])
        if not row["lccall"].strip():
            assert subject.lc_class is None and not row["lc_subject_class"], row
            continue
        with_call_number += 1
        assert subject.lc_class_caption == row["lc_subject_class"], row
        assert subject.lc_subclass_caption == row["lc_subject_subclass"], row
        assert subject.subject == row["lc_subject_subclass"]
    assert with_call_number == 17


def test_classify_gives_finer_caption():
    assert classify("QA76.73.P98 L88 2019") == Subject(
        lc_class="Q",
        lc_class_caption="Science",
        lc_subclass="QA",
        lc_subclass_caption="Mathematics",
        caption="Electronic computers. Computer science",
        subject="Mathematics",
    )
    assert classify("PG3325 .B7 1900Z T.1").caption == "Dostoyevsky"
    assert classify("HV5275 .W15 2001").caption == "Alcoholism. Intemperance. Temperance reform"


def test_three_letter_law_subclasses():
    subject = classify("KFN5100 .A2")
    assert (subject.lc_class, subject.lc_subclass) == ("K", "KFN")
    assert subject.lc_subclass_caption == "Law of the United States"
    assert subject.caption == "New York"
    assert classify("KDC51").caption == "Scotland"


def test_caption_falls_back_to_subclass_when_no_range_holds_the_number():
    subject = classify("AC 9999")
    assert subject.caption == subject.lc_subclass_caption == "Collections. Series. Collected works"


def test_classify_frame_matches_classify_and_keeps_rows():
    values = [r["call_number"] for r in _rows("uva_call_numbers.csv")] + [
        r["lccall"] for r in _rows("lc_answer_key.csv")
    ]
    values += [None, "", "Fiction", "XYZ123", "QZ 200"]
    df = pl.DataFrame({"id": range(len(values)), "call_number": values})
    out = classify_frame(df, detail=True)
    assert out.columns == [
        "id", "call_number", "lc_class", "lc_subclass", "subject",
        "lc_class_caption", "lc_subclass_caption", "lc_caption",
    ]
    assert out["id"].to_list() == list(range(len(values)))
    for row in out.iter_rows(named=True):
        expected = classify(row["call_number"])
        assert (
            row["lc_class"], row["lc_class_caption"], row["lc_subclass"], row["lc_subclass_caption"],
            row["lc_caption"], row["subject"],
        ) == tuple(expected)
    assert classify_frame(df).columns == ["id", "call_number", "lc_class", "lc_subclass", "subject"]


def test_classify_frame_odd_inputs():
    missing = classify_frame(pl.DataFrame({"x": [1, 2]}))
    assert missing["subject"].to_list() == [UNKNOWN_SUBJECT] * 2
    assert missing["lc_class"].to_list() == [None, None]

    numbers = classify_frame(pl.DataFrame({"call_number": [123, None]}))
    assert numbers["subject"].to_list() == [UNKNOWN_SUBJECT] * 2

    nested = classify_frame(pl.DataFrame({"call_number": [["QA76"], []]}))
    assert nested["subject"].to_list() == [UNKNOWN_SUBJECT] * 2

    replaced = classify_frame(pl.DataFrame({"call_number": ["QA76"], "subject": ["old"]}))
    assert replaced["subject"].to_list() == ["Mathematics"]

    empty = classify_frame(pl.DataFrame({"call_number": []}, schema={"call_number": pl.String}))
    assert empty.height == 0 and "subject" in empty.columns

    cat = classify_frame(pl.DataFrame({"call_number": ["QA76", "HV5275"]}, schema={"call_number": pl.Categorical}))
    assert cat["lc_subclass"].to_list() == ["QA", "HV"]


# ----------------------------------------------------------- outline data


def test_outline_and_class_captions():
    captions = class_captions()
    assert set(captions) == LC_CLASSES
    assert captions["H"] == "Social Sciences"

    subclasses = outline()
    assert subclasses.columns == [
        "lc_class", "lc_class_caption", "lc_subclass", "lc_subclass_caption", "min_number", "max_number",
    ]
    assert subclasses.height > 500
    assert subclasses["lc_subclass"].is_unique().all()
    assert set(subclasses["lc_class"]) == LC_CLASSES
    assert subclasses["lc_subclass_caption"].null_count() == 0
    assert (subclasses["lc_subclass"].str.slice(0, 1) == subclasses["lc_class"]).all()
    spans = subclasses.drop_nulls(["min_number", "max_number"])
    assert spans.height > 450
    assert (spans["min_number"] <= spans["max_number"]).all() and (spans["max_number"] < 10000).all()
    # outline() hands out a copy: callers cannot corrupt the cached reference.
    subclasses.insert_column(0, pl.Series("junk", [0] * subclasses.height))
    assert outline().columns[0] == "lc_class"


def test_call_numbers_generated_from_outline_classify_back():
    """What a synthetic-data generator would do: a number inside each subclass's span."""
    spans = outline().drop_nulls(["min_number", "max_number"])
    midpoints = (spans["min_number"] + spans["max_number"]) // 2
    call_numbers = [f"{s}{int(n)} .A1 2001" for s, n in zip(spans["lc_subclass"], midpoints)]
    out = classify_frame(pl.DataFrame({"call_number": call_numbers}))
    assert out["lc_subclass"].to_list() == spans["lc_subclass"].to_list()
    assert out["lc_class"].to_list() == spans["lc_class"].to_list()


def test_reference_file_is_small():
    assert OUTLINE_PATH.stat().st_size < 1_000_000


# ------------------------------------------------------------ properties


@PROPERTY
@given(st.text())
def test_never_raises_on_arbitrary_text(text):
    parsed = parse_call_number(text)
    subject = classify(text)
    assert (parsed is None) == (subject.lc_class is None)
    assert subject.subject and (subject.lc_class is None or subject.lc_class in LC_CLASSES)


_SUBCLASSES = outline().drop_nulls(["min_number", "max_number"])


@PROPERTY
@given(
    st.integers(0, _SUBCLASSES.height - 1),
    st.floats(0, 1),
    st.sampled_from(["", " ", "  ", " 000"]),
    st.sampled_from(["", " .A53 2019", ".B7 K88", " .E85  S38  1996 V.000001"]),
    st.booleans(),
)
def test_well_formed_call_numbers_parse(index, position, gap, tail, lower):
    row = _SUBCLASSES.row(index, named=True)
    number = round(row["min_number"] + position * (row["max_number"] - row["min_number"]), 2)
    text = f"{row['lc_subclass']}{gap}{number:g}{tail}"
    assert parse_call_number(text.lower() if lower else text) == (row["lc_subclass"], number)


def test_law_subclass_captions_keep_their_subject():
    """KSH alone reads "Africa -- Guinea to Niger": every law subclass caption says it is law."""
    import polars as pl

    from analytics.ingest import subjects

    law = subjects.outline().filter(pl.col("lc_class") == "K")
    assert law.height > 50 and law["lc_subclass_caption"].str.contains("(?i)law").all()
    assert subjects.classify("KSH 123 .A5 2001").lc_subclass_caption == "Law: Africa -- Guinea to Niger"
    assert subjects.classify("KF 801 .A2 2010").lc_subclass_caption == "Law of the United States"  # unchanged
    assert subjects.classify("QA 76.73 .P98").lc_subclass_caption == "Mathematics"
