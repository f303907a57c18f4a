"""Cross-check against an independent implementation: NiftyPAD's basis-function SRTM on the
kinfitr reference-tissue TACs, configured alike (same theta3 range and number of bases, uniform
weights). The two differ only in how the basis is discretised (NiftyPAD: 1 s grid sampled at
mid-frame; petbind: exact frame means), so BPND must agree to 0.01 on every TAC."""

import numpy as np
import pandas as pd

from conftest import VENDORED, require
from workflows.kinetics.frames import FrameTiming
from workflows.kinetics.models.srtm_bfm import fit_srtm_bfm, make_basis_set

RANGE_PER_MIN = (0.01, 0.6)
N_BASES = 300


def load(path):
    table = pd.read_csv(path, sep="\t")
    table = table[table["Duration"] > 0]            # row 1 is a dummy frame of zero length
    start_s = table["StartTime"].to_numpy() * 60
    return FrameTiming(start_s, table["Duration"].to_numpy() * 60), table


def test_agrees_with_niftypad_on_every_kinfitr_tac():
    niftypad_basis = require("niftypad.basis")
    kt, models = require("niftypad.kt"), require("niftypad.models")
    files = sorted((VENDORED / "kinfitr-simref").glob("*_tacs.tsv"))
    assert len(files) == 20
    worst = 0.0
    for path in files:
        timing, table = load(path)
        ref = table["Reference"].to_numpy()
        tacs = table[["ROI1", "ROI2", "ROI3"]].to_numpy().T
        ours = fit_srtm_bfm(tacs, make_basis_set(timing, ref, np.ones(timing.n_frames),
                                                 RANGE_PER_MIN, N_BASES))
        dt = np.vstack([timing.start_s, timing.end_s])
        inputf1 = kt.interpt1(timing.mid_s, ref, dt)
        basis = niftypad_basis.make_basis(inputf1, dt, n_beta=N_BASES,
                                          beta_lim=[RANGE_PER_MIN[0] / 60, RANGE_PER_MIN[1] / 60])
        theirs = np.array([models.srtmb_basis(tac.copy(), basis)["bp"] for tac in tacs])
        assert not ours.on_bound.any()
        np.testing.assert_allclose(ours["BPND"], theirs, atol=0.01, err_msg=path.name)
        worst = max(worst, float(np.abs(ours["BPND"] - theirs).max()))
    print(f"worst |delta BPND| vs NiftyPAD: {worst:.4f}")
