"""Command line for the system jobs and reports: python -m analytics [--data-dir DIR] COMMAND.

Exit status: 0 success; 2 bad input or refused action (one-line reason on stderr,
nothing changed); 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from analytics.core.access import Principal
from analytics.core.errors import UserError
from analytics.core.config import load_settings
from analytics.ingest.reader import InputError
from analytics.ingest.run import ALL_KINDS, run_import
from analytics.ingest.tabular import parse_mapping
from analytics.core.output import render
from analytics.core.schema import INSTITUTION_TYPES, REGIONS, ROLES, SERVICES
from analytics.control.store import Store


class Refused(UserError):
    """Bad input or a refused action: exit status 2."""


def _institution(settings, code: str):
    """The control database, the system job's principal and the institution `code` (a clear
    error when there is no such institution)."""
    store = Store.from_settings(settings)
    system = Principal.system_job()
    return store, system, store.institution(system, code)


def _on_off(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "yes", "true", "1"):
        return True
    if lowered in ("off", "no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r}: use on or off")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data directory (default $ANALYTICS_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_format(p):
        p.add_argument("--format", choices=("table", "csv", "json"), default="table")
        return p

    demo = sub.add_parser("demo", help="build the synthetic demo community end to end")
    demo.add_argument("--institutions", type=int, default=24)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--months", type=int, default=36)
    demo.add_argument("--reset", action="store_true", help="replace the data dir's contents")
    demo.add_argument("--no-publish", action="store_true", help="do not publish the first community release")

    inst = sub.add_parser("institution", help="add or list institutions")
    inst_sub = inst.add_subparsers(dest="action", required=True)
    add = inst_sub.add_parser("add")
    add.add_argument("code")
    add.add_argument("--name", required=True)
    add.add_argument("--type", required=True, choices=INSTITUTION_TYPES)
    add.add_argument("--region", required=True, type=str.upper, choices=REGIONS)
    add.add_argument("--fte", type=int)
    add.add_argument("--go-live", required=True)
    add.add_argument("--country")
    add.add_argument("--consortium")
    with_format(inst_sub.add_parser("list"))

    user = sub.add_parser("user", help="add or list users")
    user_sub = user.add_subparsers(dest="action", required=True)
    uadd = user_sub.add_parser("add")
    uadd.add_argument("email")
    uadd.add_argument("--institution", required=True)
    uadd.add_argument("--role", required=True, choices=ROLES, action="append")
    uadd.add_argument("--name", default="")
    ulist = with_format(user_sub.add_parser("list"))
    ulist.add_argument("--institution")

    imp = with_format(sub.add_parser("import", help="import a file into an institution's local store"))
    imp.add_argument("code")
    imp.add_argument("kind", choices=ALL_KINDS)
    imp.add_argument("file")
    imp.add_argument("--map", action="append", default=[], metavar="canonical=source")
    imp.add_argument("--null-date", action="append", default=[], metavar="VALUE")
    imp.add_argument("--encoding", help="file encoding if not UTF-8 or Windows-1252")
    imp.add_argument("--mode", choices=("replace", "update"), default="replace",
                     help="replace: the file is a full export and becomes the table (default); update: add the "
                          "file's items and update those with the same item_id (items only)")
    imp.add_argument("--marc-symbol", action="append", default=[], metavar="CODE",
                     help="marc: your MARC organization code as 583 $5 gives it (commitments naming another "
                          "institution are skipped)")

    undo = with_format(sub.add_parser("undo-import", help="put a table back as it was before its last import"))
    undo.add_argument("code")
    undo.add_argument("kind", choices=("items", "loans", "e-usage", "reading-lists", "annual-stats"))

    sharing = with_format(sub.add_parser("sharing", help="set or show the data sharing switches",
                                         usage="sharing CODE [--collection-development on|off] "
                                               "[--recommendations on|off] [--benchmark on|off] --actor USER"
                                               " | sharing show CODE"))
    sharing.add_argument("target", nargs="+", metavar="CODE")
    sharing.add_argument("--collection-development", type=_on_off)
    sharing.add_argument("--recommendations", type=_on_off)
    sharing.add_argument("--benchmark", type=_on_off)
    sharing.add_argument("--actor")
    sharing.add_argument("--agreed-on", metavar="YYYY-MM-DD",
                         help="record an opt-in agreed on an earlier date (onboarding): the effective date follows "
                              "from it; audited as recorded later")

    pub = sub.add_parser("publish", help="build a new community release (the system job)")
    pub.add_argument("--as-of", help="YYYY-MM-DD (default today)")
    pub.add_argument("--wait", action="store_true",
                     help="if another publish is running, wait for it instead of exiting with status 2")
    pub.add_argument("--epsilon", type=float,
                     help="release benchmark statistics with differential privacy: a budget of E per institution "
                          "and calendar year, accounted across releases in the control database")
    pub.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                     help="what runs the release SQL: DuckDB on this machine (default) or Apache Spark "
                          "(SPARK_MASTER, default local[*]; needs requirements-spark.txt and Java 17+)")

    rel = sub.add_parser("release", help="show or verify a release")
    rel_sub = rel.add_subparsers(dest="action", required=True)
    show = with_format(rel_sub.add_parser("show"))
    show.add_argument("id", nargs="?")
    verify = rel_sub.add_parser("verify")
    verify.add_argument("id", nargs="?")
    use = rel_sub.add_parser("use", help="make a retained release current again (roll back), after verifying it")
    use.add_argument("id")

    trend = with_format(sub.add_parser("trending", help="rising works in the community (collection development)"))
    trend.add_argument("code")
    trend.add_argument("--subject", help="LC class (Q) or subclass (QA)")
    trend.add_argument("--months", type=int, default=6, help="window: 3, 6 or 12")
    trend.add_argument("--limit", type=int, default=50)
    trend.add_argument("--not-held", action="store_true", help="only works the institution does not hold")
    trend.add_argument("--region", help="default: the institution's own data center")

    sel = with_format(sub.add_parser("selection", help="titles peers acquire or teach that CODE lacks"))
    sel.add_argument("code")
    sel.add_argument("--limit", type=int, default=100)
    sel.add_argument("--peer-group", default="all", help="all, type=TYPE or size=BAND (see the Selection page)")
    sel.add_argument("--min-percent", type=float, default=20.0, help="acquired by at least this %% of the group")
    sel.add_argument("--min-lists", type=int, default=3, help="or on reading lists of at least this many")

    desel = with_format(sub.add_parser("deselection", help="withdrawal and retention candidates"))
    desel.add_argument("code")
    desel.add_argument("--limit", type=int, default=100)
    desel.add_argument("--no-loans-years", type=int, default=10)
    desel.add_argument("--published-before", type=int)
    desel.add_argument("--min-holders", type=int, default=None,
                       help="default: 10, or half of the region's sharing institutions when it has fewer than 20")
    desel.add_argument("--retention", action="store_true", help="list retention candidates instead")

    cmp = with_format(sub.add_parser("compare", help="your holdings against a peer group: overlap, not shown "
                                                     "as held by the group, gaps (work level, by LC class)"))
    cmp.add_argument("code")
    cmp.add_argument("--peers", help="peer group of your region: all (default), type=TYPE or size=BAND")
    cmp.add_argument("--gap-percent", type=float, default=50.0,
                     help="a gap is a work at least this %% of the group holds and you do not (default 50)")
    cmp.add_argument("--list", choices=("summary", "gaps", "works"), default="summary",
                     help="summary by LC class and subclass with a total (default), the gaps, or your works")
    cmp.add_argument("--limit", type=int, default=1000, help="the most gaps listed")

    last = sub.add_parser("lastcopy", help="check a list (e.g. weeding candidates) against the region's holdings "
                                           "and retention commitments")
    last.add_argument("code")
    last.add_argument("file", type=Path, help="CSV, TSV or Excel export of the library system, any columns")
    last.add_argument("--format", choices=("table", "csv", "xlsx", "json"), default="table",
                      help="xlsx needs --output (a workbook is not printed)")
    last.add_argument("--output", type=Path, metavar="PATH", help="write the checked list to PATH instead of stdout")
    last.add_argument("--map", action="append", metavar="canonical=source",
                      help="the column to read for isbn, issn, oclc_number, title or author (repeatable); "
                           "default: found by name")

    rec = with_format(sub.add_parser("recommend", help="current recommendations with evidence"))
    rec.add_argument("code")
    rec.add_argument("--type", dest="types", action="append", help="only this type (repeatable); see the README")
    rec.add_argument("--all", action="store_true",
                     help="also implemented, dismissed and expired ones (default: open ones only)")

    bm = with_format(sub.add_parser("benchmark", help="your KPIs against the peer distribution (benchmarks)"))
    bm.add_argument("code")
    bm.add_argument("--kpi", action="append", help="one KPI (repeatable); default all, see the README")
    bm.add_argument("--peers", help="peer group: all (default), type=T, size=BAND, country=CC or type=T,size=BAND")
    bm.add_argument("--period", help="YYYY, or YYYY-MM for the monthly KPIs; default every period")
    bm.add_argument("--trimmed", action="store_true", help="the outlier-trimmed variant (10%% at each end)")

    bench = sub.add_parser("bench", help="performance harness")
    bench.add_argument("--scale", choices=("s", "m", "l"), default="s")
    bench.add_argument("--only", choices=("import", "formats", "contributions", "publish", "verify", "queries",
                                                "recommend", "benchmark", "lastcopy", "pages", "utility"),
                       help="run one stage")
    bench.add_argument("--community", type=Path, metavar="DIR",
                       help="with --only pages: measure the pages on this community (e.g. one built by "
                            "`python -m analytics --data-dir DIR demo`) instead of a generated one")
    bench.add_argument("--rows", type=int, help="rows of the generated items file (default 1,000,000)")
    bench.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                       help="the engine of the publish stage (default duckdb)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.data_dir)
        return COMMANDS[args.command](args, settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def cmd_demo(args, settings) -> int:
    from analytics.synthetic.demo import build_demo

    started = time.perf_counter()
    summary = build_demo(settings, institutions=args.institutions, seed=args.seed, months=args.months,
                         reset=args.reset, progress=lambda line: print(line, file=sys.stderr))
    print(f"Demo community in {settings.data_dir}: {summary['institutions']} institutions, "
          f"{summary['works']} works, {summary['items']} items, {summary['loan_rows']} loan rows "
          f"({time.perf_counter() - started:.1f} s).")
    if not args.no_publish:
        from analytics.release.publish import publish

        release_id = publish(settings, Store.from_settings(settings),
                             progress=lambda line: print(f"  {line}", file=sys.stderr))
        print(f"First community release: {release_id}")
    return 0


def cmd_institution(args, settings) -> int:
    store = Store.from_settings(settings)
    system = Principal.system_job()
    if args.action == "add":
        inst = store.add_institution(system, code=args.code, name=args.name, type=args.type, region=args.region,
                                     fte_students=args.fte, go_live_date=args.go_live, country=args.country,
                                     consortium=args.consortium)
        print(f"Added {inst.code} ({inst.name}); every sharing switch is off until an administrator turns it on.")
        return 0
    records = [i.as_record() for i in store.list_institutions(system)]
    print(render(records, args.format))
    return 0


def cmd_user(args, settings) -> int:
    store = Store.from_settings(settings)
    system = Principal.system_job()
    if args.action == "add":
        user = store.add_user(system, args.email, args.institution, args.role, args.name)
        print(f"{user.email} is a user of {user.institution_code} with role(s) {', '.join(user.roles)}.")
        return 0
    users = store.list_users(system, args.institution)
    records = [{"email": u.email, "name": u.name, "institution": u.institution_code, "roles": list(u.roles)}
               for u in users]
    print(render(records, args.format))
    return 0


def cmd_import(args, settings) -> int:
    store, system, _ = _institution(settings, args.code)  # fails clearly on an unknown code
    mapping = parse_mapping(args.map)
    started = time.perf_counter()

    def progress(done: int, total: int | None) -> None:
        # Long imports (MARC, COUNTER) report on the terminal; nothing when stderr is not one.
        if sys.stderr.isatty() and total:
            print(f"\r  {args.kind}: {done:,} of {total:,} ({time.perf_counter() - started:.0f} s)", end="",
                  file=sys.stderr, flush=True)

    try:
        report = run_import(settings.data_dir, system, args.code, args.kind, args.file, mapping=mapping,
                            null_dates=args.null_date, encoding=args.encoding, progress=progress, mode=args.mode,
                            symbols=tuple(args.marc_symbol))
        if sys.stderr.isatty():
            print(file=sys.stderr)
    except InputError as exc:
        store.record_import(system, args.code, args.kind, args.file, "failed", {"error": str(exc)})
        raise
    store.record_import(system, args.code, args.kind, args.file, "ok", report.as_dict())
    data = report.as_dict()
    if args.format == "json":
        print(json.dumps(data, indent=2, default=str))
        return 0
    lines = [f"Imported {args.kind} for {args.code} from {report.file}: read {report.read}, kept {report.kept}, "
             f"rejected {report.rejected}."]
    if report.mode == "update":
        lines.append(f"  added {report.added:,}, updated {report.updated:,}; the table has {report.rows_after:,} rows "
                     f"(was {report.rows_before:,})")
    elif report.rows_before:
        lines.append(f"  replaced {report.rows_before:,} rows by {report.rows_after:,} (undo: python -m analytics "
                     f"undo-import {args.code} {args.kind})")
    for row in report.rejected_rows:
        lines.append(f"  rejected {row['reason']}")
    if report.dropped_columns:
        lines.append("  dropped (never stored): " + ", ".join(f"{d['column']} ({d['reason']})"
                                                              for d in report.dropped_columns))
    if report.ignored_columns:
        lines.append("  ignored columns: " + ", ".join(report.ignored_columns))
    if report.invalid_isbns:
        lines.append(f"  invalid ISBNs left out: {report.invalid_isbns}")
    if report.match:
        rates = report.match["rates"]
        by_id = rates["isbn"] + rates["issn"] + rates["oclc"]
        lines.append(f"  work matching: {by_id:.1%} by identifier, {rates['fingerprint']:.1%} by title and "
                     f"author only, {rates['unmatched']:.1%} unmatched ({report.match['works']:,} works)")
    for warning in report.warnings:
        lines.append(f"  note: {warning}")
    print("\n".join(lines))
    return 0


def cmd_sharing(args, settings) -> int:
    store = Store.from_settings(settings)
    changes = {s: getattr(args, s) for s in SERVICES if getattr(args, s) is not None}
    if args.target[0] == "show":
        if len(args.target) != 2 or changes:
            raise Refused("usage: sharing show CODE")
        return _sharing_show(store, args.target[1], args.format)
    if len(args.target) != 1:
        raise Refused("usage: sharing CODE [--collection-development on|off] [--recommendations on|off] "
                      "[--benchmark on|off] --actor USER")
    code = args.target[0]
    if not changes:
        raise Refused("name at least one switch to change, e.g. --benchmark off (or use: sharing show CODE)")
    if not args.actor:
        raise Refused("--actor USER is required: the e-mail of an administrator of " + code)
    user = store.user(args.actor)
    if user is None:
        raise Refused(f"--actor {args.actor}: no such user")
    actor = user.principal()
    for service, enabled in changes.items():
        version = store.institution(actor, code).version
        state = store.sharing_state(actor, code)[service]
        if state.requested == enabled:
            print(f"{service}: already {'on' if enabled else 'off'}; unchanged.")
            continue
        new = store.set_sharing(actor, code, service, enabled, version,
                                agreed_on=_date_arg("--agreed-on", args.agreed_on))
        print(f"{service}: {'on' if enabled else 'off'}, takes effect {_takes_effect(service, new.effective_from)}.")
    return 0


def _takes_effect(service: str, starts: date) -> str:
    if service == "benchmark":
        return f"on {starts.isoformat()} (the next monthly benchmark cycle)"
    return "at the next community release"


def _sharing_show(store: Store, code: str, fmt: str) -> int:
    system = Principal.system_job()
    state = store.sharing_state(system, code)
    records = [
        {"service": s.service, "requested": "on" if s.requested else "off",
         "in_effect": "on" if s.in_effect else "off", "effective_from": s.effective_from,
         "requested_at": s.requested_at, "by": s.actor}
        for s in state.values()
    ]
    print(render(records, fmt))
    if fmt == "table":
        history = store.sharing_history(system, code)
        print("\nHistory:" if history else "\nHistory: no changes yet.")
        if history:
            print(render([{**h, "enabled": "on" if h["enabled"] else "off"} for h in history], "table"))
    return 0


def _as_of(value: str | None) -> date | None:
    return _date_arg("--as-of", value)


def _date_arg(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Refused(f"{option} {value!r}: use YYYY-MM-DD") from None


def cmd_publish(args, settings) -> int:
    from analytics.release.publish import publish

    started = time.perf_counter()
    store = Store.from_settings(settings)
    release_id = publish(settings, store, as_of=_as_of(args.as_of), epsilon=args.epsilon, wait=args.wait,
                         engine=args.engine,
                         progress=lambda line: print(f"[{time.perf_counter() - started:6.1f}s] {line}",
                                                     file=sys.stderr, flush=True))
    print(release_id)
    return 0


def cmd_release(args, settings) -> int:
    from analytics.release.manifest import current_release_id, read_manifest, release_path, verify_release

    store = Store.from_settings(settings)
    if args.action == "use":
        from analytics.release.publish import use_release

        previous = current_release_id(settings.community_dir)
        use_release(settings, store, args.id)
        print(f"release {args.id} is current (was {previous or 'none'})")
        return 0
    path = release_path(settings.community_dir, args.id)
    if args.action == "verify":
        started = time.perf_counter()
        problems = verify_release(settings, store, path.name)
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        if problems:
            return 2
        print(f"release {path.name}: every rule holds ({time.perf_counter() - started:.1f} s)")
        return 0
    manifest = read_manifest(path)
    if args.format == "json":
        print(json.dumps(manifest, indent=2))
        return 0
    print(f"release {manifest['release_id']} (created {manifest['created_at']}, data as of {manifest['as_of']})")
    print("thresholds: " + ", ".join(f"{k}={v}" for k, v in manifest["privacy"].items()))
    rows = [{"service": service, "region": region, "contributors": n}
            for service, regions in manifest["contributors"].items() for region, n in sorted(regions.items())]
    print(render(rows, args.format))
    print()
    print(render([{"file": f, "rows": n} for f, n in manifest["row_counts"].items()], args.format))
    return 0


def _collection_context(args, settings):
    """The store, the institution and the open current release, after the reciprocity check."""
    from analytics.release.handle import open_release

    store, system, institution = _institution(settings, args.code)
    require_collection_sharing_cli(store, institution.code)
    return store, institution, open_release(settings.community_dir)


def require_collection_sharing_cli(store: Store, code: str) -> None:
    """The CLI acts for an institution: it gets community data only if that institution shares."""
    state = store.sharing_state(Principal.system_job(), code)["collection_development"]
    if not state.in_effect:
        raise Refused(f"{code} does not share Selection and Collection Development data, so it cannot see the "
                      f"community's; an administrator can turn sharing on (python -m analytics sharing {code} "
                      f"--collection-development on --actor ADMIN).")


def cmd_trending(args, settings) -> int:
    from analytics.views.trends import Filters, trending
    from analytics.views.collection import own_identifiers

    _store, institution, release = _collection_context(args, settings)
    subject = (args.subject or "").strip().upper() or None
    filters = Filters(region=(args.region or institution.region).upper(), window=args.months,
                      lc_class=subject if subject and len(subject) == 1 else None,
                      lc_subclass=subject if subject and len(subject) > 1 else None,
                      not_held=args.not_held, limit=args.limit)
    keys, isbns = own_identifiers(Principal.system_job(), settings.data_dir, institution.code) if args.not_held else ([], [])
    ranked = trending(release, filters, keys, isbns)
    records = [{"work_key": r["work_key"], "title": r["title"], "author": r["author"], "isbns": r["isbns"],
                "subject": r["subject"], "score": round(r["score"], 4), "recent": r["recent"],
                "baseline": r["baseline"], "loans_recent": r["loans_recent"],
                "e_requests_recent": r["e_requests_recent"], "acquisitions_recent": r["acquisitions_recent"],
                "reading_lists_recent": r["reading_lists_recent"], "holders": r["institutions_holding"]}
               for r in ranked.iter_rows(named=True)]
    print(render(records, args.format))
    return 0


def cmd_selection(args, settings) -> int:
    from analytics.views.selection import SelectionFilters, selection
    from analytics.views.collection import own_identifiers

    _store, institution, release = _collection_context(args, settings)
    keys, isbns = own_identifiers(Principal.system_job(), settings.data_dir, institution.code)
    report = selection(release, SelectionFilters(region=institution.region, peer_group=args.peer_group,
                                                 min_acquired_percent=args.min_percent, min_lists=args.min_lists,
                                                 limit=args.limit), keys, isbns)
    records = [{"work_key": r["work_key"], "title": r["title"], "author": r["author"], "isbns": r["isbns"],
                "subject": r["subject"], "peer_group": r["peer_group"], "group_size": r["group_size"],
                "acquired_12m": r["institutions_acquired_12m"], "listing": r["institutions_listing"],
                "holders": r["institutions_holding"]} for r in report.iter_rows(named=True)]
    print(render(records, args.format))
    return 0


def cmd_deselection(args, settings) -> int:
    from analytics.views.deselection import DeselectionRules, deselection, many_holders

    _store, institution, release = _collection_context(args, settings)
    rules = DeselectionRules(region=institution.region, no_loans_years=args.no_loans_years,
                             published_before=args.published_before,
                             min_holders=args.min_holders or many_holders(release.manifest, "collection_development",
                                                                          institution.region),
                             limit=args.limit)
    result = deselection(Principal.system_job(), release, settings.data_dir, institution.code, rules)
    frame = result["retain" if args.retention else "withdraw"]
    records = [{**row, "isbns": (row["isbn"] or "").split(";") if row["isbn"] else [],
                "holders": row.get("institutions_holding")} for row in frame.iter_rows(named=True)]
    for record in records:
        record.pop("isbn")
        record.pop("institutions_holding", None)
    if args.format == "table":
        tiles = result["tiles"]
        print(f"{institution.code}: {tiles['items']:,} items; zero use {tiles['zero_use']:,}; more than 3 uses "
              f"{tiles['more_than_3_uses']:,}; older than 10 years {tiles['older_than_10_years']:,}; widely held "
              f"{tiles['widely_held']:,}; scarce (held by at most {result['scarce_max_holders']} in "
              f"{institution.region}) {tiles['scarce']:,}")
        total = result["retain_total" if args.retention else "withdraw_total"]
        print(f"{'Retention' if args.retention else 'Withdrawal'} candidates: {total:,} (showing {len(records):,})")
        if not args.retention and result["committed_left_out"]:
            print(f"Left out: {result['committed_left_out']:,} items whose works you committed to retain")
    print(render(records, args.format))
    return 0


def cmd_compare(args, settings) -> int:
    from analytics.views.comparison import ComparisonFilters, compare, peer_group_name

    _store, institution, release = _collection_context(args, settings)
    filters = ComparisonFilters(region=institution.region, peer_group=peer_group_name(args.peers),
                                gap_percent=args.gap_percent, limit=args.limit)
    result = compare(Principal.system_job(), release, settings.data_dir, institution.code, filters)
    group = {"peer_group": result.peer_group, "group_size": result.group_size}
    if args.list == "gaps":
        records = [{"work_key": r["work_key"], "title": r["title"], "author": r["author"], "isbns": r["isbns"],
                    "lc_class": r["lc_class"], "lc_subclass": r["lc_subclass"], **group,
                    "group_holding": r["group_holding"], "group_share": round(r["group_share"], 4)}
                   for r in result.gaps.iter_rows(named=True)]
    elif args.list == "works":
        records = [{"work_key": r["work_key"], "title": r["title"], "author": r["author"], "isbns": r["isbns"],
                    "lc_class": r["lc_class"], "lc_subclass": r["lc_subclass"], **group,
                    "group_holding": r["group_holding"], "shown_as_held_by_group": r["overlap"],
                    "region_holding": r["region_holding"], "region_band": r["band"]}
                   for r in result.works.iter_rows(named=True)]
    else:
        rows = [*result.summary.iter_rows(named=True), {"lc_class": "total", "lc_subclass": None, **result.totals}]
        records = [{**group, "lc_class": r["lc_class"], "lc_subclass": r["lc_subclass"],
                    "your_works": r["your_works"], "overlap": r["overlap"],
                    "overlap_share": None if r["overlap_share"] is None else round(r["overlap_share"], 4),
                    "not_shown_as_held": r["not_shown"], "gaps": r["gaps"]} for r in rows]
    print(render(records, args.format))
    return 0


def cmd_recommend(args, settings) -> int:
    from analytics.views import recommend
    from analytics.control.recommend_catalog import CATALOG

    store, system, institution = _institution(settings, args.code)
    unknown = [t for t in args.types or [] if t not in CATALOG]
    if unknown:
        raise Refused(f"--type {', '.join(unknown)}: choose from {', '.join(CATALOG)}.")
    recommend.require_recommendations(system, store, institution.code)
    release = recommend.open_part(settings.community_dir)
    result = recommend.recommendations(system, store, release, settings.data_dir, institution.code)
    records = []
    for r in result.records:
        if (args.types and r.type not in args.types) or (not args.all and r.status != "new"):
            continue
        kind = CATALOG[r.type]
        records.append({
            "id": r.id, "type": r.type, "category": kind.category, "target": r.target,
            "summary": r.summary, "evidence": r.evidence.get("items", []), "impact": r.impact,
            "status": r.status, "how": r.how, "reason": r.reason, "grade": r.grade,
            "roles": list(kind.roles), "first_release": r.first_release, "last_release": r.last_release,
        })
    if args.format == "table":
        open_count = sum(1 for r in result.records if r.status == "new")
        print(f"{institution.code}: {open_count} open recommendation(s) on release {result.release_id}")
        for record in records:
            record["evidence"] = "; ".join(f"{e['label']}: {e['value']}" for e in record["evidence"])
        records = [{k: r[k] for k in ("id", "type", "status", "summary", "impact", "evidence")} for r in records]
    print(render(records, args.format))
    return 0


def cmd_benchmark(args, settings) -> int:
    from analytics.views import benchmark
    from analytics.release.handle import open_release

    store, system, institution = _institution(settings, args.code)
    benchmark.require_benchmark_view(system, store, institution.code)
    group = benchmark.parse_peers(args.peers)
    release = open_release(settings.community_dir)
    own = benchmark.own_counted(Principal.system_job(), settings.data_dir, institution, date.fromisoformat(release.manifest["as_of"]),
                                store.own_kpi_values(system, institution.code, release.release_id))
    rows = benchmark.report(release, institution, own, peer_group=group, kpis=args.kpi, period=args.period,
                            variant="trim10" if args.trimmed else "none",
                            monthly=bool(args.period and len(args.period) == 7))
    known = benchmark.released_groups(release, institution.region)["peer_group"].to_list()
    if group not in known and group != "all":
        print(f"note: peer group {group!r} has no released cell in {institution.region}; released groups: "
              f"{', '.join(known) or 'none'}", file=sys.stderr)
    records = rows.to_dicts()
    if args.format == "table":
        print(f"{institution.code} ({institution.region}), peer group {group}, release {release.release_id}")
        records = [{k: r[k] for k in ("kpi", "period", "n", "p25", "median", "p75", "mean", "own_value", "band")}
                   | {"note": r["reason"] or (f"noisy (mean ±{r['mean_noise_sd']:.3g})" if r["method"] == "dp"
                                              else "")} for r in records]
    print(render(records, args.format))
    return 0


def cmd_lastcopy(args, settings) -> int:
    from analytics.views import lastcopy

    if args.format == "xlsx" and args.output is None:
        raise Refused("--format xlsx writes a workbook: name the file with --output PATH "
                      "(or print CSV or JSON with --format csv|json).")
    _store, institution, release = _collection_context(args, settings)
    result = lastcopy.run(Principal.system_job(), release, settings.data_dir, institution.code, institution.region,
                          args.file, parse_mapping(args.map))
    summary = result.summary
    verdicts = "; ".join(f"{verdict} {n:,}" for verdict, n in summary["verdicts"].items())
    headline = (f"{institution.code}: {summary['read']:,} rows read: {summary['matched']:,} matched, "
                f"{summary['unmatched']:,} not matched ({verdicts}). Columns read: "
                + ", ".join(f"{c}={s}" for c, s in result.mapping.items()) + ".")
    if args.format == "table":
        print(headline)
        print(render(lastcopy.records(result), "table"))
        if summary["unmatched"]:
            print(f"\nNot matched ({summary['unmatched']:,}):")
            print(render(result.unmatched.select("Row", "Reason").to_dicts(), "table"))
        return 0
    if args.format == "xlsx":
        data = lastcopy.excel_bytes(result)
    elif args.format == "csv":
        data = lastcopy.csv_bytes(result)
    else:
        data = json.dumps(lastcopy.records(result), default=str, indent=2, ensure_ascii=False).encode("utf-8")
    if args.output:
        args.output.write_bytes(data)
        print(f"{headline} Written to {args.output}.")
    else:
        sys.stdout.write(data.decode("utf-8"))
        print(headline, file=sys.stderr)
    return 0


def cmd_bench(args, settings) -> int:
    from analytics.tools.bench import run_bench

    return run_bench(settings, scale=args.scale, only=args.only, rows=args.rows, engine=args.engine,
                     community=args.community)


def cmd_undo_import(args, settings) -> int:
    from analytics.ingest.tabular import undo_import

    store, system, _ = _institution(settings, args.code)  # fails clearly on an unknown code
    result = undo_import(settings.data_dir, system, args.code, args.kind)
    store.record_import(system, args.code, args.kind, "(undo of the last import)", "undone", result)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.code} {args.kind}: back to the version before the last import "
              f"({result['rows_before_undo']:,} rows -> {result['rows_after_undo']:,}); undo again to redo it.")
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "institution": cmd_institution,
    "user": cmd_user,
    "import": cmd_import,
    "undo-import": cmd_undo_import,
    "sharing": cmd_sharing,
    "publish": cmd_publish,
    "release": cmd_release,
    "trending": cmd_trending,
    "selection": cmd_selection,
    "deselection": cmd_deselection,
    "compare": cmd_compare,
    "recommend": cmd_recommend,
    "benchmark": cmd_benchmark,
    "lastcopy": cmd_lastcopy,
    "bench": cmd_bench,
}

