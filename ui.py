"""Shared Streamlit plumbing for app.py and pages/: settings, the store, the signed-in user.

No analytics here: pages call analytics/ and draw.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import streamlit as st

from analytics.core.access import Principal
from analytics.core.config import Settings, load_settings
from analytics.control.store import Store

SESSION_USER = "signed_in_email"

# Text from data (titles, authors, publishers, platforms, names) is hostile: it may carry
# Markdown, HTML or Plotly's tags. md_text and plot_text make it literal text.
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
# GitHub-flavoured autolinks are found in the text after escapes are undone: a word joiner
# (U+2060, invisible) before ':', '.' and '@' keeps "http://", "www." and "a@b.c" from matching.
_AUTOLINK_BREAK = re.compile(r"\\([:.@])")


def md_text(value) -> str:
    """`value` as literal text inside Markdown (st.markdown, captions, labels): no link, image,
    HTML, heading, emphasis, LaTeX or colour directive; line breaks become spaces."""
    text = " ".join(str(value).split())
    return _AUTOLINK_BREAK.sub("\u2060\\\\\\1", _MD_PUNCTUATION.sub(r"\\\1", text))


def plot_text(value) -> str:
    """`value` as literal text in a Plotly label or hover text (Plotly reads <a>, <b>, <br>... in text)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def settings() -> Settings:
    return load_settings()


@st.cache_resource(max_entries=8)
def _store(database_url: str) -> Store:
    return Store(database_url)


def store() -> Store:
    current = settings()
    if current.is_sqlite:
        current.data_dir.mkdir(parents=True, exist_ok=True)
    return _store(current.database_url)


def auth_configured() -> bool:
    """True unless the demo sign-in was chosen (ANALYTICS_SIGN_IN=demo): sign-in is then OIDC
    through st.login, and auth_problem() says whether its settings are complete."""
    return settings().sign_in == "oidc"


def auth_problem() -> str | None:
    """What is wrong with the single sign-on settings, or None (always None in demo mode)."""
    from analytics.control.signin_config import auth_problem as check

    import tomllib

    from streamlit import config as st_config

    if not auth_configured():
        return None
    # Each configured secrets file is parsed here first, so that a syntax error is named with
    # its file, line and column (Streamlit itself only logs "Failed to load secrets").
    paths = [Path(p) for p in st_config.get_option("secrets.files") or []]
    found = [p for p in paths if p.is_file()]
    where = ", ".join(str(p) for p in found) or (str(paths[-1]) if paths else ".streamlit/secrets.toml")
    for path in found:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return check(exc, str(path))
    try:
        secrets = st.secrets.to_dict()
    except Exception as exc:  # noqa: BLE001 - whatever Streamlit refuses, the app must not start
        if found:
            return check(exc, where)
        secrets = None  # no file at all
    return check(secrets, where)


def identity_problem() -> str | None:
    """Why the signed-in OIDC identity cannot be matched to a user (unverified e-mail...), or None."""
    from analytics.control.signin_config import identity_problem as check

    if not auth_configured() or not st.user.is_logged_in:
        return None
    return check(st.user.to_dict(), settings().allow_unverified_email)


def signed_in_email() -> str | None:
    """The e-mail of the signed-in user: a verified OIDC identity, or the demo user picked in
    the demo sign-in (which offers only the demo community's users; demo mode only)."""
    if auth_configured():
        if not st.user.is_logged_in or identity_problem():
            return None
        return st.user.get("email")
    return st.session_state.get(SESSION_USER)


def principal() -> Principal | None:
    """The signed-in user, re-read from the control database on every run."""
    email = signed_in_email()
    if not email:
        return None
    user = store().user(email)
    return user.principal() if user else None


def require_principal() -> Principal:
    """The signed-in user; otherwise draw the sign-in view instead of the page and stop.

    Every page starts with this, so no page can be seen signed out, and a deep link
    opens its page as soon as the user has signed in.
    """
    actor = principal()
    if actor is None:
        import signin  # signin draws with the helpers of this module

        signin.show()
        preload_element_code()  # while the user signs in
        st.stop()
    return actor


def fmt_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def current_release() -> dict | None:
    """The manifest of the community release in force, if one was published."""
    from analytics.release.handle import current_manifest

    return current_manifest(settings().community_dir)


@contextmanager
def user_errors(prefix: str = "", stop: bool = True):
    """Run a block; a problem the user can fix (analytics.core.errors.UserError: bad input, a refused
    action, a missing release) is shown in the page with its message, and the page stops unless
    `stop` is False. Anything else is a bug and reaches Streamlit's error box as one."""
    from analytics.core.errors import UserError

    try:
        yield
    except UserError as exc:
        st.error(f"{prefix}{exc}")
        if stop:
            st.stop()


def stop_without_release(page_name: str | None = None) -> None:
    """Say that there is no community release yet, and how one is made; stop the page."""
    from analytics.release.handle import HOW_TO_PUBLISH, NO_RELEASE

    if page_name:
        st.title(page_name)
    st.info(f"{NO_RELEASE} {HOW_TO_PUBLISH}")
    st.stop()


@st.cache_resource(max_entries=2, show_spinner="Opening the community release…")
def _release(community_dir: str, release_id: str):
    from analytics.release.handle import open_release

    return open_release(Path(community_dir), release_id)


def current_release_handle():
    """The open current release (cached per release id), or None before the first publish."""
    from analytics.release.manifest import current_release_id

    community = settings().community_dir
    release_id = current_release_id(community)
    return _release(str(community), release_id) if release_id else None


# What a page's first visit would otherwise wait for: the code of the pages and their charts,
# and the current release, opened into memory. Imported or opened once per server process.
WARM_UP_MODULES = ("plotly.express", "plotly.graph_objects", "xlsxwriter", "analytics.views.trends",
                   "analytics.views.selection", "analytics.views.deselection", "analytics.views.subject_overview",
                   "analytics.views.benchmark", "analytics.views.recommend", "analytics.views.collection",
                   "analytics.contribute.anonymize", "analytics.release.manifest")


@st.cache_resource(show_spinner=False, max_entries=1)
def _warm_release(community_dir: str, release_id: str) -> None:
    # Called inside a cached function, _release shows no spinner (there is no page to show it on).
    _release(community_dir, release_id)


def _warm_up() -> None:
    import importlib
    import logging

    try:
        for name in WARM_UP_MODULES:
            importlib.import_module(name)
        from analytics.release.manifest import current_release_id

        community = settings().community_dir
        release_id = current_release_id(community)
        if release_id:
            _warm_release(str(community), release_id)
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first visit does the work
        logging.getLogger("analytics.app").exception("warm-up failed")


# The browser's share of a first chart or table: Streamlit loads the code for each kind of element
# on its first use in a tab (Plotly's is 4.7 MB, about 1 s to load and run on 2 cores; the
# table's 0.3-0.6 s). The first page with one waited for it.
PRELOADED_ELEMENTS = ("PlotlyChart", "DataFrame")


@st.cache_resource(show_spinner=False, max_entries=1)
def _element_code_files() -> tuple[str, ...]:
    """The file names of the installed Streamlit's code for PRELOADED_ELEMENTS (they carry a hash
    that changes with each Streamlit version); none if the layout is not the expected one."""
    folder = Path(st.__file__).parent / "static" / "static" / "js"
    names = []
    for element in PRELOADED_ELEMENTS:
        found = sorted(p.name for p in folder.glob(f"{element}.*.js")
                       if re.fullmatch(rf"{element}\.[A-Za-z0-9_-]+\.js", p.name))
        names += found[:1]
    return tuple(names)


def preload_element_code() -> None:
    """Let the browser load the code for charts and tables while the user is on the sign-in form
    or Home (when the tab is idle, once per tab), instead of on the first page that shows one.
    The files are Streamlit's own, from this server, at the address Streamlit itself loads them
    from (beside its main script), so the page that needs them finds them loaded."""
    import json

    files = _element_code_files()
    if not files:
        return
    st.html("<script>(() => {\n"
            "  if (window.__analyticsPreloaded) return;\n"
            "  window.__analyticsPreloaded = true;\n"
            "  const main = document.querySelector('script[type=module][src*=\"/static/js/index.\"]');\n"
            "  if (!main) return;\n"
            "  const base = main.src.slice(0, main.src.lastIndexOf('/') + 1);\n"
            f"  const files = {json.dumps(list(files))};\n"
            "  const idle = window.requestIdleCallback || ((f) => setTimeout(f, 200));\n"
            "  const next = (i) => { if (i < files.length) idle(() => import(base + files[i])"
            ".catch(() => {}).finally(() => next(i + 1))); };\n"
            "  next(0);\n"
            "})();</script>", unsafe_allow_javascript=True)


@st.cache_resource(show_spinner=False, max_entries=1)
def warm_up():
    """Start, once per server process, a background thread that imports the pages' code and
    opens the current release (the same cached handle every page uses), so that the first
    visit of a page after the server started does not wait for them. Returns the thread.
    The release is the community's, the same for every user: nothing here depends on who
    is signed in, and every permission check still runs when a page asks for data."""
    import threading

    thread = threading.Thread(target=_warm_up, name="analytics-warm-up", daemon=True)
    thread.start()
    return thread


def current_release_built_at() -> datetime | None:
    """When the current community release was built (its manifest's created_at), or None."""
    release = current_release()
    try:
        return datetime.fromisoformat(release["created_at"]) if release else None
    except (KeyError, TypeError, ValueError):
        return None


STATUS_COLOURS = {"On": "green", "Off": "gray", "Pending": "orange"}


def status_markdown(state, last_release_at: datetime | None) -> str:
    """A sharing switch's status (SwitchState.describe) as one Markdown line, the same on every page."""
    label, sentence = state.describe(last_release_at)
    return f":{STATUS_COLOURS[label]}[**{label}**] — {sentence}"


class PageContext(NamedTuple):
    """What a page of one institution works with."""

    actor: Principal
    store: Store
    settings: Settings
    institution: object  # analytics.control.store.Institution


def institution_page(title: str, gate=None, explanation: str = "") -> PageContext:
    """Start a page of the signed-in user's institution: sign-in required, the page's title, and with
    `gate` (an analytics/ check) the reciprocity gate that stops the page when it refuses."""
    actor = require_principal()
    st.title(title)
    if gate is not None:
        sharing_gate(actor, gate, explanation)
    control = store()
    return PageContext(actor, control, settings(), control.institution(actor, actor.institution_code))


def collection_page(title: str):
    """A collection development page: `institution_page` behind the collection-sharing gate, and the
    open current release (or a page that says there is none yet). Returns (PageContext, release)."""
    from analytics.views.collection import require_collection_sharing

    page = institution_page(title, require_collection_sharing, "Collection development reports are built from "
                            "what participating institutions share; institutions that do not share do not see them.")
    release = current_release_handle()
    if release is None:
        stop_without_release()
    return page, release


def release_label(release) -> str:
    """"community data built on DATE, data as of DATE", for captions: when, in words, not the release id."""
    built = datetime.fromisoformat(release.manifest["created_at"])
    return f"community data built on {fmt_date(built)}, data as of {release.manifest['as_of']}"


def sharing_gate(actor: Principal, check, explanation: str) -> None:
    """Reciprocity: run `check(actor, store, code)` (an analytics/ permission check); if it refuses,
    say why, explain, point administrators to the profile, and stop the page."""
    from analytics.core.access import PermissionDenied

    try:
        check(actor, store(), actor.institution_code)
    except PermissionDenied as exc:
        st.info(str(exc), icon=":material/lock:")
        st.write(explanation)
        if actor.is_admin_of(actor.institution_code):
            st.page_link("pages/profile.py", label="Open the data sharing profile", icon=":material/shield_lock:")
        st.stop()


# Headers for the columns pages show; any other column gets its name in words ("copies_held" ->
# "Copies held"). A page's own column_config wins.
COLUMN_LABELS = {
    "item_id": "Item ID", "title_id": "Title ID", "isbn": "ISBN", "isbns": "ISBNs", "issn": "ISSN",
    "lc_class": "LC class", "lc_subclass": "LC subclass", "lc_class_caption": "Class", "lc_subclass_caption": "Subclass",
    "call_number": "Call number", "pub_year": "Year", "work_key": "Work", "metric_type": "COUNTER metric",
    "institutions_holding": "Holders in region", "first_acquired_month": "First acquired (month)",
    "count": "Count", "term": "Term", "format": "Format", "subject": "Subject", "fte_students": "FTE students",
    "go_live_date": "Go-live date",
}


def audit_action(action: str) -> str:
    """An audit code ("sharing.benchmark", "contribution.recommendations.created") in words."""
    from analytics.control.recommend_catalog import CATALOG
    from analytics.core.schema import SERVICE_LABELS

    parts = action.split(".")
    head, rest = parts[0], parts[1:]
    service = SERVICE_LABELS.get(rest[0], rest[0]) if rest else ""
    if head == "sharing" and rest:
        return f"Sharing: {service}"
    if head == "contribution" and len(rest) == 2:
        return f"{'Contribution sent' if rest[1] == 'created' else 'Contribution removed'}: {service}"
    if head == "profile" and rest:
        return f"Profile: {human_label(rest[0])}"
    if head == "import" and len(rest) == 2:
        return f"Import of {rest[0]}: {rest[1]}"
    if head == "recommendation" and rest:
        title = CATALOG[rest[0]].title if rest[0] in CATALOG else human_label(rest[0])
        return f"Recommendation graded: {title}" if rest[1:] == ["grade"] else f"Recommendation: {title}"
    return {"institution.created": "Institution created", "user.role_added": "Role given to a user",
            "release.use": "An earlier release made current again"}.get(action, human_label(action))


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 row", "2,480 rows": a number with thousands separators and its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def human_label(name: str) -> str:
    """A column name as a header: the label above, else the name in words."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# Columns that only serve the program: never shown or exported (a work key reads "isbn:…" or "fp:…").
INTERNAL_COLUMNS = ("work_key", "sparkline")
# A table taller than this many rows scrolls inside its box; a shorter one shows every row.
TABLE_ROWS = 25
_ROW_PX = 35
LONG_TEXT = 40  # characters: a text column with longer values gets a fixed width


def _is_year(name: str) -> bool:
    return name == "year" or name.endswith("_year") or name.startswith("year_")


def _column_settings(frame, column_config: dict | None) -> dict:
    """The column settings of a table: a human header for every column (COLUMN_LABELS, else the name
    in words; a page's own label or column wins), numbers with thousands separators (years plain)."""
    import polars as pl

    config = {}
    for name, dtype in frame.schema.items():
        given = (column_config or {}).get(name)
        if given is not None and not isinstance(given, str):
            config[name] = given
            continue
        label = given or human_label(name)
        if dtype.is_numeric() and not _is_year(name):
            config[name] = st.column_config.NumberColumn(label, format="localized")
        elif dtype.is_numeric():
            config[name] = st.column_config.NumberColumn(label, format="%d")
        elif dtype == pl.Boolean:
            config[name] = st.column_config.CheckboxColumn(label)
        elif dtype == pl.String and _longest(frame, name) > LONG_TEXT:
            # Long text is cut (full on hover) so that the numbers to its right stay in view.
            config[name] = st.column_config.TextColumn(label, width="large" if name == "title" else "medium")
        else:
            config[name] = label
    return config


def _longest(frame, name: str) -> int:
    import polars as pl

    return frame.select(pl.col(name).str.len_chars().max()).item() or 0


def table(frame, *, column_config: dict | None = None, **kwargs):
    """st.dataframe with a human header for every column, thousands separators and blank cells for
    missing values; it shows up to TABLE_ROWS rows, then the box scrolls. Columns in INTERNAL_COLUMNS are not sent.
    Only pass the columns the user may see: a hidden column still reaches the browser."""
    frame = frame.drop([c for c in INTERNAL_COLUMNS if c in frame.columns and c not in (column_config or {})])
    kwargs.setdefault("placeholder", "")  # a missing value is a blank cell, not "None"
    if "height" not in kwargs:
        kwargs["height"] = "content" if frame.height <= TABLE_ROWS else (TABLE_ROWS + 1) * _ROW_PX + 3
    return st.dataframe(frame, column_config=_column_settings(frame, column_config), **kwargs)


def _label_of(setting) -> str | None:
    return setting if isinstance(setting, str) else (setting or {}).get("label")


def export_frame(frame, column_config: dict | None = None):
    """A frame as a librarian's spreadsheet wants it: the same headers as on the page, no internal
    keys, lists joined with '; ', shares as percentages (one decimal) and other fractions rounded
    (2 decimals, or 3 significant digits below 1)."""
    import polars as pl

    frame = frame.drop([c for c in INTERNAL_COLUMNS if c in frame.columns])
    frame = frame.with_columns(pl.col(c).list.join("; ") for c, t in frame.schema.items()
                               if t == pl.List(pl.String))
    frame = frame.select([c for c, t in frame.schema.items() if not isinstance(t, (pl.List, pl.Struct))])
    settings = _column_settings(frame, column_config)
    columns, names = [], []
    for name, dtype in frame.schema.items():
        label = _label_of(settings[name]) or human_label(name)
        column = pl.col(name)
        percent = not isinstance(settings[name], str) and settings[name].get("type_config", {}).get("format") == "percent"
        if percent:
            column, label = (column * 100).round(1), f"{label} (%)"
        elif dtype.is_float():
            # Below 1: 3 significant digits, as an integer over a power of ten, which the CSV writer
            # prints short (0.0123, not 0.012300000000000002 as round_sig_figs can leave it).
            scale = pl.lit(10.0).pow((2 - column.abs().log10().floor()).clip(2, 15))
            column = (pl.when(column.abs() >= 1).then(column.round(2))
                      .when(column == 0).then(column)
                      .otherwise((column * scale).round(0) / scale))
        while label in names:
            label += " "
        names.append(label)
        columns.append(column.alias(label))
    return frame.select(columns)


def excel_bytes(frame, column_config: dict | None = None) -> bytes:
    import io

    buffer = io.BytesIO()
    export_frame(frame, column_config).write_excel(buffer, autofit=True)
    return buffer.getvalue()


def csv_bytes(frame, column_config: dict | None = None) -> bytes:
    """CSV of a frame for a download (export_frame): text that a spreadsheet would run as a formula
    is written with a leading apostrophe (analytics.core.output.safe_csv_frame)."""
    from analytics.core.output import safe_csv_frame

    return safe_csv_frame(export_frame(frame, column_config)).write_csv().encode("utf-8")


def local_data_version(code: str) -> str:
    from analytics.ingest import local

    return local.data_version(settings().data_dir, code)
