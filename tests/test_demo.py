"""The README demo recovers the simulated truth."""

import numpy as np

from bids_app.demo import run_demo


def test_demo_recovers_truth_with_every_model():
    table = run_demo()
    truth = table["truth"].to_numpy()
    for model in ("SRTM-BFM", "SRTM", "SRTM2", "MRTM2", "LoganRef"):
        rel = np.abs(table[model].to_numpy() / truth - 1)
        assert rel.mean() < 0.05, (model, rel)
