"""Networks and losses of the thesis's multimodal conditional GAN (chapter 3).

Networks (§3.4), all built from StarGAN v2's small blocks (ResBlk, AdaIN, AdainResBlk)
and SPADE's layer, as the thesis says it was:

- ``PatchDiscriminator``   Table 3.3: source ⊕ image (4 channels) → 11×11 patch scores
- ``EncoderDecoder``       Table 3.4: the "ED" generator G(y, z)
- ``MultinormDecoder``     Table 3.5: the "Mult" generator (SPADE for y, AdaIN for z)
- ``LatentEncoder``        Table 3.6: E(x) = ẑ
- ``MappingNetwork``       Table 3.7: L(z) = s
- ``build``                every network of a run, from the ``model_args`` its checkpoint stores
- ``VGGDistance``, ``FaceIdDistance``, ``image_distances``   the d_I of eqs. 3.2–3.4 (§3.2.4)

Widths follow the tables at 128×128 and scale with ``size`` (the resolution where each
table has C channels keeps C channels); ``base`` and ``max_channels`` shrink them for
the CPU preset. Every ``forward`` says its shapes, with B the batch, size the image side, z_dim
the latent's (and the style's) size and ch = ``widths(...)`` a network's channels per resolution.
Losses (Table 3.2, eq. 3.5) are functions whose docstrings give the formula;
``tests/test_nir_cgan.py`` checks each against a hand-computed number.
"""
import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from common.features import torchvision_weights
from common.synthnet import load_synthnet


def widths(size, base, max_channels, smallest):
    """Channels at each resolution size, size/2, …, smallest: min(base·size/r, max_channels).

    The networks halve (or double) the resolution down to (or up from) ``smallest``, so
    ``size`` must be a power of two, at least 2·smallest; anything else is a ``ValueError``.
    """
    if size < 2 * smallest or size & (size - 1):
        raise ValueError(f"the image size must be a power of two from {2 * smallest} up "
                         f"(e.g. 32, 64, 128), not {size}")
    if base < 1 or max_channels < 1:
        raise ValueError(f"channel widths must be at least 1, not base {base}, max {max_channels}")
    out, r = [], size
    while r >= smallest:
        out.append(min(base * size // r, max_channels))
        r //= 2
    return out


XAVIER_GAIN = nn.init.calculate_gain("leaky_relu", 0.2)   # ≈ 1.387: PyTorch's recommended gain for LReLU(0.2)


def init_xavier(module):
    """Table 3.8: Xavier (Glorot) uniform weights with the LeakyReLU gain, zero biases, for every conv
    and linear layer. With gain 1, E (no normalisation layers) starts with outputs ~0.003 and barely learns."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, XAVIER_GAIN)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


# ------------------------------------------------------------------------------ blocks

class ResBlk(nn.Module):
    """StarGAN v2's pre-activation ResBlock, optionally halving the resolution (AvgPool).

    x → [norm → LReLU(0.2) → conv3×3 → pool → norm → LReLU → conv3×3] + [conv1×1 → pool](x), / √2
    ``norm``: "batch" in the encoder–decoder (Table 3.4), "none" in E (Table 3.6).
    """

    def __init__(self, c_in, c_out, norm="batch", downsample=True):
        super().__init__()
        make_norm = {"batch": nn.BatchNorm2d, "none": lambda c: nn.Identity()}[norm]
        self.norm1, self.norm2 = make_norm(c_in), make_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        self.downsample = downsample

    def pool(self, t):
        """(B, C, r, r) → (B, C, r/2, r/2) by 2×2 average pooling; unchanged without ``downsample``."""
        return F.avg_pool2d(t, 2) if self.downsample else t

    def forward(self, x):                                               # x: (B, c_in, r, r)
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))                # (B, c_in, r, r)
        h = self.conv2(F.leaky_relu(self.norm2(self.pool(h)), 0.2))     # (B, c_out, r/2, r/2) (r without downsample)
        return (h + self.pool(self.skip(x))) / math.sqrt(2)             # + skip (B, c_out, r/2, r/2)


class AdaIN(nn.Module):
    """Eq. 2.8: x' = γ(z)·(x − μ_nc)/σ_nc + β(z), with γ = 1 + fc(z)_γ as in StarGAN v2."""

    def __init__(self, z_dim, channels):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(z_dim, 2 * channels)

    def forward(self, x, z):                                            # x: (B, C, r, r), z: (B, z_dim)
        gamma, beta = self.fc(z)[:, :, None, None].chunk(2, dim=1)      # (B, 2C, 1, 1) → γ, β: (B, C, 1, 1)
        return (1 + gamma) * self.norm(x) + beta                        # (B, C, r, r)


class SPADE(nn.Module):
    """Eq. 2.9: x' = γ_hw(y)·(x − μ_c)/σ_c + β_hw(y): batch norm without parameters, then a
    spatial scale and bias computed from the source y (resized to x) by a small conv net (SPADE)."""

    def __init__(self, channels, source_channels, hidden):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(source_channels, hidden, 3, 1, 1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, 1, 1)
        self.beta = nn.Conv2d(hidden, channels, 3, 1, 1)

    def forward(self, x, y):                                            # x: (B, C, r, r), y: (B, 3, size, size)
        h = self.shared(F.interpolate(y, size=x.shape[2:], mode="nearest"))     # y at r × r → (B, hidden, r, r)
        return (1 + self.gamma(h)) * self.norm(x) + self.beta(h)        # γ_hw, β_hw: (B, C, r, r) → (B, C, r, r)


class UpResBlk(nn.Module):
    """StarGAN v2's AdainResBlk (``norm="adain"``) or the thesis's Multinorm ResBlock
    (``norm="multinorm"``: SPADE for the source, then AdaIN for the latent, Fig. 3.12),
    doubling the resolution by bilinear interpolation (Tables 3.4–3.5):

    x → [norm → LReLU → up → conv3×3 → norm → LReLU → conv3×3] + [up → conv1×1](x), / √2
    """

    def __init__(self, c_in, c_out, z_dim, norm="adain", source_channels=3, spade_hidden=128):
        super().__init__()
        self.spade = norm == "multinorm"
        if self.spade:
            self.spade1 = SPADE(c_in, source_channels, spade_hidden)
            self.spade2 = SPADE(c_out, source_channels, spade_hidden)
        self.adain1, self.adain2 = AdaIN(z_dim, c_in), AdaIN(z_dim, c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()

    def norm(self, k, x, z, y):
        """The k-th normalisation (1 or 2): [SPADE(·, y) →] AdaIN(·, z); x's shape (B, C, r, r) is kept."""
        if self.spade:
            x = getattr(self, f"spade{k}")(x, y)
        return getattr(self, f"adain{k}")(x, z)

    def forward(self, x, z, y=None):                        # x: (B, c_in, r, r), z: (B, z_dim), y: (B, 3, size, size)
        h = upsample(F.leaky_relu(self.norm(1, x, z, y), 0.2))        # (B, c_in, 2r, 2r)
        h = self.conv1(h)                                               # (B, c_out, 2r, 2r)
        h = self.conv2(F.leaky_relu(self.norm(2, h, z, y), 0.2))        # (B, c_out, 2r, 2r)
        return (h + self.skip(upsample(x))) / math.sqrt(2)              # + skip (B, c_out, 2r, 2r)


def upsample(t):
    """(B, C, r, r) → (B, C, 2r, 2r): bilinear, as StarGAN v2's AdainResBlk and Tables 3.4–3.5."""
    return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------ networks

class EncoderDecoder(nn.Module):
    """Table 3.4 (at size 128, base 16, max 256):

    y 3×128² → conv, ReLU 16×128² → ResBlk↓ 32×64² → 64×32² → 128×16² → 256×8² → 256×4²
    → AdainResBlk↑(z) 256×8² → 128×16² → 64×32² → 32×64² → 16×128² → LReLU → conv, tanh 1×128²
    """

    def __init__(self, size=128, base=16, max_channels=256, z_dim=512, source_channels=3, out_channels=1):
        super().__init__()
        ch = widths(size, base, max_channels, 4)                     # [16, 32, 64, 128, 256, 256] at 128
        self.stem = nn.Sequential(nn.Conv2d(source_channels, ch[0], 3, 1, 1), nn.ReLU())
        self.down = nn.ModuleList(ResBlk(a, b, "batch") for a, b in zip(ch, ch[1:]))
        rev = ch[::-1]                                                # decoder outputs 256, 128, 64, 32, 16
        self.up = nn.ModuleList(UpResBlk(a, b, z_dim) for a, b in zip(rev, rev[1:]))
        self.out = nn.Conv2d(ch[0], out_channels, 1)

    def forward(self, y, z):                                    # y: (B, 3, size, size), z (or s): (B, z_dim)
        h = self.stem(y)                                        # (B, ch[0], size, size)
        for block in self.down:                                 # ResBlk↓: (B, ch[1], size/2, size/2), …
            h = block(h)                                        # … (B, ch[-1], 4, 4)
        for block in self.up:                                   # AdainResBlk↑(z): (B, ch[-2], 8, 8), …
            h = block(h, z)                                     # … (B, ch[0], size, size)
        return torch.tanh(self.out(F.leaky_relu(h, 0.2)))       # (B, 1, size, size) in [−1, 1]


class MultinormDecoder(nn.Module):
    """Table 3.5 (at size 128, base 16, max 256):

    z 512 → Linear, ReLU 4096 → reshape 256×4² → MultinormResBlk↑(y, z) 256×8² → 128×16²
    → 64×32² → 32×64² → 16×128² → LReLU → conv, tanh 1×128²
    """

    def __init__(self, size=128, base=16, max_channels=256, z_dim=512, source_channels=3, out_channels=1,
                 spade_hidden=128):
        super().__init__()
        ch = widths(size, base, max_channels, 4)[::-1]                # [256, 256, 128, 64, 32, 16] at 128
        self.fc = nn.Linear(z_dim, ch[0] * 16)
        self.up = nn.ModuleList(UpResBlk(a, b, z_dim, "multinorm", source_channels, spade_hidden)
                                for a, b in zip(ch, ch[1:]))
        self.out = nn.Conv2d(ch[-1], out_channels, 1)

    def forward(self, y, z):                                    # y: (B, 3, size, size), z (or s): (B, z_dim)
        h = F.relu(self.fc(z)).view(len(z), -1, 4, 4)          # (B, 16·ch[0]) → (B, ch[0], 4, 4)
        for block in self.up:                                   # MultinormResBlk↑(y, z): (B, ch[1], 8, 8), …
            h = block(h, z, y)                                  # … (B, ch[-1], size, size)
        return torch.tanh(self.out(F.leaky_relu(h, 0.2)))       # (B, 1, size, size) in [−1, 1]


class PatchDiscriminator(nn.Module):
    """Table 3.3, SPADE's NLayerDiscriminator with five layers (kernel 4, padding 2):

    y ⊕ x 4×128² → conv s2, LReLU 32×65² → conv s2, IN, LReLU 64×33² → 128×17² → 256×9²
    → conv s1, IN, LReLU 512×10² → conv s1 1×11²  (one score per 12×12-ish patch)

    Layers 2–5 also carry spectral normalisation: SPADE's default ``norm_D=spectralinstance``,
    which the table does not list. Followed by instance norm without affine parameters it cannot
    change D's function (instance norm removes the 1/σ scale); we keep it as the reference's layer.

    ``forward`` returns every layer's output; the last is the patch score map and the
    others are the features of the perceptual loss (eq. 3.4, "layers 1–5").
    """

    def __init__(self, in_channels=4, base=32, layers=5):
        super().__init__()
        blocks, c = [nn.Sequential(nn.Conv2d(in_channels, base, 4, 2, 2), nn.LeakyReLU(0.2))], base
        for n in range(1, layers):
            c_out = min(c * 2, 512)
            stride = 1 if n == layers - 1 else 2
            conv = nn.utils.spectral_norm(nn.Conv2d(c, c_out, 4, stride, 2))      # SPADE's "spectralinstance"
            blocks.append(nn.Sequential(conv, nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2)))
            c = c_out
        blocks.append(nn.Conv2d(c, 1, 4, 1, 2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, source, image):                           # source: (B, 3, size, size), image: (B, 1, size, size)
        h, features = torch.cat([source, image], dim=1), []    # (B, 4, size, size)
        # kernel 4, padding 2: a stride-2 layer takes a side r to ⌊r/2⌋ + 1, a stride-1 layer to r + 1
        #   layer 1    conv s2, LReLU        (B, base, size/2 + 1, ·)             size 128, base 32: (B, 32, 65²)
        #   layers 2–4 conv s2, IN, LReLU    channels ×2 (≤ 512), side ⌊r/2⌋ + 1  (B, 64, 33²), (128, 17²), (256, 9²)
        #   layer 5    conv s1, IN, LReLU    channels ×2 (≤ 512), side r + 1      (B, 512, 10²)
        #   scores     conv s1               (B, 1, r + 1, r + 1)                 (B, 1, 11²)
        for block in self.blocks:
            h = block(h)
            features.append(h)
        return features                                         # the six maps above, the scores last


class LatentEncoder(nn.Module):
    """Table 3.6 (at size 128, base 32, max 512):

    x 1×128² → conv 32×128² → ResBlk↓ 64×64² → 128×32² → 256×16² → 512×8² → 512×4² → 512×2²
    → LReLU → conv 2×2 512×1² → LReLU → Linear → ẑ 512

    The table's first row ("latent noise 1×1×512") is a copy slip: the input is an image.
    The final Linear is StarGAN v2's output head (its style encoder ends the same way);
    without it ẑ would pass through a LeakyReLU and could hardly be negative, which z ~ N(0, 1) is.
    """

    def __init__(self, size=128, base=32, max_channels=512, z_dim=512, in_channels=1):
        super().__init__()
        ch = widths(size, base, max_channels, 2)                      # [32, 64, 128, 256, 512, 512, 512]
        self.stem = nn.Conv2d(in_channels, ch[0], 3, 1, 1)
        self.down = nn.Sequential(*(ResBlk(a, b, "none") for a, b in zip(ch, ch[1:])))
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch[-1], ch[-1], 2), nn.LeakyReLU(0.2),
                                  nn.Flatten(), nn.Linear(ch[-1], z_dim))

    def forward(self, x):                                       # x: (B, 1, size, size)
        h = self.stem(x)                                        # (B, ch[0], size, size)
        h = self.down(h)                                        # ResBlk↓: (B, ch[1], size/2, ·) … (B, ch[-1], 2²)
        return self.head(h)                                     # conv 2×2 (B, ch[-1], 1, 1) → Linear (B, z_dim)


class MappingNetwork(nn.Module):
    """Table 3.7: s = L(z), eight Linear layers of 512, ReLU after all but the last."""

    def __init__(self, z_dim=512, style_dim=512, layers=8):
        super().__init__()
        dims = [z_dim] + [style_dim] * layers
        mods = []
        for a, b in zip(dims, dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*mods[:-1])

    def forward(self, z):                                       # z: (B, z_dim)
        return self.net(z)                                      # 7 × [Linear, ReLU], Linear: (B, style_dim)


GENERATORS = ("ED", "Mult")


def build(generator="ED", size=128, z_dim=512, g_base=16, g_max=256, spade_hidden=128, d_base=32,
          encoder=False, e_base=32, e_max=512, mapping=False):
    """Every network of a run, ``{"G", "D"[, "E"][, "L"]}``, Xavier-initialised (Table 3.8), from the
    keyword arguments that every checkpoint stores as ``model_args`` (so eval.py and --resume rebuild
    a run from its checkpoint alone).

    ``generator``: "ED" (Table 3.4) or "Mult" (Table 3.5, with ``spade_hidden`` channels in SPADE);
    D is Table 3.3; ``encoder``: the latent encoder E of Table 3.6 (configurations with LR or IR);
    ``mapping``: the mapping network L of Table 3.7 (SM). ``z_dim`` is the size of z (and of s = L(z)).
    A size the networks cannot take (not a power of two from 8 up) is a ``ValueError``.
    """
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}; choose one of {', '.join(GENERATORS)}")
    g_args = dict(size=size, base=g_base, max_channels=g_max, z_dim=z_dim)
    G = EncoderDecoder(**g_args) if generator == "ED" else MultinormDecoder(**g_args, spade_hidden=spade_hidden)
    models = {"G": G, "D": PatchDiscriminator(base=d_base)}
    if encoder:
        models["E"] = LatentEncoder(size, e_base, e_max, z_dim)
    if mapping:
        models["L"] = MappingNetwork(z_dim, z_dim)
    return {name: init_xavier(m) for name, m in models.items()}


def style(nets, z):
    """s = L(z) when the run has a mapping network (§3.2.2.4, "SM"), else z itself: (B, z_dim) → (B, z_dim)."""
    return nets["L"](z) if "L" in nets else z


# ------------------------------------------------------------------------------ adversarial losses (Table 2.1)

ADVERSARIAL = ("original", "least-squares", "hinge")


def discriminator_loss(real, fake, kind):
    """L_D = −mean[f(y_real)] − mean[g(y_fake)] over patches and batch (Table 2.1; D maximises f + g):

    original       f = −log(1 + e^−y)      g = −y − log(1 + e^−y)   → softplus(−y_r) + softplus(y_f)
    least-squares  f = −½(y − 1)²          g = −½y²                 → ½(y_r − 1)² + ½y_f²
    hinge          f = min(0, y − 1)       g = min(0, −y − 1)       → relu(1 − y_r) + relu(1 + y_f)
    """
    if kind == "original":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "least-squares":
        return 0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADVERSARIAL}")


def generator_loss(fake, kind):
    """L_G = mean[h(y_fake)] (Table 2.1):

    original       h = log(1 + e^−y) = softplus(−y)   (the non-saturating form; see README)
    least-squares  h = ½(y − 1)²
    hinge          h = −y
    """
    if kind == "original":
        return F.softplus(-fake).mean()
    if kind == "least-squares":
        return 0.5 * (fake - 1).pow(2).mean()
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADVERSARIAL}")


# ------------------------------------------------------------------------------ other losses (Table 3.2)

def feature_matching_loss(fake_features, real_features):
    """Eq. 3.4 on discriminator features: L_p = Σ_l mean (f_l(x̂) − f_l(x))², real side detached."""
    return sum((f - r.detach()).pow(2).mean() for f, r in zip(fake_features, real_features))


def latent_reconstruction_loss(z, z_hat):
    """Eq. 3.1: L_lr = mean |z − E(G(y, z))|  (mean over batch and the latent dimensions)."""
    return (z - z_hat).abs().mean()


def style_diversity_loss(d_image, d_latent):
    """Eq. 3.2: L_sd = mean over the batch of d_I(G(y, z1), G(y, z2)) / d_z(z1, z2).

    The generator *maximises* it: it enters eq. 3.5 as −λ_sd·L_sd (StarGAN v2).
    ``d_image``, ``d_latent``: per-pair distances, shape (B,).
    """
    return (d_image / d_latent).mean()


def identity_reconstruction_loss(d_image):
    """Eq. 3.3: L_ir = mean over the batch of d_I(x, G(y, E(x))); ``d_image`` shape (B,)."""
    return d_image.mean()


def full_loss(terms, lambda_p=0.0, lambda_lr=0.0, lambda_sd=0.0, lambda_ir=0.0):
    """Eq. 3.5, the generator's side: L_G = L_adv + λ_p·L_p + λ_lr·L_lr − λ_sd·L_sd + λ_ir·L_ir.

    ``terms``: {"loss_adv", and those of "loss_p", "loss_lr", "loss_sd", "loss_ir" the configuration
    uses}; a term it does not use counts 0. L_sd enters with a minus: the generator maximises it
    (eq. 3.2 is a max over G; StarGAN v2 subtracts its diversity term the same way).
    """
    return (terms["loss_adv"] + lambda_p * terms.get("loss_p", 0.0) + lambda_lr * terms.get("loss_lr", 0.0)
            - lambda_sd * terms.get("loss_sd", 0.0) + lambda_ir * terms.get("loss_ir", 0.0))


# ------------------------------------------------------------------------------ distances d_I and d_z (§3.2.4)

def l1_distance(a, b):
    """Per-pair mean absolute difference, (B,): the "L1" choice of d_I and d_z."""
    return (a - b).abs().flatten(1).mean(1)


def discriminator_distance(D, a, b, y):
    """d_I = D: Σ_l mean |D_l(y, a) − D_l(y, b)| over D's layers 1–5 (not its patch scores), per pair (B,)."""
    return sum(l1_distance(fa, fb) for fa, fb in zip(D(y, a)[:-1], D(y, b)[:-1]))


def source_blind(distance, a, b, y):
    """A d_I that does not look at the shared source y: ``distance(a, b)``, (B,)."""
    return distance(a, b)


def image_distances(names, D, vgg=None, faceid=None):
    """The d_I of eqs. 3.2–3.3 named in ``names``: {name: d(a, b, y) → (B,)}, y the pair's shared source.

    "L1": ``l1_distance``; "D": ``discriminator_distance`` with D; "VGG": ``vgg`` (a ``VGGDistance``);
    "FaceId": ``faceid`` (a ``FaceIdDistance``). Table 4.1's configurations name them (``Config.image_distances``).
    """
    choices = {"L1": partial(source_blind, l1_distance), "D": partial(discriminator_distance, D),
               "VGG": partial(source_blind, vgg), "FaceId": partial(source_blind, faceid)}
    return {name: choices[name] for name in names}


# ------------------------------------------------------------------------------ VGG-19 perceptual network

VGG_LAYERS = (1, 6, 11, 20, 29)                       # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (§3.2.4.2.1)
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)     # pix2pixHD's VGGLoss weights ("normalised by channel sizes")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGGDistance(nn.Module):
    """§3.2.4.2.1: d(a, b) = Σ_l w_l · mean |φ_l(a) − φ_l(b)| over VGG-19 layers 1, 6, 11, 20, 29, per pair (B,).

    Frozen. ``weights="imagenet"`` loads torchvision's ImageNet weights (a 548 MB download on
    first use; offline it stops with one sentence naming the file and the alternative);
    ``weights="none"`` keeps random weights (tests, offline smoke runs; not a perceptual metric).
    """

    def __init__(self, weights="imagenet"):
        super().__init__()
        self.net = make_layers(cfgs["E"])[:VGG_LAYERS[-1] + 1]     # VGG-19's conv part, torchvision's indices
        if weights == "imagenet":
            state = torchvision_weights(VGG19_Weights.IMAGENET1K_V1, "ImageNet VGG-19",
                                        "--vgg-weights none (random weights, offline: runs, but is no perceptual loss)")
            self.net.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")
                                      and int(k.split(".")[1]) <= VGG_LAYERS[-1]})
        elif weights != "none":
            raise ValueError(f"VGG weights must be 'imagenet' or 'none', got {weights!r}")
        self.net.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode=True):                        # always frozen, always in eval mode
        return super().train(False)

    def features(self, x):                                      # x: (B, 1 or 3, H, W) in [−1, 1]
        h, out = ((x.expand(-1, 3, -1, -1) + 1) / 2 - self.mean) / self.std, []     # (B, 3, H, W), ImageNet's scale
        for i, layer in enumerate(self.net):
            h = layer(h)
            if i in VGG_LAYERS:     # relu1_1 (B, 64, H, W), relu2_1 (B, 128, H/2, W/2), relu3_1 (B, 256, H/4, W/4),
                out.append(h)       # relu4_1 (B, 512, H/8, W/8), relu5_1 (B, 512, H/16, W/16)
        return out

    def forward(self, a, b):                                    # a, b: (B, 1 or 3, H, W)
        both = self.features(torch.cat([a, b]))                 # one pass over a and b: 5 × (2B, C_l, H_l, W_l)
        return sum(w * (f[:len(a)] - f[len(a):]).abs().flatten(1).mean(1) for w, f in zip(VGG_WEIGHTS, both))  # (B,)


# ------------------------------------------------------------------------------ face-identity network

class FaceIdDistance(nn.Module):
    """§3.2.4.2.2, d_I = FaceId: mean |f(a) − f(b)| of a frozen face-identity network's features, per pair (B,).

    The thesis used a ResNet-50 trained on VGGFace2 (§3.2.4.2.2), which we cannot ship; ``path`` is a
    TorchScript network (B, 3, H, W) in [−1, 1] → features, and without it the features are those of
    the repo's synthetic-face network (``common.synthnet``), which knows the built-in identities.
    """

    def __init__(self, path, device):
        super().__init__()
        self.net = torch.jit.load(path, map_location=device) if path else load_synthnet(device=device)
        for p in self.net.parameters():        # (a TorchScript module has no requires_grad_)
            p.requires_grad_(False)
        self.net.eval()
        self.features = self.net if path else self.net.features

    def forward(self, a, b):                                    # a, b: (B, 1 or 3, H, W)
        # float32 in: the synthetic network's antialiased resize has no bfloat16 kernel on CPUs (--amp)
        f = self.features(torch.cat([a, b]).float().expand(-1, 3, -1, -1))    # (2B, 3, H, W) → (2B, F), F = 256
        return (f[:len(a)] - f[len(a):]).abs().flatten(1).mean(1)             # (B,)
