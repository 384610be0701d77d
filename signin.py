"""Sign-in views, drawn in place of any page until the user is known (ui.require_principal).

OIDC through st.login (app.py has already stopped if its [auth] settings are broken);
the embedded demo sign-in only when chosen with ANALYTICS_SIGN_IN=demo, and then only
for the demo community's users. The requested page (a deep link) is kept, so it opens
as soon as the user has signed in. Refused sign-ins are logged (who, why; the log adds when).
"""

from __future__ import annotations

import logging

import streamlit as st

import ui
from analytics.core.access import Principal
from analytics.core.schema import ROLE_LABELS
from analytics.control.signin_config import is_demo_user

log = logging.getLogger("analytics.signin")


def show() -> None:
    """The right sign-in view for the configured mode and the current state."""
    if not ui.auth_configured():
        demo_sign_in()
    elif st.user.is_logged_in:
        no_access()
    else:
        oidc_sign_in()


def oidc_sign_in() -> None:
    st.title("Library Community Analytics")
    st.write("Sign in with your institution's account.")
    st.button("Sign in", type="primary", on_click=st.login, key="signin_oidc")


def no_access() -> None:
    """Signed in with the identity provider, but refused: unverified e-mail or no such user."""
    email = st.user.get("email") or "(no e-mail)"
    problem = ui.identity_problem()
    reason = "unverified e-mail" if problem else "no user with this e-mail"
    if st.session_state.get("_refusal_logged") != (email, reason):  # once per session, not per rerun
        log.warning("sign-in refused: %s (%s)", email, reason)
        st.session_state["_refusal_logged"] = (email, reason)
    st.title("No access")
    if problem:
        st.error(ui.md_text(problem))
    else:
        st.error(
            f"You are signed in as **{ui.md_text(email)}**, but this account is not a user of any "
            "institution here. Ask your institution's General System Administrator to add you "
            "(`python -m analytics user add EMAIL --institution CODE --role librarian`)."
        )
    st.button("Sign out", on_click=st.logout, key="no_access_sign_out")


def demo_sign_in() -> None:
    st.title("Library Community Analytics")
    st.warning(
        "**Demo mode.** Anyone can pick any demo user below; there are no passwords. "
        "For real use, configure single sign-on (an `[auth]` section in `.streamlit/secrets.toml`, "
        "see the README) and start the app without ANALYTICS_SIGN_IN=demo.",
        icon=":material/warning:",
    )
    store = ui.store()
    system = Principal.system_job()
    # Only the demo community's users: real users of the same database are never offered.
    users = [u for u in store.list_users(system) if is_demo_user(u.email)]
    if not users:
        st.error(
            "The control database has no demo users. Build the demo community with "
            "`python -m analytics demo`; for real institutions, configure single sign-on."
        )
        return
    names = {i.code: i.name for i in store.list_institutions(system)
             if any(u.institution_code == i.code for u in users)}

    def label(user) -> str:
        roles = ", ".join(ROLE_LABELS[r] for r in user.roles)
        return (f"{user.name or user.email} — {names.get(user.institution_code, user.institution_code)} "
                f"({user.institution_code}) — {roles}")

    code = st.selectbox("Institution", sorted(names), format_func=lambda c: f"{names[c]} ({c})",
                        key="signin_institution")
    members = [u for u in users if u.institution_code == code]
    email = st.radio("Demo user", [u.email for u in members],
                     format_func=lambda e: label(next(u for u in members if u.email == e)), key="signin_user")
    if st.button("Sign in", type="primary", key="signin_submit"):
        st.session_state[ui.SESSION_USER] = email
        st.rerun()
