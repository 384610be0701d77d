"""Months and the reporting window: the one place for month arithmetic.

Months are written "YYYY-MM" (strings sort like dates). The reporting window of a release
is fixed when it is published: its manifest carries `as_of` (the data date) and
`window.start` (the first month of its history, `history_start`). Every view reads the
window from the manifest through `windows()`; nothing downstream looks at the clock.

- The last complete month is the month before `as_of`'s month.
- The history is `HISTORY_MONTHS` months ending with `as_of`'s month.
- A window of W months: "recent" is the last W complete months, "baseline" the W before.
"""

from __future__ import annotations

from datetime import date

HISTORY_MONTHS = 36
WINDOWS = (3, 6, 12)  # the trending windows a page offers, in months


def month_of(day: date) -> str:
    """The month of a date, "YYYY-MM"."""
    return f"{day.year:04d}-{day.month:02d}"


def add(month: str, delta: int) -> str:
    """The month `delta` months after `month` (before, when negative)."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def shift(day: date, delta: int) -> date:
    """The first day of the month `delta` months from `day`'s month."""
    return first_day(add(month_of(day), delta))


def count(first: str, last: str) -> int:
    """How many months from `first` to `last`, both included."""
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1


def last_complete(as_of: date) -> str:
    """The last complete month before the data date."""
    return add(month_of(as_of), -1)


def history_start(as_of: date, months: int = HISTORY_MONTHS) -> str:
    """The first month of a release's history: `months` months ending with as_of's month.
    Publish writes it in the manifest (`window.start`)."""
    return add(month_of(as_of), -(months - 1))


def windows(manifest: dict, window: int) -> dict[str, str]:
    """Recent and baseline windows of `window` months, ending with the last complete month
    before the release's as-of date, and the start of its history, from the manifest."""
    end = last_complete(date.fromisoformat(manifest["as_of"]))
    # Releases before window.start was written: 36 months ending with the last complete month.
    start = manifest.get("window", {}).get("start", add(end, -(HISTORY_MONTHS - 1)))
    return {"recent_start": add(end, -(window - 1)), "recent_end": end,
            "baseline_start": add(end, -(2 * window - 1)), "baseline_end": add(end, -window),
            "history_start": start}
