"""One picture of all five papers' results, drawn from the shipped networks (``<paper>/weights/``).

    python -m tools.gallery                     # docs/gallery.png, in a few seconds on a CPU

One panel per paper, from faces none of the networks trained on: the refiner's input and output
(began_refiner B), samples of "our model" (dcgan_celeba), real low-quality faces and their
super-resolution (sr_degradation, fine-tuned pipeline), renders and the near-infrared faces drawn
for them (nir_cgan) and anime faces (style_anime). Each title gives the FID its ``eval.py``
measured on the same shipped network (the manifest's ``eval`` numbers).
"""
import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt                                  # noqa: E402
import torch                                                     # noqa: E402
from torchvision.utils import make_grid                          # noqa: E402

from common.cli import one_sentence_errors                       # noqa: E402
from common.manifest import PAPERS, read_manifest                # noqa: E402

N = 8           # faces per panel row


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
    fig, axes = plt.subplots(len(PAPERS), 1, figsize=(8, 2.15 * len(PAPERS)), dpi=110)
    for ax, paper in zip(axes, PAPERS):
        with torch.no_grad():
            rows, name, caption = importlib.import_module(f"{paper}.paper").gallery_panel(N)
        ax.imshow(panel_image(rows).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{caption}; {headline(paper, name)}", fontsize=8)
        ax.axis("off")
    fig.suptitle("the shipped networks (trained on a CPU, built-in synthetic faces; unseen inputs)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs/gallery.png"),
                    help="the picture to write (a .png file; a folder gets gallery.png inside it)")
    args = ap.parse_args(argv)
    out = args.out / "gallery.png" if args.out.is_dir() else args.out
    if out.suffix.lower() != ".png":
        ap.error(f"--out {args.out}: give a .png file or an existing folder")
    print(f"wrote {draw(out)}")


if __name__ == "__main__":
    main()
