"""Benchmark satmodel's model fitting against plain statsmodels.

Usage: ``python bench/bench_models.py [--quick]``

1. Ordinal CSAT at scale: 1,000,000 survey responses over 50,000 customer-months (each
   customer-month shares its 6 drivers), seeded. satmodel's collapsed ordinal fit (median of
   3 runs) against one run of statsmodels ``OrderedModel`` on the uncollapsed rows, fitted
   with ``method="bfgs"`` so that it converges (its default Nelder-Mead stops at maxiter
   without converging); the plain fit takes minutes on a busy 2-core machine.
   Target: satmodel <= 3 s and >= 10x faster.
2. Fit overhead for logit, ols, poisson and negbin on 200,000 rows with continuous drivers
   (nothing to collapse): satmodel ``fit`` against the direct statsmodels formula call,
   medians of >= 3 runs. Target: ratio <= 1.2.

``--quick`` uses 1/10 of the rows (the targets are then only indicative).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.miscmodels.ordinal_model import OrderedModel

from satmodel.models import fit

DRIVERS = ["log_latency", "log_downtime", "error_rate", "resolution", "shortfall", "smb"]
ORDINAL_SECONDS_TARGET = 3.0
ORDINAL_SPEEDUP_TARGET = 10.0
OVERHEAD_TARGET = 1.2


def make_responses(n_responses: int, n_customer_months: int, seed: int = 20240601):
    """Synthetic responses: customer-months with 6 drivers, CSAT 1-5 from an ordinal logit."""
    rng = np.random.default_rng(seed)
    n_customers = max(n_customer_months // 12, 1)
    panel = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in rng.integers(0, n_customers, n_customer_months)],
            "log_latency": np.round(rng.normal(5.5, 0.4, n_customer_months), 3),
            "log_downtime": np.round(np.log1p(rng.exponential(20, n_customer_months)), 3),
            "error_rate": np.round(rng.beta(1, 80, n_customer_months), 4),
            "resolution": np.round(rng.gamma(2, 6, n_customer_months), 1),
            "shortfall": np.round(np.maximum(0, rng.normal(0, 0.2, n_customer_months)), 3),
            "smb": rng.integers(0, 2, n_customer_months).astype(float),
        }
    )
    beta = np.array([-0.8, -0.3, -12.0, -0.03, -1.5, 0.2])
    eta = panel[DRIVERS].to_numpy() @ beta
    rows = rng.integers(0, n_customer_months, n_responses)
    responses = panel.iloc[rows].reset_index(drop=True)
    cuts = np.array([-9.5, -8.3, -7.0, -5.6])
    latent = eta[rows] + rng.logistic(size=n_responses)
    responses["csat"] = 1 + np.searchsorted(cuts, latent)
    return responses


def make_continuous(n_rows: int, seed: int = 7):
    """Rows with 6 continuous drivers and a binary, a normal and two count outcomes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 6))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 7)])
    eta = 0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.1 * X[:, 2] + 0.05 * X[:, 3]
    frame["exposure"] = rng.uniform(50, 500, n_rows)
    frame["binary"] = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-eta))).astype(float)
    frame["value"] = 2 + eta + rng.normal(size=n_rows)
    mu = np.exp(-4 + 0.5 * eta) * frame["exposure"].to_numpy()
    frame["count"] = rng.poisson(mu).astype(float)
    frame["nbcount"] = rng.poisson(mu * rng.gamma(2.0, 0.5, n_rows)).astype(float)
    return frame


def timed(function, repeats: int):
    seconds = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def bench_ordinal(n_responses: int, n_customer_months: int):
    responses = make_responses(n_responses, n_customer_months)
    formula = "csat ~ " + " + ".join(DRIVERS)
    fast_seconds, ours = timed(lambda: fit(responses, formula, "ordinal"), repeats=3)

    def plain():
        model = OrderedModel(responses["csat"], responses[DRIVERS], distr="logit")
        return model.fit(method="bfgs", disp=False, maxiter=500)

    slow_seconds, theirs = timed(plain, repeats=1)
    diff = float(np.max(np.abs(ours.coefficients_["estimate"].to_numpy() - theirs.params[:6])))
    ratio = slow_seconds / fast_seconds
    ok = fast_seconds <= ORDINAL_SECONDS_TARGET and ratio >= ORDINAL_SPEEDUP_TARGET
    print("Ordinal CSAT fit (collapsed) vs statsmodels OrderedModel on all rows")
    print(f"  rows {n_responses:,} responses over {n_customer_months:,} customer-months")
    print(f"  {'model':<40} {'seconds':>9}")
    print(f"  {'satmodel.fit ordinal (median of 3)':<40} {fast_seconds:>9.3f}")
    print(f"  {'statsmodels OrderedModel (1 run)':<40} {slow_seconds:>9.3f}")
    print(f"  speed-up {ratio:.1f}x; max |coef difference| {diff:.2e}")
    print(
        f"  target <= {ORDINAL_SECONDS_TARGET:g} s and >= {ORDINAL_SPEEDUP_TARGET:g}x: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return ok


def bench_overhead(n_rows: int, repeats: int):
    data = make_continuous(n_rows)
    rhs = "x1 + x2 + x3 + x4 + x5 + x6"
    cases = {
        "logit": (
            lambda: fit(data, f"binary ~ {rhs}", "logit"),
            lambda: smf.logit(f"binary ~ {rhs}", data).fit(disp=False),
        ),
        "ols": (
            lambda: fit(data, f"value ~ {rhs}", "ols"),
            lambda: smf.ols(f"value ~ {rhs}", data).fit(),
        ),
        "poisson": (
            lambda: fit(data, f"count ~ {rhs}", "poisson", exposure="exposure"),
            lambda: smf.poisson(f"count ~ {rhs}", data, exposure=data["exposure"].to_numpy()).fit(
                disp=False
            ),
        ),
        "negbin": (
            lambda: fit(data, f"nbcount ~ {rhs}", "negbin", exposure="exposure"),
            lambda: smf.negativebinomial(
                f"nbcount ~ {rhs}",
                data,
                exposure=data["exposure"].to_numpy(),
                loglike_method="nb2",
            ).fit(disp=False, maxiter=200),
        ),
    }
    print()
    print(f"Fit overhead vs direct statsmodels call, {n_rows:,} rows, median of {repeats}")
    print(
        f"  {'family':<9} {'satmodel s':>11} {'statsmodels s':>14} {'ratio':>7} {'max|diff|':>10}  result"
    )
    all_ok = True
    for family, (ours_fn, theirs_fn) in cases.items():
        ours_s, ours = timed(ours_fn, repeats)
        theirs_s, theirs = timed(theirs_fn, repeats)
        params = np.asarray(theirs.params)[: len(ours.coefficients_)]
        diff = float(np.max(np.abs(ours.coefficients_["estimate"].to_numpy() - params)))
        ratio = ours_s / theirs_s
        ok = ratio <= OVERHEAD_TARGET
        all_ok &= ok
        print(
            f"  {family:<9} {ours_s:>11.3f} {theirs_s:>14.3f} {ratio:>7.2f} {diff:>10.1e}  "
            f"{'PASS' if ok else 'FAIL'} (target <= {OVERHEAD_TARGET:g})"
        )
    return all_ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the rows")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    warnings.simplefilter("ignore")
    ok = bench_ordinal(1_000_000 // scale, 50_000 // scale)
    ok &= bench_overhead(200_000 // scale, repeats=3)
    print()
    print("ALL PASS" if ok else "SOME TARGETS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
