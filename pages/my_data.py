"""My data: the institution's imports and its data-quality (remediation) list."""

from __future__ import annotations

import polars as pl
import streamlit as st

import ui
from analytics.ingest import local
from analytics.views import retention

actor = ui.require_principal()
settings = ui.settings()
store = ui.store()
code = actor.institution_code


@st.cache_data(max_entries=32, ttl=900, show_spinner="Checking your records…")
def cached_quality(_actor, institution_code: str, data_version: str, email: str):
    # Keyed by small values; data_version changes whenever an import replaces a table.
    return local.data_quality(_actor, settings.data_dir, institution_code)


st.title("My data")
st.caption("Your institution's own data. It never leaves your institution except as the anonymized "
           "contributions described on the data sharing profile.")

st.header("Matching and data quality")
quality = cached_quality(actor, code, local.data_version(settings.data_dir, code), actor.email)
if quality is None:
    st.info("No items have been imported yet.")
else:
    matched_by_id = sum(quality.match_counts.get(m, 0) for m in ("isbn", "issn", "oclc"))
    by_title = quality.match_counts.get("fingerprint", 0)
    unmatched = quality.match_counts.get("unmatched", 0)
    with st.container(horizontal=True):
        st.metric("Items held", f"{quality.items:,}", border=True,
                  help="As on Home: items not withdrawn. Withdrawn items no longer reach the community.")
        st.metric("Matched by identifier", f"{matched_by_id / quality.items:.1%}" if quality.items else "—",
                  help="ISBN, ISSN or OCLC number", border=True)
        st.metric("Matched by title and author only", f"{by_title:,}", border=True,
                  help="No ISBN, ISSN or OCLC number: matched by title and author, which may miss or merge works.")
        st.metric("Cannot be matched", f"{unmatched:,}", border=True,
                  help="No identifier and no title to match on: invisible to the community.")
        st.metric("Call numbers without a subject", f"{quality.unparsed_call_numbers:,}", border=True)
    if by_title + unmatched:
        st.write(f"**{by_title + unmatched:,}** held items have no ISBN, ISSN or OCLC number "
                 f"({by_title:,} matched by title and author only, {unmatched:,} not matched at all): the figure "
                 "the data-quality recommendation gives.")
    if quality.withdrawn:
        st.caption(f"Not counted here: {ui.count(quality.withdrawn, 'withdrawn item')}.")
    st.write("Records matched by title and author only may be missed or merged wrongly; records that cannot be "
             "matched are invisible to trends, recommendations and benchmarks. Adding an ISBN, ISSN or OCLC "
             "number, or an LC call number, in your library system fixes them at the next import.")
    if quality.problems.height:
        ui.table(quality.problems, hide_index=True, width="stretch", key="my_data_problems")
        st.download_button("Download the list (CSV)", lambda rows=quality.problems: ui.csv_bytes(rows),
                           file_name=f"{code}-data-quality.csv", mime="text/csv", key="my_data_download")
    else:
        st.success("Every record carries an identifier and an LC call number.")

st.header("Retention commitments")
commitments = retention.own_commitments(actor, settings.data_dir, code)
if commitments is None or commitments.is_empty():
    st.info("No retention commitments have been imported. If you retain titles for a shared-print program "
            "(EAST, WEST, HathiTrust Shared Print, ...), import them on Import data: as MARC records with 583 "
            "\"committed to retain\" notes, or as a table (identifier, program, committed on, retain until). "
            "Deselection then never proposes what you committed to retain.")
else:
    current = commitments.filter(commitments["status"] == "current").height
    released = ui.current_release()  # its manifest: the threshold the community data obeys
    k_title = released["privacy"]["K_TITLE"] if released else settings.k_title
    st.write(f"**{current:,}** current commitments ({commitments.height - current:,} ended). Current ones are "
             "shared, when collection development sharing is on, only as counts of committing institutions per "
             f"work, with the programs and years that at least {k_title:,} of them name; ended ones are never "
             "shared.")
    commitment_columns = {"program": "Program", "committed_on": "Committed on",
                          "retain_until": st.column_config.DateColumn("Retain until", help="Empty: indefinite"),
                          "status": "Status", "title": "Work", "identifier": "Identifier",
                          "source": "From"}
    ui.table(commitments, hide_index=True, width="stretch", key="my_data_commitments",
             column_config=commitment_columns)
    st.download_button("Download commitments (CSV)",
                       lambda rows=commitments, cfg=commitment_columns: ui.csv_bytes(rows, cfg),
                       file_name=f"{code}-retention-commitments.csv", mime="text/csv",
                       key="my_data_commitments_csv")

st.header("Import history")
history = store.import_history(actor, code)
if history:
    ui.table(
        pl.DataFrame({
            "When": [ui.fmt_date(h["at"]) for h in history],
            "Kind": [h["kind"] for h in history],
            "File": [h["file_name"] for h in history],
            "Status": [h["status"] for h in history],
            "Read": [h["rows_read"] for h in history],
            "Kept": [h["rows_kept"] for h in history],
            "Rejected": [h["rows_rejected"] for h in history],
            "By": [h["actor"] for h in history],
        }),
        hide_index=True, width="stretch",
    )
else:
    st.write("No imports yet.")
