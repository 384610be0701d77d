"""Regenerate data/reference/lc_outline.csv from the classification source folder.

Usage:
    python scripts/build_reference.py /path/to/realdata/classification [--out data/reference]

Inputs (all in the source folder):
    lcc_outline_flat.csv                   LC Classification Outline, flattened (UVA Virgo)
    libbib_lc_subject_classification.csv   class captions (NYPL libbib)
    libbib_lc_subject_subclassification.csv  subclass captions (NYPL libbib)

Output: one long table, one row per node of the outline, so the runtime only needs
a single small file (columns lc_class, subclass, depth, start, end, caption):

    depth 0   a class (subclass empty)
    depth 1   a subclass, with start/end = the lowest and highest class number the
              outline lists for it (empty when the outline lists none)
    depth 2+  a numeric range of class numbers, keyed by the letters a call number
              in that range carries

Decisions baked in here rather than at runtime:
  * Class and subclass captions use libbib's wording ("Social Sciences" rather than
    the outline's "SOCIAL SCIENCES"), falling back to the outline's caption.
  * libbib lists the three-letter K jurisdictions (KFN, KGF, ...) as subclasses; the
    outline files them as ranges inside a two-letter subclass (KF, KG, ...).  They are
    kept as subclasses so "KFN 5000" parses, captioned with their outline parent
    ("Law of the United States"): subjects stay comparable across jurisdictions, and
    the jurisdiction itself is still the finer range caption.
  * Ranges spanning several letter groups ("KFA1-KFW4799", "KD-KDY") are expanded into
    one row per known letter group, so the runtime matches on equal letters only.
  * Ranges bounded by cutters on a single class number ("DT469.M21-.M38") are dropped:
    call numbers are matched on their class number alone, and such siblings would be
    indistinguishable.  Cutters on different numbers ("Z116.A5-265.5") keep the numbers.
  * The outline writes "to the end of the schedule" as 999999; class numbers never
    exceed four digits, so open ends are stored as 10000.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

OPEN_END = 10000.0
OUTLINE_SENTINEL = 999999.0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "reference"

_BOUND = r"^([A-Z]+)\s*([0-9]+(?:\.[0-9]+)?)?(\.?[A-Z].*)?$"


def _squash(expr: pl.Expr) -> pl.Expr:
    """Collapse the outline's double spaces after full stops."""
    return expr.str.replace_all(r"\s+", " ").str.strip_chars()


def _bound(col: str, prefix: str) -> list[pl.Expr]:
    """Split a range bound like "DT469.M21" into letters, number and a cutter flag."""
    parts = pl.col(col).str.strip_chars().str.extract_groups(_BOUND)
    return [
        parts.struct.field("1").alias(f"{prefix}_letters"),
        parts.struct.field("2").cast(pl.Float64).alias(f"{prefix}_number"),
        parts.struct.field("3").is_not_null().alias(f"{prefix}_cutter"),
    ]


def build(source: Path) -> pl.DataFrame:
    """The lc_outline table (see the module docstring) from the files in `source`."""
    outline = pl.read_csv(source / "lcc_outline_flat.csv", infer_schema=False).with_columns(
        pl.col("depth").cast(pl.Int32)
    )
    lb_class = pl.read_csv(source / "libbib_lc_subject_classification.csv", infer_schema=False)
    lb_sub = pl.read_csv(source / "libbib_lc_subject_subclassification.csv", infer_schema=False)
    classes = _classes(outline, lb_class)
    outline_subs = outline.filter(pl.col("depth") == 1).select(
        "subclass", _squash(pl.col("subclass_name")).alias("outline_caption")
    )
    libbib_only = lb_sub.filter(
        ~pl.col("thekey").is_in(outline_subs["subclass"].implode())
        & ~pl.col("thekey").is_in(list(set(classes["lc_class"])))
    )
    codes = sorted(set(outline_subs["subclass"]) | set(libbib_only["thekey"]))
    ranges = _expanded(_ranges(outline), codes)
    subclasses = _subclasses(codes, ranges, outline_subs, lb_sub, libbib_only)
    columns = ["lc_class", "subclass", "depth", "start", "end", "caption"]
    out = pl.concat(
        [
            classes.with_columns(
                pl.lit(None, pl.Float64).alias("start"), pl.lit(None, pl.Float64).alias("end")
            ).select(columns),
            subclasses.select(columns),
            ranges.with_columns(pl.col("depth").cast(pl.Int32)).select(columns),
        ]
    )
    return out.sort(
        "lc_class", pl.col("subclass").fill_null(""), "depth", "start", "end", maintain_order=True
    )


def _classes(outline: pl.DataFrame, lb_class: pl.DataFrame) -> pl.DataFrame:
    """Depth 0: one row per class, with libbib's caption where it has one."""
    return (
        outline.filter(pl.col("depth") == 0)
        .select(pl.col("lcc_class").alias("lc_class"), _squash(pl.col("caption")).alias("outline_caption"))
        .join(
            lb_class.rename({"thekey": "lc_class", "description": "libbib_caption"}), on="lc_class", how="left"
        )
        .select(
            "lc_class",
            pl.lit(None, pl.String).alias("subclass"),
            pl.lit(0, pl.Int32).alias("depth"),
            pl.coalesce("libbib_caption", "outline_caption").alias("caption"),
        )
    )


def _ranges(outline: pl.DataFrame) -> pl.DataFrame:
    """Depth 2+: the outline's numeric ranges, cutter-only siblings dropped, open ends at OPEN_END."""
    return (
        outline.filter(pl.col("depth") >= 2)
        .with_columns(*_bound("start", "s"), *_bound("end", "e"))
        .filter(~((pl.col("s_cutter") | pl.col("e_cutter")) & (pl.col("s_number") == pl.col("e_number"))))
        .with_columns(
            pl.col("s_number").fill_null(0.0),
            pl.when(pl.col("e_number").is_null() | (pl.col("e_number") >= OUTLINE_SENTINEL))
            .then(OPEN_END)
            .otherwise(pl.col("e_number"))
            .alias("e_number"),
            _squash(pl.col("caption")).alias("caption"),
        )
    )


def _expanded(ranges: pl.DataFrame, codes: list[str]) -> pl.DataFrame:
    """Ranges expanded over every known letter group they cover (lexicographic bounds)."""
    expanded = []
    for row in ranges.iter_rows(named=True):
        lo, hi = row["s_letters"], row["e_letters"]
        for code in ([lo] if lo == hi else [c for c in codes if lo <= c <= hi]):
            expanded.append(
                {
                    "lc_class": row["lcc_class"],
                    "subclass": code,
                    "parent": row["subclass"],
                    "depth": row["depth"],
                    "start": row["s_number"] if code == lo else 0.0,
                    "end": row["e_number"] if code == hi else OPEN_END,
                    "caption": row["caption"],
                    "single_group": lo == hi and row["e_number"] < OPEN_END,
                }
            )
    return pl.DataFrame(expanded).unique(maintain_order=True)


def _subclasses(codes: list[str], ranges: pl.DataFrame, outline_subs: pl.DataFrame, lb_sub: pl.DataFrame,
                libbib_only: pl.DataFrame) -> pl.DataFrame:
    """Depth 1: one row per subclass code with its caption and the span of its single-group ranges.
    A libbib-only code takes the outline caption of the subclass whose ranges cover it
    (KFN -> KF), else keeps libbib's own caption (KBS: no outline range)."""
    outline_caption = dict(outline_subs.iter_rows())
    lb_sub_caption = dict(lb_sub.iter_rows())
    parent_caption = {
        code: outline_caption.get(parent) or lb_sub_caption.get(parent)
        for code, parent in ranges.filter(pl.col("subclass") != pl.col("parent"))
        .group_by("subclass")
        .agg(pl.col("parent").min())
        .iter_rows()
    }
    caption = {code: lb_sub_caption.get(code) or outline_caption.get(code) for code in outline_caption}
    caption.update({code: parent_caption.get(code) or lb_sub_caption[code] for code in libbib_only["thekey"]})
    span = ranges.filter("single_group").group_by("subclass").agg(pl.col("start").min(), pl.col("end").max())
    return (
        pl.DataFrame({"lc_class": [c[0] for c in codes], "subclass": codes, "caption": [caption[c] for c in codes]})
        .join(span, on="subclass", how="left")
        .with_columns(pl.lit(1, pl.Int32).alias("depth"))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source", type=Path, help="folder holding lcc_outline_flat.csv and the libbib caption files"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    table = build(args.source)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "lc_outline.csv"
    table.write_csv(target)
    counts = table.group_by(pl.col("depth").clip(upper_bound=2)).len().sort("depth")
    print(f"wrote {target} ({target.stat().st_size:,} bytes): " + ", ".join(
        f"{n} {label}" for label, n in zip(["classes", "subclasses", "ranges"], counts["len"])
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
