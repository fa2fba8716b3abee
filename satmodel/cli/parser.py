"""The ``satmodel`` argument parser: every command, its options, ``--help`` with an example."""

from __future__ import annotations

import argparse
import re

from satmodel.cli.commands import (
    as_of_date,
    cmd_case_study,
    cmd_components,
    cmd_demo,
    cmd_features,
    cmd_fit,
    cmd_proposal,
    cmd_report,
    cmd_targets,
    cmd_validate,
    cmd_value,
)
from satmodel.hints import did_you_mean
from satmodel.vocabulary import DEFAULT_ASSURANCE

SRC_HELP = (
    "a DuckDB file, a folder of <table>.parquet/.csv files, or a satmodel.toml "
    "(default: data/satmodel.duckdb)"
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, with a did-you-mean hint.

    ``options`` lists every option string added, for the hint on an unknown option;
    ``commands`` the parsers of the subcommands by name.
    """

    def __init__(self, *args, **kwargs):
        # set before argparse's __init__, which already adds --help
        self.options: list[str] = []
        self.commands: dict[str, Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        self.options += [a for a in args if isinstance(a, str) and a.startswith("-")]
        return super().add_argument(*args, **kwargs)

    def error(self, message: str):
        """Print ``satmodel <cmd>: error: ...; see satmodel <cmd> --help`` and exit 2."""
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            message += did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def subcommand(self, name: str | None) -> Parser:
        """The parser of subcommand ``name`` (this parser when there is none)."""
        return self.commands.get(name, self)

    def unknown_options(self, extras: list[str]) -> None:
        """Fail on arguments nobody took, naming the option meant when one is close."""
        first = extras[0].split("=", 1)[0]
        hint = did_you_mean(first, self.options) if first.startswith("-") else ""
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


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
    parser = Parser(
        prog="satmodel",
        description="Customer satisfaction modelling: from service telemetry to the service "
        "level a satisfaction target needs.",
        epilog="Example: satmodel demo && satmodel validate && satmodel features --out panel.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

    def add(name: str, help_text: str, example: str) -> Parser:
        parser.commands[name] = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"Example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser.commands[name]

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
    demo.add_argument(
        "--start",
        default=None,
        help="first month, YYYY-MM (default: the months end at the last complete month)",
    )
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
    features.add_argument(
        "--out",
        required=True,
        help="the file to write: FILE.parquet or FILE.csv (the suffix decides the format)",
    )
    features.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default=None,
        help="execution engine (default: [source] engine of the config, else duckdb)",
    )
    features.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help="Spark master for --engine spark: local-cluster[2,1,1024], spark://host:7077, "
        "yarn (default: [spark] master, else local[1])",
    )
    features.add_argument(
        "--spark-remote",
        default=None,
        metavar="sc://HOST:PORT",
        help="Spark Connect server for --engine spark (Databricks, EMR), instead of a master",
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
    fit_parser.add_argument("--weights", help="weight column (see --weights-kind)")
    fit_parser.add_argument(
        "--weights-kind",
        choices=["frequency", "analytic"],
        default="frequency",
        help="frequency: a row counts as w observations (default); analytic: relative "
        "precisions, normalised to sum to the number of rows",
    )
    fit_parser.add_argument("--cluster", help="cluster column for cluster-robust standard errors")
    fit_parser.add_argument(
        "--se-correction",
        choices=["statsmodels", "stata"],
        default="statsmodels",
        help="small-sample factor of cluster-robust errors: statsmodels (and R sandwich) "
        "G/(G-1)(N-1)/(N-k) (default), or stata: G/(G-1) as vce(cluster)",
    )
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
        "the lever level needed to reach a satisfaction or complaint target: the model's "
        "average over the segment's real customer-months of the month, the lever set in each, "
        "other drivers as they are (with a confidence interval)",
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
    targets.add_argument("--segment", help="average over this segment's customer-months")
    targets.add_argument("--customer", help="... or over this customer's customer-months")
    targets.add_argument("--month", help="YYYY-MM of 'now' (default: the last month of the data)")
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
        "--window",
        type=int,
        default=1,
        help="months (ending at --month) whose customer-months are held (default: 1)",
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
    report.add_argument(
        "--as-of",
        type=as_of_date,
        metavar="YYYY-MM-DD",
        help="the day the run counts as (default: today): the month before it is the last "
        "complete month, which the data must hold (else exit 3: stale feed)",
    )
    report.add_argument(
        "--allow-stale",
        action="store_true",
        help="a stale feed (the last complete month missing from the data) exits 0, not 3; "
        "the report still names it",
    )
    report.add_argument(
        "--notify-command",
        metavar="CMD",
        help="run CMD (shell words, no shell) when the exit code is 1 or 3, with "
        "SATMODEL_EXIT_CODE, SATMODEL_REPORT and SATMODEL_MESSAGE in its environment",
    )
    report.add_argument(
        "--log-timestamps",
        action="store_true",
        help="start every log line with the UTC time (ISO 8601), for cron and journal logs",
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
        "--assurance 0.9 --out reports/proposals",
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
    proposal.add_argument(
        "--assurance",
        type=float,
        default=DEFAULT_ASSURANCE,
        metavar="P",
        help="the cheapest plan must reach each target with probability P (between 0 and 1) "
        f"over the models' uncertainty, e.g. 0.9 (default: {DEFAULT_ASSURANCE:g})",
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

    value = add(
        "value",
        "churn and revenue at risk from service quality, and the revenue each lever retains "
        "(needs a contracts table)",
        "satmodel value --month 2026-10 --horizon 12 --json value.json",
    )
    value.add_argument("--data", default=None, help=SRC_HELP)
    value.add_argument(
        "--month",
        help="the month 'today', YYYY-MM (default: the last complete month in the data)",
    )
    value.add_argument(
        "--horizon", type=int, default=12, help="months ahead (default: 12)", metavar="MONTHS"
    )
    value.add_argument("--seed", type=int, default=0, help="random seed of the interval draws")
    value.add_argument("--json", help="write the result as JSON to this file ('-' for stdout)")
    value.set_defaults(func=cmd_value)

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
