"""Evaluate refiners (and the noise baseline) on synthetic faces they never saw (§3).

    python began_refiner/eval.py   # the shipped networks, no training needed
    python began_refiner/eval.py --run runs/began_refiner/B
    python began_refiner/eval.py --run RUN_A RUN_B RUN_C RUN_BEGAN --out runs/began_refiner/compare

For each run: refine 500 unseen ``render``-style faces (their downscaled copies are the
input) and measure
- realism (Fig. 4; the paper asked 100 people): FID of the outputs against 500 held-out
  real faces, and the face-detection rate (dlib, when installed);
- similarity to the input (Fig. 5; the paper used a face-comparison web service): the
  head pose and gaze error in degrees, and the identity similarity, both read by the
  synthetic-face network;
- sharpness (are the outputs blurred?): mean |Laplacian| of the outputs divided by that of the
  held-out real faces (1 = as much fine detail as real photos; noise counts as detail too).
Writes ``metrics.json`` and, in ``figures/``, ``fig3_refinements.png``, ``fig4_realism.png``,
``fig5_similarity.png`` and ``convergence.png`` (M and FID against steps, from each run's log.csv), into
--out (default: the run folder for one run, runs/began_refiner/compare for several; nothing else goes into
a run folder). Without --run it evaluates the networks shipped in began_refiner/weights/ (refiners A, B,
C and the noise BEGAN, G only: see weights/manifest.json for how each was trained) into
runs/began_refiner/shipped, with the same inputs and numbers as --run.
FID compares with the real faces the runs held out from training: built-in photos, or the last
``--fid-faces`` images of their --data folder.
"""
import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from began_refiner.data import held_out_faces, synthetic_inputs
from began_refiner.model import REFINERS, build, image_pyramid
from began_refiner.paper import SHIPPED
from common.checkpoints import held_out_of, load_networks, runs_to_evaluate
from common.cli import at_least, one_sentence_errors
from common.csvlog import read_log
from common.folders import check_out, eval_folder
from common.metrics import FidReference, MetricUnavailable, face_detection_rate, sharpness
from common.plots import grouped_bars, markdown_table, save_image_rows
from common.synthnet import SyntheticFeatures, identity_similarity, load_synthnet, pose_gaze_error


def load_generator(run):
    """The trained G of a run folder (``common.checkpoints.load_networks``), with the run's checkpoint."""
    networks, checkpoint = load_networks(run, "began_refiner", build, names=["G"])
    return networks["G"], checkpoint


@torch.no_grad()
def refine(G, model_args, inputs, seed=0):
    """Refined inputs for a refiner; samples from fixed noise for the noise baseline."""
    if model_args["generator"] in REFINERS:
        return G(image_pyramid(inputs, G.inputs, model_args["lowest"])).clamp(-1, 1)
    z = torch.rand(len(inputs), model_args["h"], generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return G(z).clamp(-1, 1)


@torch.no_grad()
def golden_output(folder):
    """A run folder's networks on fixed inputs, for ``tools.ship.fingerprint`` (the golden test of
    the shipped networks): float32 on the CPU, in eval mode, no autocast, not clamped.

    The inputs are 4 fixed-seed noise images in [-1, 1] (not rendered faces, so that a change of
    the face renderer does not move the fingerprint): a refiner G gets their pyramid, the noise G 4
    fixed-seed z, a shipped D reconstructs the images. Returns the outputs concatenated, (4·k, 3, size, size).
    """
    networks, checkpoint = load_networks(folder, "began_refiner", build)
    model_args = checkpoint["model_args"]
    seeded = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, model_args["size"], model_args["size"], generator=seeded) * 2 - 1
    z = torch.rand(4, model_args["h"], generator=seeded) * 2 - 1
    outputs = []
    for name, net in sorted(networks.items()):
        net.float()
        if name == "D":
            outputs.append(net(images))
        elif model_args["generator"] in REFINERS:
            outputs.append(net(image_pyramid(images, net.inputs, model_args["lowest"])))
        else:
            outputs.append(net(z))
    return torch.cat(outputs)


def detection_rate(images):
    try:
        return face_detection_rate(images)
    except MetricUnavailable as err:
        print(f"face-detection rate skipped: {err}")
        return None


def convergence_figure(runs, path):
    """M and FID against training steps, one line per run (the 'trains faster' claim)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, run in runs.items():
        if not (run / "log.csv").exists():
            print(f"convergence.png: {run} has no log.csv, so it is left out")
            continue
        log = read_log(run / "log.csv")
        steps = log["step"]
        m = [(s, v) for s, v in zip(steps, log["M"]) if not math.isnan(v)]
        axes[0].plot(*zip(*m), label=label)
        f = [(s, v) for s, v in zip(steps, log.get("fid", [])) if not math.isnan(v)]
        if f:
            axes[1].plot(*zip(*f), marker="o", label=label)
    axes[0].set(title="convergence measure M", xlabel="step")
    axes[1].set(title="FID (synthetic-v1) of outputs on unseen inputs", xlabel="step")
    for ax in axes:
        if ax.lines:                                 # a run without log.csv draws nothing
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, nargs="+",
                    help="run folder(s) with checkpoint.pt (default: the networks shipped in began_refiner/weights/: "
                         f"{', '.join(SHIPPED)})")
    ap.add_argument("--out", help="where metrics.json and figures/ go (default: the run folder, or "
                                  "runs/began_refiner/compare for several runs, or runs/began_refiner/shipped without "
                                  "--run); nothing is written into the runs")
    ap.add_argument("--faces", type=at_least(2), default=500, help="unseen synthetic inputs and held-out real faces")
    return ap.parse_args(argv)


def load_generators(runs) -> dict:
    """``{label: (G, checkpoint, run)}``: each run's G, labelled by its model (A, B, C, "BEGAN (noise)")."""
    generators = {}
    for run in runs:
        G, checkpoint = load_generator(run)
        label = checkpoint["model_args"]["generator"] if checkpoint["model_args"]["generator"] != "began" \
            else "BEGAN (noise)"
        if label in generators:                                  # e.g. two baselines: tell them apart
            label = f"{label} {run.name}"
        generators[label] = (G, checkpoint, run)
    sizes = {(c["model_args"]["size"], c["model_args"]["lowest"]) for _, c, _ in generators.values()}
    if len(sizes) > 1:
        raise SystemExit(f"these runs were trained at different sizes (size, lowest) {sorted(sizes)}: "
                         f"evaluate runs of one size together.")
    return generators


def measure(outputs: dict, generators: dict, inputs, params, real) -> dict:
    """Fig. 4 and 5's numbers for each set of outputs (the synthetic inputs themselves included)."""
    reference, net = FidReference(real, SyntheticFeatures()), load_synthnet()
    real_sharpness = sharpness(real).mean().item()
    metrics = {}
    for name, images in outputs.items():
        measured = reference(images)
        row = {"fid_synthetic-v1": measured["fid"], "diversity": measured["diversity"],
               "sharpness": sharpness(images).mean().item() / real_sharpness,
               "face_detection_rate": detection_rate(images)}
        if not name.startswith("BEGAN (noise)"):
            errors = pose_gaze_error(images, params, net)
            row.update({f"{k}_error_deg": v for k, v in errors.items()},
                       identity_similarity=identity_similarity(images, inputs, net).mean().item())
        if name in generators:
            row["step"] = generators[name][1]["step"]
        metrics[name] = row
    return metrics


def draw_figures(figures: Path, outputs: dict, metrics: dict, generators: dict, lowest: int) -> None:
    """Fig. 3 (refinements), Fig. 4 (realism), Fig. 5 (similarity) and the convergence curves."""
    inputs, size = outputs["synthetic input"], outputs["synthetic input"].shape[-1]
    refiners = [name for name in generators if name in REFINERS]
    low = F.interpolate(F.interpolate(inputs[:6], size=lowest, mode="area"), size=size, mode="nearest")
    rows = [torch.stack([inputs[i], low[i]] + [outputs[name][i] for name in refiners]) for i in range(6)]
    save_image_rows(rows, figures / "fig3_refinements.png", scale=max(1, 96 // size),
                    col_labels=["synthetic", f"{lowest}×{lowest} input"] + [f"model {n}" for n in refiners],
                    title="Fig. 3: refinements of unseen synthetic faces")
    grouped_bars({"FID (synthetic-v1)": {n: r["fid_synthetic-v1"] for n, r in metrics.items()},
                  "faces detected (%)": {n: 100 * r["face_detection_rate"] for n, r in metrics.items()
                                         if r["face_detection_rate"] is not None}},
                 figures / "fig4_realism.png", ylabel="value", title="Fig. 4: realism (lower FID, more detections)")
    grouped_bars({"yaw error (°)": {n: r["yaw_error_deg"] for n, r in metrics.items() if "yaw_error_deg" in r},
                  "pitch error (°)": {n: r["pitch_error_deg"] for n, r in metrics.items() if "yaw_error_deg" in r},
                  "identity similarity (×10)": {n: 10 * r["identity_similarity"] for n, r in metrics.items()
                                                if "identity_similarity" in r}},
                 figures / "fig5_similarity.png", ylabel="value", title="Fig. 5: similarity to the input")
    convergence_figure({name: run for name, (_, _, run) in generators.items()}, figures / "convergence.png")


@one_sentence_errors
def main(argv=None):
    args = parse(argv)
    check_out(args.out)                                  # a bad --out stops before any work
    runs, shipped_out = runs_to_evaluate(args.run, "began_refiner", SHIPPED)
    generators = load_generators(runs)
    (size, lowest), = {(c["model_args"]["size"], c["model_args"]["lowest"]) for _, c, _ in generators.values()}
    data, n_real = held_out_of([c["config"] for _, c, _ in generators.values()], args.faces)
    out = eval_folder(args.out, shipped_out or (runs[0] if len(runs) == 1 else "runs/began_refiner/compare"))
    figures = out / "figures"
    figures.mkdir(exist_ok=True)

    inputs, params = synthetic_inputs(size, args.faces, with_params=True)
    outputs = {"synthetic input": inputs}
    outputs.update({name: refine(G, c["model_args"], inputs) for name, (G, c, _) in generators.items()})
    metrics = measure(outputs, generators, inputs, params, held_out_faces(data, size, n_real))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    draw_figures(figures, outputs, metrics, generators, lowest)

    columns = ["model", "step", "fid_synthetic-v1", "diversity", "sharpness", "face_detection_rate", "yaw_error_deg",
               "pitch_error_deg", "gaze_yaw_error_deg", "identity_similarity"]
    print(markdown_table([{"model": n, **r} for n, r in metrics.items()], columns))
    print(f"\nwrote {out / 'metrics.json'} and {figures}/fig3_refinements.png, fig4_realism.png, "
          f"fig5_similarity.png, convergence.png")
    return metrics

if __name__ == "__main__":
    main()
