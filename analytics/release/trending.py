"""The trending score and the trend tables of a release, built once at publish.

Trending score (documented in the app and README). For each work in a region, the
monthly *signal* is

    loans + 0.5 x COUNTER Total_Item_Requests + 5 x institutions acquiring it
          + 3 x reading lists citing it (a term counts in its first month)

over complete months. With W the chosen window (3, 6 or 12 months) ending with the last
complete month before the release's as-of date:

    recent   = signal in the last W months
    baseline = signal in the W months before them
    score    = ln((recent + 10) / (baseline + 10))

The +10 smooths small numbers, so 1 -> 3 loans (score 0.15) never outranks 400 -> 900
(0.80). A work needs a recent signal of at least 10 to be listed at all (minimum support),
so noise never tops the list. Trending lists only rising works (score above 0); the
trend tables keep every work, flat and falling ones too. Each row also gives the long-run monthly rate (all months
of the release window) and its lift over it.

Publish runs `build_trend_tables` once and stores monthly_signal and trend_rows in the
release; the Trending page (`views.trends`) then filters and sorts trend_rows.
"""

from __future__ import annotations

import math
from datetime import date

from analytics.core import months
from analytics.core.months import WINDOWS
from analytics.release.sql import used_params

WEIGHTS = {"loans": 1.0, "e_requests": 0.5, "acquisitions": 5.0, "reading_lists": 3.0}
SMOOTHING = 10.0
MIN_SUPPORT = 10.0

# Built once when a release is opened (it is immutable): the monthly signal per work and
# region, then recent / baseline / long-run sums for each window, so that a page query is
# a filter and a sort.
MONTHLY_SIGNAL = """
CREATE TABLE monthly_signal AS
WITH activity AS (
    SELECT work_key, region, month, loans AS loans, 0 AS e_requests, 0 AS acquisitions, 0 AS reading_lists
    FROM loans
    UNION ALL
    SELECT work_key, region, month, 0, count, 0, 0 FROM e_usage WHERE metric_type = 'Total_Item_Requests'
    UNION ALL
    SELECT work_key, region, month, 0, 0, institutions_acquiring, 0 FROM holdings WHERE institutions_acquiring > 0
    UNION ALL
    SELECT work_key, region,
           CASE WHEN regexp_full_match(term, '[0-9]{4}-(SPRING|WINTER)') THEN substr(term, 1, 4) || '-01'
                WHEN regexp_full_match(term, '[0-9]{4}-SUMMER') THEN substr(term, 1, 4) || '-06'
                WHEN regexp_full_match(term, '[0-9]{4}-(FALL|AUTUMN)') THEN substr(term, 1, 4) || '-09'
                ELSE substr(term, 1, 7) END,
           0, 0, 0, lists
    FROM reading_lists
)
SELECT work_key, region, month,
       CAST(sum(loans) AS BIGINT) AS loans, CAST(sum(e_requests) AS BIGINT) AS e_requests,
       CAST(sum(acquisitions) AS BIGINT) AS acquisitions, CAST(sum(reading_lists) AS BIGINT) AS reading_lists,
       CAST(sum(loans) * $w_loans + sum(e_requests) * $w_e + sum(acquisitions) * $w_acq
            + sum(reading_lists) * $w_rl AS DOUBLE) AS signal
FROM activity
WHERE month >= $history_start AND month <= $last_month
GROUP BY work_key, region, month
"""

WINDOW_SUMS = """
INSERT INTO trend_windows
SELECT work_key, region, $window AS window_months,
       coalesce(sum(signal) FILTER (WHERE month >= $recent_start), 0) AS recent,
       coalesce(sum(signal) FILTER (WHERE month BETWEEN $baseline_start AND $baseline_end), 0) AS baseline,
       sum(signal) / $history_months AS long_run_monthly,
       coalesce(sum(loans) FILTER (WHERE month >= $recent_start), 0) AS loans_recent,
       coalesce(sum(e_requests) FILTER (WHERE month >= $recent_start), 0) AS e_requests_recent,
       coalesce(sum(acquisitions) FILTER (WHERE month >= $recent_start), 0) AS acquisitions_recent,
       coalesce(sum(reading_lists) FILTER (WHERE month >= $recent_start), 0) AS reading_lists_recent
FROM monthly_signal
GROUP BY work_key, region
HAVING coalesce(sum(signal) FILTER (WHERE month >= $recent_start), 0) >= $min_support
"""

# The ranked rows of every region and window, with titles and current holders joined in,
# built once per release; a page query then filters one table.
TREND_ROWS = """
CREATE TABLE trend_rows AS
SELECT s.region, s.window_months, t.work_key, t.title, t.author, t.isbns, t.lc_class, t.lc_subclass, t.subject,
       t.format, t.pub_year, t.language, t.publisher, h.institutions_holding,
       s.recent, s.baseline, s.long_run_monthly,
       ln((s.recent + $smoothing) / (s.baseline + $smoothing)) AS score,
       (s.recent / s.window_months) / nullif(s.long_run_monthly, 0) AS lift_over_long_run,
       s.loans_recent, s.e_requests_recent, s.acquisitions_recent, s.reading_lists_recent
FROM trend_windows s JOIN titles t ON s.work_key = t.work_key
LEFT JOIN holdings h ON h.work_key = s.work_key AND h.region = s.region AND h.month = $as_of_month
ORDER BY s.region, s.window_months, score DESC, s.recent DESC, t.work_key
"""

TITLE_ISBNS = """
CREATE TABLE title_isbns AS SELECT work_key, unnest(isbns) AS isbn FROM titles
"""


def build_trend_tables(con, manifest: dict) -> None:
    """monthly_signal, trend_windows and trend_rows from the tables titles, holdings, loans,
    e_usage and reading_lists of `con`. Publish runs this once and stores the results in the
    release; opening an older release without them runs it then."""
    base = {"w_loans": WEIGHTS["loans"], "w_e": WEIGHTS["e_requests"], "w_acq": WEIGHTS["acquisitions"],
            "w_rl": WEIGHTS["reading_lists"], "history_start": months.windows(manifest, 1)["history_start"],
            "last_month": months.last_complete(date.fromisoformat(manifest["as_of"]))}
    con.execute(MONTHLY_SIGNAL, used_params(MONTHLY_SIGNAL, base))
    con.execute("CREATE TABLE trend_windows (work_key VARCHAR, region VARCHAR, window_months INTEGER, recent DOUBLE, "
                "baseline DOUBLE, long_run_monthly DOUBLE, loans_recent BIGINT, e_requests_recent BIGINT, "
                "acquisitions_recent BIGINT, reading_lists_recent BIGINT)")
    for window in WINDOWS:
        span = months.windows(manifest, window)
        params = {**span, "window": window, "min_support": MIN_SUPPORT,
                  "history_months": months.count(span["history_start"], span["recent_end"])}
        con.execute(WINDOW_SUMS, used_params(WINDOW_SUMS, params))
    con.execute(TREND_ROWS, {"smoothing": SMOOTHING, "as_of_month": manifest["as_of"][:7]})


def score(recent: float, baseline: float) -> float:
    """The trending score for given recent and baseline signals (for docs and tests)."""
    return math.log((recent + SMOOTHING) / (baseline + SMOOTHING))
