"""The ``satmodel`` command line (contract: docs/contract.md, "Commands").

Exit codes: 0 success, 2 bad input or usage (one line per problem on stderr, no traceback),
1 anything else, 3 (``report``) built, but a scheduler must look.
"""

from __future__ import annotations

import os
import sys

from satmodel.cli.commands import allow_outside
from satmodel.cli.parser import build_parser
from satmodel.errors import InputError, SatmodelError

__all__ = ["allow_outside", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from satmodel.jobs.schedule import log_line

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.subcommand(args.command).unknown_options(extras)
    stamped = bool(getattr(args, "log_timestamps", False))
    try:
        return args.func(args)
    except InputError as exc:
        for line in exc.problems:
            log_line(f"satmodel: {line}", stamped, sys.stderr)
        return 2
    except SatmodelError as exc:
        log_line(f"satmodel: {exc}", stamped, sys.stderr)
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
