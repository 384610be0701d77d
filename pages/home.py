"""Home: the signed-in institution at a glance."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

import ui
from analytics.release.handle import HOW_TO_PUBLISH, NO_RELEASE
from analytics.ingest import local
from analytics.core.schema import REGION_LABELS, SERVICE_LABELS
from analytics.release.manifest import current_release_id
from analytics.views.next_steps import next_steps

actor = ui.require_principal()
store = ui.store()
code = actor.institution_code
institution = store.institution(actor, code)
settings = ui.settings()


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def cached_summary(_actor, data_dir: str, institution_code: str, version: str, email: str):
    # Keyed by small values; `version` changes when an import replaces a table.
    return local.summary(_actor, settings.data_dir, institution_code)


st.title(ui.md_text(institution.name))
st.caption(f"{institution.code} · {institution.type.replace('_', ' ')} · data centre: "
           f"{REGION_LABELS.get(institution.region, institution.region)} ({institution.region})"
           f" · {institution.size_band} FTE students · live since {institution.go_live_date.isoformat()}")

summary = cached_summary(actor, str(settings.data_dir), code, local.data_version(settings.data_dir, code), actor.email)
if not summary.tables:
    st.info("No data has been imported for your institution yet.")

st.subheader("Next steps")
STEP_ICONS = {"pages/import_data.py": ":material/upload_file:", "pages/profile.py": ":material/shield_lock:",
              "pages/recommendations.py": ":material/lightbulb:", "pages/trending.py": ":material/trending_up:",
              "pages/selection.py": ":material/shopping_cart:", "pages/deselection.py": ":material/inventory_2:",
              "pages/benchmarks.py": ":material/leaderboard:", "pages/subjects.py": ":material/category:",
              "pages/my_data.py": ":material/database:"}
with st.container(key="home_next_steps"):
    for step in next_steps(actor, store, code, imported=summary.tables,
                           release_id=current_release_id(settings.community_dir)):
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.page_link(step.page, label=step.label, icon=STEP_ICONS.get(step.page, ":material/arrow_forward:"))
            st.caption(step.why)
window = f"12 months to {summary.latest_month}" if summary.latest_month else "last 12 months"
with st.container(horizontal=True):
    st.metric("Titles held", f"{summary.titles:,}", border=True)
    st.metric("Items held", f"{summary.items:,}", border=True)
    st.metric("Loans", f"{summary.loans_12m:,}", help=f"Loans in the {window}", border=True)
    st.metric("E-usage (requests)", f"{summary.e_usage_12m:,}",
              help=f"COUNTER Total_Item_Requests in the {window}", border=True)
    st.metric("Reading lists", f"{summary.reading_lists:,}", border=True)
st.caption(f"Loans and e-usage: the {window}.")

st.subheader("Community services")
states = store.sharing_state(actor, code)
last_release_at = ui.current_release_built_at()
with st.container(horizontal=True):
    for service, state in states.items():
        with st.container(border=True):
            st.markdown(f"**{SERVICE_LABELS[service]}**")
            st.markdown(ui.status_markdown(state, last_release_at))

release = ui.current_release()
st.subheader("Community data")
if release:
    built = ui.fmt_date(datetime.fromisoformat(release["created_at"]))
    st.write(f"The community data in force was built on **{built}**, with data as of {release['as_of']}.")
else:
    st.write(f"{NO_RELEASE} {HOW_TO_PUBLISH}")
