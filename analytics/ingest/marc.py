"""Import of MARC 21 bibliographic records (binary or MARCXML) as the items table.

Each MARC record is one title; each of its holdings/item fields is one held copy. The
items are built as a frame of text columns with the canonical names and passed through
the canonical import (tabular.canonicalize), so typing, accepted values, ISBN, ISSN and
OCLC normalization and work keys are exactly those of `import CODE items`.

The mapping of fields to columns and of item fields to items: marc_fields.py. Reading
binary MARC and MARCXML, and the encodings: marc_read.py. Counting, rejecting and typing
the records' items: marc_collect.py.

Retention commitments: the public 583 action notes "committed to retain" of the records
(marc_fields.commitments) go through the canonical retention-commitments rules into
retention_commitments.parquet, which they replace when the file holds any (a file without
them leaves the table as it is). A 583 whose $5 names an institution other than the importing
one (its code, or the MARC organization codes given as `symbols`) is someone else's commitment:
skipped and counted. $5 is never stored.

Progress: progress(bytes_read, file_size) every 1,000 records and once at the end.
"""

from __future__ import annotations

from pathlib import Path

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import TABLE_FILES
from analytics.ingest.marc_collect import Collector
from analytics.ingest.marc_read import Progress, forced_encoding, read_binary, read_xml, sniff
from analytics.ingest.reader import InputError
from analytics.ingest.tabular import ImportReport, institution_dir, write_atomically


def import_marc(data_dir: Path, actor: Principal, code: str, path: str | Path, *,
                display_name: str | None = None, progress: Progress | None = None,
                encoding: str | None = None, symbols: tuple[str, ...] = ()) -> ImportReport:
    """Read MARC 21 records (binary or MARCXML) and replace the institution's items table.

    Raises InputError (nothing changed) when the file is not MARC 21 or no record is
    usable, PermissionDenied if the actor may not import for this institution.
    """
    access.require_admin(actor, code, "the institution's data (imports)")
    path = Path(path)
    name = display_name or path.name
    forced = forced_encoding(encoding)
    if not path.is_file():
        raise InputError(f"{name}: no such file.")
    total = path.stat().st_size
    with open(path, "rb") as fh:
        kind = sniff(fh, name)
        collector = Collector(name, "line" if kind == "xml" else "byte", frozenset((code, *symbols)))
        if kind == "xml":
            read_xml(fh, name, collector, total, progress)
        else:
            read_binary(fh, collector, forced, total, progress)
    if progress:
        progress(total, total)
    report, frame = collector.finish(kind, forced)
    committed_report, committed = collector.commitments_frame()
    target = institution_dir(data_dir, code) / TABLE_FILES["items"]
    report.table = str(target)
    write_atomically(frame, target)
    report.warnings.extend(_commitment_warnings(collector, committed_report))
    if committed is not None:
        commitments = institution_dir(data_dir, code) / TABLE_FILES["retention-commitments"]
        write_atomically(committed, commitments)
        report.commitments = committed.height
        report.commitments_table = str(commitments)
    return report


def _commitment_warnings(collector: Collector, committed: ImportReport | None) -> list[str]:
    out = []
    if committed is not None:
        out.append(f"{committed.kept} retention commitment(s) (583 committed to retain) stored"
                   + (f"; {committed.rejected} left out ({'; '.join(r['reason'] for r in committed.rejected_rows[:3])})"
                      if committed.rejected else "") + ".")
    if collector.others:
        named = ", ".join(f"{symbol} ({n})" for symbol, n in collector.others.most_common(5))
        out.append(f"{sum(collector.others.values())} commitment(s) name another institution in 583 $5 and were "
                   f"skipped: {named}. If one of these is your own MARC organization code, import again naming it "
                   f"(--marc-symbol).")
    shown = collector.commitment_problems[:10]
    out.extend(shown)
    if len(collector.commitment_problems) > len(shown):
        out.append(f"... and {len(collector.commitment_problems) - len(shown)} more 583 problem(s).")
    return out
