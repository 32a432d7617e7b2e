"""Sketch → photo: OUR INTERPRETATION, not a method from the paper.

The abstract says "a small part of the code" makes a photo from a sketch, and §4 that
"the same model" was used, but the paper gives no method. We use the trained generator
as it is and search its latent space (GAN inversion): find the z whose face G(z) has
edges that match the sketch's lines,

    z* = argmin_z  mean | blur(edges(G(z))) − blur(ink(sketch)) |,   z ∈ [−1, 1]^z_dim,

by gradient descent (Adam) from several random starts, keeping the best. ``edges`` is
the Sobel gradient magnitude of the grey image scaled to [0, 1] per image; ``ink`` is
how dark the sketch is (1 − grey, in [0, 1]). The blur forgives lines a pixel off.
"""
import torch
import torch.nn.functional as F

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def grey(images):
    """(B, 3, H, W) in [−1, 1] → (B, 1, H, W) luminance in [0, 1] (ITU-R 601 weights)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    return ((images + 1) / 2 * weights).sum(1, keepdim=True)


def edges(images):
    """Sobel gradient magnitude of the grey image, divided by its per-image maximum: (B, 1, H, W) in [0, 1].

    The divisor is at least 0.05 (a full black-to-white step gives 4), so a nearly flat image stays dark.
    """
    g = F.pad(grey(images), (1, 1, 1, 1), mode="replicate")
    kx = SOBEL_X.to(images.device).view(1, 1, 3, 3)
    gx, gy = F.conv2d(g, kx), F.conv2d(g, kx.transpose(2, 3))
    magnitude = (gx ** 2 + gy ** 2 + 1e-12).sqrt()
    return magnitude / magnitude.amax(dim=(1, 2, 3), keepdim=True).clamp_min(0.05)


def ink(sketches):
    """How much ink each pixel of a sketch carries: 1 − grey, (B, 1, H, W) in [0, 1]."""
    return 1 - grey(sketches)


def blur(maps):
    """A 3×3 binomial blur ([1, 2, 1] ⊗ [1, 2, 1] / 16), edges replicated."""
    k = torch.tensor([1.0, 2.0, 1.0], device=maps.device)
    kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    return F.conv2d(F.pad(maps, (1, 1, 1, 1), mode="replicate"), kernel)


def sketch_loss(faces, sketches):
    """Per-image mean |blur(edges(face)) − blur(ink(sketch))|: (B,)."""
    return (blur(edges(faces)) - blur(ink(sketches))).abs().mean(dim=(1, 2, 3))


def fit_latent(G, sketches, z_dim, steps=200, restarts=8, lr=0.05, seed=0):
    """The z in [−1, 1]^z_dim whose G(z) best matches each sketch; returns (z (B, z_dim), loss (B,)).

    ``restarts`` random starts per sketch are optimised together; the best one is kept.
    G is used in eval mode and its weights are not changed.
    """
    G.eval()
    for p in G.parameters():
        p.requires_grad_(False)
    device = sketches.device
    b = len(sketches)
    target = sketches.repeat_interleave(restarts, 0)
    generator = torch.Generator(device).manual_seed(seed)
    z = (torch.rand(b * restarts, z_dim, device=device, generator=generator) * 2 - 1).requires_grad_(True)
    opt = torch.optim.Adam([z], lr)
    for _ in range(steps):
        loss = sketch_loss(G(z), target)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            z.clamp_(-1, 1)
    for p in G.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        loss = sketch_loss(G(z), target).view(b, restarts)
        best = loss.argmin(1)
        z = z.detach().view(b, restarts, z_dim)[torch.arange(b), best]
    return z, loss[torch.arange(b), best]
