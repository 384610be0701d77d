"""Recommendations: evidence-backed suggestions by category and role, with their lifecycle."""

from __future__ import annotations

from datetime import datetime
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
from analytics.core.schema import ROLE_LABELS, region_name

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

built = ui.fmt_date(datetime.fromisoformat(part.manifest["created_at"]))
st.caption(f"For {ui.md_text(institution.name)} ({region_name(institution.region)}), from the community data built on {built} "
           f"(data as of {part.manifest['as_of']}). Each recommendation shows the numbers behind it: *yours* come "
           f"from your own data, *community* from what institutions of your region share for recommendations. At "
           f"most {MAX_PER_TYPE} per type, best first; open one to see its evidence and act on it.")

mine = {t for t, kind in CATALOG.items() if recommend.may_act(actor, t)}
show_all = st.toggle("Show every type (read-only for the types of other roles)", key="recommend_show_all",
                     help="By default you see the types your role acts on.")
visible = set(CATALOG) if show_all else mine
records = [r for r in result.records if r.type in visible]
open_records = [r for r in records if r.status == "new"]
handled = [r for r in records if r.status != "new"]

# Feedback is drawn where the user acted (the card, its Dismiss dialog, its type, the Reopen row), never
# at the top of the page. A callback leaves it here for the next run, which draws it in place. Its text is
# Markdown in which what comes from data (a title, a store message quoting one) is literal (ui.md_text).
FLASH = "recommend_flash"
flash = st.session_state.pop(FLASH, None)


def about(record) -> str:
    """What a recommendation is about, in words ("QE — Geology", a title): never its internal target key."""
    return str(record.evidence.get("label") or CATALOG[record.type].title)


def in_words(record, message: str) -> str:
    """A store message with the recommendation's internal target key replaced by what it is about."""
    return message.replace(f"({record.target})", f"(“{about(record)}”)").replace(record.target, about(record))


def feedback(where: str) -> None:
    """Draw the feedback left for `where` (a card, a dialog, a type, the handled tab), if any."""
    if flash and flash["where"] == where:
        (st.error if flash["kind"] == "error" else st.success)(flash["text"])


def act(record, status: str, where: str, **extra) -> None:
    try:
        store.set_recommendation_status(actor, code, record.id, status, expected_version=record.version, **extra)
    except UserError as exc:
        st.session_state[FLASH] = {"where": where, "kind": "error", "text": ui.md_text(in_words(record, str(exc)))}
    else:
        done = {"implemented": f"marked implemented {HOW_LABELS.get(extra.get('how'), '')}".rstrip(),
                "dismissed": "dismissed", "new": "reopened"}[status]
        # An implemented or dismissed card leaves the open list: its type says what happened to it.
        shown_at = f"type_{record.type}" if status != "new" else where
        st.session_state[FLASH] = {"where": shown_at, "kind": "success",
                                   "text": f"“{CATALOG[record.type].title}” for {ui.md_text(about(record))}: {done}. "
                                           + ("It is listed under Handled, where you can reopen it."
                                              if status != "new" else "It is open again.")}


def dismiss(record) -> None:
    # The reason and note are read when the button is clicked, not bound when it was drawn: a click that
    # follows a change of reason before the page has redrawn still dismisses with the reason chosen.
    act(record, "dismissed", f"dismiss_{record.id}", reason=st.session_state.get(f"recommend_reason_{record.id}"),
        note=st.session_state.get(f"recommend_note_{record.id}", ""))


def grade(record, value: str | None) -> None:
    try:
        store.grade_recommendation(actor, code, record.id, value, expected_version=record.version)
    except UserError as exc:
        st.session_state[FLASH] = {"where": f"card_{record.id}", "kind": "error",
                                   "text": ui.md_text(in_words(record, str(exc)))}
    else:
        st.session_state[FLASH] = {"where": f"card_{record.id}", "kind": "success",
                                   "text": f"Graded {GRADE_LABELS[value].lower()}. Thank you." if value
                                   else "Grade cleared."}


GRADE_LABELS = {"helpful": "Helpful", "not_helpful": "Not helpful"}

with st.container(horizontal=True):
    st.metric("Open", f"{len(open_records):,}", border=True)
    st.metric("Implemented", f"{sum(r.status == 'implemented' for r in records):,}", border=True)
    st.metric("Dismissed", f"{sum(r.status == 'dismissed' for r in records):,}", border=True)
    st.metric("Expired", f"{sum(r.status == 'expired' for r in records):,}", border=True)


def evidence_value(value) -> str:
    """An evidence value as read: thousands separators, no trailing '.0'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,.2f}".rstrip("0")
    return str(value)


def evidence_table(record) -> pl.DataFrame:
    """The evidence of a card as st.table shows it: its cells read Markdown, so each is escaped as
    literal text (in Python: a Polars map_elements deadlocked when several sessions drew the page)."""
    items = record.evidence.get("items", [])
    return pl.DataFrame({"Evidence": [ui.md_text(e["label"]) for e in items],
                         "Value": [ui.md_text(evidence_value(e["value"])) for e in items],
                         "Source": [ui.md_text(e["source"]) for e in items]},
                        schema={"Evidence": pl.String, "Value": pl.String, "Source": pl.String})


def card(record, expanded: bool) -> None:
    """One recommendation: its summary as the label of an expander holding the evidence and the actions
    (collapsed unless it is the first of the page); feedback on it is drawn inside."""
    kind = CATALOG[record.type]
    allowed = record.type in mine
    who = " or ".join(ROLE_LABELS[r] for r in kind.roles)
    with st.expander(ui.md_text(record.summary), expanded=expanded, key=f"recommend_card_{record.id}"):
        # A static table (five-odd rows): the browser draws it at once, where an interactive grid per card
        # cost the page about half a second. Its cells read Markdown, so each is escaped as literal text.
        st.table(evidence_table(record), hide_index=True, border="horizontal")
        st.markdown(f"**Impact:** {ui.md_text(record.impact)}")
        candidate = result.candidates.get((record.type, record.target))
        link = record.evidence.get("link")
        with st.container(horizontal=True):
            if candidate is not None and candidate.rows is not None and candidate.rows.height:
                # Deferred: the CSV is made only when the button is clicked, not on every rerun.
                name = "-".join((code, record.type.replace("_", "-"), record.target.replace(":", "-")))
                st.download_button(f"Download list ({ui.count(candidate.rows.height, 'row')}, CSV)",
                                   lambda rows=candidate.rows: ui.csv_bytes(rows),
                                   file_name=f"{name}.csv".replace("/", "-"),
                                   mime="text/csv", key=f"recommend_csv_{record.id}")
            if link:
                st.page_link(link["page"], label=ui.md_text(f"{link['label']} ({link['hint']})"),
                             icon=":material/arrow_forward:")
        feedback(f"card_{record.id}")
        if not allowed:
            st.caption(f"Only a {who} may act on this type.")
            return
        with st.container(horizontal=True):
            st.button("Implemented through this tool", key=f"recommend_tool_{record.id}", on_click=act,
                      args=(record, "implemented", f"card_{record.id}"), kwargs={"how": "tool"})
            st.button("Implemented by hand", key=f"recommend_manual_{record.id}", on_click=act,
                      args=(record, "implemented", f"card_{record.id}"), kwargs={"how": "manual"})
            with st.popover("Dismiss…", key=f"recommend_dismiss_{record.id}"):
                st.selectbox("Reason", list(DISMISS_REASONS), format_func=DISMISS_REASONS.get,
                                      key=f"recommend_reason_{record.id}")
                st.text_input("Note", key=f"recommend_note_{record.id}",
                                     help="Required when the reason is Other.")
                st.button("Dismiss", key=f"recommend_dismiss_go_{record.id}", on_click=dismiss, args=(record,))
                feedback(f"dismiss_{record.id}")
            for value, icon in (("helpful", ":material/thumb_up:"), ("not_helpful", ":material/thumb_down:")):
                chosen = record.grade == value
                st.button(GRADE_LABELS[value], icon=icon, key=f"recommend_grade_{value}_{record.id}", on_click=grade,
                          args=(record, None if chosen else value), type="primary" if chosen else "secondary",
                          help="Graded; click again to clear" if chosen else "Grade this recommendation")


tab_open, tab_handled, tab_usage, tab_about = st.tabs(["Open", "Handled", "How recommendations were used",
                                                       "About the types"])
with tab_open:
    if not open_records and not flash:
        st.info("No open recommendations for your role on this release."
                + ("" if show_all else " Turn on “Show every type” to see the other roles' ones."))
    first = True  # the first recommendation of the page (the best of the first group) is open
    for category in CATEGORIES:
        in_category = [t for t, kind in CATALOG.items() if kind.category == category and t in visible]
        rows = [r for r in open_records if r.type in in_category]
        flashed = [t for t in in_category if flash and flash["where"] == f"type_{t}"]
        if not rows and not flashed:
            continue
        st.subheader(f"{category} ({ui.count(len(rows), 'open recommendation')})")
        for type_id in in_category:
            of_type = [r for r in rows if r.type == type_id]
            if not of_type and type_id not in flashed:
                continue
            kind = CATALOG[type_id]
            with st.container(key=f"recommend_type_{type_id}"):
                st.markdown(f"#### {kind.title} ({len(of_type):,})", help=kind.explanation)
                feedback(f"type_{type_id}")
                if not of_type:
                    st.caption("No open recommendations of this type are left.")
                for record in of_type[:SHOWN_PER_TYPE]:
                    card(record, expanded=first)
                    first = False
                if len(of_type) > SHOWN_PER_TYPE and st.toggle(
                        f"Show the other {ui.count(len(of_type) - SHOWN_PER_TYPE, 'recommendation')}",
                        key=f"recommend_more_{type_id}"):
                    for record in of_type[SHOWN_PER_TYPE:]:
                        card(record, expanded=False)

with tab_handled:
    if not handled:
        st.info("Nothing implemented, dismissed or expired yet.")
    else:
        table = pl.DataFrame([{
            "Type": CATALOG[r.type].title, "About": about(r), "Status": STATUS_LABELS[r.status],
            "How / why": HOW_LABELS.get(r.how or "", "") or DISMISS_REASONS.get(r.reason or "", ""),
            "Note": r.note or "", "Grade": GRADE_LABELS.get(r.grade or "", ""),
            "By": r.updated_by if r.updated_by not in (None, "system") else "Automatically, at a release",
            "When": ui.fmt_date(r.updated_at)} for r in handled])
        ui.table(table, hide_index=True, width="stretch", key="recommend_handled_table")
        reopenable = {r.id: r for r in handled if r.status in ("implemented", "dismissed") and r.type in mine}
        if reopenable:
            with st.container(horizontal=True, vertical_alignment="bottom"):
                chosen = st.selectbox("Reopen", list(reopenable), key="recommend_reopen_pick",
                                      format_func=lambda i: f"{CATALOG[reopenable[i].type].title}: "
                                                            f"{about(reopenable[i])}")
                st.button("Reopen", key="recommend_reopen", on_click=act,
                          args=(reopenable[chosen], "new", "handled"))
    feedback("handled")

with tab_usage:
    usage = recommend.usage_overview(actor, store, code)
    if usage.height == 0:
        st.info("No recommendations yet: once recommendations are offered and acted on, this tab counts them by "
                "type and status over time.")
    else:
        current = pl.DataFrame([{"Type": CATALOG[r.type].title, "Status": STATUS_LABELS[r.status],
                                 "Grade": GRADE_LABELS.get(r.grade or "", "Not graded")} for r in result.records])
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
        graded = current.filter(pl.col("Grade") != "Not graded")
        st.caption(f"Graded {graded.height:,} of {ui.count(current.height, 'recommendation')}: "
                   f"{graded.filter(pl.col('Grade') == 'Helpful').height:,} helpful, "
                   f"{graded.filter(pl.col('Grade') == 'Not helpful').height:,} not helpful.")

# The catalog names the release's title threshold K_TITLE; the page says its value in this release.
k_title = part.manifest["privacy"]["K_TITLE"]


def with_threshold(text: str) -> str:
    return text.replace("K_TITLE - 1", f"{k_title - 1:,}").replace("K_TITLE", f"{k_title:,}")


with tab_about:
    st.write(f"Every type, who acts on it and when it fires. At most {MAX_PER_TYPE} per type are offered, best "
             f"first. A recommendation is offered once: once implemented or dismissed it comes back on a later "
             f"release only if its evidence changed materially, and an open one that is no longer true expires.")
    for type_id, kind in CATALOG.items():
        with st.expander(f"{kind.title} — {kind.category}", expanded=False):
            st.markdown(f"For: {', '.join(ROLE_LABELS[r] for r in kind.roles)}\n\n"
                        f"{kind.explanation}\n\n**Rule.** {with_threshold(kind.rule)}\n\n"
                        f"**Evidence.** {kind.evidence}\n\n**Impact.** {kind.impact}\n\n**Action.** {kind.action}\n\n"
                        f"**Offered again when** {kind.materiality[0].lower() + kind.materiality[1:]}")
