"""Build small constructed communities for tests, where the right answer is known by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from analytics.access import Principal
from analytics.config import Settings, load_settings
from analytics.ingest.tabular import import_file
from analytics.schema import SERVICES
from analytics.store import Store

SYSTEM = Principal.system_job()
JOINED = datetime(2024, 1, 10, tzinfo=timezone.utc)


@dataclass
class Member:
    code: str
    region: str = "EU"
    type: str = "research"
    fte: int = 10_000
    go_live: date = date(2020, 1, 1)
    name: str | None = None
    consortium: str | None = None
    tables: dict[str, str] = field(default_factory=dict)  # kind -> CSV text
    services: tuple[str, ...] = SERVICES


def build(data_dir: Path, members: list[Member], joined: datetime = JOINED) -> tuple[Settings, Store]:
    """Institutions, an admin each, their files imported, and their chosen services on since `joined`."""
    settings = load_settings(data_dir)
    store = Store.from_settings(settings)
    for member in members:
        store.add_institution(SYSTEM, code=member.code, name=member.name or f"Institution {member.code}",
                              type=member.type, region=member.region, fte_students=member.fte,
                              go_live_date=member.go_live, consortium=member.consortium)
        admin = store.add_user(SYSTEM, f"admin@{member.code.lower()}.example.org", member.code, ["admin"]).principal()
        for kind, text in member.tables.items():
            path = data_dir.parent / f"{member.code}-{kind}.csv"
            path.write_text(text)
            import_file(settings.data_dir, SYSTEM, member.code, kind, path)
        for service in member.services:
            version = store.institution(admin, member.code).version
            store.set_sharing(admin, member.code, service, True, version, now=joined)
    return settings, store


def opt_out(store: Store, code: str, service: str, now: datetime) -> None:
    admin = store.user(f"admin@{code.lower()}.example.org").principal()
    store.set_sharing(admin, code, service, False, store.institution(admin, code).version, now=now)


def items_csv(rows: list[tuple]) -> str:
    """rows of (item_id, title, author, isbn, call_number, acquired_date[, pub_year])."""
    lines = ["item_id,title,author,isbn,call_number,acquired_date,pub_year"]
    lines += [",".join(f'"{v}"' for v in (tuple(row) + ("",))[:7]) for row in rows]
    return "\n".join(lines) + "\n"


def loans_csv(rows: list[tuple]) -> str:
    """rows of (item_id, month YYYY-MM, count)."""
    return "item_id,loan_date,count\n" + "".join(f"{i},{m},{c}\n" for i, m, c in rows)
