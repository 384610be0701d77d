"""A deterministic synthetic community, built end to end through the real import path.

The demo is the product's default data: it must look like a real community so that
every page has something true to say. From one seed it makes a shared universe of works
(valid ISBN-13s, some with print and e-book ISBNs, some without any identifier), real
LC call numbers, a long-tailed popularity, subjects that rise and fall over the months, and institutions of several types and sizes in several
regions, one of them a consortium whose members' exports contain each other's records.
It writes canonical CSV exports per institution and imports them with the same code a
library's own files go through, then sets a mix of sharing states as their
administrators would.

Subjects (LC class, subclass within it), formats, publication ages, acquisition lags and
loans per item are drawn from data/reference/demo_profile.csv (analytics/synthetic/profile.py),
derived by scripts/build_demo_profile.py from real item exports of a university library
and a public library: most print items are never lent in the window, a few very often.
"""

from __future__ import annotations

from analytics.core.errors import InvalidValue

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from analytics.core import months as month_arith
from analytics.ingest import subjects
from analytics.synthetic import profile
from analytics.ingest.identifiers import isbn13
from analytics.core.access import Principal
from analytics.core.config import Settings
from analytics.control.signin_config import DEMO_DOMAIN
from analytics.ingest.tabular import import_file
from analytics.core.schema import SERVICES
from analytics.control.store import Store

WORDS = (
    "history theory practice introduction handbook guide principles politics economy society culture "
    "science data learning systems networks design power memory justice nature climate ocean river city "
    "empire war peace revolution language mind body health medicine law rights markets money labor "
    "education family children women men religion faith art music poetry novel letters landscape "
    "machine code algorithms statistics evidence reason ethics philosophy future past origins world"
).split()
ADJECTIVES = (
    "modern early global american european asian african digital critical comparative applied "
    "quantitative new hidden lost silent urban rural ancient contemporary political social"
).split()
SURNAMES = (
    "Smith Garcia Müller Nguyen Okafor Rossi Kowalski Tanaka Johansson Dubois O'Brien Singh Cohen "
    "Haddad Novak Ivanova Silva Kim Larsen Moreau Fischer Papadopoulos Yilmaz Chen Andersson Walker "
    "Brown Martínez Lefèvre Schmidt Costa Nakamura Patel Ahmed Byrne Horvat Lindqvist Santos Weber"
).split()
FORENAMES = (
    "Anna Peter Maria David Chidi Lucia Jan Yuki Erik Claire Sean Priya Miriam Omar Petra Olga João Min "
    "Henrik Amélie Jonas Eleni Emre Wei Sofia James Laura Carlos Hélène Klaus Rita Kenji Ravi Fatima Niamh"
).split()
PUBLISHERS = (
    "Oxford University Press", "Cambridge University Press", "Routledge", "Springer", "Wiley",
    "Princeton University Press", "MIT Press", "Penguin", "Elsevier", "University of Chicago Press",
    "Yale University Press", "Bloomsbury Academic", "SAGE", "De Gruyter", "Palgrave Macmillan",
)
PLATFORMS = ("EBSCOhost", "ProQuest Ebook Central", "JSTOR", "SpringerLink", "Wiley Online Library")
LANGUAGES = (("eng", 0.82), ("ger", 0.06), ("fre", 0.05), ("spa", 0.04), ("ita", 0.03))

REGION_COUNTRIES = {"NA": ("US",), "EU": ("DE", "GB", "FR", "NL", "SE"), "APAC": ("AU", "JP", "SG", "NZ")}
TYPE_FTE = {
    "research": (15_000, 45_000), "teaching": (3_000, 14_000), "community_college": (1_500, 9_000),
    "public": (0, 0), "national": (0, 0), "special": (200, 900),
}
NAME_PARTS = {
    "research": ("University of {place}", "{place} State University", "{place} Institute of Technology"),
    "teaching": ("{place} College", "{place} University College"),
    "community_college": ("{place} Community College",),
    "public": ("{place} Public Library",),
    "national": ("National Library of {place}",),
    "special": ("{place} Medical Library", "{place} Law Library"),
}
PLACES = (
    "Northfield Eastbrook Westmere Southport Lakeside Riverton Hillcrest Fairhaven Greenvale Kingsbridge "
    "Ashford Brookdale Clearwater Dunmore Elmstead Foxley Glenrock Harwood Ironbridge Juniper Kestrel "
    "Larchmont Maplewood Northgate Oakridge Pinecrest Queensbury Redcliffe Stonebridge Thornbury"
).split()
CONSORTIUM = "NORTHLINK"


@dataclass(frozen=True)
class DemoInstitution:
    code: str
    name: str
    type: str
    region: str
    country: str
    fte_students: int
    consortium: str | None
    go_live_date: date
    size: int  # number of items


def _subclass_table() -> pl.DataFrame:
    """LC subclasses with a numeric range to draw call numbers from."""
    table = subjects.outline()
    table = table.filter(pl.col("max_number").is_not_null() & (pl.col("max_number") > pl.col("min_number")))
    return table.select("lc_class", "lc_subclass", "min_number", "max_number").sort("lc_subclass")


# The shared universe of works mixes the two profiles so that each institution can pick its own
# (public libraries hold far more fiction and recent books than a university's stacks): about
# their share of the demo's items for subjects, more for recent books, which public libraries
# pick from a small pool (one in five is a public library's item, but it wants four times as
# many recent works as a university holds).
UNIVERSE_MIX = {"lc_class": {"academic": 0.85, "public": 0.15}, "pub_age": {"academic": 0.6, "public": 0.4}}
OLDEST_AGE = 150  # the open end of the "100+" publication-age bin


def _mixed(dimension: str) -> dict[str, float]:
    """A dimension's shares in the universe of works: the profiles weighted by UNIVERSE_MIX."""
    out: dict[str, float] = {}
    for name, weight in UNIVERSE_MIX[dimension].items():
        for key, share in profile.shares(name, dimension).items():
            out[key] = out.get(key, 0.0) + weight * share
    return out


def _subclass_weights(subclasses: pl.DataFrame, class_shares: dict[str, float]) -> np.ndarray:
    """Draw weight of each subclass: its class's share times its share within the class
    (renormalised over the subclasses that have a numeric range to draw from)."""
    within = profile.shares("academic", "lc_subclass")
    raw = np.array([within.get(f"{c}:{s}", 0.0) for c, s in subclasses.select("lc_class", "lc_subclass").iter_rows()])
    classes = subclasses["lc_class"].to_numpy()
    weights = np.zeros(len(raw))
    for cls in np.unique(classes):
        mask = classes == cls
        total = raw[mask].sum()
        weights[mask] = class_shares.get(str(cls), 0.0) * (raw[mask] / total if total > 0 else 1.0 / mask.sum())
    return weights / weights.sum()


def make_works(rng: np.random.Generator, n_works: int, months: int, year: int = 2026) -> pl.DataFrame:
    """The shared universe of works, with popularity and a subject trend. Subjects and
    publication years follow the demo profile (data/reference/demo_profile.csv)."""
    subclasses = _subclass_table()
    picks = rng.choice(subclasses.height, size=n_works, p=_subclass_weights(subclasses, _mixed("lc_class")))
    chosen = subclasses[picks]
    lo, hi = chosen["min_number"].to_numpy(), chosen["max_number"].to_numpy()
    numbers = np.floor(lo + rng.random(n_works) * (hi - lo)).astype(int)
    pub_year = year - profile.draw_binned(rng, _mixed("pub_age"), n_works, OLDEST_AGE)
    cutter1 = rng.choice(list("ABCDEFGHJKLMNPRSTW"), n_works)
    cutter2 = rng.integers(11, 99, n_works)
    call_numbers = [f"{s}{n} .{c}{d} {y}" for s, n, c, d, y in zip(chosen["lc_subclass"], numbers, cutter1, cutter2, pub_year)]

    titles = []
    for i in range(n_works):
        a, b = rng.choice(WORDS, 2, replace=False)
        adj = rng.choice(ADJECTIVES)
        form = i % 4
        titles.append(
            [f"The {adj} {a} of {b}".capitalize(), f"{a.capitalize()} and {b}: a {adj} {rng.choice(WORDS)}",
             f"{adj.capitalize()} {a}", f"A history of {adj} {a}"][form]
        )
    authors = [f"{rng.choice(SURNAMES)}, {rng.choice(FORENAMES)}" for _ in range(n_works)]
    languages, lang_p = zip(*LANGUAGES)
    prefixes = 978_000_000_000 + rng.choice(999_999_999, size=2 * n_works, replace=False)
    print_isbn = isbn13(prefixes[:n_works])
    e_isbn = isbn13(prefixes[n_works:])
    has_isbn = pub_year >= 1972  # older works predate ISBNs: matched by title and author
    has_isbn &= rng.random(n_works) > 0.05
    has_e = has_isbn & (rng.random(n_works) < 0.35)
    popularity = rng.pareto(1.3, n_works) + 0.05  # a long tail
    # Subject trends: a few subclasses rise, a few fall, over the demo months.
    unique_sub = chosen["lc_subclass"].unique().sort().to_list()
    trend_of = {s: 0.0 for s in unique_sub}
    for s in rng.choice(unique_sub, size=min(12, len(unique_sub)), replace=False)[:6]:
        trend_of[s] = 1.2
    for s in rng.choice(unique_sub, size=min(12, len(unique_sub)), replace=False)[:6]:
        trend_of.setdefault(s, 0.0)
        trend_of[s] = -1.6 if trend_of[s] == 0.0 else trend_of[s]
    # A few individual works surge late in the window (new releases people talk about).
    surge = (rng.random(n_works) < 0.01) & (pub_year >= year - 2)
    return pl.DataFrame({
        "work": np.arange(n_works),
        "title": titles,
        "author": authors,
        "publisher": rng.choice(PUBLISHERS, n_works),
        "pub_year": pub_year,
        "language": rng.choice(languages, n_works, p=lang_p),
        "call_number": call_numbers,
        "lc_subclass": chosen["lc_subclass"],
        "print_isbn": np.where(has_isbn, print_isbn, None),
        "e_isbn": np.where(has_e, e_isbn, None),
        "platform": rng.choice(PLATFORMS, n_works),
        "popularity": popularity,
        "trend": [trend_of[s] for s in chosen["lc_subclass"]],
        "surge": surge,
    })


def make_institutions(rng: np.random.Generator, n: int, today: date) -> list[DemoInstitution]:
    """Institutions over three regions and six types; some went live less than a year ago."""
    types = ("research", "teaching", "community_college", "public", "research", "teaching", "national", "special")
    regions = ("NA", "EU", "APAC")
    places = list(rng.permutation(PLACES))
    result = []
    for i in range(n):
        kind = types[i % len(types)]
        region = regions[(i // 2) % len(regions)] if i >= 4 else "NA"
        lo, hi = TYPE_FTE[kind]
        fte = int(rng.integers(lo, hi + 1)) if hi else 0
        place = places[i % len(places)]
        name = rng.choice(NAME_PARTS[kind]).format(place=place)
        code = "".join(w[0] for w in name.replace("of ", "").split())[:4].upper() + f"{i + 1:02d}"
        # Every fifth institution went live less than a year ago.
        if i % 5 == 4:
            go_live = today - timedelta(days=int(rng.integers(60, 300)))
        else:
            go_live = date(int(rng.integers(2016, 2023)), int(rng.integers(1, 13)), 1)
        size = {"research": 12000, "teaching": 6000, "community_college": 3500, "public": 9000,
                "national": 14000, "special": 2500}[kind]
        size = int(size * rng.uniform(0.7, 1.3))
        result.append(DemoInstitution(code, name, kind, region, str(rng.choice(REGION_COUNTRIES[region])),
                                      fte, CONSORTIUM if i < 4 else None, go_live, size))
    return result


def month_starts(today: date, months: int) -> list[date]:
    """The last `months` complete months before today."""
    return [month_arith.shift(today, -back) for back in range(months, 0, -1)]


def institution_exports(rng: np.random.Generator, inst: DemoInstitution, works: pl.DataFrame,
                        months: list[date]) -> dict[str, pl.DataFrame]:
    """Canonical export tables of one institution (items, loans, e-usage, reading lists).
    The random draws happen in this order: items, loans, e-usage, reading lists, annual stats."""
    items, items_frame, electronic, acquired, favourite = _demo_items(rng, inst, works, months)
    loans = _demo_loans(rng, inst, items, items_frame, electronic, acquired, months)
    e_usage = _demo_e_usage(rng, items, electronic, months)
    reading = _demo_reading_lists(rng, inst, works, favourite, months)
    return {"items": items_frame, "loans": loans, "e-usage": e_usage, "reading-lists": reading,
            "annual-stats": annual_stats(rng, inst, items_frame, months[-1])}


# Shared-print programs by region: who commits to retain what (the demo's institutions join by type).
PROGRAMS = {"NA": ("EAST", "WEST", "HathiTrust Shared Print"), "EU": ("UKRR", "HathiTrust Shared Print"),
            "APAC": ("CAUL Shared Print",)}
RETAINING_TYPES = ("research", "national", "teaching")


def retention_commitments(rng: np.random.Generator, inst: DemoInstitution, items: pl.DataFrame,
                          today: date) -> pl.DataFrame | None:
    """Retention commitments of a research, national or teaching library: older print works of
    its collection, chosen by their ISBN so that several libraries of a region commit to the same
    works; one or two programs of its region; most until 2035-2045 or indefinitely, a few ended.
    Its own random stream, so the rest of the demo does not change."""
    if inst.type not in RETAINING_TYPES:
        return None
    programs = PROGRAMS[inst.region]
    mine = list(rng.choice(programs, size=min(len(programs), 1 + int(rng.integers(0, 2))), replace=False))
    old_print = items.filter((pl.col("format") == "print") & (pl.col("pub_year") < today.year - 20)
                             & pl.col("isbn").is_not_null() & pl.col("withdrawn_date").is_null())
    first_isbn = old_print["isbn"].str.split(";").list.first()
    chosen = old_print.filter(first_isbn.str.slice(-3).cast(pl.Int64, strict=False) % 5 == 0).unique("isbn")
    if chosen.is_empty():
        return None
    n = chosen.height
    program = rng.choice(mine, n)
    committed_on = [date(int(y), 7, 1) for y in rng.integers(2012, 2022, n)]
    ends = rng.choice(["indefinite", "2035", "2040", "2045", "ended"], n, p=[0.3, 0.3, 0.2, 0.12, 0.08])
    retain_until = [None if e == "indefinite" else date(today.year - 1, 12, 31) if e == "ended"
                    else date(int(e), 12, 31) for e in ends]
    return pl.DataFrame({"isbn": chosen["isbn"], "title": chosen["title"], "author": chosen["author"],
                         "program": program, "committed_on": committed_on, "retain_until": retain_until},
                        schema_overrides={"retain_until": pl.Date})


def _profile_ratio(inst: DemoInstitution, dimension: str, keys: np.ndarray) -> np.ndarray:
    """How much more (or less) the institution's profile holds of each key than the universe of works."""
    own, universe = profile.shares(profile.profile_of(inst.type), dimension), _mixed(dimension)
    ratio = {k: own.get(k, 0.0) / v for k, v in universe.items() if v > 0}
    return np.array([ratio.get(str(k), 1.0) for k in keys])


def _demo_items(rng: np.random.Generator, inst: DemoInstitution, works: pl.DataFrame, months: list[date]):
    """The items an institution holds: more copies of popular works, subjects and publication
    years of its profile (academic or public), a lean to a few classes, formats and acquisition
    dates drawn from the profile."""
    n_works = works.height
    pop = works["popularity"].to_numpy()
    # Each institution leans to some classes (its teaching profile).
    classes = works["lc_subclass"].str.slice(0, 1).to_numpy()
    favourite = set(rng.choice(sorted(set(classes)), size=4, replace=False))
    lean = np.where(np.isin(classes, list(favourite)), 1.5, 1.0)
    age_table = profile.shares("academic", "pub_age")
    age_bins = np.array(list(age_table))[profile.bin_of(months[-1].year - works["pub_year"].to_numpy(), age_table,
                                                         OLDEST_AGE)]
    p = (pop ** 0.6) * lean * _profile_ratio(inst, "lc_class", classes)
    # As many works of each publication age as the profile holds (a public library's shelves are
    # young, a university's old), the most popular ones likelier.
    n_held = min(inst.size, n_works // 2)
    held = []
    for label, share in profile.shares(profile.profile_of(inst.type), "pub_age").items():
        pool = np.flatnonzero(age_bins == label)
        take = min(len(pool), int(round(n_held * share)))
        if take:
            held.append(rng.choice(pool, size=take, replace=False, p=p[pool] / p[pool].sum()))
    held = np.sort(np.concatenate(held))
    chosen = works[held]
    copies = np.where(chosen["popularity"].to_numpy() > 3, rng.integers(1, 4, len(held)), 1)
    item_work = np.repeat(held, copies)
    items = works[item_work]
    n_items = items.height
    electronic, material = _formats(rng, inst, items["e_isbn"].is_not_null().to_numpy())
    pub_year = items["pub_year"].to_numpy()
    acquired = _acquired(rng, pub_year, months)
    withdrawn = [None if rng.random() > 0.02 else months[int(rng.integers(0, len(months)))] + timedelta(days=3)
                 for _ in range(n_items)]
    prefix = inst.code
    item_ids = [f"{prefix}-{i:07d}" for i in range(n_items)]
    isbn_cell = [
        ";".join(x for x in (p_, e_) if x) if not el else (e_ or "")
        for p_, e_, el in zip(items["print_isbn"].to_list(), items["e_isbn"].to_list(), electronic)
    ]
    owners = [inst.code if inst.consortium else None] * n_items
    items_frame = pl.DataFrame({
        "item_id": item_ids,
        "title_id": [f"b{w:08d}" for w in item_work],
        "title": items["title"],
        "author": items["author"],
        "isbn": isbn_cell,
        "publisher": items["publisher"],
        "pub_year": items["pub_year"],
        "language": items["language"],
        "call_number": items["call_number"],
        "format": np.where(electronic, "electronic", "print"),
        "material_type": material,
        "owner": owners,
        "acquired_date": acquired,
        "withdrawn_date": withdrawn,
        "location": rng.choice(["Main stacks", "Level 2", "Reserve", "Annex"], n_items),
    })
    return items, items_frame, electronic, acquired, favourite


def _formats(rng: np.random.Generator, inst: DemoInstitution, has_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Electronic flag and material type of each item, in the proportions of the profile. Only a
    work with an e-book ISBN can be held electronically, so those are picked more often to make up."""
    table = profile.shares(profile.profile_of(inst.type), "format")
    n = len(has_e)
    e_share = table.get("electronic/book", 0.0)
    electronic = has_e & (rng.random(n) < min(1.0, e_share / max(has_e.mean(), 1e-9)))
    kinds = [k for k in table if k.startswith("print/")]
    p = np.array([table[k] for k in kinds])
    material = np.array([k.split("/", 1)[1] for k in kinds])[rng.choice(len(kinds), size=n, p=p / p.sum())]
    return electronic, np.where(electronic, "book", material)


def _acquired(rng: np.random.Generator, pub_year: np.ndarray, months: list[date]) -> list[date]:
    """Acquisition dates: publication year plus a lag drawn from the profile (most books are bought
    within two years, a tail decades later). Dates that would fall after the window fall inside it;
    none before 1995, where a library's system migration typically starts its item records."""
    lag = profile.draw_binned(rng, profile.shares("academic", "acquire_lag"), len(pub_year), 300)
    year = np.maximum(pub_year + lag, 1995)
    first, last = months[0], months[-1]
    month = rng.integers(1, 13, len(pub_year))
    offset = rng.random(len(pub_year))
    acquired = []
    for y, m, pub, off in zip(year.tolist(), month.tolist(), pub_year.tolist(), offset.tolist()):
        if y < first.year:
            acquired.append(date(y, m, 1))
        else:  # recent: within the window, not before the publication year
            start = max(date(int(pub), 1, 1), first) if pub <= last.year else first
            span = max(1, (last - start).days)
            acquired.append(start + timedelta(days=int(off * span)))
    return acquired


def _loans_per_item(rng: np.random.Generator, n: int, months: int) -> np.ndarray:
    """Loan totals of n print items over the window, drawn from the profile's loans per item in
    36 months (most items never lent, a long tail), thinned or stretched to the window's length;
    sorted from the most lent down."""
    table = profile.shares("academic", "loans_36m")
    totals = profile.draw_binned(rng, table, n, 60)
    scale = months / 36
    if scale < 1:
        totals = rng.binomial(totals, scale)
    else:
        totals = np.floor(totals * scale + rng.random(n)).astype(int) * (totals > 0)
    return np.sort(totals)[::-1]


def _demo_loans(rng: np.random.Generator, inst: DemoInstitution, items: pl.DataFrame, items_frame: pl.DataFrame,
                electronic, acquired: list[date], months: list[date]) -> pl.DataFrame:
    """Monthly loans of print items. How many loans each item gets over the window follows the
    profile (quantile by quantile: the most popular items get the largest totals, with some luck);
    the months they fall in follow the subject trend, late surges and when the item arrived."""
    t = np.linspace(-0.5, 0.5, len(months))
    month_labels = np.array([m.strftime("%Y-%m") for m in months])
    trend = items["trend"].to_numpy()
    surge = items["surge"].to_numpy()
    shape = np.exp(trend[:, None] * t[None, :])
    shape = shape * np.where(surge[:, None], 1 + 8 * np.clip(t[None, :] + 0.1, 0, None), 1.0)
    acquired_np = np.array(acquired, dtype="datetime64[D]")
    month_np = np.array(months, dtype="datetime64[D]")
    available = acquired_np[:, None] <= month_np[None, :]
    shape = shape * available
    lendable = ~electronic & available.any(axis=1)
    # Rank by popularity with some luck; surging works jump the queue.
    score = items["popularity"].to_numpy() * rng.lognormal(0.0, 0.5, items.height) * np.where(surge, 20.0, 1.0)
    order = np.flatnonzero(lendable)[np.argsort(-score[lendable], kind="stable")]
    totals = np.zeros(items.height, dtype=np.int64)
    totals[order] = _loans_per_item(rng, len(order), len(months))
    lent = np.flatnonzero(totals)
    weights = shape[lent] / shape[lent].sum(axis=1, keepdims=True)
    counts = rng.multinomial(totals[lent], weights)
    rows, cols = np.nonzero(counts)
    loans = pl.DataFrame({
        "item_id": items_frame["item_id"].to_numpy()[lent[rows]],
        "loan_date": month_labels[cols],
        "count": counts[rows, cols],
        "renewals": rng.binomial(counts[rows, cols], 0.3),
        "patron_id": np.char.add("P", rng.integers(0, 999_999, len(rows)).astype(str)),
    })
    return loans


def _demo_e_usage(rng: np.random.Generator, items: pl.DataFrame, electronic, months: list[date]) -> pl.DataFrame:
    t = np.linspace(-0.5, 0.5, len(months))
    month_labels = np.array([m.strftime("%Y-%m") for m in months])
    # COUNTER-like e-usage for electronic items. Some institutions load no usage for one platform.
    e_items = items.filter(pl.Series(electronic))
    skip_platform = rng.choice(PLATFORMS) if rng.random() < 0.35 else None
    e_items = e_items.filter(pl.col("platform") != skip_platform) if skip_platform else e_items
    e_rate = e_items["popularity"].to_numpy()[:, None] * 0.5 * np.exp(e_items["trend"].to_numpy()[:, None] * t[None, :])
    e_counts = rng.poisson(e_rate)
    er, ec = np.nonzero(e_counts)
    total = e_counts[er, ec]
    unique = np.maximum(1, (total * rng.uniform(0.5, 0.9, len(total))).astype(int))
    usage_base = {
        "title": e_items["title"].to_numpy()[er],
        "isbn": e_items["e_isbn"].to_numpy()[er],
        "platform": e_items["platform"].to_numpy()[er],
        "month": month_labels[ec],
    }
    e_usage = pl.concat([
        pl.DataFrame({**usage_base, "metric_type": "Total_Item_Requests", "count": total}),
        pl.DataFrame({**usage_base, "metric_type": "Unique_Title_Requests", "count": unique}),
    ])
    return e_usage


def _demo_reading_lists(rng: np.random.Generator, inst: DemoInstitution, works: pl.DataFrame, favourite: set,
                        months: list[date]) -> pl.DataFrame | None:
    # Reading lists per term for institutions that teach.
    lists = []
    if inst.type in ("research", "teaching", "community_college"):
        terms = sorted({f"{m.year}-{'SPRING' if m.month < 7 else 'FALL'}" for m in months})
        # Courses cite the core texts of their subjects: the most used works of the classes
        # the institution teaches, which peers teaching the same subjects cite too.
        taught = (works.filter(pl.col("lc_subclass").str.slice(0, 1).is_in(list(favourite)))
                  .sort("popularity", descending=True).head(400))
        tp = taught["popularity"].to_numpy() ** 1.5
        tp = tp / tp.sum()
        list_no = 0
        for term in terms:
            for _ in range(int(rng.integers(15, 40))):
                list_no += 1
                picks = rng.choice(taught.height, size=int(rng.integers(5, 20)), replace=False, p=tp)
                for rank, w in enumerate(picks):
                    row = taught.row(int(w), named=True)
                    lists.append({
                        "list_id": f"L{list_no:05d}", "course_code": f"{row['lc_subclass']}{100 + list_no % 400}",
                        "term": term, "title": row["title"], "isbn": row["print_isbn"] or "",
                        "enrolment": int(rng.integers(10, 300)),
                        "citation_type": ("required", "recommended", "further")[min(2, rank // 4)],
                    })
    reading = pl.DataFrame(lists) if lists else None
    return reading


def annual_stats(rng: np.random.Generator, inst: DemoInstitution, items: pl.DataFrame, last: date) -> pl.DataFrame:
    """Survey-style yearly figures (ACRL/IPEDS-like) for the three complete years before `last`,
    in the shape of a real survey export: fiscal years, money columns that the import drops."""
    print_items = items.filter(pl.col("format") == "print").height
    e_items = items.height - print_items
    rows = []
    # Loans per print item and year as the loans themselves are drawn (the profile's 36-month figure / 3).
    yearly = profile.mean(profile.shares("academic", "loans_36m"), 60) / 3
    turnover, visits, renewals = yearly * float(rng.uniform(0.8, 1.25)), float(rng.uniform(8, 40)), float(rng.uniform(1.1, 1.4))
    for k, year in enumerate(range(last.year - 3, last.year)):
        growth = (1 + 0.02 * k) * float(rng.uniform(0.95, 1.05))
        circulation = print_items * turnover * growth
        rows.append({
            "Fiscal Year": f"FY{year}",
            "FTE Students": round(inst.fte_students * float(rng.uniform(0.97, 1.03))),
            "Volumes Held": round(print_items * growth),
            "Titles Held": round(print_items * 0.8 * growth),
            "E-books": round(e_items * growth),
            "Initial Circulation": round(circulation),
            "Total Circulation": round(circulation * renewals),
            "ILL Lent": round(print_items * float(rng.uniform(0.005, 0.03))),
            "ILL Borrowed": round(print_items * float(rng.uniform(0.005, 0.03))),
            "Gate Count": round(inst.fte_students * visits * growth),
            "Staff FTE": round(max(1.0, print_items / 2500 * float(rng.uniform(0.7, 1.3))), 1),
            "Full-Text Requests": round(e_items * float(rng.uniform(5, 40))),
            "Population Served": round(inst.fte_students * 25) if inst.type == "public" else None,
            "Total Expenditures": round(print_items * float(rng.uniform(20, 60))),  # dropped at import
        })
    return pl.DataFrame(rows)


ANNUAL_STATS_MAP = {
    "year": "Fiscal Year", "fte_students": "FTE Students", "volumes_held": "Volumes Held", "titles_held": "Titles Held",
    "ebooks_held": "E-books", "initial_circulation": "Initial Circulation", "total_circulation": "Total Circulation",
    "ill_lending": "ILL Lent", "ill_borrowing": "ILL Borrowed", "gate_count": "Gate Count", "staff_fte": "Staff FTE",
    "full_text_requests": "Full-Text Requests", "population_served": "Population Served",
}


DEMO_USERS = (("admin", "Ada Admin"), ("manager", "Max Manager"), ("librarian", "Lena Librarian"))


def demo_email(code: str, role: str) -> str:
    return f"{role}@{code.lower()}{DEMO_DOMAIN}"


def build_demo(settings: Settings, institutions: int = 24, seed: int = 7, months: int = 36,
               today: date | None = None, reset: bool = False, progress=print) -> dict:
    """Build the demo community into settings.data_dir. Returns a summary."""
    if institutions < 5:
        raise InvalidValue("--institutions: the demo needs at least 5 institutions to show community data.")
    if not 12 <= months <= 120:
        raise InvalidValue("--months: choose between 12 and 120 months.")
    today = today or datetime.now(timezone.utc).date()
    store = Store.from_settings(settings)
    system = Principal.system_job()
    if store.list_institutions(system):
        if not reset:
            raise InvalidValue(f"{settings.data_dir} already holds institutions; run the demo with --reset to "
                             f"replace everything in it.")
        store.drop_everything(system)
        _reset(settings)
    rng = np.random.default_rng(seed)
    month_list = month_starts(today, months)
    works = make_works(rng, n_works=max(6000, 900 * institutions), months=months, year=today.year)
    insts = make_institutions(rng, institutions, today)
    exports_dir = settings.data_dir / "demo_exports"
    summary = {"institutions": len(insts), "works": works.height, "items": 0, "loan_rows": 0}
    consortium_items: dict[str, pl.DataFrame] = {}
    for n, inst in enumerate(insts, 1):
        store.add_institution(system, code=inst.code, name=inst.name, type=inst.type, region=inst.region,
                              country=inst.country, fte_students=inst.fte_students,
                              consortium=inst.consortium, go_live_date=inst.go_live_date)
        for role, person in DEMO_USERS:
            store.add_user(system, demo_email(inst.code, role), inst.code, [role], f"{person} ({inst.code})")
        tables = institution_exports(rng, inst, works, month_list)
        tables["retention-commitments"] = retention_commitments(np.random.default_rng([seed, n, 583]), inst,
                                                                tables["items"], today)
        if inst.consortium:
            consortium_items[inst.code] = tables["items"]
        folder = exports_dir / inst.code
        folder.mkdir(parents=True, exist_ok=True)
        for kind, frame in tables.items():
            if frame is None:
                continue
            if kind == "items" and inst.consortium and len(consortium_items) > 1:
                # A Network Zone export also lists records other members own.
                other = next(code for code in consortium_items if code != inst.code)
                frame = pl.concat([frame, consortium_items[other].head(200)])
            path = folder / f"{kind}.csv"
            frame.write_csv(path)
            mapping = ANNUAL_STATS_MAP if kind == "annual-stats" else None
            report = import_file(settings.data_dir, system, inst.code, kind, path, mapping=mapping)
            store.record_import(system, inst.code, kind, path.name, "ok", report.as_dict())
            if kind == "items":
                summary["items"] += report.kept
            if kind == "loans":
                summary["loan_rows"] += report.kept
        _set_sharing(store, rng, inst, n, today)
        progress(f"  [{n}/{len(insts)}] {inst.code} {inst.name}: imported")
    return summary


def _set_sharing(store: Store, rng: np.random.Generator, inst: DemoInstitution, n: int, today: date) -> None:
    """A realistic mix: most share everything, some share part, a few wait for next month."""
    admin = store.user(demo_email(inst.code, "admin")).principal()
    joined = datetime.combine(max(inst.go_live_date, today - timedelta(days=400)), datetime.min.time(),
                              tzinfo=timezone.utc) + timedelta(days=20)
    plan = {service: True for service in SERVICES}
    if n % 7 == 3:
        plan["collection_development"] = False
    if n % 6 == 0:
        plan["recommendations"] = False
    if n % 8 == 0:
        plan["benchmark"] = False
    for service, on in plan.items():
        if on:
            version = store.institution(admin, inst.code).version
            store.set_sharing(admin, inst.code, service, True, version, now=joined)
    if n % 9 == 0:
        # A recent change waiting for the next monthly benchmark cycle.
        version = store.institution(admin, inst.code).version
        state = store.sharing_state(admin, inst.code)["benchmark"].requested
        store.set_sharing(admin, inst.code, "benchmark", not state, version,
                          now=datetime.now(timezone.utc) - timedelta(hours=1))


def _reset(settings: Settings) -> None:
    """Remove everything in the data dir but the tracked reference data."""
    for child in settings.data_dir.iterdir():
        if child.name in ("reference", "control.db", "control.db-wal", "control.db-shm"):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
