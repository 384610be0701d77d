"""What keeps pages fast (issue 16; measured by `python -m analytics bench --only pages`):
downloads are made when clicked, not on every run of a page, and the server warms up once,
in the background, so that the first visit of a page does not import its code or open the
release itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.synthetic.demo import demo_email

ROOT = Path(__file__).resolve().parents[2]


def _open(code: str, path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = demo_email(code, "manager")
    at.run()
    at = at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


# (The selection report makes its downloads the same way; the small test community has no
# work that meets its thresholds, so it shows none.)
@pytest.mark.parametrize("path, buttons", [("pages/trending.py", 2), ("pages/subjects.py", 2),
                                           ("pages/deselection.py", 2), ("pages/my_data.py", 2)])
def test_downloads_are_made_when_clicked_not_on_every_run(institution, monkeypatch, path, buttons):
    import ui

    made = []
    for name in ("csv_bytes", "excel_bytes"):
        monkeypatch.setattr(ui, name, lambda *args, name=name, **kwargs: made.append(name) or b"x")
    at = _open(institution, path)
    at.run()  # a second run of the page: still nothing made
    assert len(at.get("download_button")) == buttons
    assert made == []


def test_the_server_warms_up_once_in_the_background(institution, monkeypatch):
    import ui

    started = []
    monkeypatch.setattr(ui, "_warm_up", lambda: started.append(True))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["signed_in_email"] = demo_email(institution, "manager")
    at.run()
    at.switch_page("pages/community.py").run()
    assert started == [True]  # app.py started it, once for the process, not once per run


def test_the_warm_up_opens_the_release_every_page_then_uses(institution, monkeypatch):
    import ui
    from analytics.release import handle
    from analytics.release.manifest import current_release_id

    thread = ui.warm_up()
    thread.join(timeout=120)
    assert not thread.is_alive()

    def refuse(*_args, **_kwargs):
        raise AssertionError("the page opened the release again")

    monkeypatch.setattr(handle, "open_release", refuse)
    release = ui.current_release_handle()
    assert release.release_id == current_release_id(ui.settings().community_dir)
    # And a page's first visit finds it open.
    at = _open(institution, "pages/trending.py")
    assert at.title[0].value == "Trending titles" and len(at.get("plotly_chart")) == 1
