"""Frame timing, half-lives and decay correction: physics and input checks."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from workflows.kinetics.frames import (HALF_LIFE_S, FrameTiming, TimingError, decay_correct,
                                       decay_factors, decay_uncorrect, normalise_radionuclide)
from workflows.kinetics.metadata import PETMetadata

FRAMES = {"FrameTimesStart": [0, 60, 360, 660], "FrameDuration": [60, 60, 300, 300]}


@pytest.mark.parametrize("name,key,minutes", [
    ("C11", "C11", 20.36), ("[11C]", "C11", 20.36), ("carbon-11", "C11", 20.36),
    ("F18", "F18", 109.77), ("18F", "F18", 109.77), ("O15", "O15", 2.037), ("N13", "N13", 9.97),
    ("Cu64", "Cu64", 762.1), ("Zr89", "Zr89", 4704.6)])
def test_half_lives_match_nuclear_data(name, key, minutes):
    # Half-lives from nuclear data tables, to 0.1 %.
    assert normalise_radionuclide(name) == key
    assert HALF_LIFE_S[key] / 60 == pytest.approx(minutes, rel=1e-3)


def test_unknown_radionuclide_is_named():
    with pytest.raises(TimingError, match="unknown radionuclide 'Xx99'"):
        normalise_radionuclide("Xx99")


def test_short_frame_one_half_life_later_is_corrected_by_two():
    # Activity measured one half-life after the reference time has halved: the factor is 2.
    t_half = HALF_LIFE_S["C11"]
    timing = FrameTiming(np.array([t_half]), np.array([1e-3]))
    assert decay_factors(timing, "C11")[0] == pytest.approx(2.0, rel=1e-6)


def test_frame_factor_equals_the_integral_of_decay_over_the_frame():
    # The frame-mean of exp(-lambda t) over [a, a+d] is what a scanner measures for constant
    # activity; the factor must be its inverse.
    lam = math.log(2) / HALF_LIFE_S["F18"]
    timing = FrameTiming(np.array([0.0, 600.0, 3000.0]), np.array([600.0, 2400.0, 3600.0]))
    for a, d, f in zip(timing.start_s, timing.duration_s, decay_factors(timing, "F18")):
        mean_decay = quad(lambda t: math.exp(-lam * t), a, a + d)[0] / d
        assert f == pytest.approx(1.0 / mean_decay, rel=1e-10)


def test_correct_and_uncorrect_round_trip():
    timing = FrameTiming.from_protocol([(3, 60), (4, 180), (9, 360)])
    values = np.random.default_rng(0).random((5, 16)) * 1000
    back = decay_correct(decay_uncorrect(values, timing, "C11"), timing, "C11")
    np.testing.assert_allclose(back, values, rtol=1e-12)


def test_sidecar_decay_state_is_honoured():
    timing = FrameTiming.from_protocol([(2, 60), (2, 300)])
    frames = {"FrameTimesStart": timing.start_s.tolist(),
              "FrameDuration": timing.duration_s.tolist()}
    truth = np.array([100.0, 200.0, 150.0, 120.0])           # corrected to injection (t=0)
    uncorrected = decay_uncorrect(truth, timing, "C11")
    side = {**frames, "TracerRadionuclide": "C11", "ImageDecayCorrected": False}
    meta = PETMetadata.from_sidecar(side)
    np.testing.assert_allclose(meta.to_decay_corrected(uncorrected), truth)
    # Corrected to the scan start 120 s after injection: values are lower by exp(-lambda 120).
    lam = math.log(2) / HALF_LIFE_S["C11"]
    at_120 = truth * math.exp(-lam * 120)
    side = {**frames, "TracerRadionuclide": "C11", "ImageDecayCorrected": True,
            "ImageDecayCorrectionTime": 120}
    np.testing.assert_allclose(PETMetadata.from_sidecar(side).to_decay_corrected(at_120), truth)
    # the record the graph's nodes receive gives back the same object
    assert PETMetadata.from_record(meta.as_record()).as_record() == meta.as_record()


def test_mid_times_and_units():
    timing = FrameTiming.from_minutes([0, 1, 4], [1, 3, 6])
    np.testing.assert_allclose(timing.mid_min, [0.5, 2.5, 7.0])
    np.testing.assert_allclose(timing.end_s, [60, 240, 600])


@pytest.mark.parametrize("sidecar,n_frames,message", [
    ({"FrameTimesStart": [0, 60, 120], "FrameDuration": [60, 60]}, None, "has 3 values but"),
    ({"FrameTimesStart": [0, 60, 120], "FrameDuration": [60, 60, 60]}, 4, "image has 4 frames"),
    ({"FrameTimesStart": [0, 30, 120], "FrameDuration": [60, 60, 60]}, None, "frames overlap"),
    ({"FrameTimesStart": [0, 120, 60], "FrameDuration": [60, 60, 60]}, None, "go backwards"),
    ({"FrameTimesStart": [0, 60, 120], "FrameDuration": [60, float("nan"), 60]}, None, "NaN"),
    ({"FrameTimesStart": [0, 60, 120], "FrameDuration": [60, -60, 60]}, None, "must be > 0"),
    ({"FrameTimesStart": [0, 60000, 120000], "FrameDuration": [60000] * 3}, None, "milliseconds"),
    ({"FrameDuration": [60]}, None, "no FrameTimesStart"),
])
def test_bad_timing_is_refused_with_a_reason(sidecar, n_frames, message):
    side = {"TracerRadionuclide": "C11", "ImageDecayCorrected": False, **sidecar}
    with pytest.raises(TimingError, match=message):
        PETMetadata.from_sidecar(side, n_frames)


@pytest.mark.parametrize("changes,message", [
    # a string is not a boolean: "false" read as true would skip decay correction
    ({"ImageDecayCorrected": "false"}, "must be true or false"),
    ({"ImageDecayCorrected": 0}, "must be true or false"),
    ({"ImageDecayCorrectionTime": "0"}, "ImageDecayCorrectionTime must be a number"),
    ({"FrameDuration": ["60", 60, 300, 300]}, "FrameDuration must be a list of numbers"),
    ({"FrameTimesStart": [0, 60, True, 660]}, "FrameTimesStart must be a list of numbers"),
    ({"TracerRadionuclide": 11}, "TracerRadionuclide must be a string"),
    ({"TracerRadionuclide": None}, "no TracerRadionuclide"),
    ({"ImageDecayCorrectionTime": None}, "no ImageDecayCorrectionTime"),
])
def test_sidecar_types_are_checked(changes, message):
    side = {**FRAMES, "TracerRadionuclide": "C11", "ImageDecayCorrected": True,
            "ImageDecayCorrectionTime": 0, **changes}
    side = {k: v for k, v in side.items() if v is not None}
    with pytest.raises(TimingError, match=message):
        PETMetadata.from_sidecar(side)
