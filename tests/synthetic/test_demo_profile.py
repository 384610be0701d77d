"""The demo community looks like real libraries: its subjects, formats, publication ages and
loans follow data/reference/demo_profile.csv (derived from real item exports), not the LC
outline's shape (where Law, with its hundreds of jurisdictions, made up half the holdings)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from analytics.synthetic import demo, profile

TODAY = date(2026, 6, 15)
MONTHS = 36


@pytest.fixture(scope="module")
def community():
    """The default demo (24 institutions, 36 months), generated but not imported: items with their
    institution's profile, and each print item's loans over the window."""
    rng = np.random.default_rng(7)
    months = demo.month_starts(TODAY, MONTHS)
    works = demo.make_works(rng, n_works=900 * 24, months=MONTHS, year=TODAY.year)
    frames = []
    for inst in demo.make_institutions(rng, 24, TODAY):
        tables = demo.institution_exports(rng, inst, works, months)
        lent = tables["loans"].group_by("item_id").agg(pl.col("count").sum().alias("loans"))
        frames.append(tables["items"].join(lent, on="item_id", how="left").with_columns(
            pl.col("loans").fill_null(0), pl.lit(profile.profile_of(inst.type)).alias("profile"),
            pl.col("call_number").str.slice(0, 1).alias("lc_class"),
            (TODAY.year - pl.col("pub_year")).alias("age")))
    return pl.concat(frames, how="vertical_relaxed")


def _expected(items: pl.DataFrame, dimension: str) -> dict[str, float]:
    """A dimension's shares the community should show: each profile's reference shares weighted
    by how many items institutions of that profile hold."""
    weight = dict(items.group_by("profile").len().iter_rows())
    out: dict[str, float] = {}
    for name, n in weight.items():
        for key, share in profile.shares(name, dimension).items():
            out[key] = out.get(key, 0.0) + share * n / items.height
    return out


def _shares(series: pl.Series) -> dict[str, float]:
    return {k: n / series.len() for k, n in series.value_counts().iter_rows()}


def test_class_shares_follow_the_reference(community):
    shares, expected = _shares(community["lc_class"]), _expected(community, "lc_class")
    assert max(shares.values()) < 0.25, sorted(shares.items(), key=lambda kv: -kv[1])[:3]
    assert abs(shares.get("K", 0.0) - expected["K"]) < 0.02  # Law: a few percent, as in a real library
    for cls, share in expected.items():
        assert abs(shares.get(cls, 0.0) - share) < 0.03, (cls, shares.get(cls), share)


def test_subclasses_within_a_class_follow_the_reference(community):
    history = community.filter(pl.col("lc_class") == "D")
    shares = _shares(history["call_number"].str.extract(r"^([A-Z]+)"))
    reference = {k.split(":")[1]: v for k, v in profile.shares("academic", "lc_subclass").items() if k[0] == "D"}
    top = max(reference, key=reference.get)
    assert top == "DS" and abs(shares[top] - reference[top]) < 0.04  # Asia, the largest in the sample


def test_loans_per_item_are_skewed_like_the_reference(community):
    print_items = community.filter(pl.col("format") == "print")
    loans = print_items["loans"].sort(descending=True).to_numpy()
    table = profile.shares("academic", "loans_36m")
    never = table["0"]
    reference = np.sort(profile.draw_binned(np.random.default_rng(0), table, 200_000, 60))[::-1]
    top_decile = reference[: len(reference) // 10].sum() / reference.sum()
    assert abs((loans == 0).mean() - never) < 0.05, ((loans == 0).mean(), never)
    assert abs(loans[: len(loans) // 10].sum() / loans.sum() - top_decile) < 0.05
    assert loans.max() >= 20  # a long tail: a few items are lent again and again


def test_formats_come_in_realistic_proportions(community):
    for name in profile.PROFILES:
        items = community.filter(pl.col("profile") == name)
        kinds = _shares(items["format"] + "/" + items["material_type"])
        for key, share in profile.shares(name, "format").items():
            assert abs(kinds.get(key, 0.0) - share) < 0.04, (name, key, kinds.get(key), share)
    public = community.filter(pl.col("profile") == "public")
    assert (public["material_type"] == "media").mean() > 0.08  # DVDs, CDs, audiobooks


def test_publication_ages_follow_the_reference(community):
    for name, tolerance in (("academic", 5), ("public", 3)):
        table = profile.shares(name, "pub_age")
        reference = np.median(profile.draw_binned(np.random.default_rng(0), table, 100_000, demo.OLDEST_AGE))
        median = community.filter(pl.col("profile") == name)["age"].median()
        assert abs(median - reference) <= tolerance, (name, median, reference)


def test_the_reference_is_shipped_with_the_product_and_adds_up():
    assert profile.PROFILE_PATH.parent.name == "reference" and "shared" not in profile.PROFILE_PATH.parts
    table = pl.read_csv(profile.PROFILE_PATH, schema_overrides={"key": pl.String})
    sums = (table.with_columns(pl.when(pl.col("dimension") == "lc_subclass").then(pl.col("key").str.slice(0, 1))
                               .otherwise(pl.lit("")).alias("group"))
            .group_by("profile", "dimension", "group").agg(pl.col("share").sum()))
    assert ((sums["share"] - 1).abs() < 1e-3).all()
    assert set(table["basis"]) <= {"measured", "imputed", "estimate"}



def test_demo_libraries_that_retain_have_current_and_ended_commitments(demo_community):
    """Research, national and teaching libraries of the demo carry shared-print commitments (through
    the real import), so My data, Deselection and the last-copy check have some to show."""

    from analytics.control.store import Store
    from analytics.core.access import Principal
    from analytics.core.config import load_settings
    from analytics.synthetic.demo import PROGRAMS, RETAINING_TYPES

    store = Store(load_settings(demo_community).database_url)
    try:
        institutions = store.list_institutions(Principal.system_job())
    finally:
        store.dispose()
    seen = 0
    for inst in institutions:
        path = demo_community / "institutions" / inst.code / "retention_commitments.parquet"
        if inst.type not in RETAINING_TYPES:
            assert not path.exists()
            continue
        commitments = pl.read_parquet(path)
        seen += 1
        assert commitments.height > 20 and set(commitments["program"]) <= set(PROGRAMS[inst.region])
        until = commitments["retain_until"]
        assert until.is_null().sum() > 0 and (until < date.today()).sum() > 0  # indefinite, and ended
        assert commitments["work_key"].str.starts_with("isbn:").all()
    assert seen >= 2
