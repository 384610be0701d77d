"""Identifier normalisation (ISBN, ISSN, OCLC), title/author fingerprints and work keys.

Institutions describe the same work differently: one sends an ISBN-10, another the
ISBN-13 of the e-book, a third only an OCLC number or just a title.  Everything here
reduces those to comparable keys so usage can be added up per work.

Two rules hold throughout:
  * Bad values never raise; they normalise to None / an empty list / 'unmatched'.
  * Columns are processed with Polars expressions, once per distinct value where
    values repeat.  The scalar helpers for titles, authors and OCLC numbers run the
    very same expressions on a one-row frame, so a value and a column cannot disagree.

ISBNs are the exception to "same code for both": the scalar functions validate with
python-stdnum, but stdnum.isbn.validate costs ~20 us a call, i.e. minutes for the ~1M
distinct ISBN cells of a union of institutions, so frames compute check digits with
Polars expressions instead, and the tests hold the two to each other.  ISSN columns
have few distinct values (one per serial), so frames use stdnum.issn directly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

import polars as pl
from stdnum import ean as _ean
from stdnum import isbn as _isbn
from stdnum import issn as _issn
from stdnum.exceptions import ValidationError

MATCH_METHODS = ("isbn", "issn", "oclc", "fingerprint", "unmatched")
IDENTIFIER_COLUMNS = ("isbn13_list", "invalid_isbn_count", "issn_norm", "oclc_norm")

_CELL_SEPARATOR = r"[;|,]"


def _text(value: object) -> str | None:
    """A cell value as text: numbers become their digits, other non-strings None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _scalar(make: Callable[..., pl.Expr], *values: object) -> object:
    """Evaluate a column expression on single values (the frame path, one row)."""
    names = [f"v{i}" for i in range(len(values))]
    frame = pl.DataFrame(
        {name: [_text(value)] for name, value in zip(names, values)},
        schema=dict.fromkeys(names, pl.String),
    )
    return frame.select(make(*(pl.col(name) for name in names))).item()


# --------------------------------------------------------------------------- ISBN
#
# A cell is read the same way by both paths: the scalar functions (Python regexes,
# stdnum.isbn for check digits) and the frame path (the same patterns in Polars, check
# digits as integer arithmetic).  The patterns below are written to mean the same in
# Python's re and Rust's regex (explicit character classes, no Unicode-dependent \s
# or case folding), and tests/ingest/test_identifiers.py holds the two paths to each other
# on arbitrary text.

# Whitespace, including the no-break and typographic spaces of word-processor exports.
_SPACE = r"[ \t\n\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]"
# Unicode dashes read as hyphens.
_DASHES = r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]"
# MARC 020 qualifiers: "1565926218 (pbk. : alk. paper)", "[electronic bk.]"; an
# unclosed "(pbk." runs to the end of the cell.
_QUALIFIER = r"\([^)]*\)?|\[[^\]]*\]?"
_ISBN_LABEL = rf"^{_SPACE}*[Ii][Ss][Bb][Nn](?:[- ]?1[03])?{_SPACE}*:?"
_SPACE_OR_HYPHEN = rf"(?:{_SPACE}|-)"
# A spreadsheet's float rendering of a numeric ISBN: "9780441017805.0".
_FLOAT_TAIL = r"\.0+$"
_EDGE_PUNCTUATION = ".:;/"
# Compacted shapes worth a check digit: 9 (SBN, or ISBN-10 that lost its leading
# zero in a numeric column), 10 or 13 characters.
_ISBN_SHAPE = r"^(?:[0-9]{8,9}[0-9X]|[0-9]{13})$"

_re_space_run = re.compile(f"{_SPACE}+")
_re_dashes = re.compile(_DASHES)
_re_qualifier = re.compile(_QUALIFIER)
_re_cell_separator = re.compile(_CELL_SEPARATOR)
_re_label = re.compile(_ISBN_LABEL)
_re_space_or_hyphen = re.compile(_SPACE_OR_HYPHEN)
_re_float_tail = re.compile(_FLOAT_TAIL)
_re_shape = re.compile(_ISBN_SHAPE)
_re_digit = re.compile("[0-9]")


def _isbn13(candidate: str) -> str | None:
    """ISBN-13 digits of one candidate ISBN-10/13, or None if it is not valid.

    stdnum pads a 9-digit SBN with "0" (the official SBN -> ISBN conversion), which
    also rescues ISBN-10s that lost their leading zero in a numeric column.
    """
    compact = _re_space_or_hyphen.sub("", _re_label.sub("", candidate)).strip(_EDGE_PUNCTUATION)
    compact = _re_float_tail.sub("", compact).replace("x", "X")
    if not _re_shape.match(compact):
        return None
    try:
        return _isbn.validate(compact, convert=True)
    except ValidationError:
        return None


def parse_isbn_cell(value: object) -> tuple[list[str], int]:
    """(unique valid ISBN-13s in order of appearance, number of invalid ISBN-like tokens).

    A cell may hold several ISBNs separated by ';', '|', ',' or whitespace, with
    qualifiers ("(pbk.)") and an "ISBN" label.  Each ';|,'-separated segment is first
    tried whole, so a spaced ISBN ("978 0 441 01780 5") survives; otherwise its
    whitespace-separated tokens are tried one by one.  Tokens without a digit ("pbk.",
    "ISBN") are ignored rather than counted as invalid.
    """
    text = _text(value)
    if text is None:
        return [], 0
    found: list[str] = []
    invalid = 0
    cleaned = _re_qualifier.sub(" ", _re_dashes.sub("-", text))
    for segment in _re_cell_separator.split(cleaned):
        whole = _isbn13(segment)
        numbers = [whole] if whole else []
        if whole is None:
            for token in _re_space_run.split(segment):
                if _re_digit.search(token):
                    number = _isbn13(token)
                    if number is None:
                        invalid += 1
                    else:
                        numbers.append(number)
        for number in numbers:
            if number not in found:
                found.append(number)
    return found, invalid


def isbn13(prefix12: Iterable[int]) -> list[str]:
    """Valid ISBN-13s from 12-digit prefixes (978 + 9 digits), check digit computed."""
    return [body + _ean.calc_check_digit(body) for body in (f"{prefix:012d}" for prefix in prefix12)]


def split_isbns(value: object) -> list[str]:
    """Unique valid ISBN-13s in a cell, in order (see parse_isbn_cell)."""
    return parse_isbn_cell(value)[0]


def normalize_isbn(value: object) -> str | None:
    """ISBN-13 digits of an ISBN-10/13 in any hyphenation, with or without qualifiers
    ("9780441017805 (pbk.)", "0-380-017822"); the first valid one if the value holds
    several; None for a bad check digit or garbage."""
    found = split_isbns(value)
    return found[0] if found else None


def _digit_sum(number: pl.Expr, weights: list[int]) -> pl.Expr:
    """Weighted sum of the decimal digits of an integer column, weights[0] applying to
    the most significant of len(weights) digits."""
    n = len(weights)
    return pl.sum_horizontal([w * (number // 10 ** (n - 1 - i) % 10) for i, w in enumerate(weights)])


def _with_isbn13(frame: pl.DataFrame, candidate: str) -> pl.DataFrame:
    """Add column "isbn": what _isbn13 returns for each value of the candidate column.

    Check digits by integer arithmetic (ISBN-13: EAN weights 1,3 and 978/979 prefix;
    ISBN-10: weights 10..2 plus the check digit, X = 10, mod 11), with intermediate
    columns materialised because each is read many times.
    """
    c = pl.col("_c")
    ean_weights = [1, 3] * 6
    # First 12 digits of the ISBN-13 (for an ISBN-10: 978 + its first 9 digits).
    ean_check = (10 - _digit_sum(pl.col("_body"), ean_weights) % 10) % 10
    isbn10_ok = (_digit_sum(pl.col("_head9"), list(range(10, 1, -1))) + pl.col("_last")) % 11 == 0
    return (
        frame.with_columns(
            pl.col(candidate)
            .str.replace(_ISBN_LABEL, "")
            .str.replace_all(_SPACE_OR_HYPHEN, "")
            .str.strip_chars(_EDGE_PUNCTUATION)
            .str.replace(_FLOAT_TAIL, "")
            .str.replace_all("x", "X", literal=True)
            .alias("_c")
        )
        .with_columns(
            pl.when(c.str.contains(_ISBN_SHAPE))
            .then(pl.when(c.str.len_chars() == 9).then("0" + c).otherwise(c))
            .alias("_c")
        )
        .with_columns(
            c.str.contains(r"^97[89][0-9]{10}$").alias("_is13"),
            (c.str.len_chars() == 10).alias("_is10"),
            c.str.slice(0, 9).cast(pl.Int64, strict=False).alias("_head9"),
            pl.when(c.str.ends_with("X"))
            .then(10)
            .otherwise(c.str.slice(-1).cast(pl.Int64, strict=False))
            .alias("_last"),
        )
        .with_columns(
            pl.when("_is13")
            .then(c.str.slice(0, 12).cast(pl.Int64, strict=False))
            .when("_is10")
            .then(978_000_000_000 + pl.col("_head9"))
            .alias("_body")
        )
        .with_columns(
            pl.when(pl.col("_is13") & (ean_check == pl.col("_last")))
            .then(c)
            .when(pl.col("_is10") & isbn10_ok)
            .then(pl.col("_body").cast(pl.String) + ean_check.cast(pl.String))
            .alias("isbn")
        )
        .drop("_c", "_is13", "_is10", "_head9", "_last", "_body")
    )


def _parse_isbn_cells(cells: pl.Series) -> pl.DataFrame:
    """parse_isbn_cell for a whole column, once per distinct cell: isbn13_list and
    invalid_isbn_count, one row per input cell in input order ([] and 0 for nulls)."""
    distinct = pl.DataFrame({"cell": cells.drop_nulls().unique()}).with_row_index("cell_id")
    segments = (
        distinct.select(
            "cell_id",
            pl.col("cell")
            .str.replace_all(_DASHES, "-")
            .str.replace_all(_QUALIFIER, " ")
            .str.replace_all(_CELL_SEPARATOR, ";")
            .str.split(";")
            .alias("segment"),
        )
        .explode("segment")
        .with_row_index("segment_id")
        .pipe(_with_isbn13, "segment")
    )
    tokens = (
        segments.filter(pl.col("isbn").is_null())
        .select(
            "cell_id",
            "segment_id",
            pl.col("segment").str.replace_all(f"{_SPACE}+", " ").str.split(" ").alias("token"),
        )
        .explode("token")
        .filter(pl.col("token").str.contains("[0-9]"))
        .pipe(_with_isbn13, "token")
    )
    parsed = (
        pl.concat(
            [
                segments.filter(pl.col("isbn").is_not_null()).select("cell_id", "segment_id", "isbn"),
                tokens.select("cell_id", "segment_id", "isbn"),
            ]
        )
        .sort("segment_id", maintain_order=True)
        .group_by("cell_id", maintain_order=True)
        .agg(
            pl.col("isbn").drop_nulls().unique(maintain_order=True).alias("isbn13_list"),
            pl.col("isbn").is_null().sum().cast(pl.UInt32).alias("invalid_isbn_count"),
        )
    )
    table = distinct.join(parsed, on="cell_id", how="left").drop("cell_id")
    return (
        pl.DataFrame({"cell": cells})
        .join(table, on="cell", how="left", maintain_order="left")
        .select(
            pl.col("isbn13_list").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("invalid_isbn_count").fill_null(0),
        )
    )


# --------------------------------------------------------------------- ISSN, OCLC

_ISSN_CANDIDATE = re.compile(r"(?<![0-9])([0-9]{4})\s*[-\u2010-\u2015]?\s*([0-9]{3}[0-9xX])(?![0-9xX])")


def normalize_issn(value: object) -> str | None:
    """First valid ISSN in the value, as "NNNN-NNNC" (upper-case X); else None."""
    text = _text(value)
    if text is None:
        return None
    for first, second in _ISSN_CANDIDATE.findall(text):
        number = first + second.upper()
        if _issn.is_valid(number):
            return _issn.format(number)
    return None


# "(OCoLC)ocm00012345", "ocn123456789", "on1234567890", "OCLC: 123", "123.0";
# leading zeros dropped, zero itself rejected.
_OCLC = r"(?i)^\s*(?:\(ocolc\))?\s*(?:ocm|ocn|on|oclc\s*(?:no\.?|#)?\s*:?)?\s*0*([1-9][0-9]*)(?:\.0+)?\s*$"


def oclc_expr(expr: pl.Expr) -> pl.Expr:
    """Polars expression behind normalize_oclc, for whole columns."""
    return (
        expr.cast(pl.String, strict=False)
        .str.replace_all(_CELL_SEPARATOR, ";")
        .str.split(";")
        .list.eval(pl.element().str.extract(_OCLC))
        .list.drop_nulls()
        .list.first()
    )


def normalize_oclc(value: object) -> str | None:
    """OCLC number without prefix or leading zeros ("(OCoLC)ocm00012345" -> "12345");
    the first valid one of a ';|,'-separated list; None for garbage or zero."""
    return _scalar(oclc_expr, value)


# ------------------------------------------------------------ titles and authors

# Leading articles of English, French, German, Spanish and Italian.  Dropped only when
# more words follow, so a title that is just "The" or "Die" survives.  Italian "i" is
# left out: it would eat the English pronoun ("I, Robot").
_ARTICLES = "the|a|an|le|la|les|un|une|der|die|das|ein|eine|el|los|las|il|lo|gli|uno|una"
# Comma-separated parts of a name heading that are not names.
_NOT_A_NAME = (
    r"^(?:jr|sr|ii|iii|iv|sir|author|editor|eds?|compiler|comp|translator|trans|"
    r"illustrator|ill|contributor|narrator|creator)\.?$"
)


def _folded(expr: pl.Expr) -> pl.Expr:
    """Text without diacritics, lower-cased: "Émile" -> "emile", "Straße" -> "strasse"."""
    return (
        expr.cast(pl.String, strict=False)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}+", "")
        .str.to_lowercase()
        .str.replace_all("ß", "ss", literal=True)
    )


def title_expr(expr: pl.Expr) -> pl.Expr:
    """Polars expression behind normalize_title, for whole columns."""
    title = (
        _folded(expr)
        # General material designations ("[videorecording]", "[electronic resource]"):
        # dropping them lets print and electronic records share a fingerprint.
        .str.replace_all(r"\[[^\]]*\]?", " ")
        # Subtitle (":"), statement of responsibility (" / ", and MARC's trailing
        # " /"), parallel title (" = "): keep what precedes the first of them.
        .str.replace(r"(?s)(?:\s*:|\s/(?:\s|$)|/\s*$|\s=\s).*$", "")
        .str.replace(r"^\s*(?:l|un)['\u2019\u02bc]\s*", "")
        .str.replace_all(r"['\u2019\u02bc]", "")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
        .str.replace(rf"^(?:{_ARTICLES}) ", "")
    )
    return pl.when(title != "").then(title)


def surname_expr(expr: pl.Expr) -> pl.Expr:
    """Polars expression behind first_author_surname, for whole columns."""
    first_author = (
        _folded(expr)
        .str.replace_all(r"\([^)]*\)?|\[[^\]]*\]?", " ")
        .str.replace(r"(?s)(?:;|\||&|\s(?:and|et|und|y|e)\s).*$", "")
    )
    # Keep the comma-separated parts that are names, dropping dates ("1946-"), roles
    # and suffixes, so "King, Martin Luther, Jr." (inverted: surname first) and
    # "Martin Luther King, Jr." (direct: surname last) both give "king".
    parts = (
        first_author.str.split(",")
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element().str.contains(r"\p{L}") & ~pl.element().str.contains(_NOT_A_NAME)))
    )
    head = parts.list.first()
    last_word = head.str.replace_all(r"\S*[0-9]\S*", " ").str.extract(r"(\S*\p{L}\S*)\s*$")
    surname = pl.when(parts.list.len() >= 2).then(head).otherwise(last_word)
    return surname.str.replace_all(r"[^\p{L}]+", "").fill_null("")


def fingerprint_expr(title: pl.Expr, author: pl.Expr) -> pl.Expr:
    """Polars expression behind fingerprint: "ttl:<title>|<surname>", null without a title."""
    return pl.concat_str(pl.lit("ttl:"), title_expr(title), pl.lit("|"), surname_expr(author))


def normalize_title(title: object) -> str | None:
    """Comparable form of a title: no diacritics, case, subtitle, statement of
    responsibility, punctuation or leading article; None if nothing is left.

    "The Lord of the Rings : the fellowship of the ring /" -> "lord of the rings"
    """
    return _scalar(title_expr, title)


def first_author_surname(author: object) -> str:
    """Surname of the first author, lower-case letters only; "" if none.

    "Singer, Peter, 1946- author." -> "singer"; "Peter Singer and Jim Mason" -> "singer"
    """
    return _scalar(surname_expr, author)


def fingerprint(title: object, author: object) -> str | None:
    """Work fingerprint "ttl:<normalized title>|<surname>", or None without a usable title."""
    return _scalar(fingerprint_expr, title, author)


# ------------------------------------------------------------- frame identifiers


def _column(df: pl.DataFrame, col: str) -> pl.Series:
    """The column, or all nulls if the frame lacks it or it cannot hold text (nested)."""
    if col in df.columns and not (df[col].dtype.is_nested() or df[col].dtype == pl.Object):
        return df[col]
    return pl.Series(col, [None] * df.height, dtype=pl.String)


def _identifier_text(series: pl.Series, zero_pad: int | None = None) -> pl.Series:
    """Identifier column as strings.  Numeric columns (spreadsheet exports) print
    without a float tail, and zero_pad restores leading zeros they lost."""
    if series.dtype.is_numeric():
        text = series.cast(pl.Int64, strict=False).cast(pl.String)
        return text.str.zfill(zero_pad) if zero_pad else text
    return series.cast(pl.String, strict=False)


def _map_distinct(values: pl.Series, fn: Callable[[str], str | None]) -> pl.Series:
    """Apply a Python function once per distinct non-null string and broadcast back."""
    distinct = values.drop_nulls().unique()
    mapped = pl.Series([fn(v) for v in distinct.to_list()], dtype=pl.String)
    return values.replace_strict(distinct, mapped, default=None, return_dtype=pl.String)


def add_identifier_columns(
    df: pl.DataFrame,
    isbn_col: str = "isbn",
    issn_col: str = "issn",
    oclc_col: str = "oclc_number",
) -> pl.DataFrame:
    """Add isbn13_list (List[str], empty when none), invalid_isbn_count (UInt32),
    issn_norm and oclc_norm.  Missing source columns are treated as all null."""
    isbns = _parse_isbn_cells(_identifier_text(_column(df, isbn_col), zero_pad=10))
    oclc = pl.DataFrame({"oclc": _identifier_text(_column(df, oclc_col))}).select(oclc_expr(pl.col("oclc")))
    return df.with_columns(
        isbns["isbn13_list"],
        isbns["invalid_isbn_count"],
        _map_distinct(_identifier_text(_column(df, issn_col), zero_pad=8), normalize_issn).alias("issn_norm"),
        oclc.to_series().alias("oclc_norm"),
    )


# --------------------------------------------------------------------- work keys


def _component_minima(n_nodes: int, a: pl.Series, b: pl.Series) -> pl.Series:
    """Label every node 0..n_nodes-1 with the smallest node id of its connected
    component, given undirected edges a[i]-b[i].

    Min-label hooking with pointer jumping: each round hooks every root onto the
    smallest root it shares an edge with, then flattens the trees so every node points
    at its root.  Labels only decrease and stay inside the component, so at the fixed
    point (no edge joins two roots) each component carries its minimum.  A few rounds
    of vectorized gathers suffice even for a single chain of a million records.
    """
    parent = pl.int_range(n_nodes, dtype=pl.UInt32, eager=True)
    while True:
        # parent is flat here (every node points at a root), so both ends are roots.
        hooks = (
            pl.DataFrame({"pa": parent.gather(a), "pb": parent.gather(b)})
            .select(hi=pl.max_horizontal("pa", "pb"), lo=pl.min_horizontal("pa", "pb"))
            .filter(pl.col("hi") != pl.col("lo"))
            .group_by("hi")
            .agg(pl.col("lo").min())
        )
        if hooks.is_empty():
            return parent
        parent = parent.scatter(hooks["hi"], hooks["lo"])
        while True:
            grandparent = parent.gather(parent)
            if (grandparent == parent).all():
                break
            parent = grandparent


def _isbn_work_keys(isbn_lists: pl.Series) -> pl.Series:
    """Per row: "isbn:" + smallest ISBN-13 among all rows transitively sharing an ISBN
    with it; null for rows without ISBNs.  Independent of row order: nodes are numbered
    in ISBN order and each component is labelled with its smallest node."""
    pairs = (
        pl.DataFrame({"isbn": isbn_lists})
        .with_row_index("row")
        .explode("isbn")
        # 13 digits fit an Int64 and sort like the strings; integers join and rank faster.
        .with_columns(pl.col("isbn").cast(pl.Int64, strict=False))
        .drop_nulls("isbn")
        .with_columns((pl.col("isbn").rank("dense") - 1).cast(pl.UInt32).alias("node"))
        # Star edges: every ISBN of a record to the record's smallest ISBN.
        .with_columns(pl.col("node").min().over("row").alias("anchor"))
    )
    nodes = pairs["isbn"].unique().sort()
    labels = _component_minima(nodes.len(), pairs["node"], pairs["anchor"])
    rows = pairs.unique("row")
    keys = "isbn:" + nodes.gather(labels.gather(rows["anchor"])).cast(pl.String)
    return pl.Series("isbn", [None] * isbn_lists.len(), dtype=pl.String).scatter(rows["row"], keys)


def _fingerprint_keys(titles: pl.Series, authors: pl.Series, needed: pl.Series) -> pl.Series:
    """ "fp:" + 16 hex digits of sha1(fingerprint) for the needed rows, else null.

    sha1 rather than Polars' hash, which is not stable across versions.  Fingerprints
    are computed once per distinct (title, author) pair.
    """
    rows = pl.DataFrame({"title": titles, "author": authors}).with_row_index("row").filter(needed)
    distinct = (
        rows.select("title", "author")
        .unique()
        .with_columns(fingerprint_expr(pl.col("title"), pl.col("author")).alias("fp"))
    )
    distinct = distinct.with_columns(
        _map_distinct(distinct["fp"], lambda fp: "fp:" + hashlib.sha1(fp.encode("utf-8")).hexdigest()[:16])
    )
    keys = rows.join(distinct, on=["title", "author"], how="left", nulls_equal=True)
    return pl.Series("fp", [None] * titles.len(), dtype=pl.String).scatter(keys["row"], keys["fp"])


def assign_work_keys(
    df: pl.DataFrame,
    *,
    isbn_col: str = "isbn",
    issn_col: str = "issn",
    oclc_col: str = "oclc_number",
    title_col: str = "title",
    author_col: str = "author",
) -> pl.DataFrame:
    """Add work_key (str, null when unmatched) and match_method (one of MATCH_METHODS).

    Precedence: ISBN ("isbn:" + smallest ISBN-13 of the connected component, so print
    and electronic manifestations linked by any record listing both share one key),
    then ISSN ("issn:NNNN-NNNC"), OCLC ("oclc:<n>"), title/author fingerprint
    ("fp:<hash>").  Keys depend only on values, never on row order, so they are
    comparable across runs and institutions.  The columns of add_identifier_columns
    are reused when all present, else computed from the raw columns (and not added).
    """
    ids = (
        df
        if all(c in df.columns for c in IDENTIFIER_COLUMNS)
        else add_identifier_columns(df, isbn_col=isbn_col, issn_col=issn_col, oclc_col=oclc_col)
    )
    isbn_key = _isbn_work_keys(ids["isbn13_list"])
    needs_fp = isbn_key.is_null() & ids["issn_norm"].is_null() & ids["oclc_norm"].is_null()
    fp_key = _fingerprint_keys(
        _column(df, title_col).cast(pl.String, strict=False),
        _column(df, author_col).cast(pl.String, strict=False),
        needs_fp,
    )
    keys = pl.DataFrame({"isbn": isbn_key, "issn": ids["issn_norm"], "oclc": ids["oclc_norm"], "fp": fp_key})
    return df.with_columns(
        keys.select(
            pl.coalesce("isbn", "issn:" + pl.col("issn"), "oclc:" + pl.col("oclc"), "fp").alias("work_key"),
            pl.when(pl.col("isbn").is_not_null())
            .then(pl.lit("isbn"))
            .when(pl.col("issn").is_not_null())
            .then(pl.lit("issn"))
            .when(pl.col("oclc").is_not_null())
            .then(pl.lit("oclc"))
            .when(pl.col("fp").is_not_null())
            .then(pl.lit("fingerprint"))
            .otherwise(pl.lit("unmatched"))
            .alias("match_method"),
        )
    )


def match_report(df: pl.DataFrame) -> dict:
    """Counts and rates per match method, and the number of distinct works:
    {"rows": n, "works": n, "counts": {method: n}, "rates": {method: share of rows}}.

    Takes the output of assign_work_keys, or a raw frame (keys are assigned first).
    """
    if "match_method" not in df.columns:
        df = assign_work_keys(df)
    counts = dict.fromkeys(MATCH_METHODS, 0)
    counts.update(dict(df.group_by("match_method").len().iter_rows()))
    rows = df.height
    return {
        "rows": rows,
        "works": df["work_key"].drop_nulls().n_unique(),
        "counts": counts,
        "rates": {method: (n / rows if rows else 0.0) for method, n in counts.items()},
    }
