"""Evaluate any sr_degradation run: a pipeline folder, or any single stage folder (§XI–XII).

    python sr_degradation/eval.py                                              # the shipped networks, no training needed
    python sr_degradation/eval.py --run runs/sr_degradation/<time>              # a pipeline: all it holds
    python sr_degradation/eval.py --run runs/sr_degradation/<time>/h2l          # one stage: what it can show
    python sr_degradation/eval.py --run H2L_DIR L2H_DIR FT_DIR BICUBIC_DIR --out DIR   # stages trained alone

Without ``--run`` it evaluates the pipeline shipped in ``sr_degradation/weights/pipeline/`` (its four
stages' generators, config.json and log.csv; how they were trained: ``sr_degradation/weights/manifest.json``)
into ``runs/sr_degradation/shipped``; nothing is ever written into weights/.

On held-out faces, never trained on: built in, 500 clean HR faces and 500 real LR faces of other
people (seed 1); for runs trained on --data-high / --data-low folders, the last images of those
folders, which training held out (``data.held_out_count``). For the stages it finds (h2l, l2h,
finetune, bicubic):
- the degradation check, when there is a High-to-Low (h2l or finetune): its outputs next to real LR
  faces, and FID(High-to-Low(HR), real LR) against FID(bicubic(HR), real LR) (``degradation.png``);
- Table 2, when there is a Low-to-High (l2h, finetune or the bicubic baseline): FID (synthetic-v1)
  of super-resolved *real* LR faces against the HR faces, and PSNR / SSIM on *bicubic*-downsampled
  HR faces, beside the paper's numbers (``table2.png``, ``super_resolution.png``);
- the two checks, named in full in ``metrics.json: checks``: does the bicubic-trained Low-to-High
  beat bicubic upsampling in PSNR, and does ours beat it in FID on real LR faces (the paper's claim);
- failures (§XII): the outputs furthest from real HR faces in feature space (the FID extractor's,
  per image), and how many lie further than 99% of real HR faces (``failures.png``); dlib's
  no-face rate is reported too, but at 16 → 64 px it is floored by the input (85% for bicubic);
- Table 1 / Fig. 5: generator loss against iterations and iterations against training time, from
  each stage's log.csv (``table1_fig5_curves.png``).
It prints what it could show and what it could not, and writes both into ``metrics.json``
(``shown``, ``not_shown``) beside ``figures/results.md``, in ``--out`` (default: the --run folder, or
runs/sr_degradation/shipped);
nothing else is written, so ``--out`` leaves the runs as they were.
"""
import argparse
import json
import math
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib.pyplot as plt
import torch

from common.checkpoints import load_networks, runs_to_evaluate
from common.cli import at_least, one_sentence_errors
from common.csvlog import read_log
from common.data import to_float
from common.folders import eval_folder
from common.metrics import (MetricUnavailable, detect_faces, extract_features, fid_from_features, mahalanobis_distances,
                            psnr, ssim)
from common.plots import grouped_bars, markdown_table, save_image_rows
from common.synthnet import SyntheticFeatures
from sr_degradation.data import bicubic_down, held_out_count, held_out_set, training_set
from sr_degradation.model import bicubic_up, build
from sr_degradation.paper import SHIPPED

PAPER = "sr_degradation"
STAGES = ("h2l", "l2h", "finetune", "bicubic")
LABELS = {"h2l": "High-to-Low (stage 1)", "l2h": "High-to-Low + Low-to-High (stage 2)",
          "finetune": "High-to-Low + Low-to-High, fine-tuned", "bicubic": "Low-to-High trained on bicubic pairs"}
# Table 2 of the paper (FID on its 3,000 real Widerface LR faces; PSNR on bilinearly downsampled LS3D-W).
PAPER_TABLE2 = {"SRGAN": (104.80, 23.19), "CycleGAN": (19.01, 16.10), "Low-to-High": (85.59, 23.50),
                "High-to-Low+Low-to-High": (87.91, 23.22), "Ours": (15.20, 18.40)}
PAPER_FAILURES = 0.10        # §XII: "about 10%" of the test set
TABLE2_COLUMNS = {
    "fid_real_lr": "FID (synthetic-v1) of the method's outputs on the held-out real LR faces, against the held-out "
                   "HR faces (other people); lower = more like real HR faces",
    "psnr_db_bicubic_lr": "PSNR (dB) of the method's outputs on bicubic-downsampled held-out HR faces, against "
                          "those HR faces",
    "ssim_bicubic_lr": "SSIM of the same outputs against the same HR faces",
    "failure_fraction": "fraction of the outputs on real LR faces whose synthetic-v1 features lie further (Mahalanobis "
                        "distance) from the HR test faces' feature Gaussian than 99% of real HR training faces do",
    "no_face_fraction": "fraction of the outputs on real LR faces in which dlib's frontal detector finds no face "
                        "(upsampled to 256 px)",
}
DEGRADED = {"h2l": "High-to-Low(HR), stage 1", "finetune": "High-to-Low(HR) after the fine-tune"}
ROW = 8                      # faces per figure row


class Stage(NamedTuple):
    folder: Path
    checkpoint: dict
    generators: dict         # {"H2L": …} and / or {"L2H": …}, in eval mode


def find_stages(runs):
    """``{stage: Stage}``: the stage folders of each pipeline folder given (its h2l/, l2h/, finetune/,
    bicubic/ that hold a checkpoint), and each single stage folder given, read with
    ``common.checkpoints.load_networks`` (one sentence for a missing, damaged or other paper's folder)."""
    stages = {}
    for run in runs:
        for folder in [run / s for s in STAGES if (run / s / "checkpoint.pt").is_file()] or [run]:
            networks, checkpoint = load_networks(folder, PAPER, build)
            stage = checkpoint["config"]["stage"]
            if stage in stages:
                raise SystemExit(f"two {stage} stages were given ({stages[stage].folder} and {folder}): "
                                 f"evaluate them one at a time.")
            stages[stage] = Stage(folder, checkpoint, {n: net for n, net in networks.items() if n in ("H2L", "L2H")})
    return {s: stages[s] for s in STAGES if s in stages}


class EvalFaces:
    """The faces eval.py measures on, as float [−1, 1]: held-out HR faces, held-out real LR faces (other
    people) and bicubic(held-out HR), Table 2(b)'s input; ``training(kind)``: training faces, the
    references of the floors and of the failure threshold. Built in: n of each (held out: seed 1,
    training: seed 0). Runs trained on --data-high / --data-low folders: the last images of those
    folders, which every stage held out from training (at most n), and their first images."""

    def __init__(self, checkpoints, size, n):
        configs = [c["config"] for c in checkpoints]
        data = {(c.get("data_high"), c.get("data_low")) for c in configs}
        if len(data) > 1:
            raise SystemExit(f"these stages were trained on different data (--data-high, --data-low: "
                             f"{', '.join(map(str, sorted(data, key=str)))}): evaluate stages of one data set together.")
        (high, low), = data
        self.folders, self.size, self.n = {"HR": high, "real LR": low}, size, n
        self.held = min(held_out_count(c["fid_faces"]) for c in configs)     # what every stage held out
        self.high, self.real_low = (to_float(held_out_set(kind, folder, size, min(n, self.held) if folder else n))
                                    for kind, folder in self.folders.items())
        self.bicubic_low = bicubic_down(self.high)          # the paired, synthetic LR of Table 2(b)

    def training(self, kind):
        """At most n training faces of ``kind`` ("HR" or "real LR")."""
        return to_float(training_set(kind, self.folders[kind], self.size, self.n, self.held, 1)[:self.n])

    def described(self):
        """Where the held-out faces come from, for metrics.json and one printed line."""
        return {kind: f"the last {len(images)} images of {folder}, held out from training" if folder
                else f"{len(images)} built-in test faces (seed 1), never trained on"
                for (kind, folder), images in zip(self.folders.items(), (self.high, self.real_low))}


class Report:
    """What eval.py found, section by section: metrics.json's entries, results.md's text, and what each
    section could show (``shown``) and could not (``not_shown``)."""

    def __init__(self, metrics):
        self.metrics, self.text, self.shown, self.not_shown = metrics, [], [], []

    def write(self, out, stages):
        """metrics.json and figures/results.md in ``out``; the summary is printed too."""
        self.metrics.update(shown=self.shown, not_shown=self.not_shown)
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        summary = (["## Stages found", "\n".join(f"- {s}: {stage.folder} (step {stage.checkpoint['step']})"
                                                 for s, stage in stages.items())]
                   + self.text + ["## Shown", "\n".join(f"- {x}" for x in self.shown) or "- nothing",
                                  "## Not shown", "\n".join(f"- {x}" for x in self.not_shown) or "- nothing missing"])
        (out / "figures" / "results.md").write_text("\n\n".join(summary) + "\n")
        print("\n\n".join(summary))
        print(f"\nwrote {out / 'metrics.json'} and {out / 'figures'}/")
        return self.metrics


def noise(n, z_dim, seed):
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def in_batches(net, *inputs, batch=50):
    """``net(*inputs)``, ``batch`` faces at a time (eval mode: the same outputs): one call on 500 faces
    allocates, and page-faults in, hundreds of MB per layer, 2–3 times slower on a CPU."""
    return torch.cat([net(*chunk) for chunk in zip(*(x.split(batch) for x in inputs))])


@torch.no_grad()
def golden_output(folder) -> torch.Tensor:
    """Every stage's generators in a pipeline, stage or shipped folder on fixed inputs: High-to-Low on
    4 HR images and 4 noise vectors, Low-to-High on 4 LR images (uniform in [−1, 1], seed 0; the same for
    every stage), in stage order (h2l, l2h, finetune, bicubic), flattened into one tensor; CPU, float32,
    eval mode, no autocast. ``tools.ship.fingerprint`` records its sums; the golden test compares them."""
    out = []
    for stage in find_stages([Path(folder)]).values():
        size = stage.checkpoint["model_args"]["size"]
        g = torch.Generator().manual_seed(0)
        high = torch.rand(4, 3, size, size, generator=g) * 2 - 1
        low = torch.rand(4, 3, size // 4, size // 4, generator=g) * 2 - 1
        for name, net in stage.generators.items():
            net = net.float()
            out.append((net(high, torch.randn(4, net.z_dim, generator=g)) if name == "H2L" else net(low)).flatten())
    return torch.cat(out)


# ----------------------------------------------------------------------------- is the degradation real?


def degradation_check(report, h2ls, faces, extractor, figures):
    """§VII: High-to-Low learns the real degradation from unpaired real LR faces. FID of High-to-Low(held-out
    HR) against held-out real LR faces, beside bicubic(HR) and a floor (real LR faces of the training
    people); ``degradation.png`` shows them, and a second noise for the same faces."""
    if not h2ls:
        report.not_shown.append("the degradation check: it needs a High-to-Low (an h2l or finetune stage; give its "
                                "folder as one more --run)")
        return
    high, real_low = faces.high, faces.real_low
    degraded = {stage: in_batches(H2L, high, noise(len(high), H2L.z_dim, 0)).clamp(-1, 1)
                for stage, H2L in h2ls.items()}
    real_features = extract_features(real_low, extractor)                  # once, for every FID below

    def against_real_low(images):
        return fid_from_features(extract_features(images, extractor), real_features)
    measured = {"bicubic(HR) vs real LR": against_real_low(faces.bicubic_low),
                "real LR of the training people vs real LR": against_real_low(faces.training("real LR"))}
    measured.update({f"{DEGRADED[s]} vs real LR": against_real_low(images) for s, images in degraded.items()})
    first = next(iter(h2ls))
    k = min(ROW, len(high), len(real_low))
    again = h2ls[first](high[:k], noise(k, h2ls[first].z_dim, 1)).clamp(-1, 1)
    rows = [high[:k]] + [degraded[s][:k] for s in h2ls] + [again, faces.bicubic_low[:k], real_low[:k]]
    save_image_rows(rows, figures / "degradation.png", scale=2,
                    row_labels=["HR (held out)"] + [f"High-to-Low, {s}" for s in h2ls]
                    + [f"High-to-Low, {first}, noise 2", "bicubic(HR)", "real LR (other people)"],
                    title="Learned degradation vs real LR faces")
    report.metrics["degradation_fid"] = measured
    report.shown.append("the degradation check: FID of High-to-Low(HR) against real LR faces (degradation.png)")
    report.text += ["## Degradation: FID against real LR faces",
                    markdown_table([{"pair": n, f"fid_{extractor.name}": v} for n, v in measured.items()])]


# ----------------------------------------------------------------------------- Table 2 and the failures


class SuperResolved(NamedTuple):
    rows: dict               # {method: Table 2's numbers}
    images: dict             # {method: its outputs on the held-out real LR faces}
    distances: dict          # {method: each output's feature distance from the HR faces (§XII)}
    threshold: float         # a failure lies further than 99% of real HR training faces


def super_resolve(methods, faces, extractor):
    """Every method on held-out real LR faces (FID against held-out HR faces, failures) and on
    bicubic-downsampled held-out HR faces (PSNR, SSIM against them)."""
    high_features = extract_features(faces.high, extractor)
    train_high_features = extract_features(faces.training("HR"), extractor)
    threshold = mahalanobis_distances(train_high_features, high_features).quantile(0.99)
    found = SuperResolved({}, {}, {}, threshold)
    for name, method in methods.items():
        found.images[name] = in_batches(method, faces.real_low).clamp(-1, 1)
        features = extract_features(found.images[name], extractor)
        found.distances[name] = mahalanobis_distances(features, high_features)
        from_bicubic = in_batches(method, faces.bicubic_low).clamp(-1, 1)
        found.rows[name] = {"fid_real_lr": fid_from_features(features, high_features),
                            "psnr_db_bicubic_lr": psnr(from_bicubic, faces.high).mean().item(),
                            "ssim_bicubic_lr": ssim(from_bicubic, faces.high).mean().item(),
                            "failure_fraction": (found.distances[name] > threshold).float().mean().item()}
    return found, fid_from_features(train_high_features, high_features)


def table2(report, l2hs, ours, faces, extractor, figures):
    """Table 2 (§XI) with every Low-to-High found and bicubic upsampling: (a) FID of super-resolved real LR
    faces, (b) PSNR / SSIM on bicubic LR faces; the paper's two checks; then the failures (§XII)."""
    if not l2hs:
        report.not_shown.append("Table 2 and the failures: they need a Low-to-High (an l2h, finetune or bicubic "
                                "stage; give its folder as one more --run)")
        return
    methods = {"bicubic upsampling": bicubic_up, **{LABELS[s]: net for s, net in l2hs.items()}}
    found, fid_floor = super_resolve(methods, faces, extractor)
    grouped_bars({"FID (synthetic-v1), real LR": {n: found.rows[n]["fid_real_lr"] for n in methods},
                  "PSNR (dB), bicubic LR": {n: found.rows[n]["psnr_db_bicubic_lr"] for n in methods}},
                 figures / "table2.png", ylabel="value", title="Table 2 on the held-out faces")
    k = min(ROW, len(faces.high), len(faces.real_low))
    save_image_rows([faces.real_low[:k]] + [found.images[n][:k] for n in methods] + [faces.high[:k]],
                    figures / "super_resolution.png", scale=2,
                    row_labels=["real LR input"] + list(methods) + ["HR (other people)"],
                    title="Super-resolving real LR faces")
    report.shown.append("Table 2: FID on super-resolved real LR faces, PSNR/SSIM on bicubic LR (table2.png, "
                        "super_resolution.png)")
    if not ours:
        report.not_shown.append("Table 2's row for the method itself: it needs an l2h or finetune stage")
    if "bicubic" not in l2hs:
        report.not_shown.append("Table 2's baseline, Low-to-High trained on bicubic pairs: train it with "
                                "--with-bicubic (pipeline) or --stage bicubic")
    misses = no_face({"HR test faces": faces.high, **found.images})       # dlib: floored by 16-px inputs
    for name, miss in misses.items():
        if miss is not None:
            found.rows.setdefault(name, {})["no_face_fraction"] = miss.float().mean().item()
    report.metrics.update(table2=found.rows, table2_columns=TABLE2_COLUMNS, fid_floor_hr_training_vs_hr_test=fid_floor,
                          checks=checks(found.rows, ours),
                          paper_table2={n: {"fid": f, "psnr_db": p} for n, (f, p) in PAPER_TABLE2.items()})
    failures(report, found, LABELS[ours[-1]] if ours else LABELS["bicubic"], methods, faces, figures)
    report.text += table2_text(found.rows, fid_floor, report.metrics["checks"])


def failures(report, found, name, methods, faces, figures):
    """§XII: the outputs of ``name`` (our final model) furthest from real HR faces in feature space, with
    what every other method makes of the same inputs (``failures.png``), and how many are failures."""
    k = min(ROW, len(faces.real_low))
    worst = found.distances[name].argsort(descending=True)[:k]
    report.metrics["failures"] = {"method": name, "fraction": found.rows[name]["failure_fraction"],
                                  "threshold": found.threshold.item(), "paper_fraction": PAPER_FAILURES,
                                  "measure": TABLE2_COLUMNS["failure_fraction"]}
    save_image_rows([faces.real_low[worst]] + [found.images[n][worst] for n in methods], figures / "failures.png",
                    scale=2, row_labels=["real LR input"] + list(methods),
                    title=f"The {k} outputs of {name} furthest from real HR faces")
    report.shown.append("failures (§XII): the outputs furthest from real HR faces in feature space (failures.png)")


def table2_text(rows, fid_floor, answers):
    """results.md's Table 2, the two checks answered, and the paper's Table 2."""
    answered = "\n".join(f"- {question}: " + ", ".join(f"{n} {v:.3g}" for n, v in answer.items() if n != "holds")
                         + (" → holds" if answer["holds"] else " → does not hold")
                         for question, answer in answers.items())
    return ["## Table 2 on the held-out faces",
            markdown_table([{"method": n, **r} for n, r in rows.items()]
                           + [{"method": "HR training faces against HR test faces (FID floor)", "fid_real_lr": fid_floor}],
                           ["method", "fid_real_lr", "psnr_db_bicubic_lr", "ssim_bicubic_lr", "failure_fraction",
                            "no_face_fraction"]),
            "\n".join(f"- `{k}`: {v}" for k, v in TABLE2_COLUMNS.items()),
            "## The two checks",
            answered or "- neither can be answered: both need the bicubic stage (and the FID check an l2h or finetune one)",
            "## Table 2 of the paper",
            markdown_table([{"method": n, "fid": f, "psnr_db": p} for n, (f, p) in PAPER_TABLE2.items()],
                           floatfmt=".2f")]


def no_face(sets):
    """``{name: bool per image}``: dlib finds no face (``None`` each when dlib is missing)."""
    try:
        found = detect_faces(torch.cat(list(sets.values())))            # one detector for every set
    except MetricUnavailable as err:
        print(f"face detection skipped: {err}")
        return dict.fromkeys(sets)
    return dict(zip(sets, (~found).split([len(images) for images in sets.values()])))


def checks(table2, ours):
    """The two questions of Table 2, each named in full, with both numbers and whether it holds."""
    found = {}
    learned, bicubic = LABELS["bicubic"], "bicubic upsampling"
    if learned in table2:
        a, b = table2[learned]["psnr_db_bicubic_lr"], table2[bicubic]["psnr_db_bicubic_lr"]
        found["learned super-resolution beats interpolation: PSNR (dB) on bicubic-downsampled held-out HR faces, "
              "Low-to-High trained on bicubic pairs vs bicubic upsampling"] = {learned: a, bicubic: b, "holds": a > b}
    for stage in ours:
        if learned in table2:
            a, b = table2[LABELS[stage]]["fid_real_lr"], table2[learned]["fid_real_lr"]
            found[f"the paper's headline: FID (synthetic-v1) of super-resolved real LR faces against HR faces, "
                  f"{LABELS[stage]} vs Low-to-High trained on bicubic pairs"] = {LABELS[stage]: a, learned: b,
                                                                                 "holds": a < b}
    return found


# ----------------------------------------------------------------------------- Table 1 / Fig. 5


def table1_fig5(report, stages, figures):
    """Table 1 / Fig. 5 from each stage's log.csv (a folder holding only checkpoint.pt has none)."""
    logs = {}
    for stage, found in stages.items():
        log = read_log(found.folder / "log.csv") if (found.folder / "log.csv").exists() else {}
        if log.get("step"):
            label = stage if found.folder.name == stage else f"{stage}: {found.folder.name}"
            logs[label] = (log, training_minutes(log))
        else:
            report.not_shown.append(f"the {stage} stage's curves: {found.folder} has no log.csv (or no row in it)")
    if logs:
        curves(logs, figures / "table1_fig5_curves.png")
        report.metrics["table1"] = {label: table1(log, minutes) for label, (log, minutes) in logs.items()}
        report.shown.append("Table 1 / Fig. 5: generator loss and training time against iterations "
                            "(table1_fig5_curves.png)")


def training_minutes(log):
    """Training time (minutes) at each logged step: log.csv's ``time_s`` (evaluation left out); rows
    holding only an FID carry the time of the row before."""
    minutes, last = [], 0.0
    for seconds in log.get("time_s") or [float("nan")] * len(log["step"]):
        last = last if math.isnan(seconds) else seconds / 60
        minutes.append(last)
    return minutes


def curves(logs, path):
    """Table 1 / Fig. 5: generator loss against iterations, iterations against training time."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, (log, minutes) in logs.items():
        axes[0].plot(*zip(*[(s, g) for s, g in zip(log["step"], log.get("loss_G", [])) if not math.isnan(g)]),
                     label=label)
        axes[1].plot(minutes, log["step"], label=label)
    axes[0].set(title="Table 1: generator loss α·pixel + β·GAN", xlabel="generator iteration", ylabel="loss_G")
    axes[1].set(title="Fig. 5: iterations against training time", xlabel="minutes", ylabel="generator iteration")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table1(log, minutes, rows=6):
    """The paper's Table 1 columns (iteration, loss, time) at evenly spaced logged steps."""
    logged = [(s, g, t) for s, g, t in zip(log["step"], log.get("loss_G", []), minutes) if not math.isnan(g)]
    if not logged:
        return []
    picks = sorted({round(i * (len(logged) - 1) / (rows - 1)) for i in range(rows)})
    return [{"iteration": int(logged[i][0]), "loss_G": logged[i][1], "time_min": logged[i][2]} for i in picks]


# ----------------------------------------------------------------------------- main


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, nargs="+",
                    help="a pipeline folder, or stage folders (h2l, l2h, finetune, bicubic; one of each at most); "
                         "default: the shipped pipeline, sr_degradation/weights/pipeline")
    ap.add_argument("--out", help="where metrics.json and figures/ go (default: the --run folder, "
                                  "runs/sr_degradation/compare for several, runs/sr_degradation/shipped for the "
                                  "shipped networks); nothing is written into the runs")
    ap.add_argument("--faces", type=at_least(2), default=500,
                    help="held-out HR faces and real LR faces (--data runs: at most the number they held out)")
    args = ap.parse_args(argv)
    if args.faces < 2:
        ap.error("--faces must be at least 2: FID compares two sets of faces")
    return args


@one_sentence_errors
@torch.no_grad()
def main(argv=None):
    args = parse(argv)
    runs, shipped_out = runs_to_evaluate(args.run, PAPER, SHIPPED)
    stages = find_stages(runs)                               # one sentence for a missing or foreign folder
    sizes = {stage.checkpoint["model_args"]["size"] for stage in stages.values()}
    if len(sizes) > 1:
        raise SystemExit(f"these stages were trained at different sizes {sorted(sizes)}: evaluate stages of one "
                         f"size together.")
    faces = EvalFaces([stage.checkpoint for stage in stages.values()], sizes.pop(), args.faces)
    out = eval_folder(args.out, shipped_out or (runs[0] if len(runs) == 1 else Path("runs") / PAPER / "compare"))
    (out / "figures").mkdir(exist_ok=True)
    print("held-out faces: " + "; ".join(f"{kind}: {where}" for kind, where in faces.described().items()))
    extractor = SyntheticFeatures()
    report = Report({"feature_extractor": extractor.name,
                     "faces": {"HR": len(faces.high), "real LR": len(faces.real_low)}, "held_out": faces.described(),
                     "stages": {s: {"folder": str(stage.folder), "step": stage.checkpoint["step"]}
                                for s, stage in stages.items()}})
    generators = {kind: {s: stage.generators[kind] for s, stage in stages.items() if kind in stage.generators}
                  for kind in ("H2L", "L2H")}                # H2L: h2l, finetune; L2H: l2h, finetune, bicubic
    degradation_check(report, generators["H2L"], faces, extractor, out / "figures")
    table2(report, generators["L2H"], [s for s in ("l2h", "finetune") if s in generators["L2H"]], faces, extractor,
           out / "figures")
    table1_fig5(report, stages, out / "figures")
    return report.write(out, stages)


if __name__ == "__main__":
    main()
