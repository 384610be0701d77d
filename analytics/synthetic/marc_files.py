"""Synthetic MARC 21 records, for the performance harness and the tests of the MARC import."""

from __future__ import annotations

import random
from pathlib import Path

from pymarc import Field, Indicators, Record, Subfield

from analytics.ingest.identifiers import isbn13


def _isbn13(rng: random.Random) -> str:
    return isbn13([int("978" + "".join(str(rng.randrange(10)) for _ in range(9)))])[0]


def generate_marc(path: str | Path, records: int, *, seed: int = 0) -> Path:
    """Write `records` synthetic MARC 21 records (UTF-8) for benchmarks, with 001, 003,
    008, 020, 035, 050, 100, 245, 260 and 0-3 copies in 852 (barcode $p); every tenth
    record is an e-book (007 "cr", 856 40) without copies."""
    rng = random.Random(seed)
    words = ("open", "source", "library", "données", "history", "Straße", "науки", "systems", "data", "études")
    path = Path(path)
    with open(path, "wb") as out:
        for n in range(1, records + 1):
            electronic = n % 10 == 0
            year = 1950 + n % 75
            record = Record(force_utf8=True, leader="00000nam a2200000 a 4500")
            record.add_field(Field(tag="001", data=f"bib{n:08d}"), Field(tag="003", data="XX-XxXX"))
            if electronic:
                record.add_field(Field(tag="007", data="cr |||||||||||"))
            record.add_field(
                Field(tag="008", data=f"200101s{year}    xxu           000 0 eng d"),
                Field(tag="020", indicators=Indicators(" ", " "), subfields=[Subfield("a", f"{_isbn13(rng)} (pbk.)")]),
                Field(tag="035", indicators=Indicators(" ", " "), subfields=[Subfield("a", f"(OCoLC)ocm{n:08d}")]),
                Field(tag="050", indicators=Indicators("0", "0"),
                      subfields=[Subfield("a", f"QA{rng.randrange(1, 999)}.{rng.randrange(10, 99)}"),
                                 Subfield("b", f".A{rng.randrange(10, 99)} {year}")]),
                Field(tag="100", indicators=Indicators("1", " "), subfields=[Subfield("a", f"Author{n % 997}, A.,")]),
                Field(tag="245", indicators=Indicators("1", "0"),
                      subfields=[Subfield("a", " ".join(rng.choice(words) for _ in range(3)).capitalize() + " :"),
                                 Subfield("b", "a synthetic record /"), Subfield("c", "by someone.")]),
                Field(tag="260", indicators=Indicators(" ", " "),
                      subfields=[Subfield("a", "Anytown :"), Subfield("b", f"Publisher {n % 50},"),
                                 Subfield("c", f"c{year}.")]),
            )
            if electronic:
                record.add_field(Field(tag="856", indicators=Indicators("4", "0"),
                                       subfields=[Subfield("u", f"https://example.org/ebook/{n}")]))
            else:
                for copy in range(rng.randrange(4)):
                    record.add_field(Field(tag="852", indicators=Indicators("0", " "),
                                           subfields=[Subfield("b", "MAIN"), Subfield("h", "QA76.73"),
                                                      Subfield("p", f"3{n:09d}{copy}")]))
            out.write(record.as_marc())
    return path
