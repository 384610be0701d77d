"""Sharing status says what is in effect now and what is pending, with dates, the same way
everywhere: a property test over sequences of switch changes and days, against a direct
replay of the rules (a change takes effect on its effective date; later changes override)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings, strategies as st

from analytics.control.store import _switch_state, effective_from

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _events(service: str, steps: list[tuple[int, bool]]) -> list[dict]:
    """Alternating-or-not requests at increasing times (days after START)."""
    rows, when = [], START
    for gap, enabled in steps:
        when = when + timedelta(days=gap, minutes=1)
        rows.append({"enabled": enabled, "requested_at": when, "effective_from": effective_from(service, when),
                     "actor": "admin@x.example.org"})
    return rows


def _truth(rows: list[dict], on: date) -> tuple[bool, date | None]:
    """Value in effect on `on` and the day it last changed (replayed day by day)."""
    value, since = False, None
    day = START.date()
    while day <= on:
        applying = [r for r in rows if r["effective_from"] <= day]
        now = bool(applying[-1]["enabled"]) if applying else False
        if now != value:
            value, since = now, day
        day += timedelta(days=1)
    return value, since


steps = st.lists(st.tuples(st.integers(min_value=0, max_value=40), st.booleans()), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(service=st.sampled_from(["benchmark", "collection_development", "recommendations"]), changes=steps,
       offset=st.integers(min_value=0, max_value=150))
def test_status_matches_the_rules(service, changes, offset):
    rows = _events(service, changes)
    today = START.date() + timedelta(days=offset)
    known = [r for r in rows if r["requested_at"].date() <= today]  # what exists on that day
    if not known:
        return
    state = _switch_state(service, known, today)
    value, since = _truth(known, today)
    assert state.in_effect == value
    assert state.since == since  # the day it really became what it is, never a future date
    assert state.since is None or state.since <= today
    assert state.requested == known[-1]["enabled"]
    label, sentence = state.describe()
    if state.pending:
        assert state.pending_from > today and label == "Pending"
        assert f"turns {'on' if state.requested else 'off'} on {state.pending_from.isoformat()}" in sentence
    else:
        assert state.pending_from is None and label == ("On" if value else "Off")
    # the only date presented as "since" is in the past or today
    if " since " in sentence:
        assert sentence.split(" since ")[1][:10] <= today.isoformat()


def test_off_then_on_before_the_off_took_effect_shows_the_original_date():
    rows = _events("benchmark", [(0, True), (40, False), (3, True)])  # on in January, off and on again in February
    today = rows[-1]["requested_at"].date()
    state = _switch_state("benchmark", rows, today)
    assert not state.pending and state.in_effect
    assert state.since == date(2026, 2, 1)  # on from the cycle after the first request, not a future date
    assert state.describe() == ("On", "On since 2026-02-01.")


def test_collection_development_off_says_the_current_release_still_holds_it():
    rows = _events("collection_development", [(0, True), (30, False)])
    today = rows[-1]["requested_at"].date()
    state = _switch_state("collection_development", rows, today)
    built = rows[-1]["requested_at"] - timedelta(days=2)
    label, sentence = state.describe(last_release_at=built)
    assert label == "Off" and sentence.startswith(f"Off since {today.isoformat()}.")
    assert "The current community release still holds your data; the next release leaves it out." in sentence
    assert state.describe(last_release_at=rows[-1]["requested_at"] + timedelta(hours=1)) == (
        "Off", f"Off since {today.isoformat()}.")  # a release built since then no longer holds it
