"""The one base of every error a user can fix, and how it reaches them.

A `UserError` is bad input, a refused action or a missing precondition: its message is
written for the person who ran the command or opened the page, and names what to change.
The CLI catches `UserError` once (`analytics.cli.main`: the message on stderr, exit status
`exit_code`) and so does the page helper (`ui.user_errors`: the message in the page).
Anything else that escapes is a bug and is reported as one (a traceback on the CLI,
Streamlit's error box on a page), never as "bad input".
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; str(exc) is the whole message they see."""

    exit_code = 2


class InvalidValue(UserError, ValueError):
    """A value the user chose (an option, a filter, a setting) is not allowed."""
