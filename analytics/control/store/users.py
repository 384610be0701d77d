"""Users and their roles; sign-in looks a user up by e-mail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import ROLES
from analytics.control.store.audit import write_audit
from analytics.control.store.errors import NotFound, StoreError
from analytics.control.store.tables import institutions, user_roles, users, utcnow

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class User:
    email: str
    name: str
    institution_code: str
    roles: tuple[str, ...]

    def principal(self) -> Principal:
        return Principal(self.email, self.institution_code, frozenset(self.roles), self.name)


class UsersMixin:
    """Adding users and roles, looking them up."""

    def add_user(self, actor: Principal, email: str, institution_code: str, roles, name: str = "",
                 now: datetime | None = None) -> User:
        """Add a user, or add roles to an existing user of the same institution."""
        email = str(email or "").strip().lower()
        if not _EMAIL_RE.match(email):
            raise StoreError(f"email: {email!r} is not an e-mail address.")
        roles = tuple(sorted({str(r).strip().lower() for r in ([roles] if isinstance(roles, str) else roles)}))
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise StoreError(f"role: {', '.join(bad) or 'none given'}; choose from {', '.join(ROLES)}.")
        if not actor.system:
            access.require_admin(actor, institution_code, "the users")
        now = now or utcnow()
        with self.engine.begin() as con:
            if not con.execute(sa.select(institutions.c.code).where(institutions.c.code == institution_code)).first():
                raise NotFound(f"No institution with code {institution_code!r}.")
            existing = con.execute(sa.select(users).where(users.c.email == email)).mappings().first()
            if existing and existing["institution_code"] != institution_code:
                raise StoreError(f"email: {email} is already a user of another institution.")
            if not existing:
                con.execute(users.insert().values(email=email, name=name.strip(),
                                                  institution_code=institution_code, created_at=now))
            elif name.strip():
                con.execute(users.update().where(users.c.email == email).values(name=name.strip()))
            have = {r[0] for r in con.execute(sa.select(user_roles.c.role).where(user_roles.c.email == email))}
            for role in roles:
                if role not in have:
                    con.execute(user_roles.insert().values(email=email, role=role))
                    write_audit(con, actor, institution_code, "user.role_added", None, f"{email}: {role}", now)
        return self.user(email)

    def user(self, email: str) -> User | None:
        """Look up a signed-in e-mail. Used by sign-in, so it needs no principal."""
        email = str(email or "").strip().lower()
        with self.engine.connect() as con:
            row = con.execute(sa.select(users).where(users.c.email == email)).mappings().first()
            if row is None:
                return None
            roles = tuple(sorted(r[0] for r in con.execute(
                sa.select(user_roles.c.role).where(user_roles.c.email == email))))
        return User(row["email"], row["name"], row["institution_code"], roles)

    def list_users(self, actor: Principal, institution_code: str | None = None) -> list[User]:
        if institution_code is None:
            access.require_system(actor, "Listing the users of every institution")
        else:
            access.require_member(actor, institution_code, "the users")
        query = sa.select(users.c.email).order_by(users.c.institution_code, users.c.email)
        if institution_code is not None:
            query = query.where(users.c.institution_code == institution_code)
        with self.engine.connect() as con:
            emails = [r[0] for r in con.execute(query)]
        return [self.user(e) for e in emails]
