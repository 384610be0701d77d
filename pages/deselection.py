"""Deselection and retention: own items against community holdings in the region."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import streamlit as st

import ui
from analytics.core.schema import region_name
from analytics.views import deselection as rules_module

(actor, _store, settings, institution), release = ui.collection_page("Deselection and retention")


@st.cache_data(max_entries=64, ttl=3600, show_spinner="Comparing your items with the community…")
def cached_candidates(release_id: str, code: str, rules: rules_module.DeselectionRules, data_version: str):
    return rules_module.deselection(actor, ui.current_release_handle(), settings.data_dir, code, rules)


st.caption(f"Your print items against community holdings in {region_name(institution.region)} "
           f"({ui.release_label(release)}).")
k_title = release.manifest["privacy"]["K_TITLE"]
with st.sidebar:
    st.header("Rules")
    years = st.number_input("No loans for at least (years)", 1, 50, 10, key="deselection_years")
    use_year = st.toggle("Only items published before a year", key="deselection_use_year")
    before = st.number_input("Published before", 1000, 2100, date.today().year - 10, key="deselection_before",
                             disabled=not use_year)
    # "Many" fits the region: 10, or half of its contributing institutions when it has fewer than 20.
    widely = rules_module.many_holders(release.manifest, "collection_development", institution.region)
    holders = st.number_input("Held by at least (institutions in the region)", k_title, 10_000, widely,
                              key="deselection_holders",
                              help=f"Counts below {k_title} are never released, so this starts at {k_title}. "
                                   f"The default, {widely}, fits the institutions that share in {region_name(institution.region)}.")
rules = rules_module.DeselectionRules(region=institution.region, no_loans_years=int(years),
                                      published_before=int(before) if use_year else None,
                                      min_holders=int(holders), limit=5000)
try:
    with ui.user_errors():
        result = cached_candidates(release.release_id, institution.code, rules, ui.local_data_version(institution.code))
except FileNotFoundError:
    st.info("Import your items first: the candidates come from your own item data.")
    st.stop()



def _explain_empty(rules) -> None:
    """Say which rule empties the withdrawal list, and offer the change that fills it."""
    fewer = replace(rules, min_holders=k_title)
    if rules.min_holders > k_title:
        relaxed = cached_candidates(release.release_id, institution.code, fewer, ui.local_data_version(institution.code))
        if relaxed["withdraw_total"]:
            st.info(f"No idle item is held by {rules.min_holders} or more institutions in {region_name(institution.region)}. "
                    f"With at least {k_title} holders, {relaxed['withdraw_total']:,} items are candidates.")
            st.button(f"Show items held by at least {k_title}", key="deselection_fewer_holders",
                      on_click=lambda: st.session_state.update(deselection_holders=k_title))
            return
    if rules.published_before:
        st.info(f"No item fits every rule: the list is narrowed to items published before {rules.published_before}. "
                "Turn that rule off or choose a later year.")
    else:
        st.info(f"None of your print items has gone {rules.no_loans_years} years without a loan while enough "
                f"institutions in {region_name(institution.region)} hold it. Lower the years without loans to see more.")


tiles = result["tiles"]
with st.container(horizontal=True):
    st.metric("Items", f"{tiles['items']:,}", border=True)
    st.metric("Zero use", f"{tiles['zero_use']:,}", border=True)
    st.metric("More than 3 uses", f"{tiles['more_than_3_uses']:,}", border=True)
    st.metric("Older than 10 years", f"{tiles['older_than_10_years']:,}", border=True)
    st.metric(f"Held by ≥ {result['rules'].min_holders}", f"{tiles['widely_held']:,}", border=True)
    st.metric(f"Scarce (held by ≤ {result['scarce_max_holders']})", f"{tiles['scarce']:,}", border=True)

view = st.segmented_control("List", ["Withdrawal candidates", "Retention candidates"], key="deselection_view",
                            default="Withdrawal candidates")
if view == "Retention candidates":
    frame, total = result["retain"], result["retain_total"]
    st.write(f"**{total:,}** of your items are works that at most {result['scarce_max_holders']} institutions in "
             f"{region_name(institution.region)} hold: keep them, or coordinate before withdrawing.")
    if result["nobody_retains"]:
        st.caption(f"{result['nobody_retains']:,} of them no one in {region_name(institution.region)} has committed to retain "
                   f"(\"Retained in region\": fewer than {k_title}, or none): the ones to keep.")
    name = "retention"
else:
    frame, total = result["withdraw"], result["withdraw_total"]
    st.write(f"**{total:,}** print items had no loan in {rules.no_loans_years} years"
             + (f", were published before {rules.published_before}" if rules.published_before else "")
             + f" and are held by at least {result['rules'].min_holders} institutions in {region_name(institution.region)}.")
    name = "withdrawal"
    if result["committed_left_out"]:
        st.caption(f"{result['committed_left_out']:,} more items fit these rules but are left out: you committed "
                   f"to retain their works (shared print; see My data).")
if total == 0 and view != "Retention candidates":
    _explain_empty(rules)
if total > frame.height:
    st.caption(f"Showing the first {frame.height:,}; the downloads hold the same rows.")
columns = {"pub_year": st.column_config.NumberColumn("Year", format="%d"),
           "institutions_holding": "Holders in region", "uses": "Uses", "last_use": "Last use",
           "retained_in_region": st.column_config.TextColumn(
               "Retained in region", help="Institutions in the region committed to retain the work (shared print), "
                                          "with the programs at least "
                                          f"{k_title} of them name; \"fewer than {k_title}\" means none or too few "
                                          "to show. Works others retain are safer to withdraw."),
           "committed_by_you": st.column_config.CheckboxColumn("You committed")}
# What the decision rests on (use, holders) comes right after the item; identifiers last.
first = [c for c in ("item_id", "title", "author", "call_number", "pub_year", "uses", "last_use",
                     "institutions_holding", "retained_in_region") if c in frame.columns]
frame = frame.select(first + [c for c in frame.columns if c not in first])
ui.table(frame, hide_index=True, width="stretch", key=f"deselection_{name}_table", column_config=columns)
left, right = st.columns(2)
left.download_button("Download CSV", lambda rows=frame, cfg=columns: ui.csv_bytes(rows, cfg), file_name=f"{institution.code}-{name}-candidates.csv",
                     mime="text/csv", key=f"deselection_{name}_csv")
right.download_button("Download Excel", lambda rows=frame, cfg=columns: ui.excel_bytes(rows, cfg), file_name=f"{institution.code}-{name}-candidates.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      key=f"deselection_{name}_xlsx")
