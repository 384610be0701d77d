"""The text workbook writer: what goes in comes back as the same text, and the XML is well-formed."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

import polars as pl
import pytest

from analytics.core.xlsx import text_workbook


def test_text_comes_back_unchanged():
    frame = pl.DataFrame({"ISBN": ["0441017800", None, "=HYPERLINK(\"x\")", "978-0"],
                          "": ["a<b&c>", "'quoted", "  spaced  ", "line\nbreak"],
                          "Copies": [1, None, 3, 40]})
    data = text_workbook(frame, "Last-copy check")
    back = pl.read_excel(io.BytesIO(data), infer_schema_length=0)
    assert back.columns == ["ISBN", "", "Copies"]
    assert back["ISBN"].to_list() == ["0441017800", None, "=HYPERLINK(\"x\")", "978-0"]
    assert back[""].to_list() == ["a<b&c>", "'quoted", "  spaced  ", "line\nbreak"]
    assert back["Copies"].to_list() == ["1", None, "3", "40"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml")
        ET.fromstring(sheet)  # well-formed
        assert b"<f>" not in sheet  # no formula anywhere
        assert b'name="Last-copy check"' in archive.read("xl/workbook.xml")


def test_characters_xml_cannot_hold_are_dropped():
    back = pl.read_excel(io.BytesIO(text_workbook(pl.DataFrame({"a": ["x\x01y\x1fz"]}))), infer_schema_length=0)
    assert back["a"].to_list() == ["xyz"]


def test_more_rows_than_a_sheet_holds_are_refused():
    with pytest.raises(ValueError, match="do not fit in an Excel sheet"):
        text_workbook(pl.DataFrame({"a": pl.Series([None] * 1_048_576, dtype=pl.String)}))
