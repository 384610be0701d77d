"""The data contract between stages, declared once: what leaves an institution, what a release holds.

- Thresholds: the disclosure thresholds and their defaults. Settings (core.config) read them
  from environment variables of the same name; a release records the values it was built with
  in its manifest ("privacy"), and views read them only from there.
- Contribution tables: exactly the columns each table may carry out of an institution (the
  allow-list the contribution builder selects), their types, and which service sends which.
- Release tables: the files of a community release, their columns in file order, their types,
  and the counts of institutions that must reach a threshold wherever they are shown.

Types are named, not imported, so that reading a threshold costs no dataframe library:
"str", "int" (64-bit), "float" (double), "bool" and "list[str]"; `polars_schema` gives the
Polars types. docs/data-contract.md §4 describes the same tables and thresholds for people, and
tests/core/test_contract.py checks that the two agree.
"""

from __future__ import annotations

# -- thresholds ----------------------------------------------------------------------------------

THRESHOLDS: dict[str, int | float] = {
    "K_TITLE": 3,  # institutions behind every title-level count that is shown
    "K_BENCH": 5,  # institutions behind every benchmark statistic (and peer group)
    "DOMINANCE": 0.5,  # largest share of a total one institution may make up for its mean to be shown
}

# -- contribution tables -------------------------------------------------------------------------

FORMAT_VERSION = 5  # raise when a contribution table changes (2: benchmark base measures; 3: held works; 4: noise;
# 5: retention commitments)

CONTRIBUTION_TABLES: dict[str, dict[str, str]] = {
    "holdings": {"work_key": "str", "isbns": "list[str]", "title": "str", "author": "str", "publisher": "str",
                 "pub_year": "int", "language": "str", "lc_class": "str", "lc_subclass": "str", "subject": "str",
                 "format": "str", "copies_held": "int", "copies_withdrawn": "int", "first_acquired_month": "str"},
    "loans": {"work_key": "str", "month": "str", "loans": "int", "renewals": "int"},
    "e_usage": {"work_key": "str", "isbns": "list[str]", "title": "str", "platform": "str", "month": "str",
                "metric_type": "str", "count": "int"},
    "reading_lists": {"work_key": "str", "term": "str", "lists": "int", "citations": "int",
                      "required_citations": "int"},
    "kpis": {"period": "str", "measure": "str", "value": "float"},
    "held_works": {"work_key": "str", "isbns": "list[str]"},
    # Current retention commitments: per work and program, the year retained until (null: indefinite).
    "retention": {"work_key": "str", "isbns": "list[str]", "program": "str", "retain_until_year": "int"},
}

# Exactly the columns each contribution table may carry, in file order.
CONTRIBUTION_COLUMNS: dict[str, tuple[str, ...]] = {table: tuple(columns)
                                                    for table, columns in CONTRIBUTION_TABLES.items()}

SERVICE_TABLES: dict[str, tuple[str, ...]] = {
    "collection_development": ("holdings", "loans", "e_usage", "reading_lists", "retention"),
    "recommendations": ("holdings", "loans", "e_usage", "reading_lists", "retention"),
    "benchmark": ("kpis", "held_works"),
}

# -- release tables ------------------------------------------------------------------------------

SCHEMA_VERSION = 1  # the manifest's schema_version
RECOMMENDATIONS_PART = "recommendations"  # the folder of the tables built from recommendations contributions

# Every table is a file <table>.parquet at the top level of the release and, built from the
# recommendations contributors only, under recommendations/; except as noted.
RELEASE_TABLES: dict[str, dict[str, str]] = {
    "titles": {"work_key": "str", "isbns": "list[str]", "title": "str", "author": "str", "publisher": "str",
               "pub_year": "int", "language": "str", "lc_class": "str", "lc_subclass": "str", "subject": "str",
               "format": "str"},
    "holdings": {"work_key": "str", "region": "str", "month": "str", "institutions_holding": "int",
                 "institutions_acquiring": "int"},
    "loans": {"work_key": "str", "region": "str", "month": "str", "loans": "int", "institutions_lending": "int"},
    "e_usage": {"work_key": "str", "region": "str", "month": "str", "metric_type": "str", "count": "int",
                "institutions": "int"},
    "reading_lists": {"work_key": "str", "region": "str", "term": "str", "lists": "int", "institutions": "int"},
    "peer_selection": {"work_key": "str", "region": "str", "peer_group": "str", "group_size": "int",
                       "institutions_holding": "int", "institutions_acquired_12m": "int",
                       "institutions_listing": "int"},
    "monthly_signal": {"work_key": "str", "region": "str", "month": "str", "loans": "int", "e_requests": "int",
                       "acquisitions": "int", "reading_lists": "int", "signal": "float"},
    "trend_rows": {"region": "str", "window_months": "int", "work_key": "str", "title": "str", "author": "str",
                   "isbns": "list[str]", "lc_class": "str", "lc_subclass": "str", "subject": "str", "format": "str",
                   "pub_year": "int", "language": "str", "publisher": "str", "institutions_holding": "int",
                   "recent": "float", "baseline": "float", "long_run_monthly": "float", "score": "float",
                   "lift_over_long_run": "float", "loans_recent": "int", "e_requests_recent": "int",
                   "acquisitions_recent": "int", "reading_lists_recent": "int"},
    # Shared-print retention per work and region (current commitments as of the release's as_of).
    "retention": {"work_key": "str", "region": "str", "institutions_committed": "int", "programs": "list[str]",
                  "retained_until": "int"},
    # Under recommendations/ only: the evidence of recommendation types.
    "work_use": {"work_key": "str", "region": "str", "holders": "int", "median_loans_per_copy": "float"},
    "platform_titles": {"work_key": "str", "region": "str", "platform": "str", "institutions": "int"},
    "platforms": {"region": "str", "platform": "str", "institutions_holding": "int", "institutions_loading": "int"},
    # At the top level only.
    "benchmarks": {"region": "str", "peer_group": "str", "kpi": "str", "period": "str", "variant": "str", "n": "int",
                   "p25": "float", "median": "float", "p75": "float", "mean": "float", "method": "str",
                   "mean_noise_sd": "float", "quantile_step": "float", "suppressed": "bool", "reason": "str"},
}

TREND_TABLES = ("monthly_signal", "trend_rows")  # derived from the released rows at publish

# Per release table: the counts of institutions that, where not null, reach a threshold.
THRESHOLD_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "holdings": (("institutions_holding", "K_TITLE"),),
    "loans": (("institutions_lending", "K_TITLE"),),
    "e_usage": (("institutions", "K_TITLE"),),
    "reading_lists": (("institutions", "K_TITLE"),),
    "peer_selection": (("institutions_holding", "K_TITLE"), ("institutions_acquired_12m", "K_TITLE"),
                       ("institutions_listing", "K_TITLE")),
    "benchmarks": (("n", "K_BENCH"),),
    "retention": (("institutions_committed", "K_TITLE"),),
    "work_use": (("holders", "K_TITLE"),),
    "platform_titles": (("institutions", "K_TITLE"),),
    "platforms": (("institutions_holding", "K_TITLE"), ("institutions_loading", "K_TITLE")),
}


def polars_schema(columns: dict[str, str]) -> dict:
    """Column name -> Polars type, for columns declared with the type names above."""
    import polars as pl

    types = {"str": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean,
             "list[str]": pl.List(pl.String)}
    return {name: types[kind] for name, kind in columns.items()}
