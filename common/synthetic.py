"""Datasets drawn from the built-in faces, as uint8 tensors in memory.

One builder per use in the repo:

=====================  ==========================================  =======================
builder                what                                        used by
=====================  ==========================================  =======================
``faces``              unconditional faces of one style            dcgan_celeba, began_refiner, style_anime
``mask_nir_pairs``     fixed-identity ``mask`` → random ``nir``    nir_cgan
``sr_unpaired``        HR photos + LR faces from other identities, sr_degradation
                       degraded by the hidden pipeline ``degrade``
=====================  ==========================================  =======================

Every builder is deterministic in (seed, index) and can return the true parameters.
"""
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from common.data import to_uint8
from common.faces import render, sample_params

LR_STREAM = 1_000_000   # sr_degradation's LR faces are items 1e6, 1e6+1, … : other people than the HR set


def faces(n, size=64, style="photo", seed=0, start=0, with_params=False, **ranges):
    """n faces of one style, uint8 (n, 3, size, size); ``ranges`` narrow parameters (``yaw=(-15, 15)``)."""
    params = sample_params(n, seed, start, **ranges)
    images = to_uint8(render(params, style, size))
    return (images, params) if with_params else images


# The one 3D model of the thesis (§3.1.1): a fixed, average identity for every source image.
SOURCE_IDENTITY = dict(face_width=1.0, face_length=1.0, skin_tone=0.5, hair_style=0.0, hair_colour=0.5,
                       brow_thickness=1.0, eye_size=1.0, eye_colour=0.5, nose_size=1.0, mouth_width=1.0, beard=0.0)


def mask_nir_pairs(n, size=128, seed=0, start=0, with_params=False, **ranges):
    """(mask uint8 (n, 3, H, W), nir uint8 (n, 1, H, W)) paired by pose, gaze and glasses.

    The source is always the same colour-coded identity (``SOURCE_IDENTITY``), rendered
    with glasses when the target person wears them (thesis §3.1.3); the target is a
    random person in near-infrared.
    """
    target = sample_params(n, seed, start, **ranges)
    source = dict(target, **{k: torch.full((n,), v) for k, v in SOURCE_IDENTITY.items()})
    mask = to_uint8(render(source, "mask", size))
    nir = to_uint8(render(target, "nir", size)[:, :1])
    return (mask, nir, target) if with_params else (mask, nir)


def degrade(hr, seed=0, start=0, out_size=16):
    """The hidden "real-world" degradation of sr_degradation (never shown to a model).

    Per image, with its own random stream (seed, start + i, 7):
    Gaussian blur σ ∈ [0.2, 1.6] px → downscale to ``out_size`` (area, bilinear or bicubic)
    → colour shift (gain ∈ [0.9, 1.1], offset ∈ [−0.04, 0.04] per channel)
    → Gaussian noise σ ∈ [0, 0.05] → JPEG quality ∈ [35, 90].
    hr: uint8 (N, 3, H, W). Returns uint8 (N, 3, out_size, out_size).
    """
    n = len(hr)
    rngs = [np.random.default_rng([seed, start + i, 7]) for i in range(n)]
    x = hr.float() / 255
    # Blur: one separable Gaussian kernel per image, applied as a grouped convolution.
    sigma = torch.tensor([rng.uniform(0.2, 1.6) for rng in rngs], dtype=torch.float32)
    taps = torch.arange(-4, 5, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(3, 0)          # (3N, 9)
    flat = F.pad(x.reshape(1, 3 * n, *x.shape[2:]), (4, 4, 4, 4), mode="replicate")
    flat = F.conv2d(flat, kernel.view(-1, 1, 1, 9), groups=3 * n)
    flat = F.conv2d(flat, kernel.view(-1, 1, 9, 1), groups=3 * n)
    x = flat.view_as(x)
    # Downscale with a method drawn per image.
    method = np.array([rng.integers(3) for rng in rngs])
    small = torch.empty(n, 3, out_size, out_size)
    for k, mode in enumerate(("area", "bilinear", "bicubic")):
        idx = torch.as_tensor(np.flatnonzero(method == k))
        if len(idx):
            kwargs = {} if mode == "area" else {"align_corners": False, "antialias": True}
            small[idx] = F.interpolate(x[idx], size=(out_size, out_size), mode=mode, **kwargs)
    gain = torch.tensor(np.stack([rng.uniform(0.9, 1.1, 3) for rng in rngs]), dtype=torch.float32)
    offset = torch.tensor(np.stack([rng.uniform(-0.04, 0.04, 3) for rng in rngs]), dtype=torch.float32)
    noise = torch.tensor(np.stack([rng.uniform(0, 0.05) * rng.standard_normal((3, out_size, out_size))
                                   for rng in rngs]), dtype=torch.float32)
    small = (small * gain[:, :, None, None] + offset[:, :, None, None] + noise).clamp(0, 1)
    out = torch.empty(n, 3, out_size, out_size, dtype=torch.uint8)
    for i, rng in enumerate(rngs):
        pixels = (small[i].permute(1, 2, 0) * 255).round().byte().numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(rng.integers(35, 91)))
        out[i] = torch.from_numpy(np.array(Image.open(buffer).convert("RGB"))).permute(2, 0, 1)
    return out


def sr_unpaired(n_hr, n_lr, hr_size=64, lr_size=16, seed=0, **ranges):
    """(hr uint8 (n_hr, 3, 64, 64), lr uint8 (n_lr, 3, 16, 16)) from disjoint sets of people.

    HR: clean photos, items 0…n_hr−1. LR: other people (items from ``LR_STREAM`` on),
    drawn at ``hr_size`` and put through ``degrade``. No LR image has an HR partner.
    """
    hr = faces(n_hr, hr_size, "photo", seed, **ranges)
    lr = degrade(faces(n_lr, hr_size, "photo", seed, start=LR_STREAM, **ranges), seed, LR_STREAM, lr_size)
    return hr, lr
