"""Old name of :mod:`satmodel.insights.scenarios`, kept only for ``satmodel/cli.py``.

Delete this module once cli.py imports ``check_customer``, ``check_lever`` and
``check_segment`` from :mod:`satmodel.insights.scenarios`.
"""

from satmodel.insights.scenarios import check_customer, check_lever, check_segment

__all__ = ["check_customer", "check_lever", "check_segment"]
