"""The reference region's data-driven trim: around the mode of the late PET image, so that voxels
with activity spilled in from tissue with receptors, which stands out late in the scan, are left
out, as are voxels diluted by white matter."""

import numpy as np

from workflows.kinetics.compartments import FengInput, TissueParameters, simulate_frames
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming
from workflows.imaging.masks import late_mean_image, trim_by_mode

K1_REF, K2_REF = 0.12, 0.15          # 1/min: the reference tissue (no specific binding)


def _tacs(timing):
    """Reference, receptor-rich (BPND 1.5) and white-matter (R1 0.6, BPND 0.1) tissue curves
    from the plasma input, one-tissue kinetics (k2a = k2 / (1 + BPND))."""
    r1 = np.array([1.0, 1.0, 0.6])
    bp = np.array([0.0, 1.5, 0.1])
    params = TissueParameters(K1_REF * r1, K2_REF * r1 / (1 + bp), 0 * bp, 0 * bp)
    return simulate_frames(timing, params, FengInput())


def test_late_image_is_the_duration_weighted_mean_of_the_second_half():
    timing = FrameTiming.from_protocol([(2, 60), (1, 900), (1, 600), (1, 300)])  # ends 1920 s
    data = np.arange(5, dtype=float)[None, None, None, :] * np.ones((2, 2, 2, 1))
    # mid-times 30, 90, 570, 1320, 1770 s: frames 3 (600 s) and 4 (300 s) are in the second
    # half (from 960 s); weighted by duration, (3 x 600 + 4 x 300) / 900
    assert np.allclose(late_mean_image(data, timing), 10 / 3)


def test_trim_on_the_late_image_leaves_out_spill_in_from_binding_tissue():
    # 600 reference voxels; 300 with a fraction (0-30 %) of their signal from tissue with
    # receptors (BPND 1.5: spill-in, or labels over the neighbouring cortex) and 300 diluted
    # (0-40 %) by white matter; noise 10 % in the longest frames, more in shorter ones (fewer
    # counts). Untrimmed, the mask's late activity is about 7 % above the reference tissue's.
    # Trimmed around the mode of the late image it is within 1.5 %, and closer than trimmed on
    # the unweighted mean of all frames, which the short early frames dominate (noisy, and
    # showing flow, in which the tissues look alike).
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"])
    ref, hot, wm = _tacs(timing)
    late = timing.start_s >= timing.start_s[-1] * 2 / 3
    noise_sd = 0.1 * np.sqrt(timing.duration_s.max() / timing.duration_s)
    bias = {"none": [], "late": [], "all frames": []}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        f_hot = rng.uniform(0, 0.3, (300, 1))
        f_wm = rng.uniform(0, 0.4, (300, 1))
        voxels = np.vstack([np.tile(ref, (600, 1)), (1 - f_hot) * ref + f_hot * hot,
                            (1 - f_wm) * ref + f_wm * wm])
        voxels *= 1 + noise_sd * rng.standard_normal(voxels.shape)
        data = voxels[:, None, None, :]
        for name, keep in (("none", np.ones(len(voxels), dtype=bool)),
                           ("late", trim_by_mode(late_mean_image(data, timing).ravel())),
                           ("all frames", trim_by_mode(data.mean(axis=3).ravel()))):
            bias[name].append(voxels[keep][:, late].mean() / ref[late].mean() - 1)
    mean = {name: float(np.mean(b)) for name, b in bias.items()}
    assert mean["none"] > 0.05, mean
    assert abs(mean["late"]) < 0.015, mean
    assert mean["late"] < mean["all frames"], mean


def test_the_cerebellar_reference_is_restricted_whatever_it_is_called():
    # MADAM, raclopride, DASB, PiB and fallypride name their reference "cerebellum": Magia's
    # restrictions (the vermis, the anterior 16 mm, the bottom and top slabs) must apply to it
    # as to "cerebellargm" (they were skipped for the alias)
    import numpy as np
    from workflows.imaging.atlas import load_atlas, region_labels
    from workflows.imaging.masks import reference_region_mni
    alias, canonical = reference_region_mni("cerebellum"), reference_region_mni("cerebellargm")
    assert np.array_equal(alias, canonical)
    atlas = load_atlas()
    whole = np.isin(np.asarray(atlas.dataobj), region_labels("cerebellargm"))
    x = (np.argwhere(alias) @ atlas.affine[:3, :3].T + atlas.affine[:3, 3])[:, 0]
    assert alias.sum() < 0.8 * whole.sum() and np.abs(x).min() > 16
