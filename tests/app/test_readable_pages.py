"""Pages a librarian can read: every table a page shows has human column headers (no snake_case
field names), for every page and role, on the published demo community."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.synthetic.demo import demo_email

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/home.py", "pages/trending.py", "pages/selection.py", "pages/subjects.py", "pages/deselection.py",
         "pages/compare.py", "pages/lastcopy.py",
         "pages/recommendations.py", "pages/benchmarks.py", "pages/community.py", "pages/my_data.py",
         "pages/import_data.py", "pages/profile.py"]
RAW = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$|^[a-z]")  # snake_case, or an internal lower-case name


def shown_headers(element) -> list[str]:
    """The headers a table shows: its configured labels, else its column names (hidden ones left out)."""
    config = json.loads(element.proto.columns or "{}")
    order = list(element.proto.column_order) or list(element.value.columns)
    headers = []
    for name in order:
        column = config.get(name, {})
        if column.get("hidden"):
            continue
        headers.append(column.get("label") or name)
    return headers


GROUPED = {"localized", "percent", "compact", "accounting"}  # formats that print 1,396,809, not 1396809


def unseparated(element) -> list[str]:
    """Numeric columns holding a value of 1,000 or more that the table shows without thousands
    separators (years apart)."""
    config = json.loads(element.proto.columns or "{}")
    frame = element.value
    bad = []
    for name in frame.columns:
        column = config.get(name, {})
        if column.get("hidden") or "year" in name.lower() or "year" in (column.get("label") or "").lower():
            continue
        values = frame[name]
        if values.dtype.kind not in "iuf" or not (values.abs() >= 1000).any():
            continue
        if column.get("type_config", {}).get("format") not in GROUPED:
            bad.append(column.get("label") or name)
    return bad


RELEASE_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
# File names, quartile codes, microsecond timestamps, the names of settings (K_TITLE, K_BENCH) and
# regions as codes.
INTERNAL_WORDS = re.compile(r"\.parquet\b|\bp25\b|\bp75\b|\d{2}:\d{2}:\d{2}\.\d+|\bK_[A-Z]+\b"
                            r"|\b(in|of) (NA|CA|EU|APAC|CN|LATAM|MEA)\b")  # a region as a code: "in NA" reads "n/a"
WORK_KEY = re.compile(r"^(isbn|issn|oclc|fp|title):")  # an internal work key, as "isbn:978…" or "fp:…"


def page_text(at) -> list[str]:
    """Every text a page shows outside tables: markdown, captions, metrics, alerts, headings, labels."""
    texts = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "success", "error"):
        texts += [e.value for e in at.get(kind)]
    texts += [f"{m.label} {m.value}" for m in at.metric]
    return texts


@pytest.mark.parametrize("role", ["admin", "manager", "librarian"])
def test_every_table_has_human_headers(institution, role):
    raw = {}
    for path in PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["signed_in_email"] = demo_email(institution, role)
        at.run()
        at = at.switch_page(path).run()
        assert not at.exception, (path, at.exception)
        for element in at.dataframe:
            bad = [h for h in shown_headers(element) if RAW.match(h)] + unseparated(element)
            # (The sharing profile's preview of what leaves the institution shows the work key, labelled.)
            labels = json.loads(element.proto.columns or "{}")
            bad += [f"work key in {name}" for name in element.value.columns
                    if not labels.get(name, {}).get("label", "").startswith("Work key (")
                    and element.value[name].astype(str).str.match(WORK_KEY.pattern).any()]
            if bad:
                raw.setdefault(path, []).extend(bad)
        # No release id (but in the administrator's note for the command line), file name or p25.
        for text in page_text(at):
            if (RELEASE_ID.search(text) and "For the command line" not in text) or INTERNAL_WORDS.search(text):
                raw.setdefault(path, []).append(text[:120])
    assert raw == {}, json.dumps(raw)


def test_tables_show_every_row_up_to_25_and_no_internal_key(monkeypatch):
    import polars as pl

    import ui

    shown = []
    monkeypatch.setattr(ui.st, "dataframe", lambda frame, **kwargs: shown.append((frame, kwargs)))
    for rows in (11, 25, 26):
        ui.table(pl.DataFrame({"work_key": [f"isbn:{i}" for i in range(rows)], "loans": list(range(rows)),
                               "pub_year": [2001] * rows}))
    assert [k["height"] for _, k in shown] == ["content", "content", 26 * 35 + 3]
    frame, kwargs = shown[0]
    assert frame.columns == ["loans", "pub_year"]
    assert kwargs["column_config"]["loans"]["type_config"]["format"] == "localized"
    assert kwargs["column_config"]["pub_year"]["type_config"]["format"] == "%d"
    assert kwargs["placeholder"] == ""  # a missing value is a blank cell
    shown.clear()
    ui.table(pl.DataFrame({"title": ["A" * 60], "subject": ["Law: " + "B" * 60], "author": ["Short, A"]}))
    config = shown[0][1]["column_config"]
    assert (config["title"]["width"], config["subject"]["width"], config["author"]) == ("large", "medium", "Author")


def test_exports_have_page_headers_rounded_fractions_and_no_internal_key():
    import io

    import polars as pl
    import streamlit as st

    import ui

    frame = pl.DataFrame({"work_key": ["fp:abc", "isbn:978"], "title": ["=HYPERLINK(1)", "B"],
                          "acquired_share": [0.4444444, 1 / 3], "score": [0.0123456, 12.34567],
                          "isbns": [["1", "2"], []], "loans": [1396809, 3]})
    columns = {"acquired_share": st.column_config.NumberColumn("Acquired by (share)", format="percent"),
               "loans": "Loans"}
    parsed = pl.read_csv(io.BytesIO(ui.csv_bytes(frame, columns)), infer_schema=False)
    assert parsed.columns == ["Title", "Acquired by (share) (%)", "Score", "ISBNs", "Loans"]
    assert parsed.rows() == [("'=HYPERLINK(1)", "44.4", "0.0123", "1; 2", "1396809"),
                             ("B", "33.3", "12.35", "", "3")]


def test_counts_read_as_words():
    import ui

    assert [ui.count(n, "row") for n in (0, 1, 2, 1396809)] == ["0 rows", "1 row", "2 rows", "1,396,809 rows"]
    assert ui.count(1, "entry", "entries") == "1 entry" and ui.count(3, "entry", "entries") == "3 entries"


def test_home_names_the_data_centre_in_words(institution):
    from analytics.core.schema import REGION_LABELS

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = demo_email(institution, "librarian")
    at.run()
    caption = " ".join(c.value for c in at.caption)
    assert "data center NA" not in caption and any(f"{label} (" in caption for label in REGION_LABELS.values())


def test_audit_history_and_home_use_words_not_codes(institution):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = demo_email(institution, "admin")
    at.run()
    home = " ".join(m.value for m in at.markdown)
    assert "community data in force was built on" in home
    assert not re.search(r"\d{8}T\d{6}Z-[0-9a-f]{6}", home) and not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", home)
    at = at.switch_page("pages/profile.py").run()
    audit = [df.value for df in at.dataframe if "What" in df.value.columns][0]
    code = re.compile(r"^[a-z_]+(\.[a-z_-]+)+$")
    assert len(audit) > 0 and not [w for w in audit["What"] if code.match(w)]
    assert any(w.startswith("Sharing: ") for w in audit["What"])
    latest = next(m.value for m in at.markdown if m.value.startswith("Latest change"))
    assert "`" not in latest


def test_audit_codes_in_words():
    import ui

    assert ui.audit_action("sharing.benchmark") == "Sharing: Benchmark Analytics"
    assert ui.audit_action("contribution.recommendations.created") == "Contribution sent: Recommendations"
    assert ui.audit_action("import.e-usage.ok") == "Import of e-usage: ok"
    assert ui.audit_action("recommendation.withdraw.grade").startswith("Recommendation graded: ")
    assert ui.audit_action("profile.fte_students") == "Profile: FTE students"
