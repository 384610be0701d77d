"""Home's next steps: for the signed-in user, a short list of what to do next and the page to do it on.

What a user may do follows the roles (analytics.core.access, analytics.control.recommend_catalog): a
General System Administrator imports data and sets what the institution shares; a Manager and a
Collection librarian act on recommendations of their types and read the community reports their
institution shares for. The steps follow the institution's state: nothing imported yet, a service not
shared, recommendations waiting for the user, no community data yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.control.store import Store
from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import SERVICE_LABELS
from analytics.views.recommend import may_act

MAX_STEPS = 5
# The kinds of data an institution imports, in the order the steps name them.
IMPORT_KINDS = {"items": "items", "loans": "loans", "e-usage": "e-usage (COUNTER)",
                "reading-lists": "reading lists"}


@dataclass(frozen=True)
class Step:
    page: str  # the page script, as st.page_link takes it
    label: str  # the link's text: what to do
    why: str  # one sentence: why now


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def _words(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def next_steps(actor: Principal, store: Store, code: str, *, imported: tuple[str, ...],
               release_id: str | None) -> list[Step]:
    """The next steps of `actor` at its institution `code`, most pressing first (at most MAX_STEPS).

    `imported`: the kinds of local data the institution has (ingest.local.summary().tables);
    `release_id`: the community release in force, or None before the first publish."""
    access.require_member(actor, code, "the next steps")
    roles = set(actor.roles)
    admin = actor.is_admin_of(code)
    states = store.sharing_state(actor, code)
    steps: list[Step] = []

    missing = [label for kind, label in IMPORT_KINDS.items() if kind not in imported]
    if not imported:
        steps.append(Step("pages/import_data.py", "Import your data", "Nothing has been imported yet: start with "
                          "your items (MARC or a CSV export), then loans, e-usage and reading lists.")
                     if admin else
                     Step("pages/import_data.py", "See what has been imported", "Nothing has been imported for your "
                          "institution yet; a General System Administrator imports its data."))
    elif admin and missing:
        steps.append(Step("pages/import_data.py", f"Import your {_words(missing)}",
                          "Every report and recommendation that needs them is blind until they are imported."))

    off = [SERVICE_LABELS[service] for service, state in states.items() if not state.requested]
    if admin and off:
        steps.append(Step("pages/profile.py", f"Turn on sharing for {_words(off)}",
                          "Your institution sees the community's data of a service only while it shares its own."))

    if release_id and states["recommendations"].in_effect and (roles & {"admin", "manager", "librarian"}):
        records = store.recommendation_records(actor, code)
        waiting = [r for r in records if r.status == "new" and may_act(actor, r.type)]
        if waiting:
            steps.append(Step("pages/recommendations.py", f"Act on {_plural(len(waiting), 'recommendation')}",
                              "They wait for someone with your role: implement, dismiss or grade each one."))
        elif imported and not store.recommendations_synced(actor, code, release_id):
            steps.append(Step("pages/recommendations.py", "See the recommendations of the new community data",
                              "Your data has not been compared with the community data in force yet."))

    collection = states["collection_development"].in_effect and release_id is not None
    benchmark = states["benchmark"].in_effect and release_id is not None
    if "librarian" in roles:
        if collection:
            steps += [Step("pages/trending.py", "See what is trending in your subjects",
                           "Titles whose use is rising fastest in your region."),
                      Step("pages/selection.py", "Find titles to buy in the selection report",
                           "What peers hold and use that you do not."),
                      Step("pages/deselection.py", "Review candidates to withdraw or retain",
                           "Unused print that many peers hold, and scarce works to keep.")]
        elif not states["collection_development"].in_effect:
            steps.append(Step("pages/profile.py", "See why the collection reports are closed",
                              "Trending titles, Selection and Deselection need your institution to share "
                              "Selection and Collection Development data; a General System Administrator turns "
                              "it on."))
    if "manager" in roles:
        if benchmark:
            steps.append(Step("pages/benchmarks.py", "Compare your KPIs with similar institutions",
                              "Your key figures against the anonymized distribution of peers in your region."))
        elif not states["benchmark"].in_effect:
            steps.append(Step("pages/profile.py", "See why benchmarks are closed",
                              "Benchmarks need your institution to share Benchmark Analytics data; a General "
                              "System Administrator turns it on."))
        if collection:
            steps.append(Step("pages/subjects.py", "See how your subjects compare",
                              "Holdings and use per subject against the community."))
    if admin and imported:
        steps.append(Step("pages/my_data.py", "Check the quality of your data",
                          "Records without identifiers or LC call numbers cannot be matched with the community."))
    if admin and not off:
        steps.append(Step("pages/profile.py", "Review what your institution shares",
                          "Every service is shared; the profile says since when and what leaves your institution."))
    if not steps:
        steps.append(Step("pages/my_data.py", "Look at your institution's data",
                          "What has been imported and how well it matches the community."))

    seen: set[str] = set()
    unique = [s for s in steps if not (s.page in seen or seen.add(s.page))]
    return unique[:MAX_STEPS]
