"""The documentation says what the code does: docs/data-contract.md §4 lists exactly the tables,
columns, types, thresholds and threshold defaults that analytics/core/contract.py declares.

A column added to the contract without the document fails here, and so does one documented
that the contract does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.core import contract

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DOC = ROOT / "docs" / "data-contract.md"


def section(text: str, heading: str) -> str:
    """The text of the `## ` section whose heading starts with `heading`."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {heading}' in {CONTRACT_DOC.name}"
    return match.group(1)


def tables(text: str) -> dict[str, dict[str, list[dict[str, str]]]]:
    """The Markdown tables of `text`: {### heading: {#### heading (first word): rows}}, each row
    a dict keyed by the table's header. A table directly under a ### heading has the key ''."""
    found: dict[str, dict[str, list[dict[str, str]]]] = {}
    group = table = ""
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            group, table, header = line[4:].strip(), "", None
        elif line.startswith("#### "):
            table, header = line[5:].split()[0], None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
                found.setdefault(group, {})[table] = []
            elif not set("".join(cells)) <= set("-: "):
                found[group][table].append(dict(zip(header, cells)))
        else:
            header = None
    return found


@pytest.fixture(scope="module")
def documented():
    return tables(section(CONTRACT_DOC.read_text(), "4."))


def columns(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(row["column"], row["type"].strip("`")) for row in rows]


def test_thresholds_are_documented_with_their_defaults(documented):
    rows = documented["Thresholds"][""]
    assert {row["parameter"]: float(row["default"]) for row in rows} == contract.THRESHOLDS


DECLARED = {"Contribution tables": contract.CONTRIBUTION_TABLES, "Release tables": contract.RELEASE_TABLES}


@pytest.mark.parametrize("kind", DECLARED)
def test_every_table_is_documented_and_no_other(documented, kind):
    assert list(documented[kind]) == list(DECLARED[kind])


@pytest.mark.parametrize("kind, table", [(kind, table) for kind, declared in DECLARED.items() for table in declared])
def test_columns_are_documented_with_their_types(documented, kind, table):
    rows = documented[kind].get(table)
    assert rows is not None, f"{kind.lower()}: {table} is not in {CONTRACT_DOC.name}"
    assert columns(rows) == list(DECLARED[kind][table].items())


@pytest.mark.parametrize("table", contract.RELEASE_TABLES)
def test_release_thresholds_are_documented(documented, table):
    rows = documented["Release tables"].get(table, [])
    thresholds = tuple((row["column"], row["threshold"]) for row in rows if row["threshold"])
    assert thresholds == contract.THRESHOLD_COLUMNS.get(table, ())


def test_the_release_layout_names_every_release_file():
    layout = section(CONTRACT_DOC.read_text(), "4.").split("### Release layout", 1)[1].split("```")[1]
    named = set(re.findall(r"(\w+)\.parquet", layout))
    assert named == set(contract.RELEASE_TABLES)


def test_threshold_defaults_quoted_anywhere_in_the_docs_are_the_contracts():
    """Prose such as "`K_TITLE` (3)" or "DOMINANCE (50%)" in the README and docs/."""
    quoted = re.compile(r"`?\b(" + "|".join(contract.THRESHOLDS) + r")\b`? \((\d+(?:\.\d+)?)(%?)\)")
    wrong = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            for name, number, percent in quoted.findall(line):
                value = float(number) / (100 if percent else 1)
                if value != contract.THRESHOLDS[name]:
                    wrong.append(f"{path.relative_to(ROOT)}:{line_number}: {name} ({number}{percent})")
    assert wrong == []
