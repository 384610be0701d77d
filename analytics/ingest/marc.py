"""Import of MARC 21 bibliographic records (binary or MARCXML) as the items table.

Each MARC record is one title; each of its holdings/item fields is one held copy. The
items are built as a frame of text columns with the canonical names and passed through
the canonical import (tabular.canonicalize), so typing, accepted values, ISBN, ISSN and
OCLC normalization and work keys are exactly those of `import CODE items`.

Mapping (DATA_CONTRACT.md §1, "marc"):

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

Reading. MARCXML is recognised by its content (it starts with "<"), binary MARC by the
5-digit record length it starts with; anything else is refused. Binary files are read
in blocks and cut at the record terminator (0x1D) rather than trusting leader/00-04 as
pymarc.MARCReader does, so one record with a wrong length does not derail the rest,
and every record has a byte offset for the report (a missing terminator is found by the
next leader starting where leader/00-04 says the record ends). Only the fields the mapping uses are
decoded: pymarc's Record decodes every field of every record and by itself reads about
5,000 real records a second, the whole budget. MARCXML goes through pymarc's SAX
handler, record by record. Neither reads the whole file into memory.

Encodings, per binary record (report.encoding names the one used, or the mix).
Leader/09 "a" declares UTF-8, blank declares MARC-8; ASCII-only records are both. A
record that is valid UTF-8 is read as UTF-8 even when leader/09 says MARC-8 (a common
export slip; MARC-8 text with diacritics is never valid UTF-8). Otherwise, if its bytes
are plausible MARC-8 (escape sequences, or only ANSEL characters with at most three
diacritics on a letter) it is read as MARC-8 with pymarc's converter; otherwise as
Windows-1251, the single-byte encoding of Russian catalogues (pymarc's 1251.dat). Each
fallback is counted in the warnings; `encoding=` ("marc-8" or a Python codec name such
as "cp1252") overrides the detection for a whole binary file; MARCXML declares its own.

Broken records are skipped and reported by position: "record 4 (byte 381)", or in
MARCXML "record 4 (line 120)", with the reason. UNIMARC records (title in 200, no 245)
and MARC 21 holdings or authority records are refused the same way; a file with at
least as many UNIMARC records as usable ones fails as a whole. read, kept and rejected count records (read = kept +
rejected); report.items counts the items written. The import fails (InputError, nothing
changed) when no record is usable; a MARCXML file that is not well-formed fails as a
whole, because the records after the error cannot be counted.

Progress: progress(bytes_read, file_size) every 1,000 records and once at the end.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import xml.sax
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import polars as pl
from pymarc import Record
from pymarc.marc8 import MARC8ToUnicode
from pymarc.marc8_mapping import CODESETS
from pymarc.marcxml import XmlHandler

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import TABLE_FILES
from analytics.ingest.reader import InputError, RawTable
from analytics.ingest.tabular import (
    MAX_LISTED,
    ImportReport,
    canonicalize,
    institution_dir,
    write_atomically,
)

PROGRESS_EVERY = 1_000
BLOCK_SIZE = 1 << 20
MAX_RECORD_LENGTH = 99_999  # leader/00-04 has five digits
FRAME_BATCH = 50_000
MAX_COPIES = 1_000  # an AVA $f above this is a data error, not copies

RECORD_TERMINATOR = b"\x1d"
FIELD_TERMINATOR = b"\x1e"
SUBFIELD_DELIMITER = b"\x1f"
PADDING = b" \t\r\n\x00"
BIB_COLUMNS = ("title_id", "title", "author", "isbn", "issn", "oclc_number", "publisher", "pub_year", "language",
               "format", "material_type")
COLUMNS = ("item_id", "call_number", *BIB_COLUMNS)


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
                         "200", "245", "260", "264", "856"} | {spec.tag for spec in ITEM_FIELDS})
WANTED_TAG_BYTES = frozenset(tag.encode("ascii") for tag in WANTED_TAGS)
_DIRECTORY_ENTRY = re.compile(rb"(...)([0-9]{4})([0-9]{5})", re.DOTALL)
ENCODING_LABELS = {"marc-8": "MARC-8", "utf-8": "UTF-8", "cp1251": "Windows-1251"}

TRIM = " /:;,.=\t"
_ISBN = re.compile(r"[0-9][0-9\- ]{8,15}[0-9Xx]")
_QUALIFIER = re.compile(r"\([^)]*\)?")
_OCLC_035 = re.compile(r"^\s*(?:\((?i:ocolc)\)|oc[mn]|on[0-9])")
_LANGUAGE = re.compile(r"[a-z]{3}")
_NO_PUBLISHER = re.compile(r"^\[?s\.\s?n\.?\]?$", re.IGNORECASE)
_TRAILING_PERIOD = re.compile(r"(?<=[^\W\d_]{2})\.$")  # "Sons." loses it, the initial in "Smith, J." keeps it
_ABOUT_THE_RESOURCE = re.compile(r"(?i)contents|descript|biograph|sample|review|cover|excerpt|abstract|summary")
# Bytes that never occur in MARC-8 text with the default G0/G1 (ASCII/ANSEL): C1 controls
# other than the joiners, and the holes of the ANSEL table. Cyrillic in cp1251 hits them.
_NOT_ANSEL = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in range(0x80, 0x100)
                                          if b not in CODESETS[0x45]) + b"]")
_HIGH_RUN = re.compile(rb"[\x80-\xff]{5,}")  # up to three diacritics and a special letter


@dataclass
class MarcImportReport(ImportReport):
    """The import report, with the items the records gave."""

    items: int = 0
    items_rejected: int = 0
    records_without_items: int = 0
    item_fields: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**super().as_dict(), "items": self.items, "items_rejected": self.items_rejected,
                "records_without_items": self.records_without_items, "item_fields": self.item_fields,
                "encodings": self.encodings}


class _Rejected(Exception):
    """A record that cannot be used; the message is the reason."""


Text = Callable[[object], str]  # decodes a value: bytes of a binary record, str of MARCXML
# tag -> its fields, in order: a control field is its data (bytes or str, None if empty),
# a data field is (second indicator, [(subfield code, value)]).
Fields = dict[str, list]
Progress = Callable[[int, int | None], None]


def import_marc(data_dir: Path, actor: Principal, code: str, path: str | Path, *,
                display_name: str | None = None, progress: Progress | None = None,
                encoding: str | None = None) -> ImportReport:
    """Read MARC 21 records (binary or MARCXML) and replace the institution's items table.

    Raises InputError (nothing changed) when the file is not MARC 21 or no record is
    usable, PermissionDenied if the actor may not import for this institution.
    """
    access.require_admin(actor, code, "the institution's data (imports)")
    path = Path(path)
    name = display_name or path.name
    forced = _forced_encoding(encoding)
    if not path.is_file():
        raise InputError(f"{name}: no such file.")
    total = path.stat().st_size
    with open(path, "rb") as fh:
        kind = _sniff(fh, name)
        collector = _Collector(name, "line" if kind == "xml" else "byte")
        if kind == "xml":
            _read_xml(fh, name, collector, total, progress)
        else:
            _read_binary(fh, collector, forced, total, progress)
    if progress:
        progress(total, total)
    report, frame = collector.finish(kind, forced)
    target = institution_dir(data_dir, code) / TABLE_FILES["items"]
    report.table = str(target)
    write_atomically(frame, target)
    return report


# ----------------------------------------------------------------------- reading


def _forced_encoding(encoding: str | None) -> str | None:
    if not encoding:
        return None
    if encoding.lower().replace("_", "-") in ("marc-8", "marc8"):
        return "marc-8"
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"encoding {encoding!r} is not known; use marc-8, utf-8, cp1251, cp1252, ...") from None


def _sniff(fh: BinaryIO, name: str) -> str:
    while block := fh.read(BLOCK_SIZE):
        if stripped := block.lstrip(PADDING):
            break
    else:
        raise InputError(f"{name}: the file is empty (no MARC record).")
    fh.seek(0)
    if stripped.startswith((b"<", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return "xml"
    if stripped[:5].isdigit():
        return "binary"
    raise InputError(
        f"{name}: not a MARC 21 file: binary MARC starts with the record length (5 digits) and MARCXML "
        f"with '<', but this file starts with {stripped[:16]!r}. Export the records as MARC 21 (.mrc) or MARCXML."
    )


def _chunks(fh: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(byte offset, record without its terminator), or (offset, None) for a run of
    bytes with no terminator within the longest possible record, after which reading
    resumes at the next terminator. Padding between records is skipped."""
    tail = b""
    base = 0  # file offset of tail[0]
    while block := fh.read(BLOCK_SIZE):
        parts = (tail + block).split(RECORD_TERMINATOR)
        tail = parts.pop()
        for part in parts:
            yield from _trimmed(base, part)
            base += len(part) + 1
        if len(tail) > MAX_RECORD_LENGTH:
            yield base, None
            base += len(tail)
            tail = b""
            while (block := fh.read(BLOCK_SIZE)) and RECORD_TERMINATOR not in block:
                base += len(block)
            if block:
                cut = block.index(RECORD_TERMINATOR) + 1
                base += cut
                tail = block[cut:]
    yield from _trimmed(base, tail)


def _trimmed(base: int, part: bytes) -> Iterator[tuple[int, bytes]]:
    """The record(s) in one piece between terminators, without padding. A record whose
    terminator is missing is followed right after its last field terminator by the next
    leader, where leader/00-04 says it ends: it is cut there."""
    data = part.lstrip(PADDING)
    offset = base + len(part) - len(data)
    while data.rstrip(PADDING):
        end = int(data[:5]) - 1 if data[:5].isdigit() else 0
        if not (24 < end < len(data) and data[end - 1:end] == FIELD_TERMINATOR and data[end:end + 5].isdigit()):
            yield offset, data
            return
        yield offset, data[:end]
        offset += end
        data = data[end:]


def _parse_binary(data: bytes) -> tuple[str, Fields]:
    """Leader and the wanted fields of one binary record (data ends before the record
    terminator), not decoded; raises _Rejected for a record whose structure cannot be
    read. Missing indicators read as blank, extra ones are dropped (as pymarc does)."""
    if len(data) < 25:
        raise _Rejected(f"cannot be read: {len(data)} bytes, shorter than a leader and a directory")
    if not data[:24].isascii():
        raise _Rejected("cannot be read: the leader holds bytes that are not ASCII")
    leader = data[:24].decode("ascii")
    if leader[:5].isdigit() and int(leader[:5]) > len(data) + 1:
        raise _Rejected(f"cannot be read: truncated: leader/00-04 says {int(leader[:5])} bytes, the record has "
                        f"{len(data) + 1}")
    if not leader[12:17].isdigit():
        raise _Rejected(f"cannot be read: the base address (leader/12-16) {leader[12:17]!r} is not a number")
    base = int(leader[12:17])
    if base <= 24:
        raise _Rejected(f"cannot be read: the base address (leader/12-16) is {leader[12:17]}")
    if base > len(data):
        raise _Rejected(f"cannot be read: the base address (leader/12-16) {base} is past the end of the "
                        f"record ({len(data) + 1} bytes)")
    directory = data[24:base - 1]
    if not directory:
        raise _Rejected("cannot be read: no fields (the directory is empty)")
    entries = _DIRECTORY_ENTRY.findall(directory)
    if len(entries) * 12 != len(directory):  # fewer matches: an entry is not tag + 4 + 5 digits
        raise _Rejected("cannot be read: the directory is not a list of 12-character entries (tag, length, "
                        "offset)")
    fields: Fields = {}
    for tag, length, offset in entries:
        if tag not in WANTED_TAG_BYTES:
            continue
        start = base + int(offset)
        body = data[start:start + int(length)].removesuffix(FIELD_TERMINATOR)
        name = tag.decode("ascii")
        if tag < b"010" and tag.isdigit():
            fields.setdefault(name, []).append(body)
            continue
        indicators, *parts = body.split(SUBFIELD_DELIMITER)
        second = chr(indicators[1]) if len(indicators) > 1 else " "
        fields.setdefault(name, []).append((second, [(chr(part[0]), part[1:]) for part in parts if part]))
    return leader, fields


def _read_binary(fh: BinaryIO, collector: _Collector, forced: str | None, total: int,
                 progress: Progress | None) -> None:
    for offset, data in _chunks(fh):
        number = collector.start(offset)
        try:
            if data is None:
                raise _Rejected(f"no record terminator within {MAX_RECORD_LENGTH:,} bytes; skipped to the next one")
            leader, fields = _parse_binary(data)
            label = forced or _detect_encoding(data)
            collector.add(number, leader, fields, _decoder(label), label)
            declared = "utf-8" if leader[9] == "a" else "marc-8"
            if not forced and label != declared:
                collector.fallbacks[(declared, label)] += 1
        except _Rejected as exc:
            collector.reject(number, str(exc))
        if progress and number % PROGRESS_EVERY == 0:
            progress(offset + len(data or b""), total)


def _detect_encoding(data: bytes) -> str:
    declared = "utf-8" if data[9:10] == b"a" else "marc-8"
    if declared == "marc-8" and b"\x1b" in data:
        return "marc-8"
    if data.isascii():
        return declared
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    if not _NOT_ANSEL.search(data) and not _HIGH_RUN.search(data):
        return "marc-8"
    return "cp1251"


def _decoder(label: str) -> Text:
    if label == "marc-8":
        return _from_marc8

    def decode(value: bytes) -> str:
        if value.isascii():
            return value.decode("ascii")
        return unicodedata.normalize("NFC", value.decode(label))

    return decode


def _from_marc8(value: bytes) -> str:
    if value.isascii() and b"\x1b" not in value:
        return value.decode("ascii")
    return MARC8ToUnicode(quiet=True).translate(value)


def _from_xml(value: str) -> str:
    return value if value.isascii() else unicodedata.normalize("NFC", value)


class _CountingReader:
    """A binary file that counts the bytes the XML parser has read, for progress."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.done += len(data)
        return data

    def close(self) -> None:
        """The parser closes its source when done; the caller's `with` closes the file."""


class _MarcXmlHandler(XmlHandler):
    """pymarc's SAX handler, one record at a time, with the line each record starts on
    and the first error inside it: a malformed element rejects its record, the parse
    goes on."""

    def __init__(self, on_record: Callable[[Record, int, str | None], None]) -> None:
        super().__init__()
        self._on_record = on_record
        self._locator = None
        self._line = 0
        self._error: str | None = None

    def setDocumentLocator(self, locator) -> None:
        self._locator = locator

    def startElementNS(self, name, qname, attrs) -> None:
        if name[1] == "record":
            self._line = self._locator.getLineNumber() if self._locator else 0
            self._error = None
        try:
            super().startElementNS(name, qname, attrs)
        except Exception as exc:  # noqa: BLE001 - any malformed element rejects its record only
            self._error = self._error or f"<{name[1]}> is malformed ({type(exc).__name__}: {exc})"

    def endElementNS(self, name, qname) -> None:
        if name[1] == "record":
            super().endElementNS(name, qname)
            return
        try:
            super().endElementNS(name, qname)
        except Exception as exc:  # noqa: BLE001 - any malformed element rejects its record only
            self._error = self._error or f"<{name[1]}> is malformed ({type(exc).__name__}: {exc})"

    def process_record(self, record: Record) -> None:
        self._on_record(record, self._line, self._error)


def _read_xml(fh: BinaryIO, name: str, collector: _Collector, total: int, progress: Progress | None) -> None:
    source = _CountingReader(fh)

    def on_record(record: Record, line: int, error: str | None) -> None:
        number = collector.start(line)
        try:
            if error:
                raise _Rejected(error)
            fields: Fields = {}
            for f in record.fields:
                if f.tag in WANTED_TAGS:
                    fields.setdefault(f.tag, []).append(f.data if f.control_field else (f.indicator2, f.subfields))
            collector.add(number, str(record.leader), fields, _from_xml, "utf-8")
        except _Rejected as exc:
            collector.reject(number, str(exc))
        if progress and number % PROGRESS_EVERY == 0:
            progress(source.done, total)

    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setContentHandler(_MarcXmlHandler(on_record))
    input_source = xml.sax.xmlreader.InputSource(name)
    input_source.setByteStream(source)
    try:
        parser.parse(input_source)
    except xml.sax.SAXParseException as exc:
        raise InputError(
            f"{name}: not well-formed XML at line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
            f"{exc.getMessage()} ({collector.read} record(s) before it). Nothing was imported."
        ) from None
    except (xml.sax.SAXException, LookupError, UnicodeError) as exc:  # LookupError: an unknown declared encoding
        raise InputError(f"{name}: cannot be read as MARCXML: {exc}. Nothing was imported.") from None
    fh.seek(0)
    declared = re.search(rb"<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", fh.read(200))
    collector.xml_encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"


# ----------------------------------------------------------------------- mapping


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


def _bibliographic(leader: str, fields: Fields, text: Text) -> tuple[dict, str | None, list]:
    """(bibliographic columns, item tag, items) of one record; raises _Rejected."""
    if "245" not in fields:
        if "200" in fields:
            raise _Rejected("looks like UNIMARC (title in field 200, no 245), not MARC 21")
        if leader[6:7] in ("u", "v", "x", "y", "z"):
            kind = "an authority" if leader[6] == "z" else "a holdings"
            raise _Rejected(f"{kind} record (leader/06 '{leader[6]}'), not a bibliographic record")
        raise _Rejected("no title: the record has no field 245")
    title = _title(fields["245"][0], text)
    if not title:
        raise _Rejected("no title: field 245 has no $a")
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


# ----------------------------------------------------------------------- collecting


@dataclass
class _ItemRows(RawTable):
    """The items as canonical text columns; canonicalize names a row by its record."""

    collector: _Collector | None = None

    def where(self, data_row: int) -> str:
        return self.collector.item_place(data_row - 1)


class _Collector:
    """Counts records, keeps the rejected ones, and accumulates items as text columns
    (in frames of FRAME_BATCH rows)."""

    def __init__(self, name: str, unit: str) -> None:
        self.name = name
        self.unit = unit  # "byte" (binary) or "line" (MARCXML)
        self.read = 0
        self.positions = array("q")  # byte offset or line of each record
        self.rejections: list[tuple[int, str]] = []  # (record number, reason)
        self.reasons: Counter[str] = Counter()
        self.unimarc = 0
        self.encodings: Counter[str] = Counter()
        self.fallbacks: Counter[tuple[str, str]] = Counter()  # (declared, used)
        self.item_fields: Counter[str] = Counter()
        self.without_items = 0
        self.item_records = array("q")  # record number of each item
        self.item_numbers = array("l")  # place of each item in its record, 0 when it is the only one
        self.columns: dict[str, list] = {c: [] for c in COLUMNS}
        self.batches: list[pl.DataFrame] = []
        self.xml_encoding: str | None = None

    def start(self, position: int) -> int:
        """Count a record read (usable or not); its 1-based number."""
        self.read += 1
        self.positions.append(position)
        return self.read

    def place(self, number: int) -> str:
        return f"record {number} ({self.unit} {self.positions[number - 1]})"

    def item_place(self, index: int) -> str:
        place = self.place(self.item_records[index])
        return f"{place}, item {self.item_numbers[index]}" if self.item_numbers[index] else place

    def add(self, number: int, leader: str, fields: Fields, text: Text, label: str) -> None:
        try:
            bib, item_tag, items = _bibliographic(leader, fields, text)
        except _Rejected as exc:
            self.unimarc += str(exc).startswith("looks like UNIMARC")
            raise
        except (UnicodeError, ValueError, LookupError, TypeError, AttributeError) as exc:
            raise _Rejected(f"cannot be decoded as {ENCODING_LABELS.get(label, label)} "
                            f"({type(exc).__name__}: {exc})") from None
        self.encodings[label] += 1
        if item_tag is None:
            self.without_items += 1
        else:
            self.item_fields[item_tag] += len(items)
        stem = bib["title_id"] or f"record{number}"
        columns = self.columns
        for n, (barcode, call_number) in enumerate(items, start=1):
            columns["item_id"].append(barcode or f"{stem}-{n}")
            columns["call_number"].append(bib["call_number"] or call_number)
            for name in BIB_COLUMNS:
                columns[name].append(bib[name])
            self.item_records.append(number)
            self.item_numbers.append(n if len(items) > 1 else 0)
        if len(columns["item_id"]) >= FRAME_BATCH:
            self._flush()

    def reject(self, number: int, reason: str) -> None:
        self.rejections.append((number, reason))
        self.reasons[re.split(r"[:(;]", reason, maxsplit=1)[0].strip()] += 1

    def _flush(self) -> None:
        if self.columns["item_id"]:
            self.batches.append(pl.DataFrame(self.columns, schema=dict.fromkeys(COLUMNS, pl.String)))
            self.columns = {c: [] for c in COLUMNS}

    def finish(self, kind: str, forced: str | None) -> tuple[MarcImportReport, pl.DataFrame]:
        """The report and the typed items table, through the canonical import; raises
        InputError when no record is usable."""
        self._flush()
        name = self.name
        if self.read == 0:
            raise InputError(f"{name}: the file holds no MARC record. Nothing was imported.")
        usable = self.read - len(self.rejections)
        if self.unimarc and self.unimarc >= usable:
            first = next(number for number, reason in self.rejections if "UNIMARC" in reason)
            raise InputError(
                f"{name}: this is UNIMARC, not MARC 21: {self.unimarc} of {self.read} record(s) have their title in "
                f"field 200 and no 245 (the first is {self.place(first)}). Convert the records to MARC 21 (for "
                f"example with MarcEdit or USEMARCON) and import them again. Nothing was imported."
            )
        if usable == 0:
            number, reason = self.rejections[0]
            raise InputError(f"{name}: no MARC record could be read: all {self.read} record(s) were rejected "
                             f"(first: {self.place(number)}: {reason}). Nothing was imported.")
        items = pl.concat(self.batches) if len(self.batches) > 1 else self.batches[0]
        items_report = ImportReport(kind="items", file=name)
        frame = canonicalize(_ItemRows(items, name, "marc", collector=self), "items", {}, [], items_report)
        report = MarcImportReport(kind="marc", file=name, invalid_isbns=items_report.invalid_isbns,
                                  match=items_report.match, encoding=self._encoding(kind, forced))
        self._item_rejections(items["item_id"], frame["item_id"], items_report, report)
        report.read = self.read
        report.rejected = len(self.rejections)
        report.kept = self.read - report.rejected
        assert len({number for number, _ in self.rejections}) == report.rejected, "a record is rejected once"
        report.rejected_rows = [{"row": number, "reason": f"{self.place(number)}: {reason}"}
                                for number, reason in sorted(self.rejections)[:MAX_LISTED]]
        report.items = frame.height
        report.records_without_items = self.without_items
        report.item_fields = dict(self.item_fields)
        report.encodings = dict(self.encodings)
        report.warnings = self._warnings(report) + items_report.warnings
        return report, frame

    def _item_rejections(self, all_ids: pl.Series, kept_ids: pl.Series, items_report: ImportReport,
                         report: MarcImportReport) -> None:
        """Items the canonical rules refused: an item_id repeated (the same barcode
        twice, or two records with the same 001). A record whose every item was refused
        is rejected; other refused items are counted in a warning."""
        report.items_rejected = items_report.rejected
        if not items_report.rejected:
            return
        # canonicalize keeps rows in order: walk both lists to see which items survived.
        kept = kept_ids.to_list()
        kept_records: set[int] = set()
        refused: dict[int, str] = {}  # record -> its first refused item_id
        j = 0
        for item_id, number in zip(all_ids.to_list(), self.item_records, strict=True):
            if j < len(kept) and kept[j] == item_id:
                kept_records.add(number)
                j += 1
            else:
                refused.setdefault(number, item_id)
        for number, item_id in refused.items():
            if number not in kept_records:
                self.reject(number, f"every item was rejected: item_id {item_id!r} repeats an earlier item "
                                    f"(the same barcode, or the same 001)")
        listed = "; ".join(r["reason"] for r in items_report.rejected_rows[:3])
        more = "; ..." if items_report.rejected > 3 else ""
        report.warnings.append(f"{items_report.rejected} item(s) were rejected ({listed}{more}).")

    def _encoding(self, kind: str, forced: str | None) -> str:
        if kind == "xml":
            return self.xml_encoding or "utf-8"
        if forced or len(self.encodings) == 1:
            return forced or next(iter(self.encodings))
        return "mixed: " + ", ".join(f"{label} {n}" for label, n in self.encodings.most_common())

    def _warnings(self, report: MarcImportReport) -> list[str]:
        out = list(report.warnings)
        by_tag = ", ".join(f"{tag}: {n}" for tag, n in sorted(self.item_fields.items()))
        held = f"; {self.without_items} record(s) without an item field are held once each" \
            if self.without_items else ""
        out.insert(0, f"{report.kept} record(s) gave {report.items} item(s)"
                      + (f" (from item fields {by_tag})" if by_tag else "") + held + ".")
        for (declared, used), n in sorted(self.fallbacks.items()):
            says = "UTF-8 (leader/09 'a')" if declared == "utf-8" else "MARC-8 (leader/09 blank)"
            if used == "utf-8":
                out.append(f"{n} record(s) say {says} but are UTF-8; they were read as UTF-8.")
            else:
                out.append(f"{n} record(s) say {says} but hold bytes that are not valid in it; they were read "
                           f"as {ENCODING_LABELS.get(used, used)}. Check their titles, and name the encoding if "
                           f"they look wrong.")
        if report.rejected:
            counts = ", ".join(f"{reason} ({n})" for reason, n in self.reasons.most_common())
            more = f"; the first {MAX_LISTED} are listed" if report.rejected > MAX_LISTED else ""
            out.append(f"{report.rejected} record(s) rejected: {counts}{more}.")
        return out
