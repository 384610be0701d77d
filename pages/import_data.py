"""Import data: upload a file, check it, confirm; and every import's report."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import polars as pl
import streamlit as st

import ui
from analytics.core.errors import UserError
from analytics.ingest import run
from analytics.ingest.tabular import ID_COLUMNS, previous_path, undo_import
from analytics.ingest.local import table_path
from analytics.core.schema import CANONICAL

NOT_IN_FILE = "(not in the file)"

actor = ui.require_principal()
settings = ui.settings()
store = ui.store()
code = actor.institution_code

st.title("Import data")
st.caption("Files are checked first; nothing in your institution's data changes until you confirm, and a file "
           "with an error changes nothing at all. Personal and financial columns are dropped before anything is "
           "stored.")


def show_report(report: dict) -> None:
    with st.container(horizontal=True):
        st.metric("Rows read", f"{report.get('read', 0):,}", border=True)
        st.metric("Kept", f"{report.get('kept', 0):,}", border=True)
        st.metric("Rejected", f"{report.get('rejected', 0):,}", border=True)
        match = report.get("match") or {}
        if match.get("rates"):
            rates = match["rates"]
            st.metric("Matched by identifier", f"{rates['isbn'] + rates['issn'] + rates['oclc']:.1%}", border=True,
                      help="ISBN, ISSN or OCLC number; the rest by title and author, or not at all")
    if report.get("rejected_rows"):
        st.markdown("**Rejected rows** (first ones)")
        st.dataframe(pl.DataFrame(report["rejected_rows"]).select(pl.all().cast(pl.String)), hide_index=True,
                     width="stretch")
    if report.get("dropped_columns"):
        st.warning("Dropped and never stored: " + ", ".join(f"{d['column']} ({d['reason']})"
                                                            for d in report["dropped_columns"]))
    if report.get("ignored_columns"):
        st.info("Columns ignored (not part of this kind): " + ", ".join(report["ignored_columns"]))
    for warning in report.get("warnings", []):
        st.caption(f"Note: {warning}")


def prune_uploads(uploads: Path, max_age_seconds: float = 86_400) -> None:
    """Remove uploads left behind (an admin who checked a file and never imported it)."""
    if not uploads.exists():
        return
    for folder in uploads.iterdir():
        if time.time() - folder.stat().st_mtime > max_age_seconds:
            shutil.rmtree(folder, ignore_errors=True)


if not actor.is_admin_of(code):
    st.info("Only a General System Administrator of your institution imports data. You can see the history of "
            "imports below.", icon=":material/lock:")
else:
    upload = st.file_uploader("File", key="import_upload",
                              type=["csv", "tsv", "txt", "tab", "xlsx", "parquet", "mrc", "marc", "dat", "xml",
                                    "json"])
    if upload is not None:
        content = upload.getvalue()
        digest = hashlib.sha256(content).hexdigest()[:16]
        # The raw upload may hold columns that are never stored (patrons, money): it is kept only
        # in the institution's private folder while the admin works on it, and removed after the
        # import (and at the latest a day later).
        uploads = Path(settings.data_dir) / "institutions" / code / ".uploads"
        prune_uploads(uploads)
        folder = uploads / digest
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(upload.name).name
        if not path.exists():
            path.write_bytes(content)
        suggested = run.suggest_kind(upload.name, content[:8192])
        kind = st.selectbox("What is in the file", run.ALL_KINDS, index=run.ALL_KINDS.index(suggested),
                            format_func=run.KIND_LABELS.get, key=f"import_kind_{digest}")
        mapping: dict[str, str] = {}
        null_dates: list[str] = []
        mode = "replace"
        if kind in ID_COLUMNS:
            mode = st.radio(
                "How the file changes your table", ["update", "replace"], horizontal=True,
                format_func={"update": f"Add new and update existing {kind} by {', '.join(ID_COLUMNS[kind])} "
                                       f"(e.g. new acquisitions)",
                             "replace": "Replace the whole table (a full export)"}.get,
                key=f"import_mode_{digest}")
        if kind in CANONICAL:
            with ui.user_errors():
                head, table = run.source_columns(path, display_name=upload.name)
            st.markdown(f"**Preview** — first {head.height} rows of {ui.md_text(upload.name)}"
                        + (f" (read as {table.encoding})" if table.encoding else ""))
            st.dataframe(head, hide_index=True, width="stretch", key="import_preview")
            columns = list(head.columns)
            suggestion = run.suggest_mapping(kind, columns)
            exact = {c.lower().strip(): c for c in columns}
            st.markdown("**Columns** — which column of the file holds each field (suggested from the names)")
            grid = st.columns(3)
            for i, column in enumerate(CANONICAL[kind]):
                default = suggestion.get(column.name) or exact.get(column.name)
                options = [NOT_IN_FILE, *columns]
                choice = grid[i % 3].selectbox(
                    column.name + (" *" if column.required else ""), options,
                    index=options.index(default) if default in options else 0,
                    key=f"import_map_{digest}_{kind}_{column.name}", help=column.description or None)
                if choice != NOT_IN_FILE and choice != column.name:
                    mapping[column.name] = choice
            if any(c.kind in ("date", "month_or_date") for c in CANONICAL[kind]):
                sentinel = st.text_input("A date that means “never” in this export (e.g. 1/1/00)",
                                         key=f"import_null_{digest}")
                null_dates = [sentinel.strip()] if sentinel.strip() else []
        options = {"mapping": mapping, "null_dates": null_dates, "display_name": upload.name}
        if kind in CANONICAL:
            options["mode"] = mode
        signature = json.dumps([digest, kind, mapping, null_dates, mode], sort_keys=True)
        if st.button("Check the file", key="import_check", type="secondary"):
            try:
                report = run.dry_run(settings.data_dir, actor, code, kind, path, **options)
            except UserError as exc:
                st.session_state["import_checked"] = (signature, None, str(exc))
            else:
                st.session_state["import_checked"] = (signature, report.as_dict(), None)
        checked = st.session_state.get("import_checked")
        if checked and checked[0] == signature:
            _signature, report, error = checked
            if error:
                st.error(error)
            else:
                st.success(f"The file can be imported: {report['kept']:,} of {ui.count(report['read'], 'row')} kept.")
                show_report(report)
                target = run.TARGET.get(kind, kind)
                before, after = report.get("rows_before", 0), report.get("rows_after", 0)
                confirmed = True
                if kind == "counter":
                    st.write(f"Importing adds to (and for the same platforms and months replaces) your **{target}** "
                             f"table.")
                elif report.get("mode") == "update":
                    st.write(f"Importing adds **{report.get('added', 0):,}** new and updates "
                             f"**{report.get('updated', 0):,}** existing {target}: the table will have "
                             f"**{after:,}** rows (now {before:,}).")
                elif before:
                    st.warning(f"**{before:,} {target} will be replaced by {after:,}.** Importing replaces the "
                               f"whole table with this file; the current version is kept and can be restored "
                               f"with “Undo the last import” below.", icon=":material/warning:")
                    confirmed = st.checkbox(f"Yes, replace all {before:,} {target} with the {after:,} rows of this "
                                            f"file", key=f"import_replace_ok_{signature}")
                else:
                    st.write(f"Importing creates your **{target}** table ({ui.count(after, 'row')}).")
                if st.button("Import", key="import_confirm", type="primary", disabled=not confirmed):
                    bar = st.progress(0.0, text="Importing…")

                    def progress(done, total):
                        if total:
                            bar.progress(min(1.0, done / total), text=f"Importing… {done:,} of {total:,}")

                    try:
                        final = run.run_import(settings.data_dir, actor, code, kind, path, progress=progress,
                                               **options)
                    except UserError as exc:
                        store.record_import(actor, code, kind, upload.name, "failed", {"error": str(exc)})
                        st.error(str(exc))
                    else:
                        store.record_import(actor, code, kind, upload.name, "ok", final.as_dict())
                        shutil.rmtree(folder, ignore_errors=True)
                        bar.progress(1.0, text="Done")
                        st.session_state.pop("import_checked", None)
                        st.success(f"Imported {ui.count(final.kept, 'row')} of {ui.md_text(upload.name)} into {target}.")

st.header("Import history")
history = store.import_history(actor, code)
if not history:
    st.write("No imports yet.")
for run_record in history:
    label = (f"{ui.fmt_date(run_record['at'])} — {run_record['kind']} — {ui.md_text(run_record['file_name'])} — "
             f"{run_record['status']} (read {run_record['rows_read']:,}, kept {run_record['rows_kept']:,}, "
             f"rejected {run_record['rows_rejected']:,}) — {run_record['actor']}")
    with st.expander(label, expanded=False):
        if run_record["report"].get("error"):
            st.error(run_record["report"]["error"])
        else:
            show_report(run_record["report"])

if actor.is_admin_of(code):
    undoable = [kind for kind in ("items", "loans", "e-usage", "reading-lists", "annual-stats")
                if previous_path(table_path(settings.data_dir, code, kind)).exists()]
    if undoable:
        st.subheader("Undo the last import")
        st.caption("Each table keeps its version from before the last import. Undoing puts it back (and keeps the "
                   "undone version, so undoing again redoes the import).")
        with st.container(horizontal=True):
            for kind in undoable:
                if st.button(f"Undo the last import of {kind}", key=f"import_undo_{kind}"):
                    result = None
                    with ui.user_errors(stop=False):
                        result = undo_import(settings.data_dir, actor, code, kind)
                    if result is not None:
                        store.record_import(actor, code, kind, "(undo of the last import)", "undone", result)
                        st.success(f"{kind}: back to the version before the last import "
                                   f"({ui.count(result['rows_before_undo'], 'row')} → {result['rows_after_undo']:,}).")
