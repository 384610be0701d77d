"""Selection report: what peers acquire and teach that you do not hold, ready for an order list."""

from __future__ import annotations

import polars as pl
import streamlit as st

import ui
from analytics.views import collection, selection
from analytics.core.schema import REGION_LABELS, REGIONS

(actor, _store, settings, institution), release = ui.collection_page("Selection report")


@st.cache_data(max_entries=64, ttl=3600, show_spinner="Finding what peers acquire…")
def cached_selection(release_id: str, filters: selection.SelectionFilters, code: str, data_version: str):
    keys, isbns = collection.own_identifiers(actor, settings.data_dir, code)
    return selection.selection(ui.current_release_handle(), filters, keys, isbns)


st.caption(f"Works a peer group in your region acquired in the last 12 months or puts on reading lists, that "
           f"{institution.name} does not hold ({ui.release_label(release)}).")
k_title = release.manifest["privacy"]["K_TITLE"]
with st.sidebar:
    st.header("Peers")
    region = st.selectbox("Region", REGIONS, index=REGIONS.index(institution.region), key="selection_region",
                          format_func=lambda r: f"{r} — {REGION_LABELS[r]}")
    groups = selection.peer_groups(release, region)
    if groups.height == 0:
        st.info(f"No community data for {REGION_LABELS.get(region, region)} in this release.")
        st.stop()
    sizes = dict(groups.iter_rows())
    peer_group = st.selectbox("Peer group", list(sizes), key="selection_group",
                              format_func=lambda g: ("All institutions" if g == "all" else g.replace("=", ": ")
                                                     .replace("_", " ")) + f" ({sizes[g]} institutions)")
    # A count shows only from K_TITLE institutions: at or below K_TITLE / group size every released
    # work of the group shows, so that is the lowest percentage worth offering when the list is empty.
    widest = selection.widest_percent(sizes[peer_group], k_title)
    percent = st.slider("Acquired by at least (% of the group)", 5, 100, 20, step=5, key="selection_percent",
                        help=f"Counts below {k_title} institutions are withheld: in this group of "
                             f"{sizes[peer_group]:,}, every released work shows at {widest}% or less.")
    lists = st.number_input("…or on reading lists of at least (institutions)", k_title, 1000, k_title,
                            key="selection_lists")
filters = selection.SelectionFilters(region=region, peer_group=peer_group, min_acquired_percent=float(percent),
                                  min_lists=int(lists), limit=1000)
with ui.user_errors():
    report = cached_selection(release.release_id, filters, institution.code, ui.local_data_version(institution.code))
st.caption(f"Peer groups other than 'all' are released only when the group and the rest of the region each have "
           f"at least {release.manifest['privacy']['K_BENCH']} institutions; counts below {k_title} are withheld.")
if report.height == 0:
    if percent > widest:
        st.info(f"No work you lack was acquired by {percent}% of this group, or is on the reading lists of "
                f"{int(lists):,} of its institutions. At {widest}% (at least {k_title} of the group's "
                f"{sizes[peer_group]:,} institutions) every work the community data shows for it is listed.")
        st.button(f"Show works acquired by at least {widest}%", key="selection_lower",
                  on_click=lambda: st.session_state.update(selection_percent=widest))
    else:
        st.info(f"No work you lack was acquired in the last 12 months, or put on reading lists, by at least "
                f"{k_title} of the group's {sizes[peer_group]:,} institutions (fewer are withheld, to protect "
                "each institution). Choose a larger peer group, or come back after the next release.")
    st.stop()
st.write(f"**{ui.count(report.height, 'work')}**, best first.")
columns = {"acquired_share": st.column_config.NumberColumn("Acquired by (share)", format="percent"),
           "institutions_acquired_12m": "Acquired (12 months)", "institutions_listing": "On reading lists",
           "institutions_holding": "Holding", "group_size": "Group size",
           "pub_year": st.column_config.NumberColumn("Year", format="%d")}
ui.table(
    report.select("title", "author", "subject", "acquired_share", "institutions_acquired_12m", "institutions_listing",
                  "institutions_holding", "group_size", "pub_year", "format",
                  pl.col("isbns").list.join("; ").alias("isbns")),
    hide_index=True, width="stretch", key="selection_table", column_config=columns,
)
left, right = st.columns(2)
left.download_button("Download order list (CSV)", lambda rows=report, cfg=columns: ui.csv_bytes(rows, cfg), file_name=f"selection-{region}.csv",
                     mime="text/csv", key="selection_csv")
right.download_button("Download order list (Excel)", lambda rows=report, cfg=columns: ui.excel_bytes(rows, cfg), file_name=f"selection-{region}.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="selection_xlsx")
