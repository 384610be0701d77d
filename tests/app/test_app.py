"""AppTest tests for every page, on a small demo community."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from analytics.core import contract
from analytics.core.access import PermissionDenied, Principal
from analytics.core.config import load_settings
from analytics.synthetic.demo import demo_email
from analytics.control.store import Store

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Principal.system_job()


@pytest.fixture
def app(demo_community, monkeypatch):
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(demo_community))
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def make(email: str | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        if email:
            at.session_state["signed_in_email"] = email
        return at.run()

    return make


@pytest.fixture
def store(demo_community):
    s = Store(load_settings(demo_community).database_url)
    yield s
    s.dispose()


@pytest.fixture
def code(store):
    """An institution that went live over a year ago and shares benchmark data."""
    for inst in store.list_institutions(SYSTEM):
        state = store.sharing_state(SYSTEM, inst.code)["benchmark"]
        if state.requested and not state.pending:
            return inst.code
    raise AssertionError("the demo has no institution sharing benchmark data")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [s.value for s in at.success] + [c.value for c in at.caption]
    parts += [t.value for t in at.title]
    return "\n".join(str(p) for p in parts)


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def test_signin_page_says_demo_mode_and_signs_in(app, store, code):
    at = app()
    assert not at.exception
    assert "Demo mode" in at.warning[0].value
    at.selectbox(key="signin_institution").set_value(code).run()
    admin = demo_email(code, "admin")
    at.radio(key="signin_user").set_value(admin).run()
    assert "Ada Admin" in at.radio(key="signin_user").format_func(admin)
    button(at, "Sign in").click().run()
    assert not at.exception
    assert at.session_state["signed_in_email"] == admin
    assert at.title[0].value == store.institution(SYSTEM, code).name


def test_home_shows_counts_services_and_release(app, code):
    at = app(demo_email(code, "librarian"))
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Titles held", "Items held", "Loans", "E-usage (requests)", "Reading lists"}
    assert int(metrics["Items held"].replace(",", "")) > 1000
    assert int(metrics["Loans"].replace(",", "")) > 0
    body = texts(at)
    assert "Benchmark Analytics" in body and "Selection and Collection Development" in body
    assert "No community release has been published yet" in body


def test_admin_flips_a_switch_and_the_audit_row_appears(app, store, code):
    at = app(demo_email(code, "admin"))
    at.switch_page("pages/profile.py").run()
    assert not at.exception
    audit_before = len(store.audit_history(SYSTEM, code))
    assert at.toggle(key="profile_switch_benchmark").value is True
    at.toggle(key="profile_switch_benchmark").set_value(False)
    button(at, "Save sharing settings").click().run()
    assert not at.exception
    effective = store.sharing_state(SYSTEM, code)["benchmark"].effective_from
    assert any("Benchmark Analytics turned off. On now since" in s.value
               and f"turns off on {effective.isoformat()}" in s.value for s in at.success)
    audit = [df for df in at.dataframe if "What" in df.value.columns][0].value
    assert len(audit) == audit_before + 1
    newest = audit.iloc[0].to_dict()
    assert newest["What"] == "Sharing: Benchmark Analytics"
    assert newest["Who"] == demo_email(code, "admin")
    assert (newest["Old value"], newest["New value"]) == ("on", f"off (effective {effective.isoformat()})")
    assert "Pending" in texts(at)


def test_librarian_sees_profile_read_only(app, code):
    at = app(demo_email(code, "librarian"))
    at.switch_page("pages/profile.py").run()
    assert not at.exception
    assert "Only a General System Administrator" in texts(at)
    assert all(t.disabled for t in at.toggle)
    assert button(at, "Save sharing settings").disabled
    assert not any(b.label == "Save general section" for b in at.button)
    assert len(at.table) == 1  # the General section as a read-only table


def test_librarian_direct_store_call_is_refused(store, code):
    librarian = store.user(demo_email(code, "librarian")).principal()
    version = store.institution(librarian, code).version
    with pytest.raises(PermissionDenied):
        store.set_sharing(librarian, code, "recommendations", False, version)


def test_a_change_made_meanwhile_is_not_overwritten(app, store, code):
    at = app(demo_email(code, "admin"))
    at.switch_page("pages/profile.py").run()
    # Another administrator saves first.
    other = store.add_user(SYSTEM, f"second-admin@{code.lower()}.example.org", code, ["admin"]).principal()
    inst = store.institution(other, code)
    store.update_profile(other, code, {"fte_students": (inst.fte_students or 0) + 1}, inst.version)
    at.number_input(key="profile_fte").set_value(4321)
    button(at, "Save general section").click().run()
    assert any("changed by someone else" in e.value for e in at.error)
    assert store.institution(SYSTEM, code).fte_students == (inst.fte_students or 0) + 1
    button(at, "Reload").click().run()
    assert not at.exception
    assert not any("changed by someone else" in w.value for w in at.warning)


def test_what_will_be_shared_lists_exactly_the_allowed_columns(app, code):
    at = app(demo_email(code, "manager"))
    at.switch_page("pages/profile.py").run()
    assert not at.exception
    captions = [c.value for c in at.caption if c.value.startswith("Columns: ")]
    expected = {", ".join(contract.CONTRIBUTION_COLUMNS[t]) for t in
                contract.SERVICE_TABLES["collection_development"]}
    assert {c.removeprefix("Columns: ") for c in captions} <= expected and captions
    shown = [df.value for df in at.dataframe if "work_key" in df.value.columns]
    assert shown
    for frame in shown:
        assert "item_id" not in frame.columns and "title_id" not in frame.columns
    at.segmented_control(key="profile_preview_service").set_value("benchmark").run()
    captions = [c.value for c in at.caption if c.value.startswith("Columns: ")]
    assert captions == ["Columns: " + ", ".join(contract.CONTRIBUTION_COLUMNS[t])
                        for t in contract.SERVICE_TABLES["benchmark"]]


AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "id", "client_secret": "secret",
        "server_metadata_url": "https://login.example.org/.well-known/openid-configuration"}


@pytest.fixture
def oidc(app, monkeypatch):
    monkeypatch.setenv("ANALYTICS_SIGN_IN", "oidc")


def oidc_app(email: str | None, verified=True, secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for key, value in ({"auth": AUTH} if secrets is None else secrets).items():
        at.secrets[key] = value
    user = {"is_logged_in": True, "email": email} if email else {"is_logged_in": False}
    if email and verified is not None:
        user["email_verified"] = verified
    at.user = user
    return at.run()


def test_oidc_sign_in_maps_email_to_user(oidc, store, code):
    at = oidc_app(demo_email(code, "manager").upper())
    assert not at.exception
    assert at.title[0].value == store.institution(SYSTEM, code).name


def test_oidc_unknown_email_gets_no_access_page(oidc):
    at = oidc_app("stranger@example.org")
    assert not at.exception
    assert at.title[0].value == "No access"
    assert ui.md_text("stranger@example.org") in at.error[0].value  # shown as literal text


def test_oidc_signed_out_sees_sign_in_button_not_demo_users(oidc):
    at = oidc_app(None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.warning and not at.radio


def test_oidc_unverified_email_is_refused(oidc, code, caplog):
    email = demo_email(code, "admin")
    for verified in (False, None, "false"):
        at = oidc_app(email, verified=verified)
        assert not at.exception
        assert at.title[0].value == "No access"
        assert "has not verified the e" in at.error[0].value
        assert not [b for b in at.button if b.label == "Sign out" and b.key == "app_sign_out"]  # not signed in
    assert "sign-in refused" in caplog.text and "unverified e-mail" in caplog.text


def test_oidc_unverified_allowed_only_when_the_claim_is_absent_and_relaxed(oidc, store, code, monkeypatch):
    monkeypatch.setenv("ANALYTICS_ALLOW_UNVERIFIED_EMAIL", "true")
    at = oidc_app(demo_email(code, "manager"), verified=None)
    assert at.title[0].value == store.institution(SYSTEM, code).name
    at = oidc_app(demo_email(code, "manager"), verified=False)  # an explicit "not verified" stays refused
    assert at.title[0].value == "No access"


@pytest.mark.parametrize("secrets, says", [
    ({}, "is missing or empty"),
    ({"Auth": AUTH}, "It has [Auth]; the section must be named [auth]"),
    ({"auth": {k: v for k, v in AUTH.items() if k != "client_secret"}}, "lacks client_secret"),
])
def test_broken_auth_settings_stop_the_app_without_demo_sign_in(oidc, secrets, says):
    at = oidc_app(None, secrets=secrets)
    assert not at.exception
    assert says in at.error[0].value and "Sign-in is not configured" in at.error[0].value
    assert not at.radio and not at.selectbox and not at.button  # no demo user list, no sign-in


def test_demo_sign_in_lists_only_demo_users(demo_community, tmp_path, monkeypatch, code):
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(demo_community, data_dir)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    copy = Store(load_settings(data_dir).database_url)
    copy.add_user(SYSTEM, "real.admin@university.example.edu", code, ["admin"], name="Real Admin")
    copy.dispose()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    assert "Demo mode" in texts(at)
    at.selectbox(key="signin_institution").set_value(code).run()
    offered = at.radio(key="signin_user").options
    assert len(offered) == 3 and not any("Real Admin" in o for o in offered)


def test_community_page_before_any_release(app, code):
    at = app(demo_email(code, "librarian"))
    at.switch_page("pages/community.py").run()
    assert not at.exception
    assert "No community release has been published yet" in at.info[0].value


def test_community_page_shows_counts_not_names(published_community, monkeypatch):
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(published_community))
    store = Store(load_settings(published_community).database_url)
    institutions = store.list_institutions(SYSTEM)
    code = institutions[0].code
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["signed_in_email"] = demo_email(code, "manager")
    at.run()
    at.switch_page("pages/community.py").run()
    assert not at.exception
    from analytics.release.manifest import current_release_id, read_manifest, release_path

    manifest = read_manifest(release_path(load_settings(published_community).community_dir))
    metrics = {m.label: m.value for m in at.metric}
    release_id = current_release_id(load_settings(published_community).community_dir)
    assert metrics["Data as of"] == manifest["as_of"]
    assert metrics["Rows released"] == f"{sum(manifest['row_counts'].values()):,}"
    # A manager reads when, not the release id, and what the release holds in words, not file names.
    assert release_id not in texts(at) and ".parquet" not in "\n".join(df.value.to_csv() for df in at.dataframe)
    contents = [df.value for df in at.dataframe if "Contents" in df.value.columns][0]
    assert "Loans per work and month" in set(contents["Contents"])
    assert contents["Rows"].sum() == sum(manifest["row_counts"].values())
    contributors = [df.value for df in at.dataframe if "Service" in df.value.columns][0]
    regions = sorted({r for counts in manifest["contributors"].values() for r in counts})
    first_region = [c for c in contributors.columns if c.startswith(regions[0])][0]
    assert contributors[first_region].tolist() == [manifest["contributors"][s].get(regions[0], 0)
                                                   for s in ("collection_development", "recommendations",
                                                             "benchmark")]
    shown = "\n".join(df.value.to_csv() for df in at.dataframe) + texts(at)
    for inst in institutions:
        assert inst.name not in shown and f"({inst.code})" not in shown
    store.dispose()


def test_my_data_page_lists_records_without_identifiers(app, code, demo_community):
    at = app(demo_email(code, "librarian"))
    at.switch_page("pages/my_data.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    import polars as pl

    items = pl.read_parquet(demo_community / "institutions" / code / "items.parquet")
    held = items.filter(pl.col("withdrawn_date").is_null())
    assert items.height > held.height  # the demo withdraws items: Home and My data count held items alike
    assert metrics["Items held"] == f"{held.height:,}"
    by_title = held.filter(pl.col("match_method") == "fingerprint").height
    assert metrics["Matched by title and author only"] == f"{by_title:,}"
    problems = [df.value for df in at.dataframe if "problem" in df.value.columns][0]
    assert len(problems) == by_title
    history = [df.value for df in at.dataframe if "Kind" in df.value.columns][0]
    assert set(history["Kind"]) >= {"items", "loans"}
    at.switch_page("pages/home.py").run()
    assert {m.label: m.value for m in at.metric}["Items held"] == f"{held.height:,}"


def test_refused_actions_are_logged_with_who_and_what(store, code, caplog):
    other = next(i.code for i in store.list_institutions(SYSTEM) if i.code != code)
    librarian = store.user(demo_email(code, "librarian")).principal()
    with caplog.at_level("WARNING", logger="analytics.security"):
        with pytest.raises(PermissionDenied):
            store.sharing_state(librarian, other)
    record = next(r for r in caplog.records if r.name == "analytics.security")
    assert "refused at 20" in record.getMessage()  # when
    assert demo_email(code, "librarian") in record.getMessage()  # who
    assert f"belongs to {code} and may not see" in record.getMessage()  # what
