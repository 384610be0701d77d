"""Shared Streamlit plumbing for app.py and pages/: settings, the store, the signed-in user.

No analytics here: pages call analytics/ and draw.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import streamlit as st

from analytics.access import Principal
from analytics.config import Settings, load_settings
from analytics.store import Store

SESSION_USER = "signed_in_email"


def settings() -> Settings:
    return load_settings()


@st.cache_resource(max_entries=8)
def _store(database_url: str) -> Store:
    return Store(database_url)


def store() -> Store:
    current = settings()
    if current.is_sqlite:
        current.data_dir.mkdir(parents=True, exist_ok=True)
    return _store(current.database_url)


def auth_configured() -> bool:
    """True when [auth] is set in secrets.toml: then sign-in is OIDC through st.login."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def signed_in_email() -> str | None:
    if auth_configured():
        return st.user.get("email") if st.user.is_logged_in else None
    return st.session_state.get(SESSION_USER)


def principal() -> Principal | None:
    """The signed-in user, re-read from the control database on every run."""
    email = signed_in_email()
    if not email:
        return None
    user = store().user(email)
    return user.principal() if user else None


def require_principal() -> Principal:
    """The signed-in user; otherwise draw the sign-in view instead of the page and stop.

    Every page starts with this, so no page can be seen signed out, and a deep link
    opens its page as soon as the user has signed in.
    """
    actor = principal()
    if actor is None:
        import signin  # signin draws with the helpers of this module

        signin.show()
        st.stop()
    return actor


def fmt_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def current_release() -> dict | None:
    """The manifest of the community release in force, if one was published."""
    manifest = settings().community_dir / "current" / "manifest.json"
    if not manifest.exists():
        return None
    try:
        return json.loads(Path(manifest).read_text())
    except (OSError, ValueError):
        return None
