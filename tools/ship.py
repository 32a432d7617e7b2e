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

    python -m tools.ship add began_refiner B /work/runs/b --command "python began_refiner/train.py --ema 0.999" \\
        --commit 04eab11 --cpu "AMD EPYC (Zen 4), 2 cores" --wall-s 610 [--trained]
    python -m tools.ship check           # every manifest: sha256, weights_only load, fingerprint
"""
import argparse
import importlib
import json
import shutil
import sys
from pathlib import Path

import torch

from common.checkpoints import FORMAT, read_checkpoint
from common.folders import atomic_write
from common.manifest import PAPERS, ROOT, read_manifest, sha256, weights_folder

TOLERANCE = 1e-4        # the fingerprint may move by this fraction of its abs_sum (float32 on another CPU)
TRAINING_ONLY = ("batches", "augment_rng")   # checkpoint extras that only continue a run


def write_manifest(paper: str, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    weights_folder(paper).mkdir(parents=True, exist_ok=True)
    atomic_write(weights_folder(paper) / "manifest.json", lambda f: f.write(text.encode()))


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


def add(args) -> None:
    """Copy a trained run into ``<paper>/weights/<name>/`` and record it in the manifest."""
    run, target = Path(args.run), weights_folder(args.paper) / args.name
    stages = [run] if (run / "checkpoint.pt").exists() else sorted(p.parent for p in run.glob("*/checkpoint.pt"))
    if not stages:
        raise SystemExit(f"{run} holds no checkpoint.pt (nor stages with one)")
    manifest = read_manifest(args.paper)
    previous = manifest.pop(args.name, {})             # re-shipping a name: its old record goes first
    write_manifest(args.paper, manifest)
    if target.exists():
        shutil.rmtree(target)
    entry = {"command": args.command, "commit": args.commit, "cpu": args.cpu, "wall_s": args.wall_s,
             "stages": {}, "sha256": {}}
    for stage in stages:
        checkpoint = read_checkpoint(stage / "checkpoint.pt")
        has_average = any(name.endswith("_ema") for name in checkpoint["models"])
        keep = args.keep or [n for n in checkpoint["models"] if not n.endswith("_ema") and not n.startswith("D")]
        average = has_average and not args.trained
        dest = target / stage.relative_to(run)
        dest.mkdir(parents=True, exist_ok=True)
        torch.save(shipped_checkpoint(checkpoint, keep, average), dest / "checkpoint.pt")
        for name in ("log.csv", "config.json"):
            if (stage / name).exists():
                shutil.copyfile(stage / name, dest / name)
        entry["stages"][dest.relative_to(target).as_posix() or "."] = {
            "steps": checkpoint["step"], "training_s": round(float(checkpoint["extra"].get("time_s", 0)), 1),
            "networks": keep,
            "kept": (f"the moving average of G's weights (--ema {checkpoint['config'].get('ema')})" if average
                     else "the networks as trained" + (" (the run's average was measured and not kept)"
                                                       if has_average else ""))}
    for path in sorted(target.rglob("*")):
        if path.is_file():
            entry["sha256"][path.relative_to(weights_folder(args.paper)).as_posix()] = sha256(path)
    entry["fingerprint"] = fingerprint(args.paper, target)
    entry["eval"] = previous.get("eval", {})
    manifest[args.name] = entry
    write_manifest(args.paper, manifest)
    print(f"shipped {run} as {target.relative_to(ROOT)} ({sum(p.stat().st_size for p in target.rglob('*') if p.is_file()) / 1e6:.2f} MB)")


def check(_args=None) -> int:
    """Every shipped file: sha256 as recorded, a weights_only load, the fingerprint within tolerance."""
    failures = 0
    for paper in PAPERS:
        for name, entry in read_manifest(paper).items():
            folder = weights_folder(paper) / name
            problem = None
            for relative, digest in entry["sha256"].items():
                if sha256(weights_folder(paper) / relative) != digest:
                    problem = f"{relative}: sha256 differs from the manifest"
            if problem is None:
                problem = fingerprint_differs(entry["fingerprint"], fingerprint(paper, folder))
            failures += problem is not None
            print(f"{paper}/weights/{name}: {problem or 'ok'}")
    return 1 if failures else 0


def total_megabytes() -> float:
    """The size of every file the manifests list (nir_cgan/weights/ also holds its reader network, not a GAN's)."""
    return sum((weights_folder(paper) / relative).stat().st_size
               for paper in PAPERS for entry in read_manifest(paper).values() for relative in entry["sha256"]) / 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command_name", required=True)
    a = sub.add_parser("add", help="ship a trained run")
    a.add_argument("paper", choices=PAPERS)
    a.add_argument("name")
    a.add_argument("run")
    a.add_argument("--command", required=True, help="the exact command that trained it")
    a.add_argument("--commit", required=True)
    a.add_argument("--cpu", required=True)
    a.add_argument("--wall-s", type=float, required=True, help="the command's wall time in seconds")
    a.add_argument("--keep", nargs="+", help="networks to ship (default: all but discriminators)")
    a.add_argument("--trained", action="store_true", help="keep G as trained even if the run has an average")
    sub.add_parser("check", help="verify every shipped file")
    args = ap.parse_args(argv)
    if args.command_name == "add":
        add(args)
        print(f"all shipped networks: {total_megabytes():.2f} MB")
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
