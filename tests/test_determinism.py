"""Determinism: the same inputs (and seed) give byte-identical outputs across runs."""

import subprocess
import sys

import numpy as np
import pandas as pd


def test_fit_json_is_byte_identical_across_processes(tmp_path):
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, size=600).astype(str),
            "latency": rng.lognormal(5, 0.4, size=600),
            "segment": rng.choice(["smb", "enterprise", "mid"], size=600),
        }
    )
    eta = -0.8 * np.log(frame["latency"]) + (frame["segment"] == "smb") * 0.4
    frame["csat"] = np.clip(np.round(7.5 + eta + rng.logistic(size=600)), 1, 5).astype(int)
    table = tmp_path / "responses.csv"
    frame.to_csv(table, index=False)
    outputs = []
    for run in range(2):
        out = tmp_path / f"fit{run}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "satmodel",
                "fit",
                "--data",
                str(table),
                "--formula",
                "csat ~ np.log(latency) + C(segment)",
                "--family",
                "ordinal",
                "--cluster",
                "customer_id",
                "--json",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
