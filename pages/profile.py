"""Data Sharing Profile: the General section, the three switches, what leaves, the audit trail.

Administrators edit; every other user of the institution reads. The permission checks
are in analytics/ (store, anonymize); this page only hides controls a user cannot use.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import streamlit as st

import ui
from analytics.core.errors import UserError
from analytics.contribute import anonymize
from analytics.contribute import disclosure
from analytics.ingest import local
from analytics.core.schema import (INSTITUTION_TYPES, REGION_LABELS, REGIONS, SERVICE_LABELS, SERVICES,
                              size_band)
from analytics.control.store import ChangedMeanwhile

actor = ui.require_principal()
store = ui.store()
settings = ui.settings()
code = actor.institution_code
institution = store.institution(actor, code)
is_admin = actor.is_admin_of(code)

# The version this user's view is based on, kept until they save or reload, so that a
# change somebody else made meanwhile is detected instead of silently overwritten.
if st.session_state.get("profile_code") != code or "profile_version" not in st.session_state:
    st.session_state["profile_code"] = code
    st.session_state["profile_version"] = institution.version

WIDGET_KEYS = ["profile_name", "profile_type", "profile_region", "profile_country", "profile_fte",
               "profile_consortium", "profile_go_live"] + [f"profile_switch_{s}" for s in SERVICES]


def reload_profile() -> None:
    for key in WIDGET_KEYS + ["profile_version"]:
        st.session_state.pop(key, None)


def flash(kind: str, text: str) -> None:
    st.session_state.setdefault("profile_messages", []).append((kind, text))


st.title("Data sharing profile")
st.caption(f"{ui.md_text(institution.name)} ({institution.code})")
if not is_admin:
    st.info("You can read this profile. Only a General System Administrator of your institution can change it.",
            icon=":material/lock:")

for kind, text in st.session_state.pop("profile_messages", []):
    getattr(st, kind)(text)

if st.session_state["profile_version"] != institution.version:
    st.warning("These settings were changed by someone else since you opened this page. "
               "Reload to see the current settings before you change anything.")
    st.button("Reload", on_click=reload_profile, key="profile_reload_top")

# --- General section ------------------------------------------------------------------
st.header("General")
st.write("These answers select the institutions you are compared with (peer groups). "
         "The size band is derived from the number of FTE students.")
if is_admin:
    with st.form("profile_general"):
        left, right = st.columns(2)
        name = left.text_input("Institution name", value=institution.name, key="profile_name")
        kind = left.selectbox("Institution type", INSTITUTION_TYPES, key="profile_type",
                              index=INSTITUTION_TYPES.index(institution.type),
                              format_func=lambda t: t.replace("_", " ").capitalize())
        region = left.selectbox("Data center (region)", REGIONS, index=REGIONS.index(institution.region),
                                format_func=lambda r: f"{r} — {REGION_LABELS[r]}", key="profile_region")
        country = right.text_input("Country (ISO code, e.g. US)", value=institution.country or "",
                                   max_chars=2, key="profile_country")
        fte = right.number_input("FTE students", min_value=0, max_value=2_000_000, step=100,
                                 value=institution.fte_students or 0, key="profile_fte")
        consortium = right.text_input("Consortium (Network Zone), if any", value=institution.consortium or "",
                                      key="profile_consortium")
        go_live = right.date_input("Go-live date", value=institution.go_live_date, key="profile_go_live",
                                   min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
        st.caption(f"Size band: {size_band(int(fte))}")
        if st.form_submit_button("Save general section", type="primary"):
            try:
                updated = store.update_profile(
                    actor, code,
                    dict(name=name, type=kind, region=region, country=country, fte_students=int(fte),
                         consortium=consortium, go_live_date=go_live),
                    expected_version=st.session_state["profile_version"],
                )
            except ChangedMeanwhile as exc:
                st.error(str(exc))
            except UserError as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.session_state["profile_version"] = updated.version
                flash("success", "General section saved.")
                st.rerun()
else:
    general = {
        "Institution name": institution.name,
        "Institution type": institution.type.replace("_", " ").capitalize(),
        "Data center (region)": f"{institution.region} — {REGION_LABELS.get(institution.region, '')}",
        "Country": institution.country or "—",
        "FTE students": f"{institution.fte_students:,}" if institution.fte_students is not None else "—",
        "Size band": institution.size_band,
        "Consortium": institution.consortium or "—",
        "Go-live date": institution.go_live_date.isoformat(),
    }
    st.table(pl.DataFrame({"Field": list(general), "Value": list(general.values())}))

# --- Sharing switches -----------------------------------------------------------------
st.header("Sharing")
states = store.sharing_state(actor, code)
today = datetime.now(timezone.utc).date()
current_release = ui.current_release()  # its manifest: the thresholds the community data obeys
k_bench = current_release["privacy"]["K_BENCH"] if current_release else settings.k_bench

WHEN = {
    "collection_development": "A change takes effect at the next community release. Turning it off removes all "
                              "of your institution's data from the community data at that release.",
    "recommendations": "On: your data is used to create recommendations and you receive them. Off: your data is "
                       "not used to create recommendations and you receive none. A change takes effect at the "
                       "next community release; turning it off removes your data from the community then.",
    "benchmark": "A change takes effect on the first day of the next month (the monthly benchmark cycle). If you "
                 "do not share, you do not see benchmark data. Statistics are anonymized and aggregated, released "
                 f"only where at least {k_bench} institutions contribute, and only within your data center "
                 f"({institution.region}). An institution live for less than a year can use benchmarks but is "
                 "not included in them.",
}


def status_line(state) -> str:
    return ui.status_markdown(state, ui.current_release_built_at())


with st.form("profile_sharing"):
    chosen = {}
    for service in SERVICES:
        state = states[service]
        with st.container(border=True):
            chosen[service] = st.toggle(SERVICE_LABELS[service], value=state.requested, disabled=not is_admin,
                                        key=f"profile_switch_{service}")
            st.markdown(status_line(state))
            st.markdown(f"**Shared:** {anonymize.SERVICE_DESCRIPTIONS[service]}")
            st.markdown(f"**Never shared:** {anonymize.NEVER_SHARED}.")
            st.markdown(f"**When:** {WHEN[service]}")
            if service == "benchmark" and not institution.live_for_a_year(today):
                st.caption(f"Your institution went live on {institution.go_live_date.isoformat()}: you can use "
                           f"benchmarks now; your data is included from "
                           f"{institution.first_anniversary.isoformat()}, a year after go-live.")
    saved = st.form_submit_button("Save sharing settings", type="primary", disabled=not is_admin)
if saved:
    changed = [s for s in SERVICES if chosen[s] != states[s].requested]
    if not changed:
        flash("info", "No switch was changed.")
    for service in changed:
        try:
            new = store.set_sharing(actor, code, service, chosen[service],
                                    expected_version=st.session_state["profile_version"])
        except ChangedMeanwhile as exc:
            flash("error", str(exc))
            break
        except UserError as exc:
            flash("error", f"{SERVICE_LABELS[service]} not changed: {exc}")
            break
        st.session_state["profile_version"] += 1
        _label, sentence = new.describe(ui.current_release_built_at())
        if not new.pending and new.in_effect == chosen[service] and states[service].pending:
            flash("success", f"{SERVICE_LABELS[service]} stays {'on' if chosen[service] else 'off'}: the earlier "
                             f"change had not taken effect yet. {sentence}")
        else:
            flash("success", f"{SERVICE_LABELS[service]} turned {'on' if chosen[service] else 'off'}. {sentence}")
    st.rerun()

# --- What will be shared --------------------------------------------------------------
st.header("What will be shared")
st.write("Exactly the columns and rows each service would send, computed from your data by the same code "
         "the system job uses. Nothing else leaves your institution.")


@st.cache_data(max_entries=32, ttl=900, show_spinner="Computing what would be shared…")
def cached_preview(_actor, institution_code: str, service: str, data_version: str, email: str):
    # Keyed by small values; data_version changes whenever an import replaces a table.
    tables = anonymize.preview(_actor, settings.data_dir, store.institution(_actor, institution_code), service)
    return {name: (frame.height, frame.columns, frame.head(10)) for name, frame in tables.items()}


service = st.segmented_control("Service", SERVICES, format_func=SERVICE_LABELS.get, key="profile_preview_service",
                               default="collection_development")
if service:
    state = states[service]
    if state.in_effect:
        st.caption("This service is on: these rows go to the community data at the next release.")
    else:
        st.caption("This service is off: nothing of this leaves your institution unless an administrator "
                   "turns it on.")
    preview = cached_preview(actor, code, service, local.data_version(settings.data_dir, code), actor.email)
    if not preview:
        st.info("Your institution has no imported data for this service yet, so nothing would be shared.")
    for table, (rows, columns, sample) in preview.items():
        with st.container(border=True):
            st.markdown(f"**{table}** — {ui.count(rows, 'row')}")
            st.caption("Columns: " + ", ".join(columns))
            if table in disclosure.MAGNITUDES:
                st.caption(f"Counts ({', '.join(disclosure.MAGNITUDES[table][1])}) are shown as you hold them; "
                           "they leave with your institution's fixed protective noise (±1, or 2–10% for larger "
                           "counts), so nobody can read your exact figures from the community data.")
            # The work key leaves the institution, so the preview shows it (elsewhere it is internal).
            ui.table(sample, hide_index=True, width="stretch",
                     column_config={"work_key": "Work key (ISBN, ISSN, OCLC number or title fingerprint)"}
                     if "work_key" in sample.columns else None)

# --- Audit history --------------------------------------------------------------------
st.header("Audit history")
entries = store.audit_history(actor, code)
if entries:
    latest = entries[0]
    st.markdown(f"Latest change: **{ui.fmt_date(latest.at)}** — {latest.actor} — {ui.audit_action(latest.action)}: "
                f"{latest.old_value or '—'} → {latest.new_value or '—'}")
    ui.table(
        pl.DataFrame({
            "When": [ui.fmt_date(e.at) for e in entries],
            "Who": [e.actor for e in entries],
            "What": [ui.audit_action(e.action) for e in entries],
            "Old value": [e.old_value or "" for e in entries],
            "New value": [e.new_value or "" for e in entries],
        }),
        hide_index=True, width="stretch", key="profile_audit",
    )
else:
    st.write("No changes recorded yet.")
