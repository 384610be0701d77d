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
from analytics.ingest import guide, run
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


def show_report(report: dict, columns: bool = True) -> None:
    """A check's or an import's report; `columns=False` where the page named the columns not
    imported already (above the check), so that the notice appears once."""
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
    notice = guide.ColumnPlan({}, report.get("dropped_columns") or [], report.get("ignored_columns") or []).notice()
    if columns and notice:
        st.info(ui.md_text(notice), icon=":material/visibility_off:")
    for warning in report.get("warnings", []):
        # Reports recorded before the importer stopped repeating dropped columns among its warnings.
        if not warning.startswith("Dropped and never stored"):
            st.caption(f"Note: {ui.md_text(warning)}")


def prune_uploads(uploads: Path, max_age_seconds: float = 86_400) -> None:
    """Remove uploads left behind (an admin who checked a file and never imported it)."""
    if not uploads.exists():
        return
    for folder in uploads.iterdir():
        if time.time() - folder.stat().st_mtime > max_age_seconds:
            shutil.rmtree(folder, ignore_errors=True)


def kind_chosen() -> None:
    st.session_state["import_kind_chosen"] = True


def suggest_kind() -> None:
    """A new file: its kind guessed from its name and first bytes, unless the user chose one."""
    upload = st.session_state.get("import_upload")
    if upload is not None and not st.session_state.get("import_kind_chosen"):
        st.session_state["import_kind"] = run.suggest_kind(upload.name, upload.getvalue()[:8192])


def apply_never(key: str, value: str) -> None:
    current = [v.strip() for v in st.session_state.get(key, "").split(";") if v.strip()]
    st.session_state[key] = "; ".join([*current, value])


def show_guide(kind: str) -> None:
    """The columns a file of `kind` has, and a template to start from."""
    if kind not in CANONICAL:
        st.write(guide.SPECIAL_GUIDES[kind])
        return
    st.write(guide.GUIDE_INTRO)
    ui.table(guide.column_guide(kind), hide_index=True, width="stretch", height="content",
             column_config={"column": st.column_config.TextColumn("Column name", width=135),
                            "required": st.column_config.TextColumn("Required", width=70),
                            "meaning": st.column_config.TextColumn("Meaning", width=290),
                            "format": st.column_config.TextColumn("Format", width=250),
                            "example": st.column_config.TextColumn("Example", width=140)})
    st.download_button(f"Download a template ({guide.template_name(kind)})", guide.template_csv(kind),
                       file_name=guide.template_name(kind), mime="text/csv", on_click="ignore",
                       icon=":material/download:", key=f"import_template_{kind}")


if not actor.is_admin_of(code):
    st.info("Only a General System Administrator of your institution imports data. You can see the history of "
            "imports below.", icon=":material/lock:")
else:
    kind = st.selectbox("What you are importing", run.ALL_KINDS, format_func=run.KIND_LABELS.get,
                        key="import_kind", on_change=kind_chosen)
    with st.expander(f"Columns and template: {run.KIND_LABELS[kind]}",
                     expanded=st.session_state.get("import_upload") is None):
        show_guide(kind)
    upload = st.file_uploader("File", key="import_upload", on_change=suggest_kind,
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
            st.markdown(f"**Preview** — first {ui.count(head.height, 'row')} of {ui.md_text(upload.name)}"
                        + (f" (read as {table.encoding})" if table.encoding else ""))
            # The file's own headers (the names to map), and its blank cells blank.
            ui.table(head.with_columns(pl.col(pl.String).fill_null("")), column_config={c: c for c in head.columns},
                     hide_index=True, width="stretch", key="import_preview")
            columns = list(head.columns)
            suggestion = run.suggest_mapping(kind, columns)
            exact = {c.lower().strip(): c for c in columns}
            st.markdown("**Columns** — which column of the file holds each field (suggested from the names)")
            grid = st.columns(3)
            sources: dict[str, str] = {}
            for i, column in enumerate(CANONICAL[kind]):
                default = suggestion.get(column.name) or exact.get(column.name)
                options = [NOT_IN_FILE, *columns]
                choice = grid[i % 3].selectbox(
                    column.name + (" *" if column.required else ""), options,
                    index=options.index(default) if default in options else 0,
                    key=f"import_map_{digest}_{kind}_{column.name}", help=column.description or None)
                if choice != NOT_IN_FILE:
                    sources[column.name] = choice
                    if choice != column.name:
                        mapping[column.name] = choice
            notice = guide.column_plan(columns, kind, sources).notice()
            if notice:
                st.info(ui.md_text(notice), icon=":material/visibility_off:")
            if any(c.kind in ("date", "month_or_date") for c in CANONICAL[kind]):
                null_key = f"import_null_{digest}"
                declared = [v.strip() for v in st.session_state.get(null_key, "").split(";") if v.strip()]
                for never in guide.never_dates(table.frame, kind, sources):
                    if never.value in declared:
                        continue
                    st.warning(ui.md_text(never.sentence()), icon=":material/event_busy:")
                    st.button(f"Treat {ui.md_text(never.value)} as “never” (an empty date)",
                              key=f"import_never_{digest}_{never.column}", on_click=apply_never,
                              args=(null_key, never.value))
                sentinel = st.text_input("Dates that mean “never” in this export (e.g. 1/1/00; several separated "
                                         "by ;)", key=null_key,
                                         help="Cells holding one of these dates are read as empty: never lent, "
                                              "never withdrawn.")
                null_dates = [v.strip() for v in sentinel.split(";") if v.strip()]
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
                show_report(report, columns=kind not in CANONICAL)
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
                    st.warning(f"**{ui.count(before, 'row')} of {target} will be replaced by {after:,}.** Importing replaces the "
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
