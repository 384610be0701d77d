"""Router: sign-in, sidebar, navigation. No analytics here."""

from __future__ import annotations

import logging
from pathlib import Path

# Imported here, before any session draws: Plotly's JSON encoder looks pandas up in the
# module table, and a second session drawing its first chart while the first session is
# still importing pandas found it half-initialised ("partially initialized module 'pandas'
# has no attribute 'NaT'"). Every session runs this line first and waits on the import lock.
import pandas  # noqa: F401
import plotly.io  # noqa: F401
import streamlit as st

import ui
from analytics.core.schema import ROLE_LABELS

log = logging.getLogger("analytics.app")

# The icon is served by this server: a self-hosted product makes no request to another host.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"
st.set_page_config(page_title="Library Community Analytics", page_icon=str(FAVICON), layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/trending.py", title="Trending titles", icon=":material/trending_up:"),
    st.Page("pages/selection.py", title="Selection report", icon=":material/shopping_cart:"),
    st.Page("pages/subjects.py", title="Subject overview", icon=":material/category:"),
    st.Page("pages/deselection.py", title="Deselection and retention", icon=":material/inventory_2:"),
    st.Page("pages/compare.py", title="Collection comparison", icon=":material/compare_arrows:"),
    st.Page("pages/lastcopy.py", title="Last-copy check", icon=":material/fact_check:"),
    st.Page("pages/recommendations.py", title="Recommendations", icon=":material/lightbulb:"),
    st.Page("pages/benchmarks.py", title="Benchmarks", icon=":material/leaderboard:"),
    st.Page("pages/community.py", title="Community data", icon=":material/hub:"),
    st.Page("pages/my_data.py", title="My data", icon=":material/database:"),
    st.Page("pages/import_data.py", title="Import data", icon=":material/upload_file:"),
    st.Page("pages/profile.py", title="Data sharing profile", icon=":material/shield_lock:"),
]


def sidebar(actor) -> None:
    with st.sidebar:
        institution = ui.store().institution(actor, actor.institution_code)
        st.markdown(f"**{ui.md_text(actor.name or actor.email)}**  \n{ui.md_text(institution.name)} ({institution.code})")
        st.caption("Role: " + ", ".join(ROLE_LABELS[r] for r in sorted(actor.roles)))
        if ui.auth_configured():
            st.button("Sign out", on_click=st.logout, key="app_sign_out")
        else:
            st.caption("Demo mode: sign-in without a password.")
            if st.button("Sign out", key="app_sign_out"):
                st.session_state.pop(ui.SESSION_USER, None)
                st.rerun()


def main() -> None:
    ui.warm_up()  # once per server process: the first visit of each page does not wait for it
    problem = ui.auth_problem()
    if problem:
        # Fail closed: broken single sign-on settings never fall back to the demo sign-in.
        log.error("app stopped: %s", problem)
        st.title("Library Community Analytics")
        st.error(problem, icon=":material/lock:")
        st.stop()
    actor = ui.principal()
    # The navigation is always the same, so the requested page (a deep link) survives
    # sign-in; each page draws the sign-in view itself until the user is known.
    # Every page in view: with more than ten, Streamlit would hide the rest behind "View more".
    page = st.navigation(PAGES, position="sidebar" if actor else "hidden", expanded=True)
    if actor is not None:
        sidebar(actor)
    page.run()
    ui.preload_element_code()  # while the user reads this page (or signs in), the browser loads chart code


main()
