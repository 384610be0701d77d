"""Regenerate data/reference/demo_profile.csv: the distributions the demo community draws from.

Usage:
    python scripts/build_demo_profile.py /path/to/realdata [--out data/reference]

Inputs (under the realdata folder):
    uva_sample/uva_alderman_items_sample_5k.csv       5,000 items of UVA's Alderman Library (2019):
                                                      call number, pub year, item created date,
                                                      last checkout date, lifetime checkouts, item type
    spl/spl_library_collection_inventory_sample_10k.csv  10,000 rows of Seattle Public Library's
                                                      inventory (2017): item type, collection, pub year
    spl/spl_ils_data_dictionary.csv                   SPL's code dictionary (format and category groups)
    data/reference/lc_outline.csv (this repository)   the LC subclasses of each class

Output: one long table (profile, dimension, key, share, basis); shares of one profile and
dimension add up to 1 (lc_subclass: within each class). `basis` says where a share comes from:

    measured   counted in the files above
    imputed    a gap of the sample filled from measured neighbours (rule below)
    estimate   not in any real file we have; a stated assumption (values below)

profile    dimension     key                         source
academic   lc_class      class letter                measured split of the classes Alderman holds
                                                     (A B C D H P U V), scaled to ACADEMIC_OTHER_CLASSES
                                                     for the classes it does not (science, law, ...)
academic   lc_subclass   "P:PR" (class:subclass)     measured in Alderman; subclasses the sample's
                                                     phases skipped (PS, PN, HD, ...) get the median
                                                     measured subclass of their class (imputed);
                                                     classes Alderman does not hold: equal shares of
                                                     one- and two-letter subclasses, a tenth for the
                                                     three-letter Law jurisdictions (estimate)
public     lc_class      class letter                SPL's fiction share (measured) goes to P, the
                                                     rest is spread like the academic classes
both       format        "print/book", ...           print side measured (UVA item types; SPL format
                                                     groups); electronic share an estimate
both       pub_age       "0-4", "5-9", ... "100+"    years between publication and the export (measured)
academic   acquire_lag   "0", "1", "2", "3-5", ...   years between publication and the item record's
                                                     creation, items created after UVA's 1996
                                                     migration (measured)
academic   loans_36m     "0", "1", ... "20+"         loans per item in a 36-month window: items
                                                     created before the window, 0 unless the last
                                                     checkout falls in it, else lifetime checkouts
                                                     (measured; an upper bound for the loaned ones)

Realdata has no per-item circulation of a public library, so the demo's public libraries
use the academic loan shape; see data/reference/README.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import polars as pl

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "reference"
OUTLINE = DEFAULT_OUT / "lc_outline.csv"

# Shares of a general academic collection in the classes Alderman (humanities and social
# sciences) does not hold. ESTIMATE: no file in realdata covers them. Order of magnitude of
# a US university library's print holdings; Law is small because law schools keep their own.
ACADEMIC_OTHER_CLASSES = {
    "E": 0.030, "F": 0.030, "G": 0.025, "J": 0.025, "K": 0.025, "L": 0.025, "M": 0.020,
    "N": 0.035, "Q": 0.080, "R": 0.040, "S": 0.015, "T": 0.045, "Z": 0.015,
}
ELECTRONIC_SHARE = {"academic": 0.15, "public": 0.10}  # ESTIMATE: realdata's exports are print only
UVA_EXPORT = date(2019, 3, 20)  # the latest date in the UVA file
SPL_EXPORT_YEAR = 2017          # ReportDate 10/01/2017
WINDOW_MONTHS = 36
AGE_BINS = [(lo, lo + 4) for lo in range(0, 100, 5)]
LAG_BINS = [(0, 0), (1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 200)]
LOAN_CAP = 20


def _rows(profile: str, dimension: str, shares: dict[str, float], basis: dict[str, str] | str) -> list[dict]:
    total = sum(shares.values())
    return [{"profile": profile, "dimension": dimension, "key": k, "share": round(v / total, 6),
             "basis": basis if isinstance(basis, str) else basis[k]} for k, v in shares.items() if v > 0]


def _binned(values: pl.Series, bins: list[tuple[int, int]], last_label: str) -> dict[str, float]:
    out = {}
    for lo, hi in bins:
        label = str(lo) if lo == hi else f"{lo}-{hi}"
        out[label] = float(((values >= lo) & (values <= hi)).sum())
    out[last_label] = float((values > bins[-1][1]).sum())
    return out


def uva(source: Path) -> pl.DataFrame:
    frame = pl.read_csv(source / "uva_sample" / "uva_alderman_items_sample_5k.csv", infer_schema=False)
    return frame.with_columns(
        pl.col("call_number").str.extract(r"^([A-Z]+)").alias("subclass"),
        pl.col("pub_year").cast(pl.Int64, strict=False),
        pl.col("item_created_date").str.to_date("%m/%d/%y", strict=False).alias("created"),
        pl.col("last_checkout_date").str.to_date("%m/%d/%y", strict=False).alias("last"),
        pl.col("lifetime_checkouts").cast(pl.Int64),
    ).filter(pl.col("subclass").is_not_null())


def academic_subjects(items: pl.DataFrame, outline: pl.DataFrame) -> list[dict]:
    """Class and within-class subclass shares of the academic profile."""
    subs = outline.filter(pl.col("depth") == 1).select("lc_class", "subclass")
    measured = dict(items.group_by("subclass").len().iter_rows())
    covered = sorted({s[0] for s in measured})
    weight, basis = {}, {}
    for cls, codes in subs.group_by("lc_class", maintain_order=True).agg("subclass").iter_rows():
        if cls in covered:
            counts = sorted(measured[c] for c in codes if c in measured)
            median = counts[len(counts) // 2]
            for code in codes:
                weight[f"{cls}:{code}"] = float(measured.get(code, median))
                basis[f"{cls}:{code}"] = "measured" if code in measured else "imputed"
        else:
            for code in codes:
                weight[f"{cls}:{code}"] = 1.0 if len(code) <= 2 else 0.1
                basis[f"{cls}:{code}"] = "estimate"
    class_weight = {}
    for key, w in weight.items():
        class_weight[key[0]] = class_weight.get(key[0], 0.0) + w
    covered_total = sum(class_weight[c] for c in covered)
    other = sum(ACADEMIC_OTHER_CLASSES.values())
    class_share = {c: (1 - other) * class_weight[c] / covered_total for c in covered}
    class_share.update(ACADEMIC_OTHER_CLASSES)
    class_basis = {c: "measured" if c in covered else "estimate" for c in class_share}
    rows = _rows("academic", "lc_class", dict(sorted(class_share.items())), class_basis)
    for cls in sorted(class_weight):
        keys = {k: w for k, w in weight.items() if k[0] == cls}
        rows += _rows("academic", "lc_subclass", keys, basis)
    return rows


def academic_items(items: pl.DataFrame) -> list[dict]:
    """Formats, publication ages, acquisition lags and loans of the academic profile."""
    kinds = items["item_type"].to_list()
    material = {"print/book": 0.0, "print/journal": 0.0, "print/media": 0.0}
    for kind in kinds:
        key = "print/journal" if "JRNL" in kind else "print/media" if kind in ("CD-ROM", "DVD", "VIDEO") else "print/book"
        material[key] += 1
    formats = {k: v / len(kinds) * (1 - ELECTRONIC_SHARE["academic"]) for k, v in material.items()}
    formats["electronic/book"] = ELECTRONIC_SHARE["academic"]
    rows = _rows("academic", "format", formats, {**{k: "measured" for k in material}, "electronic/book": "estimate"})
    ages = UVA_EXPORT.year - items["pub_year"].drop_nulls()
    rows += _rows("academic", "pub_age", _binned(ages, AGE_BINS, "100+"), "measured")
    created_after = items.filter(pl.col("created").dt.year() > 1996)
    lags = (created_after["created"].dt.year() - created_after["pub_year"]).drop_nulls().clip(lower_bound=0)
    rows += _rows("academic", "acquire_lag", _binned(lags, LAG_BINS, "201+"), "measured")
    start = date(UVA_EXPORT.year - WINDOW_MONTHS // 12, UVA_EXPORT.month, 1)
    older = items.filter(pl.col("created") < start)
    in_window = older.select(
        pl.when(pl.col("last") >= start).then(pl.col("lifetime_checkouts").clip(lower_bound=1)).otherwise(0)
    ).to_series().clip(upper_bound=LOAN_CAP)
    counts = {str(n) if n < LOAN_CAP else f"{LOAN_CAP}+": float((in_window == n).sum()) for n in range(LOAN_CAP + 1)}
    rows += _rows("academic", "loans_36m", counts, "measured")
    return rows


def public_profile(source: Path, academic_classes: dict[str, float]) -> list[dict]:
    """Class, format and publication-age shares of the public profile (Seattle Public Library)."""
    inventory = pl.read_csv(source / "spl" / "spl_library_collection_inventory_sample_10k.csv", infer_schema=False)
    codes = pl.read_csv(source / "spl" / "spl_ils_data_dictionary.csv", infer_schema=False, encoding="utf8-lossy")
    codes = codes.rename({codes.columns[0]: "Code"})
    item_types = codes.filter(pl.col("Code Type") == "ItemType").select(
        pl.col("Code").alias("ItemType"), pl.col("Format Group").alias("group"), pl.col("Format Subgroup").alias("sub"))
    collections = codes.filter(pl.col("Code Type") == "ItemCollection").select(
        pl.col("Code").alias("ItemCollection"), pl.col("Category Group").alias("category"))
    frame = inventory.join(item_types, on="ItemType", how="left").join(collections, on="ItemCollection", how="left")
    fiction = float((frame["category"] == "Fiction").mean())
    classes = {c: s * (1 - fiction) for c, s in academic_classes.items()}
    classes["P"] = classes.get("P", 0.0) + fiction  # fiction is shelved in P (PR, PS, PZ ...) under LC
    basis = {c: "estimate" for c in classes}
    basis["P"] = "measured"
    rows = _rows("public", "lc_class", dict(sorted(classes.items())), basis)
    material = {"print/book": 0.0, "print/journal": 0.0, "print/media": 0.0, "print/other": 0.0}
    for group, sub in frame.select("group", "sub").iter_rows():
        key = ("print/media" if group == "Media" else "print/journal" if sub == "Periodical"
               else "print/book" if sub == "Book" else "print/other")
        material[key] += 1
    formats = {k: v / frame.height * (1 - ELECTRONIC_SHARE["public"]) for k, v in material.items()}
    formats["electronic/book"] = ELECTRONIC_SHARE["public"]
    rows += _rows("public", "format", formats, {**{k: "measured" for k in material}, "electronic/book": "estimate"})
    years = frame["PublicationYear"].str.extract(r"(\d{4})").cast(pl.Int64).drop_nulls()
    ages = (SPL_EXPORT_YEAR - years).clip(lower_bound=0)
    rows += _rows("public", "pub_age", _binned(ages, AGE_BINS, "100+"), "measured")
    return rows


def build(source: Path, outline_path: Path = OUTLINE) -> pl.DataFrame:
    outline = pl.read_csv(outline_path, infer_schema=False).with_columns(pl.col("depth").cast(pl.Int32))
    items = uva(source)
    rows = academic_subjects(items, outline)
    academic_classes = {r["key"]: r["share"] for r in rows if r["dimension"] == "lc_class"}
    rows += academic_items(items)
    rows += public_profile(source, academic_classes)
    return pl.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the realdata folder (uva_sample/, spl/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    table = build(args.source)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "demo_profile.csv"
    table.write_csv(target)
    print(f"wrote {target} ({target.stat().st_size:,} bytes, {table.height:,} rows)")
    for profile in ("academic", "public"):
        top = (table.filter((pl.col("profile") == profile) & (pl.col("dimension") == "lc_class"))
               .sort("share", descending=True).head(5))
        print(f"  {profile} top classes: " + ", ".join(f"{k} {s:.1%}" for k, s in top.select("key", "share").iter_rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
