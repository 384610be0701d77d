"""Synthetic COUNTER reports, for the performance harness and the tests of the COUNTER import."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from stdnum import issn as stdnum_issn

from analytics.core.months import add, first_day, month_of, shift


def generate_counter_tsv(path: str | Path, titles: int, months: int, *, platform: str = "Generated Platform",
                         start: date = date(2022, 1, 1), seed: int = 0) -> int:
    """Write a COUNTER R5 TR_J1 TSV: `titles` journals x 2 metrics x `months` month columns.

    Returns the number of monthly cells (titles * 2 * months). Counts are random, about
    one in eight zero; ISSNs are valid and distinct. For performance measurements.
    """
    rng = random.Random(seed)
    covered = [first_day(add(month_of(start), n)) for n in range(months)]
    labels = [month.strftime("%b-%Y") for month in covered]
    last = shift(covered[-1], 1) - timedelta(days=1)
    lines = [
        "Report_Name\tJournal Requests (Excluding OA_Gold)", "Report_ID\tTR_J1", "Release\t5",
        "Institution_Name\tGenerated Institution", "Institution_ID\tISNI:0000000000000000",
        "Metric_Types\tTotal_Item_Requests; Unique_Item_Requests",
        "Report_Filters\tData_Type=Journal; Access_Type=Controlled; Access_Method=Regular",
        "Report_Attributes", "Exceptions", f"Reporting_Period\tBegin_Date={start.replace(day=1)}; End_Date={last}",
        "Created\t2023-01-15T10:00:00Z", f"Created_By\t{platform}", "",
        "\t".join(["Title", "Publisher", "Publisher_ID", "Platform", "DOI", "Proprietary_ID", "Print_ISSN",
                   "Online_ISSN", "URI", "Metric_Type", "Reporting_Period_Total", *labels]),
    ]
    for number in range(titles):
        issn = _issn(1_000_000 + number)
        total = [rng.choice((0, rng.randint(1, 400))) if rng.random() < 0.25 else rng.randint(1, 400)
                 for _ in range(months)]
        unique = [max(0, value - rng.randint(0, value)) if value else 0 for value in total]
        for metric, counts in (("Total_Item_Requests", total), ("Unique_Item_Requests", unique)):
            lines.append("\t".join([f"Generated Journal {number}", "Generated Publisher", "", platform, "",
                                    f"gen:{number}", issn, "", "", metric, str(sum(counts)), *map(str, counts)]))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return titles * 2 * months


def _issn(body: int) -> str:
    """A valid ISSN ("1234-5679") from 7 digits."""
    digits = f"{body:07d}"
    return stdnum_issn.format(digits + stdnum_issn.calc_check_digit(digits))
