"""Community data: the release in force, who contributes (counts only), thresholds, history."""

from __future__ import annotations

import polars as pl
import streamlit as st

import ui
from analytics.release.manifest import community_overview
from analytics.core.schema import REGION_LABELS, SERVICE_LABELS, SERVICES

actor = ui.require_principal()
overview = community_overview(actor, ui.settings(), ui.store())
manifest = overview["current"]

st.title("Community data")
st.write("The community data is rebuilt by the system job as a new, immutable release. Pages read only the "
         "release in force. You see how many institutions contribute, never which ones.")
if manifest is None:
    ui.stop_without_release()

with st.container(horizontal=True):
    st.metric("Current release", manifest["release_id"], border=True)
    st.metric("Data as of", manifest["as_of"], border=True)
    st.metric("Built", manifest["created_at"][:16].replace("T", " ") + " UTC", border=True)

st.subheader("Contributing institutions")
regions = sorted({r for counts in manifest["contributors"].values() for r in counts})
if regions:
    table = pl.DataFrame({
        "Service": [SERVICE_LABELS[s] for s in SERVICES],
        **{f"{r} — {REGION_LABELS.get(r, r)}": [manifest["contributors"][s].get(r, 0) for s in SERVICES]
           for r in regions},
    })
    ui.table(table, hide_index=True, width="stretch")
else:
    st.write("No institution contributed to this release.")

st.subheader("Privacy thresholds")
privacy = manifest["privacy"]
st.markdown(
    f"- A title-level figure is released only where at least **{privacy['K_TITLE']}** institutions of a region "
    f"contribute to it.\n"
    f"- A benchmark statistic is released only where at least **{privacy['K_BENCH']}** institutions contribute "
    f"and no single institution makes up more than **{privacy['DOMINANCE']:.0%}** of a summed figure.\n"
    f"- Differential privacy: "
    + ("off (exact statistics)." if privacy.get("epsilon") is None else f"epsilon = {privacy['epsilon']}.")
)

st.subheader("Release contents")
ui.table(pl.DataFrame({"File": list(manifest["row_counts"]), "Rows": list(manifest["row_counts"].values())}),
             hide_index=True, width="stretch")

st.subheader("Release history")
history = overview["history"]
ui.table(
    pl.DataFrame({
        "Release": [h["release_id"] for h in history],
        "Built": [ui.fmt_date(h["created_at"]) for h in history],
        "Data as of": [h["as_of"].isoformat() for h in history],
        "Status": [h["status"] for h in history],
        "Note": [h["note"] for h in history],
    }) if history else pl.DataFrame({"Release": []}),
    hide_index=True, width="stretch",
)
