"""Community data: the release in force, who contributes (counts only), thresholds, history."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import streamlit as st

import ui
from analytics.release.manifest import community_overview
from analytics.core.schema import REGION_LABELS, SERVICE_LABELS, SERVICES

# What each release file holds, in words; its part is the service that reads it.
CONTENTS = {
    "titles": "Works (title, author, subject)", "holdings": "Holders per work and month",
    "loans": "Loans per work and month", "e_usage": "E-resource use per work and month",
    "monthly_signal": "Monthly signal per work (trending)", "trend_rows": "Rising works (trending)",
    "peer_selection": "Acquisitions by peer group (selection)", "reading_lists": "Reading-list counts per work",
    "benchmarks": "Benchmark statistics (KPIs by peer group)", "platforms": "E-resource platforms",
    "platform_titles": "Titles per platform", "work_use": "Use per work (recommendations)",
}
STATUS_WORDS = {"current": "In force", "retained": "Replaced, kept", "deleted": "Deleted"}


def part_and_name(file: str) -> tuple[str, str]:
    part, _, name = file.rpartition("/")
    stem = name.removesuffix(".parquet")
    return ("Recommendations" if part == "recommendations" else "Collection development and benchmarks",
            CONTENTS.get(stem, stem.replace("_", " ").capitalize()))


actor = ui.require_principal()
overview = community_overview(actor, ui.settings(), ui.store())
manifest = overview["current"]

st.title("Community data")
st.write("The community data is rebuilt by the system job as a new, immutable release. Pages read only the "
         "release in force. You see how many institutions contribute, never which ones.")
if manifest is None:
    ui.stop_without_release()

with st.container(horizontal=True):
    st.metric("Built", ui.fmt_date(datetime.fromisoformat(manifest["created_at"])), border=True)
    st.metric("Data as of", manifest["as_of"], border=True)
    st.metric("Rows released", f"{sum(manifest['row_counts'].values()):,}", border=True)

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

st.subheader("What the community data holds")
contents = [(*part_and_name(file), rows) for file, rows in manifest["row_counts"].items()]
ui.table(pl.DataFrame(contents, schema=["Part", "Contents", "Rows"], orient="row").sort("Part", "Contents"),
         hide_index=True, width="stretch")

st.subheader("Release history")
history = overview["history"]
if history:
    ui.table(
        pl.DataFrame({
            "Built": [ui.fmt_date(h["created_at"]) for h in history],
            "Data as of": [h["as_of"].isoformat() for h in history],
            "Status": [STATUS_WORDS.get(h["status"], h["status"]) for h in history],
            "Note": [h["note"] or "" for h in history],
        }),
        hide_index=True, width="stretch",
    )
else:
    st.write("No release has been recorded in the control database yet.")
if "admin" in actor.roles:
    st.caption(f"For the command line (`python -m analytics release verify`), the release in force is "
               f"{manifest['release_id']}.")
