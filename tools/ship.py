"""Trained networks shipped in the repository: ``<paper>/weights/``.

Each shipped network is a small run folder, ``<paper>/weights/<name>/``, that every ``eval.py``
reads as it reads any run (``--run``; with no ``--run`` it evaluates these):

- ``checkpoint.pt``: weights only -- the networks eval needs, with their ``model_args``, step and
  config; no optimiser, no random state. Loaded with ``torch.load(weights_only=True)`` through
  ``common.checkpoints.load_run``, which also checks its sha256 against the manifest;
- ``config.json`` and ``log.csv``: the run's, so figures drawn from the training log (FID curves,
  losses) are drawn from the shipped run too.

``<paper>/weights/manifest.json`` records, per shipped folder: the exact command that trained it,
the commit, the CPU, steps, training time, which network was kept (G as trained, or the moving
average of ``--ema``), the numbers its ``eval.py`` measured on it, a fixed-seed output
``fingerprint`` (the golden test: ``tests/test_shipped.py``) and every file's sha256.

    python -m tools.ship add began_refiner B runs/b --command "python began_refiner/train.py --out runs/b" \\
        --commit 04eab11 --cpu "AMD EPYC (Zen 4), 2 cores" --wall-s 610 [--trained] [--replace]
    python -m tools.ship check           # every manifest: files, weights_only load, fingerprint, numbers

``add`` measures the new folder's numbers with its paper's ``eval.py --run`` (on exactly the files it
wrote, recording their digest as ``measured_on``), so a manifest never holds numbers of other weights;
it refuses to replace a shipped name unless given ``--replace`` (as ``git`` refuses to overwrite
without ``--force``). ``check`` fails when a folder is not what its manifest records, when its output
moved, or when its numbers were measured on other files.
"""
import argparse
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from common.checkpoints import FORMAT, read_checkpoint
from common.cli import one_sentence_errors
from common.folders import atomic_write_json
from common.manifest import PAPERS, ROOT, files_digest, read_manifest, sha256, shipped_problem, weights_folder

TOLERANCE = 1e-4        # the fingerprint may move by this fraction of its abs_sum (float32 on another CPU)
TRAINING_ONLY = ("batches", "augment_rng")   # checkpoint extras that only continue a run


def write_manifest(paper: str, manifest: dict) -> None:
    weights_folder(paper).mkdir(parents=True, exist_ok=True)
    atomic_write_json(weights_folder(paper) / "manifest.json", manifest)


def shipped_checkpoint(checkpoint: dict, keep: list, average: bool) -> dict:
    """The weights-only copy of a run's checkpoint: the networks in ``keep`` (G from ``G_ema`` when
    ``average``), model_args, step, config and eval's extras; nothing that continues training."""
    models = {}
    for name in keep:
        source = f"{name}_ema" if average and f"{name}_ema" in checkpoint["models"] else name
        models[name] = {k: v.clone() for k, v in checkpoint["models"][source].items()}
    extra = {k: v for k, v in checkpoint.get("extra", {}).items() if k not in TRAINING_ONLY}
    return {"format": FORMAT, "paper": checkpoint["paper"], "step": checkpoint["step"],
            "model_args": checkpoint["model_args"], "models": models, "extra": extra,
            "config": checkpoint["config"], "shipped": True}


def fingerprint(paper: str, folder: Path) -> dict:
    """The shipped networks' output on fixed-seed inputs (``<paper>.eval.golden_output``), in float32:
    its sum, absolute sum and shape."""
    golden_output = importlib.import_module(f"{paper}.eval").golden_output
    torch.manual_seed(0)
    with torch.no_grad():
        out = golden_output(folder).double()
    return {"sum": out.sum().item(), "abs_sum": out.abs().sum().item(), "shape": list(out.shape)}


def fingerprint_differs(recorded: dict, now: dict):
    """A sentence when ``now`` is not ``recorded`` within ``TOLERANCE``, else None."""
    if now["shape"] != recorded["shape"]:
        return f"output shape {now['shape']}, recorded {recorded['shape']}"
    scale = max(recorded["abs_sum"], 1e-12)
    for key in ("sum", "abs_sum"):
        if abs(now[key] - recorded[key]) > TOLERANCE * scale:
            return f"output {key} {now[key]:.6g}, recorded {recorded[key]:.6g} (tolerance {TOLERANCE:g} × {scale:.6g})"
    return None


def measure(paper: str, name: str, eval_args=()) -> dict:
    """The numbers ``<paper>/eval.py --run`` measures on ``<paper>/weights/<name>/`` (``paper.numbers``),
    rounded, with ``measured_on``: the digest of exactly the files they were measured on."""
    declared = importlib.import_module(f"{paper}.paper")
    with tempfile.TemporaryDirectory() as out:
        importlib.import_module(f"{paper}.eval").main(["--run", str(weights_folder(paper) / name), "--out", out,
                                                       *eval_args])
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    (numbers,) = declared.numbers(metrics).values()                   # one folder evaluated: one entry
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in numbers.items()},
            "measured_on": files_digest(paper, name)}


def copy_stage(stage: Path, dest: Path, args) -> dict:
    """One checkpoint folder of a run, weights only, with its log.csv and config.json; its manifest stage."""
    checkpoint = read_checkpoint(stage / "checkpoint.pt")
    has_average = any(name.endswith("_ema") for name in checkpoint["models"])
    keep = args.keep or [n for n in checkpoint["models"] if not n.endswith("_ema") and not n.startswith("D")]
    average = has_average and not args.trained
    dest.mkdir(parents=True, exist_ok=True)
    torch.save(shipped_checkpoint(checkpoint, keep, average), dest / "checkpoint.pt")
    for name in ("log.csv", "config.json"):
        if (stage / name).exists():
            shutil.copyfile(stage / name, dest / name)
    kept = (f"the moving average of G's weights (--ema {checkpoint['config'].get('ema')})" if average
            else "the networks as trained" + (" (the run's average was measured and not kept)" if has_average else ""))
    return {"steps": checkpoint["step"], "training_s": round(float(checkpoint["extra"].get("time_s", 0)), 1),
            "networks": keep, "kept": kept}


def add(args) -> list:
    """Copy a trained run into ``<paper>/weights/<name>/``, measure it, record it; returns the paths written."""
    run, target = Path(args.run), weights_folder(args.paper) / args.name
    stages = [run] if (run / "checkpoint.pt").exists() else sorted(p.parent for p in run.glob("*/checkpoint.pt"))
    if not stages:
        raise SystemExit(f"{run} holds no checkpoint.pt (nor stages with one)")
    manifest = read_manifest(args.paper)
    if (args.name in manifest or target.exists()) and not args.replace:
        raise SystemExit(f"{args.paper}/weights/{args.name} is shipped already: add --replace to replace it (its "
                         f"numbers are then measured again on the new files)")
    manifest.pop(args.name, None)                       # replacing: the old record goes first
    write_manifest(args.paper, manifest)
    if target.exists():
        shutil.rmtree(target)
    entry = {"command": args.command, "commit": args.commit, "cpu": args.cpu, "wall_s": args.wall_s,
             "stages": {(target / stage.relative_to(run)).relative_to(target).as_posix() or ".":
                        copy_stage(stage, target / stage.relative_to(run), args) for stage in stages}}
    entry["sha256"] = {path.relative_to(weights_folder(args.paper)).as_posix(): sha256(path)
                       for path in sorted(target.rglob("*")) if path.is_file()}
    manifest[args.name] = entry
    write_manifest(args.paper, manifest)                # its files recorded, so that the loader may read them
    entry["fingerprint"] = fingerprint(args.paper, target)
    entry["eval"] = measure(args.paper, args.name, args.eval_args)
    write_manifest(args.paper, manifest)
    return [target, weights_folder(args.paper) / "manifest.json"]


def entry_problem(paper: str, name: str, entry: dict):
    """What ``check`` finds wrong with one shipped folder, or None."""
    problem = shipped_problem(paper, name)
    if problem is None and "fingerprint" not in entry:
        problem = "no fingerprint recorded"
    if problem is None:
        problem = fingerprint_differs(entry["fingerprint"], fingerprint(paper, weights_folder(paper) / name))
    if problem is None and entry.get("eval", {}).get("measured_on") != files_digest(paper, name):
        problem = ("its numbers were measured on other files (or not at all): measure them again with "
                   "python -m tools.figures " + paper)
    return problem


def check(_args=None) -> int:
    """Every shipped folder: its files as recorded, a weights_only load, the fingerprint within tolerance,
    and numbers measured on exactly these files."""
    failures = 0
    for paper in PAPERS:
        for name, entry in read_manifest(paper).items():
            problem = entry_problem(paper, name, entry)
            failures += problem is not None
            print(f"{paper}/weights/{name}: {problem or 'ok'}")
    return 1 if failures else 0


def total_megabytes() -> float:
    """The size of every file the manifests list (nir_cgan/weights/ also holds its reader network, not a GAN's)."""
    return sum((weights_folder(paper) / relative).stat().st_size
               for paper in PAPERS for entry in read_manifest(paper).values() for relative in entry["sha256"]) / 1e6


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command_name", required=True)
    a = sub.add_parser("add", help="ship a trained run (measuring its numbers)")
    a.add_argument("paper", choices=PAPERS)
    a.add_argument("name")
    a.add_argument("run")
    a.add_argument("--command", required=True, help="the exact command that trained it, as a user would paste it")
    a.add_argument("--commit", required=True)
    a.add_argument("--cpu", required=True)
    a.add_argument("--wall-s", type=float, required=True, help="the command's wall time in seconds")
    a.add_argument("--keep", nargs="+", help="networks to ship (default: all but discriminators)")
    a.add_argument("--trained", action="store_true", help="keep G as trained even if the run has an average")
    a.add_argument("--replace", action="store_true", help="replace a network shipped under this name")
    a.add_argument("--eval-args", nargs=argparse.REMAINDER, default=[],
                   help="more flags for eval.py when it measures the numbers (last)")
    sub.add_parser("check", help="verify every shipped folder against its manifest (exit 1 on any problem)")
    args = ap.parse_args(argv)
    if args.command_name == "add":
        for path in add(args):
            print(f"wrote {path.relative_to(ROOT) if ROOT in path.parents else path}")
        print(f"all shipped networks: {total_megabytes():.2f} MB")
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
