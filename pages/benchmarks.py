"""Benchmarks: your KPIs against the distribution of similar institutions in your region."""

from __future__ import annotations

import re
from datetime import date

import plotly.graph_objects as go
import polars as pl
import streamlit as st

import ui
from analytics.core.schema import REGION_LABELS
from analytics.release import benchmark_cells
from analytics.views import benchmark
from analytics.release.privacy import quantile_rank_error

actor, store, settings, institution = ui.institution_page(
    "Benchmarks", benchmark.require_benchmark_view,
    "Benchmarks pool what participating institutions share; institutions that do not share do not see them.")
code = institution.code
release = ui.current_release_handle()
if release is None:
    ui.stop_without_release()
as_of = date.fromisoformat(release.manifest["as_of"])


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Computing your own KPIs…")
def own_values(code: str, release_id: str, data_version: str) -> pl.DataFrame:
    return benchmark.own_counted(actor, settings.data_dir, store.institution(actor, code), as_of,
                                 store.own_kpi_values(actor, code, release_id))


@st.cache_data(max_entries=256, ttl=3600, show_spinner=False)
def report_rows(code: str, release_id: str, data_version: str, group: str, variant: str, monthly: bool):
    return benchmark.report(release, store.institution(actor, code), own_values(code, release_id, data_version),
                            peer_group=group, variant=variant, monthly=monthly)


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def groups_of(release_id: str, region: str) -> pl.DataFrame:
    return benchmark.released_groups(release, region)


version = ui.local_data_version(code)
privacy = release.manifest["privacy"]
k_bench = privacy["K_BENCH"]
noisy = privacy.get("epsilon") is not None
region = REGION_LABELS.get(institution.region, institution.region)
st.caption(f"{ui.md_text(institution.name)} against institutions of {region} that share benchmark data, with "
           f"community data as of {as_of.day} {as_of:%B %Y}. Only complete periods are compared; a peer statistic "
           f"is shown only when at least {k_bench} institutions contribute and none makes up more than "
           f"{privacy['DOMINANCE']:.0%} of a total.")
if not institution.live_for_a_year(as_of):
    st.info(f"{institution.code} has been live for less than a year: you see the benchmarks, but your own data "
            f"joins them only from {institution.first_anniversary.isoformat()} on.")
if noisy:
    st.warning(f"Peer statistics in this release are noisy on purpose (differential privacy, ε = "
               f"{privacy['epsilon']} per institution and year). Only the yearly quartiles of ratio KPIs for all "
               f"institutions and by type are released; each row says how precise they are.",
               icon=":material/blur_on:")

groups = groups_of(release.release_id, institution.region)
mine = benchmark_cells.group_names(institution.type, institution.size_band, institution.country)
available = sorted(set(groups["peer_group"].to_list()) | {"all"}, key=benchmark_cells.group_rank)
sizes = dict(zip(groups["peer_group"], groups["institutions"]))


def group_option(name: str) -> str:
    """A peer group in the selector: its name in words, whether it is yours, and whether it has statistics
    (its size is said under the selector: the sidebar is too narrow for both)."""
    return (f"{benchmark.group_label(name)}{' (yours)' if name in mine else ''}"
            f"{'' if sizes.get(name) else ' — none released'}")


with st.sidebar:
    st.header("Compare with")
    group = st.selectbox(
        "Peer group", available, key="benchmark_group", format_func=group_option,
        help="Groups are built from the profile (type, size band from FTE students, country) within your region; "
             "only groups with at least one released peer statistic are offered.")
    st.caption(f"{benchmark.group_label(group)}: "
               + (f"up to {ui.count(sizes[group], 'institution')} in each statistic." if sizes.get(group)
                  else "no peer statistic of this group is released."))
    view = st.segmented_control("Periods", ["Yearly", "Monthly"], default="Yearly", key="benchmark_view")
    trim = st.toggle("Trim outliers (10% at each end)", key="benchmark_trim", disabled=noisy,
                     help="A released variant of the statistics without the top and bottom 10% of institutions; "
                          "withheld for groups too small to trim without singling one out.")
monthly = view == "Monthly"
rows = report_rows(code, release.release_id, version, group, "trim10" if trim else "none", monthly)
if groups.height == 0:
    # Every benchmark of the region is suppressed: say why at the top, not only cell by cell.
    shared = release.manifest.get("contributors", {}).get("benchmark", {}).get(institution.region, 0)
    why = (f"only {ui.count(shared, 'institution')} of {region} shared benchmark data in this release"
           if shared < k_bench else
           f"{ui.count(shared, 'institution')} of {region} shared benchmark data in this release, but for no KPI "
           f"and period did {k_bench} of them have data")
    st.warning(f"**No peer statistics for {region} yet.** A peer statistic needs at least {k_bench} institutions "
               f"of the region that share benchmark data for the same KPI and period; {why}. Your own values are "
               f"listed below, so you can follow your trend. Peer figures appear with the first release after at "
               f"least {k_bench} institutions of {region} share Benchmark Analytics data (an institution switches "
               f"sharing on in its data sharing profile; it takes effect on the 1st of the next month, and an "
               f"institution's data joins a year after it goes live).", icon=":material/group_off:")
if rows.height == 0:
    st.info("No KPI values yet: import your items and loans (and annual statistics) first.")
    st.stop()
if groups.height and rows["suppressed"].all():
    st.info(f"No KPI has a released peer statistic for the group “{benchmark.group_label(group)}” in the "
            f"{'monthly' if monthly else 'yearly'} figures{' with outliers trimmed' if trim else ''}; the notes "
            f"under the table say why. Try a broader peer group{', yearly figures' if monthly else ''}"
            f"{' or turn trimming off' if trim else ''}.")

fmt = benchmark.format_value


PROTECTED = "peers ±2–5% each"
rank_error = None  # of the released quartiles, in institutions by rank, 9 times in 10
if noisy and privacy.get("benchmark", {}).get("epsilon_per_statistic"):
    rank_error = quantile_rank_error(privacy["benchmark"]["epsilon_per_statistic"])


def precision(r: dict) -> str:
    if r["suppressed"]:
        return "—"
    if r["method"] == "protected":
        return PROTECTED
    if r["method"] != "dp":
        return "exact"
    parts = [f"mean ± {r['mean_noise_sd']:.3g} (1 sd)"] if r["mean_noise_sd"] is not None else []
    if rank_error is not None and r["n"]:
        parts.append(f"quartiles within about {rank_error:.0f} of {r['n']} institutions by rank (9 times in 10)"
                     if rank_error < r["n"] / 4 else "quartiles close to random at this privacy budget")
    parts.append(f"grid step {r['quantile_step']:.3g}")
    stale = f" — {r['reason']}" if (r["reason"] or "").startswith("stale") else ""
    return "noisy: " + ", ".join(parts) + stale


st.subheader("KPI watchlist")
watch = benchmark.watchlist(rows)
# Formatted in Python, row by row: a polars map_elements (a Python function called from polars'
# thread pool) deadlocked when several sessions drew this page at once.
records = watch.to_dicts()


table = pl.DataFrame({
    "KPI": [r["name"] for r in records],
    "Period": [r["period"] for r in records],
    "Your value": [fmt(r["own_value"], r["unit"]) for r in records],
    "Peer median": [benchmark.reason_status(r["reason"]) if r["suppressed"] else fmt(r["median"], r["unit"])
                    for r in records],
    "Your position": [r["band"] or "—" for r in records],
    "Institutions": [f"{r['n']:,}" if r["n"] is not None else "—" for r in records],
    "Change since last period": [fmt(r["own_change"], r["unit"], signed=True) for r in records],
    "Unit": [r["unit"] for r in records],
    "Better": [r["direction"] for r in records],
    "Precision": [precision(r) for r in records],
}, schema=dict.fromkeys(["KPI", "Period", "Your value", "Peer median", "Your position", "Institutions",
                         "Change since last period", "Unit", "Better", "Precision"], pl.String))
ui.table(table, hide_index=True, width="stretch", key="benchmark_watchlist", column_config={
    "Period": st.column_config.TextColumn("Period", width=80),  # wide enough for a month (2026-10)
    "Peer median": st.column_config.TextColumn(
        "Peer median", alignment="right", help="The middle value of the peer group. Where no statistic is released, a short status "
                            "says why; the notes under the table explain each status."),
    **{name: st.column_config.TextColumn(name, alignment="right")
       for name in ("Your value", "Institutions", "Change since last period")},
    "Your position": st.column_config.TextColumn(
        "Your position", help="Where your value falls among the peers: lower quarter, below the middle, above the "
                              "middle or upper quarter (a quarter of the peers in each)."),
})
# The full reason of each status the table shows, once each.
notes = {}
for r in records:
    if r["suppressed"]:
        notes.setdefault(benchmark.reason_status(r["reason"]), set()).add(benchmark.reason_note(r["reason"]))
if notes:
    st.caption("  \n".join(f"**{status.capitalize()}**: {ui.md_text(' '.join(sorted(texts)))}"
                           for status, texts in notes.items()))
# The file is made when clicked; its name has the group in words, not its internal code.
group_slug = re.sub(r"[^A-Za-z0-9]+", "-", benchmark.group_label(group)).strip("-").lower()
st.download_button("Download CSV", lambda data=rows: ui.csv_bytes(data), mime="text/csv", key="benchmark_csv",
                   file_name=f"{code}-benchmarks-{group_slug}-{'monthly' if monthly else 'yearly'}.csv")

names = {k: kpi.name for k, kpi in benchmark.CATALOG.items() if k in set(rows["kpi"])}
kpi = st.selectbox("KPI", list(names), format_func=names.get, key="benchmark_kpi")
spec = benchmark.CATALOG[kpi]
series = rows.filter(pl.col("kpi") == kpi).sort("period")
latest = series.filter(~pl.col("suppressed")).tail(1)
# Legends sit above the plot area (never over the axis and its tick labels); the titles are
# subheaders above the charts, so they wrap instead of being cut at the chart's edge.
LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0}
MARGIN = {"t": 40, "b": 50, "l": 10, "r": 10}
left, right = st.columns(2)
with left:
    if latest.height:
        r = latest.row(0, named=True)
        st.subheader(f"{spec.name}, {r['period']}: you and your peers")
        row = f"{r['n']:,} peers"  # the one row the box and your value share
        chart = go.Figure()
        chart.add_trace(go.Box(
            y=[row], q1=[r["p25"]], median=[r["median"]], q3=[r["p75"]],
            **({"mean": [r["mean"]]} if r["mean"] is not None else {}),  # no mean under differential privacy
            lowerfence=[r["p25"]], upperfence=[r["p75"]], name="Middle half of peers",
            boxmean=r["mean"] is not None, orientation="h", hoverinfo="x"))
        if r["own_value"] is not None:
            chart.add_trace(go.Scatter(x=[r["own_value"]], y=[row], mode="markers",
                                       marker={"size": 14, "symbol": "diamond", "color": "#d62728"},
                                       name=f"You ({fmt(r['own_value'], spec.unit)})"))
        chart.update_layout(xaxis_title=f"{spec.name} ({spec.unit})", yaxis={"type": "category"}, height=280,
                            legend=LEGEND, margin=MARGIN)
        st.plotly_chart(chart, key="benchmark_distribution")
        st.caption("The box is the middle half of the peer group (a quarter of the peers lie below it, a quarter "
                   "above), with the median (line)"
                   + (" and mean (dashed)" if r["mean"] is not None else "") + " of the peer group; the diamond "
                   "is your value."
                   + (" Each peer's value carries a fixed protective offset of 2–5% before it is pooled, so no "
                      "institution's figure can be worked out from these statistics; yours is shown exact."
                      if r["method"] == "protected" else "")
                   + (f" {r['reason'][0].upper()}{r['reason'][1:]}." if r["mean"] is None and r["reason"]
                      and r["method"] != "dp" else ""))
    else:
        st.subheader(f"{spec.name}: you and your peers")
        st.info(f"No peer statistics for {spec.name} in this peer group: "
                + benchmark.reason_note(series["reason"].drop_nulls().last()))
with right:
    st.subheader(f"{spec.name} over time")
    trend = go.Figure()
    released = series.filter(~pl.col("suppressed"))
    if released.height:
        trend.add_trace(go.Scatter(x=released["period"], y=released["p75"], mode="lines", line={"width": 0},
                                   showlegend=False, hoverinfo="skip"))
        trend.add_trace(go.Scatter(x=released["period"], y=released["p25"], mode="lines", line={"width": 0},
                                   fill="tonexty", fillcolor="rgba(31,119,180,0.2)", name="Middle half of peers"))
        trend.add_trace(go.Scatter(x=released["period"], y=released["median"], mode="lines+markers",
                                   name="Peer median", line={"color": "#1f77b4"}))
    own_series = series.filter(pl.col("own_value").is_not_null())
    trend.add_trace(go.Scatter(x=own_series["period"], y=own_series["own_value"], mode="lines+markers",
                               name="You", line={"color": "#d62728"}))
    trend.update_layout(xaxis_title="Month" if monthly else "Year", yaxis_title=f"{spec.name} ({spec.unit})",
                        height=280, legend=LEGEND, margin=MARGIN, xaxis={"type": "category"})
    st.plotly_chart(trend, key="benchmark_trend")

with st.expander("About the KPIs", expanded=False):
    st.markdown("\n".join(
        f"- **{k.name}**: {k.formula}. Unit: {k.unit}. Periods: {k.periods}. Better: {k.direction}. "
        f"Source: {k.source}." for k in benchmark.CATALOG.values()))
