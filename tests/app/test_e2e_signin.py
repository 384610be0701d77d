"""Sign-in fails closed, checked with a real server and the browser: broken or missing
single sign-on settings stop the app with a message naming the problem (never the demo
sign-in), and the demo sign-in, chosen explicitly, offers only the demo community's users."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analytics.core.access import Principal
from analytics.core.config import load_settings
from analytics.control.store import Store
from tests.support.browser import browser_page, streamlit_server

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()

pytestmark = pytest.mark.browser

REAL = "real.admin@university.example.edu"


@pytest.fixture
def community(demo_community, tmp_path):
    """A copy of the demo community whose database also holds a real (non-demo) administrator."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_community, data_dir)
    store = Store(load_settings(data_dir).database_url)
    code = store.list_institutions(SYSTEM)[0].code
    store.add_user(SYSTEM, REAL, code, ["admin"], name="Real Admin")
    store.dispose()
    return data_dir


CASES = {
    "no secrets file": (None, "is missing or empty"),
    "TOML syntax error": ('[auth]\nclient_secret = "unterminated\nredirect_uri = 3\n', "could not be read"),
    "misspelt section": ('[Auth]\nredirect_uri = "http://localhost/oauth2callback"\ncookie_secret = "x"\n'
                         'client_id = "a"\nclient_secret = "b"\n'
                         'server_metadata_url = "https://login.example.org/.well-known/openid-configuration"\n',
                         "the section must be named [auth]"),
    "incomplete [auth]": ('[auth]\nredirect_uri = "http://localhost/oauth2callback"\nclient_id = "a"\n',
                          "lacks cookie_secret, client_secret, server_metadata_url"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_single_sign_on_stops_the_app(case, community, tmp_path):
    content, says = CASES[case]
    secrets = tmp_path / "secrets.toml"  # absent in the first case
    if content is not None:
        secrets.write_text(content)
    log = tmp_path / "server.log"
    env = {"ANALYTICS_DATA_DIR": str(community), "ANALYTICS_SIGN_IN": "oidc"}
    with streamlit_server(ROOT, env, log_path=log, args=("--secrets.files", str(secrets))) as base_url, \
            browser_page() as page:
        page.goto(base_url, wait_until="networkidle")
        error = page.get_by_text("Sign-in is not configured")
        error.wait_for(timeout=60_000)
        text = page.locator("body").inner_text()
        assert says in text
        for leak in ("Demo mode", "Ada Admin", "Real Admin", REAL, "Sign in"):
            assert leak not in text, f"{case}: {leak!r} shown"
        assert page.get_by_role("radio").count() == 0
    assert "app stopped: Sign-in is not configured" in log.read_text()


def test_demo_sign_in_is_explicit_and_lists_only_demo_users(community, tmp_path):
    env = {"ANALYTICS_DATA_DIR": str(community), "ANALYTICS_SIGN_IN": "demo"}
    store = Store(load_settings(community).database_url)
    code = store.list_institutions(SYSTEM)[0].code
    store.dispose()
    with streamlit_server(ROOT, env, args=("--secrets.files", str(tmp_path / "none.toml"))) as base_url, \
            browser_page() as page:
        page.goto(base_url, wait_until="networkidle")
        page.get_by_text("Demo mode").wait_for(timeout=60_000)
        page.get_by_label("Institution", exact=True).click()
        page.get_by_role("option", name=f"({code})", exact=False).click()
        page.get_by_role("radio", name="Ada Admin").wait_for(state="attached", timeout=30_000)
        labels = page.locator("[role=radiogroup]").inner_text()
        assert "Real Admin" not in labels and REAL not in labels
        assert labels.count("demo") == 0  # labels show names and roles, not e-mails
        assert page.get_by_role("radio").count() == 3
