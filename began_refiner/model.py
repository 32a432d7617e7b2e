"""Networks and losses of "An Image-based Generator Architecture for Synthetic Image Refinement".

The discriminator is BEGAN's autoencoder (§2.1, Fig. 1); the generator is either BEGAN's
noise decoder (the baseline) or a *refiner* (Fig. 2): the same decoder shape, fed with a
downscaled image instead of noise, with sharper downscaled copies injected after each
upsampling. Layer details follow the BEGAN reference implementation
(carpedm20/BEGAN-tensorflow, models.py): 3×3 convolutions with ELU, two per block,
encoder widths n, 2n, 3n, …, a fully connected bottleneck h, a constant-width decoder
with nearest-neighbour upsampling and a linear output convolution (no tanh).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _levels(size, lowest):
    """Blocks from ``lowest`` up to ``size``: 64 from 8 -> 4 blocks (8, 16, 32, 64)."""
    doublings = math.log2(size / lowest)
    if doublings < 1 or doublings != int(doublings):
        raise ValueError(f"the image size must be {lowest} (the lowest resolution) times a power of two, "
                         f"e.g. {4 * lowest}, not {size}")
    return int(doublings) + 1


def _conv(c_in, c_out):
    return nn.Conv2d(c_in, c_out, 3, 1, 1)


class Decoder(nn.Module):
    """BEGAN decoder: h → FC → 8×8×n → [conv, ELU, conv, ELU, ×2 nearest]… → conv → 3×size×size.

    For size 64, n filters:  h → 8×8×n → 16×16×n → 32×32×n → 64×64×n → 64×64×3.
    ``lowest`` is the first size (8 in BEGAN and the paper). Serves as the discriminator's
    decoder and as the baseline noise generator G(z).
    """

    def __init__(self, size=64, n=64, h=64, channels=3, lowest=8):
        super().__init__()
        self.n, self.start = n, lowest
        self.fc = nn.Linear(h, lowest * lowest * n)
        self.blocks = nn.ModuleList(nn.Sequential(_conv(n, n), nn.ELU(), _conv(n, n), nn.ELU())
                                    for _ in range(_levels(size, lowest)))
        self.out = _conv(n, channels)

    def forward(self, h):                                       # h: (B, h)
        x = self.fc(h).view(-1, self.n, self.start, self.start)  # (B, n, lowest, lowest)
        for i, block in enumerate(self.blocks):
            x = block(x)                                        # (B, n, s, s), s = lowest · 2^i
            if i < len(self.blocks) - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")   # (B, n, 2s, 2s)
        return self.out(x)                                      # (B, 3, size, size), linear: no tanh


class Discriminator(nn.Module):
    """BEGAN's autoencoder discriminator D (§2.1, Fig. 1): D(v) is a reconstruction of v.

    Encoder, for size 64 and n filters:
        3×64×64 → conv → n×64×64 → block(n) ↓ → block(2n) ↓ → block(3n) ↓ → block(4n): 4n×8×8
        → FC → h
    where a block is [conv, ELU, conv, ELU] and ↓ halves the size. ``downsample="conv"``
    is the reference's stride-2 convolution with ELU (same width); ``"nearest"`` is the
    paper's literal nearest-neighbour resize (§2.1). Decoder: ``Decoder`` with its own weights.
    """

    def __init__(self, size=64, n=64, h=64, channels=3, lowest=8, downsample="conv"):
        super().__init__()
        levels = _levels(size, lowest)
        layers, c_prev = [_conv(channels, n), nn.ELU()], n
        for i in range(levels):
            c = n * (i + 1)
            layers += [_conv(c_prev, c), nn.ELU(), _conv(c, c), nn.ELU()]
            if i < levels - 1:
                layers += ([nn.Conv2d(c, c, 3, 2, 1), nn.ELU()] if downsample == "conv"   # reference: stride 2, ELU
                           else [nn.Upsample(scale_factor=0.5)])
            c_prev = c
        self.encoder = nn.Sequential(*layers)
        self.fc = nn.Linear(c_prev * lowest * lowest, h)
        self.decoder = Decoder(size, n, h, channels, lowest)

    def forward(self, x):                                       # x: (B, 3, size, size)
        features = self.encoder(x)                              # (B, levels·n, lowest, lowest)
        h = self.fc(features.flatten(1))                        # (B, h): the bottleneck
        return self.decoder(h)                                  # (B, 3, size, size): D(x), a reconstruction


class Refiner(nn.Module):
    """The image-based generator (Fig. 2): a decoder fed with downscaled images, no noise.

    ``inputs`` is how many resolutions it is given, from the lowest (8×8) up:
        model A: inputs=1 -> 8×8 only (most freedom, "most expressive")
        model B: inputs=2 -> 8×8, and 16×16 injected after the first upsampling
        model C: inputs=3 -> 8×8, 16×16 and 32×32 (most restricted)
    for a 64×64 output (for 32×32 from ``lowest=4``: 4×4; 4×4 + 8×8; 4×4 + 8×8 + 16×16).
    The lowest image enters through a convolution (3 → n) where the
    decoder has its FC layer; each injected image is concatenated to the features after
    an upsampling and the next convolution maps n + 3 → n channels.
    """

    def __init__(self, size=64, n=64, inputs=1, channels=3, lowest=8):
        super().__init__()
        levels = _levels(size, lowest)
        if not 1 <= inputs <= levels - 1:
            raise ValueError(f"a {size}×{size} refiner built from {lowest}×{lowest} has room for {levels - 1} downscaled "
                             f"input(s) below its output, and this one reads {inputs}")
        self.inputs = inputs
        self.stem = nn.Sequential(_conv(channels, n), nn.ELU())
        self.blocks = nn.ModuleList(
            nn.Sequential(_conv(n + (channels if 0 < i < inputs else 0), n), nn.ELU(), _conv(n, n), nn.ELU())
            for i in range(levels))
        self.out = _conv(n, channels)

    def forward(self, pyramid):
        """pyramid: the downscaled images, lowest first (``image_pyramid`` makes it): (B, 3, lowest·2^i, ·)."""
        x = self.stem(pyramid[0])                               # (B, n, lowest, lowest)
        for i, block in enumerate(self.blocks):
            if 0 < i < self.inputs:
                x = torch.cat([x, pyramid[i]], 1)               # (B, n + 3, s, s): the sharper copy injected
            x = block(x)                                        # (B, n, s, s), s = lowest · 2^i
            if i < len(self.blocks) - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")   # (B, n, 2s, 2s)
        return self.out(x)                                      # (B, 3, size, size)


REFINERS = {"A": 1, "B": 2, "C": 3}


def xavier_init(module):
    """The BEGAN reference's initialisation (TF-slim's defaults): Xavier-uniform weights, zero biases.

    PyTorch's default (Kaiming-uniform with a = √5, and non-zero biases) left G's output almost
    independent of z and D's reconstruction almost independent of its input at step 0.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def build(generator="B", size=64, n=64, h=64, lowest=8, downsample="conv"):
    """The run's networks, ``{"D": Discriminator, "G": Refiner or Decoder}``, initialised as the
    BEGAN reference does, from the keyword arguments that every checkpoint stores as
    ``model_args`` (so eval.py and --resume rebuild them).

    ``generator``: "A", "B", "C" (the refiners of Fig. 2) or "began" (BEGAN's noise decoder,
    whose noise z has h entries, as in BEGAN where N_z = h).
    """
    D = Discriminator(size, n, h, lowest=lowest, downsample=downsample)
    G = (Refiner(size, n, REFINERS[generator], lowest=lowest) if generator in REFINERS
         else Decoder(size, n, h, lowest=lowest))
    return {"D": D.apply(xavier_init), "G": G.apply(xavier_init)}


def image_pyramid(images, inputs, lowest=8):
    """Downscaled copies of ``images`` at 8×8, 16×16, … (``inputs`` of them), lowest first.

    8×8 is the paper's lowest input (§3) and the decoder's first size. Downscaling is area
    averaging (a box filter), the plain "quality reduction" of §2.1.
    """
    return [F.interpolate(images, size=(lowest * 2 ** i,) * 2, mode="area") for i in range(inputs)]


# ------------------------------------------------------------------------------- losses

def autoencoder_loss(v, reconstruction):
    """Eq. 1: L(v) = |v − D(v)|, the mean absolute (L1) error per pixel, averaged over the batch.

    In float32 even under bfloat16 autocast: k_t's update (eq. 2) takes the small difference
    γ·L(x) − L(G(z)) of two such losses, which bfloat16's 3 significant digits would drown.
    """
    return (v.float() - reconstruction.float()).abs().mean()


def reconstruction_loss(v_hr, refined):
    """Eq. 3: L_RCN = |v_HR − G(v_LR)|, mean absolute error between the image and its refinement."""
    return (v_hr - refined).abs().mean()


def discriminator_loss(loss_real, loss_fake, k):
    """Eq. 2 / 4: L_D = L(x) − k_t·L(G(z))."""
    return loss_real - k * loss_fake


def generator_loss(loss_fake, loss_rcn, lambda_r):
    """Eq. 4: L_G = (1 − λ_r)·L(G(z)) + λ_r·L_RCN. With λ_r = 0 it is BEGAN's L_G = L(G(z)) (eq. 2)."""
    return (1 - lambda_r) * loss_fake + lambda_r * loss_rcn


def update_k(k, loss_real, loss_fake, gamma, lambda_k):
    """Eq. 2: k_{t+1} = clip(k_t + λ_k·(γ·L(x) − L(G(z))), 0, 1).

    Tensors in, tensor out, so k_t stays on the device and the step needs no host sync.
    """
    return torch.clamp(k + lambda_k * (gamma * loss_real - loss_fake), 0.0, 1.0)


def convergence(loss_real, loss_fake, gamma):
    """BEGAN's convergence measure M = L(x) + |γ·L(x) − L(G(z))|."""
    return loss_real + abs(gamma * loss_real - loss_fake)
