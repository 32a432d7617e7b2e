"""Networks and losses of "Implementation of Realistic Face Generation using GAN".

Three models are compared (§4, Fig. 5(b), Table 1):
- DCGAN (Radford et al. 2015): transposed-convolution generator, strided-convolution
  discriminator, BCE with the non-saturating generator loss;
- WGAN (Arjovsky et al. 2017): the same two networks, the discriminator read as a critic
  (no sigmoid), weight clipping;
- "our model" (§3.1–3.3), which is BEGAN (Berthelot et al. 2017): an autoencoder
  discriminator whose per-pixel L1 reconstruction error is the "loss" of an image, and
  a generator with the decoder's architecture.

Every network is sized for square images of 32, 64, 128 … pixels (a power of two ≥ 16).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _doublings(size, lowest):
    """How many ×2 steps lead from ``lowest`` to ``size`` (4 → 64: 4)."""
    if size < 2 * lowest or math.log2(size / lowest) != int(math.log2(size / lowest)):
        raise ValueError(f"the image size must be {lowest} times a power of two (at least {2 * lowest}, "
                         f"e.g. {8 * lowest}), not {size}")
    return int(math.log2(size / lowest))


# ----------------------------------------------------------------------- DCGAN and WGAN

class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. §3, Fig. 1): z → 4×4 → … → size×size, no fully connected layer.

    For size 64, z_dim = 100, width w (ngf):
        z (z_dim×1×1) → ConvT 4×4 → 8w×4×4 → 4w×8×8 → 2w×16×16 → w×32×32 → ConvT → 3×64×64, tanh
    Every hidden transposed convolution (kernel 4, stride 2, padding 1) is followed by
    BatchNorm and ReLU. At size 32 the same stack starts at 4w (one doubling fewer).
    """

    def __init__(self, size=64, z_dim=100, width=64, channels=3):
        super().__init__()
        ups = _doublings(size, 4) - 1                       # hidden doublings before the output layer
        c = width * 2 ** ups
        layers = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(ups):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):                                   # self.net: 3 layers, 3 per doubling, then 2
        x = z.view(len(z), -1, 1, 1)                         # (B, z_dim, 1, 1)
        x = self.net[:3](x)                                  # ConvT 4×4, BN, ReLU: (B, w·size/8, 4, 4)
        for i in range(3, len(self.net) - 2, 3):             # s = 4, 8, …, size/4
            x = self.net[i:i + 3](x)                         # ConvT ↑, BN, ReLU: (B, c, s, s) → (B, c/2, 2s, 2s)
        return self.net[-2:](x)                              # ConvT ↑ tanh: (B, w, size/2, size/2) → (B, 3, size, size)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. §3): strided convolutions, BatchNorm, LeakyReLU(0.2).

    For size 64, width w (ndf):
        3×64×64 → w×32×32 → 2w×16×16 → 4w×8×8 → 8w×4×4 → Conv 4×4 → 1 (a logit)
    No BatchNorm on the first layer (Radford et al. §3). The output is a logit: DCGAN's
    sigmoid lives in ``dcgan_discriminator_loss`` (BCE with logits, the numerically stable
    form of the same formula), and WGAN reads the same number as the critic value f(x).
    """

    def __init__(self, size=64, width=64, channels=3):
        super().__init__()
        downs = _doublings(size, 4) - 1
        layers, c = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], width
        for _ in range(downs):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x):                                   # (B, 3, size, size); self.net: 2 layers, 3 per halving, 1
        x = self.net[:2](x)                                  # Conv ↓, LeakyReLU: (B, w, size/2, size/2)
        for i in range(2, len(self.net) - 1, 3):             # s = size/2, size/4, …, 8
            x = self.net[i:i + 3](x)                         # Conv ↓, BN, LeakyReLU: (B, c, s, s) → (B, 2c, s/2, s/2)
        return self.net[-1](x).view(-1)                      # Conv 4×4: (B, w·size/8, 4, 4) → (B, 1, 1, 1) → (B,)


def dcgan_init(module):
    """Radford et al. §4: weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02), shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def dcgan_discriminator_loss(real_logits, fake_logits):
    """GAN discriminator loss (Goodfellow et al. eq. 1): −mean log D(x) − mean log(1 − D(G(z))), D = σ(logit)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def dcgan_generator_loss(fake_logits):
    """Non-saturating generator loss (Goodfellow et al. §3): −mean log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def wgan_critic_loss(real_scores, fake_scores):
    """WGAN critic loss (Arjovsky et al. Algorithm 1): mean f(G(z)) − mean f(x).

    Minimising it maximises mean f(x) − mean f(G(z)), the critic's estimate of the
    Wasserstein distance (up to the Lipschitz constant kept by ``clip_weights``).
    """
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores):
    """WGAN generator loss (Algorithm 1): −mean f(G(z))."""
    return -fake_scores.mean()


@torch.no_grad()
def clip_weights(critic, c=0.01):
    """WGAN (Algorithm 1, line 7): clip every critic parameter to [−c, c] after each critic step."""
    for p in critic.parameters():
        p.clamp_(-c, c)


# ----------------------------------------------------------------- "our model" (BEGAN)

def _conv(c_in, c_out, stride=1):
    return nn.Conv2d(c_in, c_out, 3, stride, 1)


class Decoder(nn.Module):
    """The decoder of Fig. 1 and the generator of Fig. 2 (§3.1).

    For size 64, width n, noise or code of length h:
        h → FC → n×8×8 → [conv, act, conv, act, ×2 nearest] … → n×64×64 → conv → 3×64×64
    "two convolutions per layer" and nearest-neighbour upsampling (§3.1). In the
    discriminator it is BEGAN's decoder: ELU, linear output. As the generator, §3.1 asks
    for ReLU inside and tanh on the last layer: ``activation=nn.ReLU, tanh=True``.
    """

    def __init__(self, size=64, n=64, h=64, channels=3, lowest=8, activation=nn.ELU, tanh=False):
        super().__init__()
        self.n, self.lowest = n, lowest
        self.fc = nn.Linear(h, n * lowest * lowest)
        self.blocks = nn.ModuleList(nn.Sequential(_conv(n, n), activation(), _conv(n, n), activation())
                                    for _ in range(_doublings(size, lowest) + 1))
        self.out = nn.Sequential(_conv(n, channels), nn.Tanh()) if tanh else _conv(n, channels)

    def forward(self, h):                                   # (B, h): the noise z (G) or D's code
        x = self.fc(h.view(len(h), -1))                      # (B, n·8·8)
        x = x.view(-1, self.n, self.lowest, self.lowest)     # (B, n, 8, 8)
        for i, block in enumerate(self.blocks):
            x = block(x)                                     # conv, act, conv, act: (B, n, s, s), s = 8, 16, …, size
            if i < len(self.blocks) - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")     # ×2 nearest: (B, n, 2s, 2s)
        return self.out(x)                                   # conv (tanh in G): (B, 3, size, size)


class AutoencoderDiscriminator(nn.Module):
    """The discriminator of §3.1 (Fig. 1): an encoder–decoder; D(v) is a reconstruction of v.

    Encoder, for size 64 and width n:
        3×64×64 → conv → n×64×64 → block(n) ↓ block(2n) ↓ block(3n) ↓ block(4n): 4n×8×8 → FC → h
    A block is two 3×3 convolutions with ELU; ↓ is a stride-2 convolution with ELU that keeps
    the width, and the width grows linearly, n, 2n, 3n, … ("the convolution filter is linearly
    expanded at each subsampling", §3.1, as in BEGAN and its reference, carpedm20/BEGAN-tensorflow).
    The decoder is ``Decoder`` with its own weights.
    """

    def __init__(self, size=64, n=64, h=64, channels=3, lowest=8):
        super().__init__()
        levels = _doublings(size, lowest) + 1
        layers, c_prev = [_conv(channels, n), nn.ELU()], n
        for i in range(levels):
            c = n * (i + 1)
            layers += [_conv(c_prev, c), nn.ELU(), _conv(c, c), nn.ELU()]
            if i < levels - 1:                    # ↓ keeps the width; the next block's first conv widens it
                layers += [_conv(c, c, stride=2), nn.ELU()]
            c_prev = c
        self.encoder = nn.Sequential(*layers)
        self.levels = levels
        self.fc = nn.Linear(c_prev * lowest * lowest, h)
        self.decoder = Decoder(size, n, h, channels, lowest)

    def forward(self, x):                                   # (B, 3, size, size); self.encoder: 2 layers, 6 per level
        x = self.encoder[:2](x)                              # conv, ELU: (B, n, size, size)
        for i in range(self.levels):                         # level i: side s = size/2^i, width c = (i + 1)·n
            start = 2 + 6 * i
            x = self.encoder[start:start + 4](x)             # conv, ELU, conv, ELU: (B, c, s, s)
            if i < self.levels - 1:
                x = self.encoder[start + 4:start + 6](x)     # ↓ stride-2 conv, ELU: (B, c, s/2, s/2)
        code = self.fc(x.flatten(1))                         # (B, levels·n·8·8) → (B, h)
        return self.decoder(code)                            # the reconstruction D(x): (B, 3, size, size)


def autoencoder_loss(v, reconstruction):
    """§3.3 (BEGAN eq. 1): L(v) = |v − D(v)|, the mean absolute error per pixel.

    In float32 even under bfloat16 autocast: k_t's update (eq. 2) takes the small difference
    γ·L(x) − L(G(z)) of two such losses, which bfloat16's 3 significant digits would drown.
    """
    return (v.float() - reconstruction.float()).abs().mean()


def began_discriminator_loss(loss_real, loss_fake, k):
    """§3.3 (BEGAN eq. 4): L_D = L(x) − k_t·L(G(z_D))."""
    return loss_real - k * loss_fake


def update_k(k, loss_real, loss_fake, gamma, lambda_k):
    """§3.3 (BEGAN eq. 4): k_{t+1} = clip(k_t + λ_k·(γ·L(x) − L(G(z_G))), 0, 1).

    The paper prints "k_{t+1} = γ[L(x) × L_G] + k_t"; we read it as BEGAN's update. Tensors
    in and out, so k_t stays on the device and the step needs no host sync.
    """
    return torch.clamp(k + lambda_k * (gamma * loss_real - loss_fake), 0.0, 1.0)


def convergence(loss_real, loss_fake, gamma):
    """BEGAN §3.4.1: the convergence measure M = L(x) + |γ·L(x) − L(G(z_G))|."""
    return loss_real + abs(gamma * loss_real - loss_fake)


# ------------------------------------------------------------------------- construction

MODELS = ("dcgan", "wgan", "began")


def xavier_init(module):
    """The BEGAN reference's initialisation (TF-slim's defaults): Xavier-uniform weights, zero biases.

    PyTorch's default (Kaiming-uniform with a = √5, non-zero biases) left G's output almost
    independent of z at step 0 (std over z 0.00044, against 0.0148 with this init).
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def build(model="began", size=64, z_dim=100, width=64, h=64):
    """The run's networks, ``{"G": generator, "D": discriminator}``, from the keyword arguments
    that every checkpoint stores as ``model_args`` (so eval.py and --resume rebuild them).

    ``model``: "dcgan" or "wgan" (DCGAN's networks with the DCGAN init; WGAN reads D as a
    critic) or "began" ("our model": the ReLU/tanh decoder as G, the autoencoder as D, whose
    bottleneck has ``h`` entries, both with the BEGAN reference's Xavier init). Impossible
    sizes raise ``ValueError`` with the reason.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    if model == "began":
        return {"G": Decoder(size, width, z_dim, activation=nn.ReLU, tanh=True).apply(xavier_init),
                "D": AutoencoderDiscriminator(size, width, h).apply(xavier_init)}
    G, D = DCGANGenerator(size, z_dim, width), DCGANDiscriminator(size, width)
    return {"G": G.apply(dcgan_init), "D": D.apply(dcgan_init)}
