"""Exceptions and warnings raised by satmodel.

Every error a user can cause (bad input, bad usage) is an :class:`InputError`; the CLI
prints its message (one line per problem) and exits with code 2. Anything else that goes
wrong is a :class:`SatmodelError` (exit code 1).
"""

from __future__ import annotations


class SatmodelError(Exception):
    """Base class of satmodel's errors; the CLI exits with :attr:`exit_code`."""

    exit_code = 1


class InputError(SatmodelError):
    """Bad input data, configuration or usage (CLI exit code 2).

    Parameters
    ----------
    problems : str or list of str
        One line per problem. Each line should name the table, the column, how many rows
        are affected and an example value, e.g.
        ``"surveys.csat: 3 rows outside 1..5 (e.g. 7)"``.
    """

    exit_code = 2

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ModelWarning(UserWarning):
    """A fitted model is unreliable (non-convergence, separation, too few responses...)."""
