"""Prove the test infrastructure itself works: PostgreSQL, Chromium, Streamlit."""

from __future__ import annotations

import functools
import http.server
import socket
import textwrap
import threading

import pytest
import sqlalchemy as sa

from tests.support.browser import browser_page, chromium_path, streamlit_server
from tests.support.postgres import throwaway_postgres


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.postgres
def test_throwaway_postgres_starts_and_cleans_up():
    with throwaway_postgres() as url:
        assert url.startswith("postgresql+psycopg://")
        assert f"127.0.0.1:{url.port}/" in url
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert "PostgreSQL" in conn.execute(sa.text("select version()")).scalar_one()
                conn.execute(sa.text("create table t (x int)"))
                conn.execute(sa.text("insert into t values (1), (2)"))
                assert conn.execute(sa.text("select sum(x) from t")).scalar_one() == 3
        finally:
            engine.dispose()
        port, base_dir = url.port, url.base_dir
        assert _port_open(port)
        assert base_dir.is_dir()
    assert not _port_open(port)
    assert not base_dir.exists()


@pytest.mark.postgres
def test_postgres_url_fixture(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar_one() == "test"
    finally:
        engine.dispose()


@pytest.fixture
def static_site(tmp_path):
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><title>Support check</title></head>"
        "<body><h1 id='hello'>Hello from http.server</h1></body></html>"
    )

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.browser
def test_chromium_reads_static_page(static_site, artifacts_dir):
    assert chromium_path()
    with browser_page() as page:
        page.goto(static_site)
        assert page.title() == "Support check"
        assert page.locator("#hello").inner_text() == "Hello from http.server"
        page.screenshot(path=str(artifacts_dir / "support-static-page.png"))


@pytest.mark.browser
@pytest.mark.slow
def test_streamlit_server_renders_in_chromium(tmp_path, artifacts_dir):
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import os
            import streamlit as st

            st.title("Support smoke app")
            st.write("marker:", os.environ.get("SUPPORT_MARKER", "missing"))
            """
        )
    )
    with streamlit_server(tmp_path, {"SUPPORT_MARKER": "env-merged"}) as base_url:
        with browser_page() as page:
            page.goto(base_url)
            page.get_by_text("Support smoke app").first.wait_for(timeout=30_000)
            page.get_by_text("env-merged").first.wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "support-streamlit.png"))
    port = int(base_url.rsplit(":", 1)[1])
    assert not _port_open(port)
