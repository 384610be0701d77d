"""MARC 21 fields to the canonical items columns: the bibliographic columns of a record, and its items.

Mapping (docs/data-contract.md §1, "marc"):

| column        | MARC 21 source                                                           |
|---------------|--------------------------------------------------------------------------|
| title_id      | 001 (local, never leaves the institution)                                |
| title         | 245 $a, then $b after the ISBD mark that precedes it (" : " by default); trailing " /:;,.=" trimmed |
| author        | 100 $a, else 110 $a, else 111 $a                                         |
| isbn          | every 020 $a, qualifiers such as "(pbk.)" left out, joined with ";"      |
| issn          | every 022 $a, joined with ";"                                            |
| oclc_number   | 035 $a "(OCoLC)..." or "ocm/ocn/on..."; else 001 when 003 is OCoLC       |
| call_number   | 050 $a $b, else 090 $a $b, else the item's own call number               |
| language      | 008/35-37, else the first code of 041 $a                                 |
| publisher     | 260 $b, else 264 $b with second indicator 1; "[s.n.]" is no publisher    |
| pub_year      | 008/07-10 when four digits (not 0000/9999), else 260 $c, 264 $c (ind2 1, then 4) |
| format        | "electronic" or "print", see _is_electronic                              |
| material_type | leader/07 b/s: journal; leader/06 g/i/j: media; a/t: book; else other     |
| item_id       | the item's barcode, else "<001>-<n>" (n: the item's place in its record) |

Items: the first of these tags present in a record gives its items, one per field.
Item-level fields come first, so a record with both an 852 holdings statement and 949
items is not counted twice:

| tag | written by                                 | barcode     | call number    |
|-----|--------------------------------------------|-------------|----------------|
| ITM | Alma publishing, items information         | $b          | -              |
| 949 | SirsiDynix and Sierra item fields          | $i, else $p | $a             |
| 952 | Koha                                       | $p          | $o             |
| 852 | MARC 21 holdings; Evergreen copies         | $p          | $h $i          |
| AVA | Alma/Primo availability, one per location  | -           | $d ($f copies) |

Alma lets each publishing profile choose the ITM subfields; $b for the barcode is an
assumption. A record without any of these fields is the bibliographic record held once:
one item "<001>-1" ("record<N>-1" without 001). Locations ($l, $b, $c) are not a
canonical column and are never stored; a barcode is stored only as the local item_id.
An item_id seen before (the same barcode twice, or two records with the same 001) is
refused by the canonical rules; a record left with no item is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_COPIES = 1_000  # an AVA $f above this is a data error, not copies
BIB_COLUMNS = ("title_id", "title", "author", "isbn", "issn", "oclc_number", "publisher", "pub_year", "language",
               "format", "material_type")


@dataclass(frozen=True)
class ItemField:
    tag: str
    barcode: str  # subfield codes, the first non-blank one wins
    call_number: str  # subfield codes, joined with a space
    copies: str = ""  # subfield giving a number of copies



ITEM_FIELDS = (
    ItemField("ITM", barcode="b", call_number=""),
    ItemField("949", barcode="ip", call_number="a"),
    ItemField("952", barcode="p", call_number="o"),
    ItemField("852", barcode="p", call_number="hi"),
    ItemField("AVA", barcode="", call_number="d", copies="f"),
)
WANTED_TAGS = frozenset({"001", "003", "007", "008", "020", "022", "035", "041", "050", "090", "100", "110", "111",
                         "200", "245", "260", "264", "583", "856"} | {spec.tag for spec in ITEM_FIELDS})

TRIM = " /:;,.=\t"
_ISBN = re.compile(r"[0-9][0-9\- ]{8,15}[0-9Xx]")
_QUALIFIER = re.compile(r"\([^)]*\)?")
_OCLC_035 = re.compile(r"^\s*(?:\((?i:ocolc)\)|oc[mn]|on[0-9])")
_LANGUAGE = re.compile(r"[a-z]{3}")
_NO_PUBLISHER = re.compile(r"^\[?s\.\s?n\.?\]?$", re.IGNORECASE)
_TRAILING_PERIOD = re.compile(r"(?<=[^\W\d_]{2})\.$")  # "Sons." loses it, the initial in "Smith, J." keeps it
_ABOUT_THE_RESOURCE = re.compile(r"(?i)contents|descript|biograph|sample|review|cover|excerpt|abstract|summary")

Text = Callable[[object], str]  # decodes a value: bytes of a binary record, str of MARCXML
# tag -> its fields, in order: a control field is its data (bytes or str, None if empty),
# a data field is (second indicator, [(subfield code, value)]); 583 keeps its first indicator
# instead (FIRST_INDICATOR_TAGS), the one that tells a public action note from a private one.
Fields = dict[str, list]
FIRST_INDICATOR_TAGS = frozenset({"583"})


class Rejected(Exception):
    """A record that cannot be used; the message is the reason."""


def _trim(value: str | None, chars: str = TRIM) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip(chars).strip()
    return value or None


def _subfield(fields: list, codes: str, text: Text) -> str | None:
    """The first non-blank subfield with one of the codes in the fields, decoded."""
    for _, subfields in fields:
        for code, value in subfields:
            if code and code in codes and value.strip():
                return text(value).strip()
    return None


def _every(fields: list, code: str, text: Text) -> list[str]:
    return [text(v).strip() for _, subfields in fields for c, v in subfields if c == code and v.strip()]


def _control(fields: list | None) -> str:
    """A fixed-position control field, one character per byte ("" if absent)."""
    data = fields[0] if fields else None
    if not data:
        return ""
    return data if isinstance(data, str) else data.decode("latin-1")


def _with_second_indicator(fields: list, indicator: str) -> list:
    return [f for f in fields if f[0] == indicator]


def _title(f245: tuple, text: Text) -> str | None:
    title = subtitle = None
    mark = ":"
    previous = ""
    for code, value in f245[1]:
        if code == "a" and title is None:
            title = _trim(text(value))
        elif code == "b" and subtitle is None:
            subtitle = _trim(text(value))
            if previous.rstrip()[-1:] in (":", ";", "="):
                mark = previous.rstrip()[-1]
        if code in ("a", "h"):
            previous = text(value)
    if title and subtitle:
        return f"{title} {mark} {subtitle}"
    return title


def _isbns(fields: list, text: Text) -> str | None:
    found = []
    for cell in _every(fields, "a", text):
        match = _ISBN.search(cell)
        isbn = match.group(0) if match else _trim(_QUALIFIER.sub(" ", cell))
        if isbn:
            found.append(isbn)
    return ";".join(found) or None


def _is_electronic(leader: str, fields: Fields, text: Text, has_item_fields: bool) -> bool:
    """An e-resource: 007 "cr" (remote) with no 007 of a physical carrier; a computer
    file (leader/06 m) with no physical carrier; 008 form of item o or s (online,
    electronic); 245 $h "[electronic resource]"; or, without any item field, an 856 link
    to the resource itself (ind2 0) or a version of it (ind2 1), but not to a part of it
    or to information about it ($3 "Table of contents", $z "Publisher description")."""
    carriers = [c for c in (_control([f]) for f in fields.get("007", ())) if c]
    physical = any(c[:2] != "cr" for c in carriers)
    if not physical and (carriers or leader[6:7] == "m"):
        return True
    f008 = _control(fields.get("008"))
    form = f008[29:30] if leader[6:7] in ("e", "f", "g", "k", "o", "r") else f008[23:24]
    if form in ("o", "s"):
        return True
    medium = _subfield(fields.get("245", []), "h", text)
    if medium and "electronic resource" in medium.lower():
        return True
    if has_item_fields:
        return False
    for link in fields.get("856", ()):
        if link[0] not in ("0", "1") or _subfield([link], "3", text):
            continue
        note = _subfield([link], "z", text)
        if not (note and _ABOUT_THE_RESOURCE.search(note)):
            return True
    return False


def _material_type(leader: str) -> str:
    if leader[7:8] in ("b", "s"):
        return "journal"
    if leader[6:7] in ("g", "i", "j"):
        return "media"
    if leader[6:7] in ("a", "t"):
        return "book"
    return "other"


def _items(fields: Fields, text: Text) -> tuple[str | None, list[tuple[str | None, str | None]]]:
    """(tag, [(barcode, call number)]) of the record's items; (None, [(None, None)])
    for a record without item fields, held once."""
    for spec in ITEM_FIELDS:
        tagged = fields.get(spec.tag)
        if not tagged:
            continue
        items = []
        for f in tagged:
            barcode = _subfield([f], spec.barcode, text) if spec.barcode else None
            call_number = " ".join(text(v).strip() for c, v in f[1] if c and c in spec.call_number and v.strip())
            copies = 1
            if spec.copies:
                count = _subfield([f], spec.copies, text)
                copies = int(count) if count and count.isdigit() and 0 < int(count) <= MAX_COPIES else 1
            items.extend([(barcode, call_number or None)] * copies)
        return spec.tag, items
    return None, [(None, None)]


def bibliographic(leader: str, fields: Fields, text: Text) -> tuple[dict, str | None, list]:
    """(bibliographic columns, item tag, items) of one record; raises Rejected."""
    if "245" not in fields:
        if "200" in fields:
            raise Rejected("looks like UNIMARC (title in field 200, no 245), not MARC 21")
        if leader[6:7] in ("u", "v", "x", "y", "z"):
            kind = "an authority" if leader[6] == "z" else "a holdings"
            raise Rejected(f"{kind} record (leader/06 '{leader[6]}'), not a bibliographic record")
        raise Rejected("no title: the record has no field 245")
    title = _title(fields["245"][0], text)
    if not title:
        raise Rejected("no title: field 245 has no $a")
    f008 = _control(fields.get("008"))
    control_data = fields["001"][0] if "001" in fields else None
    control_number = _trim(text(control_data), " ") if control_data else None
    oclc = ";".join(v for v in _every(fields.get("035", []), "a", text) if _OCLC_035.match(v)) or None
    if oclc is None and control_number and _control(fields.get("003")).strip().lower() == "ocolc":
        oclc = control_number
    f264 = fields.get("264", [])
    year = f008[7:11] if f008[7:11].isdigit() and f008[7:11] not in ("0000", "9999") else None
    language = f008[35:38] if _LANGUAGE.fullmatch(f008[35:38]) else None
    if language is None:
        code = (_subfield(fields.get("041", []), "a", text) or "")[:3].lower()
        language = code if _LANGUAGE.fullmatch(code) else None
    publisher = _trim(_subfield(fields.get("260", []) + _with_second_indicator(f264, "1"), "b", text), " ,:;/")
    author = _trim(_subfield(fields.get("100", []), "a", text) or _subfield(fields.get("110", []), "a", text)
                   or _subfield(fields.get("111", []), "a", text), " ,:;/")
    call_number = None
    for tag in ("050", "090"):
        first = fields.get(tag, [])[:1]
        if klass := _subfield(first, "a", text):
            item_part = _subfield(first, "b", text)
            call_number = f"{klass} {item_part}" if item_part else klass
            break
    item_tag, items = _items(fields, text)
    bib = {
        "title_id": control_number,
        "title": title,
        "author": _TRAILING_PERIOD.sub("", author) if author else None,
        "isbn": _isbns(fields.get("020", []), text),
        "issn": ";".join(_every(fields.get("022", []), "a", text)) or None,
        "oclc_number": oclc,
        "publisher": None if not publisher or _NO_PUBLISHER.match(publisher) else _TRAILING_PERIOD.sub("", publisher),
        "pub_year": year or _subfield(fields.get("260", []) + _with_second_indicator(f264, "1")
                                      + _with_second_indicator(f264, "4"), "c", text),
        "language": language,
        "call_number": call_number,
        "format": "electronic" if _is_electronic(leader, fields, text, item_tag is not None) else "print",
        "material_type": _material_type(leader),
    }
    return bib, item_tag, items


# -- retention commitments (583 action notes, the shared-print convention) -----------------------

_COMMITTED = re.compile(r"committed to retain", re.IGNORECASE)
_INDEFINITE = frozenset({"permanent", "indefinite", "indefinitely", "in perpetuity", "perpetual"})
_MONTHS = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                        "september", "october", "november", "december"), start=1)}


def marc_date(value: str | None, end: bool = False) -> str | None:
    """An ISO date from a 583 $c/$d: yyyymmdd, yyyymm, yyyy, yyyy-mm-dd or "June 30, 2028"; a bare
    year is its last day for an end date ($d), its first day otherwise. Raises ValueError."""
    import datetime as dt

    text = (value or "").strip().rstrip(".;,").strip()
    if m := re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text):
        return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    if m := re.fullmatch(r"(\d{4})(\d{2})", text):
        first = dt.date(int(m[1]), int(m[2]), 1)
        if not end:
            return first.isoformat()
        following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return (following - dt.timedelta(days=1)).isoformat()
    if re.fullmatch(r"\d{4}", text):
        return f"{text}-12-31" if end else f"{text}-01-01"
    if m := re.fullmatch(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})", text):
        if m[1].lower() in _MONTHS:
            return dt.date(int(m[3]), _MONTHS[m[1].lower()], int(m[2])).isoformat()
    raise ValueError(text)


def commitments(fields: Fields, text: Text) -> tuple[list[dict], list[str]]:
    """The retention commitments of a record's 583 fields, and the problems of those that are
    commitments but unusable. A commitment is a 583 with first indicator 1 (public) and $a
    "committed to retain" (case and trailing punctuation ignored); other actions ("completeness
    reviewed", "condition reviewed", ...) and private notes (first indicator 0) are not. Each
    $f program gives one row {program, committed_on, retain_until (ISO date or None: indefinite),
    institution ($5, only for the caller to check; never stored)}."""
    rows: list[dict] = []
    problems: list[str] = []
    for n, (first, subfields) in enumerate(fields.get("583", []), start=1):
        values: dict[str, list[str]] = {}
        for code, value in subfields:
            if value and value.strip():
                values.setdefault(code, []).append(text(value).strip())
        action = _trim(" ".join(values.get("a", [])), " .;,:/") or ""
        if first != "1" or not _COMMITTED.fullmatch(action):
            continue
        where = f"583 #{n}"
        programs = [p for p in (_trim(v, " .;,:/") for v in values.get("f", [])) if p]
        if not programs:
            problems.append(f"{where}: committed to retain without a program ($f); left out")
            continue
        try:
            committed_on = marc_date(values["c"][0]) if values.get("c") else None
        except ValueError as exc:
            problems.append(f"{where} $c: {str(exc)!r} is not a date (yyyymmdd, yyyy or yyyy-mm-dd); "
                            f"the commitment is kept without it")
            committed_on = None
        until_text = values.get("d", [""])[0]
        if not until_text or until_text.strip().rstrip(".").lower() in _INDEFINITE:
            retain_until = None
        else:
            try:
                retain_until = marc_date(until_text, end=True)
            except ValueError as exc:
                problems.append(f"{where} $d: {str(exc)!r} is not a date (yyyymmdd, yyyy or yyyy-mm-dd); "
                                f"left out (it would otherwise read as indefinite)")
                continue
        institution = values.get("5", [None])[0]
        for program in programs:
            rows.append({"program": program, "committed_on": committed_on, "retain_until": retain_until,
                         "institution": institution})
    return rows, problems
