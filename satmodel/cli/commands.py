"""What each ``satmodel`` command does (the parser is in :mod:`satmodel.cli.parser`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from datetime import date
from pathlib import Path

from satmodel.errors import InputError, SatmodelError
from satmodel.hints import did_you_mean


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


def _written(folder: str | Path) -> str:
    """The files a run published in ``folder``, by name: ``customers_at_risk.csv, ...``."""
    names = sorted(
        p.name for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")
    )
    return ", ".join(names) or "no files"


def _write_json(payload: dict, out: str | None) -> None:
    from satmodel.jobs.files import write_text

    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    target = Path(out)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, text)
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


PANEL_FORMATS = (".parquet", ".csv")


def _spark_source(args: argparse.Namespace):
    """The source of ``features --engine spark``: read where it is, quarantined on Spark."""
    from dataclasses import replace

    from satmodel.config import load_config
    from satmodel.sources.spark import open_spark_source
    from satmodel.validation_spark import quarantine_spark

    data = args.data
    config = load_config(data if data and str(data).endswith(".toml") else None)
    data = None if data and str(data).endswith(".toml") else data
    overrides = {"master": args.spark_master, "remote": args.spark_remote}
    overrides = {k: v for k, v in overrides.items() if v}
    if overrides:
        settings = replace(config.spark, **{"master": None, "remote": None, **overrides})
        config = replace(config, spark=settings)
    source = open_spark_source(data, config)
    report = quarantine_spark(source, persist=True)
    if report.n_rejected:
        print(
            f"satmodel: {report.n_rejected:,} rows quarantined on Spark (rejected rows in "
            f"{source.rejected_path}); going on with the clean rows",
            file=sys.stderr,
        )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return source


def _engine(args: argparse.Namespace) -> str:
    """``--engine``, else ``[source] engine`` of the config, else duckdb."""
    if args.engine:
        return args.engine
    from satmodel.config import load_config

    data = args.data
    return load_config(data if data and str(data).endswith(".toml") else None).engine


def cmd_features(args: argparse.Namespace) -> int:
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in PANEL_FORMATS:
        raise InputError(
            f"--out {args.out}: the file name must end in .parquet or .csv (it decides the "
            f"format), e.g. {out.with_suffix('.parquet').name}"
        )
    engine = _engine(args)
    if engine != "spark" and (args.spark_master or args.spark_remote):
        raise InputError("--spark-master and --spark-remote need --engine spark")
    if args.spark_master and args.spark_remote:
        raise InputError("give --spark-master or --spark-remote, not both")
    source = _spark_source(args) if engine == "spark" else _workbook(args.data).source_
    if suffix == ".csv":
        from satmodel.features import build_panel
        from satmodel.reporting import write_csv

        panel = build_panel(source, engine=engine)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_csv(panel, out)  # spreadsheet formulas in names neutralised, written atomically
        rows, columns = panel.shape
    else:
        import pyarrow.parquet as pq

        from satmodel.features import write_panel

        metadata = pq.read_metadata(write_panel(source, out, engine=engine))
        rows, columns = metadata.num_rows, metadata.num_columns
    print(f"wrote {out}: {rows:,} customer-months, {columns} columns")
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
            se_correction=args.se_correction,
            weights_kind=args.weights_kind,
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
            f"e.g. csat_top2_rate){did_you_mean(args.outcome, OUTCOMES)}"
        )
    if args.lever not in LEVERS:
        raise InputError(
            f"lever {args.lever!r}: column is not a service lever (valid levers: "
            f"{', '.join(LEVERS)}; e.g. latency_p95_ms){did_you_mean(args.lever, LEVERS)}"
        )
    _check_target(args.outcome, args.target)
    from satmodel.insights import solve_target
    from satmodel.insights.scenarios import (
        check_customer,
        check_lever,
        check_segment,
        observed_range,
    )
    from satmodel.models import fit_default_models
    from satmodel.reporting.labels import level_caveat

    book = _workbook(args.data)
    panel = book.panel_
    check_lever(args.lever, panel)
    check_segment(args.segment, panel)
    check_customer(args.customer, panel)
    responses = None
    if args.outcome != "complaint_rate_per_1k":
        responses = book.responses_
    config = book.config_
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = fit_default_models(
            responses,
            panel if args.outcome == "complaint_rate_per_1k" else None,
            identification=config.models.identification,
            satisfied_cutoff=config.thresholds.satisfied_cutoff,
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
            month=args.month,
            satisfied_cutoff=config.thresholds.satisfied_cutoff,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    payload = result.to_dict()
    if args.json:
        _write_json(payload, args.json)
    who = args.customer or args.segment or "all customers"
    stream = sys.stderr if args.json == "-" else sys.stdout
    observed = (
        f"observed {result.observed_now:.4g} over {result.observed_n} customer-months"
        if result.observed_n
        else "nothing observed"
    )
    print(
        f"now ({result.month}, {result.n_customer_months} customer-months of {who}): "
        f"{args.outcome} model {result.outcome_now:.4g} "
        f"(95% CI {result.outcome_now_ci_low:.4g}..{result.outcome_now_ci_high:.4g}), {observed}",
        file=stream,
    )
    if not result.feasible:
        print(
            f"{args.outcome} {result.direction} {args.target:g} for {who}: not reachable with "
            f"{args.lever} anywhere in {result.physical_min:g}..{result.physical_max:g} "
            f"{result.unit} (best possible: {result.best_outcome:.4g})",
            file=stream,
        )
    else:
        note = level_caveat(args.lever, result.required, observed_range(LEVERS[args.lever], panel))
        print(
            f"{args.outcome} {result.direction} {args.target:g} for {who}: {args.lever} "
            f"{result.required:.4g} {result.unit} (95% CI {result.ci_low:.4g}..{result.ci_high:.4g}; "
            f"now {result.current:.4g} median){note}",
            file=stream,
        )
    return 0


def cmd_value(args: argparse.Namespace) -> int:
    import numpy as np

    from satmodel.config import DEFAULT_CURRENCY
    from satmodel.insights.loyalty import require_churn
    from satmodel.insights.value import revenue_at_risk
    from satmodel.reporting.labels import LEVER_NAMES

    book = _workbook(args.data)
    panel = book.panel_
    require_churn(panel)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome_models = {k: v for k, v in book.models_.items() if k in ("csat", "complaints")}
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            # revenue at risk needs only the churn model: a lever step then moves the hazard
            # through the service levels alone, not through CSAT and complaints
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(
                f"warning: CSAT and complaint models not fitted ({reason}); "
                "going on with the churn model alone",
                file=sys.stderr,
            )
            outcome_models = {}
        month = args.month
        if month is None:  # as the report: the last complete month of the data
            from satmodel.calendar import last_complete_month

            months = panel["month"].astype(str)
            window = (months.min(), months.max())
            month = last_complete_month(window, timezone=book.config_.calendar.timezone)
        result = revenue_at_risk(
            panel,
            month=month,
            horizon=args.horizon,
            outcome_models=outcome_models,
            config=book.config_,
            seed=args.seed,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        _write_json(result.to_dict(), args.json)
    stream = sys.stderr if args.json == "-" else sys.stdout
    currency = str(getattr(book.config_, "currency", None) or DEFAULT_CURRENCY)

    def money(amount: float) -> str:
        return f"{currency} {amount:,.0f}"

    levers = [LEVER_NAMES.get(k, (k.replace("_", " "),))[0] for k in result.best_plan["levers"]]
    print(
        f"{result.month}: revenue at risk over {result.horizon_months} months "
        f"{money(result.revenue_at_risk)} of {money(result.monthly_revenue)} monthly revenue "
        f"(95% CI {money(result.revenue_at_risk_ci_low)} to "
        f"{money(result.revenue_at_risk_ci_high)}); "
        f"best-return plan: {', '.join(levers) or 'none pays back'}",
        file=stream,
    )
    return 0


TARGET_RANGES = {
    "csat_top2_rate": (0.0, 1.0, "a share between 0 and 1"),
    "csat_mean": (1.0, 5.0, "a mean CSAT between 1 and 5"),
    "complaint_rate_per_1k": (0.0, float("inf"), "complaints per 1,000 users, at least 0"),
}


def _check_target(outcome: str, target: float) -> None:
    """Refuse a target outside its outcome's scale (``--target 80`` for a share: 0.80?)."""
    low, high, scale = TARGET_RANGES[outcome]
    if low <= target <= high:
        return
    hint = ""
    if high == 1.0 and 1 < target <= 100:
        hint = f"; did you mean {target / 100:.2f}?"
    raise InputError(f"--target {target:g}: {outcome} is {scale}{hint}")


def allow_outside(args: argparse.Namespace) -> bool:
    """Whether --data and --out may lie outside the project's data/ and reports/ folders.

    Paths named on the command line are the user's explicit choice (docs/contract.md takes
    any SRC and DIR), so they are allowed unless confinement is switched on with
    --confine-paths or SATMODEL_CONFINE_PATHS=1 (for schedulers and shared deployments);
    --allow-outside or SATMODEL_ALLOW_PATHS=1 then lifts it again.
    """
    from satmodel.jobs.confinement import allowed_outside_by_env, confined_by_env

    confined = bool(getattr(args, "confine_paths", False)) or confined_by_env()
    return not confined or bool(args.allow_outside) or allowed_outside_by_env()


def as_of_date(text: str) -> date:
    """The ``--as-of YYYY-MM-DD`` day (argparse type)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a day as YYYY-MM-DD, e.g. 2026-12-01"
        ) from None


def cmd_report(args: argparse.Namespace) -> int:
    from satmodel.jobs.report import ReportRequest, run_report, scheduler_problems
    from satmodel.jobs.schedule import EXIT_LOOK, log_line, notify, notify_argv

    notify_with = notify_argv(args.notify_command) if args.notify_command is not None else None
    request = ReportRequest(
        month=args.month,
        data=args.data,
        out=args.out,
        from_month=args.from_month,
        to_month=args.to_month,
        progress=not args.quiet,
        wait=args.wait,
        allow_outside=allow_outside(args),
        pseudonymise=args.pseudonymise,
        as_of=args.as_of,
    )
    try:
        result = run_report(request)
    except SatmodelError as exc:
        if notify_with is not None and not isinstance(exc, InputError):
            warning = notify(notify_with, exc.exit_code, args.out, [str(exc)])
            if warning:
                log_line(f"satmodel: {warning}", args.log_timestamps, sys.stderr)
        raise
    folders = result if isinstance(result, list) else [result]
    problems = []
    for folder in folders:
        log_line(f"wrote {folder}/ ({_written(folder)})", args.log_timestamps)
        log_line(f"open {Path(folder).resolve() / 'report.html'}", args.log_timestamps)
        problems += scheduler_problems(folder, allow_stale=args.allow_stale)
    if not problems:
        return 0
    for line in problems:
        log_line(f"satmodel: {line}", args.log_timestamps, sys.stderr)
    if notify_with is not None:
        warning = notify(notify_with, EXIT_LOOK, folders[-1], problems)
        if warning:
            log_line(f"satmodel: {warning}", args.log_timestamps, sys.stderr)
    return EXIT_LOOK


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
        assurance=args.assurance,
        progress=not args.quiet,
        wait=args.wait,
        allow_outside=allow_outside(args),
        pseudonymise=args.pseudonymise,
    )
    folder = run_proposal(request)
    print(f"wrote {folder}/ ({_written(folder)})")
    print(f"open {Path(folder).resolve() / 'proposal.html'}")
    return 0


def cmd_case_study(args: argparse.Namespace) -> int:
    from satmodel.casestudies import run_case_study

    folder = run_case_study(args.name, data=args.data, out=args.out)
    print(f"wrote {folder}/ ({_written(folder)})")
    print(f"open {Path(folder).resolve() / 'report.html'}")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    from satmodel.insights.components import component_costs
    from satmodel.reporting.components import display_names

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
    names = display_names(result.components_)
    for name, row in zip(names, result.components_.itertuples(), strict=True):
        incidents = f"{row.incidents:,} incident{'' if row.incidents == 1 else 's'}"
        downtime = f"{row.downtime_minutes:,.0f} customer-minutes of downtime, {incidents}"
        if not math.isfinite(row.csat_points):
            print(f"  {name}: no cost measured ({downtime})", file=stream)
            continue
        print(
            f"  {name}: would raise average CSAT by {row.csat_points:.3f} points "
            f"(95% CI {row.csat_points_ci_low:.3f} to {row.csat_points_ci_high:.3f}) "
            f"if its downtime had not happened ({downtime})",
            file=stream,
        )
    return 0
