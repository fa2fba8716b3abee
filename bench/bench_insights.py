"""Benchmark the Shapley (LMG) driver importance with customer-bootstrap intervals.

Usage: ``python bench/bench_insights.py [--quick]``

100,000 customer-months (5,000 customers x 20 months), 8 drivers (7 numeric and a 3-level
segment: 9 design columns), 1,000 customer-level bootstrap resamples: 2^8 = 256 subset R²
per resample, 256,000 regressions if refitted. satmodel computes every subset's R² from the
resample's covariance matrix, built as a weighted sum of per-customer sufficient statistics.
Target: <= 10 s (median of 3 runs).

Baseline: the naive approach resamples customers and refits all 256 subsets with numpy
``lstsq``. It is timed on a few resamples only and extrapolated linearly to 1,000 (said so
in the output); the naive shares of one resample are checked against satmodel's.

``--quick`` uses 1/10 of the rows and 100 resamples (the target is then only indicative).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import pandas as pd

from satmodel.insights import driver_importance, shapley_values

TARGET_SECONDS = 10.0
NUMERIC = ["latency", "shortfall", "downtime", "downtime_lag1", "error_rate", "resolution", "avail"]


def make_panel(n_customers: int, months: int, seed: int = 7) -> pd.DataFrame:
    """Synthetic customer-months: 7 correlated numeric drivers, a segment, csat_mean."""
    rng = np.random.default_rng(seed)
    n = n_customers * months
    ids = np.repeat(np.arange(n_customers), months)
    mix = rng.normal(size=(7, 7)) * 0.3 + np.eye(7)
    customer_level = rng.normal(size=(n_customers, 7))[ids]
    x = (0.7 * customer_level + rng.normal(size=(n, 7))) @ mix
    segment = np.array(["enterprise", "mid_market", "smb"])[rng.integers(0, 3, n_customers)][ids]
    beta = np.array([-0.3, -0.4, -0.2, -0.1, -0.15, 0.0, -0.05])
    y = 4.0 + x @ beta + np.where(segment == "smb", 0.2, 0.0) + rng.normal(0, 0.8, n)
    frame = pd.DataFrame(x, columns=NUMERIC)
    frame["segment"] = segment
    frame["customer_id"] = ids
    frame["csat_mean"] = y
    return frame


def naive(frame: pd.DataFrame, n_resamples: int, seed: int = 1):
    """Resample customers and refit every subset with lstsq; returns (seconds, shares)."""
    drivers = [frame[[c]].to_numpy(float) for c in NUMERIC]
    drivers.append(pd.get_dummies(frame["segment"], drop_first=True).to_numpy(float))
    y_all = frame["csat_mean"].to_numpy(float)
    ids = frame["customer_id"].to_numpy()
    n_customers = ids.max() + 1
    order = np.argsort(ids, kind="stable")
    starts = np.searchsorted(ids[order], np.arange(n_customers + 1))
    rng = np.random.default_rng(seed)
    p = len(drivers)
    began = time.perf_counter()
    shares = []
    for _ in range(n_resamples):
        pick = rng.integers(0, n_customers, n_customers)
        rows = np.concatenate([order[starts[c] : starts[c + 1]] for c in pick])
        y = y_all[rows]
        tss = ((y - y.mean()) ** 2).sum()
        values = np.zeros(2**p)
        for mask in range(1, 2**p):
            cols = [drivers[j][rows] for j in range(p) if mask >> j & 1]
            X = np.column_stack([np.ones(len(rows)), *cols])
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
            values[mask] = 1.0 - ((y - X @ beta) ** 2).sum() / tss
        shares.append(shapley_values(values, p))
    return time.perf_counter() - began, np.array(shares)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the rows, 100 resamples")
    args = parser.parse_args(argv)
    n_customers, months = (500, 20) if args.quick else (5000, 20)
    n_boot = 100 if args.quick else 1000
    frame = make_panel(n_customers, months)
    drivers = {c: [c] for c in NUMERIC}
    drivers["segment"] = ["C(segment)"]
    print(
        f"driver importance: {len(frame):,} rows, {n_customers:,} customers, "
        f"{len(drivers)} drivers, {n_boot:,} customer-bootstrap resamples"
    )
    times = []
    result = None
    for _ in range(3):
        began = time.perf_counter()
        result = driver_importance(frame, "csat_mean", drivers=drivers, n_boot=n_boot, seed=1)
        times.append(time.perf_counter() - began)
    fast = statistics.median(times)
    exact = abs(result.table_["share"].sum() - result.total_) < 1e-10
    print(f"satmodel (sufficient statistics): {fast:.2f} s (median of 3: "
          f"{', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip

    n_naive = 2
    naive_seconds, _ = naive(frame, n_naive)
    per_resample = naive_seconds / n_naive
    naive_total = per_resample * (n_boot + 1)
    print(
        f"naive refit baseline: {naive_seconds:.1f} s for {n_naive} resamples x 255 lstsq fits; "
        f"EXTRAPOLATED to {n_boot + 1:,} resamples: {naive_total:,.0f} s "
        f"(~{naive_total / 60:.0f} min)"
    )
    print(f"speedup: {naive_total / fast:,.0f}x")

    # correctness: the full-sample shares equal a naive refit of the full sample
    drivers_cols = [frame[[c]].to_numpy(float) for c in NUMERIC]
    drivers_cols.append(pd.get_dummies(frame["segment"], drop_first=True).to_numpy(float))
    y = frame["csat_mean"].to_numpy(float)
    tss = ((y - y.mean()) ** 2).sum()
    values = np.zeros(2 ** len(drivers_cols))
    for mask in range(1, len(values)):
        cols = [drivers_cols[j] for j in range(len(drivers_cols)) if mask >> j & 1]
        X = np.column_stack([np.ones(len(y)), *cols])
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        values[mask] = 1.0 - ((y - X @ beta) ** 2).sum() / tss
    brute = shapley_values(values, len(drivers_cols))
    got = result.table_.set_index("driver").loc[list(drivers), "share"].to_numpy()
    max_diff = float(np.max(np.abs(got - brute)))
    print(f"full-sample shares vs naive refit: max |difference| = {max_diff:.2e}; "
          f"shares add up to R² = {result.total_:.4f}: {exact}")  # fmt: skip

    ok_time = fast <= TARGET_SECONDS
    ok_exact = exact and max_diff < 1e-8
    label = " (quick: indicative only)" if args.quick else ""
    print(f"{'PASS' if ok_time else 'FAIL'}: {fast:.2f} s <= {TARGET_SECONDS:.0f} s target{label}")
    print(f"{'PASS' if ok_exact else 'FAIL'}: shares exact (sum to R², equal to refits)")
    return 0 if (ok_time and ok_exact) else 1


if __name__ == "__main__":
    sys.exit(main())
