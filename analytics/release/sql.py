"""The cross-institution aggregations of a release, written once as SQL.

Each statement reads the contribution tables as views with the contributor's token and
region added (holdings_c, loans_c, e_usage_c, reading_lists_c, kpis_c, held_works_c; `tid`
is an integer per contributor), the global work map (work_map, work_ids) and named
parameters ($k_title, $as_of_month, $window_start and their integer forms).

The text is DuckDB's dialect. DuckDB runs it by default; `publish --engine spark` runs the
same text on Apache Spark after SQLGlot has transpiled it (spark_sql.py). So that one text
means the same on both engines, the statements keep to a portable subset, and
tests/release/test_publish_engines.py holds them to it:
- no ordered aggregate: write list_sort(list(x)), not list(x ORDER BY x) (the order
  would be dropped silently);
- array_length(list), not len(list) (Spark's length() takes strings only);
- no table function inside an expression: unnest() in a subquery, then use its column;
- a ratio divides a DOUBLE (CAST(n AS DOUBLE) / d), never a DECIMAL literal such as 100.0
  (Spark would compute it in DECIMAL and round differently);
- quantile_cont(x, p) in its two-argument form (becomes Spark's exact percentile(x, p));
- hash() is 64-bit on both engines (Spark's xxhash64).

Every title-level row states how many institutions contribute to it, and only rows
where that count is at least K_TITLE go on to the disclosure layer (disclosure.py), which
perturbs each count and withholds it again when the perturbed count falls below K_TITLE.
Next to each count a statement emits `<name>_key`, the bitwise XOR of the record keys (`rkey`)
of the institutions counted: the cell key the perturbation is drawn from (XOR rather than
the ABS sum: the same set fingerprint, and an aggregate that stays a BIGINT on both engines). The *_key columns
never reach a release file (publish writes the release schema's columns only).
"""

from __future__ import annotations

import re


def used_params(sql: str, params: dict) -> dict:
    """The parameters a statement names: DuckDB refuses named parameters it does not use."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}

# The community work map. WORK_KEYS lists every local work key with all its ISBNs;
# publish.global_work_map clusters them into community keys (in Python, polars), numbers
# them (wid) and marks keys that several local keys merge into; the result is registered as
# work_map_frame, from which WORK_MAP and WORK_IDS are materialised.
WORK_KEYS = """
SELECT work_key, list_sort(list_distinct(flatten(list(isbns)))) AS isbn13_list
FROM (SELECT work_key, isbns FROM holdings_c UNION ALL SELECT work_key, isbns FROM e_usage_c
      UNION ALL SELECT work_key, isbns FROM retention_c)
GROUP BY work_key
"""

WORK_MAP = """
CREATE OR REPLACE TEMP TABLE work_map AS SELECT local_key, work_key, wid, merged FROM work_map_frame
"""

WORK_IDS = "CREATE OR REPLACE TEMP TABLE work_ids AS SELECT DISTINCT wid, work_key FROM work_map"

# Work keys and months are grouped as integers (wid, yyyymm): grouping tens of millions
# of rows by strings is several times slower. work_map carries, per local key, the
# community key, its integer id and whether several local keys merge into it; work_ids
# maps the integer back. Within one contribution a local key has one row per month, so
# only merged keys need a per-contributor sum before contributors are counted.

# One row per work, region and month: acquisition months within the window, plus the
# as-of month as the current snapshot. Holding = still holds a copy and acquired it by
# then (or the acquisition date is unknown).
HOLDINGS = """
WITH held AS (
    SELECT m.wid, h.region, h.tid, h.rkey,
           min(CAST(replace(h.first_acquired_month, '-', '') AS INTEGER)) AS acquired
    FROM holdings_c h JOIN work_map m ON h.work_key = m.local_key
    WHERE h.copies_held > 0
    GROUP BY m.wid, h.region, h.tid, h.rkey
), held_as_of AS (
    SELECT * FROM held WHERE acquired IS NULL OR acquired <= $as_of_month_int
), months AS (
    SELECT DISTINCT wid, region, acquired AS mo FROM held_as_of
    WHERE acquired IS NOT NULL AND acquired >= $window_start_int
    UNION
    SELECT DISTINCT wid, region, $as_of_month_int AS mo FROM held_as_of
), released AS (
    SELECT s.wid, s.region, s.mo,
           count(*) FILTER (WHERE p.acquired IS NULL OR p.acquired <= s.mo) AS institutions_holding,
           count(*) FILTER (WHERE p.acquired = s.mo) AS institutions_acquiring,
           bit_xor(p.rkey) FILTER (WHERE p.acquired IS NULL OR p.acquired <= s.mo) AS holding_key,
           bit_xor(p.rkey) FILTER (WHERE p.acquired = s.mo) AS acquiring_key
    FROM months s JOIN held_as_of p ON s.wid = p.wid AND s.region = p.region
    GROUP BY s.wid, s.region, s.mo
    HAVING count(*) FILTER (WHERE p.acquired IS NULL OR p.acquired <= s.mo) >= $k_title
)
SELECT k.work_key, r.region, printf('%04d-%02d', r.mo // 100, r.mo % 100) AS month,
       r.institutions_holding, r.institutions_acquiring, r.holding_key, r.acquiring_key
FROM released r JOIN work_ids k ON r.wid = k.wid
"""

LOANS = """
WITH mapped AS (
    SELECT m.wid, m.merged, l.region, l.tid, l.rkey, CAST(replace(l.month, '-', '') AS INTEGER) AS mo, l.loans
    FROM loans_c l JOIN work_map m ON l.work_key = m.local_key
    WHERE l.month <= $as_of_month AND l.month >= $window_start
), per_contributor AS (
    SELECT wid, region, mo, tid, rkey, loans FROM mapped WHERE NOT merged
    UNION ALL
    SELECT wid, region, mo, tid, rkey, sum(loans) FROM mapped WHERE merged GROUP BY wid, region, mo, tid, rkey
), released AS (
    SELECT wid, region, mo, sum(loans) AS loans, count(*) AS institutions_lending, bit_xor(rkey) AS lending_key
    FROM per_contributor GROUP BY wid, region, mo
    HAVING count(*) >= $k_title
)
SELECT k.work_key, r.region, printf('%04d-%02d', r.mo // 100, r.mo % 100) AS month, r.loans,
       r.institutions_lending, r.lending_key
FROM released r JOIN work_ids k ON r.wid = k.wid
"""

# A contribution has one row per platform, so e-usage is always summed per contributor first.
# Contribution rows are those with usage (their noisy count may be 0).
E_USAGE = """
WITH per_contributor AS (
    SELECT m.wid, u.region, CAST(replace(u.month, '-', '') AS INTEGER) AS mo, u.metric_type, u.tid, u.rkey,
           sum(u.count) AS count
    FROM e_usage_c u JOIN work_map m ON u.work_key = m.local_key
    WHERE u.month <= $as_of_month AND u.month >= $window_start
    GROUP BY m.wid, u.region, mo, u.metric_type, u.tid, u.rkey
), released AS (
    SELECT wid, region, mo, metric_type, sum(count) AS count, count(*) AS institutions, bit_xor(rkey) AS institutions_key
    FROM per_contributor GROUP BY wid, region, mo, metric_type
    HAVING count(*) >= $k_title
)
SELECT k.work_key, r.region, printf('%04d-%02d', r.mo // 100, r.mo % 100) AS month, r.metric_type, r.count,
       r.institutions, r.institutions_key
FROM released r JOIN work_ids k ON r.wid = k.wid
"""

READING_LISTS = """
WITH per_contributor AS (
    SELECT m.wid, r.region, r.term, r.tid, r.rkey, sum(r.lists) AS lists
    FROM reading_lists_c r JOIN work_map m ON r.work_key = m.local_key
    GROUP BY m.wid, r.region, r.term, r.tid, r.rkey
), released AS (
    SELECT wid, region, term, sum(lists) AS lists, count(*) AS institutions, bit_xor(rkey) AS institutions_key
    FROM per_contributor GROUP BY wid, region, term
    HAVING count(*) >= $k_title
)
SELECT k.work_key, r.region, r.term, r.lists, r.institutions, r.institutions_key
FROM released r JOIN work_ids k ON r.wid = k.wid
"""

# What peers acquire and teach, per peer group of a region: 'all', 'type=<type>' and
# 'size=<band>'. A group other than 'all' is used only when it and the rest of the region
# each have at least K_BENCH members, so comparing a group with 'all' never isolates
# fewer than K_BENCH institutions. A row goes on when at least K_TITLE members hold the work
# or list it; the disclosure layer perturbs each count and withholds (null) any below K_TITLE.
PEER_SELECTION = """
WITH members AS (
    SELECT DISTINCT tid, rkey, region, type, size_band FROM holdings_c
), groups AS (
    SELECT tid, rkey, region, 'all' AS peer_group FROM members
    UNION ALL SELECT tid, rkey, region, 'type=' || type FROM members
    UNION ALL SELECT tid, rkey, region, 'size=' || size_band FROM members
), sizes AS (
    SELECT region, peer_group, count(*) AS group_size FROM groups GROUP BY region, peer_group
), usable AS (
    SELECT s.region, s.peer_group, s.group_size FROM sizes s
    JOIN (SELECT region, count(*) AS n FROM members GROUP BY region) r ON s.region = r.region
    WHERE s.peer_group = 'all' OR (s.group_size >= $k_bench AND r.n - s.group_size >= $k_bench)
), held AS (
    SELECT m.wid, h.tid, min(CAST(replace(h.first_acquired_month, '-', '') AS INTEGER)) AS acquired
    FROM holdings_c h JOIN work_map m ON h.work_key = m.local_key
    WHERE h.copies_held > 0
    GROUP BY m.wid, h.tid
), listed AS (
    SELECT DISTINCT m.wid, r.tid
    FROM reading_lists_c r JOIN work_map m ON r.work_key = m.local_key
    WHERE substr(r.term, 1, 4) >= $lists_since
), per_work AS (
    SELECT coalesce(h.wid, l.wid) AS wid, coalesce(h.tid, l.tid) AS tid,
           h.wid IS NOT NULL AS holds, h.acquired >= $year_ago_int AS acquired_recently, l.wid IS NOT NULL AS lists
    FROM held h FULL JOIN listed l ON h.wid = l.wid AND h.tid = l.tid
), counted AS (
    SELECT p.wid, g.region, g.peer_group,
           count(*) FILTER (WHERE p.holds) AS holding,
           count(*) FILTER (WHERE p.acquired_recently) AS acquired_12m,
           count(*) FILTER (WHERE p.lists) AS listing,
           bit_xor(g.rkey) FILTER (WHERE p.holds) AS holding_key,
           bit_xor(g.rkey) FILTER (WHERE p.acquired_recently) AS acquired_key,
           bit_xor(g.rkey) FILTER (WHERE p.lists) AS listing_key
    FROM per_work p JOIN groups g ON p.tid = g.tid
    JOIN usable u ON g.region = u.region AND g.peer_group = u.peer_group
    GROUP BY p.wid, g.region, g.peer_group
    HAVING count(*) FILTER (WHERE p.holds) >= $k_title OR count(*) FILTER (WHERE p.lists) >= $k_title
)
SELECT k.work_key, c.region, c.peer_group, u.group_size, c.holding AS institutions_holding,
       c.acquired_12m AS institutions_acquired_12m, c.listing AS institutions_listing,
       c.holding_key, c.acquired_key, c.listing_key
FROM counted c JOIN work_ids k ON c.wid = k.wid
JOIN usable u ON c.region = u.region AND c.peer_group = u.peer_group
"""

# Shared-print retention per work and region: the institutions with a current commitment (retained
# until the as-of year or later, or indefinitely), released where at least K_TITLE commit; the
# disclosure layer perturbs the count like every other. retained_until is the latest year Y such
# that at least K_TITLE of the committing institutions retain the work until Y or later: the
# K_TITLE-th latest of their years (an institution's year is the latest of its commitments to the
# work, indefinite counting as later than any year), null when that one is indefinite. It is
# therefore never one institution's own date unless K_TITLE-1 others retain at least as long.
# Programs are released by RETENTION_PROGRAMS, each only where at least K_TITLE of the row's
# committing institutions name it (perturbed and thresholded the same way), and joined in at publish.
RETENTION = """
WITH current_commitments AS (
    SELECT m.wid, r.region, r.tid, r.rkey, r.program, r.retain_until_year AS until
    FROM retention_c r JOIN work_map m ON r.work_key = m.local_key
    WHERE r.retain_until_year IS NULL OR r.retain_until_year >= $as_of_year
), per_institution AS (
    SELECT wid, region, tid, rkey,
           CASE WHEN count(*) FILTER (WHERE until IS NULL) > 0 THEN 999999 ELSE max(until) END AS until
    FROM current_commitments GROUP BY wid, region, tid, rkey
), ranked AS (
    SELECT wid, region, tid, rkey, until,
           row_number() OVER (PARTITION BY wid, region ORDER BY until DESC, tid) AS place
    FROM per_institution
), released AS (
    SELECT wid, region, count(*) AS institutions_committed, bit_xor(rkey) AS committed_key,
           max(CASE WHEN place = $k_title THEN until END) AS kth
    FROM ranked GROUP BY wid, region
    HAVING count(*) >= $k_title
)
SELECT k.work_key, r.region, r.institutions_committed, CASE WHEN r.kth < 999999 THEN r.kth END AS retained_until,
       r.committed_key
FROM released r JOIN work_ids k ON r.wid = k.wid
"""

RETENTION_PROGRAMS = """
SELECT k.work_key, c.region, c.program, count(*) AS institutions, bit_xor(c.rkey) AS institutions_key
FROM (
    SELECT DISTINCT m.wid, r.region, r.program, r.tid, r.rkey
    FROM retention_c r JOIN work_map m ON r.work_key = m.local_key
    WHERE r.retain_until_year IS NULL OR r.retain_until_year >= $as_of_year
) c JOIN work_ids k ON c.wid = k.wid
GROUP BY k.work_key, c.region, c.program
HAVING count(*) >= $k_title
"""

# Bibliographic facts of the released works. Free text (title, author, publisher) is released
# only in a form that at least K_TITLE holders agree on once case, punctuation and spacing are
# ignored; otherwise the title becomes $withheld and author and publisher stay empty, so one
# holder's wording ("... (Alpha University copy, barcode A-1)") never leaves. Coded facts
# (year, language, LC class, subject) are the combination most holders use. Works are grouped
# by their integer id (wid) and each distinct text is normalised once and numbered (nid), so
# votes are grouped and ranked over integers; the work key is joined in at the end.
TITLES = """
WITH released AS (
    SELECT DISTINCT k.wid FROM work_ids k JOIN (
        SELECT work_key FROM holdings_r UNION SELECT work_key FROM loans_r
        UNION SELECT work_key FROM e_usage_r UNION SELECT work_key FROM reading_lists_r
        UNION SELECT work_key FROM peer_selection_r UNION SELECT work_key FROM retention_r) r
        ON k.work_key = r.work_key
), described AS (
    SELECT m.wid, h.tid, h.title, h.author, h.publisher, h.pub_year, h.language, h.lc_class, h.lc_subclass,
           h.subject, h.format, h.isbns
    FROM holdings_c h JOIN work_map m ON h.work_key = m.local_key
    WHERE m.wid IN (SELECT wid FROM released)
), holder_texts AS (
    SELECT wid, tid, 1 AS field, title AS text FROM described WHERE title IS NOT NULL
    UNION ALL SELECT wid, tid, 2, author FROM described WHERE author IS NOT NULL
    UNION ALL SELECT wid, tid, 3, publisher FROM described WHERE publisher IS NOT NULL
), dictionary AS (
    SELECT text, lower(trim(replace(replace(translate(text, $punctuation, ''), '  ', ' '), '  ', ' '))) AS norm
    FROM (SELECT DISTINCT text FROM holder_texts) d
), numbered AS (
    SELECT text, norm, dense_rank() OVER (ORDER BY norm) AS nid FROM dictionary
), texts AS (
    SELECT h.wid, h.field, n.nid, min(h.text) AS text, count(DISTINCT h.tid) AS votes
    FROM holder_texts h JOIN numbered n ON h.text = n.text
    GROUP BY h.wid, h.field, n.nid
    HAVING count(DISTINCT h.tid) >= $k_title
), agreed AS (
    SELECT wid, field, text, row_number() OVER (PARTITION BY wid, field ORDER BY votes DESC, nid) AS pick
    FROM texts
), coded AS (
    SELECT wid, pub_year, language, lc_class, lc_subclass, subject, count(DISTINCT tid) AS votes
    FROM described GROUP BY wid, pub_year, language, lc_class, lc_subclass, subject
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY wid ORDER BY votes DESC, pub_year, language, lc_class,
                                 lc_subclass, subject) AS pick
    FROM coded
), formats AS (
    SELECT wid, CASE WHEN count(DISTINCT format) > 1 THEN 'both' ELSE min(format) END AS format,
           list_sort(list_distinct(flatten(list(isbns)))) AS isbns, max(title) IS NOT NULL AS titled
    FROM described
    GROUP BY wid
)
SELECT k.work_key, f.isbns,
       coalesce(t.text, CASE WHEN f.titled THEN $withheld END) AS title, a.text AS author, p.text AS publisher,
       r.pub_year, r.language, r.lc_class, r.lc_subclass, r.subject, f.format
FROM ranked r JOIN formats f ON r.wid = f.wid
JOIN work_ids k ON k.wid = r.wid
LEFT JOIN agreed t ON t.wid = r.wid AND t.field = 1 AND t.pick = 1
LEFT JOIN agreed a ON a.wid = r.wid AND a.field = 2 AND a.pick = 1
LEFT JOIN agreed p ON p.wid = r.wid AND p.field = 3 AND p.pick = 1
WHERE r.pick = 1
"""

# Benchmark statistics per region, peer group, KPI and period over the derived KPI values of
# the benchmark contributors (kpi_values: tid, period, kpi, value; peer_groups: tid, region,
# peer_group). Quantiles are linear between order statistics. Which cells are released is
# decided afterwards (benchmark_cells.select_cells) from the member lists.
BENCHMARK_CELLS = """
SELECT g.region, g.peer_group, v.kpi, v.period, count(*) AS n,
       quantile_cont(v.value, 0.25) AS p25, quantile_cont(v.value, 0.5) AS median,
       quantile_cont(v.value, 0.75) AS p75, avg(v.value) AS mean,
       max(v.value) AS largest, sum(v.value) AS total,
       list_sort(list(v.tid)) AS members, list_sort(list(v.value)) AS "values"
FROM kpi_values v JOIN peer_groups g ON v.tid = g.tid
GROUP BY g.region, g.peer_group, v.kpi, v.period
ORDER BY g.region, g.peer_group, v.kpi, v.period
"""

# Holdings unique in the region, per benchmark contributor: a held work counts as held by
# another institution when that one holds a work with any of its ISBNs (or, for a work
# without ISBNs, the same work key: ISSN, OCLC number or title fingerprint). Identifiers are
# hashed to integers once (unique_ids), which keeps the grouping fast.
UNIQUE_IDS = """
SELECT tid, region, hash(work_key) AS wid, hash(work_key) AS ident FROM held_works_c WHERE array_length(isbns) = 0
UNION ALL
SELECT tid, region, hash(work_key) AS wid, hash(isbn) AS ident
FROM (SELECT tid, region, work_key, unnest(isbns) AS isbn FROM held_works_c WHERE array_length(isbns) > 0)
"""

UNIQUE_SHARES = """
WITH holders AS (
    SELECT region, ident, count(DISTINCT tid) AS n FROM unique_ids GROUP BY region, ident
), per_work AS (
    SELECT i.tid, i.wid, max(h.n) AS holders
    FROM unique_ids i JOIN holders h ON i.region = h.region AND i.ident = h.ident
    GROUP BY i.tid, i.wid
)
SELECT tid, 100 * CAST(count(*) FILTER (WHERE holders = 1) AS DOUBLE) / count(*) AS value
FROM per_work GROUP BY tid ORDER BY tid
"""

# Recommendation evidence (released under recommendations/ only, from the institutions that
# share for recommendations). Loans per print copy over the last 12 complete months, per
# holder of the work; the median over at least K_TITLE holders is released, never a
# holder's own figure next to who it is.
WORK_USE = """
WITH copies AS (
    SELECT m.wid, h.region, h.tid, h.rkey, sum(h.copies_held) AS copies
    FROM holdings_c h JOIN work_map m ON h.work_key = m.local_key
    WHERE h.copies_held > 0 AND h.format = 'print'
    GROUP BY m.wid, h.region, h.tid, h.rkey
), used AS (
    SELECT m.wid, l.tid, sum(l.loans) AS loans
    FROM loans_c l JOIN work_map m ON l.work_key = m.local_key
    WHERE l.month >= $last12_start AND l.month <= $last_complete
    GROUP BY m.wid, l.tid
), per_holder AS (
    SELECT c.wid, c.region, c.tid, c.rkey, CAST(coalesce(u.loans, 0) AS DOUBLE) / c.copies AS loans_per_copy
    FROM copies c LEFT JOIN used u ON c.wid = u.wid AND c.tid = u.tid
), released AS (
    SELECT wid, region, count(*) AS holders, quantile_cont(loans_per_copy, 0.5) AS median_loans_per_copy,
           bit_xor(rkey) AS holders_key
    FROM per_holder GROUP BY wid, region
    HAVING count(*) >= $k_title
)
SELECT k.work_key, r.region, r.holders, r.median_loans_per_copy, r.holders_key
FROM released r JOIN work_ids k ON r.wid = k.wid
"""

# Which platforms carry which works: a (work, platform) pair is known when at least
# K_TITLE institutions of the region report COUNTER usage for it in the release window.
PLATFORM_TITLES = """
SELECT work_key, region, platform, count(*) AS institutions, bit_xor(rkey) AS institutions_key
FROM (
    SELECT DISTINCT k.work_key, u.region, u.platform, u.tid, u.rkey
    FROM e_usage_c u JOIN work_map m ON u.work_key = m.local_key JOIN work_ids k ON m.wid = k.wid
    WHERE u.platform IS NOT NULL AND trim(u.platform) <> ''
      AND u.month >= $window_start AND u.month <= $as_of_month
)
GROUP BY work_key, region, platform
HAVING count(*) >= $k_title
"""

# Per region and platform: institutions holding e-titles that the community reports on the
# platform (a platform title pair as above, so a platform only one institution names is never
# released), and how many of them loaded usage for it in the last 12 complete months. The
# disclosure layer withholds (null) a loading count below K_TITLE.
PLATFORMS = """
WITH plat AS (
    SELECT m.wid, u.region, u.platform
    FROM e_usage_c u JOIN work_map m ON u.work_key = m.local_key
    WHERE u.platform IS NOT NULL AND trim(u.platform) <> ''
      AND u.month >= $window_start AND u.month <= $as_of_month
    GROUP BY m.wid, u.region, u.platform
    HAVING count(DISTINCT u.tid) >= $k_title
), e_held AS (
    SELECT DISTINCT h.tid, h.rkey, h.region, p.platform
    FROM holdings_c h JOIN work_map m ON h.work_key = m.local_key
    JOIN plat p ON p.wid = m.wid AND p.region = h.region
    WHERE h.format = 'electronic' AND h.copies_held > 0
), loading AS (
    SELECT DISTINCT tid, region, platform FROM e_usage_c
    WHERE platform IS NOT NULL AND month >= $last12_start AND month <= $last_complete
), counted AS (
    SELECT e.region, e.platform, count(*) AS holding, count(l.tid) AS loading, bit_xor(e.rkey) AS holding_key,
           bit_xor(e.rkey) FILTER (WHERE l.tid IS NOT NULL) AS loading_key
    FROM e_held e LEFT JOIN loading l ON e.tid = l.tid AND e.region = l.region AND e.platform = l.platform
    GROUP BY e.region, e.platform
    HAVING count(*) >= $k_title
)
SELECT region, platform, holding AS institutions_holding, loading AS institutions_loading, holding_key,
       loading_key
FROM counted
"""

RECOMMENDATION_EVIDENCE = {
    "work_use": WORK_USE,
    "platform_titles": PLATFORM_TITLES,
    "platforms": PLATFORMS,
}

TITLE_LEVEL = {
    "holdings": HOLDINGS,
    "loans": LOANS,
    "e_usage": E_USAGE,
    "reading_lists": READING_LISTS,
}
