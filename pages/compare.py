"""Collection comparison: your holdings against a peer group of your region, at work level."""

from __future__ import annotations

import plotly.express as px
import polars as pl
import streamlit as st

import ui
from analytics.core.schema import region_name
from analytics.views import comparison, selection

(actor, _store, settings, institution), release = ui.collection_page("Collection comparison")


@st.cache_data(max_entries=64, ttl=3600, show_spinner="Comparing your holdings with the peer group…")
def cached_comparison(release_id: str, filters: comparison.ComparisonFilters, code: str, data_version: str):
    return comparison.compare(actor, ui.current_release_handle(), settings.data_dir, code, filters)


k_title = release.manifest["privacy"]["K_TITLE"]
region = institution.region
region_words = region_name(region)
st.caption(f"{institution.name}'s held works against a peer group in {region_words}; print and e-book editions of a "
           f"work count once ({ui.release_label(release)}).")
groups = selection.peer_groups(release, region)
if groups.height == 0:
    st.info(f"No community data for {region_words} in this release, so there is no peer group to compare with.")
    st.stop()
sizes = dict(groups.iter_rows())


def group_label(g: str) -> str:
    name = "All institutions" if g == "all" else g.replace("=", ": ").replace("_", " ")
    return f"{name} ({sizes[g]} institutions)"


with st.sidebar:
    st.header("Peer group")
    peer_group = st.selectbox("Compare with", list(sizes), key="compare_group", format_func=group_label)
    percent = st.slider("A gap is held by at least (% of the group)", 5, 100, 50, step=5, key="compare_percent")
filters = comparison.ComparisonFilters(region=region, peer_group=peer_group, gap_percent=float(percent))
with ui.user_errors():
    result = cached_comparison(release.release_id, filters, institution.code, ui.local_data_version(institution.code))

st.caption(f"Counts of institutions below {k_title} are never released, so the release cannot tell a work no peer "
           f"holds from one that 1 or 2 hold: a work is shown as held by the group only when at least {k_title} of "
           f"its members hold it (you included, when you are a member).")
totals = result.totals
if totals["your_works"] == 0:
    st.info("No held items to compare: import your items first (withdrawn items are not counted).")
with st.container(horizontal=True):
    st.metric("Your works", f"{totals['your_works']:,}", border=True)
    share = f" ({totals['overlap_share']:.0%})" if totals["overlap_share"] is not None else ""
    st.metric(f"Held by ≥ {k_title} of the group", f"{totals['overlap']:,}{share}", border=True)
    st.metric(f"Not shown as held (fewer than {k_title}, or none)", f"{totals['not_shown']:,}", border=True)
    st.metric(f"Gaps (held by ≥ {percent}% of the group)", f"{totals['gaps']:,}", border=True)

st.subheader("Your works by holders in the region")
st.caption(f"All sharing institutions of {region_words}. '{result.bands['band'][0]}' includes works no other "
           f"institution holds: the release does not tell 0 from 1 or 2.")
chart = px.bar(result.bands.to_pandas(), x="band", y="works", labels={"band": "Institutions holding in the region",
                                                                     "works": "Your works"})
chart.update_yaxes(tickformat=",")  # 4,000, not 4000
st.plotly_chart(chart, key="compare_bands_chart")

st.subheader("By LC class and subclass")
summary_columns = {"lc_class": "LC class", "lc_subclass": "LC subclass", "your_works": "Your works",
                   "overlap": f"Held by ≥ {k_title} of the group",
                   "overlap_share": st.column_config.NumberColumn("Share held by the group", format="percent"),
                   "not_shown": "Not shown as held", "gaps": "Gaps"}
if result.summary.height == 0:
    st.info("Neither your works nor the gaps have an LC class yet: nothing to break down.")
else:
    ui.table(result.summary, hide_index=True, width="stretch", key="compare_summary", column_config=summary_columns)

st.subheader("Lists")
view = st.segmented_control("List", ["Gaps", "Your works"], default="Gaps", key="compare_view")
classes = sorted(set(result.summary["lc_class"].to_list()))
picked_class = st.selectbox("LC class", ["All classes", *classes], key="compare_class")
if view == "Your works":
    picked_band = st.selectbox("Holders in the region", ["All bands", *result.bands["band"].to_list()],
                               key="compare_band")
    rows = result.works
    if picked_band != "All bands":
        rows = rows.filter(pl.col("band") == picked_band)
    frame = rows.select("title", "author", "lc_class", "lc_subclass",
                        pl.col("group_holding").alias("group_holding"), pl.col("band").alias("region_band"),
                        pl.col("isbns").list.join("; ").alias("isbns"))
    name, empty = "works", "None of your works is in this band and class."
else:
    frame = result.gaps.select("title", "author", "lc_class", "lc_subclass", "group_holding", "group_share",
                               "pub_year", pl.col("isbns").list.join("; ").alias("isbns"))
    name = "gaps"
    empty = (f"No work that you lack is held by {percent}% or more of the group (and by at least {k_title} of its "
             f"members). Lower the percentage to see more.")
if picked_class != "All classes":
    frame = frame.filter(pl.col("lc_class").fill_null(comparison.UNCLASSIFIED) == picked_class)
columns = {"lc_class": "LC class", "lc_subclass": "LC subclass",
           "group_holding": f"Holding in the group (blank: fewer than {k_title})",
           "group_share": st.column_config.NumberColumn("Share of the group", format="percent"),
           "region_band": "Holders in the region", "pub_year": st.column_config.NumberColumn("Year", format="%d")}
if frame.height == 0:
    st.info(empty)
else:
    st.write(f"**{ui.count(frame.height, 'work')}**")
    ui.table(frame, hide_index=True, width="stretch", key=f"compare_{name}_table", column_config=columns)
    left, right = st.columns(2)
    left.download_button("Download CSV", lambda rows=frame, cfg=columns: ui.csv_bytes(rows, cfg),
                         file_name=f"{institution.code}-compare-{name}.csv", mime="text/csv", key=f"compare_{name}_csv")
    right.download_button("Download Excel", lambda rows=frame, cfg=columns: ui.excel_bytes(rows, cfg),
                          file_name=f"{institution.code}-compare-{name}.xlsx",
                          mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                          key=f"compare_{name}_xlsx")
