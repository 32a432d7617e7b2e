"""nir_cgan/data.py and nir_cgan/clean.py: the thesis's data pipeline (§3.1.4–3.1.6)."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from common.data import DataError
from nir_cgan import clean
from nir_cgan.data import (AUGMENTATIONS, apply_augmentations, augment_pairs, clean_pairs, draw_augmentations,
                           iqr_bounds, iqr_outliers, load_pairs, normalise_mean, pair_group, split_sizes,
                           split_train_test, training_pairs)


def identity_params(n, **values):
    """Augmentation parameters that change nothing, with some set by hand."""
    params = {"scale": torch.ones(n), "shift": torch.zeros(n, 2), "rotation": torch.zeros(n),
              "gamma": torch.ones(n), "flip": torch.zeros(n, dtype=torch.bool)}
    for name, value in values.items():
        params[name] = torch.as_tensor(value).expand_as(params[name]).clone()
    return params


def ramp(n=2, size=8):
    """float (n, 1, size, size) whose value is the normalised x coordinate of each pixel centre."""
    x = (2 * torch.arange(size) + 1) / size - 1
    return x.expand(n, 1, size, size).clone()


# ---------------------------------------------------------------- §3.1.5 mean normalisation


def test_normalise_mean_scales_each_image_to_mu0():
    target = torch.tensor([[[[0.2, 0.4]]], [[[0.3, 0.9]]]])     # means 0.3 and 0.6
    out = normalise_mean(target, 0.6)
    # first image: factor 0.6 / 0.3 = 2; second: factor 1
    assert torch.allclose(out, torch.tensor([[[[0.4, 0.8]]], [[[0.3, 0.9]]]]))


def test_normalise_mean_clips_and_leaves_black_images_alone():
    out = normalise_mean(torch.tensor([[[[0.1, 0.9]]], [[[0.0, 0.0]]]]), 0.8)
    # factor 0.8 / 0.5 = 1.6: [0.16, 1.44] clipped to [0.16, 1.0], mean 0.58 < 0.8
    assert torch.allclose(out[0], torch.tensor([[[0.16, 1.0]]]))
    assert torch.equal(out[1], torch.zeros(1, 1, 2))


# ---------------------------------------------------------------- §3.1.4 data cleaning


def test_iqr_outliers_hand_worked():
    values = torch.tensor([-20.0, 2, 3, 4, 5, 6, 7, 8, 9, 40])
    # n = 10, linear interpolation: Q1 at position 0.25·9 = 2.25 -> 3 + 0.25·(4 − 3) = 3.25,
    # Q3 at position 6.75 -> 7 + 0.75·(8 − 7) = 7.75; IQR = 4.5; bounds 3.25 − 6.75 = −3.5, 7.75 + 6.75 = 14.5
    assert iqr_bounds(values) == pytest.approx((-3.5, 14.5))
    assert iqr_outliers(values).tolist() == [True] + [False] * 8 + [True]
    # k = 0: everything outside [3.25, 7.75]
    assert iqr_outliers(values, k=0).tolist() == [True, True, True, False, False, False, False, True, True, True]


def pairs_with_means(source_means, target_means):
    """Constant images (source RGB, target grayscale, 4×4) with the given means."""
    source = torch.tensor(source_means, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 4, 4)
    target = torch.tensor(target_means, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)
    return source, target


def test_clean_pairs_removes_an_outlier_in_either_domain_per_group():
    usual = [95, 96, 97, 98, 99, 100, 101, 102, 103, 104]      # Q1 97.25, Q3 101.75: bounds [90.5, 108.5]
    source_a, target_a = list(usual), list(usual)
    target_a[2] = 200       # group a, a bright target: Q1 98.25, Q3 102.75, bounds [91.5, 109.5]
    source_b, target_b = [m + 50 for m in usual], [m - 50 for m in usual]
    source_b[5] = 0         # group b, a blank source: Q1 146.25, Q3 151.75, bounds [138, 160]
    source, target = pairs_with_means(source_a + source_b, target_a + target_b)
    names = [f"a/{i}" for i in range(10)] + [f"b/{i}" for i in range(10)]

    keep, report = clean_pairs(source, target, names)

    assert (~keep).nonzero().flatten().tolist() == [2, 15]
    assert [(r["name"], r["group"], r["domains"]) for r in report["removed"]] == [
        ("a/2", "a", ("target",)), ("b/5", "b", ("source",))]
    assert report["removed"][0]["means"]["target"] == pytest.approx(200)
    assert report["removed"][0]["bounds"]["target"] == pytest.approx((91.5, 109.5))
    assert report["removed"][1]["bounds"]["source"] == pytest.approx((138, 160))
    assert {g: info["pairs"] for g, info in report["groups"].items()} == {"a": 10, "b": 10}


def test_clean_pairs_groups_by_sub_folder():
    # The same means in one group hide nothing: 60 is an outlier among the 100s only.
    source, target = pairs_with_means([100] * 5 + [60] * 5, [100] * 10)
    split = [f"x/{i}" for i in range(5)] + [f"y/{i}" for i in range(4)] + ["x/9"]
    keep, _ = clean_pairs(source, target, split)
    assert (~keep).nonzero().flatten().tolist() == [9]
    keep, report = clean_pairs(source, target, [str(i) for i in range(10)])   # one top-level group
    assert keep.all() and list(report["groups"]) == ["."]
    assert pair_group("subject1_cam2/0042") == "subject1_cam2" and pair_group("a/b/c") == "a/b"


def test_clean_pairs_leaves_groups_of_three_untouched():
    source, target = pairs_with_means([10, 10, 250], [10, 10, 10])
    assert iqr_outliers(torch.tensor([10.0, 10, 250]), k=0)[2]                # quartiles would flag it
    assert not clean_pairs(source, target, ["g/0", "g/1", "g/2"], k=0, min_group=3)[0][2]
    keep, report = clean_pairs(source, target, ["g/0", "g/1", "g/2"], k=0)     # default min_group = 4
    assert keep.all() and report["groups"]["g"]["checked"] is False


# ---------------------------------------------------------------- §3.1.5.1 augmentation (Table 3.1)


def test_augmentation_table_matches_thesis_table_3_1():
    assert AUGMENTATIONS == {"scale": (0.7, 1.0, 1.2), "shift": (0.7, -0.0625, 0.0625),
                             "rotation": (0.7, -math.pi / 4, math.pi / 4), "gamma": (0.5, 0.98, 1.02),
                             "flip": (0.5, None, None)}


def test_draw_augmentations_probabilities_and_ranges():
    n = 20_000
    params = draw_augmentations(n, torch.Generator().manual_seed(0))
    identity = {"scale": 1.0, "shift": 0.0, "rotation": 0.0, "gamma": 1.0}
    for name, (p, low, high) in AUGMENTATIONS.items():
        on = params["applied"][name]
        assert on.float().mean().item() == pytest.approx(p, abs=0.015), name     # σ ≈ 0.0035
        if name == "flip":
            assert torch.equal(params["flip"], on)
            continue
        values = params[name][on]
        span = high - low
        assert values.min() >= low and values.max() <= high, name
        assert values.min() < low + 0.01 * span and values.max() > high - 0.01 * span, name  # whole range used
        assert (params[name][~on] == identity[name]).all(), name
    # independent per augmentation (one ShiftScaleRotate would fire scale and rotation together)
    both = params["applied"]["scale"] & params["applied"]["rotation"]
    assert both.float().mean().item() == pytest.approx(0.49, abs=0.015)
    # x and y shifts are drawn separately
    shifted = params["shift"][params["applied"]["shift"]]
    assert (shifted[:, 0] != shifted[:, 1]).all()


def test_augment_pairs_warps_both_images_alike():
    image = torch.rand(16, 3, 16, 16) * 2 - 1
    source, target = augment_pairs(image, image.clone(), torch.Generator().manual_seed(1))
    assert torch.allclose(source, target, atol=1e-6)
    # a grayscale target is its channel of the same warp
    source, target = augment_pairs(image, image[:, :1].clone(), torch.Generator().manual_seed(1))
    assert torch.allclose(source[:, :1], target, atol=1e-6)
    assert (source - image).abs().amax(dim=(1, 2, 3)).gt(0.05).sum() >= 12    # most pairs were changed
    assert source.min() >= -1 and source.max() <= 1


def test_augment_pairs_is_reproducible_and_differs_per_pair():
    image = torch.rand(1, 1, 16, 16).expand(8, 1, 16, 16) * 2 - 1
    a, _ = augment_pairs(image, image, torch.Generator().manual_seed(3))
    b, _ = augment_pairs(image, image, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert (a[1:] - a[:1]).abs().amax(dim=(1, 2, 3)).gt(0).all()              # eight different transforms


def test_identity_parameters_change_nothing():
    image = torch.rand(4, 3, 12, 10) * 2 - 1
    source, target = apply_augmentations(image, image[:, :1], identity_params(4))
    assert torch.allclose(source, image, atol=1e-5) and torch.allclose(target, image[:, :1], atol=1e-5)


def test_flip_only_mirrors_exactly():
    image = torch.rand(3, 1, 9, 9) * 2 - 1
    source, _ = apply_augmentations(image, image, identity_params(3, flip=True))
    assert torch.allclose(source, image.flip(-1), atol=1e-5)


def test_scale_shift_rotation_gamma_units():
    x = ramp(size=8)
    # zoom by s: the output at x samples the input at x / s (bilinear is exact on a ramp, no border reached)
    zoomed, _ = apply_augmentations(x, x, identity_params(2, scale=1.2))
    assert torch.allclose(zoomed, x / 1.2, atol=1e-5)
    # shift 1/8 of the side on an 8-pixel image = one pixel to the right
    image = torch.rand(2, 1, 8, 8) * 2 - 1
    shifted, _ = apply_augmentations(image, image, identity_params(2, shift=torch.tensor([0.125, 0.0])))
    assert torch.allclose(shifted[..., 1:], image[..., :-1], atol=1e-5)
    # two pixels: what enters from the left border is the mirror image (reflection, not a copied edge)
    shifted, _ = apply_augmentations(image, image, identity_params(2, shift=torch.tensor([0.25, 0.0])))
    assert torch.allclose(shifted[..., :2], image[..., [1, 0]], atol=1e-5)
    # rotation is in radians: π/2 is a quarter turn
    turned, _ = apply_augmentations(image, image, identity_params(2, rotation=math.pi / 2))
    assert torch.allclose(turned, image.rot90(-1, dims=(2, 3)), atol=1e-5)
    # gamma on [0, 1]
    gamma, _ = apply_augmentations(image, image, identity_params(2, gamma=2.0))
    assert torch.allclose(gamma, ((image + 1) / 2) ** 2 * 2 - 1, atol=1e-5)


# ---------------------------------------------------------------- §3.1.6 split


def test_split_train_test_sizes_disjoint_deterministic():
    train, test = split_train_test(100)
    assert len(train) == 90 and len(test) == 10
    assert sorted(train.tolist() + test.tolist()) == list(range(100))
    assert torch.equal(split_train_test(100)[1], test)
    assert not torch.equal(split_train_test(100, seed=1)[1], test)
    assert [len(t) for t in split_train_test(5)] == [4, 1]        # round(0.5) = 0, raised to 1
    assert [len(t) for t in split_train_test(2)] == [1, 1]
    assert [len(t) for t in split_train_test(1)] == [1, 0]
    assert [len(t) for t in split_train_test(10, test_fraction=1.0)] == [1, 9]   # never all
    for n, fraction in ((100, 0.1), (5, 0.1), (2, 0.1), (1, 0.1), (10, 1.0)):
        assert split_sizes(n, fraction) == tuple(len(t) for t in split_train_test(n, fraction)), n


@pytest.mark.filterwarnings("ignore:left out 1 files")              # d and f, which have no partner
def test_training_pairs_are_counted_by_name_before_any_image_is_read(tmp_path):
    assert training_pairs(None, 40) == 36 and training_pairs(None, 20) == len(load_pairs(None, 16, 20)[0]["source"])
    rng = np.random.default_rng(0)
    for side, names in (("source", ["a.png", "b.png", "x/c.jpg", "d.png", "e.txt"]),
                        ("target", ["a.jpg", "b.PNG", "x/c.png", "e.txt", "f.png"])):
        for name in names:
            (tmp_path / side / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / side / name, "PNG")
    # a, b and x/c have a partner of the same name (d and f do not, e is not an image): 3 pairs, 1 held out
    assert training_pairs(tmp_path, 999) == 2 == len(load_pairs(tmp_path, 16, 999)[0]["source"])
    (tmp_path / "half" / "source").mkdir(parents=True)
    with pytest.raises(DataError, match="half has no 'target/' folder"):
        training_pairs(tmp_path / "half", 999)
    with pytest.raises(DataError, match="does not exist"):
        training_pairs(tmp_path / "nowhere", 999)


def test_load_pairs_is_the_same_split_every_time():
    """train.py and eval.py both call load_pairs: the same 90/10 split, mean-normalised targets, and the
    test pairs' true pose and gaze for eval."""
    train, test = load_pairs(None, 16, 20)
    again_train, again_test = load_pairs(None, 16, 20)
    assert len(train["source"]) == 18 and len(test["source"]) == 2
    assert torch.equal(test["source"], again_test["source"]) and torch.equal(train["target"], again_train["target"])
    assert train["source"].shape == (18, 3, 16, 16) and test["target"].shape == (2, 1, 16, 16)
    assert train["source"].dtype == test["target"].dtype == torch.uint8
    assert set(test["params"]) >= {"yaw", "pitch", "gaze_yaw"} and len(test["params"]["yaw"]) == 2
    means = ((torch.cat([train["target"], test["target"]]).float() / 255).mean(dim=(1, 2, 3)))
    assert means.std() < 0.02                                    # §3.1.5: every target at about μ0


# ---------------------------------------------------------------- clean.py


def test_clean_demo_catches_planted_corruptions(tmp_path, capsys):
    result = clean.main(["--demo", "--out", str(tmp_path)])
    assert result["planted"] == 8 and result["caught"] == 8
    assert result["mistakes"] <= 2
    assert (tmp_path / "removed.txt").read_text().split() == result["removed"]
    assert (tmp_path / "removed.png").stat().st_size > 0
    assert "Caught 8 of 8" in capsys.readouterr().out
    # the same folder through --data at a smaller size: the same pairs go
    again = clean.main(["--data", str(tmp_path / "demo_data"), "--size", "32", "--out", str(tmp_path / "again")])
    assert set(result["removed"]) <= set(again["removed"])


def test_clean_bad_input_is_one_sentence(tmp_path):
    with pytest.raises(SystemExit) as missing:
        clean.main(["--data", str(tmp_path / "nowhere")])
    assert isinstance(missing.value.code, str) and "does not exist" in missing.value.code
    assert "\n" not in missing.value.code
    (tmp_path / "empty" / "source").mkdir(parents=True)
    (tmp_path / "empty" / "target").mkdir()
    with pytest.raises(SystemExit) as empty:
        clean.main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert isinstance(empty.value.code, str) and "no file name" in empty.value.code
    with pytest.raises(SystemExit) as zero:
        clean.main(["--size", "0", "--out", str(tmp_path / "zero")])
    assert zero.value.code == 2 and not (tmp_path / "zero").exists()
