"""Record draws of a bare command: a GAN's end number is one draw, so a README's number is a spread.

    python -m tools.draws run began_refiner B                    # seeds 0, 1, 2 × 1 and 2 threads
    python -m tools.draws run dcgan_celeba began --threads 1     # seeds 0, 1, 2, one thread
    python -m tools.draws run began_refiner B --label before --checkout /tmp/old --flags --lr 1e-3
    python -m tools.draws show began_refiner                     # the recorded draws as a table

``run`` trains ``python <paper>/train.py --seed S <paper.DRAWS[name]> <--flags …>`` once per seed and
thread count (``OMP_NUM_THREADS``; two one-thread trainings side by side, so both cores are used and
the times are upper bounds), evaluates each with its ``eval.py --run`` and records every draw in
``<paper>/draws.json``: the command, seed, threads, CPU, torch, commit, wall time, the end numbers of
``log.csv`` (``fid`` and, with ``--ema``, ``fid_ema``; ``diversity``, ``diversity_px``) and eval's numbers
(``paper.numbers``: FID, face-detection rate where dlib is installed …). A draw recorded again (same
label, command, seed, threads) replaces the old record. The READMEs' spreads are generated from these
files (``python -m tools.readme``), never typed.

``--checkout DIR`` trains with another checkout of this repository (an earlier commit, for a
before/after table) and records that checkout's commit; ``--label`` names the set (default ``now``).
"""
import argparse
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

from common.cli import one_sentence_errors                       # noqa: E402
from common.csvlog import read_log                               # noqa: E402
from common.device import cpu_name                               # noqa: E402
from common.folders import atomic_write_json                     # noqa: E402
from common.manifest import PAPERS, ROOT                         # noqa: E402

END_COLUMNS = ("fid", "fid_ema", "diversity", "diversity_px", "diversity_ema", "diversity_px_ema", "fid_sr", "fid_h2l")


def records_file(paper: str) -> Path:
    return ROOT / paper / "draws.json"


def read_draws(paper: str) -> list:
    """The recorded draws of ``paper`` (a list of dicts; none recorded: ``[]``)."""
    path = records_file(paper)
    return json.loads(path.read_text()) if path.exists() else []


def write_draws(paper: str, draws: list) -> Path:
    path = records_file(paper)
    atomic_write_json(path, draws, indent=1, sort_keys=False)
    return path


def commit_of(checkout: Path) -> str:
    """The checkout's commit (short hash), with ``+changes`` when its tracked files differ from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")


def drawn_stage(paper: str) -> str:
    """Where a run of ``paper`` keeps the log.csv and samples/ of its end result: the run folder itself
    (""), or for a pipeline of stage folders the stage its paper.py names (``DRAWN_STAGE``)."""
    return getattr(importlib.import_module(f"{paper}.paper"), "DRAWN_STAGE", "")


def end_numbers(run: Path) -> dict:
    """The last logged value of each column of ``END_COLUMNS`` in ``run``'s log.csv, and its last step."""
    log = read_log(run / "log.csv")
    numbers = {"steps": int(log["step"][-1])}
    for column in END_COLUMNS:
        values = [v for v in log.get(column, []) if not math.isnan(v)]   # NaN: the cell was empty then
        if values:
            numbers[column] = round(float(values[-1]), 4)
    return numbers


def train_and_evaluate(paper, name, flags, seed, threads, checkout, out_root):
    """One draw: train, evaluate, and return its record (not yet written)."""
    command = ["python", f"{paper}/train.py", "--seed", str(seed), *flags]
    run = out_root / f"{name}-s{seed}-t{threads}"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    load = os.getloadavg()[0]                                        # what else ran on the CPU as it started
    started = time.perf_counter()
    subprocess.run([sys.executable, *command[1:], "--out", str(run)], cwd=checkout, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    subprocess.run([sys.executable, f"{paper}/eval.py", "--run", str(run), "--out", str(run / "eval")],
                   cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL)
    declared = importlib.import_module(f"{paper}.paper")
    measured = declared.numbers(json.loads((run / "eval" / "metrics.json").read_text()))
    (evaluated,) = measured.values()                                 # one run evaluated: one entry
    return {"name": name, "command": " ".join(command), "seed": seed, "threads": threads,
            "cpu": cpu_name(), "machine": f"{os.cpu_count()} cores, {platform.machine()}",
            "torch": importlib.import_module("torch").__version__, "commit": commit_of(checkout),
            "wall_s": round(wall, 1), "load_at_start": round(load, 2), "log": end_numbers(run / drawn_stage(paper)),
            "eval": {k: round(v, 4) if isinstance(v, float) else v for k, v in evaluated.items()}}


def run(args) -> None:
    declared = importlib.import_module(f"{args.paper}.paper")
    if args.name not in declared.DRAWS:
        raise SystemExit(f"{args.paper}/paper.py declares no draw named {args.name!r} (it has: "
                         f"{', '.join(declared.DRAWS)})")
    flags = [*declared.DRAWS[args.name], *args.flags]
    jobs = [(seed, threads) for threads in args.threads for seed in args.seeds]
    out_root = Path(args.out).resolve() / args.paper / args.label
    print(f"{len(jobs)} draws of python {args.paper}/train.py {' '.join(flags)} into {out_root}")

    lock = threading.Lock()

    def one(job):
        record = {"label": args.label, **train_and_evaluate(args.paper, args.name, flags, *job,
                                                             Path(args.checkout), out_root)}
        with lock:                                      # recorded as it ends: a stopped set keeps its draws
            keep = [d for d in read_draws(args.paper) if (d["label"], d["command"], d["threads"]) !=
                    (record["label"], record["command"], record["threads"])]
            write_draws(args.paper, keep + [record])
        print(f"seed {record['seed']}, {record['threads']} thread(s): {record['eval']} ({record['wall_s']} s)")

    single = [job for job in jobs if job[1] == 1]
    with ThreadPoolExecutor(2) as pool:                 # one-thread trainings two at a time: both cores busy
        list(pool.map(one, single))
    for job in jobs:
        if job[1] != 1:
            one(job)
    print(f"wrote {records_file(args.paper)}")
    last_samples_figure(args.paper, args.name, args.label, out_root)


def last_samples_figure(paper: str, name: str, label: str, out_root: Path) -> Path:
    """docs/<paper>/draws_<name>_<label>.png: the last sample grid of every recorded draw of that set, one row
    each, titled with its seed, threads and eval FID (the numbers of draws.json, from the same runs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    draws = sorted((d for d in read_draws(paper) if d["name"] == name and d["label"] == label),
                   key=lambda d: (d["threads"], d["seed"]))
    folders = [out_root / f"{name}-s{d['seed']}-t{d['threads']}" / drawn_stage(paper) / "samples" for d in draws]
    grids = [max(folder.glob("step_*.png"), default=None) for folder in folders]         # each draw's last grid
    missing = [str(folder) for folder, grid in zip(folders, grids) if grid is None]
    path = ROOT / "docs" / paper / f"draws_{name}_{label}.png"
    if missing:                     # a draw recorded on another machine: keep the figure rather than drop its row
        print(f"kept {path} as it was: no samples in {', '.join(missing)} (draw the set there again to redraw it)")
        return path
    images = [Image.open(grid).convert("RGB") for grid in grids]
    heights = [8 * image.height / image.width + 0.3 for image in images]        # each grid 8 inches wide
    fig, axes = plt.subplots(len(draws), 1, figsize=(8, sum(heights) + 0.4), dpi=110, squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, d, grid, image in zip(axes[:, 0], draws, grids, images):
        ax.imshow(image)
        ax.set_title(f"seed {d['seed']}, {d['threads']} thread(s): {grid.stem.replace('step_', 'step ')}, "
                     f"FID {d['eval']['fid']:.1f}", fontsize=8)
        ax.axis("off")
    command = draws[0]["command"].replace(f"--seed {draws[0]['seed']}", "--seed S")      # the set's own flags
    fig.suptitle(textwrap.fill(f"{command}: the last samples of every draw ({label})", 100), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def show(args) -> None:
    for d in read_draws(args.paper):
        print(f"{d['label']:8s} {d['command']:60s} t{d['threads']} {d['commit']:12s} "
              + " ".join(f"{k} {v}" for k, v in d["eval"].items()))


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="train, evaluate and record draws of a bare command")
    r.add_argument("paper", choices=PAPERS)
    r.add_argument("name", help="a draw its paper.py declares (DRAWS), e.g. B")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    r.add_argument("--label", default="now", help="the set these draws belong to (e.g. before, now)")
    r.add_argument("--checkout", default=str(ROOT), help="the checkout whose code trains (default: this one)")
    r.add_argument("--out", default="runs/draws", help="where the run folders go")
    r.add_argument("--flags", nargs=argparse.REMAINDER, default=[], help="more train.py flags (last)")
    s = sub.add_parser("show", help="print the recorded draws")
    s.add_argument("paper", choices=PAPERS)
    args = ap.parse_args(argv)
    run(args) if args.verb == "run" else show(args)


if __name__ == "__main__":
    main()
