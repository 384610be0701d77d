"""One base for the errors a user can fix (core.errors.UserError), caught once by the CLI and once by
the page helper; anything else is a bug and is reported as one, never as "bad input"."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from analytics import cli
from analytics.contribute.kpis import CATALOG  # noqa: F401  (imported so a broken module fails here too)
from analytics.control.store import ChangedMeanwhile, NotFound, StoreError
from analytics.core.access import PermissionDenied
from analytics.core.errors import InvalidValue, UserError
from analytics.ingest.reader import InputError
from analytics.release.manifest import ReleaseError
from analytics.views.collection import FilterError


@pytest.mark.parametrize("error", [PermissionDenied, InputError, StoreError, NotFound, ChangedMeanwhile, ReleaseError,
                                   FilterError, InvalidValue, cli.Refused])
def test_every_error_a_user_can_fix_is_a_user_error(error):
    assert issubclass(error, UserError) and error.exit_code == 2


def test_the_cli_prints_a_user_error_and_exits_with_its_code(monkeypatch, capsys, tmp_path):
    class Busy(UserError):
        exit_code = 3

    def refuse(args, settings):
        raise Busy("another publish is running; try again later")

    monkeypatch.setitem(cli.COMMANDS, "publish", refuse)
    assert cli.main(["--data-dir", str(tmp_path), "publish"]) == 3
    assert capsys.readouterr().err == "error: another publish is running; try again later\n"


def test_the_cli_does_not_report_a_bug_as_bad_input(monkeypatch, tmp_path):
    def broken(args, settings):
        return {}["missing"]

    monkeypatch.setitem(cli.COMMANDS, "publish", broken)
    with pytest.raises(KeyError):  # a traceback and exit status 1, not "error: ..." and 2
        cli.main(["--data-dir", str(tmp_path), "publish"])


def test_a_bad_setting_is_a_user_error_on_the_cli(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("K_TITLE", "three")
    assert cli.main(["--data-dir", str(tmp_path), "institution", "list"]) == 2
    assert "K_TITLE must be a whole number, got 'three'" in capsys.readouterr().err


PAGE = """
import ui
from analytics.core.errors import InvalidValue
with ui.user_errors(prefix="Not saved: "):
    if {raise_user!r}:
        raise InvalidValue("window 5: choose 3, 6 or 12 months.")
    if {raise_bug!r}:
        {{}}["missing"]
import streamlit as st
st.write("after the block")
"""


def _page(raise_user: bool, raise_bug: bool) -> AppTest:
    return AppTest.from_string(PAGE.format(raise_user=raise_user, raise_bug=raise_bug), default_timeout=30).run()


def test_the_page_helper_shows_a_user_error_and_stops():
    at = _page(True, False)
    assert [e.value for e in at.error] == ["Not saved: window 5: choose 3, 6 or 12 months."]
    assert not at.exception and "after the block" not in [m.value for m in at.markdown]


def test_the_page_helper_lets_a_bug_through():
    at = _page(False, True)
    # Streamlit's own error box (details redacted in the page, the traceback in the server log), not an st.error.
    assert not at.error and len(at.exception) == 1 and "has encountered an error" in at.exception[0].message


def test_the_page_helper_changes_nothing_without_an_error():
    at = _page(False, False)
    assert not at.error and not at.exception and "after the block" in [m.value for m in at.markdown]
