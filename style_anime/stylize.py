"""Neural style transfer (§IV.A–C): Gatys et al.'s optimisation of the image itself on VGG-19 features.

    python style_anime/stylize.py builtin:hopper builtin:anime -o runs/style_anime/hopper_anime.png
    python style_anime/stylize.py photo.jpg painting.jpg -o out.png --size 384 --steps 500
    python style_anime/stylize.py builtin:hopper builtin:sketch -o out.png --weights none   # offline: random VGG-19

CONTENT and STYLE are image files or built-in examples that need no download:
``builtin:hopper`` (the Grace Hopper photo shipped with matplotlib), ``builtin:anime`` and
``builtin:sketch`` (a built-in synthetic face; ``builtin:anime:7`` picks face 7).
Writes OUT (the stylised image), OUT_figure.png (content | style | output, Fig. 4.1.1)
and OUT_loss.png (the weighted content, style and total losses against the step).

The image x starts from the content image (or noise) and is changed to minimise
    α·L_content(p, x) + β·L_style(a, x)                     (Gatys et al. eq. 7; §IV.A, "both minimised")
with L_content at conv4_2 (eq. 2) and L_style over conv1_1 … conv5_1 (eqs. 3–5).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import matplotlib

matplotlib.use("Agg")
import matplotlib.cbook
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
from PIL import Image, UnidentifiedImageError
from torchvision.models import VGG19_Weights

from common import synthetic
from common.features import torchvision_weights
from common.plots import save_image_rows
from common.loop import progress
from common.run import one_sentence_errors, pick_device, positive_float, positive_int, seed_everything

CONTENT_LAYER = "conv4_2"                                           # Gatys et al. §2
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
BUILTIN_FACE = 1            # face 1 of seed 0: long orange hair, big teal eyes (docs/common/faces.png)
VGG19_CONVS = [(f"conv{b}_{c}", width) for b, width, convs in [(1, 64, 2), (2, 128, 2), (3, 256, 4), (4, 512, 4),
                                                                   (5, 512, 4)] for c in range(1, convs + 1)]
IMAGENET_MEAN = (0.485, 0.456, 0.406)                               # torchvision's VGG input normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------- VGG-19

class VGG19Features(nn.Module):
    """VGG-19's convolutional part up to conv5_1, with torchvision's layer indices.

    Blocks of 3×3 convolutions (64, 64 | 128, 128 | 256 ×4 | 512 ×4 | 512), each followed by
    a ReLU, a 2×2 max-pool after each block. ``forward(x, names)`` returns the ReLU output of
    each named layer (Gatys et al. use the rectified responses) for x in [0, 1].
    """

    def __init__(self, last=STYLE_LAYERS[-1]):
        super().__init__()
        layers, self.index, c_in = [], {}, 3
        for name, width in VGG19_CONVS:
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
            self.index[name] = len(layers) - 1                      # the ReLU after the convolution
            c_in = width
            if name == last:
                break
            if name in ("conv1_2", "conv2_2", "conv3_4", "conv4_4"):  # end of a block
                layers.append(nn.MaxPool2d(2, 2))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x, names):
        out, x = {}, (x - self.mean) / self.std
        last = max(self.index[n] for n in names)
        for i, layer in enumerate(self.layers[:last + 1]):
            x = layer(x)
            if i in self.index.values():
                out.update({n: x for n in names if self.index[n] == i})
        return out


def load_vgg19(weights="imagenet"):
    """VGG19Features with torchvision's ImageNet weights, or random ones (``weights="none"``).

    Offline, ImageNet weights that are not in torch's cache stop the script with one sentence
    naming the file, the folder to put it in, and ``--weights none``.
    """
    net = VGG19Features()
    if weights == "none":            # torchvision's VGG initialisation
        for m in net.layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
    else:
        state = torchvision_weights(VGG19_Weights.IMAGENET1K_V1, "ImageNet VGG-19",
                                    "--weights none (random weights, offline)")
        kept = len(net.layers)
        net.layers.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items()
                                    if k.startswith("features.") and int(k.split(".")[1]) < kept})
    return net.eval().requires_grad_(False)


# ------------------------------------------------------------------------------- losses

def gram_matrix(features):
    """§IV.C: G^l_ij = Σ_k F^l_ik·F^l_jk, the inner product of vectorised feature maps i and j.
    features: (N_l, H, W) or (1, N_l, H, W) → (N_l, N_l)."""
    f = features.reshape(features.shape[-3], -1)                    # N_l × M_l
    return f @ f.T


def content_loss(f, p):
    """Eq. 2: L_content = Σ_ij (F^l_ij(x) − P^l_ij(p))², summed (no ½ as in Gatys, none in the paper)."""
    return (f - p).pow(2).sum()


def layer_style_loss(features, a):
    """Eq. 3: E_l = 1/(4·N_l²·M_l²) · Σ_ij (G^l_ij − A^l_ij)², G the Gram matrix of x's features,
    A the style image's, N_l feature maps of M_l = height·width positions."""
    n, m = features.shape[-3], features.shape[-2] * features.shape[-1]
    return (gram_matrix(features) - a).pow(2).sum() / (4 * n ** 2 * m ** 2)


def style_loss(features, targets):
    """Eqs. 4–5: L_style = Σ_l w_l·E_l with equal weights w_l = 1/|L| over the style layers L.
    features, targets: {layer: features of x}, {layer: Gram matrix A^l of the style image}."""
    return sum(layer_style_loss(features[l], targets[l]) for l in targets) / len(targets)


def total_loss(l_content, l_style, alpha, beta):
    """α·L_content + β·L_style, the objective minimised over the image (Gatys et al. eq. 7)."""
    return alpha * l_content + beta * l_style


# ------------------------------------------------------------------------------- images

def load_image(spec, size):
    """A file path or ``builtin:hopper|anime|sketch[:N]`` → float (1, 3, size, size) in [0, 1].

    Files are converted to RGB, cut to their largest centred square and resized (up or down).
    """
    kind, _, index = spec.partition(":")[2].partition(":")
    if spec.startswith("builtin:") and kind in ("anime", "sketch"):
        face = synthetic.faces(1, size, kind, seed=0, start=int(index or BUILTIN_FACE))
        return face.float() / 255
    if spec == "builtin:hopper":
        path = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    elif spec.startswith("builtin:"):
        raise SystemExit(f"unknown built-in image {spec!r}: use builtin:hopper, builtin:anime or builtin:sketch")
    else:
        path = Path(spec).expanduser()
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except FileNotFoundError:
        raise SystemExit(f"{path} does not exist; give an image file or one of builtin:hopper, builtin:anime, "
                         f"builtin:sketch")
    except (UnidentifiedImageError, OSError) as err:
        raise SystemExit(f"{path} could not be read as an image ({err})")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].contiguous().float() / 255


# ------------------------------------------------------------------------------- optimisation

def stylize(net, content, style, steps=300, alpha=1.0, beta=1e3, optimizer="lbfgs", lr=0.02, init="content",
            on_step=None):
    """Optimise an image from ``content`` (or uniform noise) to match content's conv4_2 features
    and style's Gram matrices. Returns (image in [0, 1], history: the weighted losses at each step).

    A step is one evaluation of the loss and its gradient: one Adam update, or one evaluation
    inside a single L-BFGS run of ``steps`` evaluations (it may stop earlier once converged).
    The image is clamped to [0, 1] before each evaluation, as in the PyTorch tutorial.
    """
    with torch.no_grad():
        p = net(content, [CONTENT_LAYER])[CONTENT_LAYER]
        a = {l: gram_matrix(f) for l, f in net(style, STYLE_LAYERS).items()}
    x = (content.clone() if init == "content" else torch.rand_like(content)).requires_grad_(True)
    opt = (torch.optim.LBFGS([x], max_iter=steps, max_eval=steps) if optimizer == "lbfgs"
           else torch.optim.Adam([x], lr=lr))
    history = []

    def closure():
        with torch.no_grad():
            x.clamp_(0, 1)
        opt.zero_grad(set_to_none=True)
        features = net(x, (CONTENT_LAYER, *STYLE_LAYERS))
        l_content = content_loss(features[CONTENT_LAYER], p)
        l_style = style_loss(features, a)
        loss = total_loss(l_content, l_style, alpha, beta)
        loss.backward()
        history.append(dict(content=alpha * l_content.item(), style=beta * l_style.item(), total=loss.item()))
        if on_step:
            on_step(history[-1])
        return loss

    for _ in range(1 if optimizer == "lbfgs" else steps):
        opt.step(closure)
    return x.detach().clamp(0, 1), history


def plot_history(history, path, title):
    """The weighted content, style and total losses against the step, on a log scale."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key, label in (("total", "total"), ("content", "α·L_content (eq. 2)"), ("style", "β·L_style (eq. 4)")):
        ax.semilogy([h[key] for h in history], label=label)
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("content", help="content image p: a file, builtin:hopper, builtin:anime or builtin:sketch")
    ap.add_argument("style", help="style image a: a file, builtin:anime, builtin:sketch or builtin:hopper")
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/style_anime/stylized.png"), help="output PNG")
    ap.add_argument("--size", type=positive_int, default=256, help="side of the square images (default: 256)")
    ap.add_argument("--steps", type=positive_int, default=300, help="optimiser steps (default: 300)")
    ap.add_argument("--content-weight", type=float, default=1.0, help="α (default: 1)")
    ap.add_argument("--style-weight", type=float, default=1e3, help="β (default: 1e3, Gatys' α/β = 1e-3)")
    ap.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default: lbfgs (Gatys)")
    ap.add_argument("--lr", type=positive_float, default=0.02, help="Adam's step on [0, 1] pixels (default: 0.02)")
    ap.add_argument("--init", choices=["content", "noise"], default="content", help="start image (default: content)")
    ap.add_argument("--weights", choices=["imagenet", "none"], default="imagenet",
                    help="VGG-19 weights: torchvision's ImageNet ones, or none (random, offline)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--seed", type=int, default=0, help="seed for random weights and noise (default: 0)")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    seed_everything(args.seed)

    net = load_vgg19(args.weights).to(device)
    content, style = (load_image(s, args.size).to(device) for s in (args.content, args.style))
    bar = progress(args.steps, desc="stylize")

    def on_step(losses):
        bar.update()
        bar.set_postfix(total=f"{losses['total']:.3g}", content=f"{losses['content']:.3g}",
                        style=f"{losses['style']:.3g}")

    out, history = stylize(net, content, style, args.steps, args.content_weight, args.style_weight,
                           args.optimizer, args.lr, args.init, on_step)
    bar.close()

    weights = "ImageNet VGG-19" if args.weights == "imagenet" else "RANDOM VGG-19 weights (not ImageNet)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((out[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)).save(args.out)
    stem = args.out.with_suffix("")
    figure, curve = Path(f"{stem}_figure.png"), Path(f"{stem}_loss.png")
    save_image_rows([torch.cat([content, style, out]).cpu() * 2 - 1], figure,
                    col_labels=["content", "style", "output"], scale=max(1, 256 // args.size),
                    title=f"Fig. 4.1.1: {args.content} + {args.style}, {weights}")
    plot_history(history, curve, f"style transfer losses, α={args.content_weight:g}, β={args.style_weight:g}\n{weights}")
    print(f"{weights}: total loss {history[0]['total']:.4g} → {history[-1]['total']:.4g} in {args.steps} steps; "
          f"wrote {args.out}, {figure} and {curve}")
    return history


if __name__ == "__main__":
    main()
