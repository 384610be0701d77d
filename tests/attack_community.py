"""Seeded synthetic communities and attacker tooling for the attack suite (tests/release/test_attacks.py).

A `Library` is one institution's own data written as plain Python (which works it holds,
when it acquired them, its loans per work and month, its title for each work), so a test
knows every institution's true figures without reading contributions or the control
database. `Library.member()` turns it into a tests.community.Member for `build`.

The attacker side (`kept`, `released_strings`) reads release files only, through the
release schema: what a member can keep of every release it was shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from analytics.release.manifest import read_manifest, release_path
from analytics.core.schema import SERVICES
from analytics.control.store import Store
from tests.community import SYSTEM, Member, items_csv, loans_csv

COLLECTION = ("collection_development", "recommendations")


def isbn13(n: int) -> str:
    """A valid ISBN-13 (978 prefix) for work number n."""
    base = f"978{n:09d}"
    total = sum((1 if i % 2 == 0 else 3) * int(d) for i, d in enumerate(base))
    return base + str((10 - total % 10) % 10)


def work_key(n: int) -> str:
    """The community work key of work n: every holder records it with the same single ISBN."""
    return f"isbn:{isbn13(n)}"


def months(first: str, last: str) -> list[str]:
    """YYYY-MM strings from first to last inclusive."""
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@dataclass
class Library:
    """One institution's own data: one copy per held work."""

    code: str
    type: str = "research"
    fte: int = 10_000
    region: str = "EU"
    services: tuple[str, ...] = SERVICES
    name: str | None = None
    held: dict[int, date] = field(default_factory=dict)  # work -> acquired date
    loans: dict[tuple[int, str], int] = field(default_factory=dict)  # (work, YYYY-MM) -> loans
    titles: dict[int, str] = field(default_factory=dict)  # work -> this library's title (default shared)

    def item_id(self, work: int) -> str:
        return f"{self.code}-{work:06d}"

    def title(self, work: int) -> str:
        return self.titles.get(work, f"Title of work {work}")

    def member(self) -> Member:
        items = [(self.item_id(w), self.title(w), f"Author{w}, Alex", isbn13(w), f"QA{1 + w % 90} .A{1 + w % 9}",
                  acquired.isoformat(), 1950 + w % 70) for w, acquired in sorted(self.held.items())]
        tables = {"items": items_csv(items)}
        rows = [(self.item_id(w), month, n) for (w, month), n in sorted(self.loans.items()) if n > 0]
        if rows:
            tables["loans"] = loans_csv(rows)
        return Member(self.code, region=self.region, type=self.type, fte=self.fte, services=self.services,
                      name=self.name, tables=tables)

    def loans_of(self, work: int, month: str) -> int:
        return self.loans.get((work, month), 0)


def opt_in(store: Store, code: str, service: str, now: datetime) -> None:
    """The institution's admin turns one service on at `now`."""
    admin = store.user(f"admin@{code.lower()}.example.org").principal()
    store.set_sharing(admin, code, service, True, store.institution(admin, code).version, now=now)


def institution(store: Store, code: str):
    return next(i for i in store.list_institutions(SYSTEM) if i.code == code)


# -- the attacker: what it keeps of a release ------------------------------------------------------


@dataclass
class Kept:
    """Every file of one release as the attacker saved it, plus its manifest."""

    release_id: str
    manifest: dict
    tables: dict[str, pl.DataFrame]

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.tables[name]

    @property
    def as_of_month(self) -> str:
        return self.manifest["as_of"][:7]

    @property
    def k_title(self) -> int:
        return int(self.manifest["privacy"]["K_TITLE"])


def kept(settings, release_id: str) -> Kept:
    """Read a release completely into memory (later publishes may delete it from disk)."""
    path = release_path(settings.community_dir, release_id)
    tables = {p.relative_to(path).as_posix(): pl.read_parquet(p) for p in sorted(path.rglob("*.parquet"))}
    return Kept(release_id, read_manifest(path), tables)


def released_strings(release: Kept) -> list[tuple[str, str, str]]:
    """(file, column, value) of every string a release holds, list elements included."""
    out = []
    for name, frame in release.tables.items():
        for column, dtype in frame.schema.items():
            if dtype == pl.String:
                values = frame[column].drop_nulls().unique().to_list()
            elif dtype == pl.List(pl.String):
                values = frame[column].explode().drop_nulls().unique().to_list()
            else:
                continue
            out += [(name, column, v) for v in values]
    return out


def normalise(text: str) -> str:
    """Case, punctuation and whitespace folded away: what 'holders agree on a title' compares."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def rate(hits: int, cells: int) -> float:
    return hits / cells if cells else 0.0


def relative_hit(estimate: float, truth: float, tolerance: float = 0.01) -> bool:
    """Within `tolerance` relative of the truth (a zero truth needs an estimate of zero)."""
    return abs(estimate - truth) <= max(tolerance * abs(truth), 1e-9)
