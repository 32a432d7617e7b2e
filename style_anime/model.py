"""The anime-face DCGAN of "Enhanced Unsupervised Image Generation using GAN based Convolutional Nets" (§IV.D–H).

The paper's Figures 4.2.2 and 4.2.3 (the layer tables) are missing from the text, so the
networks follow its words and the DCGAN of Radford et al. that it builds on:
- generator (§IV.F): transposed convolutions, each followed by batch norm and a leaky
  ReLU with the paper's "small negative slope of 0.01", strides to upsample, tanh output;
- discriminator (§IV.G): strided convolutions (down-sampling) with batch norm and the same
  leaky ReLU, one sigmoid probability "real" per image (§III);
- the loss is the GAN value function, eq. 1, as binary cross-entropy.
Sizes are powers of two from 16 up; 4×4 is the smallest feature map (DCGAN).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SLOPE = 0.01    # §IV.F: "a small negative slope of 0.01 or lesser value when x < 0"


def _blocks(size):
    """Upsampling (or downsampling) blocks between 4×4 and size×size: 64 -> 4 (4, 8, 16, 32, 64)."""
    if size < 16 or size & (size - 1):
        raise ValueError(f"the DCGAN works on square power-of-two sizes from 16 up (16, 32, 64, …), "
                         f"not {size}")
    return int(math.log2(size // 4))


class Generator(nn.Module):
    """G(q): noise q ~ N(0, I) in R^z_dim → image in [−1, 1] (§IV.F, Fig. 4.2.2).

    For size 64, width w:
        z_dim×1×1 → ConvT 4×4 → 8w×4×4 → ConvT ↑ → 4w×8×8 → 2w×16×16 → w×32×32 → ConvT ↑ → 3×64×64 → tanh
    Every hidden ConvT (4×4 kernel, stride 2, padding 1: doubles the size) is followed by
    BatchNorm and LeakyReLU(slope). Size 32 drops the widest block: z_dim → 4w×4×4 → … → 3×32×32.
    """

    def __init__(self, size=64, z_dim=100, width=64, channels=3, slope=SLOPE):
        super().__init__()
        n = _blocks(size)
        c = width * 2 ** (n - 1)                                    # widest layer, at 4×4
        layers = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(slope)]
        for _ in range(n - 1):                                      # 4 → 8 → … → size/2
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2),
                       nn.LeakyReLU(slope)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]   # size/2 → size
        self.z_dim = z_dim
        self.net = nn.Sequential(*layers)

    def forward(self, q):                                   # self.net: 3 layers, 3 per doubling, then 2
        x = q.view(len(q), self.z_dim, 1, 1)                 # (B, z_dim, 1, 1)
        x = self.net[:3](x)                                  # ConvT 4×4, BN, LeakyReLU: (B, w·size/8, 4, 4)
        for i in range(3, len(self.net) - 2, 3):             # s = 4, 8, …, size/4
            x = self.net[i:i + 3](x)                         # ConvT ↑, BN, LeakyReLU: (B, c, s, s) → (B, c/2, 2s, 2s)
        return self.net[-2:](x)                              # ConvT ↑ tanh: (B, w, size/2, size/2) → (B, 3, size, size)


class Discriminator(nn.Module):
    """D(x): image → probability that it is real (§IV.G, Fig. 4.2.3).

    For size 64, width w:
        3×64×64 → Conv ↓ → w×32×32 → 2w×16×16 → 4w×8×8 → 8w×4×4 → Conv 4×4 → 1×1×1 → sigmoid
    Each strided Conv (4×4, stride 2, padding 1: halves the size) is followed by BatchNorm
    (except on the first layer, as in DCGAN) and LeakyReLU(slope).
    """

    def __init__(self, size=64, width=64, channels=3, slope=SLOPE):
        super().__init__()
        layers, c_in, c = [], channels, width
        for i in range(_blocks(size)):                               # size → size/2 → … → 4
            layers += [nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0)]
            layers += ([nn.BatchNorm2d(c)] if i > 0 else []) + [nn.LeakyReLU(slope)]
            c_in, c = c, c * 2
        layers += [nn.Conv2d(c_in, 1, 4, 1, 0), nn.Sigmoid()]       # 4×4 → 1×1
        self.net = nn.Sequential(*layers)

    def forward(self, x):                                   # (B, 3, size, size); self.net: 2 layers, 3 per halving, 2
        x = self.net[:2](x)                                  # Conv ↓, LeakyReLU: (B, w, size/2, size/2)
        for i in range(2, len(self.net) - 2, 3):             # s = size/2, size/4, …, 8
            x = self.net[i:i + 3](x)                         # Conv ↓, BN, LeakyReLU: (B, c, s, s) → (B, 2c, s/2, s/2)
        return self.net[-2:](x).view(-1)                     # Conv 4×4, σ: (B, w·size/8, 4, 4) → (B, 1, 1, 1) → (B,)


def init_weights(module):
    """DCGAN initialisation (Radford et al. §4): convolutions ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(size=64, z_dim=100, width=64, slope=SLOPE):
    """The run's networks, ``{"G": Generator, "D": Discriminator}``, with DCGAN's initialisation,
    from the keyword arguments that every checkpoint stores as ``model_args`` (so eval.py and
    --resume rebuild them). Impossible sizes raise ``ValueError`` with the reason."""
    G = Generator(size, z_dim, width, slope=slope)
    D = Discriminator(size, width, slope=slope)
    return {"G": G.apply(init_weights), "D": D.apply(init_weights)}


# ------------------------------------------------------------------------------- losses

def noisy_labels(n, real, noise, device=None):
    """§IV.E step 3, "add noise to the input label": n labels drawn uniformly from
    [1 − noise, 1] for real images, or from [0, noise] for generated ones (noise = 0: hard 1 / 0)."""
    u = torch.rand(n, device=device) * noise
    return 1.0 - u if real else u


def label_loss(d_out, labels):
    """Binary cross-entropy of D's probabilities against the (noisy) labels y: −mean[y·log D + (1 − y)·log(1 − D)]."""
    return F.binary_cross_entropy(d_out, labels)


def discriminator_loss(d_real, d_fake, real_labels, fake_labels):
    """Eq. 1, the discriminator's side: maximise log D(x) + log(1 − D(G(q))) (the paper's real sample z is
    x here), i.e. minimise L_D = BCE(D(x), y_real) + BCE(D(G(q)), y_fake): ``label_loss`` on each batch with
    its noisy labels (§IV.E step 3); with hard labels 1 / 0, −mean log D(x) − mean log(1 − D(G(q)))."""
    return label_loss(d_real, real_labels) + label_loss(d_fake, fake_labels)


def generator_loss(d_fake):
    """Eq. 1, the generator's side, trained through the combined model with "real" targets
    (§IV.H): −mean log D(G(q)), the non-saturating form of minimising log(1 − D(G(q)))."""
    return F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))
