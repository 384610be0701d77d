"""The errors of the control store: refused or invalid changes, told to the user."""

from __future__ import annotations

from analytics.core.errors import UserError


class StoreError(UserError):
    """A refused or invalid change; the message is meant for the user."""


class NotFound(StoreError):
    pass


class ChangedMeanwhile(StoreError):
    """Somebody else changed the institution after this user loaded it."""

