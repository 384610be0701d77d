"""Canonical tables, their columns, and the lists that keep personal and financial data out.

The canonical columns are the data contract (docs/data-contract.md §1). The deny-list is
applied at import, before anything is stored: a column that looks personal or
financial is dropped and named in the import report, whatever else the file holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERVICES = ("collection_development", "recommendations", "benchmark")
SERVICE_LABELS = {
    "collection_development": "Selection and Collection Development",
    "recommendations": "Recommendations",
    "benchmark": "Benchmark Analytics",
}
ROLES = ("admin", "manager", "librarian")
ROLE_LABELS = {
    "admin": "General System Administrator",
    "manager": "Manager",
    "librarian": "Collection librarian",
}
INSTITUTION_TYPES = ("research", "teaching", "community_college", "public", "national", "special")
REGIONS = ("NA", "CA", "EU", "APAC", "CN", "LATAM", "MEA")
REGION_LABELS = {
    "NA": "North America",
    "CA": "Canada",
    "EU": "Europe",
    "APAC": "Asia Pacific",
    "CN": "China",
    "LATAM": "Latin America",
    "MEA": "Middle East and Africa",
}


def region_name(region: str) -> str:
    """A region (data center) in words, "North America" for "NA": a code alone reads as "n/a"."""
    return REGION_LABELS.get(region, region)

# Size bands are derived from FTE students, never typed by hand (docs/data-contract.md §2).
SIZE_BANDS = (
    (0, "under 1,000"),
    (1_000, "1,000-4,999"),
    (5_000, "5,000-14,999"),
    (15_000, "15,000-29,999"),
    (30_000, "30,000 and over"),
)


def size_band(fte_students: int | None) -> str:
    """The size band label for a number of FTE students ('unknown' when not given)."""
    if fte_students is None:
        return "unknown"
    label = SIZE_BANDS[0][1]
    for lower, name in SIZE_BANDS:
        if fte_students >= lower:
            label = name
    return label


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str | int | number | year | fiscal_year | date | month_or_date
    required: bool = False
    default: object = None
    description: str = ""
    example: str = ""  # a value as an export would hold it: the import page's column guide and template


# Canonical inputs per kind. "local" columns never leave the institution.
CANONICAL: dict[str, tuple[Column, ...]] = {
    "items": (
        Column("item_id", "str", True, description="local id (barcode, item PID); never leaves the institution",
               example="X006057697"),
        Column("title_id", "str", description="local bibliographic id; never leaves the institution",
               example="2717980"),
        Column("title", "str", True, description="title proper", example="The fire next time"),
        Column("author", "str", description="main author, \"Surname, Forename\" or free text",
               example="Baldwin, James"),
        Column("isbn", "str", description="ISBN-10/13, any hyphenation; several separated by ; or |",
               example="978-0-679-74472-6"),
        Column("issn", "str", description="ISSN (journals, series); several separated by ; or |",
               example="0028-0836"),
        Column("oclc_number", "str", description="OCLC control number, with or without the (OCoLC) prefix",
               example="(OCoLC)28064626"),
        Column("publisher", "str", description="publisher's name", example="Vintage International"),
        Column("pub_year", "year", description="year; 4-digit year taken from forms such as c2009. or [2015]",
               example="1993"),
        Column("language", "str", description="MARC / ISO 639-2 language code", example="eng"),
        Column("call_number", "str", description="LC call number (gives the subject)", example="PS3552.A45 F5 1993"),
        Column("format", "str", default="print", description="a print copy, or electronic (e-book, e-journal)",
               example="print"),
        Column("material_type", "str", default="book", description="kind of material", example="book"),
        Column("owner", "str", description="member code within a consortium (blank: your institution); rows of "
                                           "other members are never shared"),
        Column("acquired_date", "date", description="date the copy was added", example="2019-01-05"),
        Column("withdrawn_date", "date", description="date withdrawn; blank = still held"),
        Column("lifetime_loans", "int", description="total loans, for systems that export only totals",
               example="12"),
        Column("last_loan_date", "date", description="date of the last loan; blank = never lent",
               example="2024-10-02"),
    ),
    "loans": (
        Column("item_id", "str", True, description="the item lent, as in the items table", example="X006057697"),
        Column("loan_date", "month_or_date", True, description="the day of the loan, or its month for counts "
                                                              "per month", example="2025-03-14"),
        Column("count", "int", default=1, description="loans on that row (counts per month)", example="1"),
        Column("renewals", "int", default=0, description="renewals of those loans", example="0"),
    ),
    "e-usage": (
        Column("title", "str", True, description="title of the e-book or journal", example="Nature"),
        Column("isbn", "str", description="ISBN of an e-book; several separated by ; or |"),
        Column("issn", "str", description="ISSN of a journal", example="0028-0836"),
        Column("platform", "str", description="platform that reported the use", example="Nature.com"),
        Column("month", "month_or_date", True, description="the month of the use", example="2025-01"),
        Column("metric_type", "str", True, description="COUNTER metric, e.g. Total_Item_Requests or "
                                                       "Unique_Title_Requests", example="Total_Item_Requests"),
        Column("count", "int", True, description="the metric's count for the month", example="42"),
    ),
    "reading-lists": (
        Column("list_id", "str", True, description="local id of the reading list", example="RL-2041"),
        Column("course_code", "str", description="local course code", example="HIST101"),
        Column("term", "str", True, description="term of the course, e.g. 2025-FALL, or a date",
               example="2025-FALL"),
        Column("title", "str", True, description="title of the cited work", example="The fire next time"),
        Column("isbn", "str", description="ISBN of the cited work", example="9780679744726"),
        Column("enrolment", "int", description="students on the course", example="120"),
        Column("citation_type", "str", description="how the list cites it", example="required"),
    ),
    # Survey-style yearly figures of one institution (ACRL/IPEDS/IMLS-like), for benchmarks.
    # One row per year; every measure is a "number" (Float64: staff FTE is fractional).
    "annual-stats": (
        Column("year", "fiscal_year", True,
               description="the year the reporting period ends in: 2020, FY2020, 2019-20, 2019/2020 or an "
                           "end date such as 06/30/2020 or 2020-06-30 all give 2020; one row per year", example="2024"),
        Column("fte_students", "number", description="full-time-equivalent students served", example="12480"),
        Column("teaching_faculty", "number", description="teaching faculty (headcount or FTE)", example="890"),
        Column("titles_held", "number", description="titles held at the end of the year", example="1,250,000"),
        Column("volumes_held", "number", description="physical volumes held at the end of the year",
               example="1,830,000"),
        Column("ebooks_held", "number", description="e-books held or licensed at the end of the year",
               example="412000"),
        Column("volumes_added", "number", description="volumes added during the year (gross)", example="21500"),
        Column("volumes_withdrawn", "number", description="volumes withdrawn during the year", example="8200"),
        Column("current_serials", "number", description="current serial subscriptions, print and electronic",
               example="64000"),
        Column("initial_circulation", "number", description="initial loans, renewals excluded", example="98000"),
        Column("total_circulation", "number", description="all loans, renewals included", example="131500"),
        Column("reserve_circulation", "number", description="loans from course reserves", example="4100"),
        Column("ill_lending", "number", description="interlibrary loan requests filled for other libraries",
               example="6300"),
        Column("ill_borrowing", "number", description="interlibrary loan requests filled by other libraries",
               example="5200"),
        Column("gate_count", "number", description="visits (entrances) in the year", example="1,020,000"),
        Column("reference_queries", "number", description="reference transactions", example="18000"),
        Column("presentations", "number", description="presentations and instruction sessions given", example="640"),
        Column("presentation_participants", "number", description="attendees of those presentations", example="11200"),
        Column("staff_fte", "number", description="total library staff, full-time equivalent (fractional)",
               example="84.5"),
        Column("full_text_requests", "number", description="e-content full-text requests (COUNTER)",
               example="2,300,000"),
        Column("database_searches", "number", description="database searches (COUNTER)", example="3,900,000"),
        Column("service_hours", "number", description="hours open for public service, as the source survey counts them",
               example="4,380"),
        Column("population_served", "number",
               description="population of the legal service area; public libraries report it (IMLS "
                           "POPU_LSA) and it serves per-capita ratios", example="N/A"),
    ),
    # Shared-print retention commitments of the institution (also read from MARC 583 by the
    # `marc` import). A row needs an isbn, issn, oclc_number, or title and author.
    "retention-commitments": (
        Column("isbn", "str", description="ISBN-10/13 of the work committed; several separated by ; or |",
               example="9780385334570"),
        Column("issn", "str", description="ISSN of a serial committed", example=""),
        Column("oclc_number", "str", description="OCLC number, e.g. 12345678 or (OCoLC)12345678", example=""),
        Column("title", "str", description="with author, identifies a work without identifiers",
               example="The road to Wigan Pier"),
        Column("author", "str", description="with title, identifies a work without identifiers",
               example="Orwell, George"),
        Column("program", "str", True, description="the shared-print program, e.g. EAST, WEST, "
                                                    "HathiTrust Shared Print", example="EAST"),
        Column("committed_on", "date", description="the date of the commitment (MARC 583 $c)", example="2019-07-01"),
        Column("retain_until", "date", description="the end of the commitment (MARC 583 $d); empty = "
                                                   "indefinite. Commitments past it are kept here but not shared",
               example="2035-12-31"),
    ),
}

TABLE_FILES = {
    "items": "items.parquet",
    "loans": "loans.parquet",
    "e-usage": "e_usage.parquet",
    "reading-lists": "reading_lists.parquet",
    "annual-stats": "annual_stats.parquet",
    "retention-commitments": "retention_commitments.parquet",
}

ACCEPTED_VALUES = {
    ("items", "format"): ("print", "electronic"),
    ("items", "material_type"): ("book", "journal", "media", "other"),
    ("reading-lists", "citation_type"): ("required", "recommended", "further"),
}

# Words that mark a column as personal (patron) data. Matched against the underscore
# separated tokens of a normalized column name, so "patron_id", "Borrower Name" and
# "user email" are caught while "publisher" is not.
PERSONAL_TOKENS = frozenset(
    {
        "patron", "patrons", "borrower", "borrowers", "user", "users", "userid",
        "member", "reader", "customer", "student", "email", "mail", "phone",
        "telephone", "mobile", "address", "street", "postcode", "zip", "birth",
        "birthdate", "dob", "gender", "sex", "ssn", "passport", "firstname",
        "lastname", "surname", "forename", "fullname", "card", "cardnumber",
        "requester", "requestor", "ip",
    }
)
PERSONAL_NAMES = frozenset({"name", "first_name", "last_name", "patron_name", "user_name"})
# Words that mark a column as financial.
MONEY_TOKENS = frozenset(
    {
        "fund", "funds", "funding", "price", "prices", "cost", "costs", "amount", "fee", "fees",
        "fine", "fines", "invoice", "invoices", "order", "orders", "budget", "budgets",
        "expenditure", "expenditures", "expense", "expenses", "salary", "salaries",
        "wage", "wages", "currency", "paid", "pay", "payment", "payments", "payroll", "vat", "tax",
        "usd", "eur", "gbp", "spend", "spending", "ledger", "encumbrance", "po",
        "income", "incomes", "revenue", "revenues", "benefit", "benefits", "fringe",
        "capital", "endowment", "dollar", "dollars", "money", "compensation", "grant", "grants",
    }
)
# Survey files abbreviate money columns into one token (IMLS: TOTOPEXP, PRMATEXP, OTHMATEX,
# TOTEXPCO, TOTINCM, LOCGVT; IPEDS: LSALWAGES, LFRNGBEN), so tokens are also matched against
# these patterns, the whole name against MONEY_NAME_PATTERNS (IMLS capital revenue CAP_REV,
# LCAP_REV, ...) and the name without underscores against the longer words.
MONEY_TOKEN_PATTERNS = re.compile(
    r"[a-z]*exp"            # ...EXP: expenditure (TOTOPEXP, PRMATEXP, ELMATEXP, STAFFEXP, OTHOPEXP)
    r"|totexp[a-z]*"        # TOTEXPCO, TOTEXPLIB
    r"|[a-z]*matex"         # OTHMATEX (8-character truncation of OTHMATEXP)
    r"|[a-z]*incm"          # TOTINCM, OTHINCM: income
    r"|(loc|st|fed|oth)gvt" # LOCGVT, STGVT, FEDGVT: government income
    r"|[a-z]*frngben"       # LFRNGBEN: fringe benefits
)
MONEY_NAME_PATTERNS = re.compile(r"(^|_)[lsfo]?cap_rev(_|$)")
MONEY_SUBSTRINGS = ("expenditure", "expense", "salar", "wages", "budget", "income", "revenue", "payroll",
                    "invoice", "price", "currency", "endowment", "fringe")


def normalize_column_name(name: str) -> str:
    """Lower-case, trimmed, runs of non-alphanumerics to one underscore."""
    cleaned = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower().lstrip("\ufeff"))
    return cleaned.strip("_")


def classify_sensitive(name: str) -> str | None:
    """'personal', 'financial' or None for a normalized column name."""
    tokens = set(name.split("_"))
    if name in PERSONAL_NAMES or tokens & PERSONAL_TOKENS:
        return "personal"
    if is_financial(name):
        return "financial"
    return None


def is_financial(name: str) -> bool:
    """True for a normalized column name that looks like it carries money."""
    tokens = [t for t in name.split("_") if t]
    if set(tokens) & MONEY_TOKENS:
        return True
    if any(MONEY_TOKEN_PATTERNS.fullmatch(t) for t in tokens) or MONEY_NAME_PATTERNS.search(name):
        return True
    joined = "".join(tokens)
    return any(word in joined for word in MONEY_SUBSTRINGS)
