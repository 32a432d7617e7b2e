"""Neural style transfer (§IV.A–C): Gatys et al.'s optimisation of the image itself on VGG-19 features.

    python style_anime/stylize.py                     # three built-in pairs, offline: content | style | result
    python style_anime/stylize.py builtin:hopper builtin:ihc -o runs/style_anime/hopper_ihc.png
    python style_anime/stylize.py photo.jpg painting.jpg -o out.png --size 384 --steps 500

CONTENT and STYLE are image files or built-in images that need no download: ``builtin:hopper`` (the
Grace Hopper photo shipped with matplotlib), the photos ``builtin:astronaut`` and ``builtin:chelsea`` and
the textures ``builtin:ihc``, ``builtin:hubble`` and ``builtin:brick`` (style_anime/images/, from
scikit-image's sample data), and ``builtin:anime`` / ``builtin:sketch`` (a built-in synthetic face;
``builtin:anime:7`` picks face 7). Without CONTENT and STYLE the three pairs of ``DEMO_PAIRS`` are run.

The loss network is VGG-19 with ImageNet weights (548 MB, fetched by torchvision on first use) or,
where they cannot be had, He et al.'s random VGG-19 (``loss_networks.py``), said in one line.

Writes OUT (the result; OUT_<content>+<style>.png for each built-in pair), OUT_figure.png (content | style
| result and the losses against the step, Fig. 4.1.1) and OUT_measures.json (the losses per layer before
and after, and the measures of ``measures.py``). The image x starts from the content image (or noise) and
is changed to minimise
    α·L_content(p, x) + β·L_style(a, x)                     (Gatys et al. eq. 7; §IV.A, "both minimised")
with L_content at one layer (eq. 2) and L_style over conv1_1 … conv5_1 (eqs. 3–5).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import matplotlib

matplotlib.use("Agg")
import matplotlib.cbook
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from common import synthetic
from common.cli import one_sentence_errors, positive_float, positive_int, seed_int
from common.device import pick_device, seed_everything
from common.features import WeightsUnavailable
from common.loop import StopOnInterrupt, progress
from style_anime.loss_networks import imagenet_vgg19, random_vgg19
from style_anime.measures import style_measures

IMAGES = Path(__file__).resolve().parent / "images"               # sources and licences: images/SOURCES.md
SHIPPED = {"astronaut": "astronaut.jpg", "chelsea": "chelsea.jpg", "ihc": "ihc.jpg",
           "hubble": "hubble_deep_field.jpg", "brick": "brick.jpg"}
BUILTINS = ("hopper", *SHIPPED, "anime", "sketch")
DEMO_PAIRS = (("builtin:hopper", "builtin:ihc"), ("builtin:astronaut", "builtin:hubble"),
              ("builtin:chelsea", "builtin:brick"))
BUILTIN_FACE = 1            # face 1 of seed 0: long orange hair, big teal eyes (docs/common/faces.png)
STYLE_WEIGHT = {"imagenet": 1e3, "random": 1e8}                   # default β of each loss network (README)
MIN_SIDE, MAX_ASPECT = 16, 4          # VGG-19 pools four times; a centred square of a 4:1 image keeps 1/4
# Memory per pixel of the image, measured on a CPU (README): VGG-19's activations kept for the backward pass
# (~700 bytes), and the optimiser's own: L-BFGS keeps two image-sized float32 vectors per iteration (24
# bytes per pixel each time, its history of 100 at most), Adam two moments (24 bytes).
ACTIVATION_BYTES, LBFGS_BYTES_PER_STEP, ADAM_BYTES, BASE_BYTES = 700, 24, 24, 1.2e9


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


def targets(net, content, style):
    """P (the content image's features at the content layer) and {l: A^l} (the style image's Gram matrices)."""
    with torch.no_grad():
        p = net(content, [net.content_layer])[net.content_layer]
        a = {l: gram_matrix(f) for l, f in net(style, net.style_layers).items()}
    return p, a


def losses(net, x, p, a, alpha, beta):
    """The objective at image x: {"total", "content": α·L_content, "style": β·L_style, and E_l per style layer}."""
    features = net(x, (net.content_layer, *net.style_layers))
    l_content, l_style = content_loss(features[net.content_layer], p), style_loss(features, a)
    return dict(total=total_loss(l_content, l_style, alpha, beta), content=alpha * l_content, style=beta * l_style,
                **{l: layer_style_loss(features[l], a[l]) for l in net.style_layers})


# ------------------------------------------------------------------------------- images

def builtin_image(name, index, size):
    """``builtin:NAME[:N]`` → a PIL image (hopper, the shipped photos and textures) or a (1, 3, size, size)
    tensor in [0, 1] (the synthetic anime and sketch faces, drawn at ``size``)."""
    if name in ("anime", "sketch"):
        if not index.isdigit() and index:
            raise SystemExit(f"builtin:{name}:{index}: the face number must be a whole number ≥ 0, "
                             f"e.g. builtin:{name}:7")
        return synthetic.faces(1, size, name, seed=0, start=int(index or BUILTIN_FACE)).float() / 255
    if index or name not in BUILTINS:
        raise SystemExit(f"unknown built-in image builtin:{name}{':' if index else ''}{index}: use one of "
                         + ", ".join(f"builtin:{b}" for b in BUILTINS))
    return IMAGES / SHIPPED[name] if name in SHIPPED else \
        Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def load_image(spec, size):
    """A file path or ``builtin:NAME[:N]`` → float (1, 3, size, size) in [0, 1].

    Files are converted to RGB, cut to their largest centred square and resized (up or down). Images
    smaller than 16 px a side, or longer than 4:1 (whose centred square would drop most of them), are
    refused with one sentence.
    """
    path = Path(spec).expanduser()
    if spec.startswith("builtin:"):
        name, _, index = spec[len("builtin:"):].partition(":")
        path = builtin_image(name, index, size)
        if isinstance(path, torch.Tensor):
            return path
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except FileNotFoundError:
        raise SystemExit(f"{path} does not exist; give an image file or one of "
                         + ", ".join(f"builtin:{b}" for b in BUILTINS))
    except (UnidentifiedImageError, OSError) as err:
        raise SystemExit(f"{path} could not be read as an image ({err})")
    short, long = sorted(image.size)
    if short < MIN_SIDE:
        raise SystemExit(f"{path} is {image.width}×{image.height} pixels: too small, give an image of at least "
                         f"{MIN_SIDE} pixels a side")
    if long > MAX_ASPECT * short:
        raise SystemExit(f"{path} is {image.width}×{image.height} pixels: its centred square would keep only "
                         f"{short / long:.0%} of it; crop it to at most {MAX_ASPECT}:1 first")
    left, top = (image.width - short) // 2, (image.height - short) // 2
    image = image.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + short, top + short))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].contiguous().float() / 255


def check_output(path):
    """Before any work: OUT must be a writable image file name, so that a bad -o loses nothing."""
    Image.init()
    if path.is_dir() or Image.registered_extensions().get(path.suffix.lower()) not in Image.SAVE:
        raise SystemExit(f"-o {path}: give an image file name ending in .png or .jpg")
    existing = next(folder for folder in (path.parent, *path.parent.parents) if folder.exists())
    if not existing.is_dir():
        raise SystemExit(f"-o {path}: {existing} is a file, not a folder; choose another -o")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as err:
        raise SystemExit(f"-o {path}: cannot write into {path.parent} ({err.strerror}); choose another folder")


def image_size(text):
    """--size: a whole number of at least 16 (VGG-19 halves the image four times)."""
    size = positive_int(text)
    if size < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SIDE} (VGG-19 halves the image four times), "
                                         f"not {text}")
    return size


# ------------------------------------------------------------------------------- optimisation

class _Stopped(Exception):
    """Raised inside the optimiser's closure to leave it at once (Ctrl-C), keeping the image so far."""


def stylize(net, content, style, steps=300, alpha=1.0, beta=1e3, optimizer="lbfgs", lr=0.02, init="content",
            on_step=None):
    """Optimise an image from ``content`` (or uniform noise) to match content's features at
    ``net.content_layer`` and style's Gram matrices at ``net.style_layers``. Returns (image in [0, 1],
    history: the losses of ``losses`` at each step, as floats).

    A step is one evaluation of the loss and its gradient: one Adam update, or one evaluation inside a
    single L-BFGS run of ``steps`` evaluations (it may stop earlier once converged). L-BFGS searches
    along each direction for a step that meets the strong Wolfe conditions (without it, a loss of 1e7
    stopped it after 5 evaluations). Adam's image is clamped to [0, 1] before each evaluation; L-BFGS's
    only at the end, as clamping between its evaluations breaks the curvature estimate it builds (README).
    """
    p, a = targets(net, content, style)
    x = (content.clone() if init == "content" else torch.rand_like(content)).requires_grad_(True)
    opt = (torch.optim.LBFGS([x], max_iter=steps, max_eval=steps, line_search_fn="strong_wolfe")
           if optimizer == "lbfgs" else torch.optim.Adam([x], lr=lr))
    history = []

    def closure():
        if optimizer == "adam":
            with torch.no_grad():
                x.clamp_(0, 1)
        opt.zero_grad(set_to_none=True)
        terms = losses(net, x, p, a, alpha, beta)
        terms["total"].backward()
        history.append({k: v.item() for k, v in terms.items()})
        if on_step and on_step(history[-1]):             # asked to stop (Ctrl-C): keep the image as it is
            raise _Stopped
        return terms["total"]

    try:
        for _ in range(1 if optimizer == "lbfgs" else steps):
            opt.step(closure)
    except _Stopped:
        pass
    return x.detach().clamp(0, 1), history


def imagenet_or_random(requested):
    """("imagenet", ImageNet VGG-19) or ("random", None) for --weights; auto takes ImageNet where its
    weights can be had, and says in one line when they cannot."""
    if requested == "random":
        return "random", None
    try:
        return "imagenet", imagenet_vgg19()
    except WeightsUnavailable as err:
        if requested == "imagenet":
            raise
        print(f"{err} Using --weights random for this run.")
        return "random", None


# ------------------------------------------------------------------------------- figure

def save_figure(records, path, title):
    """Fig. 4.1.1 with the losses: one row per pair, content | style | result | losses against the step."""
    fig, axes = plt.subplots(len(records), 4, figsize=(13, 3.3 * len(records)), dpi=100, squeeze=False,
                             gridspec_kw=dict(width_ratios=[1, 1, 1, 1.5]))
    for row, r in zip(axes, records):
        for ax, image, label in zip(row, r["images"], (f"content: {r['content']}", f"style: {r['style']}",
                                                       "result")):
            ax.imshow(image[0].permute(1, 2, 0).cpu().numpy())
            ax.set_title(label, fontsize=9)
            ax.set_axis_off()
        h = r["history"]
        row[3].semilogy([s["content"] for s in h], "k", label="α·L_content (eq. 2)")
        for layer in r["layers"]:
            row[3].semilogy([s[layer] * r["beta"] / len(r["layers"]) for s in h], label=f"β·w·E {layer}")
        lowest = min(s[layer] for s in h for layer in r["layers"]) * r["beta"] / len(r["layers"])
        row[3].set(xlabel="step (loss evaluation)", title=f"losses, α = {r['alpha']:g}, β = {r['beta']:g}",
                   ylim=(lowest / 10, None))                      # α·L_content starts at 0 from the content image
        row[3].title.set_fontsize(9)
        row[3].legend(fontsize=7, ncol=2)
        row[3].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------- command line

def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("content", nargs="?", help="content image p: a file or builtin:NAME (default: the demo pairs)")
    ap.add_argument("style", nargs="?", help="style image a: a file or builtin:NAME")
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/style_anime/stylized.png"), help="output PNG")
    ap.add_argument("--size", type=image_size, default=256, help="side of the square images (default: 256)")
    ap.add_argument("--steps", type=positive_int, default=300, help="optimiser steps (default: 300)")
    ap.add_argument("--content-weight", type=float, default=1.0, help="α (default: 1)")
    ap.add_argument("--style-weight", type=float, help="β (default: 1e3 for imagenet, 1e8 for random)")
    ap.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default: lbfgs (Gatys)")
    ap.add_argument("--lr", type=positive_float, default=0.02, help="Adam's step on [0, 1] pixels (default: 0.02)")
    ap.add_argument("--init", choices=["content", "noise"], default="content", help="start image (default: content)")
    ap.add_argument("--weights", choices=["auto", "imagenet", "random"], default="auto",
                    help="loss network: VGG-19 with ImageNet weights, He et al.'s random VGG-19 (offline), or "
                         "auto: ImageNet where its weights can be had (default: auto)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--seed", type=seed_int, default=0, help="seed of the random network and noise (default: 0)")
    args = ap.parse_args(argv)
    if (args.content is None) != (args.style is None):
        ap.error("give both CONTENT and STYLE, or neither (the built-in pairs)")
    return args


def bytes_needed(size, steps, optimizer) -> float:
    """What one transfer at ``size``×``size`` holds in memory, roughly (the constants above)."""
    per_pixel = ACTIVATION_BYTES + (LBFGS_BYTES_PER_STEP * min(steps, 100) if optimizer == "lbfgs" else ADAM_BYTES)
    return BASE_BYTES + size * size * per_pixel


def available_bytes(device):
    """Memory free for this process on ``device`` (CUDA: the GPU's; CPU: Linux's MemAvailable), or None."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        line = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemAvailable"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        return None                                       # not Linux: no check


def check_memory(args, device) -> None:
    """Refuse, before any work, a --size whose transfer would not fit in memory; name the largest that fits."""
    free = available_bytes(device)
    if free is None or bytes_needed(args.size, args.steps, args.optimizer) <= free:
        return
    per_pixel = (bytes_needed(1000, args.steps, args.optimizer) - BASE_BYTES) / 1e6
    largest = int(((free - BASE_BYTES) / per_pixel) ** 0.5) // 16 * 16 if free > BASE_BYTES else 0
    raise SystemExit(f"--size {args.size} needs about {bytes_needed(args.size, args.steps, args.optimizer) / 1e9:.0f} "
                     f"GB with --optimizer {args.optimizer} and {free / 1e9:.1f} GB are free on the {device.type}: "
                     + (f"--size {largest} is the largest that fits." if largest >= MIN_SIDE else
                        "free some memory first."))


def output_path(out, pairs, content, style):
    """OUT for one pair; OUT_<content>+<style>.png for each of the built-in pairs."""
    return out if len(pairs) == 1 else out.with_name(f"{out.stem}_{content.split(':')[1]}+{style.split(':')[1]}.png")


def transfer(net, content, style, args, beta, desc):
    """stylize() with a progress bar; then the style loss per layer on the start and the result (eq. 3),
    and the measures of ``measures.py``. Returns (result, history, numbers)."""
    bar = progress(args.steps, desc=desc)

    def on_step(terms):
        bar.update()
        bar.set_postfix(total=f"{terms['total']:.3g}", content=f"{terms['content']:.3g}", style=f"{terms['style']:.3g}")
        return stop.requested

    with StopOnInterrupt("stopping after this step, keeping the image so far") as stop:
        out, history = stylize(net, content, style, args.steps, args.content_weight, beta, args.optimizer, args.lr,
                               args.init, on_step)
    bar.close()
    p, a = targets(net, content, style)
    with torch.no_grad():
        before, after = (losses(net, x, p, a, args.content_weight, beta) for x in (content, out))
    return out, history, dict(steps=len(history), stopped=stop.requested, style_loss_before={l: before[l].item() for l in net.style_layers},
                              style_loss_after={l: after[l].item() for l in net.style_layers},
                              content_loss_after=after["content"].item(),
                              **style_measures(content.cpu(), style.cpu(), out.cpu()))


@one_sentence_errors
def main(argv=None):
    args = parse(argv)
    pairs = [(args.content, args.style)] if args.content else list(DEMO_PAIRS)
    check_output(args.out)
    device = pick_device(args.device)
    check_memory(args, device)
    images = [[load_image(s, args.size) for s in pair] for pair in pairs]      # bad images stop us here
    seed_everything(args.seed)
    weights, imagenet = imagenet_or_random(args.weights)
    beta = STYLE_WEIGHT[weights] if args.style_weight is None else args.style_weight
    name = "ImageNet VGG-19" if weights == "imagenet" else "random VGG-19 (He et al. 2016), not ImageNet"

    records = []
    for (content_spec, style_spec), (content, style) in zip(pairs, images):
        content, style = content.to(device), style.to(device)
        net = (imagenet or random_vgg19(torch.cat([content, style]), args.seed)).to(device)  # He et al.: per pair
        out, history, numbers = transfer(net, content, style, args, beta, f"{content_spec} + {style_spec}")
        path = output_path(args.out, pairs, content_spec, style_spec)
        Image.fromarray((out[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)).save(path)
        print(f"{content_spec} + {style_spec}: colour distance to the style {numbers['colour_content']:.3f} → "
              f"{numbers['colour_result']:.3f}, texture {numbers['texture_content']:.4f} → "
              f"{numbers['texture_result']:.4f}, edge SSIM with the content {numbers['edge_ssim_result']:.3f} "
              f"(style image: {numbers['edge_ssim_style']:.3f}); wrote {path}")
        records.append(dict(content=content_spec, style=style_spec, result=str(path), weights=weights,
                            alpha=args.content_weight, beta=beta, layers=net.style_layers, **numbers,
                            history=history, images=[content, style, out]))
        if numbers["stopped"]:
            print(f"\nstopped by Ctrl-C after {len(history)} of {args.steps} steps: the image so far is in {path}")
            raise SystemExit(130)

    stem = args.out.with_suffix("")
    figure, measures = Path(f"{stem}_figure.png"), Path(f"{stem}_measures.json")
    save_figure(records, figure, f"Fig. 4.1.1 with {name}, {args.size} px, {args.optimizer}")
    measures.write_text(json.dumps([{k: v for k, v in r.items() if k not in ("history", "images")}
                                    for r in records], indent=1))
    print(f"{name}: wrote {figure} and {measures}")
    return records


if __name__ == "__main__":
    main()
