"""Build small constructed communities for tests, where the right answer is known by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from analytics.core.access import Principal
from analytics.core.config import Settings, load_settings
from analytics.ingest.tabular import import_file
from analytics.core.schema import SERVICES
from analytics.control.store import Store

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
        _fixed_noise_key(store, member.code)
        for kind, text in member.tables.items():
            path = data_dir.parent / f"{member.code}-{kind}.csv"
            path.write_text(text)
            import_file(settings.data_dir, SYSTEM, member.code, kind, path)
        for service in member.services:
            version = store.institution(admin, member.code).version
            store.set_sharing(admin, member.code, service, True, version, now=joined)
    return settings, store


def _fixed_noise_key(store: Store, code: str) -> None:
    """A disclosure secret derived from the code, so that a test's protected release is the same
    on every run (in production each secret is random: store.new_secret)."""
    import hashlib

    from analytics.control.store import noise_keys

    secret = hashlib.sha256(f"test noise key {code}".encode()).hexdigest()
    with store.engine.begin() as con:
        con.execute(noise_keys.insert().values(institution_code=code, secret=secret, created_at=JOINED))


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


def publish_exact(settings: Settings, store: Store, **kwargs) -> str:
    """A release without the disclosure layer (publish(protect=False)), for tests that check the
    aggregation arithmetic by hand; the layer itself is tested in test_disclosure and test_attacks."""
    from analytics.release.publish import publish

    return publish(settings, store, protect=False, **kwargs)


def verify_exact(settings: Settings, store: Store, release_id: str | None = None) -> list[str]:
    from analytics.release.manifest import verify_release

    return verify_release(settings, store, release_id, allow_unprotected=True)


def share_noise_keys(source: Store, target: Store, codes: list[str]) -> None:
    """Give `target`'s institutions the disclosure secrets they have in `source`, so that two
    communities can be compared release for release."""
    from analytics.control.store import noise_keys

    with source.engine.connect() as con:
        rows = con.execute(noise_keys.select().where(noise_keys.c.institution_code.in_(codes))).mappings().all()
    with target.engine.begin() as con:
        con.execute(noise_keys.delete().where(noise_keys.c.institution_code.in_(codes)))
        con.execute(noise_keys.insert(), [dict(r) for r in rows])
