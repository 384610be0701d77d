"""Recommendations: evidence-backed suggestions by category and role, with their lifecycle."""

from __future__ import annotations

from pathlib import Path

import plotly.express as px
import polars as pl
import streamlit as st

import ui
from analytics.core.errors import UserError
from analytics.views import recommend
from analytics.control.recommend_catalog import (
    CATALOG,
    CATEGORIES,
    DISMISS_REASONS,
    HOW_LABELS,
    MAX_PER_TYPE,
)
from analytics.release.manifest import current_release_id
from analytics.core.schema import ROLE_LABELS

SHOWN_PER_TYPE = 3
STATUS_LABELS = {"new": "Open", "implemented": "Implemented", "dismissed": "Dismissed", "expired": "Expired"}

actor, store, settings, institution = ui.institution_page(
    "Recommendations", recommend.require_recommendations,
    "Recommendations compare your data with what participating institutions share for recommendations; "
    "institutions that do not share receive none.")
code = institution.code


@st.cache_resource(max_entries=2, show_spinner="Opening the community release…")
def open_part(community_dir: str, release_id: str):
    return recommend.open_part(Path(community_dir), release_id)


# Keyed by release, institution and local data version; the candidates are read-only.
@st.cache_resource(max_entries=32, ttl=3600, show_spinner="Comparing your data with the community…")
def candidates_for(release_id: str, code: str, region: str, data_version: str):
    return recommend.generate(actor, open_part(str(settings.community_dir), release_id), settings.data_dir, code,
                              region)


release_id = current_release_id(settings.community_dir)
if release_id is None:
    ui.stop_without_release()
with ui.user_errors():
    part = open_part(str(settings.community_dir), release_id)
    candidates = candidates_for(release_id, code, institution.region, ui.local_data_version(code))
    result = recommend.recommendations(actor, store, part, settings.data_dir, code, candidates=candidates)

st.caption(f"For {ui.md_text(institution.name)} ({institution.region}), from release {release_id} (data as of "
           f"{part.manifest['as_of']}). Each recommendation shows the numbers behind it: *yours* come from your own "
           f"data, *community* from what institutions of your region share for recommendations. At most "
           f"{MAX_PER_TYPE} per type, best first.")

mine = {t for t, kind in CATALOG.items() if recommend.may_act(actor, t)}
show_all = st.toggle("Show every type (read-only for the types of other roles)", key="recommend_show_all",
                     help="By default you see the types your role acts on.")
visible = set(CATALOG) if show_all else mine
records = [r for r in result.records if r.type in visible]
open_records = [r for r in records if r.status == "new"]
handled = [r for r in records if r.status != "new"]


def act(record, status: str, **extra) -> None:
    try:
        store.set_recommendation_status(actor, code, record.id, status, expected_version=record.version, **extra)
    except UserError as exc:
        st.session_state["recommend_error"] = str(exc)
    else:
        st.session_state["recommend_done"] = f"{CATALOG[record.type].title}: {record.target} is now " \
                                             f"{STATUS_LABELS[status].lower()}."


def grade(record, value: str | None) -> None:
    try:
        store.grade_recommendation(actor, code, record.id, value, expected_version=record.version)
    except UserError as exc:
        st.session_state["recommend_error"] = str(exc)


for flash, show in (("recommend_error", st.error), ("recommend_done", st.success)):
    if flash in st.session_state:
        show(st.session_state.pop(flash))

with st.container(horizontal=True):
    st.metric("Open", len(open_records), border=True)
    st.metric("Implemented", sum(r.status == "implemented" for r in records), border=True)
    st.metric("Dismissed", sum(r.status == "dismissed" for r in records), border=True)
    st.metric("Expired", sum(r.status == "expired" for r in records), border=True)


def evidence_table(record) -> pl.DataFrame:
    items = record.evidence.get("items", [])
    return pl.DataFrame({"Evidence": [e["label"] for e in items], "Value": [str(e["value"]) for e in items],
                         "Source": [e["source"] for e in items]})


def card(record) -> None:
    kind = CATALOG[record.type]
    allowed = record.type in mine
    who = " or ".join(ROLE_LABELS[r] for r in kind.roles)
    with st.container(border=True, key=f"recommend_card_{record.id}"):
        st.markdown(f"**{ui.md_text(record.summary)}**")
        ui.table(evidence_table(record), hide_index=True, width="stretch", key=f"recommend_evidence_{record.id}")
        st.markdown(f"**Impact:** {ui.md_text(record.impact)}")
        candidate = result.candidates.get((record.type, record.target))
        link = record.evidence.get("link")
        with st.container(horizontal=True):
            if candidate is not None and candidate.rows is not None and candidate.rows.height:
                # Deferred: the CSV is made only when the button is clicked, not on every rerun.
                st.download_button(f"Download list ({ui.count(candidate.rows.height, 'row')}, CSV)",
                                   lambda rows=candidate.rows: ui.csv_bytes(rows),
                                   file_name=f"{code}-{record.type}-{record.target}.csv".replace("/", "-"),
                                   mime="text/csv", key=f"recommend_csv_{record.id}")
            if link:
                st.page_link(link["page"], label=ui.md_text(f"{link['label']} ({link['hint']})"), icon=":material/arrow_forward:")
        if not allowed:
            st.caption(f"Only a {who} may act on this type.")
            return
        with st.container(horizontal=True):
            st.button("Implemented through this tool", key=f"recommend_tool_{record.id}", on_click=act,
                      args=(record, "implemented"), kwargs={"how": "tool"})
            st.button("Implemented by hand", key=f"recommend_manual_{record.id}", on_click=act,
                      args=(record, "implemented"), kwargs={"how": "manual"})
            with st.popover("Dismiss…", key=f"recommend_dismiss_{record.id}"):
                reason = st.selectbox("Reason", list(DISMISS_REASONS), format_func=DISMISS_REASONS.get,
                                      key=f"recommend_reason_{record.id}")
                note = st.text_input("Note", key=f"recommend_note_{record.id}",
                                     help="Required when the reason is Other.")
                st.button("Dismiss", key=f"recommend_dismiss_go_{record.id}", on_click=act,
                          args=(record, "dismissed"), kwargs={"reason": reason, "note": note})
            grades = {"helpful": ("Helpful", ":material/thumb_up:"), "not_helpful": ("Not helpful",
                                                                               ":material/thumb_down:")}
            for value, (label, icon) in grades.items():
                chosen = record.grade == value
                st.button(label, icon=icon, key=f"recommend_grade_{value}_{record.id}", on_click=grade,
                          args=(record, None if chosen else value), type="primary" if chosen else "secondary",
                          help="Graded; click again to clear" if chosen else "Grade this recommendation")


tab_open, tab_handled, tab_usage, tab_about = st.tabs(["Open", "Handled", "How recommendations were used",
                                                       "About the types"])
with tab_open:
    if not open_records:
        st.info("No open recommendations for your role on this release."
                + ("" if show_all else " Turn on “Show every type” to see the other roles' ones."))
    for category in CATEGORIES:
        in_category = [t for t, kind in CATALOG.items() if kind.category == category and t in visible]
        rows = [r for r in open_records if r.type in in_category]
        if not rows:
            continue
        st.subheader(category)
        for type_id in in_category:
            of_type = [r for r in rows if r.type == type_id]
            if not of_type:
                continue
            kind = CATALOG[type_id]
            st.markdown(f"#### {kind.title} ({len(of_type)})")
            st.caption(kind.explanation)
            more = len(of_type) > SHOWN_PER_TYPE and st.toggle(
                f"Show all {len(of_type)}", key=f"recommend_more_{type_id}")
            for record in of_type if more else of_type[:SHOWN_PER_TYPE]:
                card(record)

with tab_handled:
    if not handled:
        st.info("Nothing implemented, dismissed or expired yet.")
    else:
        table = pl.DataFrame([{
            "id": r.id, "Type": CATALOG[r.type].title, "About": r.evidence.get("label", r.target),
            "Status": STATUS_LABELS[r.status],
            "How / why": HOW_LABELS.get(r.how or "", "") or DISMISS_REASONS.get(r.reason or "", ""),
            "Note": r.note or "", "Grade": (r.grade or "").replace("_", " "), "By": r.updated_by or "system",
            "When": ui.fmt_date(r.updated_at)} for r in handled])
        ui.table(table.drop("id"), hide_index=True, width="stretch", key="recommend_handled_table")
        reopenable = {r.id: r for r in handled if r.status in ("implemented", "dismissed") and r.type in mine}
        if reopenable:
            with st.container(horizontal=True, vertical_alignment="bottom"):
                chosen = st.selectbox("Reopen", list(reopenable), key="recommend_reopen_pick",
                                      format_func=lambda i: f"{CATALOG[reopenable[i].type].title}: "
                                                            f"{reopenable[i].evidence.get('label', reopenable[i].target)}")
                st.button("Reopen", key="recommend_reopen", on_click=act, args=(reopenable[chosen], "new"))

with tab_usage:
    usage = recommend.usage_overview(actor, store, code)
    if usage.height == 0:
        st.info("No recommendations yet.")
    else:
        current = pl.DataFrame([{"Type": CATALOG[r.type].title, "Status": STATUS_LABELS[r.status],
                                 "Grade": (r.grade or "not graded").replace("_", " ")} for r in result.records])
        st.markdown("**Now, by type and status**")
        pivot = (current.group_by("Type", "Status").len().pivot(on="Status", index="Type", values="len")
                 .fill_null(0).sort("Type"))
        ui.table(pivot, hide_index=True, width="stretch", key="recommend_usage_table")
        by_month = (usage.with_columns(pl.col("value").replace_strict(STATUS_LABELS, default=pl.col("value")))
                    .group_by("month", "value").agg(pl.col("count").sum()).sort("month", "value"))
        chart = px.bar(by_month.to_pandas(), x="month", y="count", color="value", barmode="stack",
                       title="Recommendation status changes per month",
                       labels={"month": "Month", "count": "Changes (recommendations)", "value": "Changed to"})
        st.plotly_chart(chart, key="recommend_usage_chart")
        graded = current.filter(pl.col("Grade") != "not graded")
        st.caption(f"Graded {graded.height} of {current.height}: "
                   f"{graded.filter(pl.col('Grade') == 'helpful').height} helpful, "
                   f"{graded.filter(pl.col('Grade') == 'not helpful').height} not helpful.")

with tab_about:
    st.write(f"Every type, who acts on it and when it fires. At most {MAX_PER_TYPE} per type are offered, best "
             f"first. A recommendation is offered once: once implemented or dismissed it comes back on a later "
             f"release only if its evidence changed materially, and an open one that is no longer true expires.")
    for type_id, kind in CATALOG.items():
        with st.expander(f"{kind.title} — {kind.category}", expanded=False):
            st.markdown(f"`{type_id}` · for: {', '.join(ROLE_LABELS[r] for r in kind.roles)}\n\n"
                        f"{kind.explanation}\n\n**Rule.** {kind.rule}\n\n**Evidence.** {kind.evidence}\n\n"
                        f"**Impact.** {kind.impact}\n\n**Action.** {kind.action}\n\n"
                        f"**Offered again when** {kind.materiality[0].lower() + kind.materiality[1:]}")
