"""One picture of all five papers' results, drawn from the shipped networks (``<paper>/weights/``).

    python -m tools.gallery                     # docs/gallery.png, in a few seconds on a CPU

One panel per paper, from faces none of the networks trained on: the refiner's input and output
(began_refiner B), samples of "our model" (dcgan_celeba), real low-quality faces and their
super-resolution (sr_degradation, fine-tuned pipeline), renders and the near-infrared faces drawn
for them (nir_cgan) and anime faces (style_anime). Each title gives the FID its ``eval.py``
measured on the same shipped network (the manifest's ``eval`` numbers).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt                                  # noqa: E402
import torch                                                     # noqa: E402
from torchvision.utils import make_grid                          # noqa: E402

from common.data import to_float                                 # noqa: E402
from common.manifest import read_manifest, weights_folder        # noqa: E402
from common.checkpoints import load_networks

N = 8           # faces per panel row


def began_refiner():
    from began_refiner.data import synthetic_inputs
    from began_refiner.model import build, image_pyramid
    nets, checkpoint = load_networks(weights_folder("began_refiner") / "B", "began_refiner", build, ["G"])
    args = checkpoint["model_args"]
    x = synthetic_inputs(args["size"], N)
    return [x, nets["G"](image_pyramid(x, nets["G"].inputs, args["lowest"]))], "B", \
        "began_refiner, model B: synthetic renders (top) refined into photo-like faces (bottom)"


def dcgan_celeba():
    from dcgan_celeba.data import noise
    from dcgan_celeba.model import build
    nets, checkpoint = load_networks(weights_folder("dcgan_celeba") / "ours", "dcgan_celeba", build, ["G"])
    z = noise(2 * N, checkpoint["model_args"]["z_dim"], "cpu", torch.Generator().manual_seed(0))
    samples = nets["G"](z)
    return [samples[:N], samples[N:]], "ours", "dcgan_celeba, \"our model\" (BEGAN-style): faces from noise"


def sr_degradation():
    from sr_degradation.data import held_out_set
    from sr_degradation.model import bicubic_up, build
    folder = weights_folder("sr_degradation") / "pipeline" / "finetune"
    nets, checkpoint = load_networks(folder, "sr_degradation", build, ["L2H"])
    low = to_float(held_out_set("real LR", None, checkpoint["config"]["size"], N))
    return [bicubic_up(low), nets["L2H"](low)], "pipeline", \
        "sr_degradation: real low-quality faces (top, enlarged bicubically) super-resolved by Low-to-High (bottom)"


def nir_cgan():
    from nir_cgan.data import load_pairs
    from nir_cgan.model import build
    nets, checkpoint = load_networks(weights_folder("nir_cgan") / "quick", "nir_cgan", build)
    config = checkpoint["config"]
    _, test = load_pairs(None, config["size"], config["pairs"])
    source = to_float(test["source"][:N])
    z = torch.randn(N, config["z_dim"], generator=torch.Generator().manual_seed(0))
    s = nets["L"](z) if "L" in nets else z
    return [source, nets["G"](source, s).expand(-1, 3, -1, -1)], "quick", \
        "nir_cgan: colour-coded renders (top) turned into near-infrared faces (bottom)"


def style_anime():
    from style_anime.model import build
    nets, checkpoint = load_networks(weights_folder("style_anime") / "dcgan", "style_anime", build, ["G"])
    q = checkpoint["extra"]["fixed_q"][:2 * N]
    samples = nets["G"](q)
    return [samples[:N], samples[N:]], "dcgan", "style_anime: the anime-face DCGAN's samples"


PANELS = {"began_refiner": began_refiner, "dcgan_celeba": dcgan_celeba, "sr_degradation": sr_degradation,
          "nir_cgan": nir_cgan, "style_anime": style_anime}


def headline(paper, name) -> str:
    """``FID x`` from the manifest's eval numbers of that shipped network."""
    value = read_manifest(paper).get(name, {}).get("eval", {}).get("fid")
    return f"FID {value:.1f}" if value is not None else "FID not recorded"


def panel_image(rows) -> torch.Tensor:
    """Rows of images (each N×C×H×W in [−1, 1], resized to one size) as one grid image in [0, 1]."""
    side = max(r.shape[-1] for r in rows)
    rows = [torch.nn.functional.interpolate(r.float(), size=(side, side), mode="nearest") for r in rows]
    return make_grid(torch.cat(rows).clamp(-1, 1) * 0.5 + 0.5, nrow=N, padding=2, pad_value=1.0)


def draw(out: Path) -> Path:
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(8, 2.15 * len(PANELS)), dpi=110)
    for ax, (paper, make) in zip(axes, PANELS.items()):
        with torch.no_grad():
            rows, name, caption = make()
        ax.imshow(panel_image(rows).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{caption}; {headline(paper, name)}", fontsize=8)
        ax.axis("off")
    fig.suptitle("the shipped networks (trained on a CPU, built-in synthetic faces; unseen inputs)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs/gallery.png"), help="the picture to write")
    args = ap.parse_args(argv)
    print(f"wrote {draw(args.out)}")


if __name__ == "__main__":
    main()
