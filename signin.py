"""Sign-in views, drawn in place of any page until the user is known (ui.require_principal).

OIDC through st.login when [auth] is configured in secrets.toml; otherwise the embedded
demo sign-in, which says plainly that it is a demo. The requested page (a deep link)
is kept, so it opens as soon as the user has signed in.
"""

from __future__ import annotations

import streamlit as st

import ui
from analytics.access import Principal
from analytics.schema import ROLE_LABELS


def show() -> None:
    """The right sign-in view for the configured mode and the current state."""
    if not ui.auth_configured():
        demo_sign_in()
    elif ui.signed_in_email():
        no_access()
    else:
        oidc_sign_in()


def oidc_sign_in() -> None:
    st.title("Library Community Analytics")
    st.write("Sign in with your institution's account.")
    st.button("Sign in", type="primary", on_click=st.login, key="signin_oidc")


def no_access() -> None:
    st.title("No access")
    st.error(
        f"You are signed in as **{ui.signed_in_email()}**, but this account is not a user of any "
        "institution here. Ask your institution's General System Administrator to add you "
        "(`python -m analytics user add EMAIL --institution CODE --role librarian`)."
    )
    st.button("Sign out", on_click=st.logout, key="no_access_sign_out")


def demo_sign_in() -> None:
    st.title("Library Community Analytics")
    st.warning(
        "**Demo mode.** Anyone can pick any demo user below; there are no passwords. "
        "For real use, configure single sign-on (an `[auth]` section in `.streamlit/secrets.toml`, "
        "see the README).",
        icon=":material/warning:",
    )
    store = ui.store()
    system = Principal.system_job()
    users = store.list_users(system)
    if not users:
        st.error(
            "The control database has no users yet. Build the demo community with "
            "`python -m analytics demo`, or add an institution and a user with "
            "`python -m analytics institution add` and `python -m analytics user add`."
        )
        return
    names = {i.code: i.name for i in store.list_institutions(system)}

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
