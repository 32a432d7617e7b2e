"""Evaluate High-to-Low + Low-to-High against bicubic baselines on held-out built-in faces (§XI–XII).

    python sr_degradation/eval.py --run runs/sr_degradation/l2h --bicubic-run runs/sr_degradation/bicubic
    python sr_degradation/eval.py --run runs/sr_degradation/l2h runs/sr_degradation/ft --bicubic-run … --out DIR

``--run``: stage-2 or fine-tune runs (they hold a High-to-Low and a Low-to-High);
``--bicubic-run``: Low-to-High trained on bicubic pairs (the SRGAN-style baseline).
On held-out faces (seed 1: 500 clean HR faces and 500 real LR faces of other people) it writes
- Table 2: FID (synthetic-v1) of super-resolved *real* LR faces against the HR faces, and PSNR /
  SSIM on *bicubic*-downsampled HR faces, beside the paper's numbers (``table2.md``, ``table2.png``);
- the degradation check: High-to-Low outputs next to real LR faces, and FID(H2L(HR), real LR) against
  FID(bicubic(HR), real LR) (``degradation.png``);
- Table 1 / Fig. 5: generator loss against iterations and iterations against time (``table1_fig5_curves.png``);
- failures (§XII): the outputs where dlib finds no face, and their fraction (``failures.png``);
- everything in ``metrics.json``.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from common import synthetic
from common.data import to_float
from common.metrics import MetricUnavailable, detect_faces, fid, psnr, ssim
from common.plots import grouped_bars, markdown_table, save_image_rows
from common.run import read_log
from common.synthnet import SyntheticFeatures
from sr_degradation.model import HighToLow, LowToHigh
from sr_degradation.train import NOISE_DIM, TEST_SEED, bicubic_down

# Table 2 of the paper (FID on its 3,000 real Widerface LR faces; PSNR on bilinearly downsampled LS3D-W).
PAPER_TABLE2 = {"SRGAN": (104.80, 23.19), "CycleGAN": (19.01, 16.10), "Low-to-High": (85.59, 23.50),
                "High-to-Low+Low-to-High": (87.91, 23.22), "Ours": (15.20, 18.40)}
PAPER_FAILURES = 0.10        # §XII: "about 10%" of the test set


def load_networks(run):
    """{"L2H": …, "H2L": … (when the run has one)}, in eval mode, with the run's config and step."""
    config = json.loads((run / "config.json").read_text())
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    nets = {"L2H": LowToHigh(config["l2h_width"], config["l2h_blocks"])}
    nets["L2H"].load_state_dict(state["models"]["L2H"])
    h2l_state = state["models"].get("H2L")
    if h2l_state is None and config["degradation"] == "h2l":
        h2l_state = torch.load(Path(config["h2l_run"]) / "checkpoint.pt", weights_only=False)["models"]["H2L"]
    if h2l_state is not None:
        nets["H2L"] = HighToLow(config["h2l_width"], config["h2l_blocks"], NOISE_DIM, config["size"])
        nets["H2L"].load_state_dict(h2l_state)
    return {k: v.eval() for k, v in nets.items()}, config, state["step"]


def bicubic_up(lr, factor=4):
    return F.interpolate(lr, scale_factor=factor, mode="bicubic", align_corners=False).clamp(-1, 1)


def no_face(images):
    """bool per image: dlib finds no face (None when dlib is missing)."""
    try:
        return ~detect_faces(images)
    except MetricUnavailable as err:
        print(f"face detection skipped: {err}")
        return None


def curves(logs, path):
    """Table 1 / Fig. 5: generator loss against iterations, iterations against wall time."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, log in logs.items():
        axes[0].plot(*zip(*[(s, g) for s, g in zip(log["step"], log["loss_G"]) if g == g]), label=label)
        axes[1].plot([t / 60 for t in log["time_s"]], log["step"], label=label)
    axes[0].set(title="Table 1: generator loss α·pixel + β·GAN", xlabel="generator iteration", ylabel="loss_G")
    axes[1].set(title="Fig. 5: iterations against time (2-core CPU)", xlabel="minutes", ylabel="generator iteration")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table1(log, rows=6):
    """The paper's Table 1 columns (iteration, loss, time) at evenly spaced logged steps."""
    logged = [(s, g, t) for s, g, t in zip(log["step"], log["loss_G"], log["time_s"]) if g == g]
    picks = sorted({round(i * (len(logged) - 1) / (rows - 1)) for i in range(rows)})
    return [{"iteration": int(logged[i][0]), "loss_G": logged[i][1], "time_min": logged[i][2] / 60} for i in picks]


@torch.no_grad()
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, nargs="+", required=True, help="stage-2 (l2h) or finetune run folder(s): ours")
    ap.add_argument("--bicubic-run", type=Path, help="stage-2 run trained with --degradation bicubic (baseline)")
    ap.add_argument("--out", type=Path, help="where metrics.json and figures/ go (default: the first --run)")
    ap.add_argument("--faces", type=int, default=500, help="held-out HR faces and real LR faces")
    args = ap.parse_args(argv)
    figures = (args.out or args.run[0]) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for run in args.run + ([args.bicubic_run] if args.bicubic_run else []):
        if not (run / "checkpoint.pt").exists():
            raise SystemExit(f"{run} has no checkpoint.pt: train it first (see python sr_degradation/train.py --help)")

    ours = {}
    for run in args.run:
        nets, config, step = load_networks(run)
        if "H2L" not in nets:
            raise SystemExit(f"{run} was trained on bicubic pairs: pass it as --bicubic-run")
        ours[f"H2L+L2H ({config['stage']}, step {step})"] = (nets, config, run)
    size = next(iter(ours.values()))[1]["size"]
    hr_u8, lr_u8 = synthetic.sr_unpaired(args.faces, args.faces, size, size // 4, seed=TEST_SEED)
    hr, real_lr = to_float(hr_u8), to_float(lr_u8)
    bic_lr = bicubic_down(hr)                                   # the paired, synthetic LR of Table 2(b)
    other_hr = to_float(synthetic.faces(args.faces, size, "photo", seed=0))      # training faces: an FID floor
    extractor = SyntheticFeatures()
    fid_name = f"fid_{extractor.name}"

    # Table 2: super-resolve real LR (FID) and bicubic LR (PSNR, SSIM) with every method.
    methods = {"bicubic upsampling": bicubic_up}
    if args.bicubic_run:
        methods["L2H trained on bicubic pairs"] = load_networks(args.bicubic_run)[0]["L2H"]
    methods.update({name: nets["L2H"] for name, (nets, _, _) in ours.items()})
    table2, sr_real = {}, {}
    for name, method in methods.items():
        sr_real[name], sr_bic = method(real_lr).clamp(-1, 1), method(bic_lr).clamp(-1, 1)
        table2[name] = {fid_name: fid(sr_real[name], hr, extractor), "psnr_db": psnr(sr_bic, hr).mean().item(),
                        "ssim": ssim(sr_bic, hr).mean().item()}
    table2["HR training faces (FID floor)"] = {fid_name: fid(other_hr, hr, extractor)}

    # Failures (§XII): super-resolved real LR faces in which dlib finds no face.
    misses = {name: no_face(images) for name, images in {"HR test faces": hr, **sr_real}.items()}
    for name, miss in misses.items():
        if miss is not None:
            table2.setdefault(name, {})["no_face_fraction"] = miss.float().mean().item()

    # Is the learned degradation real? FID of degraded HR faces against real LR faces.
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(args.faces, NOISE_DIM, generator=g), torch.randn(args.faces, NOISE_DIM, generator=g)
    degradation = {"bicubic(HR) vs real LR": fid(bic_lr, real_lr, extractor),
                   "real LR (training people) vs real LR": fid(to_float(synthetic.sr_unpaired(
                       1, args.faces, size, size // 4, seed=0)[1]), real_lr, extractor)}
    for name, (nets, _, _) in ours.items():
        degradation[f"H2L(HR) vs real LR, {name}"] = fid(nets["H2L"](hr, z1), real_lr, extractor)
    nets = next(iter(ours.values()))[0]
    save_image_rows([hr[:8], nets["H2L"](hr[:8], z1[:8]), nets["H2L"](hr[:8], z2[:8]), bic_lr[:8], real_lr[:8]],
                    figures / "degradation.png", scale=2,
                    row_labels=["HR (held out)", "High-to-Low, noise 1", "High-to-Low, noise 2", "bicubic(HR)",
                                "real LR (other people)"],
                    title="Learned degradation vs real LR faces")

    # Table 2 figure, with Fig.-style examples: real LR → each method.
    grouped_bars({"FID (synthetic-v1), real LR": {n: r[fid_name] for n, r in table2.items() if n in methods},
                  "PSNR (dB), bicubic LR": {n: r["psnr_db"] for n, r in table2.items() if n in methods}},
                 figures / "table2.png", ylabel="value", title="Table 2 on the built-in faces")
    save_image_rows([real_lr[:8]] + [sr_real[n][:8] for n in methods] + [hr[:8]],
                    figures / "super_resolution.png", scale=2,
                    row_labels=["real LR input"] + list(methods) + ["HR (other people)"],
                    title="Super-resolving real LR faces")

    name = list(ours)[-1]
    miss = misses[name]
    failures = {"paper_fraction": PAPER_FAILURES}
    if miss is not None:
        idx = miss.nonzero().flatten()[:8]
        failures.update(fraction=miss.float().mean().item(), shown=len(idx), method=name)
        if len(idx):
            save_image_rows([real_lr[idx], sr_real[name][idx]], figures / "failures.png", scale=2,
                            row_labels=["real LR input", "no face found"], title=f"Failures of {name}")

    # Table 1 / Fig. 5 from the logs: stage 1, each stage-2 / fine-tune run, the baseline.
    logs = {}
    for name, (_, config, run) in ours.items():
        if config.get("h2l_run"):
            logs["stage 1: High-to-Low"] = read_log(Path(config["h2l_run"]) / "log.csv")
        logs[f"{config['stage']}: {run.name}"] = read_log(run / "log.csv")
    if args.bicubic_run:
        logs["baseline: L2H on bicubic"] = read_log(args.bicubic_run / "log.csv")
    curves(logs, figures / "table1_fig5_curves.png")

    metrics = {"feature_extractor": extractor.name, "faces": args.faces, "table2": table2,
               "paper_table2": {n: {"fid": f, "psnr_db": p} for n, (f, p) in PAPER_TABLE2.items()},
               "degradation_fid": degradation, "failures": failures,
               "table1": {name: table1(log) for name, log in logs.items()}}
    (figures.parent / "metrics.json").write_text(json.dumps(metrics, indent=2))
    text = ("## Table 2 on the built-in faces\n\n"
            + markdown_table([{"method": n, **r} for n, r in table2.items()],
                             ["method", fid_name, "psnr_db", "ssim", "no_face_fraction"])
            + "\n\n## Table 2 of the paper\n\n"
            + markdown_table([{"method": n, "fid": f, "psnr_db": p} for n, (f, p) in PAPER_TABLE2.items()],
                             floatfmt=".2f")
            + "\n\n## Degradation: FID against real LR faces\n\n"
            + markdown_table([{"pair": n, fid_name: v} for n, v in degradation.items()]) + "\n")
    (figures / "table2.md").write_text(text)
    print(text)
    print(f"failures: {failures}\nwrote {figures.parent / 'metrics.json'} and {figures}/")
    return metrics


if __name__ == "__main__":
    main()
