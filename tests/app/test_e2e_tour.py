"""The browser tour (tests/support/tour.py): each role signs in on a real server and opens every page of
its navigation; no page may show a traceback, a raw header, a "None"/"nan" cell, an empty table or ask
another host for anything. The tour writes each page's screenshot to test-artifacts/tour/ (the README's
come from the same tour: scripts/screenshots.py)."""

from __future__ import annotations

import pytest

from analytics.synthetic.demo import DEMO_USERS
from tests.support.tour import Messages, sharing_institution, tour

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ALL_PAGES = {"Home", "Trending titles", "Selection report", "Subject overview", "Deselection and retention",
             "Collection comparison", "Last-copy check",
             "Recommendations", "Benchmarks", "Community data", "My data", "Import data", "Data sharing profile"}


@pytest.mark.parametrize("role", ["admin", "manager", "librarian"])
def test_tour_of_every_page(signed_in, published_community, artifacts_dir, role):
    code, name = sharing_institution(published_community)
    person = dict(DEMO_USERS)[role]
    requests: list[str] = []
    watched = []
    with signed_in(published_community, code, name, person, requests=requests, before=lambda p: watched.append(
            Messages(p)), viewport={"width": 1400, "height": 1000}) as (page, base_url):
        messages = watched[0]
        visits = tour(page, base_url, messages, requests, shots=artifacts_dir / "tour", prefix=f"{role}-")
    titles = {v.title for v in visits}
    # Every role has the pages of its work; an administrator every page.
    assert {"Home", "Trending titles", "Community data", "My data"} <= titles
    if role == "admin":
        assert titles == ALL_PAGES
    assert sum(v.tables for v in visits) >= 5  # the checks saw the tables
    problems = {v.title: v.problems for v in visits if v.problems}
    assert problems == {}
    assert all(v.screenshot.stat().st_size > 20_000 for v in visits)
