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


def test_mrtm2_and_logan_agree_with_niftypad():
    # NiftyPAD's mrtm_k2p and logan_ref_k2p integrate the TACs by the same trapezoid from
    # (0, 0) through the mid-frame times as petbind does, so on the same noisy two-tissue TACs
    # (both seed protocols, k2' given) the estimates agree to rounding
    from workflows.kinetics.compartments import (TissueParameters, add_counts_noise,
                                                 simulate_frames)
    from workflows.kinetics.frames import SEED_PROTOCOLS
    from workflows.kinetics.model import ModelSettings
    from workflows.kinetics.models import MODELS

    kt, models = require("niftypad.kt"), require("niftypad.models")
    bp, r1 = np.array([0.3, 1.0, 2.5, 4.0]), np.array([0.8, 1.0, 1.2, 1.4])
    rng = np.random.default_rng(0)
    for protocol in ("carfentanil", "madam"):
        timing = FrameTiming.from_protocol(SEED_PROTOCOLS[protocol])
        ref = simulate_frames(timing, TissueParameters(np.array([0.12]), np.array([0.15]),
                                                       np.zeros(1), np.zeros(1)))[0]
        clean = simulate_frames(timing, TissueParameters(r1 * 0.12, r1 * 0.15 / (1 + bp),
                                                         0.05 * r1, 0.1 * r1))
        tacs = np.array([add_counts_noise(t, timing, "C11", 2.0, rng)
                         for t in np.repeat(clean, 5, axis=0)])
        dt = np.vstack([timing.start_s, timing.end_s])
        inputf1 = kt.interpt1(timing.mid_s, ref, dt)
        for name, tstar_min, theirs_fit in (("mrtm2", 0.0, models.mrtm_k2p),
                                            ("logan-ref", 15.0, models.logan_ref_k2p)):
            ours = MODELS[name].fit_voxelwise(
                timing, ref, tacs, np.ones(timing.n_frames),
                ModelSettings(k2prime_per_min=0.15, tstar_min=tstar_min))["BPND"]
            theirs = np.array([theirs_fit(t.copy(), dt, inputf1, 0.15 / 60, None,
                                          tstar_min * 60, None, False)["bp"] for t in tacs])
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, err_msg=f"{name} {protocol}")
