from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.postgres import throwaway_postgres


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of a fresh PostgreSQL server shared by the whole session."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests drop screenshots and other artifacts (git-ignored)."""
    path = Path("test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
