"""The batch last-copy check: a list from the library system (a weeding candidate list, say) back
with, per row, the community work it matches, how many institutions of the region hold it (banded
as released), who committed to retain it, and a verdict under the institution's rule.

Every input row comes back, in order, with its columns first and unchanged (all read as text),
then the added columns (ADDED). Rows are matched to community works the way the import keys
works (analytics/ingest/identifiers.py): any ISBN of the row that the release lists for a work
(so a print ISBN finds the work the community keys by its e-book), else the ISSN, the OCLC number,
and the title and author fingerprint. Only the current release (what every member sees) and the
institution's own retention commitments are read: a holding count below K_TITLE is "fewer than K".

The verdict: "keep: you committed" (the institution's own current commitment) before "safe to
withdraw" (held by at least `many_holders` of the region, or retained by at least K_TITLE
institutions of the region) before "keep: scarce". A row whose identifiers match no released work is
held by fewer than K_TITLE institutions of the region (or none): "keep: scarce", listed among the
unmatched rows with the reason; one that shares an identifier with one of your own current
commitments is "keep: you committed" all the same. A row without a usable identifier: "not
matched", with the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from analytics.core import access
from analytics.core.access import Principal
from analytics.core.schema import normalize_column_name, region_name
from analytics.ingest.identifiers import add_identifier_columns, fingerprint_expr
from analytics.ingest.local import institution_dir
from analytics.ingest.reader import InputError, RawTable, read_table
from analytics.ingest.run import SYNONYMS
from analytics.release.handle import Release
from analytics.views.deselection import many_holders
from analytics.views.holders import band_expr, holders_in_region

IDENTIFIERS = ("isbn", "issn", "oclc_number", "title", "author")
# Header names of library-system exports beyond the import's (analytics/ingest/run.py), normalized.
EXTRA_SYNONYMS = {
    "isbn": ("isbn_10", "isbn10", "ean", "isbn_issn", "isbn_s"),
    "issn": ("eissn", "e_issn", "issn_s"),
    "oclc_number": ("oclc_num", "oclcnum", "oclc_control_number", "ocolc_number", "oclc_s"),
    "title": ("main_title", "title_statement", "245a"),
    "author": ("author_name", "authors", "name", "100a"),
}
ADDED = ("Matched work", "Match", "Holders in region", "Retained in region", "Your commitment", "Verdict", "Reason")
COMMITTED, SAFE, SCARCE, NOT_MATCHED = "keep: you committed", "safe to withdraw", "keep: scarce", "not matched"
VERDICTS = (COMMITTED, SAFE, SCARCE, NOT_MATCHED)
MATCH_LABELS = {"isbn": "ISBN", "issn": "ISSN", "oclc": "OCLC number", "fingerprint": "title and author",
                "work_key": "work key"}
NOT_IN_RELEASE = "not in this release"
COMMITMENTS_FILE = "retention_commitments.parquet"


@dataclass
class LastCopyResult:
    rows: pl.DataFrame          # the input columns, then ADDED (named as in `added`)
    mapping: dict[str, str]     # canonical identifier -> the input column read for it
    summary: dict               # read, matched, unmatched, verdicts {verdict: rows}
    unmatched: pl.DataFrame     # Row (how to find it in the file), Reason, then the input columns
    added: dict[str, str] = field(default_factory=dict)  # ADDED name -> its column name in `rows`


def read_list(path: str | Path, display_name: str | None = None) -> RawTable:
    """The uploaded list as text (CSV, TSV, Excel or Parquet; encodings, delimiters and BOMs as the
    import reads them): no ISBN becomes a number, no leading zero is lost."""
    return read_table(path, display_name=display_name)


def detect_columns(columns: list[str]) -> dict[str, str]:
    """canonical identifier -> input column, by name: the exact name first, then known synonyms."""
    normalized: dict[str, str] = {}
    for column in columns:
        normalized.setdefault(normalize_column_name(column), column)
    found: dict[str, str] = {}
    for canonical in IDENTIFIERS:
        for candidate in (canonical, *SYNONYMS.get(canonical, ()), *EXTRA_SYNONYMS.get(canonical, ())):
            source = normalized.get(candidate)
            if source is not None and source not in found.values():
                found[canonical] = source
                break
    return found


def resolve_mapping(columns: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The detected columns with `overrides` (canonical -> input column; "" drops one) applied."""
    mapping = detect_columns(columns)
    for canonical, source in (overrides or {}).items():
        if canonical not in IDENTIFIERS:
            raise InputError(f"--map {canonical}=...: the check reads {', '.join(IDENTIFIERS)}.")
        if not source:
            mapping.pop(canonical, None)
            continue
        if source not in columns:
            raise InputError(f"--map {canonical}={source}: the file has no column {source!r} "
                             f"(its columns: {', '.join(columns)}).")
        mapping[canonical] = source
    if not mapping:
        raise InputError("no identifier column found: the list needs a column of ISBNs, ISSNs, OCLC numbers or "
                         f"titles (its columns: {', '.join(columns)}). Name one with --map isbn=COLUMN "
                         "(or title=, issn=, oclc_number=, author=).")
    return mapping


def _fingerprint_keys(frame: pl.DataFrame) -> pl.Series:
    """"fp:" + sha1 of the title and author fingerprint, as the import keys works without ids."""
    distinct = (frame.select("title", "author").unique()
                .with_columns(fingerprint_expr(pl.col("title"), pl.col("author")).alias("fp")))
    # Hashed in Python over the distinct values, not with map_elements (a Python function called from
    # Polars' thread pool deadlocked when several sessions ran one at once).
    distinct = distinct.with_columns(pl.Series("fp", [
        None if fp is None else "fp:" + hashlib.sha1(fp.encode("utf-8")).hexdigest()[:16]
        for fp in distinct["fp"].to_list()], dtype=pl.String))
    return frame.join(distinct, on=["title", "author"], how="left", nulls_equal=True,
                      maintain_order="left")["fp"]


def identifier_keys(ids: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(parsed, keys) of the rows of `ids` (row, isbn, issn, oclc_number, title, author, optionally
    work_key): the parsed identifier columns, and every key a row can be matched on as rows of
    row, method, rank (the order a match is preferred in), key (a valid ISBN-13 for "isbn";
    "issn:…", "oclc:…", the title and author fingerprint "fp:…", or the row's own work key)."""
    parsed = add_identifier_columns(ids)
    parsed = parsed.with_columns(_fingerprint_keys(parsed).alias("fp_key"))
    keys = pl.concat([
        parsed.select("row", pl.lit("isbn").alias("method"), pl.lit(1).alias("rank"),
                      pl.col("isbn13_list").alias("key")).explode("key"),
        parsed.select("row", pl.lit("issn").alias("method"), pl.lit(2).alias("rank"),
                      ("issn:" + pl.col("issn_norm")).alias("key")),
        parsed.select("row", pl.lit("oclc").alias("method"), pl.lit(3).alias("rank"),
                      ("oclc:" + pl.col("oclc_norm")).alias("key")),
        parsed.select("row", pl.lit("fingerprint").alias("method"), pl.lit(4).alias("rank"),
                      pl.col("fp_key").alias("key")),
        *([parsed.select("row", pl.lit("work_key").alias("method"), pl.lit(5).alias("rank"),
                         pl.col("work_key").cast(pl.String).alias("key"))] if "work_key" in parsed.columns else []),
    ]).drop_nulls("key")
    return parsed, keys


def community_works(release: Release, ids: pl.DataFrame) -> pl.DataFrame:
    """row, work_key, method of the rows of `ids` (row, isbn, issn, oclc_number, title, author and
    optionally work_key) that match a work of the release's titles; plus invalid_isbn_count per row."""
    return _match(release, *identifier_keys(ids))


def _match(release: Release, parsed: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    isbns = keys.filter(pl.col("method") == "isbn").select("row", pl.col("key").alias("isbn"))
    keys = keys.filter(pl.col("method") != "isbn")
    cur = release.cursor()
    cur.register("list_isbns", isbns)
    cur.register("list_keys", keys)
    matched = cur.sql(
        """
        SELECT row, work_key, method FROM (
            SELECT l.row, min(t.work_key) AS work_key, 'isbn' AS method, 1 AS rank
            FROM list_isbns l JOIN title_isbns t ON t.isbn = l.isbn GROUP BY l.row
            UNION ALL
            SELECT l.row, t.work_key, l.method, l.rank
            FROM list_keys l JOIN (SELECT DISTINCT work_key FROM titles) t ON t.work_key = l.key
        )
        QUALIFY row_number() OVER (PARTITION BY row ORDER BY rank) = 1
        """
    ).pl()
    return parsed.select("row", "invalid_isbn_count").join(matched, on="row", how="left")


def released_retention(release: Release, region: str, work_keys: pl.Series) -> pl.DataFrame | None:
    """work_key, institutions_committed, programs, retained_until of the release's retention table in
    `region` for these works (rows exist only where K_TITLE or more committed); None when the release
    has no retention table (a release made before it: opening one may give it an empty table)."""
    cur = release.cursor()
    path = release.path / "retention.parquet"
    loaded = cur.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'retention'").fetchall()[0][0]
    if loaded:
        released = path.exists() or cur.sql("SELECT count(*) FROM retention").fetchall()[0][0] > 0
    else:
        released = path.exists()
    if not released:
        return None
    cur.register("wanted_keys", pl.DataFrame({"work_key": work_keys.drop_nulls().unique()}, schema={"work_key": pl.String}))
    source = "retention" if loaded else "read_parquet($path)"
    return cur.sql(
        f"""
        SELECT r.work_key, r.institutions_committed, r.programs, r.retained_until
        FROM {source} r JOIN wanted_keys w ON w.work_key = r.work_key
        WHERE r.region = $region
        """,
        params={"region": region, **({} if loaded else {"path": str(path)})},
    ).pl()


COMMITMENT_COLUMNS = {"isbn": pl.String, "issn": pl.String, "oclc_number": pl.String, "title": pl.String,
                      "author": pl.String, "work_key": pl.String, "program": pl.String}


def current_local_commitments(actor: Principal, release: Release, data_dir: Path, code: str) -> pl.DataFrame | None:
    """The institution's own current retention commitments (retain_until empty or not before the
    release's as-of date) with a row number and COMMITMENT_COLUMNS; None when there are none."""
    access.require_member(actor, code, "the local retention commitments")
    path = institution_dir(data_dir, code) / COMMITMENTS_FILE
    if not path.exists():
        return None
    local = pl.read_parquet(path)
    as_of = date.fromisoformat(release.manifest["as_of"])
    local = local.with_columns(
        *(pl.col(c).cast(t) if c in local.columns else pl.lit(None, dtype=t).alias(c)
          for c, t in COMMITMENT_COLUMNS.items()),
        (pl.col("retain_until").cast(pl.Date, strict=False) if "retain_until" in local.columns
         else pl.lit(None, dtype=pl.Date)).alias("retain_until"),
    ).filter(pl.col("retain_until").is_null() | (pl.col("retain_until") >= as_of)).with_row_index("row")
    return None if local.is_empty() else local


def _programs_and_until() -> list[pl.Expr]:
    return [pl.col("program").drop_nulls().unique().sort().alias("your_programs"),
            pl.when(pl.col("retain_until").is_null().any()).then(pl.lit(None, dtype=pl.Date))
            .otherwise(pl.col("retain_until").max()).cast(pl.String).alias("your_until")]


def own_commitments(actor: Principal, release: Release, data_dir: Path, code: str) -> pl.DataFrame:
    """work_key (community), your_programs, your_until (None: indefinitely) of the institution's own
    current retention commitments."""
    empty = pl.DataFrame(schema={"work_key": pl.String, "your_programs": pl.List(pl.String),
                                 "your_until": pl.String})
    local = current_local_commitments(actor, release, data_dir, code)
    if local is None:
        return empty
    matched = community_works(release, local.select("row", *COMMITMENT_COLUMNS)).drop_nulls("work_key")
    return (local.join(matched.select("row", "work_key"), on="row", suffix="_community")
            .group_by(pl.col("work_key_community").alias("work_key"))
            .agg(*_programs_and_until()))


def own_commitments_by_identifier(actor: Principal, release: Release, data_dir: Path, code: str,
                                  list_keys: pl.DataFrame) -> pl.DataFrame:
    """row, your_programs, your_until for the rows of a list (`list_keys`: identifier_keys of it) that
    share an identifier with one of the institution's own current commitments: a work the
    community data does not have can still be one you committed to retain."""
    empty = pl.DataFrame(schema={"row": pl.UInt32, "your_programs": pl.List(pl.String), "your_until": pl.String})
    local = current_local_commitments(actor, release, data_dir, code)
    if local is None or list_keys.is_empty():
        return empty
    _, keys = identifier_keys(local.select(pl.col("row").cast(pl.UInt32), *COMMITMENT_COLUMNS))
    pairs = (list_keys.select("row", "method", "key")
             .join(keys.select(pl.col("row").alias("commitment"), "method", "key"), on=["method", "key"])
             .select("row", "commitment").unique())
    if pairs.is_empty():
        return empty
    return (pairs.join(local.select(pl.col("row").cast(pl.UInt32).alias("commitment"), "program", "retain_until"),
                       on="commitment")
            .group_by("row").agg(*_programs_and_until()))


def _until(col: pl.Expr) -> pl.Expr:
    """"until 2035" (a year or a date), or "indefinitely" when empty."""
    return pl.when(col.is_null()).then(pl.lit("indefinitely")).otherwise("until " + col.cast(pl.String))


def _programs(col: pl.Expr) -> pl.Expr:
    """"WEST, EAST; " before the until-text, or nothing without programs."""
    return pl.when(col.list.len() > 0).then(col.list.join(", ") + "; ").otherwise(pl.lit(""))


def _added_names(columns: list[str]) -> dict[str, str]:
    """ADDED names, made distinct from the input's own columns (a list checked twice keeps both)."""
    names = {}
    for name in ADDED:
        unique = name
        while unique in columns or unique in names.values():
            unique += " (last-copy check)" if unique == name else "'"
        names[name] = unique
    return names


def check(actor: Principal, release: Release, data_dir: Path, code: str, region: str, table: RawTable,
          mapping: dict[str, str]) -> LastCopyResult:
    """The last-copy check of every row of `table` for institution `code` in `region`."""
    frame = table.frame
    k_title = release.manifest["privacy"]["K_TITLE"]
    threshold = many_holders(release.manifest, "collection_development", region)
    ids = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
        *((pl.col(mapping[c]).cast(pl.String) if c in mapping else pl.lit(None, dtype=pl.String)).alias(c)
          for c in IDENTIFIERS))
    parsed, keys = identifier_keys(ids)
    works = _match(release, parsed, keys)
    holders = holders_in_region(release, region, works["work_key"])
    retention = released_retention(release, region, works["work_key"])
    mine = own_commitments(actor, release, data_dir, code)
    cur = release.cursor()
    cur.register("matched_keys", works.select("work_key").drop_nulls().unique())
    titles = cur.sql("SELECT t.work_key, any_value(t.title) AS matched_title, any_value(t.author) AS matched_author "
                     "FROM titles t JOIN matched_keys m ON m.work_key = t.work_key GROUP BY t.work_key").pl()
    # Your own commitments: through the community work, else (a work the community data does not
    # have) through an identifier the row shares with the commitment.
    unmatched_keys = keys.join(works.filter(pl.col("work_key").is_null()).select("row"), on="row", how="semi")
    mine_local = own_commitments_by_identifier(actor, release, data_dir, code, unmatched_keys)
    rows = (works.join(ids, on="row").join(holders, on="work_key", how="left")
            .join(titles, on="work_key", how="left").join(mine, on="work_key", how="left")
            .join(mine_local, on="row", how="left", suffix="_local")
            .with_columns(pl.coalesce("your_programs", "your_programs_local").alias("your_programs"),
                          pl.when(pl.col("your_programs").is_not_null()).then(pl.col("your_until"))
                          .otherwise(pl.col("your_until_local")).alias("your_until"))
            .drop("your_programs_local", "your_until_local"))
    if retention is not None:
        rows = rows.join(retention.unique("work_key"), on="work_key", how="left")
    else:
        rows = rows.with_columns(pl.lit(None, dtype=pl.Int64).alias("institutions_committed"),
                                 pl.lit(None, dtype=pl.List(pl.String)).alias("programs"),
                                 pl.lit(None, dtype=pl.Int64).alias("retained_until"))
    rows = rows.sort("row")
    if rows.height != frame.height:
        raise RuntimeError(f"last-copy check: {rows.height} answers for {frame.height} rows")

    matched = pl.col("work_key").is_not_null()
    committed = pl.col("your_programs").is_not_null()
    widely_held = pl.col("institutions_holding").fill_null(0) >= threshold
    retained = pl.col("institutions_committed").fill_null(0) >= k_title
    blank = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")
                              for c in ("isbn", "issn", "oclc_number", "title"))
    retained_text = (pl.lit(NOT_IN_RELEASE) if retention is None else
                     pl.when(pl.col("institutions_committed").is_not_null())
                     .then(band_expr(pl.col("institutions_committed"), k_title)
                           + " (" + _programs(pl.col("programs"))
                           + _until(pl.col("retained_until")) + ")")
                     .otherwise(pl.lit(f"fewer than {k_title} (or none)")))
    holders_text = pl.col("band").fill_null(f"fewer than {k_title}")
    # An invalid ISBN may be a typo of a widely held work: such a row cannot be judged either.
    invalid_only = pl.col("invalid_isbn_count") > 0
    # A row that names a work the community data does not have is held by fewer than K_TITLE institutions
    # of the region (or none): last-copy protection keeps it. Only a row without a usable identifier
    # (or one with an invalid ISBN) cannot be judged.
    verdict = (pl.when(committed).then(pl.lit(COMMITTED))
               .when(~matched & (blank | invalid_only)).then(pl.lit(NOT_MATCHED))
               .when(~matched).then(pl.lit(SCARCE))
               .when(widely_held | retained).then(pl.lit(SAFE)).otherwise(pl.lit(SCARCE)))
    where = region_name(region)
    reason = (
        pl.when(committed).then("you committed to retain it (" + _programs(pl.col("your_programs"))
                                + _until(pl.col("your_until")) + ")"
                                + pl.when(matched).then(pl.lit("")).otherwise(
                                    pl.lit("; not in the community data of this release")))
        .when(~matched & blank).then(pl.lit("no identifier: no ISBN, ISSN, OCLC number or title in this row"))
        .when(~matched & (pl.col("invalid_isbn_count") > 0)
              & pl.col("issn").is_null() & pl.col("oclc_number").is_null() & pl.col("title").is_null())
        .then(pl.lit("invalid ISBN (wrong check digit or length), and no other identifier"))
        .when(~matched & (pl.col("invalid_isbn_count") > 0))
        .then(pl.lit("invalid ISBN (wrong check digit or length); the other identifiers are not in the community data"))
        .when(~matched).then(pl.lit(f"not in the community data of this release: held by fewer than {k_title} "
                                    f"institutions of {where} (or none), or recorded under other identifiers"))
        .when(widely_held).then(pl.lit(f"held by at least {threshold} institutions in {where}, "
                                       f"your rule for widely held"))
        .when(retained).then("retained by " + band_expr(pl.col("institutions_committed"), k_title)
                             + f" institutions in {where}")
        .otherwise(pl.lit(f"held by fewer than {threshold} institutions in {where} and retained by fewer than "
                          f"{k_title}: coordinate before withdrawing"))
    )
    names = _added_names(frame.columns)
    added = rows.select(
        pl.when(matched).then(pl.col("matched_title")).alias(names["Matched work"]),
        pl.col("method").replace_strict(MATCH_LABELS, default=None, return_dtype=pl.String).alias(names["Match"]),
        pl.when(matched | ~(blank | invalid_only)).then(holders_text).alias(names["Holders in region"]),
        pl.when(matched).then(retained_text).alias(names["Retained in region"]),
        pl.when(committed).then("yes (" + _programs(pl.col("your_programs")) + _until(pl.col("your_until"))
                                + ")").when(matched).then(pl.lit("no")).alias(names["Your commitment"]),
        verdict.alias(names["Verdict"]),
        reason.alias(names["Reason"]),
    )
    result = pl.concat([frame, added], how="horizontal")
    counts = dict(result.group_by(names["Verdict"]).len().iter_rows())
    verdicts = {v: counts.get(v, 0) for v in VERDICTS}
    unmatched_rows = result.with_row_index("_n", offset=1).filter(rows["work_key"].is_null())
    unmatched = unmatched_rows.select(
        pl.Series("Row", [table.where(n) for n in unmatched_rows["_n"].to_list()], dtype=pl.String),
        pl.col(names["Reason"]).alias("Reason"), *frame.columns)
    summary = {"read": frame.height, "matched": frame.height - unmatched_rows.height,
               "unmatched": unmatched_rows.height, "verdicts": verdicts, "region": region,
               "many_holders": threshold, "k_title": k_title, "retention_released": retention is not None}
    return LastCopyResult(result, mapping, summary, unmatched, names)


def run(actor: Principal, release: Release, data_dir: Path, code: str, region: str, path: str | Path,
        overrides: dict[str, str] | None = None, display_name: str | None = None) -> LastCopyResult:
    """Read the list at `path`, resolve its identifier columns, and check it."""
    table = read_list(path, display_name)
    return check(actor, release, data_dir, code, region, table, resolve_mapping(table.frame.columns, overrides))


# ------------------------------------------------------------------------- files


def csv_bytes(result: LastCopyResult) -> bytes:
    """The rows as CSV (UTF-8), text a spreadsheet would run as a formula written with a leading '."""
    from analytics.core.output import safe_csv_frame

    return safe_csv_frame(result.rows).write_csv().encode("utf-8")


def excel_bytes(result: LastCopyResult) -> bytes:
    """The rows as an Excel workbook of text cells (analytics/core/xlsx.py: an ISBN stays text, a
    cell starting with = is not a formula; ten times faster than polars' write_excel)."""
    from analytics.core.xlsx import text_workbook

    try:
        return text_workbook(result.rows, "Last-copy check")
    except ValueError as exc:
        raise InputError(f"{exc} Download the CSV instead.") from None


def records(result: LastCopyResult) -> list[dict]:
    return result.rows.to_dicts()
