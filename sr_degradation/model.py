"""Networks and losses of "To learn image super-resolution, use a GAN to learn how to do image
degradation first" (Bulat, Yang & Tzimiropoulos, ECCV 2018), as retold in
"Images Synthesis and Image Degradations Using GANs" (§VII–X).

- ``HighToLow`` (Fig. 3a): HR 64×64 + a noise vector → a realistic degraded LR 16×16.
- ``LowToHigh`` (Fig. 3b): LR 16×16 → HR 64×64.
- ``Discriminator`` (Fig. 4): a residual, spectral-normalised critic, one for 16×16 and one for 64×64.
- ``build(**model_args)``: the networks of one training stage, ``{name: module}``.

The text leaves the layers open; they follow the authors' released code
(jingyang2017/Face-and-Image-super-resolution: ``H2L.py`` for High-to-Low, ``model.py``
``GEN_DEEP`` for Low-to-High, ``Discriminator.py`` for the critics), with the widths and
block counts as constructor arguments so the quick preset can run on a CPU.

Shapes in the ``forward`` comments: B images, S the HR side (64), s = S/4 the LR side (16),
w a network's width (channels), z_dim the noise size.
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

    def forward(self, x):                                  # x: (B, c_in, H, W)
        return self.skip(x) + self.body(x)                 # shortcut + two BN-ReLU-conv 3×3: (B, c_out, H, W)


def bicubic_up(low, factor=4):
    """Bicubic upsampling by 4 (16×16 → 64×64): the interpolation baseline of Table 2, and the base
    that a residual Low-to-High adds to."""
    return F.interpolate(low, scale_factor=factor, mode="bicubic", align_corners=False)


def _is_power_of_two(n):
    return n >= 1 and n & (n - 1) == 0


def _check_blocks(name, blocks, count, least=0):
    if len(blocks) != count or any(b < least for b in blocks):
        raise ValueError(f"{name} needs {count} block counts of at least {least}, not {list(blocks)}")


class HighToLow(nn.Module):
    """High-to-Low (Fig. 3a): (HR 3×64×64, noise z ∈ R^z_dim) → degraded LR 3×16×16.

    For width w and blocks (b64, b32, b16), as in the reference's ``Gen_h2l``:
        z → Linear → 1×64×64, concatenated to the image:        4×64×64
        conv 3×3                                               → w×64×64
        b64 × ResBlock, BN-ReLU, conv 3×3 stride 2             → w×32×32
        b32 × ResBlock, BN-ReLU, conv 3×3 stride 2             → w×16×16
        b16 × ResBlock, BN-ReLU, conv 3×3, tanh                → 3×16×16
    The noise is the only source of randomness: one HR face gives many degradations (§X).
    """

    def __init__(self, width=64, blocks=(12, 3, 2), z_dim=64, size=64):
        super().__init__()
        if size < 4 or size % 4:
            raise ValueError(f"High-to-Low halves the HR image twice, so its size must be a multiple of 4, not {size}")
        if width < 1 or z_dim < 1:
            raise ValueError(f"High-to-Low needs a width and a noise size of at least 1, not {width} and {z_dim}")
        _check_blocks("High-to-Low", blocks, 3)
        self.z_dim, self.size = z_dim, size
        self.noise = nn.Linear(z_dim, size * size)                          # z → one extra input channel
        layers, self.stages = [nn.Conv2d(3 + 1, width, 3, 1, 1)], [slice(0, 1)]
        for i, n in enumerate(blocks):
            layers += [ResBlock(width, width) for _ in range(n)] + [nn.BatchNorm2d(width), nn.ReLU()]
            last = i == len(blocks) - 1
            layers.append(nn.Conv2d(width, 3 if last else width, 3, 1 if last else 2, 1))   # ↓2, or to RGB
            self.stages.append(slice(self.stages[-1].stop, len(layers) + (1 if last else 0)))   # and the tanh
        self.body = nn.Sequential(*layers, nn.Tanh())            # one Sequential, run in parts (forward)

    def forward(self, high, z):                             # high: (B, 3, S, S), z: (B, z_dim)
        noise = self.noise(z).view(-1, 1, self.size, self.size)     # Linear, as an image: (B, 1, S, S)
        x = torch.cat([high, noise], 1)                     # (B, 4, S, S)
        stem, at_full, at_half, at_quarter = (self.body[part] for part in self.stages)   # self.body in four parts
        x = stem(x)                                         # conv 3×3: (B, w, S, S)
        x = at_full(x)                                      # b64 × ResBlock, BN-ReLU, conv ↓2: (B, w, S/2, S/2)
        x = at_half(x)                                      # b32 × ResBlock, BN-ReLU, conv ↓2: (B, w, s, s)
        return at_quarter(x)                                # b16 × ResBlock, BN-ReLU, conv 3×3, tanh: (B, 3, s, s)


class LowToHigh(nn.Module):
    """Low-to-High (Fig. 3b): LR 3×16×16 → SR 3×64×64, after the reference's ``GEN_DEEP``.

    For width w and blocks (b16, b32):
        conv 3×3                                                 → w×16×16
        x + b16 × ResBlock(w) (a long skip)                      → w×16×16
        bilinear ×2, BN-ReLU, conv 1×1                           → w×32×32
        ResBlock(w → w/2) + (b32 − 1) × ResBlock(w/2), plus 1×1 skip of the input → w/2×32×32
        bilinear ×2, BN-ReLU, conv 1×1                           → w/2×64×64
        conv 3×3, ReLU, conv 1×1, ReLU (3w/8), conv 1×1, tanh     → 3×64×64

    ``residual=True`` (our deviation, the quick preset's): the head's output is added to the
    bicubic upsampling of the input, bicubic_up(LR) + head(…), with no tanh and the last 1×1
    convolution starting at zero, so the network starts as bicubic upsampling and learns only
    what interpolation misses (as VDSR, Kim et al., CVPR 2016, and most SR networks since).
    """

    def __init__(self, width=256, blocks=(12, 3), residual=False):
        super().__init__()
        if width < 3:
            raise ValueError(f"Low-to-High's width must be at least 3 (its 32-px blocks have width/2 channels, "
                             f"its head 3·width/8), not {width}")
        _check_blocks("Low-to-High", blocks, 2)
        if blocks[1] < 1:
            raise ValueError(f"Low-to-High needs at least one 32-px block (the one going from w to w/2 channels), "
                             f"not {blocks[1]}")
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
        self.residual = residual
        to_rgb = nn.Conv2d(c, 3, 1)
        if residual:                                                   # start as bicubic upsampling
            nn.init.zeros_(to_rgb.weight)
            nn.init.zeros_(to_rgb.bias)
        self.head = nn.Sequential(nn.Conv2d(h, c, 3, 1, 1, bias=False), nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(),
                                  to_rgb, *([] if residual else [nn.Tanh()]))

    def forward(self, low):                                 # low: (B, 3, s, s)
        x = self.stem(low)                                  # conv 3×3: (B, w, s, s)
        x = x + self.blocks16(x)                            # b16 × ResBlock(w), a long skip: (B, w, s, s)
        x = self.up32(x)                                    # bilinear ×2, BN-ReLU, conv 1×1: (B, w, 2s, 2s)
        x = self.skip32(x) + self.blocks32(x)               # 1×1 skip + ResBlock(w → w/2) + (b32 − 1) ×
        #                                                     ResBlock(w/2): (B, w/2, 2s, 2s)
        x = self.up64(x)                                    # bilinear ×2, BN-ReLU, conv 1×1: (B, w/2, S, S)
        if self.residual:                                   # bicubic ×4 of the input + the head's correction
            return bicubic_up(low) + self.head(x)           # (conv 3×3, ReLU, 1×1, ReLU, 1×1): (B, 3, S, S)
        return self.head(x)                                 # conv 3×3, ReLU, 1×1, ReLU, 1×1, tanh: (B, 3, S, S)


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

    def forward(self, x):                                  # x: (B, c_in, H, W)
        return self.body(x) + self.skip(x)                 # (B, c_out, H/2, W/2) if down, else (B, c_out, H, W)


class Discriminator(nn.Module):
    """Residual spectral-norm critic (Fig. 4) for ``size``×``size`` images → one score each.

    Stride-2 blocks down to 4×4, then ``extra`` blocks at 4×4, ReLU, global average pool,
    SN-linear. For width w: 64×64 → 32 → 16 → 8 → 4 (+1 block), as the reference's
    ``Discriminator``; 16×16 → 8 → 4 (+3 blocks), as ``Discriminator_16``. No sigmoid: the
    score goes into the hinge loss.
    """

    def __init__(self, size=64, width=128, extra=None):
        super().__init__()
        if size < 4 or not _is_power_of_two(size):
            raise ValueError(f"the critics halve their input down to 4×4, so the image size must be 4 times a power "
                             f"of two (the HR size 16, 32, 64, 128 …), not {size}")
        if width < 1:
            raise ValueError(f"a critic needs a width of at least 1, not {width}")
        downs = (size // 4).bit_length() - 1                               # 64 → 4, 16 → 2
        extra = (1 if size > 16 else 3) if extra is None else extra
        blocks = [DiscBlock(3 if i == 0 else width, width, down=i < downs, first=i == 0) for i in range(downs + extra)]
        self.body = nn.Sequential(*blocks, nn.ReLU())
        self.fc = spectral_norm(nn.Linear(width, 1))
        self.downs = downs

    def forward(self, x):                                  # x: (B, 3, N, N), N = size (S for D_high, s for D_low)
        x = self.body[:self.downs](x)                      # DiscBlocks ↓2 each: (B, w, N/2, N/2) … (B, w, 4, 4)
        x = self.body[self.downs:](x)                      # ``extra`` DiscBlocks at 4×4, ReLU: (B, w, 4, 4)
        return self.fc(x.mean((2, 3))).squeeze(1)          # global average pool (B, w), SN-linear (B, 1): (B,)


# ------------------------------------------------------------------------------- one stage's networks

NETWORKS = ("H2L", "D_low", "L2H", "D_high")
# The keyword arguments of build() that each network needs (besides ``size``, the HR side).
ARGUMENTS = {"H2L": ("z_dim", "h2l_width", "h2l_blocks"), "D_low": ("d_low_width",),
             "L2H": ("l2h_width", "l2h_blocks", "l2h_residual"), "D_high": ("d_high_width",)}


def build(networks=NETWORKS, size=64, z_dim=64, h2l_width=64, h2l_blocks=(12, 3, 2), d_low_width=128,
          l2h_width=256, l2h_blocks=(12, 3), l2h_residual=False, d_high_width=128):
    """The networks named in ``networks``, as ``{name: module}``: every checkpoint stores these
    keyword arguments as ``model_args`` (each stage only those of its own networks, see
    ``ARGUMENTS``), so eval.py, --resume and the next stage rebuild them.

    - ``H2L``: High-to-Low, HR ``size``×``size`` + noise z ∈ R^z_dim → LR (size/4)²;
    - ``D_low``: its critic, on (size/4)² LR faces;
    - ``L2H``: Low-to-High, LR (size/4)² → HR ``size``² (``l2h_residual``: over bicubic upsampling);
    - ``D_high``: its critic, on HR faces.
    Impossible sizes or widths raise ``ValueError`` with the reason.
    """
    unknown = [n for n in networks if n not in NETWORKS]
    if unknown:
        raise ValueError(f"no network named {unknown[0]!r}: choose among {', '.join(NETWORKS)}")
    if size < 16 or not _is_power_of_two(size):
        raise ValueError(f"the HR size must be a power of two of at least 16 (the LR image is size/4 and the "
                         f"critics halve it down to 4×4): 16, 32, 64, 128 …, not {size}")
    make = {"H2L": lambda: HighToLow(h2l_width, tuple(h2l_blocks), z_dim, size),
            "D_low": lambda: Discriminator(size // 4, d_low_width),
            "L2H": lambda: LowToHigh(l2h_width, tuple(l2h_blocks), l2h_residual),
            "D_high": lambda: Discriminator(size, d_high_width)}
    return {name: make[name]() for name in networks}


# ------------------------------------------------------------------------------- losses
# §IX: each generator learns with eq. 1, l = α·pixel + β·GAN; the GAN loss is the hinge loss of the
# authors' code (SNGAN's), for the critics and the generators alike.

def pixel_loss(output, target):
    """The "L2 pixel" loss of §IX: pixel = mean over pixels of (output − target)².

    High-to-Low compares its 16×16 output with ``downsample_target(high)``; Low-to-High
    compares its 64×64 output with the HR image.
    """
    return (output - target).pow(2).mean()


def downsample_target(high, factor=4):
    """High-to-Low's pixel target: the HR image average-pooled by 4 (64×64 → 16×16)."""
    return F.avg_pool2d(high, factor)


def hinge_d_loss(real_scores, fake_scores):
    """Hinge critic loss: L_D = E[max(0, 1 − D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores):
    """Hinge generator loss: GAN = −E[D(fake)]."""
    return -fake_scores.mean()


def generator_loss(pixel, gan, alpha=1.0, beta=0.05):
    """Eq. 1: l = α·pixel + β·GAN, with α = 1 and β = 0.05 (§X).

    ``gan`` None (Low-to-High's ``--pixel-warmup`` steps, ours: no critic yet): l = α·pixel.
    """
    return alpha * pixel if gan is None else alpha * pixel + beta * gan


def compute_d_loss(**critics):
    """One critic step's losses (§X): the hinge loss of each critic given as ``name=(D, real images, fakes)``,
    the fakes made without gradients:

        loss_D_low  = E[max(0, 1 − D_low(real LR))] + E[max(0, 1 + D_low(High-to-Low(HR, z)))]
        loss_D_high = E[max(0, 1 − D_high(HR))]     + E[max(0, 1 + D_high(Low-to-High(LR)))]
        loss_D      = the sum over the critics given (one backward: each critic's gradient is its own term's)

    Returns {"loss_D_low" and / or "loss_D_high", "loss_D"}: tensors.
    """
    terms = {f"loss_{name}": hinge_d_loss(D(real), D(fake)) for name, (D, real, fake) in critics.items()}
    terms["loss_D"] = sum(terms.values())
    return terms


def compute_g_loss(high, H2L=None, D_low=None, z=None, L2H=None, D_high=None, low=None, alpha=1.0, beta=0.05):
    """One generator step's losses: eq. 1, l = α·pixel + β·GAN, for each generator given (§IX, §X).

    High-to-Low (stages h2l and finetune), LR = H2L(HR, z):
        pixel_h2l = mean (LR − avgpool₄(HR))²          gan_h2l = −E[D_low(LR)]
    Low-to-High (stages l2h, bicubic and finetune), SR = L2H(LR), where LR is that High-to-Low's output
    when it is given (the fine-tune: end to end), else ``low`` (a frozen High-to-Low's or bicubic(HR)):
        pixel_l2h = mean (SR − HR)²                     gan_l2h = −E[D_high(SR)]   (no D_high: None, l = α·pixel)
    loss_G = l_h2l + l_l2h, over the generators given. The critics are the caller's to freeze.

    Returns {"pixel_h2l", "gan_h2l" (with H2L), "pixel_l2h", "gan_l2h" (with L2H), "loss_G"}.
    """
    terms = {}
    if H2L is not None:
        low = H2L(high, z)                                                      # (B, 3, s, s)
        # pixel (§IX): against the HR face average-pooled to the LR size
        terms["pixel_h2l"] = pixel_loss(low, downsample_target(high))
        # GAN (hinge): D_low should take the degraded face for a real LR face
        terms["gan_h2l"] = hinge_g_loss(D_low(low))
    if L2H is not None:
        fake_high = L2H(low)                                                    # (B, 3, S, S)
        # pixel (§IX): against the HR face
        terms["pixel_l2h"] = pixel_loss(fake_high, high)
        # GAN (hinge): D_high should take the super-resolved face for a real HR face
        terms["gan_l2h"] = hinge_g_loss(D_high(fake_high)) if D_high is not None else None
    # eq. 1 for each generator given, then their sum
    eq1 = [generator_loss(terms[f"pixel_{g}"], terms[f"gan_{g}"], alpha, beta) for g in ("h2l", "l2h")
           if f"pixel_{g}" in terms]
    terms["loss_G"] = eq1[0] + eq1[1] if len(eq1) == 2 else eq1[0]
    return terms
