"""The built-in faces: determinism, parameters that show in the pixels, styles, builders."""
import pytest
import torch

from common import synthetic
from common.faces import STYLES, _rotation, render, repeat_face, sample_params


def test_face_i_of_seed_s_is_the_same_whatever_batch_it_is_drawn_in():
    alone = render(sample_params(1, seed=7, start=5), "photo", 32)
    in_batch = render(sample_params(8, seed=7, start=0), "photo", 32)[5:6]
    assert torch.equal(alone, in_batch)
    other_seed = render(sample_params(1, seed=8, start=5), "photo", 32)
    assert (alone - other_seed).abs().mean() > 0.05


def test_narrowing_one_range_keeps_the_rest_of_the_face():
    wide, narrow = sample_params(4, seed=0), sample_params(4, seed=0, yaw=(-5, 5))
    assert narrow["yaw"].abs().max() <= 5
    assert torch.equal(wide["skin_tone"], narrow["skin_tone"]) and torch.equal(wide["texture"], narrow["texture"])
    fixed = sample_params(3, seed=0, glasses=1, pitch=10.0)
    assert fixed["glasses"].tolist() == [1, 1, 1] and fixed["pitch"].tolist() == [10, 10, 10]
    with pytest.raises(ValueError, match="unknown face parameter"):
        sample_params(1, nose_colour=1)


def test_discrete_parameters_take_their_values():
    p = sample_params(500, seed=3)
    assert set(p["hair_style"].tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert set(p["beard"].tolist()) == {0.0, 1.0} and 0.1 < p["beard"].mean() < 0.3
    assert set(p["glasses"].tolist()) == {0.0, 1.0} and 0.1 < p["glasses"].mean() < 0.3


def test_rotation_follows_the_documented_signs():
    nose = torch.tensor([0.0, 0.0, 1.0])        # a point in front of the head
    def moved(**angles):
        a = {k: torch.tensor([float(angles.get(k, 0.0))]) for k in ("yaw", "pitch", "roll")}
        return _rotation(a["yaw"], a["pitch"], a["roll"])[0] @ nose
    assert moved(yaw=30)[0] > 0.4                 # yaw > 0: towards the image's right (+x)
    assert moved(pitch=30)[1] < -0.4              # pitch > 0: up (image y grows downwards)
    r = _rotation(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([90.0]))[0]
    assert torch.allclose(r @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)  # clockwise


def test_yaw_changes_pixels_on_the_face_and_not_in_the_corners():
    face = sample_params(1, seed=0, start=2, hair_style=0)
    a, b = render(repeat_face(face, 0, 2, yaw=torch.tensor([-20.0, 20.0])), "photo", 64)
    diff = (a - b).abs().sum(0)
    assert diff[20:44, 16:48].mean() > 0.1                     # the face moved
    assert diff[:6, :6].max() < 1e-6 and diff[:6, -6:].max() < 1e-6   # the background did not


def test_gaze_moves_the_irises_in_the_mask_style():
    face = sample_params(1, seed=0, start=3)
    left, right = render(repeat_face(face, 0, 2, gaze_yaw=torch.tensor([-25.0, 25.0]), yaw=0, roll=0), "mask", 128)
    def iris_x(img):                          # blue channel high, red low: the irises
        iris = ((img[2] > 0.5) & (img[0] < 0)).float()
        return (iris * torch.arange(128.0)).sum() / iris.sum()
    assert iris_x(right) - iris_x(left) > 2.0                    # pixels to the right
    assert torch.equal(left.amax(0) > -0.5, right.amax(0) > -0.5)   # the head did not move


@pytest.mark.parametrize("style", STYLES)
def test_every_style_draws_a_face_in_range(style):
    img = render(sample_params(4, seed=1), style, 32)
    assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    centre, corner = img[:, :, 12:20, 12:20].mean((1, 2, 3)), img[:, :, :3, :3].mean((1, 2, 3))
    assert ((centre - corner).abs() > 0.05).all()               # something is drawn in the middle


def test_mask_style_uses_the_thesis_colour_code():
    img = render(sample_params(1, seed=0, yaw=0, pitch=0, roll=0, glasses=0), "mask", 128)[0]
    colours = {tuple(int(c > 0) for c in img[:, y, x]) for y in range(0, 128, 2) for x in range(0, 128, 2)}
    for expected in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]:   # background, skin, eye white, iris
        assert expected in colours


def test_nir_is_grey_and_unknown_styles_are_refused():
    img = render(sample_params(2, seed=0), "nir", 32)
    assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 1], img[:, 2])
    with pytest.raises(ValueError, match="unknown style"):
        render(sample_params(1), "oil", 32)


def test_the_source_identity_fixes_every_identity_parameter_but_glasses():
    from common.faces import IDENTITY
    assert set(synthetic.SOURCE_IDENTITY) == set(IDENTITY) - {"glasses"}


def test_mask_nir_pairs_fix_the_source_identity_and_share_pose_and_glasses():
    mask, nir, params = synthetic.mask_nir_pairs(6, 64, seed=0, with_params=True)
    assert mask.shape == (6, 3, 64, 64) and nir.shape == (6, 1, 64, 64)
    same_pose = dict(yaw=0, pitch=0, roll=0, gaze_yaw=0, gaze_pitch=0, glasses=0, shift_x=0, shift_y=0, scale=0.64)
    mask, nir = synthetic.mask_nir_pairs(2, 64, seed=0, **same_pose)
    assert torch.equal(mask[0], mask[1])                # one source identity ...
    assert (nir[0].float() - nir[1].float()).abs().mean() > 3      # ... two different people
    mask, _, params = synthetic.mask_nir_pairs(6, 64, seed=0, with_params=True)
    white = (mask.float().min(1).values > 100).flatten(1).any(1)      # whitish frames: glasses
    assert torch.equal(white, params["glasses"].bool())


def test_degradation_is_deterministic_and_really_degrades():
    hr = synthetic.faces(4, 64, seed=0)
    lr1, lr2 = synthetic.degrade(hr, seed=0), synthetic.degrade(hr, seed=0)
    assert lr1.shape == (4, 3, 16, 16) and torch.equal(lr1, lr2)
    clean = torch.nn.functional.interpolate(hr.float(), size=16, mode="area")
    assert (lr1.float() - clean).abs().mean() > 2            # not just a resize
    assert not torch.equal(synthetic.degrade(hr, seed=1), lr1)


def test_sr_sets_are_other_people():
    hr, lr = synthetic.sr_unpaired(4, 4, seed=0)
    assert hr.shape == (4, 3, 64, 64) and lr.shape == (4, 3, 16, 16)
    hr_params = sample_params(4, 0)
    lr_params = sample_params(4, 0, start=synthetic.LR_STREAM)
    assert not torch.equal(hr_params["skin_tone"], lr_params["skin_tone"])
