"""Library of Congress call number -> class, subclass and subject captions.

Everything goes through one vectorized Polars path (`classify_frame`); the scalar
helpers run it on a one-row frame, so a single call number and a column of millions
are classified by the same code.  Call numbers are matched on their letters and
class number only (cutters, dates and volumes are ignored), against the outline in
data/reference/lc_outline.csv (see data/reference/README.md).

Unparseable values (blank, Dewey numbers, local schemes, NLM's QS-QZ/W, garbage)
never raise: they get null class/subclass and the subject UNKNOWN_SUBJECT.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import NamedTuple

import polars as pl

OUTLINE_PATH = Path(__file__).resolve().parents[2] / "data" / "reference" / "lc_outline.csv"
UNKNOWN_SUBJECT = "Unknown"

# Letters, optional spaces, class number.  UVA's shelving form zero-pads the number
# ("DQ 000076 .E85"); class numbers have at most four digits, and a fifth digit means
# this is not an LC call number.  [0-9] rather than \d: Rust's \d is Unicode-wide.
_CALL_NUMBER = r"^([A-Z]{1,3})\s*0*([0-9]{1,4}(?:\.[0-9]+)?)(?:[^0-9]|$)"
# Some exports use quotes or apostrophes as separators ("BL'545'F4").
_SEPARATOR_QUOTES = r"[\"'`\u2018\u2019\u201a\u201b\u2032]"


class Subject(NamedTuple):
    """Classification of one call number; all None (subject UNKNOWN_SUBJECT) if unparseable."""

    lc_class: str | None
    lc_class_caption: str | None
    lc_subclass: str | None
    lc_subclass_caption: str | None
    caption: str | None
    """Finest outline caption covering the class number, else the subclass caption."""
    subject: str
    """Subclass caption, else class caption, else UNKNOWN_SUBJECT (as in classify_frame)."""


def _in_context(lc_class: pl.Expr, caption: pl.Expr) -> pl.Expr:
    """Law subclasses (class K) are captioned by jurisdiction ("Africa -- Guinea to Niger" for KSH):
    shown alone, such a caption loses its subject, so it is prefixed "Law: " unless it says law."""
    return (pl.when((lc_class == "K") & ~caption.str.contains(r"(?i)\blaws?\b"))
            .then(pl.lit("Law: ") + caption).otherwise(caption).alias("lc_subclass_caption"))


@cache
def _reference() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(subclasses with their class captions, numeric ranges), read once per process."""
    table = pl.read_csv(
        OUTLINE_PATH,
        schema={
            "lc_class": pl.String,
            "subclass": pl.String,
            "depth": pl.Int32,
            "start": pl.Float64,
            "end": pl.Float64,
            "caption": pl.String,
        },
    )
    classes = table.filter(pl.col("depth") == 0).select(
        "lc_class", pl.col("caption").alias("lc_class_caption")
    )
    subclasses = (
        table.filter(pl.col("depth") == 1)
        .select(
            "lc_class",
            pl.col("subclass").alias("lc_subclass"),
            pl.col("caption").alias("lc_subclass_caption"),
            pl.col("start").alias("min_number"),
            pl.col("end").alias("max_number"),
        )
        .join(classes, on="lc_class", how="left")
        .with_columns(_in_context(pl.col("lc_class"), pl.col("lc_subclass_caption")))
        .select(
            "lc_class", "lc_class_caption", "lc_subclass", "lc_subclass_caption", "min_number", "max_number"
        )
    )
    ranges = table.filter(pl.col("depth") >= 2).select(
        pl.col("subclass").alias("lc_subclass"), "depth", "start", "end", "caption"
    )
    return subclasses, ranges


def _parse_expr(expr: pl.Expr) -> pl.Expr:
    """Struct {letters, number} from a raw call-number column; null fields when no match."""
    cleaned = (
        expr.cast(pl.String, strict=False)
        .str.to_uppercase()
        .str.replace_all(_SEPARATOR_QUOTES, " ")
        .str.strip_chars()
    )
    parts = cleaned.str.extract_groups(_CALL_NUMBER)
    return pl.struct(
        parts.struct.field("1").alias("letters"),
        parts.struct.field("2").cast(pl.Float64, strict=False).alias("number"),
    )


def _finest_captions(keys: pl.DataFrame) -> pl.DataFrame:
    """Deepest outline range holding each unique (lc_subclass, number) pair.

    Ranges nest, so the deepest match is the finest; among equally deep overlapping
    ranges the narrowest wins, then the caption, so the result is deterministic.
    """
    _, ranges = _reference()
    return (
        keys.join(ranges, on="lc_subclass", how="inner")
        .filter(pl.col("number").is_between(pl.col("start"), pl.col("end")))
        .sort(
            ["lc_subclass", "number", "depth", (pl.col("end") - pl.col("start")), "caption"],
            descending=[False, False, True, False, False],
        )
        .group_by("lc_subclass", "number", maintain_order=True)
        .agg(pl.col("caption").first().alias("lc_caption"))
    )


def _lookup(df: pl.DataFrame, col: str, detail: bool) -> pl.DataFrame:
    """Per-row parse and outline lookup: lc_class, lc_subclass, number and captions.

    Every row is parsed by one vectorized regex, without deduplicating the raw strings
    first: item call numbers are nearly all distinct (volume, copy), and there the
    extra unique-and-join-back measured twice as slow.  Outline ranges are matched once
    per distinct (subclass, number) pair.
    """
    subclasses, _ = _reference()
    source = df.get_column(col, default=None)
    if source is None or source.dtype.is_nested() or source.dtype == pl.Object:
        source = pl.Series(col, [None] * df.height, dtype=pl.String)
    known = pl.col("lc_class").is_not_null()
    parsed = (
        pl.DataFrame({"call_number": source})
        .select(_parse_expr(pl.col("call_number")).alias("_cn"))
        .unnest("_cn")
        .join(subclasses, left_on="letters", right_on="lc_subclass", how="left", maintain_order="left")
        .with_columns(
            pl.when(known).then(pl.col("letters")).alias("lc_subclass"),
            pl.when(known).then(pl.col("number")).alias("number"),
        )
    )
    if detail:
        keys = parsed.select("lc_subclass", "number").drop_nulls().unique()
        parsed = parsed.join(
            _finest_captions(keys), on=["lc_subclass", "number"], how="left", maintain_order="left"
        ).with_columns(pl.coalesce("lc_caption", "lc_subclass_caption").alias("lc_caption"))
    return parsed.with_columns(
        pl.coalesce("lc_subclass_caption", "lc_class_caption", pl.lit(UNKNOWN_SUBJECT)).alias("subject")
    )


def classify_frame(df: pl.DataFrame, col: str = "call_number", *, detail: bool = False) -> pl.DataFrame:
    """Add lc_class, lc_subclass and subject (subclass caption, else class caption,
    else UNKNOWN_SUBJECT) from the LC call numbers in `col`.

    With detail=True also add lc_class_caption, lc_subclass_caption and lc_caption
    (finest outline caption for the class number, else the subclass caption).  A
    missing column is treated as all null.  Existing columns of those names are
    replaced.
    """
    columns = ["lc_class", "lc_subclass", "subject"]
    if detail:
        columns += ["lc_class_caption", "lc_subclass_caption", "lc_caption"]
    return df.with_columns(_lookup(df, col, detail).select(columns))


def _one(value: object, detail: bool) -> dict:
    """Run the frame path on a single value; non-strings are formatted, never rejected."""
    text = value if value is None or isinstance(value, str) else str(value)
    return _lookup(pl.DataFrame({"cn": [text]}, schema={"cn": pl.String}), "cn", detail).row(0, named=True)


def parse_call_number(s: object) -> tuple[str, float] | None:
    """(letters, class number) of an LC call number, e.g. "QA76.73.P98 L88" -> ("QA", 76.73).

    None unless the letters are a known LC subclass followed by a class number: a bare
    "CD" or "PZ" is more often a format code or garbage than a call number.
    """
    row = _one(s, detail=False)
    return None if row["lc_subclass"] is None else (row["lc_subclass"], row["number"])


def classify(call_number: object) -> Subject:
    """Classify one call number; see classify_frame.  Never raises on bad input."""
    row = _one(call_number, detail=True)
    return Subject(
        lc_class=row["lc_class"],
        lc_class_caption=row["lc_class_caption"],
        lc_subclass=row["lc_subclass"],
        lc_subclass_caption=row["lc_subclass_caption"],
        caption=row["lc_caption"],
        subject=row["subject"],
    )


def outline() -> pl.DataFrame:
    """One row per subclass: lc_class, lc_class_caption, lc_subclass, lc_subclass_caption,
    min_number, max_number (class-number span the outline lists; null if none), e.g. for
    generating realistic synthetic call numbers."""
    subclasses, _ = _reference()
    return subclasses.clone()


def class_captions() -> dict[str, str]:
    """Class letter -> class caption."""
    subclasses, _ = _reference()
    return dict(subclasses.select("lc_class", "lc_class_caption").unique().sort("lc_class").iter_rows())
