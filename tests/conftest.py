from __future__ import annotations

import os
from pathlib import Path

# The app fails closed without single sign-on settings; tests sign in through the demo
# sign-in, chosen explicitly as `make run` does. OIDC tests set ANALYTICS_SIGN_IN=oidc.
os.environ["ANALYTICS_SIGN_IN"] = "demo"

import pytest

from tests.support.postgres import throwaway_postgres


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of a fresh PostgreSQL server shared by the whole session."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """An empty data directory (it is created by the first command or import that writes to it)."""
    return tmp_path / "data"


@pytest.fixture
def signed_in():
    """Open the app as a user: `with signed_in(data_dir, code, name, person, viewport=...) as (page, base_url):`
    starts a real Streamlit server on `data_dir` (extra settings in `env=`), opens Debian's Chromium
    and signs in through the demo sign-in."""
    from tests.support.browser import signed_in_page

    def open_as(data_dir, code: str, name: str, person: str | None = None, *, env: dict | None = None,
                **page_kwargs):
        settings = {"ANALYTICS_DATA_DIR": str(data_dir), **(env or {})}
        return signed_in_page(Path(__file__).resolve().parents[1], settings, code, name, person, **page_kwargs)

    return open_as


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests drop screenshots and other artifacts (git-ignored)."""
    path = Path("test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def demo_community(tmp_path_factory):
    """A small demo community built once per test session through the real import path."""
    from analytics.core.config import load_settings
    from analytics.synthetic.demo import build_demo

    data_dir = tmp_path_factory.mktemp("demo") / "data"
    build_demo(load_settings(data_dir), institutions=6, months=18, seed=3, progress=lambda _line: None)
    return data_dir


@pytest.fixture(scope="session", autouse=True)
def hermetic_environment():
    """Tests never touch a developer's real data dir or database."""
    import os

    saved = {k: os.environ.pop(k) for k in ("DATABASE_URL", "ANALYTICS_DATA_DIR") if k in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def published_community(demo_community, tmp_path_factory):
    """A copy of the demo community with one release published."""
    import shutil

    from analytics.core.config import load_settings
    from analytics.release.publish import publish
    from analytics.control.store import Store

    data_dir = tmp_path_factory.mktemp("published") / "data"
    shutil.copytree(demo_community, data_dir)
    settings = load_settings(data_dir)
    store = Store.from_settings(settings)
    publish(settings, store)
    store.dispose()
    return data_dir


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """An empty control database, once on SQLite and once on a throwaway PostgreSQL."""
    from analytics.core.access import Principal
    from analytics.control.store import Store

    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'control.db'}")
    else:
        s = Store(request.getfixturevalue("postgres_url"))
        s.drop_everything(Principal.system_job())
    yield s
    s.dispose()
