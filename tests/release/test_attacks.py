"""Attacks on the community release: what a member that keeps every release can learn.

Threat model: a member institution (or a few colluding) keeps every release file and every
output it was shown (its own benchmark report), knows who joined or left the community and
when, and combines releases, the two parts of a release (top level: collection
development contributors; recommendations/: recommendations contributors), peer groups and
periods. The attacker below reads ONLY released files (through the release schema of
analytics/release.py and docs/data-contract.md) and colluders' own data; never
contributions or the control database. The truth each attack is scored against comes from
the target institution's own data (tests/attack_community.py, analytics.views.benchmark.own_counted).

Each test builds a community that makes its attack worst-case, MEASURES the attacker's
success and asserts the acceptance bound:
  exact recovery of a figure   <= 5% of attacked cells/rows (within 1% relative; integer
                                  loans: exactly equal)
  membership guess             <= 70% accuracy on a balanced set (half the works held by the
                                  target, half not)
Counts may be withheld (null) or rows absent: such cells are unknown to the attacker, left
out of the denominators and reported as skipped. No attack assumes a count is exact.
Each test prints its measurements (pytest -s shows them) and puts them in its assertion
messages. A test also fails when too few cells can be attacked to measure anything
(MIN_CELLS), so that withholding everything does not pass by default.
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from analytics.release import benchmark_cells
from analytics.views import benchmark
from analytics.contribute import disclosure
from analytics.release.publish import publish
from analytics.core.schema import size_band
from tests.attack_community import (COLLECTION, Library, institution, kept, months, normalise, opt_in, rate,
                                    relative_hit, released_strings, work_key)
from tests.community import build, opt_out
from analytics.core.access import Principal as _Principal

SYSTEM_JOB = _Principal.system_job()

EXACT_BOUND = 0.05  # share of attacked cells/rows recovered exactly
MEMBERSHIP_BOUND = 0.70  # accuracy of a membership guess on a balanced set
MIN_CELLS = 20  # fewer attacked cells than this measure nothing: the test fails instead of passing


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


def report(label: str, **figures) -> str:
    text = f"[{label}] " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in figures.items())
    print(text)
    return text


def acquired_on(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def balanced(rng: random.Random, positives: list, negatives: list) -> tuple[list, list]:
    """Equal numbers of held and not-held cases (seeded sample of the larger side)."""
    size = min(len(positives), len(negatives))
    return rng.sample(positives, size), rng.sample(negatives, size)


# ------------------------------------------------------------------------------------------------
# Community 1: title-level data, 14 institutions of one region. Z shares nothing at first, turns
# collection development on between release A and release B, and never shares recommendations:
# so release B's two parts differ by Z alone, and releases A and B (top level) differ by Z alone.
# ------------------------------------------------------------------------------------------------

TITLE_WORKS = 320
LOAN_MONTHS = months("2025-06", "2026-05")
RELEASE_A = date(2026, 6, 15)
Z_ON = at(date(2026, 6, 16), 9)
RELEASE_B = date(2026, 6, 20)


def title_libraries(seed: int = 11) -> list[Library]:
    """8 research and 5 teaching institutions (sizes crossing the types, so that type= and size=
    groups differ) sharing collection development and recommendations, plus Z. Each work is held
    with its own probability (15-60%), so holder counts spread around K_TITLE; holders lend in a
    month with probability 0.6."""
    rng = random.Random(seed)
    libs = [Library(f"R{i}", "research", 20_000 if i < 5 else 10_000, services=COLLECTION) for i in range(8)]
    libs += [Library(f"T{i}", "teaching", 20_000 if i < 2 else 10_000, services=COLLECTION) for i in range(5)]
    libs.append(Library("Z", "research", 10_000, services=()))
    for w in range(TITLE_WORKS):
        p = rng.uniform(0.15, 0.6)
        for lib in libs:
            if rng.random() >= p:
                continue
            acquired = acquired_on(rng, date(2016, 1, 1), date(2026, 5, 28))
            lib.held[w] = acquired
            for month in LOAN_MONTHS:
                if month >= acquired.isoformat()[:7] and rng.random() < 0.6:
                    lib.loans[(w, month)] = 1 + int(rng.expovariate(0.4))
    return libs


@pytest.fixture(scope="module")
def title_community(tmp_path_factory):
    libs = title_libraries()
    settings, store = build(tmp_path_factory.mktemp("titles") / "data", [lib.member() for lib in libs])
    a = kept(settings, publish(settings, store, as_of=RELEASE_A, now=at(RELEASE_A, 10)))
    opt_in(store, "Z", "collection_development", Z_ON)
    b = kept(settings, publish(settings, store, as_of=RELEASE_B, now=at(RELEASE_B)))
    yield {lib.code: lib for lib in libs}, a, b
    store.dispose()


def loan_difference_attack(label: str, more: pl.DataFrame, fewer: pl.DataFrame, target: Library) -> dict:
    """loans(more) - loans(fewer) per (work, region, month), scored against the target's own loans
    where it lent. Rows absent or with a null figure on either side are skipped."""
    keys = ["work_key", "region", "month"]
    joined = more.select(*keys, pl.col("loans").alias("more")).join(
        fewer.select(*keys, pl.col("loans").alias("fewer")), on=keys, how="full", coalesce=True)
    truth = {(work_key(w), m): n for (w, m), n in target.loans.items() if n > 0}
    hits = attacked = skipped = zero_rows = zero_hits = 0
    for row in joined.filter(pl.col("region") == target.region).iter_rows(named=True):
        true = truth.get((row["work_key"], row["month"]), 0)
        if row["more"] is None or row["fewer"] is None:
            skipped += true > 0
            continue
        estimate = row["more"] - row["fewer"]
        if true == 0:  # the target did not lend: reported, not scored
            zero_rows += 1
            zero_hits += estimate == 0
            continue
        attacked += 1
        hits += estimate == true
    unseen = len(truth) - attacked - skipped  # the target lent, but no row on either side
    return dict(label=label, hits=hits, attacked=attacked, skipped=skipped, unseen=unseen, zero_rows=zero_rows,
                zero_hits=zero_hits, rate=rate(hits, attacked))


def current_holders(release_table: pl.DataFrame, month: str, region: str) -> dict[str, int | None]:
    """work_key -> institutions_holding (None: withheld) of the current-holdings rows."""
    rows = release_table.filter((pl.col("month") == month) & (pl.col("region") == region))
    return dict(zip(rows["work_key"].to_list(), rows["institutions_holding"].to_list()))


def membership_attack(label: str, more: dict, fewer: dict, target: Library, works: range, seed: int) -> dict:
    """Guess 'the target holds the work' from two current-holdings views that differ by the target:
    both counts shown -> holds iff the difference is at least 1 (0.5 for fractional counts);
    shown only where the target is included -> holds; shown only where it is not -> not.
    Works visible in neither are not in the set; a null count on a visible side is skipped."""
    cases_pos, cases_neg, skipped = [], [], 0
    for w in works:
        key = work_key(w)
        in_more, in_fewer = key in more, key in fewer
        if not in_more and not in_fewer:
            continue
        a, b = more.get(key), fewer.get(key)
        if (in_more and a is None) or (in_fewer and b is None):
            skipped += 1
            continue
        if in_more and in_fewer:
            guess = a - b >= 0.5
        else:
            guess = in_more
        (cases_pos if w in target.held else cases_neg).append(guess)
    rng = random.Random(seed)
    pos, neg = balanced(rng, cases_pos, cases_neg)
    correct = sum(pos) + sum(not g for g in neg)
    total = len(pos) + len(neg)
    return dict(label=label, correct=correct, total=total, skipped=skipped, held_visible=len(cases_pos),
                not_held_visible=len(cases_neg), accuracy=rate(correct, total))


def test_attack_two_parts_of_one_release(title_community):
    """Attack 2: release B's top level (collection development: the 13 + Z) and recommendations/
    (the 13, Z does not share recommendations) differ by Z alone. Loans per (work, region, month)
    subtracted give Z's monthly loans per work; institutions_holding of the current month
    subtracted tell whether Z holds a work."""
    libs, _a, b = title_community
    z = libs["Z"]
    loans = loan_difference_attack("two parts: loans", b["loans.parquet"], b["recommendations/loans.parquet"], z)
    message = report(**loans)
    month = b.as_of_month
    holders = membership_attack("two parts: membership", current_holders(b["holdings.parquet"], month, "EU"),
                                current_holders(b["recommendations/holdings.parquet"], month, "EU"), z,
                                range(TITLE_WORKS), seed=2)
    message2 = report(**holders)
    assert loans["attacked"] >= MIN_CELLS, message
    assert holders["total"] >= MIN_CELLS, message2
    assert loans["rate"] <= EXACT_BOUND, f"Z's loans recovered exactly: {message}"
    assert holders["accuracy"] <= MEMBERSHIP_BOUND, f"Z's holdings guessed: {message2}"


def test_attack_titles_across_releases(title_community):
    """Attack 3: Z turns collection development on between release A and release B (effective
    at the next release); the top-level title tables of A and B differ by Z alone. Loans per
    (work, month) subtracted give Z's loans; institutions_holding differences, and rows that
    newly appear in B, tell whether Z holds a work."""
    libs, a, b = title_community
    z = libs["Z"]
    loans = loan_difference_attack("across releases: loans", b["loans.parquet"], a["loans.parquet"], z)
    message = report(**loans)
    month = b.as_of_month
    assert a.as_of_month == month  # same window: the releases differ by Z's contribution only
    holders = membership_attack("across releases: membership", current_holders(b["holdings.parquet"], month, "EU"),
                                current_holders(a["holdings.parquet"], month, "EU"), z, range(TITLE_WORKS), seed=3)
    message2 = report(**holders)
    assert loans["attacked"] >= MIN_CELLS, message
    assert holders["total"] >= MIN_CELLS, message2
    assert loans["rate"] <= EXACT_BOUND, f"Z's loans recovered exactly: {message}"
    assert holders["accuracy"] <= MEMBERSHIP_BOUND, f"Z's holdings guessed: {message2}"


def test_attack_membership_combining_every_count(title_community):
    """Attack 3, strongest form: Z joins between A and B and is counted in its region's 'all' group
    and in its type and size groups. Each of those counts (holdings' current month and
    peer_selection's holding and acquired-in-12-months counts of every group Z is in) is
    differenced; the attacker guesses 'holds' when the differences average at least 0.5, or,
    where no count is visible in both releases, when a row appeared. Balanced set, <= 70%."""
    libs, a, b = title_community
    z = libs["Z"]
    month = b.as_of_month
    groups = {"all", f"type={z.type}", f"size={size_band(z.fte)}"}

    def observations(release) -> dict[tuple, int | None]:
        seen: dict[tuple, int | None] = {}
        rows = release["holdings.parquet"].filter((pl.col("month") == month) & (pl.col("region") == "EU"))
        for key, n in rows.select("work_key", "institutions_holding").iter_rows():
            seen[(key, "holdings")] = n
        peer = release["peer_selection.parquet"].filter(pl.col("peer_group").is_in(list(groups)))
        for key, group, held, acquired in peer.select("work_key", "peer_group", "institutions_holding",
                                                       "institutions_acquired_12m").iter_rows():
            seen[(key, f"{group}:holding")] = held
            seen[(key, f"{group}:acquired")] = acquired
        return seen

    after, before = observations(b), observations(a)
    cases_pos, cases_neg = [], []
    for w in range(TITLE_WORKS):
        key = work_key(w)
        mine = {o for (k, o) in (*after, *before) if k == key}
        if not mine:
            continue
        diffs = [after[(key, o)] - before[(key, o)] for o in mine
                 if after.get((key, o)) is not None and before.get((key, o)) is not None]
        appeared = any(after.get((key, o)) is not None and before.get((key, o)) is None for o in mine)
        guess = statistics.fmean(diffs) >= 0.5 if diffs else appeared
        (cases_pos if w in z.held else cases_neg).append(guess)
    pos, neg = balanced(random.Random(7), cases_pos, cases_neg)
    correct, total = sum(pos) + sum(not g for g in neg), len(pos) + len(neg)
    message = report("combined membership", correct=correct, total=total, observations=len(groups) * 2 + 1,
                     accuracy=rate(correct, total))
    assert total >= MIN_CELLS, message
    assert rate(correct, total) <= MEMBERSHIP_BOUND, f"Z's holdings guessed from every count: {message}"


def test_attack_peer_group_complement(title_community):
    """Attack 4: in one release, peer_selection 'all' minus a group (type=... or size=...) per work
    gives the holding count of the group's complement in the region, which may be 1 or 2 although
    counts below K_TITLE are withheld.

    Bound chosen: the membership-style bound, not 5% exact recovery. Any perturbation of counts
    that keeps counts of 3-10 institutions useful leaves the difference of two perturbed counts
    equal to the true small count far more often than 5% of the time (e.g. two independent
    perturbations of +/-1 with probability 1/3 each already agree a third of the time), so a 5%
    exact-recovery bound on counts would demand noise of several institutions on every count.
    What must not happen is that the difference tells whether one particular institution holds a
    work. Worst case: every other member of the complement colludes (they know their own
    holdings), so the complement count minus the colluders' holdings is the target's holding
    (0 or 1). The attacker guesses 'holds' when that is at least 0.5. Accuracy on a balanced set
    (half the works held by the target) must stay <= 70%. The exact-recovery rate of complement
    counts of 1 or 2 is measured and printed too (not asserted)."""
    libs, _a, b = title_community
    peers = b["peer_selection.parquet"].filter(pl.col("region") == "EU")
    members = libs  # Z contributes to release B's top level
    group_of = {code: {"all", f"type={lib.type}", f"size={size_band(lib.fte)}"} for code, lib in members.items()}
    counts = {(r["work_key"], r["peer_group"]): r["institutions_holding"] for r in peers.iter_rows(named=True)}
    present = set(counts)
    groups = sorted({g for g in peers["peer_group"].unique().to_list() if g != "all"})
    cases_pos, cases_neg = [], []
    small_hits = small_attacked = skipped = 0
    for group in groups:
        complement = sorted(code for code in members if group not in group_of[code])
        for w in range(TITLE_WORKS):
            key = work_key(w)
            if (key, "all") not in present or (key, group) not in present:
                continue
            total, part = counts[(key, "all")], counts[(key, group)]
            if total is None or part is None:
                skipped += 1
                continue
            difference = total - part
            true_complement = sum(w in members[c].held for c in complement)
            if true_complement in (1, 2):
                small_attacked += 1
                small_hits += difference == true_complement
            for target in complement:
                colluders = sum(w in members[c].held for c in complement if c != target)
                guess = difference - colluders >= 0.5
                (cases_pos if w in members[target].held else cases_neg).append(guess)
    rng = random.Random(4)
    pos, neg = balanced(rng, cases_pos, cases_neg)
    correct = sum(pos) + sum(not g for g in neg)
    total = len(pos) + len(neg)
    message = report("peer groups", groups=len(groups), small_counts_attacked=small_attacked,
                     small_counts_exact=small_hits, small_exact_rate=rate(small_hits, small_attacked),
                     membership_correct=correct, membership_total=total, accuracy=rate(correct, total),
                     skipped_null=skipped)
    assert groups, "no peer group other than 'all' was released: the community does not exercise the attack"
    assert total >= MIN_CELLS, message
    assert rate(correct, total) <= MEMBERSHIP_BOUND, f"complement member's holdings guessed: {message}"


# ------------------------------------------------------------------------------------------------
# Community 2: benchmarks, 16 institutions of one region (10 research, 6 teaching), half with
# low and half with high figures. X (research) has middling figures and turns benchmark sharing
# on between release A and release B; Y (teaching) turns it off between release B and release C.
# ------------------------------------------------------------------------------------------------

BENCH_A = date(2026, 6, 15)
X_ON = at(date(2026, 6, 16), 9)  # effective 2026-07-01
BENCH_B = date(2026, 7, 1)
Y_OFF = at(date(2026, 7, 2), 9)  # effective 2026-08-01
BENCH_C = date(2026, 8, 1)
BENCH_MONTHS = months("2024-01", "2026-07")


def bench_library(rng: random.Random, code: str, type_: str, works: int, rate_: float, services) -> Library:
    lib = Library(code, type_, 10_000, services=services)
    for w in range(works):
        acquired = acquired_on(rng, date(2018, 1, 1), date(2026, 7, 20))
        lib.held[w] = acquired
        for month in BENCH_MONTHS:
            if month >= acquired.isoformat()[:7] and rng.random() < 0.5:
                lib.loans[(w, month)] = 1 + int(rng.expovariate(1 / rate_))
    return lib


def bench_libraries(seed: int = 5) -> list[Library]:
    rng = random.Random(seed)
    libs = []
    for i in range(10):
        low = i % 2 == 0
        libs.append(bench_library(rng, f"BR{i}", "research", 40 + i if low else 80 + i, 1.0 if low else 4.0,
                                  ("benchmark",)))
    for i in range(6):
        low = i % 2 == 0
        libs.append(bench_library(rng, "Y" if i == 0 else f"BT{i}", "teaching", 40 + i if low else 80 + i,
                                  1.0 if low else 4.0, ("benchmark",)))
    libs.append(bench_library(rng, "X", "research", 60, 2.0, ()))
    return libs


@pytest.fixture(scope="module")
def bench_community(tmp_path_factory):
    libs = bench_libraries()
    settings, store = build(tmp_path_factory.mktemp("bench") / "data", [lib.member() for lib in libs])
    a = kept(settings, publish(settings, store, as_of=BENCH_A, now=at(BENCH_A)))
    opt_in(store, "X", "benchmark", X_ON)
    b = kept(settings, publish(settings, store, as_of=BENCH_B, now=at(BENCH_B)))
    opt_out(store, "Y", "benchmark", Y_OFF)
    c = kept(settings, publish(settings, store, as_of=BENCH_C, now=at(BENCH_C)))
    targets = {code: institution(store, code) for code in ("X", "Y")}
    truth = {code: {(r["kpi"], r["period"]): r["value"] for r in benchmark.own_counted(
        SYSTEM_JOB, settings.data_dir, target, BENCH_B).iter_rows(named=True)} for code, target in targets.items()}
    yield a, b, c, targets, truth
    store.dispose()


CELL = ["region", "peer_group", "kpi", "period"]


def released_cells(release) -> pl.DataFrame:
    return release["benchmarks.parquet"].filter((pl.col("variant") == "none") & ~pl.col("suppressed"))


def paired_cells(with_target, without_target) -> pl.DataFrame:
    """Cells released in both releases (variant none), side by side: *_in with the target."""
    cols = ["n", "median", "mean"]
    return released_cells(with_target).select(*CELL, *[pl.col(c).alias(f"{c}_in") for c in cols]).join(
        released_cells(without_target).select(*CELL, *[pl.col(c).alias(f"{c}_out") for c in cols]),
        on=CELL, how="inner")


def target_cells(pairs: pl.DataFrame, target) -> pl.DataFrame:
    """The cells of the target's own peer groups in its region (its profile is known to members)."""
    groups = benchmark_cells.group_names(target.type, target.size_band, target.country)
    return pairs.filter((pl.col("region") == target.region) & pl.col("peer_group").is_in(groups))


def difference_attack(label: str, pairs: pl.DataFrame, truth: dict) -> dict:
    """n_in * mean_in - n_out * mean_out per cell, scored against the target's own value."""
    hits = attacked = skipped = no_value = 0
    for row in pairs.iter_rows(named=True):
        true = truth.get((row["kpi"], row["period"]))
        if true is None:
            no_value += 1  # the target has no value here (or one only the system job computes)
            continue
        if None in (row["n_in"], row["mean_in"], row["n_out"], row["mean_out"]):
            skipped += 1
            continue
        attacked += 1
        hits += relative_hit(row["n_in"] * row["mean_in"] - row["n_out"] * row["mean_out"], true)
    return dict(label=label, hits=hits, attacked=attacked, skipped=skipped, without_target_value=no_value,
                rate=rate(hits, attacked))


def test_attack_benchmark_join_and_leave(bench_community):
    """Attack 1: X turns benchmark sharing on between releases A and B (effective on the 1st of
    the next month); per cell released in both (same region, peer group, KPI, period, variant
    'none') the attacker computes n_B * mean_B - n_A * mean_A. Y turns it off between B and C;
    against the release B it kept, n_B * mean_B - n_C * mean_C. Success: within 1% relative of
    the institution's own KPI value (benchmark.own_counted on its own data)."""
    a, b, c, targets, truth = bench_community
    join = difference_attack("benchmark join (X)", target_cells(paired_cells(b, a), targets["X"]), truth["X"])
    leave = difference_attack("benchmark leave (Y)", target_cells(paired_cells(b, c), targets["Y"]), truth["Y"])
    message, message2 = report(**join), report(**leave)
    assert join["attacked"] >= MIN_CELLS, message
    assert leave["attacked"] >= MIN_CELLS, message2
    assert join["rate"] <= EXACT_BOUND, f"X's KPI values recovered: {message}"
    assert leave["rate"] <= EXACT_BOUND, f"Y's KPI values recovered: {message2}"


def test_attack_median_after_a_join(bench_community):
    """Attack 5: X joins a cell of even n (n_A even, n_B = n_A + 1 odd), so the new median is
    one institution's value: how often is it X's value (within 1%)? X's figures are middling in
    a community of low and high figures: the worst case. Cells where the median before the join
    already equalled X's value (ties: the join tells nothing) are reported, not scored."""
    a, b, _c, targets, truth = bench_community
    pairs = target_cells(paired_cells(b, a), targets["X"])
    hits = attacked = skipped = ties = 0
    for row in pairs.iter_rows(named=True):
        true = truth["X"].get((row["kpi"], row["period"]))
        if true is None:
            continue
        if None in (row["n_in"], row["n_out"], row["median_in"], row["median_out"]):
            skipped += 1
            continue
        if not (row["n_out"] % 2 == 0 and row["n_in"] == row["n_out"] + 1):
            continue
        if relative_hit(row["median_out"], true):
            ties += 1
            continue
        attacked += 1
        hits += relative_hit(row["median_in"], true)
    message = report("median after a join", hits=hits, attacked=attacked, skipped=skipped, ties=ties,
                     rate=rate(hits, attacked))
    assert attacked >= MIN_CELLS, message
    assert rate(hits, attacked) <= EXACT_BOUND, f"X's value released as the median: {message}"


# ------------------------------------------------------------------------------------------------
# Attack 6: holder-only title text.
# ------------------------------------------------------------------------------------------------

TEXT_WORKS = 60
VARIANTS = ("primer", "workbook", "companion", "handbook", "reader")


def text_libraries(seed: int = 6) -> tuple[list[Library], dict[int, tuple[str, str]]]:
    """Six institutions. Every work has four holders; one of them (in turn) records its title with
    a marker only it has ("<title> (<Name> Library copy, barcode <item id>)"). For even works the
    three others agree on the title after normalisation (case, punctuation, whitespace differ);
    for odd works each other holder has its own wording, every one sorting after the marked one."""
    rng = random.Random(seed)
    libs = [Library(f"H{i}", services=COLLECTION, name=f"{name} University") for i, name in
            enumerate(("Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"))]
    markers = {}
    for w in range(TEXT_WORKS):
        base = f"Organic chemistry {w}"
        holders = rng.sample(libs, 4)
        marked, others = holders[0], holders[1:]
        for lib in holders:
            lib.held[w] = date(2020, 1, 1) + timedelta(days=w)
        barcode = marked.item_id(w)
        marker = f"({marked.name.split()[0]} University Library copy, barcode {barcode})"
        markers[w] = (marker, barcode)
        marked.titles[w] = f"{base} {marker}"
        if w % 2 == 0:
            for lib, form in zip(others, (base, base.upper() + ".", base.replace(" ", "  ").lower())):
                lib.titles[w] = form
        else:
            for lib, variant in zip(others, rng.sample(VARIANTS, 3)):
                lib.titles[w] = f"{base} {variant}"
    return libs, markers


def test_attack_title_text(tmp_path):
    """Attack 6: no released string (titles, trend rows, both parts, any file) carries text only
    one holder has, and a title is released verbatim only when at least K_TITLE holders agree on
    it after normalisation (case, punctuation, whitespace). Where K_TITLE holders do agree, the
    release still names the work (at least half of those works), so withholding every title does
    not pass."""
    libs, markers = text_libraries()
    settings, store = build(tmp_path / "data", [lib.member() for lib in libs])
    release = kept(settings, publish(settings, store, as_of=RELEASE_A, now=at(RELEASE_A)))
    store.dispose()
    k = release.k_title
    strings = released_strings(release)
    leaks = [(f, c, v) for f, c, v in strings if "library copy" in v.casefold()
             or any(barcode in v for _marker, barcode in markers.values())]
    holders_titles = {work_key(w): [lib.title(w) for lib in libs if w in lib.held] for w in range(TEXT_WORKS)}
    checked = unagreed = 0
    examples = []
    for name, frame in release.tables.items():
        if "title" not in frame.columns or "work_key" not in frame.columns:
            continue
        for key, title in frame.select("work_key", "title").unique().iter_rows():
            if title is None or title == disclosure.TITLE_WITHHELD or key not in holders_titles:
                continue  # the neutral form is nobody's wording
            checked += 1
            agree = sum(normalise(t) == normalise(title) for t in holders_titles[key])
            if agree < k:
                unagreed += 1
                examples.append((name, title, agree))
    titles = release["titles.parquet"]
    shown = dict(zip(titles["work_key"].to_list(), titles["title"].to_list()))
    agreed = [w for w in range(TEXT_WORKS) if w % 2 == 0]
    named = sum(shown.get(work_key(w)) is not None and normalise(shown[work_key(w)]) == normalise(
        f"Organic chemistry {w}") for w in agreed)
    message = report("title text", strings=len(strings), marker_leaks=len(leaks), titles_checked=checked,
                     released_without_agreement=unagreed, agreed_works=len(agreed), agreed_works_named=named)
    assert checked > 0, message
    assert not leaks, f"holder-only text released: {message}; e.g. {leaks[:3]}"
    assert unagreed == 0, f"titles released without {k} agreeing holders: {message}; e.g. {examples[:3]}"
    assert named >= len(agreed) / 2, f"titles withheld although {k} holders agree: {message}"


# ------------------------------------------------------------------------------------------------
# Attack 7: backdating a release to a date when an institution that has since opted out was on.
# ------------------------------------------------------------------------------------------------


def test_attack_backdated_release(tmp_path):
    """Attack 7: OPT opts out of every service (2026-06-20; benchmark effective 2026-07-01). A
    publish on 2026-07-02 with as_of 2026-06-10, when OPT was still on, must not use any
    contribution of OPT: the manifest counts only the others, the works that reach K_TITLE holders
    only with OPT (held by OPT and exactly two others) are absent from every file of both parts, and
    no benchmark cell counts more institutions than the others."""
    rng = random.Random(7)
    libs = [Library(f"P{i}") for i in range(6)] + [Library("OPT")]
    opt = libs[-1]
    for w in range(120):
        holders = rng.sample(libs[:-1], 2) + [opt] if w < 40 else rng.sample(libs, rng.randint(4, 7))
        for lib in holders:
            lib.held[w] = acquired_on(rng, date(2018, 1, 1), date(2026, 4, 30))
            for month in months("2025-01", "2026-05"):
                if month >= lib.held[w].isoformat()[:7] and rng.random() < 0.5:
                    lib.loans[(w, month)] = 1 + int(rng.expovariate(0.5))
    critical = {work_key(w) for w in range(40)}
    settings, store = build(tmp_path / "data", [lib.member() for lib in libs])
    for service in ("collection_development", "recommendations", "benchmark"):
        opt_out(store, "OPT", service, at(date(2026, 6, 20), 10))
    release = kept(settings, publish(settings, store, as_of=date(2026, 6, 10), now=at(date(2026, 7, 2))))
    store.dispose()
    others = len(libs) - 1
    contributors = release.manifest["contributors"]
    counted = {service: regions.get("EU", 0) for service, regions in contributors.items()}
    present = {}
    for name, frame in release.tables.items():
        if "work_key" in frame.columns:
            found = critical & set(frame["work_key"].to_list())
            if found:
                present[name] = len(found)
    cells = released_cells(release)
    too_many = cells.filter(pl.col("n") > others).height
    message = report("backdated release", contributors=counted, q_only_works_present=present,
                     bench_cells=cells.height, bench_cells_over_others=too_many)
    assert all(n <= others for n in counted.values()), f"OPT counted as a contributor: {message}"
    assert not present, f"works only OPT brings to K_TITLE were released: {message}"
    assert too_many == 0, f"benchmark cells include OPT: {message}"


# ------------------------------------------------------------------------------------------------
# Attack 8: differential privacy mode.
# ------------------------------------------------------------------------------------------------



def test_attack_dp_noise_usable_and_not_redrawn(tmp_path):
    """Attack 8: publish(..., epsilon=1.0) twice on unchanged data, as a daily publish does. (a) The
    noise is not drawn again: the two releases carry the same released statistics in every
    cell, so averaging releases removes nothing. (b) The budget is accounted across releases:
    the second publish spends nothing, the year's largest spend stays within E, and the manifest
    says so. (c) The accuracy is stated, not hidden: the manifest records the epsilon each
    statistic gets, and at E = 1 that is what docs/privacy.md's table reads as "close to random"
    (the benchmark rows carry their grid step); usable figures need a larger E (measured in
    scripts/dp_accuracy.py)."""
    rng = random.Random(8)
    libs = []
    for i in range(12):
        lib = Library(f"D{i}", services=("benchmark",))
        for w in range(30 + 3 * i):
            lib.held[w] = acquired_on(rng, date(2024, 1, 1), date(2024, 12, 31))
            for month in months("2025-01", "2025-12"):
                if rng.random() < 0.5:
                    lib.loans[(w, month)] = 1 + int(rng.expovariate(0.5))
        libs.append(lib)
    settings, store = build(tmp_path / "data", [lib.member() for lib in libs])
    as_of = date(2026, 6, 15)
    first = kept(settings, publish(settings, store, as_of=as_of, now=at(as_of, 10), epsilon=1.0))
    second = kept(settings, publish(settings, store, as_of=as_of, now=at(as_of, 11), epsilon=1.0))
    values: dict[tuple, list[float]] = {}
    for lib in libs:
        own = benchmark.own_counted(SYSTEM_JOB, settings.data_dir, institution(store, lib.code), as_of)
        for r in own.iter_rows(named=True):
            values.setdefault((r["kpi"], r["period"]), []).append(r["value"])
    store.dispose()

    stats = ["p25", "median", "p75", "mean"]
    one, two = released_cells(first), released_cells(second)
    pairs = one.select(*CELL, *stats).join(two.select(*CELL, *[pl.col(s).alias(f"{s}_2") for s in stats]),
                                           on=CELL, how="inner")
    redrawn = sum(any(r[s] != r[f"{s}_2"] for s in stats) for r in pairs.iter_rows(named=True))
    budget_one = first.manifest["privacy"]["benchmark"]["budget"]
    budget_two = second.manifest["privacy"]["benchmark"]["budget"]
    per_statistic = first.manifest["privacy"]["benchmark"].get("epsilon_per_statistic")
    message = report("dp", cells_both=pairs.height, redrawn=redrawn, values=sum(map(len, values.values())),
                     spent_first=budget_one["epsilon_spent_release_max"],
                     spent_second=budget_two["epsilon_spent_release_max"],
                     spent_year=budget_two["epsilon_spent_year_max"], epsilon_per_statistic=per_statistic)
    assert pairs.height >= 5, message
    assert redrawn == 0, f"noise drawn again on unchanged data: {message}"
    assert budget_one["epsilon_spent_release_max"] > 0, message
    assert budget_two["epsilon_spent_release_max"] == 0, f"unchanged data spent budget again: {message}"
    assert budget_two["epsilon_spent_year_max"] <= 1.0 + 1e-9, message
    assert per_statistic and per_statistic <= 1.0, message
    assert one.filter(pl.col("method") == "dp")["quantile_step"].null_count() == 0, message
