"""The kinetic model family: every command line and the config read their choices from one
registry, so a model added to it is taken everywhere. Shown with a model defined here, the
tissue ratio (BPND = area under C_T / area under C_R after t* minus 1, the simplest reference
method), put in the registry as a new model file would be."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.cli import fit as fit_cli
from bids_app.cli import tacs as tacs_cli
from bids_app.cli.common import run_cli
from bids_app.config import GroupConfig, ParticipantConfig
from bids_app.errors import PetbindError
from workflows.kinetics import models
from workflows.kinetics.model import Fit, ModelSettings


class TissueRatio:
    name = "ratio"
    label = "RATIO"
    method = "RATIO"
    title = "tissue ratio after 30 min"
    parameters = ("BPND",)
    maps = ("BPND",)
    needs = ()
    voxelwise = True

    def fit_voxelwise(self, timing, reference_tac, tacs, weights, settings):
        late = timing.mid_min >= 30
        d = timing.duration_s[late]
        y = np.atleast_2d(np.asarray(tacs, float))
        bpnd = (y[:, late] @ d) / (np.asarray(reference_tac)[late] @ d) - 1
        n = len(bpnd)
        return Fit(self.method, {"BPND": bpnd}, {}, np.zeros(n), np.full(n, int(late.sum())),
                   np.zeros(n, bool))

    fit_regional = fit_voxelwise

    def fitted(self, timing, reference_tac, values):
        return None

    def describe(self, settings):
        return {"TStarMin": 30}

    def describe_fit(self, fit):
        return {}

    def methods(self, settings):
        return "the tissue ratio after 30 min"


@pytest.fixture()
def ratio(monkeypatch):
    monkeypatch.setitem(models.MODELS, "ratio", TissueRatio())
    return TissueRatio()


def test_a_registered_model_is_taken_by_petbind_tacs(ratio, tmp_path, carfentanil_timing,
                                                    reference_tac):
    tacs = reference_tac * np.array([[1.5], [2.0]])          # BPND 0.5 and 1.0 exactly
    table = pd.DataFrame({"frame_start": carfentanil_timing.start_s,
                          "frame_end": carfentanil_timing.end_s, "ref": reference_tac,
                          "a": tacs[0], "b": tacs[1]})
    table.to_csv(tmp_path / "tacs.tsv", sep="\t", index=False)
    out = tmp_path / "kinpar.tsv"
    assert run_cli("petbind-tacs", tacs_cli.main, [str(tmp_path / "tacs.tsv"), "--reference",
                                                   "ref", "--model", "ratio", "-o",
                                                   str(out)]) == 0
    np.testing.assert_allclose(pd.read_csv(out, sep="\t")["BPND"], [0.5, 1.0], rtol=1e-6)
    assert json.loads(out.with_suffix(".json").read_text())["Model"] == "RATIO"


def test_a_registered_voxelwise_model_is_taken_by_petbind_fit_and_named_by_its_label(
        ratio, tmp_path, carfentanil_timing, reference_tac):
    shape = (4, 4, 3, carfentanil_timing.n_frames)
    data = np.broadcast_to(reference_tac, shape).copy().astype(np.float32)
    data[:, :, 1:] *= 2.0                                        # BPND 1 above the reference
    pet = tmp_path / "pet.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), pet)
    (tmp_path / "pet.json").write_text(json.dumps({
        "FrameTimesStart": carfentanil_timing.start_s.tolist(),
        "FrameDuration": carfentanil_timing.duration_s.tolist(), "TracerRadionuclide": "C11",
        "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0}))
    ref = np.zeros(shape[:3], np.uint8)
    ref[:, :, 0] = 1
    nib.save(nib.Nifti1Image(ref, np.eye(4)), tmp_path / "ref.nii.gz")
    assert run_cli("petbind-fit", fit_cli.main, [str(pet), "--reference-mask",
                                                 str(tmp_path / "ref.nii.gz"), "--model",
                                                 "ratio", "-o", str(tmp_path / "o")]) == 0
    bpnd = nib.load(tmp_path / "o_model-RATIO_meas-BPND_mimap.nii.gz").get_fdata()
    np.testing.assert_allclose(bpnd[:, :, 1:], 1.0, rtol=1e-5)


def test_the_participant_and_group_settings_take_the_registered_voxelwise_models(ratio):
    assert ParticipantConfig(models=["srtm-bfm", "ratio"]).models == ["srtm-bfm", "ratio"]
    assert GroupConfig(model="ratio").model_label == "RATIO"
    with pytest.raises(PetbindError, match="voxelwise models"):
        ParticipantConfig(models=["srtm"])                     # regional only
    with pytest.raises(PetbindError, match="one voxelwise model"):
        GroupConfig(model="nosuchmodel")


def test_every_model_declares_what_the_family_needs():
    for name, model in models.MODELS.items():
        assert model.name == name and model.label.isalnum()
        assert set(model.maps) <= set(model.parameters)
        assert set(model.needs) <= set(ModelSettings.__dataclass_fields__)
        assert model.voxelwise == bool(model.maps)
