"""Read a tabular file (CSV, TSV, Excel, Parquet) into a frame of strings.

Everything is read as text first so that validation can name the exact row and column
of a bad value instead of failing inside a type cast. Encodings are handled here:
UTF-8 (with or without BOM) first, then Windows-1252, the usual encoding of
spreadsheet exports on Windows; the report says which one was used.
"""

from __future__ import annotations

from analytics.core.errors import UserError

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

# Limits checked while reading, before anything is inflated into memory (README, "Import
# limits"). Excel's own sheet holds at most 1,048,576 rows; a 2 MB workbook that claims
# 4 million rows is a decompression bomb, not an export.
DEFAULT_MAX_ROWS = 20_000_000
EXCEL_MAX_ROWS = 1_048_576
DEFAULT_MAX_INFLATED_MB = 1024
_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>/]")


@dataclass(frozen=True)
class Limits:
    max_rows: int = DEFAULT_MAX_ROWS
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_MB << 20

    @classmethod
    def from_env(cls) -> "Limits":
        """IMPORT_MAX_ROWS (data rows of one file) and IMPORT_MAX_INFLATED_MB (what a
        compressed workbook may expand to), from the environment or the defaults."""
        def number(name: str, default: int) -> int:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) <= 0:
                raise InputError(f"environment variable {name} must be a positive whole number, got {raw!r}.")
            return int(raw)
        return cls(number("IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS),
                   number("IMPORT_MAX_INFLATED_MB", DEFAULT_MAX_INFLATED_MB) << 20)


class InputError(UserError):
    """Bad input. The message names the file and, where it can, the row and column."""


@dataclass
class RawTable:
    frame: pl.DataFrame
    file_name: str
    file_format: str  # csv | tsv | xlsx | parquet
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)

    def where(self, data_row: int) -> str:
        """How a user finds data row N (1-based, header excluded) in their own tool."""
        if self.file_format in ("csv", "tsv"):
            return f"row {data_row} (line {data_row + 1})"
        if self.file_format == "xlsx":
            return f"row {data_row} (sheet row {data_row + 1})"
        return f"row {data_row}"


SUPPORTED = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "xlsx",
             ".xlsm": "xlsx", ".parquet": "parquet"}


def file_format(path: Path) -> str:
    fmt = SUPPORTED.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
            f"use CSV, TSV, Excel (.xlsx) or Parquet."
        )
    return fmt


def read_table(path: str | Path, encoding: str | None = None, display_name: str | None = None) -> RawTable:
    path = Path(path)
    name = display_name or path.name
    if not path.exists():
        raise InputError(f"{name}: no such file.")
    fmt = file_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty (no header row, no data).")
    limits = Limits.from_env()
    if fmt in ("csv", "tsv"):
        table = _read_delimited(path, name, fmt, encoding, limits)
    elif fmt == "xlsx":
        _check_workbook(path, name, limits)
        table = _read_excel(path, name)
    else:
        _check_parquet(path, name, limits)
        table = _read_parquet(path, name)
    if table.frame.width == 0:
        raise InputError(f"{name}: no header row found.")
    if table.frame.height == 0:
        raise InputError(f"{name}: the file has a header row but no data rows.")
    return table


def decode(raw: bytes, name: str, encoding: str | None) -> tuple[str, str, list[str]]:
    """Text of the file, the encoding used, and warnings for the report."""
    warnings: list[str] = []
    if encoding:
        try:
            return raw.decode(encoding), encoding, warnings
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(f"{name}: cannot be read as {encoding}: {exc}.") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8", warnings
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start:exc.start + 1].hex()
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(
                f"{name}: line {line} has byte 0x{bad} that is neither UTF-8 nor Windows-1252. "
                f"Save the file as UTF-8, or name its encoding (--encoding)."
            ) from None
        warnings.append(
            f"The file is not UTF-8 (byte 0x{bad} on line {line}); it was read as Windows-1252. "
            f"Check accented letters in the preview; name another encoding with --encoding if they look wrong."
        )
        return text, "windows-1252", warnings


def _separator(first_line: str, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _too_many_rows(name: str, rows: int, limits: Limits) -> InputError:
    return InputError(f"{name}: more than {limits.max_rows:,} data rows ({rows:,} found); split the file, or raise "
                      f"the limit with IMPORT_MAX_ROWS. Nothing was imported.")


def _read_delimited(path: Path, name: str, fmt: str, encoding: str | None, limits: Limits = Limits()) -> RawTable:
    raw = path.read_bytes()
    lines = raw.count(b"\n")
    if lines - 1 > limits.max_rows:
        raise _too_many_rows(name, lines - 1, limits)
    text, used, warnings = decode(raw, name, encoding)
    if not text.strip():
        raise InputError(f"{name}: the file is empty (no header row, no data).")
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    sep = _separator(first_line, fmt)
    data = raw if used == "utf-8" else text.encode("utf-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        frame = pl.read_csv(io.BytesIO(data), separator=sep, infer_schema=False, has_header=True,
                            quote_char='"', empty_string_is_null=True)
    except pl.exceptions.NoDataError:
        raise InputError(f"{name}: the file is empty (no header row, no data).") from None
    except pl.exceptions.ComputeError as exc:
        raise InputError(f"{name}: not a well-formed {'TSV' if sep == chr(9) else 'CSV'} file: "
                         f"{_first_line(exc)}") from None
    return RawTable(frame, name, fmt, used, warnings)


def _check_workbook(path: Path, name: str, limits: Limits) -> None:
    """Inflate every part of the workbook in chunks, counting bytes and worksheet rows, and
    refuse it as soon as it exceeds a limit: nothing large is ever held in memory, and the
    sizes the archive claims are not trusted."""
    max_rows = min(limits.max_rows, EXCEL_MAX_ROWS)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{name}: cannot be read as an Excel workbook: {_first_line(exc)}") from None
    inflated = 0
    with archive:
        for member in archive.infolist():
            sheet = member.filename.startswith("xl/worksheets/") and member.filename.endswith(".xml")
            rows, tail = 0, b""
            try:
                with archive.open(member) as part:
                    while chunk := part.read(1 << 20):
                        inflated += len(chunk)
                        if inflated > limits.max_inflated_bytes:
                            raise InputError(
                                f"{name}: the workbook expands to more than {limits.max_inflated_bytes >> 20:,} MB "
                                f"when unpacked ({member.filename}); save it as CSV, or raise the limit with "
                                f"IMPORT_MAX_INFLATED_MB. Nothing was imported.")
                        if sheet:
                            window = tail + chunk
                            rows += len(_ROW_TAG.findall(window)) - len(_ROW_TAG.findall(tail))
                            tail = window[-16:]
                            if rows - 1 > max_rows:
                                where = "Excel's limit of 1,048,576 rows a sheet" if max_rows == EXCEL_MAX_ROWS \
                                    else f"the limit of {max_rows:,} rows (IMPORT_MAX_ROWS)"
                                raise InputError(f"{name}: {member.filename} has more rows than {where}; "
                                                 f"it is not a workbook this import reads. Nothing was imported.")
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                raise InputError(f"{name}: cannot be read as an Excel workbook: {_first_line(exc)}") from None


def _check_parquet(path: Path, name: str, limits: Limits) -> None:
    try:
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except Exception:  # unreadable: _read_parquet reports it
        return
    if rows > limits.max_rows:
        raise _too_many_rows(name, rows, limits)


def _read_excel(path: Path, name: str) -> RawTable:
    try:
        frame = pl.read_excel(path, engine="calamine", infer_schema_length=0, raise_if_empty=False)
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        raise InputError(f"{name}: cannot be read as an Excel workbook: {_first_line(exc)}") from None
    frame = frame.with_columns(pl.all().cast(pl.String))
    return RawTable(frame, name, "xlsx")


def _read_parquet(path: Path, name: str) -> RawTable:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # pyarrow/polars raise several types for corrupt files
        raise InputError(f"{name}: cannot be read as Parquet: {_first_line(exc)}") from None
    frame = frame.with_columns(pl.all().cast(pl.String))
    return RawTable(frame, name, "parquet")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
