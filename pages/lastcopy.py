"""Last-copy check: a list from the library system back with holders in the region, retention
commitments and a verdict per row, as CSV or Excel to load back."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

import ui
from analytics.core.schema import region_name
from analytics.views import lastcopy

(actor, _store, settings, institution), release = ui.collection_page("Last-copy check")
PREVIEW_ROWS = 1000
NONE = "(none)"
LABELS = {"isbn": "ISBN", "issn": "ISSN", "oclc_number": "OCLC number", "title": "Title", "author": "Author"}


@st.cache_data(max_entries=8, ttl=3600, show_spinner="Reading your list…")
def cached_list(digest: str, name: str, _content: bytes):
    # The upload may hold any column (even personal ones): it is read from a private temporary
    # folder that is removed at once, and only the checked rows stay, in this session's cache.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(_content)
        return lastcopy.read_list(path, display_name=name)


@st.cache_data(max_entries=8, ttl=3600, show_spinner="Checking every row against the community…")
def cached_check(release_id: str, code: str, region: str, digest: str, mapping: tuple, data_version: str, _table):
    return lastcopy.check(actor, ui.current_release_handle(), settings.data_dir, code, region, _table, dict(mapping))


k_title = release.manifest["privacy"]["K_TITLE"]
widely = lastcopy.many_holders(release.manifest, "collection_development", institution.region)
st.caption(f"Your list against holdings and retention commitments in {region_name(institution.region)} "
           f"({ui.release_label(release)}). Safe to withdraw: held by at least {widely} institutions in the region, "
           f"or retained by at least {k_title}, and not committed by you.")
upload = st.file_uploader("List from your library system (CSV, TSV or Excel), e.g. weeding candidates",
                          type=["csv", "tsv", "txt", "tab", "xlsx"], key="lastcopy_upload")
if upload is None:
    st.info("Upload an export with ISBNs, ISSNs, OCLC numbers or titles and authors, with any other columns. "
            "Every row comes back in the same order with its own columns first, then the matched work, the "
            "holders in your region, retention commitments and a verdict, ready to load back into your system.")
    st.stop()

content = upload.getvalue()
digest = hashlib.sha256(content).hexdigest()[:16]
with ui.user_errors():
    table = cached_list(digest, upload.name, content)
columns = table.frame.columns
detected = lastcopy.detect_columns(columns)
with st.expander("Columns read", expanded=not detected):
    picks = st.columns(len(lastcopy.IDENTIFIERS))
    mapping = {}
    for pick, canonical in zip(picks, lastcopy.IDENTIFIERS):
        options = [NONE, *columns]
        default = options.index(detected[canonical]) if canonical in detected else 0
        chosen = pick.selectbox(LABELS[canonical], options, index=default, key=f"lastcopy_map_{canonical}_{digest}")
        if chosen != NONE:
            mapping[canonical] = chosen
if not mapping:
    st.info("No column of ISBNs, ISSNs, OCLC numbers or titles was found by name: choose one under Columns read.")
    st.stop()
if len(set(mapping.values())) < len(mapping):
    st.warning("One column is read for two identifiers; choose a different column for each.")
with ui.user_errors():
    result = cached_check(release.release_id, institution.code, institution.region, digest,
                          tuple(sorted(mapping.items())), ui.local_data_version(institution.code), table)

summary, verdicts = result.summary, result.summary["verdicts"]
with st.container(horizontal=True):
    st.metric("Rows read", f"{summary['read']:,}", border=True)
    st.metric("Matched", f"{summary['matched']:,}", border=True)
    st.metric("Not matched", f"{summary['unmatched']:,}", border=True)
    st.metric("Safe to withdraw", f"{verdicts[lastcopy.SAFE]:,}", border=True)
    st.metric("Keep: scarce", f"{verdicts[lastcopy.SCARCE]:,}", border=True)
    st.metric("Keep: you committed", f"{verdicts[lastcopy.COMMITTED]:,}", border=True)
if not summary["retention_released"]:
    st.caption("This release has no retention commitments yet: verdicts rest on holdings and your own commitments.")

stem = Path(upload.name).stem
left, right = st.columns(2)
left.download_button("Download CSV", lambda: lastcopy.csv_bytes(result), file_name=f"{stem}-last-copy-check.csv",
                     mime="text/csv", key="lastcopy_csv")
right.download_button("Download Excel", lambda: lastcopy.excel_bytes(result),
                      file_name=f"{stem}-last-copy-check.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="lastcopy_xlsx")

st.subheader("Your list, checked")
if result.rows.height > PREVIEW_ROWS:
    st.caption(f"Showing the first {PREVIEW_ROWS:,} of {result.rows.height:,} rows; the downloads hold every row.")
ui.table(result.rows.head(PREVIEW_ROWS), hide_index=True, width="stretch", key="lastcopy_table")

st.subheader("Not matched")
if result.unmatched.is_empty():
    st.write("Every row matched a community work.")
else:
    st.write(f"**{summary['unmatched']:,}** rows matched no work of the community data. A work held by fewer than "
             f"{k_title} institutions is not in the community data at all: treat those rows as scarce.")
    ui.table(result.unmatched.head(PREVIEW_ROWS), hide_index=True, width="stretch", key="lastcopy_unmatched")
