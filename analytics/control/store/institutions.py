"""Institutions: registration, the profile (General section) and its version lock."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime

import sqlalchemy as sa

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import INSTITUTION_TYPES, REGIONS, size_band
from analytics.control.store.audit import write_audit
from analytics.control.store.errors import ChangedMeanwhile, NotFound, StoreError
from analytics.control.store.tables import institutions, utcnow

PROFILE_FIELDS = ("name", "type", "region", "country", "fte_students", "consortium", "go_live_date")
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    type: str
    region: str
    country: str | None
    fte_students: int | None
    consortium: str | None
    go_live_date: date
    version: int

    @property
    def size_band(self) -> str:
        return size_band(self.fte_students)

    @property
    def first_anniversary(self) -> date:
        try:
            return self.go_live_date.replace(year=self.go_live_date.year + 1)
        except ValueError:  # went live on 29 February
            return date(self.go_live_date.year + 1, 3, 1)

    def live_for_a_year(self, on: date) -> bool:
        """Institutions live for less than a year may view benchmarks but do not contribute."""
        return on >= self.first_anniversary

    def as_record(self) -> dict:
        record = asdict(self)
        record.pop("version")
        return record

    @classmethod
    def from_row(cls, row) -> Institution:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


def validate_profile(values: dict) -> dict:
    """Check and clean the General section. Raises StoreError naming the field."""
    clean: dict = {}
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name:
            raise StoreError("name: the institution needs a name.")
        if len(name) > 200:
            raise StoreError("name: at most 200 characters.")
        clean["name"] = name
    if "type" in values:
        kind = str(values["type"] or "").strip().lower()
        if kind not in INSTITUTION_TYPES:
            raise StoreError(f"type: {values['type']!r} is not one of {', '.join(INSTITUTION_TYPES)}.")
        clean["type"] = kind
    if "region" in values:
        region = str(values["region"] or "").strip().upper()
        if region not in REGIONS:
            raise StoreError(f"region: {values['region']!r} is not a data center ({', '.join(REGIONS)}).")
        clean["region"] = region
    if "country" in values:
        country = str(values["country"] or "").strip().upper() or None
        if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
            raise StoreError(f"country: {values['country']!r} is not a two-letter ISO 3166 code such as US or DE.")
        clean["country"] = country
    if "fte_students" in values:
        raw = values["fte_students"]
        if raw is None or str(raw).strip() == "":
            clean["fte_students"] = None
        else:
            try:
                fte = int(str(raw).strip().replace(",", ""))
            except ValueError:
                raise StoreError(f"fte_students: {raw!r} is not a whole number.") from None
            if fte < 0 or fte > 2_000_000:
                raise StoreError(f"fte_students: {fte} is outside 0 to 2,000,000.")
            clean["fte_students"] = fte
    if "consortium" in values:
        consortium = str(values["consortium"] or "").strip() or None
        clean["consortium"] = consortium
    if "go_live_date" in values:
        raw = values["go_live_date"]
        if isinstance(raw, datetime):
            raw = raw.date()
        if not isinstance(raw, date):
            try:
                raw = date.fromisoformat(str(raw).strip())
            except ValueError:
                raise StoreError(f"go_live_date: {values['go_live_date']!r} is not a date (YYYY-MM-DD).") from None
        if raw.year < 1990:
            raise StoreError(f"go_live_date: {raw} is before 1990.")
        clean["go_live_date"] = raw
    return clean


def _lock_version(con, code: str, expected_version: int):
    """Bump the version only if nobody changed the institution since it was read."""
    current = con.execute(sa.select(institutions).where(institutions.c.code == code)).mappings().first()
    if current is None:
        raise NotFound(f"No institution with code {code!r}.")
    result = con.execute(
        institutions.update()
        .where(institutions.c.code == code, institutions.c.version == expected_version)
        .values(version=institutions.c.version + 1)
    )
    if result.rowcount != 1:
        raise ChangedMeanwhile(
            f"The settings of {code} were changed by someone else after you opened them "
            f"(your copy is version {expected_version}). Reload the page and make your change again."
        )
    return current


def _require_exists(con, code: str) -> None:
    if con.execute(sa.select(institutions.c.code).where(institutions.c.code == code)).first() is None:
        raise NotFound(f"No institution with code {code!r}.")


def _institution_in(con, code: str) -> Institution:
    row = con.execute(sa.select(institutions).where(institutions.c.code == code)).mappings().one()
    return Institution.from_row(row)


class InstitutionsMixin:
    """Registering institutions and reading and changing their profiles."""

    def add_institution(self, actor: Principal, *, code: str, name: str, type: str, region: str,
                        go_live_date, country: str | None = None, fte_students=None,
                        consortium: str | None = None, now: datetime | None = None) -> Institution:
        """Register an institution (an operator's system job). Sharing starts off: opt-in only."""
        access.require_system(actor, "Adding an institution")
        code = str(code or "").strip()
        if not _CODE_RE.match(code):
            raise StoreError(
                f"code: {code!r} must be 1-32 letters, digits, '-', '_' or '.', starting with a letter or digit."
            )
        profile = validate_profile(
            dict(name=name, type=type, region=region, country=country, fte_students=fte_students,
                 consortium=consortium, go_live_date=go_live_date)
        )
        now = now or utcnow()
        with self.engine.begin() as con:
            exists = con.execute(sa.select(institutions.c.code).where(institutions.c.code == code)).first()
            if exists:
                raise StoreError(f"code: an institution {code} exists already.")
            con.execute(institutions.insert().values(code=code, version=1, created_at=now, **profile))
            write_audit(con, actor, code, "institution.created", None, profile["name"], now)
        return self.institution(actor, code)

    def institution(self, actor: Principal, code: str) -> Institution:
        access.require_member(actor, code, "the profile")
        with self.engine.connect() as con:
            row = con.execute(sa.select(institutions).where(institutions.c.code == code)).mappings().first()
        if row is None:
            raise NotFound(f"No institution with code {code!r}.")
        return Institution.from_row(row)

    def list_institutions(self, actor: Principal) -> list[Institution]:
        access.require_system(actor, "Listing every institution")
        with self.engine.connect() as con:
            rows = con.execute(sa.select(institutions).order_by(institutions.c.code)).mappings().all()
        return [Institution.from_row(row) for row in rows]

    def update_profile(self, actor: Principal, code: str, changes: dict, expected_version: int,
                       now: datetime | None = None) -> Institution:
        """Change General-section fields. One audit row per changed field, same transaction."""
        access.require_admin(actor, code)
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise StoreError(f"Unknown profile field(s): {', '.join(sorted(unknown))}.")
        clean = validate_profile(changes)
        now = now or utcnow()
        with self.engine.begin() as con:
            current = _lock_version(con, code, expected_version)
            changed = {k: v for k, v in clean.items() if current[k] != v}
            if not changed:
                return _institution_in(con, code)
            con.execute(institutions.update().where(institutions.c.code == code).values(**changed))
            for field_name, value in changed.items():
                write_audit(con, actor, code, f"profile.{field_name}", current[field_name], value, now)
            return _institution_in(con, code)
