"""Compare DCGAN, WGAN and began (the paper's "our model") as the paper does (§4.3–4.5), plus the sketch figure.

    python dcgan_celeba/eval.py   # the shipped networks, no training needed
    python dcgan_celeba/eval.py --run runs/dcgan_celeba/dcgan runs/dcgan_celeba/wgan runs/dcgan_celeba/began
    python dcgan_celeba/eval.py --run runs/dcgan_celeba/began            # one model works too

Writes ``metrics.json`` and ``figures/`` into --out (default: the run folder for one run,
runs/dcgan_celeba/compare for several; nothing else is written into a run folder). Without --run it
evaluates the networks shipped in dcgan_celeba/weights/ (dcgan, wgan and began, G only: see
weights/manifest.json for how each was trained) into runs/dcgan_celeba/shipped:
- ``fig5b_comparison.png``: each model on the same noise z (Fig. 5(b));
- ``fig4_4_losses.png``: discriminator and generator losses, and the convergence measure
  (M for began, the critic's Wasserstein estimate for WGAN) against iterations (§4.4);
- ``fid_curves.png``: FID against iterations, from each run's log (these two leave out, with a
  printed note, a run folder that has no ``log.csv``);
- ``table1.md`` and ``table1_detection.png``: of 1,000 generated faces, how many dlib's
  frontal detector cannot find (Table 1), beside the paper's numbers, with FID;
- ``sketch_to_face.png``: sketch | the model's result | the face the sketch was drawn from
  (our interpretation, see sketch.py), of 16 sketches (without --run 8: the first 8, each fitted
  exactly as among 16, so that the shipped networks' eval stays within a minute on 2 CPU cores).
"""
import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib.pyplot as plt
import torch

from common.checkpoints import held_out_of, load_networks, runs_to_evaluate
from common.cli import at_least, one_sentence_errors, positive_int
from common.csvlog import read_log
from common.features import InceptionFeatures
from common.folders import check_out, eval_folder
from common.metrics import FidReference, MetricUnavailable, detect_faces
from common.plots import grouped_bars, markdown_table, save_image_rows
from common.synthnet import SyntheticFeatures, identity_similarity, load_synthnet, pose_gaze_error
from dcgan_celeba.data import held_out_faces, noise, sketch_inputs
from dcgan_celeba.model import build
from dcgan_celeba.paper import SHIPPED
from dcgan_celeba.sketch import fit_latent

LABELS = {"dcgan": "DCGAN", "wgan": "WGAN", "began": "began"}     # --model → the label in tables and figures
SHIPPED_SKETCHES = 8     # without --run: the latent search costs 3 s a sketch on a CPU core, and each fit is independent
PAPER_NOT_DETECTED = {"DCGAN": 281, "WGAN": 123, "began": 19}    # Table 1, of 1000 (began: "Our model")
EVAL_NOISE_SEED, RANDOM_Z_SEED = 0, 99       # the z shared by all models; the random-z baseline of the sketches


def load_generator(run):
    """The trained G of a run folder (``common.checkpoints.load_networks``), with the run's config and step."""
    networks, checkpoint = load_networks(run, "dcgan_celeba", build, names=["G"])
    return networks["G"], checkpoint["config"], checkpoint["step"]


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def not_detected(images):
    """How many images dlib's frontal detector finds no face in (None without dlib)."""
    try:
        return int((~detect_faces(images)).sum())
    except MetricUnavailable as err:
        print(f"Table 1 detection skipped: {err}")
        return None


def with_logs(runs, figure):
    """The runs whose folder holds log.csv; a printed note for each one left out of ``figure``."""
    logged = {}
    for label, (run, config) in runs.items():
        if (run / "log.csv").exists():
            logged[label] = (run, config)
        else:
            print(f"{figure}: {run} has no log.csv, so {label} is left out")
    if not logged:
        print(f"{figure} skipped: no run has a log.csv")
    return logged


def loss_figure(runs, path):
    """§4.4: one row per model: discriminator loss | generator loss | convergence measure."""
    fig, axes = plt.subplots(len(runs), 3, figsize=(11, 2.6 * len(runs)), squeeze=False)
    for row, (label, (run, config)) in zip(axes, runs.items()):
        log = read_log(run / "log.csv")
        measure = {"began": ("M", "(c) convergence M"),
                   "wgan": ("wasserstein", "(c) Wasserstein estimate")}.get(config["model"])
        panels = [("loss_D", "(a) discriminator loss"), ("loss_G", "(b) generator loss")]
        panels += [measure] if measure else []
        for ax, (column, title) in zip(row, panels):
            points = [(s, v) for s, v in zip(log["step"], log.get(column, [])) if not math.isnan(v)]
            if points:
                ax.plot(*zip(*points))
            ax.set(title=f"{label}: {title}", xlabel="iteration")
            ax.grid(alpha=0.3)
        if not measure:
            row[2].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fid_figure(runs, path):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, (run, _) in runs.items():
        log = read_log(run / "log.csv")
        points = [(s, v) for s, v in zip(log["step"], log.get("fid", [])) if not math.isnan(v)]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set(title="FID (synthetic-v1) of the samples during training", xlabel="generator iteration", ylabel="FID")
    if ax.lines:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def golden_output(folder):
    """A run folder's networks on fixed inputs, for ``tools.ship.fingerprint`` (the golden test of
    the shipped networks): float32 on the CPU, in eval mode, no autocast, not clamped.

    G maps 4 fixed-seed z (``noise``, seed 0) to faces; a shipped D scores (or, began's, reconstructs)
    those faces. Returns the outputs concatenated per sample: (4, 3·size² [+ D's output size]).
    """
    networks, checkpoint = load_networks(folder, "dcgan_celeba", build)
    for net in networks.values():
        net.float()
    z = noise(4, checkpoint["model_args"]["z_dim"], "cpu", torch.Generator().manual_seed(0))
    faces = networks["G"](z)
    outputs = [faces] + ([networks["D"](faces)] if "D" in networks else [])
    return torch.cat([o.reshape(len(z), -1) for o in outputs], 1)


@torch.no_grad()
def generate(G, z, batch=250):
    return torch.cat([G(z[i:i + batch]).clamp(-1, 1) for i in range(0, len(z), batch)])


def sketch_figure(G, config, n, steps, out, net):
    """Sketch → face by latent search (sketch.py); returns its numbers."""
    size = config["size"]
    sketches, params, originals = sketch_inputs(size, n)
    z, _ = fit_latent(G, sketches, config["z_dim"], steps=steps)
    results = generate(G, z)
    random = generate(G, noise(n, config["z_dim"], "cpu", torch.Generator().manual_seed(RANDOM_Z_SEED)))
    shown = min(n, 8)
    save_image_rows([sketches[:shown], results[:shown], originals[:shown]], out / "sketch_to_face.png",
                    row_labels=["sketch", f"{LABELS[config['model']]}: G(z*)", "drawn from"], scale=max(1, 96 // size),
                    title="Sketch → face by latent search (our interpretation, see sketch.py)")
    numbers = {}
    for name, images in (("fitted", results), ("random z", random)):
        errors = pose_gaze_error(images, params, net)
        numbers[name] = {"yaw_error_deg": errors["yaw"], "pitch_error_deg": errors["pitch"],
                         "identity_similarity_to_original": identity_similarity(images, originals, net).mean().item()}
    return numbers


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, nargs="+",
                    help="run folder(s) with checkpoint.pt (default: the networks shipped in dcgan_celeba/weights/: "
                         f"{', '.join(SHIPPED)})")
    ap.add_argument("--out", help="where metrics.json and figures/ go (default: see above); nothing is written "
                                  "into the runs")
    ap.add_argument("--faces", type=at_least(2), default=1000,
                    help="generated faces per model for Table 1 and FID (paper: 1000), and held-out real faces "
                         "(for a --data run: at most the run's --fid-faces)")
    ap.add_argument("--fid-features", choices=["synthetic", "inception"], default="synthetic",
                    help="FID features: the shipped synthetic-v1 network, or the standard Inception (a download)")
    ap.add_argument("--sketches", type=non_negative_int,
                    help="sketches to turn into faces (0: skip; default: 16, or without --run 8, the first 8 of "
                         "those 16 with the same results, to stay within a minute on 2 CPU cores)")
    ap.add_argument("--sketch-steps", type=positive_int, default=200, help="gradient steps of the latent search")
    ap.add_argument("--sketch-model", choices=["auto", *LABELS], default="auto",
                    help="whose generator the sketch search uses (default: auto, the one with the lowest FID)")
    return ap.parse_args(argv)


def load_generators(folders):
    """Every run's G, loaded and checked before anything is written: ``{label: (G, config, step)}``,
    ``{label: (run folder, config)}`` and the config they share (one size and z_dim: Fig. 5(b))."""
    generators, runs = {}, {}
    for run in folders:
        G, config, step = load_generator(run)
        label = LABELS[config["model"]]
        if label in runs:                                    # two runs of one model: tell them apart
            label = f"{label} {run.name}"
        generators[label], runs[label] = (G, config, step), (run, config)
    sizes = {(c["size"], c["z_dim"]) for _, c, _ in generators.values()}
    if len(sizes) > 1:
        raise SystemExit(f"these runs were trained at different sizes (size, z_dim) {sorted(sizes)}: Fig. 5(b) "
                         f"feeds the same noise to every model, so evaluate runs of one size together.")
    return generators, runs, next(iter(generators.values()))[1]


def table1(samples, steps, real, extractor, figures):
    """Table 1: how many of each model's samples dlib cannot find a face in, beside the paper's count, and
    FID against the real faces; writes ``table1.md`` and ``table1_detection.png``, returns the rows and the
    markdown table. ``steps``: each model's training step."""
    n = len(next(iter(samples.values())))
    missed, fid_column = "can't detect face", f"FID ({extractor.name})"
    rows = [{"model": "real faces (reference)", missed: not_detected(real)}]
    reference = FidReference(real, extractor)
    for label, images in samples.items():
        measured = reference(images)
        rows.append({"model": label, "step": steps[label], missed: not_detected(images),
                     "paper (of 1000)": PAPER_NOT_DETECTED.get(label), fid_column: measured["fid"],
                     "diversity": measured["diversity"]})
    shown = [{**r, missed: "n/a" if r[missed] is None else f"{r[missed]}/{n}"} for r in rows]
    table = markdown_table(shown, ["model", "step", missed, "paper (of 1000)", fid_column, "diversity"])
    title = f"Table 1 analogue: of {n} faces, how many dlib's frontal detector cannot find"
    (figures / "table1.md").write_text(f"{title}\n\n{table}\n")
    grouped_bars({r["model"]: {f"this repo, of {n}": r[missed], "paper, of 1000": r.get("paper (of 1000)")}
                  for r in rows},
                 figures / "table1_detection.png", ylabel="faces not detected",
                 title="Table 1: faces dlib cannot find (lower is better)")
    return rows, table


@one_sentence_errors
def main(argv=None):
    args = parse(argv)
    check_out(args.out)                                  # a bad --out stops before any work
    folders, shipped_out = runs_to_evaluate(args.run, "dcgan_celeba", SHIPPED)
    if args.sketches is None:
        args.sketches = 16 if args.run else SHIPPED_SKETCHES
    generators, runs, config = load_generators(folders)
    extractor = SyntheticFeatures() if args.fid_features == "synthetic" else InceptionFeatures()
    data, n_real = held_out_of([c for _, c, _ in generators.values()], args.faces)
    real = held_out_faces(data, config["size"], n_real)
    out = eval_folder(args.out, shipped_out or (folders[0] if len(folders) == 1 else "runs/dcgan_celeba/compare"))
    figures = out / "figures"
    figures.mkdir(exist_ok=True)

    z = noise(args.faces, config["z_dim"], "cpu", torch.Generator().manual_seed(EVAL_NOISE_SEED))   # one z for all
    samples = {label: generate(G, z) for label, (G, _, _) in generators.items()}

    # Fig. 5(b): the same eight z through each model, one row per model.
    save_image_rows([s[:8] for s in samples.values()], figures / "fig5b_comparison.png", row_labels=list(samples),
                    scale=max(1, 96 // config["size"]), title="Fig. 5(b): the same noise z through each model")
    written = ["fig5b_comparison.png"]
    logged = with_logs(runs, "fig4_4_losses.png and fid_curves.png")
    if logged:
        loss_figure(logged, figures / "fig4_4_losses.png")
        fid_figure(logged, figures / "fid_curves.png")
        written += ["fig4_4_losses.png", "fid_curves.png"]

    rows, table = table1(samples, {label: step for label, (_, _, step) in generators.items()}, real, extractor, figures)
    written += ["table1.md", "table1_detection.png"]
    metrics = {"faces": args.faces, "fid_features": extractor.name, "table1": rows}

    by_fid = sorted(rows[1:], key=lambda r: r[f"FID ({extractor.name})"])
    sketch_label = by_fid[0]["model"] if args.sketch_model == "auto" else LABELS[args.sketch_model]
    if args.sketches and sketch_label not in generators:
        print(f"sketch_to_face.png skipped: no {sketch_label} run among those evaluated")
    elif args.sketches:
        G, config, _ = generators[sketch_label]
        metrics["sketch_to_face"] = sketch_figure(G, config, args.sketches, args.sketch_steps, figures, load_synthnet())
        metrics["sketch_to_face"].update(model=sketch_label, sketches=args.sketches)
        written.append("sketch_to_face.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(table)
    print(f"\nwrote {out / 'metrics.json'} and, in {figures}: {', '.join(written)}")
    return metrics


if __name__ == "__main__":
    main()
