"""Fixtures of the page tests."""

from __future__ import annotations

import shutil

import pytest
import streamlit as st

from tests.support.tour import sharing_institution


@pytest.fixture
def institution(published_community, tmp_path, monkeypatch) -> str:
    """The code of an institution that shares everything, in a private copy of the published demo
    community (ANALYTICS_DATA_DIR points at it; Streamlit's caches start empty)."""
    data_dir = tmp_path / "data"
    shutil.copytree(published_community, data_dir, symlinks=True)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data_dir))
    st.cache_resource.clear()
    st.cache_data.clear()
    return sharing_institution(data_dir)[0]
