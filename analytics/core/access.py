"""Who may do what.

Every service function takes the acting principal and checks it here, so that a
direct call from a script or a crafted request is refused exactly as the UI would
refuse it. Rules (README.md, "Signing in"): only a General System Administrator (role ``admin``) of
an institution changes its data sharing profile; any user of the institution may read
it; nobody reads or changes another institution's settings or local data.
"""

from __future__ import annotations

from analytics.core.errors import UserError

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

security_log = logging.getLogger("analytics.security")


class PermissionDenied(UserError):
    """The acting user may not do this. The message says why, in plain words (who and what);
    every refusal is logged with the time to the `analytics.security` logger."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        security_log.warning("refused at %s: %s", datetime.now(timezone.utc).isoformat(timespec="seconds"), message)


@dataclass(frozen=True)
class Principal:
    """The acting user: who, for which institution, with which roles.

    ``system`` is the operator running the CLI's system jobs on the server itself; it
    is never created from a sign-in.
    """

    email: str
    institution_code: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    name: str = ""
    system: bool = False

    @classmethod
    def system_job(cls) -> "Principal":
        return cls(email="system", institution_code=None, roles=frozenset(), name="System job", system=True)

    def is_admin_of(self, code: str) -> bool:
        return self.system or (self.institution_code == code and "admin" in self.roles)

    def is_member_of(self, code: str) -> bool:
        return self.system or self.institution_code == code

    def has_role(self, role: str) -> bool:
        return self.system or role in self.roles


def require_member(principal: Principal, code: str, what: str = "this institution's data") -> None:
    """Any user of the institution may read; nobody else."""
    if not principal.is_member_of(code):
        raise PermissionDenied(
            f"{principal.email} belongs to {principal.institution_code or 'no institution'} "
            f"and may not see {what} of another institution."
        )


def require_admin(principal: Principal, code: str, what: str = "the data sharing profile") -> None:
    """Only a General System Administrator of the institution may change it."""
    require_member(principal, code, what)
    if not principal.is_admin_of(code):
        raise PermissionDenied(
            f"Only a General System Administrator of {code} may change {what}; "
            f"{principal.email} has the role(s): {', '.join(sorted(principal.roles)) or 'none'}."
        )


def require_system(principal: Principal, what: str) -> None:
    if not principal.system:
        raise PermissionDenied(f"{what} is a system job; {principal.email} may not run it.")
