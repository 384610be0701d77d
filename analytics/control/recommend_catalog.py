"""The catalog of recommendation types: what each one says, to whom, and when it fires.

Pure data, shared by the rules (recommend.py), the control database (store/recommendations.py checks
who may act on a type), the page, the CLI and the README. A test checks that every
type here is documented in the app and in the README.

Each recommendation is about one *target*: an LC subclass, a work, a platform or a kind
of data problem. At most MAX_PER_TYPE are offered per type and release, best first.
Once offered, a recommendation keeps its place in the control database: dismissed or
implemented ones are not offered again on the next release unless the evidence changed
materially (the ``materiality`` sentence of each type says what counts), and ones that
are no longer true at a later release expire.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PER_TYPE = 30

STATUSES = ("new", "implemented", "dismissed", "expired")
HOW_IMPLEMENTED = ("tool", "manual")
HOW_LABELS = {"tool": "through this tool", "manual": "by hand, outside this tool"}
GRADES = ("helpful", "not_helpful")
DISMISS_REASONS = {
    "already_done": "Already done or in progress",
    "not_relevant": "Not relevant to our collection policy",
    "data_wrong": "The evidence is wrong or out of date",
    "no_budget_or_space": "No budget, staff or space to act now",
    "local_reason": "A local reason the data cannot show (e.g. a retention commitment)",
    "other": "Other (say why in the note)",
}


@dataclass(frozen=True)
class RecommendationType:
    id: str
    category: str
    roles: tuple[str, ...]
    title: str
    explanation: str
    rule: str
    evidence: str
    impact: str
    action: str
    materiality: str


CATEGORIES = ("Collection maintenance", "Acquisitions", "E-resources", "Collection strategy", "Data quality")

CATALOG: dict[str, RecommendationType] = {t.id: t for t in (
    RecommendationType(
        id="withdraw",
        category="Collection maintenance",
        roles=("manager", "librarian"),
        title="Withdraw unused print that many peers hold",
        explanation="Print items nobody has borrowed for years, of works that many institutions in your region "
                    "also hold, are safe candidates to withdraw: readers can still get them from a peer.",
        rule="Per LC subclass: your print items (not withdrawn, not of a work you committed to retain) with no loan "
             "in the last 10 years (or never, and added more than 10 years ago), "
             "whose work at least 10 institutions of your region hold in the current release (in a region with fewer "
             "than 20 contributing institutions: at least half of them, and never fewer than 3). Fires when a "
             "subclass has at least 5 such items; the subclasses with the most items come first.",
        evidence="Items, of which never used; median and lowest number of institutions of the region holding "
                 "them; oldest last use.",
        impact="Shelf space freed, in items.",
        action="Download the item list (CSV), or open Deselection and retention with the same rules.",
        materiality="The number of candidate items changed by at least 25% since it was dismissed or implemented.",
    ),
    RecommendationType(
        id="retain",
        category="Collection maintenance",
        roles=("manager", "librarian"),
        title="Retain scarce works",
        explanation="Works that only a few institutions of your region hold (too few for the community data to "
                    "list them) are scarce: if you withdraw them, readers in the region may lose access. Protect "
                    "them from weeding.",
        rule="Per LC subclass: works you hold (print, not withdrawn) that the current release does not list as "
             "held by K_TITLE or more institutions of your region (the release's threshold; so at most K_TITLE - 1 "
             "hold them, perhaps including you), not counting those you already committed to retain. Fires when a "
             "subclass has at least 5 such works; the subclasses with the most come first.",
        evidence="Scarce works and their items, of which used in the last 10 years.",
        impact="Scarce works protected from withdrawal.",
        action="Download the list of scarce items (CSV) to flag them for retention in your library system.",
        materiality="The number of scarce works changed by at least 25% since it was dismissed or implemented.",
    ),
    RecommendationType(
        id="add_copies",
        category="Acquisitions",
        roles=("manager", "librarian"),
        title="Add copies or an e-version of heavily used works",
        explanation="Works whose loans per copy far exceed what peers see for the same work are probably "
                    "in short supply: readers wait or go without.",
        rule="Works you lent at least 10 times in the last 12 months whose loans per print copy are at least "
             "3 times the median loans per copy of the institutions of your region that hold the work (a median "
             "released only over at least 3 holders; a median below 1 counts as 1). The highest ratios come first.",
        evidence="Your copies, loans in 12 months and loans per copy; the peer median loans per copy and the "
                 "number of holders; whether peers hold an e-version.",
        impact="Loans a year one more copy (or an e-version) would carry.",
        action="Download the list with ISBNs (CSV) for your order.",
        materiality="Your loans per copy changed by at least 50% or your number of copies changed.",
    ),
    RecommendationType(
        id="acquire_teaching",
        category="Acquisitions",
        roles=("librarian", "manager"),
        title="Acquire works peers teach with, in subjects you teach",
        explanation="Works on the reading lists of several institutions in your region, in subjects where your "
                    "own courses have reading lists, are likely to be wanted by your students too.",
        rule="Works on reading lists (this year or last) of at least 3 institutions of your region, in an LC "
             "subclass that your own reading lists cite, that you do not hold in any edition. Most institutions "
             "listing first.",
        evidence="Institutions of the region listing the work and holding it; your reading-list citations in the "
                 "subclass.",
        impact="Courses in the subject at peers that use it; your citations in the subject it would support.",
        action="Download the list with ISBNs (CSV), or open Selection for the full peer list.",
        materiality="At least 2 more institutions list it than when it was dismissed or implemented.",
    ),
    RecommendationType(
        id="acquire_trending",
        category="Acquisitions",
        roles=("librarian", "manager"),
        title="Acquire rising works in your strongest subjects",
        explanation="Works whose use is rising fast in your region, in the subjects where your readers borrow "
                    "most, are good candidates to buy before demand peaks.",
        rule="Works trending in your region over 6 months with a score of at least ln 2 (the signal at least "
             "doubled), in one of your 5 LC subclasses with the most loans in the last 12 months, that you do not "
             "hold in any edition. Highest scores first.",
        evidence="Trend score, recent and earlier signal, loans in the recent window, institutions holding; the "
                 "rank of the subject among your own.",
        impact="Loans per holding institution in the last 6 months: the use one copy can expect.",
        action="Download the list with ISBNs (CSV), or open Trending titles on the same subject.",
        materiality="Its trend score rose by at least 0.5 since it was dismissed or implemented.",
    ),
    RecommendationType(
        id="review_e_titles",
        category="E-resources",
        roles=("manager",),
        title="Review unused e-titles",
        explanation="E-titles with no COUNTER use for a year are worth reviewing at renewal, when you load usage "
                    "for them.",
        rule="Per LC subclass: your electronic items whose work has no COUNTER use in your own usage data for the "
             "last 12 months, provided you loaded usage data in that period. Fires when a subclass has at least "
             "5 such e-titles; the most first.",
        evidence="E-titles held and unused in the subclass, the share unused, and how many of them are used in "
                 "the region (released community e-usage).",
        impact="E-titles to review at renewal.",
        action="Download the list of unused e-titles (CSV).",
        materiality="The number of unused e-titles changed by at least 25% since it was dismissed or implemented.",
    ),
    RecommendationType(
        id="load_usage",
        category="E-resources",
        roles=("admin", "manager"),
        title="Load usage data for a platform",
        explanation="You hold e-titles from a platform but load no COUNTER usage for it, while most peers that "
                    "hold it do: without it, those e-titles are invisible to e-title review and benchmarks.",
        rule="Platforms on which the community reports usage for at least 10 of your e-titles, for which you "
             "loaded no usage in the last 12 months, while more than half of the institutions of your region "
             "holding e-titles from the platform (at least 3) load usage for it. Most e-titles first.",
        evidence="Your e-titles on the platform; institutions of the region holding it and loading usage for it.",
        impact="E-titles whose use becomes visible.",
        action="Import the platform's COUNTER report: python -m analytics import CODE e-usage FILE "
               "(or the counter kind), then look at My data.",
        materiality="Your number of e-titles on the platform changed by at least 25%.",
    ),
    RecommendationType(
        id="print_e_duplication",
        category="Collection maintenance",
        roles=("manager",),
        title="Print duplicates of well-used e-books",
        explanation="Where you hold a work in print and electronically, the print has not been used for years "
                    "and the e-version is used, the print copy is a candidate to withdraw or move to storage.",
        rule="Works you hold in print and electronically whose print items had no loan in the last 3 years (or "
             "never, and added more than 3 years ago) while the e-version had at least 5 COUNTER Total_Item_Requests in the last 12 months. Most "
             "e-requests first.",
        evidence="Print copies and their last use; e-requests in 12 months.",
        impact="Shelf space freed, in items.",
        action="Download the list of print items (CSV).",
        materiality="The number of print copies changed.",
    ),
    RecommendationType(
        id="subject_balance",
        category="Collection strategy",
        roles=("manager",),
        title="Rebalance a subject",
        explanation="Relative use is a subject's share of loans divided by its share of holdings. Where yours is "
                    "far above the community's the subject is under-invested (heavy demand on few items); far "
                    "below, it is over-invested.",
        rule="LC subclasses with at least 50 of your items and 20 of your loans in 12 months where your relative "
             "use is at least 1.5 times the region's (under-invested) or at most 1/1.5 of it (over-invested). "
             "The largest departures first.",
        evidence="Your shares of holdings and loans and your relative use; the region's relative use.",
        impact="Items in the subject and how far its use departs from the community's.",
        action="Open Subjects for the subclass, then Selection (under-invested) or Deselection (over-invested).",
        materiality="It changed direction, or the ratio to the region moved by at least 0.5.",
    ),
    RecommendationType(
        id="data_quality",
        category="Data quality",
        roles=("admin", "librarian"),
        title="Fix records the community cannot match or place",
        explanation="Records without ISBN, ISSN or OCLC number are matched to the community by title and "
                    "author only, or not at all; records with a call number that is not an LC call number "
                    "cannot be placed in a subject. Every other recommendation sees them poorly or not at all.",
        rule="Fires for each problem (no identifiers, unparseable call number) that affects at least 10 of your "
             "held items and at least 1% of them.",
        evidence="Items affected and their share of your holdings.",
        impact="Items that become visible to every other recommendation once fixed.",
        action="Download the list of affected records (CSV) and correct them in your library system, then "
               "import again.",
        materiality="The number of affected items changed by at least 25%.",
    ),
)}
