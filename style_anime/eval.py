"""Evaluate a trained anime DCGAN (§IV.I–J).

    python style_anime/eval.py --run runs/style_anime/quick

Writes into the run folder:
- ``figures/fig4_2_4_losses.png``: discriminator and generator loss against iterations (Fig. 4.2.4),
  from ``log.csv``, with a moving average;
- ``figures/fig4_2_5_samples.png``: a grid of generated faces (Fig. 4.2.5), next to a row of
  the held-out faces they are measured against;
- ``metrics.json``: FID of generated faces against held-out anime faces, named by its feature
  extractor, the FID logged at step 0 for comparison, and real-vs-real FID (the floor).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common.metrics import fid
from common.plots import plot_losses, save_image_rows
from common.run import read_log
from common.synthnet import SyntheticFeatures
from style_anime.model import Generator
from style_anime.train import load_faces


def load_generator(run):
    """The trained G of a run folder, its fixed noise, config and step."""
    config = json.loads((run / "config.json").read_text())
    G = Generator(config["size"], config["z"], config["width"], slope=config["slope"])
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    G.load_state_dict(state["models"]["G"])
    return G.eval(), state["extra"]["fixed_q"], config, state["step"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="run folder with checkpoint.pt")
    args = ap.parse_args(argv)
    if not (args.run / "checkpoint.pt").exists():
        raise SystemExit(f"{args.run} has no checkpoint.pt: train first (python style_anime/train.py --out {args.run}).")
    G, fixed_q, config, step = load_generator(args.run)
    with torch.no_grad():
        fakes = G(fixed_q).clamp(-1, 1)                      # the same noise the run sampled and measured
    # held-out faces as in training; the first training faces give the real-vs-real floor
    train_faces, held_out = load_faces(argparse.Namespace(**dict(config, train_faces=config["fid_faces"])))
    extractor = SyntheticFeatures()
    log = read_log(args.run / "log.csv")
    fid_step0 = next((f for s, f in zip(log["step"], log["fid"]) if s == 0), None)
    metrics = {
        "step": step,
        "fid_extractor": extractor.name,
        "fid": fid(fakes, held_out, extractor),
        "fid_step0": fid_step0,
        "fid_train_vs_held_out": fid(train_faces[:len(held_out)], held_out, extractor),
        "faces": len(held_out),
        "data": config["data"] or "built-in anime faces (common.synthetic, seed 0)",
    }
    (args.run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    figures = args.run / "figures"
    plot_losses(log, figures / "fig4_2_4_losses.png", columns=[("loss_D", "loss_G")], smooth=10,
                title="Fig. 4.2.4: discriminator and generator loss during training")
    generated = [fakes[i:i + 8] for i in range(0, min(48, len(fakes)), 8)]
    save_image_rows([held_out[:8]] + generated, figures / "fig4_2_5_samples.png",
                    row_labels=["held-out real"] + ["generated"] * len(generated), scale=max(1, 64 // config["size"]),
                    title=f"Fig. 4.2.5: generated anime faces, step {step} (FID {metrics['fid']:.1f}, {extractor.name})")
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.run / 'metrics.json'}, {figures}/fig4_2_4_losses.png and fig4_2_5_samples.png")
    return metrics


if __name__ == "__main__":
    main()
