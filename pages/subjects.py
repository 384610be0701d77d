"""Subject overview: community holdings and use by LC class and subclass next to your own."""

from __future__ import annotations

import plotly.express as px
import polars as pl
import streamlit as st

import ui
from analytics.release import trending
from analytics.views import trends
from analytics.views import subject_overview
from analytics.core.schema import REGION_LABELS, REGIONS

(actor, _store, settings, institution), release = ui.collection_page("Subject overview")


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Summing by subject…")
def cached_overview(release_id: str, code: str, region: str, window: int, data_version: str):
    return subject_overview.subject_overview(actor, ui.current_release_handle(), settings.data_dir, code, region, window)


st.caption(f"Community holdings and use in a region next to {ui.md_text(institution.name)}'s own "
           f"({ui.release_label(release)}).")
with st.sidebar:
    st.header("Filters")
    region = st.selectbox("Region", REGIONS, index=REGIONS.index(institution.region), key="subjects_region",
                          format_func=lambda r: f"{r} — {REGION_LABELS[r]}")
    window = st.segmented_control("Growth window (months)", trends.WINDOWS, default=6, key="subjects_window") or 6
    level = st.segmented_control("Level", ["Class", "Subclass"], default="Class", key="subjects_level") or "Class"

overview = cached_overview(release.release_id, institution.code, region, window,
                           ui.local_data_version(institution.code))
if overview.height == 0:
    st.info("No subject data for this region yet.")
    st.stop()

keys = ["lc_class", "lc_class_caption"] if level == "Class" else ["lc_class", "lc_subclass", "lc_subclass_caption"]
summed = ["community_holdings", "community_loans", "own_holdings", "own_loans", "recent", "baseline",
          "community_holdings_share", "community_loans_share", "own_holdings_share", "own_loans_share"]
table = (
    overview.group_by(keys).agg(pl.col(summed).sum())
    .with_columns(
        pl.when(pl.col("community_holdings_share") > 0)
        .then(pl.col("community_loans_share") / pl.col("community_holdings_share")).alias("community_relative_use"),
        pl.when(pl.col("own_holdings_share") > 0)
        .then(pl.col("own_loans_share") / pl.col("own_holdings_share")).alias("own_relative_use"),
        ((pl.col("recent") + trending.SMOOTHING) / (pl.col("baseline") + trending.SMOOTHING)).log().alias("growth"),
    )
    .sort(keys)
)

# Colour: relative use on a log scale centred on 1 (as much use as holdings), symmetric: a
# subject used twice its share is as far from white as one used half its share. Clipped at
# 4 times and a quarter, so a tiny subject with a few loans does not wash out every other tile.
SPAN = 2  # log2: 4x
chart_data = overview.filter(pl.col("community_holdings") > 0).with_columns(
    pl.col("lc_class_caption").fill_null("Unknown"), pl.col("lc_subclass_caption").fill_null("Unknown"),
    pl.col("community_relative_use").fill_null(0.0).log(base=2).clip(-SPAN, SPAN).alias("use_log2"))
treemap = px.treemap(
    chart_data.to_pandas(), path=[px.Constant(f"All subjects ({region})"), "lc_class_caption", "lc_subclass"],
    values="community_holdings", color="use_log2", color_continuous_scale="RdBu", range_color=(-SPAN, SPAN),
    color_continuous_midpoint=0.0, hover_data={"lc_subclass_caption": True, "community_loans": True, "use_log2": False},
    title=f"Community holdings in {REGION_LABELS.get(region, region)} by LC class and subclass (size: holdings; colour: use for its size)",
)
treemap.update_layout(height=560, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      coloraxis_colorbar={"title": "Relative use<br>(loan share ÷<br>holdings share)",
                                          "tickvals": [-2, -1, 0, 1, 2],
                                          "ticktext": ["¼× or less", "½×", "1× (its share)", "2×", "4× or more"]})
st.plotly_chart(treemap, key="subjects_treemap")

st.subheader(f"By {level.lower()}")
st.caption("Relative use = share of loans ÷ share of holdings (above 1: used more than its share of the "
           "collection). Community figures count only released rows, i.e. works and months where at least "
           f"{release.manifest['privacy']['K_TITLE']} institutions of the region contribute; your own figures "
           "count all your items and the last 12 complete months of loans.")
columns = {
    "community_holdings_share": st.column_config.NumberColumn("Community holdings share", format="percent"),
    "community_loans_share": st.column_config.NumberColumn("Community loans share", format="percent"),
    "own_holdings_share": st.column_config.NumberColumn("Own holdings share", format="percent"),
    "own_loans_share": st.column_config.NumberColumn("Own loans share", format="percent"),
    "community_relative_use": st.column_config.NumberColumn("Community relative use", format="%.2f"),
    "own_relative_use": st.column_config.NumberColumn("Own relative use", format="%.2f"),
    "growth": st.column_config.NumberColumn(f"Growth ({window} months)", format="%.2f"),
}
ui.table(table.drop("recent", "baseline"), hide_index=True, width="stretch", key="subjects_table",
         column_config=columns)

st.subheader("Fastest-growing subjects")
fastest = (overview.filter(pl.col("recent") >= 50).sort("growth", descending=True).head(10)
           .select("lc_subclass", "lc_subclass_caption", "recent", "baseline", "growth")
           .with_columns(pl.col("recent", "baseline").round(0)))
if fastest.height:
    ui.table(fastest, hide_index=True, width="stretch", key="subjects_fastest",
                 column_config={"growth": st.column_config.NumberColumn("Growth", format="%.2f"),
                                "recent": st.column_config.NumberColumn(f"Signal, last {window} months", format="localized"),
                                "baseline": st.column_config.NumberColumn(f"Signal, {window} months before",
                                                                          format="localized")})
else:
    st.write("No subclass has enough use in this window to rank (a signal of at least 50).")
left, right = st.columns(2)
left.download_button("Download CSV", lambda rows=table, cfg=columns: ui.csv_bytes(rows, cfg), file_name=f"subjects-{region}.csv", mime="text/csv",
                     key="subjects_csv")
right.download_button("Download Excel", lambda rows=table, cfg=columns: ui.excel_bytes(rows, cfg), file_name=f"subjects-{region}.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="subjects_xlsx")
