"""Reading MARC 21 files: binary records cut at their terminators, MARCXML by SAX, and the encodings.

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
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import xml.sax
from collections.abc import Callable, Iterator
from typing import BinaryIO

from pymarc import Record
from pymarc.marc8 import MARC8ToUnicode
from pymarc.marc8_mapping import CODESETS
from pymarc.marcxml import XmlHandler

from analytics.ingest.marc_collect import Collector
from analytics.ingest.marc_fields import FIRST_INDICATOR_TAGS, WANTED_TAGS, Fields, Rejected, Text
from analytics.ingest.reader import InputError

PROGRESS_EVERY = 1_000
BLOCK_SIZE = 1 << 20
MAX_RECORD_LENGTH = 99_999  # leader/00-04 has five digits

RECORD_TERMINATOR = b"\x1d"
FIELD_TERMINATOR = b"\x1e"
SUBFIELD_DELIMITER = b"\x1f"
PADDING = b" \t\r\n\x00"
WANTED_TAG_BYTES = frozenset(tag.encode("ascii") for tag in WANTED_TAGS)
_DIRECTORY_ENTRY = re.compile(rb"(...)([0-9]{4})([0-9]{5})", re.DOTALL)
# Bytes that never occur in MARC-8 text with the default G0/G1 (ASCII/ANSEL): C1 controls
# other than the joiners, and the holes of the ANSEL table. Cyrillic in cp1251 hits them.
_NOT_ANSEL = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in range(0x80, 0x100)
                                          if b not in CODESETS[0x45]) + b"]")
_HIGH_RUN = re.compile(rb"[\x80-\xff]{5,}")  # up to three diacritics and a special letter

Progress = Callable[[int, int | None], None]


def forced_encoding(encoding: str | None) -> str | None:
    if not encoding:
        return None
    if encoding.lower().replace("_", "-") in ("marc-8", "marc8"):
        return "marc-8"
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"encoding {encoding!r} is not known; use marc-8, utf-8, cp1251, cp1252, ...") from None


def sniff(fh: BinaryIO, name: str) -> str:
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
    terminator), not decoded; raises Rejected for a record whose structure cannot be
    read. Missing indicators read as blank, extra ones are dropped (as pymarc does)."""
    if len(data) < 25:
        raise Rejected(f"cannot be read: {len(data)} bytes, shorter than a leader and a directory")
    if not data[:24].isascii():
        raise Rejected("cannot be read: the leader holds bytes that are not ASCII")
    leader = data[:24].decode("ascii")
    if leader[:5].isdigit() and int(leader[:5]) > len(data) + 1:
        raise Rejected(f"cannot be read: truncated: leader/00-04 says {int(leader[:5])} bytes, the record has "
                        f"{len(data) + 1}")
    if not leader[12:17].isdigit():
        raise Rejected(f"cannot be read: the base address (leader/12-16) {leader[12:17]!r} is not a number")
    base = int(leader[12:17])
    if base <= 24:
        raise Rejected(f"cannot be read: the base address (leader/12-16) is {leader[12:17]}")
    if base > len(data):
        raise Rejected(f"cannot be read: the base address (leader/12-16) {base} is past the end of the "
                        f"record ({len(data) + 1} bytes)")
    directory = data[24:base - 1]
    if not directory:
        raise Rejected("cannot be read: no fields (the directory is empty)")
    entries = _DIRECTORY_ENTRY.findall(directory)
    if len(entries) * 12 != len(directory):  # fewer matches: an entry is not tag + 4 + 5 digits
        raise Rejected("cannot be read: the directory is not a list of 12-character entries (tag, length, "
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
        if name in FIRST_INDICATOR_TAGS:
            second = chr(indicators[0]) if indicators else " "
        fields.setdefault(name, []).append((second, [(chr(part[0]), part[1:]) for part in parts if part]))
    return leader, fields


def read_binary(fh: BinaryIO, collector: Collector, forced: str | None, total: int,
                 progress: Progress | None) -> None:
    for offset, data in _chunks(fh):
        number = collector.start(offset)
        try:
            if data is None:
                raise Rejected(f"no record terminator within {MAX_RECORD_LENGTH:,} bytes; skipped to the next one")
            leader, fields = _parse_binary(data)
            label = forced or _detect_encoding(data)
            collector.add(number, leader, fields, _decoder(label), label)
            declared = "utf-8" if leader[9] == "a" else "marc-8"
            if not forced and label != declared:
                collector.fallbacks[(declared, label)] += 1
        except Rejected as exc:
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


def read_xml(fh: BinaryIO, name: str, collector: Collector, total: int, progress: Progress | None) -> None:
    source = _CountingReader(fh)

    def on_record(record: Record, line: int, error: str | None) -> None:
        number = collector.start(line)
        try:
            if error:
                raise Rejected(error)
            fields: Fields = {}
            for f in record.fields:
                if f.tag in WANTED_TAGS:
                    indicator = f.indicator1 if f.tag in FIRST_INDICATOR_TAGS else f.indicator2
                    fields.setdefault(f.tag, []).append(f.data if f.control_field else (indicator, f.subfields))
            collector.add(number, str(record.leader), fields, _from_xml, "utf-8")
        except Rejected as exc:
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
