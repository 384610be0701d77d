"""Trending titles: what is rising across the community, with the numbers behind each score."""

from __future__ import annotations

from dataclasses import replace

import plotly.graph_objects as go
import polars as pl
import streamlit as st

import ui
from analytics.ingest import subjects
from analytics.release import trending
from analytics.views import trends
from analytics.views import collection
from analytics.core.schema import REGION_LABELS, REGIONS

(actor, _store, settings, institution), release = ui.collection_page("Trending titles")


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def cached_own_identifiers(code: str, data_version: str):
    # Keyed by the institution's data version: a new import refreshes "held by us".
    return collection.own_identifiers(actor, settings.data_dir, code)


@st.cache_data(max_entries=256, ttl=3600, show_spinner="Ranking…")
def cached_trending(release_id: str, filters: trends.Filters, code: str, data_version: str):
    keys, isbns = cached_own_identifiers(code, data_version) if filters.not_held else ([], [])
    return trends.trending(ui.current_release_handle(), filters, keys, isbns)


st.caption(f"From the {ui.release_label(release)}.")

# Filters from the URL (shareable links) are validated like widget values.
link_months = st.query_params.get("months")
default_window = int(link_months) if link_months in ("3", "6", "12") else 6
captions = subjects.class_captions()
with st.sidebar:
    st.header("Filters")
    region = st.selectbox("Region", REGIONS, index=REGIONS.index(institution.region), key="trending_region",
                          format_func=lambda r: f"{r} — {REGION_LABELS[r]}" + (" (mine)" if r == institution.region else ""))
    window = st.segmented_control("Window (months)", trends.WINDOWS, key="trending_window", default=default_window)
    # "" stands for "all": a None option would show as an empty choice.
    lc_class = st.selectbox("LC class", ["", *sorted(captions)], key="trending_class",
                            format_func=lambda c: f"{c} — {captions[c]}" if c else "All subjects") or None
    outline = subjects.outline()
    subclass_options = [""] + (sorted(outline.filter(pl.col("lc_class") == lc_class)["lc_subclass"].to_list())
                               if lc_class else [])
    subclass_captions = dict(zip(outline["lc_subclass"], outline["lc_subclass_caption"]))
    lc_subclass = st.selectbox("LC subclass", subclass_options, key="trending_subclass", disabled=lc_class is None,
                               format_func=lambda c: f"{c} — {subclass_captions.get(c, '')}" if c else "All") or None
    formats = st.multiselect("Format", trends.FORMATS, key="trending_formats")
    years = st.slider("Publication year", 1900, 2030, (1900, 2030), key="trending_years")
    language = st.text_input("Language (MARC code, e.g. eng)", key="trending_language")
    publisher = st.text_input("Publisher contains", key="trending_publisher")
    not_held = st.toggle("Not held by us", key="trending_not_held")
    limit = st.number_input("Rows", 10, trends.MAX_LIMIT, 100, step=10, key="trending_limit")

if link_months is not None and link_months not in ("3", "6", "12"):
    st.error(f"The link asks for a window of {link_months!r} months; the window is 3, 6 or 12 months. Showing 6.")
filters = trends.Filters(
    region=region, window=window or 6, lc_class=lc_class, lc_subclass=lc_subclass, formats=tuple(formats),
    pub_year_min=years[0] if years[0] > 1900 else None, pub_year_max=years[1] if years[1] < 2030 else None,
    language=language or None, publisher=publisher or None, not_held=not_held, limit=int(limit),
)
with ui.user_errors():
    ranked = cached_trending(release.release_id, filters.validated(), institution.code,
                             ui.local_data_version(institution.code))

with st.expander("How the score works"):
    st.markdown(
        f"Monthly signal = loans + {trending.WEIGHTS['e_requests']} × e-book requests (COUNTER Total_Item_Requests) "
        f"+ {trending.WEIGHTS['acquisitions']:g} × institutions acquiring + {trending.WEIGHTS['reading_lists']:g} × "
        f"reading lists. **Recent** = the last {filters.window} complete months, **baseline** = the "
        f"{filters.window} months before. **Score** = ln((recent + {trending.SMOOTHING:g}) / (baseline + "
        f"{trending.SMOOTHING:g})): the +{trending.SMOOTHING:g} keeps 1 → 3 loans from outranking 400 → 900. Works "
        f"need a recent signal of at least {trending.MIN_SUPPORT:g}, and only rising works (score above 0) are "
        f"listed. Only works that at least "
        f"{release.manifest['privacy']['K_TITLE']} institutions of the region hold or use are in the community data."
    )

if ranked.height == 0:
    held_all = filters.not_held and cached_trending(
        release.release_id, replace(filters, not_held=False).validated(), institution.code,
        ui.local_data_version(institution.code)).height > 0
    if held_all:
        st.info("Your institution already holds every rising work that matches these filters. Turn off "
                "“Not held by us” to see them.")
    else:
        st.info("No work is rising for these filters: a work is listed when its signal in the last "
                f"{filters.window} months is above the {filters.window} months before. Widen the subject, the "
                "years or the window.")
    st.stop()

top = ranked.head(15).reverse()
# Literal text for Plotly; numbered, so that two works with the same (or a withheld) title keep two bars.
labels = [f"{len(top) - i}. {ui.plot_text(t[:40] if t else '(no title)')}" for i, t in enumerate(top["title"].to_list())]
chart = go.Figure([
    go.Bar(y=labels, x=top["baseline"], name=f"Baseline ({filters.window} months before)",
           orientation="h", marker_color="#9db4c8"),
    go.Bar(y=labels, x=top["recent"], name=f"Recent ({filters.window} months)",
           orientation="h", marker_color="#1f5f8b"),
])
chart.update_layout(title=f"Top rising works in {REGION_LABELS.get(region, region)}: recent vs baseline signal", barmode="group",
                    xaxis_title="Signal (loan-equivalents)", yaxis_title="Work", height=520,
                    legend={"orientation": "h", "y": -0.15}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
st.plotly_chart(chart, key="trending_chart")

table = ranked.select(
    "title", "author", "subject", "score", "recent", "baseline", "loans_recent", "e_requests_recent",
    "acquisitions_recent", "reading_lists_recent", "institutions_holding", "sparkline", "pub_year", "format",
    pl.col("isbns").list.join("; ").alias("isbns"),
).with_columns(pl.col("recent", "baseline").round(0))
columns = {
    "score": st.column_config.NumberColumn("Score", format="%.2f"),
    "recent": st.column_config.NumberColumn("Recent", format="localized"),
    "baseline": st.column_config.NumberColumn("Baseline", format="localized"),
    "loans_recent": "Loans", "e_requests_recent": "E-requests", "acquisitions_recent": "Acquiring",
    "reading_lists_recent": "Reading lists", "institutions_holding": "Holders",
    "sparkline": st.column_config.LineChartColumn(f"Monthly signal ({2 * filters.window} months)"),
    "pub_year": st.column_config.NumberColumn("Year", format="%d"),
}
ui.table(table, hide_index=True, width="stretch", key="trending_table", column_config=columns)
export = ranked.drop("sparkline")
left, right = st.columns(2)
left.download_button("Download CSV", lambda rows=export, cfg=columns: ui.csv_bytes(rows, cfg), file_name=f"trending-{region}-{filters.window}m.csv",
                     mime="text/csv", key="trending_csv")
right.download_button("Download Excel", lambda rows=export, cfg=columns: ui.excel_bytes(rows, cfg), file_name=f"trending-{region}-{filters.window}m.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="trending_xlsx")
