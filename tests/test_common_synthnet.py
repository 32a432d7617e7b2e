"""The shipped synthetic-face network: it loads, reads pose and attributes, and retrains."""
import torch

from common.faces import render, sample_params
from common.synthnet import SyntheticFeatures, identity_similarity, load_synthnet, pose_gaze_error, predict
from tools import train_synthnet

FRESH = dict(seed=5, start=0)           # a seed the network was neither trained nor evaluated on


def test_features_are_256_d_for_any_size_and_grey_inputs():
    extractor = SyntheticFeatures()
    assert extractor.name == "synthetic-v1"
    x = render(sample_params(3, **FRESH), "photo", 32)
    with torch.no_grad():
        assert extractor(x).shape == (3, 256)
        assert extractor(x[:, :1]).shape == (3, 256)


def test_it_reads_pose_and_glasses_on_fresh_faces():
    params = sample_params(120, **FRESH)
    images = render(params, "photo", 64)
    error = pose_gaze_error(images, params)
    assert error["yaw"] < 5 and error["pitch"] < 4 and error["roll"] < 4     # degrees
    glasses = predict(images)["attributes"][:, 1] > 0.5
    assert (glasses == params["glasses"].bool()).float().mean() > 0.95


def test_it_reads_gaze_only_on_the_mask_style():
    # synthetic-v1 learned gaze where the iris is high-contrast (mask: ~5°); on the other
    # styles it is at chance (~15° for ±25°), as the README says. A better v2 would move this.
    params = sample_params(120, **FRESH)
    assert pose_gaze_error(render(params, "mask", 64), params)["gaze_yaw"] < 8


def test_identity_similarity_is_higher_for_the_same_person():
    face = sample_params(1, **FRESH)
    same = render({k: v.repeat_interleave(2, 0) for k, v in face.items()} | {"yaw": torch.tensor([-15.0, 15.0])}, "photo")
    others = render(sample_params(2, seed=6), "photo")
    net = load_synthnet()
    assert identity_similarity(same[:1], same[1:], net) > identity_similarity(same[:1], others[:1], net)


def test_retraining_script_runs_and_writes_loadable_weights(tmp_path):
    out = tmp_path / "synthnet.pt"
    train_synthnet.main(["--steps", "2", "--batch-size", "12", "--eval-faces", "12", "--out", str(out)])
    assert out.exists() and out.with_suffix(".json").exists()
    assert load_synthnet(out).pose_gaze.out_features == 5
