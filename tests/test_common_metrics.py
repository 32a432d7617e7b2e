"""Tests for common/metrics.py and common/features.py: known answers and reference agreement.

Nothing here downloads anything: the tests of the pretrained wrappers replace the
weight loaders (and socket connections) with functions that fail or return random weights.
"""
import math
import socket
import sys
import urllib.error
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common import synthetic
from common.features import FeatureDistance, InceptionFeatures, LpipsDistance, WeightsUnavailable
from common.metrics import (FidReference, MetricUnavailable, activation_statistics, colour_layout, detect_faces,
                            diversity, extract_features, face_detection_rate, fid, fid_from_features, frechet_distance,
                            mahalanobis_distances, mean_pairwise_distance, psnr, sample_diversity, sharpness, ssim)


class ToyExtractor(nn.Module):
    """A fixed random 3×3 conv + ReLU + global average pool: a tiny deterministic extractor."""

    name = "toy"

    def __init__(self, dim=16):
        super().__init__()
        self.conv = nn.Conv2d(3, dim, 3)
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(dim, generator=g))
        self.eval()

    def forward(self, x):
        return F.relu(self.conv(x)).mean(dim=(2, 3))


def images(n, seed, size=16):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- Fréchet distance

def test_frechet_of_unit_gaussians_one_apart_in_512d_is_512():
    d = 512                                         # ‖0 − 1‖² = d, and the covariance terms cancel: d + d − 2d
    eye = np.eye(d)
    assert frechet_distance(np.zeros(d), eye, np.ones(d), eye) == pytest.approx(512, rel=1e-6)


def test_frechet_hand_computed_1d():
    # ||0 - 3||² + 1 + 4 - 2·sqrt(1·4) = 9 + 5 - 4 = 10
    assert frechet_distance(0.0, 1.0, 3.0, 4.0) == pytest.approx(10.0, rel=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pytorch-fid passes scipy's deprecated `disp`
def test_frechet_agrees_with_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 64))
    b = rng.normal(0.3, 1.5, size=(200, 64)) + 0.5 * rng.normal(size=(200, 1))
    stats_a, stats_b = activation_statistics(a), activation_statistics(b)
    ours = frechet_distance(*stats_a, *stats_b)
    assert ours == pytest.approx(calculate_frechet_distance(*stats_a, *stats_b), rel=1e-6)
    assert ours == pytest.approx(fid_from_features(torch.from_numpy(a), torch.from_numpy(b)), rel=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_frechet_singular_covariances_retry_with_eps_and_say_so_once_in_words(capsys, monkeypatch):
    from pytorch_fid.fid_score import calculate_frechet_distance

    import common.metrics
    monkeypatch.setattr(common.metrics, "_SAID", set())
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 64)), rng.normal(1, 2, size=(10, 64))
    a[:, :8], b[:, :8] = 0.0, 0.5   # constant features: both covariances exactly singular
    stats_a, stats_b = activation_statistics(a), activation_statistics(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)          # no raw warning with a file path any more
        ours = frechet_distance(*stats_a, *stats_b)
        assert frechet_distance(*stats_a, *stats_b) == ours
    assert math.isfinite(ours)
    assert ours == pytest.approx(calculate_frechet_distance(*stats_a, *stats_b), rel=1e-4)
    printed = capsys.readouterr().out
    assert printed.count("note: FID added 1e-06 to the diagonal") == 1 and "singular" in printed


def test_frechet_rejects_significant_imaginary_part():
    # not a covariance: sqrt(diag(-1, 1)) = diag(i, 1)
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


def test_frechet_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="same extractor"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_activation_statistics():
    x = torch.tensor([[0.0, 1.0], [2.0, 5.0]])
    mu, sigma = activation_statistics(x)
    assert mu.dtype == np.float64
    np.testing.assert_allclose(mu, [1.0, 3.0])
    np.testing.assert_allclose(sigma, [[2.0, 4.0], [4.0, 8.0]])  # sample covariance, 1/(N-1)


# ----------------------------------------------------------------------------- FID on images

def test_fid_is_zero_on_identical_sets_and_grows_with_a_shift():
    extractor = ToyExtractor()
    x = images(64, seed=0)
    assert fid(x, x, extractor, batch_size=20) == pytest.approx(0.0, abs=1e-6)
    small = fid(x, (x + 0.1).clamp(-1, 1), extractor)
    large = fid(x, (x + 0.4).clamp(-1, 1), extractor)
    assert 0.0 < small < large


def test_fid_accepts_uint8_like_float():
    extractor = ToyExtractor()
    x8 = (torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 255).round().to(torch.uint8)
    y8 = x8.flip(0).roll(1, dims=-1)
    as_float = fid(x8.float() / 127.5 - 1, y8.float() / 127.5 - 1, extractor)
    assert fid(x8, y8, extractor, batch_size=3) == pytest.approx(as_float, rel=1e-9)
    assert extract_features(x8, extractor).dtype == torch.float64


def test_fid_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        fid(images(1, 0), images(5, 1), ToyExtractor())


# ----------------------------------------------------------------------------- diversity (eq. 3.8)

class MeanAbsDistance:
    name = "mean-abs"

    def to(self, device):
        return self

    def __call__(self, a, b):
        return (a - b).abs().flatten(1).mean(dim=1)


def test_mean_pairwise_distance_hand_computed():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]], dtype=torch.float64)
    # pairs: |(0,0)-(3,4)| = 5, |(0,0)-(0,4)| = 4, |(3,4)-(0,4)| = 3 -> mean 4
    assert mean_pairwise_distance(f) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(f[:1])


def test_sample_diversity_is_zero_for_one_repeated_image_and_one_for_real_faces():
    from common import synthetic
    from common.synthnet import SyntheticFeatures
    extractor = SyntheticFeatures()
    real = extract_features(synthetic.faces(200, 32, "photo", seed=0, start=500_000), extractor)
    other_real = extract_features(synthetic.faces(200, 32, "photo", seed=0, start=0), extractor)
    one_face = extract_features(synthetic.faces(1, 32, "photo", seed=0).expand(200, -1, -1, -1), extractor)
    assert sample_diversity(one_face, real) == pytest.approx(0.0, abs=1e-6)
    assert sample_diversity(other_real, real) == pytest.approx(1.0, abs=0.05)
    assert sample_diversity(real[:, :] * 0.5, real) == pytest.approx(0.5)       # distances scale with the spread


def test_fid_reference_matches_the_separate_measures():
    torch.manual_seed(0)
    a, b = torch.rand(40, 3, 8, 8) * 2 - 1, torch.rand(40, 3, 8, 8) * 2 - 1

    class Flatten(nn.Module):
        name = "flat"

        def forward(self, x):
            return x.flatten(1)[:, :16]

    both = FidReference(b, Flatten())(a)
    fa, fb = extract_features(a, Flatten()), extract_features(b, Flatten())
    assert both["fid"] == pytest.approx(fid(a, b, Flatten()))
    assert both["diversity"] == pytest.approx(mean_pairwise_distance(fa) / mean_pairwise_distance(fb))


def test_pixel_diversity_hand_computed():
    # Constant images: the 8×8 colour layout of a c-coloured image is 192 entries equal to c.
    # real: black (−1) and white (+1): one pair at distance sqrt(192·2²) = 2·sqrt(192).
    # fake: black and mid-grey (0): sqrt(192·1²) = sqrt(192), so diversity_px = 0.5; one colour: 0.
    def flat(*levels):
        return torch.tensor(levels, dtype=torch.float32)[:, None, None, None].expand(-1, 3, 16, 16)

    class Mean(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    reference = FidReference(flat(-1.0, 1.0), Mean())
    assert colour_layout(flat(0.5)).shape == (1, 192)
    assert reference.pixel_spread == pytest.approx(2 * 192 ** 0.5)
    assert reference(flat(-1.0, 0.0))["diversity_px"] == pytest.approx(0.5)
    assert reference(flat(0.3, 0.3, 0.3))["diversity_px"] == 0.0
    # Fine texture does not count: a checkerboard averages to its mean colour over 2×2 blocks.
    board = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1     # ±1, mean 0
    textured = torch.stack([board.expand(3, 16, 16), torch.full((3, 16, 16), -1.0)])
    assert reference(textured)["diversity_px"] == pytest.approx(0.5)


def test_diversity_of_identical_outputs_is_zero():
    outputs = images(1, 0).expand(4, 3, -1, -1, -1).reshape(4, 3, 3, 16, 16).clone()  # same image everywhere
    assert diversity(outputs, MeanAbsDistance()) == 0.0


def test_diversity_hand_computed():
    # source 1: constant outputs 0, 0.2, 0.6 -> pairs 0.2, 0.6, 0.4 -> L_1 = 0.4
    # source 2: constant outputs 0, 0, 0.3   -> pairs 0, 0.3, 0.3   -> L_2 = 0.2;   L = 0.3
    levels = torch.tensor([[0.0, 0.2, 0.6], [0.0, 0.0, 0.3]])
    outputs = levels[:, :, None, None, None].expand(2, 3, 3, 4, 4)
    assert diversity(outputs, MeanAbsDistance(), batch_size=2) == pytest.approx(0.3)
    assert diversity(outputs[:1], MeanAbsDistance()) == pytest.approx(0.4)


def test_diversity_grows_with_spread():
    base = images(2, 0)[:, None].expand(2, 4, 3, 16, 16)
    noise = images(8, 1).view(2, 4, 3, 16, 16)
    d = [diversity(base + s * noise, MeanAbsDistance()) for s in (0.1, 0.5)]
    assert 0 < d[0] < d[1]


def test_diversity_needs_two_outputs_per_source():
    with pytest.raises(ValueError, match="at least 2 outputs"):
        diversity(images(3, 0)[:, None], MeanAbsDistance())


# ----------------------------------------------------------------------------- PSNR / SSIM

def test_sharpness_by_hand():
    flat = torch.zeros(1, 3, 4, 4)
    ramp = torch.linspace(-1, 1, 4).view(1, 1, 1, 4).expand(1, 3, 4, 4)     # linear: Laplacian 0
    dot = torch.zeros(1, 3, 4, 4)
    dot[..., 1, 1] = 1.0             # the 2×2 valid Laplacian outputs: −4 at (1,1), +1 at (1,2) and (2,1), 0 at (2,2)
    torch.testing.assert_close(sharpness(torch.cat([flat, ramp, dot])),
                               torch.tensor([0.0, 0.0, 6 / 4], dtype=torch.float64))


def test_psnr_known_value():
    a = torch.zeros(2, 3, 8, 8)
    b = torch.full((2, 3, 8, 8), 0.2)  # MSE 0.04, range 2 -> 10·log10(4 / 0.04) = 20 dB
    torch.testing.assert_close(psnr(a, b), torch.full((2,), 20.0, dtype=torch.float64))


def test_ssim_identical_is_one_and_drops_with_noise():
    x = images(2, 0, size=32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64))
    noise = images(2, 1, size=32)
    s = [ssim(x, (x + k * noise).clamp(-1, 1)) for k in (0.05, 0.3)]
    assert (s[1] < s[0]).all() and (s[0] < 1).all()


def test_ssim_in_batches_is_ssim_of_each_image():
    x, y = images(5, 0, size=16), images(5, 1, size=16)
    whole = ssim(x, y, batch=16)
    torch.testing.assert_close(ssim(x, y, batch=2), whole, rtol=0, atol=1e-15)      # 2 + 2 + 1 images
    torch.testing.assert_close(ssim(x[3:4], y[3:4]), whole[3:4], rtol=0, atol=1e-15)


def test_ssim_of_constant_images_hand_computed():
    # constant images: all variances and the covariance are 0, so SSIM = (2·mu_a·mu_b + C1) / (mu_a² + mu_b² + C1)
    a, b = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.5)
    c1 = (0.01 * 2) ** 2
    assert ssim(a, b).item() == pytest.approx(c1 / (0.25 + c1), rel=1e-9)


def test_ssim_agrees_with_gaussian_filter_reference():
    """skimage's algorithm written with scipy: Gaussian-filtered moments (sigma 1.5, truncated
    at 3.5 sigma = 11 taps), borders of 5 px cropped, mean over pixels, then over channels."""
    from scipy.ndimage import gaussian_filter
    a, b = images(2, 0, size=24)[..., :20], images(2, 1, size=24)[..., :20]
    b = (a + 0.3 * b).clamp(-1, 1)
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2

    def reference(x, y):
        blur = lambda z: gaussian_filter(z, 1.5, truncate=3.5)  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
        s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
        return s[5:-5, 5:-5].mean()
    expected = [np.mean([reference(a[i, c].double().numpy(), b[i, c].double().numpy()) for c in range(3)])
                for i in range(2)]
    np.testing.assert_allclose(ssim(a, b).numpy(), expected, rtol=1e-10)


def test_ssim_agrees_with_skimage():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    a, b = images(1, 0, size=24), images(1, 1, size=24)
    b = (a + 0.3 * b).clamp(-1, 1)
    ref = skimage_metrics.structural_similarity(a[0].numpy(), b[0].numpy(), channel_axis=0, data_range=2.0,
                                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(a, b).item() == pytest.approx(ref, rel=1e-5)


# ----------------------------------------------------------------------------- feature distance

def test_feature_distance_is_zero_on_itself_symmetric_and_bounded():
    distance = FeatureDistance(ToyExtractor())
    a, b = images(3, 0), images(3, 1)
    assert distance.name == "toy-l2"
    torch.testing.assert_close(distance(a, a), torch.zeros(3))
    torch.testing.assert_close(distance(a, b), distance(b, a))
    assert ((distance(a, b) > 0) & (distance(a, b) <= 4)).all()


def test_feature_distance_formula():
    class Fixed(nn.Module):
        name = "fixed"

        def forward(self, x):
            return x.flatten(1)[:, :2]
    a, b = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    # unit vectors (0.6, 0.8) and (1, 0): (0.4)² + (0.8)² = 0.8
    assert FeatureDistance(Fixed())(a, b).item() == pytest.approx(0.8)


# ----------------------------------------------------------------------------- pretrained wrappers, offline

@pytest.fixture
def no_network(monkeypatch):
    """Any weight download fails at once, and no socket can connect."""
    def fail(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")
    import pytorch_fid.inception
    import torchvision.models._api
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", fail)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fail)
    monkeypatch.setattr(socket.socket, "connect", fail)


@pytest.mark.parametrize("build, weights, alternative", [
    (InceptionFeatures, "pt_inception-2015-12-05-6726825d.pth", "--fid-features synthetic"),
    (LpipsDistance, "alexnet-owt-7be5be79.pth", "FeatureDistance"),
])
def test_offline_gives_one_sentence_naming_the_file_folder_and_alternative(no_network, build, weights, alternative):
    with pytest.raises(WeightsUnavailable) as err:
        build()
    message = str(err.value)
    assert weights in message and torch.hub.get_dir() in message and alternative in message


def test_inception_features_input_convention(monkeypatch):
    """With random weights standing in for the download: (B, 2048) features, [-1, 1] reaching the
    network unchanged (pytorch-fid rescales [0, 1] itself), grayscale repeated to 3 channels."""
    import pytorch_fid.inception
    monkeypatch.setattr(pytorch_fid.inception, "fid_inception_v3",
                        lambda: pytorch_fid.inception._inception_v3(num_classes=1008, aux_logits=False, weights=None))
    extractor = InceptionFeatures()
    seen = []
    extractor.net.blocks[0].register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    gray = images(1, 0, size=32)[:, :1]
    with torch.no_grad():
        out = extractor(gray)
    assert extractor.name == "inception-pool3" and out.shape == (1, 2048)
    expected = F.interpolate(gray.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(seen[0], expected)


def test_lpips_distance_with_stand_in_trunk(monkeypatch):
    """With a random AlexNet standing in for the download: (B,) distances, 0 on identical images."""
    import torchvision.models
    import torchvision.models._api
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url",
                        lambda *args, **kwargs: torchvision.models.alexnet().state_dict())
    distance = LpipsDistance()
    a, b = images(2, 0, size=32), images(2, 1, size=32)
    with torch.no_grad():
        assert distance.name == "lpips-alex"
        torch.testing.assert_close(distance(a, a), torch.zeros(2))
        d = distance(a[:, :1], b[:, :1])
        assert d.shape == (2,) and (d > 0).all()
        torch.testing.assert_close(d, distance(a[:, :1].expand(-1, 3, -1, -1), b[:, :1].expand(-1, 3, -1, -1)))


# ----------------------------------------------------------------------------- face detection

def test_face_detection_rate_is_zero_on_blank_images():
    pytest.importorskip("dlib")
    grey = torch.full((2, 3, 64, 64), 128, dtype=torch.uint8)
    assert face_detection_rate(grey) == 0.0
    assert face_detection_rate(torch.zeros(1, 1, 48, 48), upsample_to=96) == 0.0  # float, grayscale


def test_face_detection_finds_built_in_faces_and_threads_do_not_change_the_answer():
    pytest.importorskip("dlib")
    faces = torch.cat([synthetic.faces(10, 32, "photo", seed=0), torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)])
    found = detect_faces(faces, threads=1)
    assert found[:10].any() and not found[10:].any()
    assert torch.equal(detect_faces(faces, threads=3), found)


def test_face_detection_without_dlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(MetricUnavailable, match="pip install dlib-bin"):
        face_detection_rate(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_mahalanobis_distance_hand_computed():
    # reference: (±1, 0), (0, ±2) -> mu = 0, sigma = diag(2/3, 8/3) (N − 1 = 3 in the denominator)
    reference = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 4.0], [1.0, 2.0]])
    # d² = x²/(2/3) + y²/(8/3): 0, 1.5, 16·3/8 = 6, 1.5 + 4·3/8 = 3
    expected = np.sqrt([0.0, 1.5, 6.0, 3.0])
    got = mahalanobis_distances(points, reference, ridge=0.0)
    assert got.numpy() == pytest.approx(expected, rel=1e-12)
    # the ridge adds to sigma's diagonal: (1, 0) -> sqrt(1 / (2/3 + 1/3)) = 1
    assert mahalanobis_distances(torch.tensor([[1.0, 0.0]]), reference, ridge=1 / 3)[0].item() == pytest.approx(1.0)
