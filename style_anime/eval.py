"""Evaluate a trained anime DCGAN (§IV.I–J).

    python style_anime/eval.py                                # the shipped networks, no training needed
    python style_anime/eval.py --run runs/style_anime/quick    # a run of yours

Without ``--run`` it evaluates the generator shipped in ``style_anime/weights/dcgan/`` (how it was
trained: ``style_anime/weights/manifest.json``) into ``runs/style_anime/shipped``.

Writes into --out (default: the run folder, or runs/style_anime/shipped; nothing else is written into a
run folder, and nothing ever into weights/):
- ``figures/fig4_2_4_losses.png``: discriminator and generator loss against iterations (Fig. 4.2.4),
  from ``log.csv``, with a moving average;
- ``figures/fig4_2_5_samples.png``: a grid of generated faces (Fig. 4.2.5), next to a row of
  the held-out faces they are measured against;
- ``metrics.json``: FID of generated faces against held-out anime faces, named by its feature
  extractor, the FID logged at step 0 for comparison, and real-vs-real FID (the floor).
A run folder that holds only ``checkpoint.pt`` is evaluated too: the loss figure and the
step-0 FID, which need ``log.csv``, are left out with a printed note.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common.checkpoints import load_networks, runs_to_evaluate
from common.cli import one_sentence_errors
from common.csvlog import read_log
from common.folders import eval_folder
from common.metrics import FidReference, fid
from common.plots import plot_losses, save_image_rows
from common.synthnet import SyntheticFeatures
from style_anime.data import load_faces
from style_anime.model import build
from style_anime.paper import SHIPPED

PAPER = "style_anime"


def load_generator(run):
    """The trained G of a run folder (``common.checkpoints.load_networks``), its fixed noise, config and step."""
    networks, checkpoint = load_networks(run, PAPER, build, names=["G"])
    return networks["G"], checkpoint["extra"]["fixed_q"], checkpoint["config"], checkpoint["step"]


def golden_output(folder) -> torch.Tensor:
    """G of a run or shipped folder on 4 fixed noise vectors (seed 0): CPU, float32, eval mode, no
    autocast. ``tools.ship.fingerprint`` records its sums; the golden test compares them."""
    G = load_generator(folder)[0].float()
    q = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return G(q)


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="run folder with checkpoint.pt (default: the shipped networks, "
                                             "style_anime/weights/dcgan)")
    ap.add_argument("--out", help="where metrics.json and figures/ go (default: the run folder, or "
                                  "runs/style_anime/shipped for the shipped networks)")
    args = ap.parse_args(argv)
    (run,), shipped_out = runs_to_evaluate([args.run] if args.run else None, PAPER, SHIPPED)
    G, fixed_q, config, step = load_generator(run)
    out = eval_folder(args.out, shipped_out or run)
    with torch.no_grad():
        fakes = G(fixed_q).clamp(-1, 1)                      # the same noise the run sampled and measured
    # held-out faces as in training; the first training faces give the real-vs-real floor
    train_faces, held_out = load_faces(config["data"], config["size"], config["fid_faces"], config["fid_faces"],
                                       config["batch_size"])
    extractor = SyntheticFeatures()
    log = read_log(run / "log.csv") if (run / "log.csv").exists() else None
    if log is None:
        print(f"{run} has no log.csv: fig4_2_4_losses.png and the step-0 FID are left out")
    fid_step0 = next((f for s, f in zip(log["step"], log.get("fid", [])) if s == 0), None) if log else None
    measured = FidReference(held_out, extractor)(fakes)
    metrics = {
        "step": step,
        "fid_extractor": extractor.name,
        "fid": measured["fid"],
        "diversity": measured["diversity"],          # 1 = as diverse as held-out faces, 0 = one image
        "fid_step0": fid_step0,
        "fid_train_vs_held_out": fid(train_faces[:len(held_out)], held_out, extractor),
        "faces": len(held_out),
        "data": config["data"] or "built-in anime faces (common.synthetic, seed 0)",
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    figures = out / "figures"
    written = []
    if log is not None:
        plot_losses(log, figures / "fig4_2_4_losses.png", columns=[("loss_D", "loss_G")], smooth=10,
                    title="Fig. 4.2.4: discriminator and generator loss during training")
        written.append("fig4_2_4_losses.png")
    generated = [fakes[i:i + 8] for i in range(0, min(48, len(fakes)), 8)]
    save_image_rows([held_out[:8]] + generated, figures / "fig4_2_5_samples.png",
                    row_labels=["held-out real"] + ["generated"] * len(generated), scale=max(1, 64 // config["size"]),
                    title=f"Fig. 4.2.5: generated anime faces, step {step} (FID {metrics['fid']:.1f}, {extractor.name})")
    written.append("fig4_2_5_samples.png")
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out / 'metrics.json'} and, in {figures}: {', '.join(written)}")
    return metrics


if __name__ == "__main__":
    main()
