"""Networks and losses of "To learn image super-resolution, use a GAN to learn how to do image
degradation first" (Bulat, Yang & Tzimiropoulos, ECCV 2018), as retold in
"Images Synthesis and Image Degradations Using GANs" (§VII–X).

- ``HighToLow`` (Fig. 3a): HR 64×64 + a noise vector → a realistic degraded LR 16×16.
- ``LowToHigh`` (Fig. 3b): LR 16×16 → HR 64×64.
- ``Discriminator`` (Fig. 4): a residual, spectral-normalised critic, one for 16×16 and one for 64×64.

The text leaves the layers open; they follow the authors' released code
(jingyang2017/Face-and-Image-super-resolution: ``H2L.py`` for High-to-Low, ``model.py``
``GEN_DEEP`` for Low-to-High, ``Discriminator.py`` for the critics), with the widths and
block counts as constructor arguments so the quick preset can run on a CPU.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm


class ResBlock(nn.Module):
    """Pre-activation residual block of the generators: x + conv(ReLU(BN(conv(ReLU(BN(x)))))).

    ``c_in != c_out`` adds a 1×1 convolution on the shortcut (the reference's ``skip``).
    """

    def __init__(self, c_in, c_out):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c_out), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False))
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        return self.skip(x) + self.body(x)


class HighToLow(nn.Module):
    """High-to-Low (Fig. 3a): (HR 3×64×64, noise z ∈ R^noise_dim) → degraded LR 3×16×16.

    For width w and blocks (b64, b32, b16), as in the reference's ``Gen_h2l``:
        z → Linear → 1×64×64, concatenated to the image:        4×64×64
        conv 3×3                                               → w×64×64
        b64 × ResBlock, BN-ReLU, conv 3×3 stride 2             → w×32×32
        b32 × ResBlock, BN-ReLU, conv 3×3 stride 2             → w×16×16
        b16 × ResBlock, BN-ReLU, conv 3×3, tanh                → 3×16×16
    The noise is the only source of randomness: one HR face gives many degradations (§X).
    """

    def __init__(self, width=64, blocks=(12, 3, 2), noise_dim=64, size=64):
        super().__init__()
        self.noise_dim, self.size = noise_dim, size
        self.noise = nn.Linear(noise_dim, size * size)                      # z → one extra input channel
        layers = [nn.Conv2d(3 + 1, width, 3, 1, 1)]
        for i, n in enumerate(blocks):
            layers += [ResBlock(width, width) for _ in range(n)] + [nn.BatchNorm2d(width), nn.ReLU()]
            last = i == len(blocks) - 1
            layers.append(nn.Conv2d(width, 3 if last else width, 3, 1 if last else 2, 1))   # ↓2, or to RGB
        self.body = nn.Sequential(*layers, nn.Tanh())

    def forward(self, hr, z):
        noise = self.noise(z).view(-1, 1, self.size, self.size)
        return self.body(torch.cat([hr, noise], 1))


class LowToHigh(nn.Module):
    """Low-to-High (Fig. 3b): LR 3×16×16 → SR 3×64×64, after the reference's ``GEN_DEEP``.

    For width w and blocks (b16, b32):
        conv 3×3                                                 → w×16×16
        x + b16 × ResBlock(w) (a long skip)                      → w×16×16
        bilinear ×2, BN-ReLU, conv 1×1                           → w×32×32
        ResBlock(w → w/2) + (b32 − 1) × ResBlock(w/2), plus 1×1 skip of the input → w/2×32×32
        bilinear ×2, BN-ReLU, conv 1×1                           → w/2×64×64
        conv 3×3, ReLU, conv 1×1, ReLU (3w/8), conv 1×1, tanh     → 3×64×64
    """

    def __init__(self, width=256, blocks=(12, 3)):
        super().__init__()
        w, h = width, width // 2
        self.stem = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.blocks16 = nn.Sequential(*[ResBlock(w, w) for _ in range(blocks[0])])
        self.up32 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                  nn.BatchNorm2d(w), nn.ReLU(), nn.Conv2d(w, w, 1))
        self.blocks32 = nn.Sequential(ResBlock(w, h), *[ResBlock(h, h) for _ in range(blocks[1] - 1)])
        self.skip32 = nn.Conv2d(w, h, 1)
        self.up64 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                  nn.BatchNorm2d(h), nn.ReLU(), nn.Conv2d(h, h, 1))
        c = 3 * width // 8
        self.head = nn.Sequential(nn.Conv2d(h, c, 3, 1, 1, bias=False), nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(),
                                  nn.Conv2d(c, 3, 1), nn.Tanh())

    def forward(self, lr):
        x = self.stem(lr)
        x = self.up32(x + self.blocks16(x))
        x = self.up64(self.skip32(x) + self.blocks32(x))
        return self.head(x)


class DiscBlock(nn.Module):
    """Residual block of the SNGAN-style critic (reference ``ResBlockDiscriminator``):

        [ReLU] → SN-conv 3×3 → ReLU → SN-conv 3×3 → [avg-pool 2]   +   shortcut [SN-conv 1×1, avg-pool 2]
    The first block skips the leading ReLU (no activation on raw pixels).
    """

    def __init__(self, c_in, c_out, down, first=False):
        super().__init__()
        layers = [] if first else [nn.ReLU()]
        layers += [spectral_norm(nn.Conv2d(c_in, c_out, 3, 1, 1)), nn.ReLU(),
                   spectral_norm(nn.Conv2d(c_out, c_out, 3, 1, 1))]
        self.body = nn.Sequential(*layers, *([nn.AvgPool2d(2)] if down else []))
        self.skip = (nn.Sequential(spectral_norm(nn.Conv2d(c_in, c_out, 1)), *([nn.AvgPool2d(2)] if down else []))
                     if down or c_in != c_out else nn.Identity())

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Discriminator(nn.Module):
    """Residual spectral-norm critic (Fig. 4) for ``size``×``size`` images → one score each.

    Stride-2 blocks down to 4×4, then ``extra`` blocks at 4×4, ReLU, global average pool,
    SN-linear. For width w: 64×64 → 32 → 16 → 8 → 4 (+1 block), as the reference's
    ``Discriminator``; 16×16 → 8 → 4 (+3 blocks), as ``Discriminator_16``. No sigmoid: the
    score goes into the hinge loss.
    """

    def __init__(self, size=64, width=128, extra=None):
        super().__init__()
        downs = (size // 4).bit_length() - 1                               # 64 → 4, 16 → 2
        extra = (1 if size > 16 else 3) if extra is None else extra
        blocks = [DiscBlock(3 if i == 0 else width, width, down=i < downs, first=i == 0) for i in range(downs + extra)]
        self.body = nn.Sequential(*blocks, nn.ReLU())
        self.fc = spectral_norm(nn.Linear(width, 1))

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3))).squeeze(1)


# ------------------------------------------------------------------------------- losses

def pixel_loss(output, target):
    """The "L2 pixel" loss of §IX: mean over pixels of (output − target)².

    High-to-Low compares its 16×16 output with ``downsample_target(hr)``; Low-to-High
    compares its 64×64 output with the HR image.
    """
    return (output - target).pow(2).mean()


def downsample_target(hr, factor=4):
    """High-to-Low's pixel target: the HR image average-pooled by 4 (64×64 → 16×16)."""
    return F.avg_pool2d(hr, factor)


def hinge_d_loss(real_scores, fake_scores):
    """Hinge critic loss: L_D = E[max(0, 1 − D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores):
    """Hinge generator loss: L_GAN = −E[D(fake)]."""
    return -fake_scores.mean()


def generator_loss(pixel, gan, alpha=1.0, beta=0.05):
    """Eq. 1: l = α·pixel + β·GAN, with α = 1 and β = 0.05 (§X)."""
    return alpha * pixel + beta * gan
