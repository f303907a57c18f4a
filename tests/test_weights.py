"""Frame weights follow the counting statistics they claim to."""

import numpy as np
import pytest

from workflows.kinetics.frames import FrameTiming, decay_factors, decay_uncorrect
from workflows.kinetics.weights import frame_weights


def test_counts_weights_are_inverse_poisson_variance():
    # A frame of duration d records N = A_u d counts (A_u: mean uncorrected activity, in counts
    # per second up to a sensitivity factor). The decay-corrected frame mean is N / d x DCF, with
    # Poisson variance N DCF^2 / d^2. Weights must be proportional to its inverse.
    timing = FrameTiming.from_protocol([(3, 60), (4, 180), (9, 360)])
    tac = np.linspace(1000, 3000, 16)                      # decay-corrected
    w = frame_weights("counts", timing, tac, "C11")
    a_u = decay_uncorrect(tac, timing, "C11")
    counts = a_u * timing.duration_s
    variance = counts * decay_factors(timing, "C11") ** 2 / timing.duration_s**2
    np.testing.assert_allclose(w, (1 / variance) / (1 / variance).max())


def test_constant_activity_weights_grow_with_duration_and_fall_with_decay():
    timing = FrameTiming.from_protocol([(2, 60), (2, 600)])
    w = frame_weights("counts", timing, np.full(4, 1000.0), "C11")
    assert w[2] > w[1]                      # a longer frame counts more
    assert w[3] < w[2]                      # the same length later: fewer counts, less weight


def test_duration_uniform_and_kinfitr():
    timing = FrameTiming.from_protocol([(2, 60), (1, 240)])
    np.testing.assert_allclose(frame_weights("uniform", timing), 1.0)
    np.testing.assert_allclose(frame_weights("duration", timing), [0.25, 0.25, 1.0])
    w = frame_weights("kinfitr", timing, np.array([10.0, 1000.0, 1000.0]), "C11")
    assert w.min() == pytest.approx(0.5)    # kinfitr's floor
    assert w.max() == 1.0


def test_unknown_scheme_and_missing_tac_are_refused():
    timing = FrameTiming.from_protocol([(3, 60)])
    with pytest.raises(ValueError, match="unknown weighting scheme"):
        frame_weights("magic", timing)
    with pytest.raises(ValueError, match="need a TAC"):
        frame_weights("counts", timing)
