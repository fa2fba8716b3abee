"""The ``satmodel`` command line (contract: docs/contract.md, "Commands").

Exit codes: 0 success, 2 bad input or usage (one line per problem on stderr, no traceback),
1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from satmodel.errors import InputError, SatmodelError

SRC_HELP = (
    "a DuckDB file, a folder of <table>.parquet/.csv files, or a satmodel.toml "
    "(default: data/satmodel.duckdb)"
)


def _workbook(src):
    """A workbook on a source, its bad rows quarantined (and kept in the source), telling the
    user how many were set aside."""
    from satmodel.workbook import Workbook

    book = Workbook(src, persist_rejected=True)
    if book.n_rejected:
        print(
            f"satmodel: {book.n_rejected:,} rows quarantined (see `satmodel validate`); "
            "going on with the clean rows",
            file=sys.stderr,
        )
    return book


def _write_json(payload: dict, out: str | None) -> None:
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    target = Path(out)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"wrote {target}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    from satmodel.demo import generate_demo

    result = generate_demo(
        out_dir=args.out,
        customers=args.customers,
        months=args.months,
        seed=args.seed,
        start_month=args.start,
        duckdb_path=args.duckdb,
        progress=not args.quiet,
        force=args.force,
        customer_effects=not args.no_customer_effects,
    )
    rows = ", ".join(f"{table} {count:,}" for table, count in result.row_counts.items())
    print(f"demo data: {rows}")
    print(f"tables and truth.json in {result.out_dir}; loaded into {args.duckdb}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from satmodel.validation import validate

    report = validate(args.data, persist=not args.no_persist)
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}")
    if report.ok:
        print("valid: every row meets the data contract")
        return 0
    for line in report.problem_lines():
        print(line, file=sys.stderr)
    return 2


def cmd_features(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from satmodel.features import write_panel

    path = write_panel(_workbook(args.data).source_, args.out, engine=args.engine)
    metadata = pq.read_metadata(path)
    print(f"wrote {path}: {metadata.num_rows:,} customer-months, {metadata.num_columns} columns")
    return 0


def _fit_table(data: str, formula: str):
    """The table to fit: a single CSV/Parquet file, or the panel (or responses) of a source."""
    from satmodel.sources import read_table_file

    path = Path(data)
    if path.suffix.lower() in (".csv", ".parquet", ".txt"):
        return read_table_file(path)
    return _workbook(data).table_for(formula)


def cmd_fit(args: argparse.Namespace) -> int:
    table = _fit_table(args.data, args.formula)
    from satmodel.models import fit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(
            table,
            args.formula,
            args.family,
            exposure=args.exposure,
            weights=args.weights,
            cluster=args.cluster,
            link=args.link,
            order=args.order,
            within=args.within,
            time_effects=args.time_effects,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        _write_json(result.to_dict(), args.json)
    else:
        print(result.summary())
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from satmodel.insights import LEVERS, OUTCOMES

    if args.outcome not in OUTCOMES:
        raise InputError(
            f"outcome {args.outcome!r}: not a supported outcome (valid: {', '.join(OUTCOMES)}; "
            f"e.g. csat_top2_rate)"
        )
    if args.lever not in LEVERS:
        raise InputError(
            f"lever {args.lever!r}: column is not a service lever (valid levers: "
            f"{', '.join(LEVERS)}; e.g. latency_p95_ms)"
        )
    from satmodel.insights import solve_target
    from satmodel.insights.scenarios import check_customer, check_lever, check_segment
    from satmodel.models import fit_default_models

    book = _workbook(args.data)
    panel = book.panel_
    check_lever(args.lever, panel)
    check_segment(args.segment, panel)
    check_customer(args.customer, panel)
    responses = None
    if args.outcome != "complaint_rate_per_1k":
        responses = book.responses_
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = fit_default_models(
            responses, panel if args.outcome == "complaint_rate_per_1k" else None
        )
        result = solve_target(
            models,
            panel,
            args.outcome,
            args.target,
            args.lever,
            segment=args.segment,
            customer=args.customer,
            n_sim=args.n_sim,
            top2_model=args.top2_model,
            window=args.window,
            seed=args.seed,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    payload = result.to_dict()
    if args.json:
        _write_json(payload, args.json)
    who = args.customer or args.segment or "all customers"
    stream = sys.stderr if args.json == "-" else sys.stdout
    if not result.feasible:
        print(
            f"{args.outcome} {result.direction} {args.target:g} for {who}: not reachable with "
            f"{args.lever} anywhere in {result.physical_min:g}..{result.physical_max:g} "
            f"{result.unit} (best possible: {result.best_outcome:.4g})",
            file=stream,
        )
    else:
        note = " (extrapolated beyond the observed range)" if result.extrapolated else ""
        print(
            f"{args.outcome} {result.direction} {args.target:g} for {who}: {args.lever} "
            f"{result.required:.4g} {result.unit} (95% CI {result.ci_low:.4g}..{result.ci_high:.4g}; "
            f"now {result.current:.4g}){note}",
            file=stream,
        )
    return 0


def _allow_outside(args: argparse.Namespace) -> bool:
    """Whether --data and --out may lie outside the project's data/ and reports/ folders.

    Paths named on the command line are the user's explicit choice (docs/contract.md takes
    any SRC and DIR), so they are allowed unless confinement is switched on with
    --confine-paths or SATMODEL_CONFINE_PATHS=1 (for schedulers and shared deployments);
    --allow-outside or SATMODEL_ALLOW_PATHS=1 then lifts it again.
    """
    from satmodel.jobs.confinement import allowed_outside_by_env, confined_by_env

    confined = bool(getattr(args, "confine_paths", False)) or confined_by_env()
    return not confined or bool(args.allow_outside) or allowed_outside_by_env()


def cmd_report(args: argparse.Namespace) -> int:
    from satmodel.jobs.report import ReportRequest, run_report

    request = ReportRequest(
        month=args.month,
        data=args.data,
        out=args.out,
        from_month=args.from_month,
        to_month=args.to_month,
        progress=not args.quiet,
        wait=args.wait,
        allow_outside=_allow_outside(args),
        pseudonymise=args.pseudonymise,
    )
    result = run_report(request)
    for folder in result if isinstance(result, list) else [result]:
        print(f"wrote {folder}/ (report.ipynb, summary.json, manifest.json)")
        print(f"open {Path(folder).resolve() / 'report.html'}")
    return 0


def cmd_proposal(args: argparse.Namespace) -> int:
    from satmodel.jobs.proposal import ProposalRequest, run_proposal

    request = ProposalRequest(
        segment=args.segment,
        customer=args.customer,
        csat_target=args.csat_target,
        complaint_target=args.complaint_target,
        data=args.data,
        out=args.out,
        month=args.month,
        tiers=args.tiers,
        progress=not args.quiet,
        wait=args.wait,
        allow_outside=_allow_outside(args),
        pseudonymise=args.pseudonymise,
    )
    folder = run_proposal(request)
    print(f"wrote {folder}/ (proposal.ipynb, summary.json, manifest.json)")
    print(f"open {Path(folder).resolve() / 'proposal.html'}")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    from satmodel.insights.components import component_costs

    book = _workbook(args.data)
    if not book.source_.has("incidents"):
        raise InputError(
            f"incidents: table not found in {book.source_.location} (components need it)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = component_costs(
            book.source_, book.panel_, book.responses_, month=args.month, n_draws=args.n_draws
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        _write_json(result.to_dict(), args.json)
    stream = sys.stderr if args.json == "-" else sys.stdout
    months = args.month or f"{result.months[0]}..{result.months[1]}"
    print(f"components by the satisfaction their downtime costs ({months}):", file=stream)
    for row in result.components_.itertuples():
        print(
            f"  {row.component_id}: +{row.csat_points:.3f} CSAT points "
            f"(95% CI {row.csat_points_ci_low:.3f}..{row.csat_points_ci_high:.3f}), "
            f"{row.downtime_minutes:,.0f} customer-minutes, {row.incidents} incidents",
            file=stream,
        )
    return 0


def cmd_case_study(args: argparse.Namespace) -> int:
    from satmodel.casestudies import run_case_study

    folder = run_case_study(args.name, data=args.data, out=args.out)
    print(f"wrote {folder}/ (report.ipynb, summary.json, manifest.json)")
    print(f"open {Path(folder).resolve() / 'report.html'}")
    return 0


def _add_safety_options(parser: argparse.ArgumentParser) -> None:
    """--allow-outside and --pseudonymise of the report and proposal commands."""
    parser.add_argument(
        "--confine-paths",
        action="store_true",
        help="refuse --data and --out outside the project's data/ and reports/ folders, and "
        "source files a satmodel.toml names outside them (also: SATMODEL_CONFINE_PATHS=1)",
    )
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="lift --confine-paths / SATMODEL_CONFINE_PATHS (also: SATMODEL_ALLOW_PATHS=1)",
    )
    parser.add_argument(
        "--pseudonymise",
        action="store_true",
        help="show every customer id as a stable keyed pseudonym (cust-...), for reports "
        "that leave the team; key from SATMODEL_PSEUDONYM_KEY, else data/pseudonym.key "
        "(created on first use)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand, each with an example in its help."""
    parser = argparse.ArgumentParser(
        prog="satmodel",
        description="Customer satisfaction modelling: from service telemetry to the service "
        "level a satisfaction target needs.",
        epilog="Example: satmodel demo && satmodel validate && satmodel features --out panel.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"Example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    demo = add(
        "demo",
        "write a synthetic company's canonical tables and truth.json, and load them into DuckDB",
        "satmodel demo --customers 200 --months 12 --seed 7 --out data/demo",
    )
    demo.add_argument(
        "--out",
        default="data/demo",
        help="folder for the Parquet tables and truth.json (default: data/demo)",
    )
    demo.add_argument(
        "--customers", type=int, default=500, help="number of customers (default: 500)"
    )
    demo.add_argument("--months", type=int, default=24, help="number of months (default: 24)")
    demo.add_argument("--seed", type=int, default=20261, help="random seed (default: 20261)")
    demo.add_argument("--start", default="2024-11", help="first month, YYYY-MM (default: 2024-11)")
    demo.add_argument(
        "--duckdb",
        default="data/satmodel.duckdb",
        help="DuckDB file to load (default: data/satmodel.duckdb); an existing file is only "
        "rewritten when the demo made it",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="also load into an existing DuckDB file the demo did not make (its canonical "
        "tables are replaced, its other tables kept)",
    )
    demo.add_argument(
        "--no-customer-effects",
        action="store_true",
        help="no hidden customer effects: outcomes depend on the panel's drivers only, so "
        "pooled fits recover the truth (by default customers with persistently slower "
        "service are also less satisfied for reasons no table records)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=cmd_demo)

    validate = add(
        "validate",
        "check every table and row against the data contract (exit 2 when anything breaks it)",
        "satmodel validate --data data/satmodel.duckdb",
    )
    validate.add_argument("--data", default=None, help=SRC_HELP)
    validate.add_argument(
        "--no-persist",
        action="store_true",
        help="do not write the rejected rows back to the source",
    )
    validate.set_defaults(func=cmd_validate)

    features = add(
        "features",
        "build the service panel: one row per customer and month",
        "satmodel features --data data/satmodel.duckdb --out data/panel.parquet",
    )
    features.add_argument("--data", default=None, help=SRC_HELP)
    features.add_argument("--out", required=True, help="the Parquet file to write")
    features.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="execution engine (default: duckdb)",
    )
    features.set_defaults(func=cmd_features)

    fit_parser = add(
        "fit",
        "fit one model (ordinal, logit, ols, poisson, negbin) and report its coefficients",
        "satmodel fit --data ships.csv --formula 'accident ~ yr_con + op_75_79' "
        "--family negbin --exposure service --json fit.json",
    )
    fit_parser.add_argument(
        "--data",
        required=True,
        help="a CSV/Parquet table of any columns, or a source (" + SRC_HELP + ")",
    )
    fit_parser.add_argument(
        "--formula",
        required=True,
        help="a statsmodels/patsy formula, e.g. 'csat ~ np.log(latency_p95_ms)'",
    )
    fit_parser.add_argument(
        "--family",
        required=True,
        choices=["ordinal", "logit", "ols", "poisson", "negbin"],
        help="model family",
    )
    fit_parser.add_argument("--exposure", help="exposure column: log(COL) is the offset")
    fit_parser.add_argument("--weights", help="frequency-weight column")
    fit_parser.add_argument("--cluster", help="cluster column for cluster-robust standard errors")
    fit_parser.add_argument(
        "--within",
        metavar="COL",
        help="within-COL effects (correlated random effects / Mundlak: COL-means of the varying "
        "drivers enter the model; errors clustered by COL unless --cluster says otherwise)",
    )
    fit_parser.add_argument(
        "--time-effects",
        choices=["month"],
        help="add one effect per month (platform-wide shocks)",
    )
    fit_parser.add_argument(
        "--order", help="order of a non-numeric ordinal outcome, e.g. low,mid,high"
    )
    fit_parser.add_argument(
        "--link", choices=["logit", "probit"], default="logit", help="ordinal link (default: logit)"
    )
    fit_parser.add_argument("--json", help="write the result as JSON to this file ('-' for stdout)")
    fit_parser.set_defaults(func=cmd_fit)

    targets = add(
        "targets",
        "the lever level needed to reach a satisfaction or complaint target, other drivers "
        "held at the segment's current values (with a confidence interval)",
        "satmodel targets --data data/satmodel.duckdb --outcome csat_top2_rate --target 0.8 "
        "--lever latency_p95_ms --segment smb --json out.json",
    )
    targets.add_argument("--data", default=None, help=SRC_HELP)
    targets.add_argument(
        "--outcome",
        required=True,
        help="csat_mean, csat_top2_rate or complaint_rate_per_1k",
    )
    targets.add_argument(
        "--target",
        required=True,
        type=float,
        help="the target: at least X for csat_*, at most X for complaint_rate_per_1k",
    )
    targets.add_argument(
        "--lever",
        required=True,
        help="the service level to solve for: availability_pct, downtime_minutes, "
        "latency_p95_ms, resolution_hours_median or error_rate",
    )
    targets.add_argument("--segment", help="hold other drivers at this segment's current values")
    targets.add_argument("--customer", help="... or at this customer's current values")
    targets.add_argument(
        "--n-sim",
        type=int,
        default=2000,
        help="parameter draws for the confidence interval (default: 2000)",
    )
    targets.add_argument(
        "--top2-model",
        choices=["ordinal", "logit"],
        default="ordinal",
        help="csat_top2_rate from the ordinal CSAT model (default) or the top-2 logit",
    )
    targets.add_argument(
        "--window", type=int, default=1, help="months summarised as 'current' (default: 1)"
    )
    targets.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    targets.add_argument("--json", help="write the result as JSON to this file ('-' for stdout)")
    targets.set_defaults(func=cmd_targets)

    report = add(
        "report",
        "run the monthly report notebook into DIR/YYYY-MM/ (HTML, executed notebook, "
        "summary.json, manifest.json)",
        "satmodel report --month 2026-10 --data data/satmodel.duckdb --out reports",
    )
    report.add_argument(
        "--month",
        help="the month to report, YYYY-MM (default: the last complete month in the data)",
    )
    report.add_argument("--data", default=None, help=SRC_HELP)
    report.add_argument("--out", default="reports", help="reports folder (default: reports)")
    report.add_argument(
        "--from",
        dest="from_month",
        metavar="YYYY-MM",
        help="backfill: first month (with --to; every month in between is built)",
    )
    report.add_argument(
        "--to",
        dest="to_month",
        metavar="YYYY-MM",
        help="backfill: last month (default: the last complete month in the data)",
    )
    report.add_argument(
        "--wait",
        action="store_true",
        help="wait for another run of the same month to finish instead of failing",
    )
    _add_safety_options(report)
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    report.set_defaults(func=cmd_report)

    proposal = add(
        "proposal",
        "run the sales notebook into a one-page expectation-to-support proposal: the service "
        "level (availability, p95 latency, resolution time) a CSAT target needs, per tier, "
        "with its cost",
        "satmodel proposal --segment enterprise --csat-target 4.3 --complaint-target 2 "
        "--out reports/proposals",
    )
    who = proposal.add_mutually_exclusive_group(required=True)
    who.add_argument("--segment", help="the customer segment the proposal is for")
    who.add_argument("--customer", help="the customer (customer_id) the proposal is for")
    proposal.add_argument(
        "--csat-target",
        type=float,
        required=True,
        metavar="X",
        help="the mean CSAT (1-5) the customer expects, e.g. 4.3",
    )
    proposal.add_argument(
        "--complaint-target",
        type=float,
        metavar="Y",
        help="at most Y complaints per 1,000 active users per month (optional)",
    )
    proposal.add_argument("--data", default=None, help=SRC_HELP)
    proposal.add_argument(
        "--out",
        default="reports/proposals",
        help="proposals folder; one folder per proposal (default: reports/proposals)",
    )
    proposal.add_argument(
        "--month",
        help="use the data up to this month, YYYY-MM (default: the last complete month)",
    )
    proposal.add_argument(
        "--tiers",
        help="candidate tiers as 'NAME availability%%/p95 ms/resolution h; ...', e.g. "
        "'Bronze 99.5/800/24; Silver 99.9/500/8; Gold 99.95/300/4' (the default)",
    )
    proposal.add_argument(
        "--wait",
        action="store_true",
        help="wait for another run of the same proposal to finish instead of failing",
    )
    _add_safety_options(proposal)
    proposal.add_argument("--quiet", action="store_true", help="no progress bar")
    proposal.set_defaults(func=cmd_proposal)

    components = add(
        "components",
        "which IT components and which recurring problems cost the most satisfaction and "
        "complaints",
        "satmodel components --month 2026-10 --json components.json",
    )
    components.add_argument("--data", default=None, help=SRC_HELP)
    components.add_argument(
        "--month", default=None, help="count this month (YYYY-MM; default: every month)"
    )
    components.add_argument("--json", default=None, help="write the result as JSON (- = stdout)")
    components.add_argument(
        "--n-draws", type=int, default=200, help="parameter draws for the intervals (default 200)"
    )
    components.set_defaults(func=cmd_components)

    case_study = add(
        "case-study",
        "run a real-data case study (Olist delivery reviews, DOT baggage complaints) into a "
        "report like the monthly one",
        "satmodel case-study olist_delivery --data examples/olist/satmodel.toml "
        "--out reports/case_studies",
    )
    case_study.add_argument(
        "name", choices=["olist_delivery", "dot_baggage"], help="the case study"
    )
    case_study.add_argument(
        "--data", default=None, help="its satmodel.toml (default: the one under examples/)"
    )
    case_study.add_argument(
        "--out",
        default="reports/case_studies",
        help="parent folder (default: reports/case_studies)",
    )
    case_study.set_defaults(func=cmd_case_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        for line in exc.problems:
            print(f"satmodel: {line}", file=sys.stderr)
        return 2
    except SatmodelError as exc:
        print(f"satmodel: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("satmodel: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # internal error: one line, traceback only on request
        if args.debug or os.environ.get("SATMODEL_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"satmodel: internal error: {type(exc).__name__}: {first} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
