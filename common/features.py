"""Feature extractors and perceptual distances used by the metrics.

Two small duck-typed interfaces, so that ``common.metrics`` works the same with
the standard pretrained networks and with the offline network shipped with the
repo (``common.synthnet``):

- an **extractor** has ``.name: str`` and ``__call__(x) -> (B, D)`` float
  features for images ``x`` of shape (B, 3, H, W), float in [-1, 1]. It is an
  ``nn.Module`` in eval mode (or any object with ``.to(device)``).
- a **distance** has ``.name: str`` and ``__call__(a, b) -> (B,)``: one distance
  per image pair, for images ``a``, ``b`` of shape (B, C, H, W) in [-1, 1].

Every reported number names the extractor / distance it used (``.name``).

Pretrained weights are fetched on first use by torch hub, never at import time:
the networks are built only inside the constructors below. Offline, a
constructor raises ``WeightsUnavailable`` naming the file, the folder to put it
in, and the offline alternative.
"""
import os
import pickle
import warnings

import torch
import torch.nn.functional as F
from torch import nn


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be downloaded or loaded."""


def weights_error(what: str, url: str, alternative: str, err: Exception) -> WeightsUnavailable:
    """One sentence: which file, where it goes, and the offline alternative. A file that is
    already in torch's cache but cannot be read (an interrupted download) is named, to delete."""
    name = os.path.basename(url)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", name)
    if os.path.exists(cached):
        return WeightsUnavailable(
            f"The {what} weights {cached} cannot be read ({type(err).__name__}: {err}); the file is "
            f"damaged, probably an interrupted download: delete it so that it is fetched again, "
            f"or use {alternative}.")
    return WeightsUnavailable(
        f"Could not fetch the {what} weights {name} ({type(err).__name__}: {err}); download {url} "
        f"into {os.path.dirname(cached)}, or use {alternative}.")


LOAD_ERRORS = (OSError, RuntimeError, EOFError, pickle.UnpicklingError)   # offline, or a damaged file


def torchvision_weights(weights, what: str, alternative: str) -> dict:
    """The state dict of torchvision ``weights`` (e.g. ``VGG19_Weights.IMAGENET1K_V1``),
    fetched into torch's cache on first use; ``WeightsUnavailable`` when that fails."""
    try:
        return weights.get_state_dict(progress=True)
    except LOAD_ERRORS as err:
        raise weights_error(what, weights.url, alternative, err) from err


def _to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Repeat a 1-channel (grayscale, e.g. NIR) batch to 3 channels."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class InceptionFeatures(nn.Module):
    """The standard FID feature extractor: 2048-d pool3 features of the FID Inception v3.

    This is pytorch-fid's port of the TensorFlow Inception used by the original FID
    code (weights ``pt_inception-2015-12-05-6726825d.pth``). Inputs are resized
    bilinearly to 299×299 inside the network.
    """

    name = "inception-pool3"

    def __init__(self, device="cpu"):
        super().__init__()
        from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3
        try:
            self.net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                                   resize_input=True, normalize_input=True)
        except LOAD_ERRORS as err:  # URLError and HTTPError are OSErrors
            raise weights_error(
                "FID Inception", FID_WEIGHTS_URL,
                "the offline features with --fid-features synthetic "
                "(the small network shipped with this repo)", err) from err
        self.eval().to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1 or 3, H, W) in [-1, 1] -> (B, 2048)."""
        x01 = (_to_rgb(x) + 1) / 2  # pytorch-fid expects [0, 1] and maps it back to [-1, 1] itself
        return self.net(x01)[0].flatten(1)  # (B, 2048, 1, 1) -> (B, 2048)


def _lpips_trunk_weights():
    """torchvision weights of the ImageNet trunk that each lpips network loads."""
    from torchvision import models
    return {"alex": models.AlexNet_Weights.IMAGENET1K_V1,
            "vgg": models.VGG16_Weights.IMAGENET1K_V1,
            "squeeze": models.SqueezeNet1_1_Weights.IMAGENET1K_V1}


class LpipsDistance(nn.Module):
    """LPIPS (Zhang et al. 2018), the standard perceptual distance, from the ``lpips`` package.

        LPIPS(x1, x2) = sum_l 1/(H_l W_l) sum_{h,w} || w_l ⊙ (f̂^l_hw(x1) − f̂^l_hw(x2)) ||²

    with f̂^l the channel-unit-normalised activations of layer l of an ImageNet
    network (AlexNet by default) and w_l learned per-channel weights (the thesis's
    LPIPS formula, §3.3.1). The linear weights ship inside ``lpips``; the ImageNet
    trunk is fetched by torchvision. Differentiable, so it can also serve as a loss.
    """

    def __init__(self, net: str = "alex", device="cpu"):
        super().__init__()
        trunks = _lpips_trunk_weights()
        if net not in trunks:
            raise ValueError(f"LPIPS network must be one of {sorted(trunks)}, got {net!r}.")
        import lpips
        try:
            with warnings.catch_warnings():  # lpips still uses torchvision's deprecated `pretrained=`
                warnings.simplefilter("ignore", UserWarning)
                self.net = lpips.LPIPS(net=net, verbose=False)
        except LOAD_ERRORS as err:
            raise weights_error(
                f"ImageNet {net} (for LPIPS)", trunks[net].url,
                "the offline distance common.features.FeatureDistance "
                "on the synthetic-face network shipped with this repo", err) from err
        self.name = f"lpips-{net}"
        self.eval().to(device)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, 1 or 3, H, W) in [-1, 1] -> (B,) distances."""
        return self.net(_to_rgb(a), _to_rgb(b)).flatten()  # lpips returns (B, 1, 1, 1)


class FeatureDistance(nn.Module):
    """Offline perceptual distance on the features of an extractor:

        d(a, b) = || f(a)/||f(a)|| − f(b)/||f(b)|| ||²   ∈ [0, 4]

    i.e. the squared L2 distance between unit-normalised feature vectors
    (= 2 − 2·cosine similarity), the one-layer, unweighted analogue of LPIPS.
    Differentiable, so it can also serve as a loss.
    """

    def __init__(self, extractor):
        super().__init__()
        self.extractor = extractor
        self.name = f"{extractor.name}-l2"

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, C, H, W) in [-1, 1] -> (B,) distances."""
        fa = F.normalize(self.extractor(a), dim=1)
        fb = F.normalize(self.extractor(b), dim=1)
        return (fa - fb).pow(2).sum(dim=1)
