"""The configuration study of §4.1: train configurations, measure them, write Tables 4.2–4.8 and Fig. 4.11.

    python nir_cgan/study.py --out runs/nir_cgan/study                      # every row of Tables 4.2–4.8
    python nir_cgan/study.py --configs ED-LS Mult-LS --out runs/nir_cgan/study --jobs 4 -- --device cuda
    python nir_cgan/study.py --out runs/nir_cgan/study --tables-only        # re-write the tables

Each configuration trains with ``nir_cgan/train.py`` (flags after ``--`` are passed on, e.g.
``--steps``, ``--device``, ``--vgg-weights none``) into ``OUT/<name>/`` and is measured with
``nir_cgan/eval.py`` (FID, diversity, attribute errors in degrees). Finished runs (with
``metrics.json``) are kept, so an interrupted study continues where it stopped. ``--jobs N``
runs N configurations at once as separate processes (for a GPU; on a 2-core CPU keep 1).
Writes ``OUT/study.md`` (one table per thesis table, ours beside the thesis's) and
``OUT/fig4_11_scores.png``. A configuration that fails (a one-sentence stop or a crash) does not
stop the study: ``study.md`` lists it with its one-line reason (kept in ``OUT/failed.json``) and
the next one starts; the same command later retries it, and the study exits with status 1 while
any configuration has failed. Flags after ``--`` are checked before the first configuration starts.
"""
import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import matplotlib.pyplot as plt

from common.checkpoints import load_run
from common.cli import one_sentence_errors, positive_int
from common.folders import claim_folder
from common.plots import markdown_table  # (first: it selects matplotlib's file-only backend)
from nir_cgan import eval as evaluate
from nir_cgan import train
from nir_cgan.configs import CONFIGS, TABLES, THESIS_SCORES

HERE = Path(__file__).parent
FAILED = "failed.json"          # OUT/failed.json: {configuration: the one-line reason it failed}


def run_one(name, out, extra, in_process):
    """Train (unless finished) and evaluate one configuration; returns its metrics."""
    run = out / name
    if not (run / "metrics.json").exists():
        train_argv = ["--config", name, "--out", str(run)]
        if (run / "checkpoint.pt").exists():
            checkpoint = load_run(run, "nir_cgan")
            target = int(extra[extra.index("--steps") + 1]) if "--steps" in extra else checkpoint["config"]["steps"]
            train_argv = None if checkpoint["step"] >= target else train_argv + ["--resume"]
        if in_process:
            if train_argv is not None:
                train.main(train_argv + extra)              # Ctrl-C: saved, then SystemExit(130)
            evaluate.main(["--run", str(run), "--distance", "synthetic"])
        else:
            device = extra[extra.index("--device") + 1] if "--device" in extra else "auto"
            steps = [] if train_argv is None else [("train.py", train_argv + extra)]
            steps.append(("eval.py", ["--run", str(run), "--distance", "synthetic", "--device", device]))
            with open(out / f"{name}.log", "w") as log:
                for script, argv in steps:
                    subprocess.run([sys.executable, str(HERE / script), *argv], check=True, stdout=log,
                                   stderr=subprocess.STDOUT)
    return json.loads((run / "metrics.json").read_text())


def failure_reason(err, log=None) -> str:
    """One line saying why a configuration failed: the sentence of a SystemExit, the exception,
    or for a separate process the last line it printed (the error under a traceback)."""
    if isinstance(err, subprocess.CalledProcessError) and log is not None and log.exists():
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        text = lines[-1] if lines else f"exit status {err.returncode}"
    elif isinstance(err, SystemExit):
        text = str(err.code)
    else:
        text = f"{type(err).__name__}: {err}"
    return (text.splitlines() or [type(err).__name__])[0][:300]


def run_all(names, out, extra, jobs):
    """Every configuration in ``names``; one that fails is recorded in OUT/failed.json and the others go on."""
    failed_path = out / FAILED
    failed = json.loads(failed_path.read_text()) if failed_path.exists() else {}

    def attempt(name):
        try:
            run_one(name, out, extra, in_process=jobs == 1)
            failed.pop(name, None)
        except SystemExit as err:
            if err.code == 130:                             # Ctrl-C in train.py: the whole study stops
                raise KeyboardInterrupt from None
            failed[name] = failure_reason(err, out / f"{name}.log")
            print(f"{name} failed, the study goes on: {failed[name]}")
        except Exception as err:
            failed[name] = failure_reason(err, out / f"{name}.log")
            print(f"{name} failed, the study goes on: {failed[name]}")

    try:
        if jobs == 1:
            for name in names:
                attempt(name)
        else:
            with ThreadPoolExecutor(jobs) as pool:
                list(pool.map(attempt, names))
    finally:
        failed_path.write_text(json.dumps(failed, indent=2, sort_keys=True) + "\n")


def score_bars(bars, path, fid_label, diversity_label):
    """Fig. 4.11: FID and diversity per configuration, one colour per experiment (thesis table)."""
    fig, axes = plt.subplots(2, 1, figsize=(max(6, 0.45 * len(bars)), 6), sharex=True)
    groups = list(dict.fromkeys(b[0] for b in bars))
    colours = [f"C{groups.index(b[0])}" for b in bars]
    for ax, k, label in ((axes[0], 2, fid_label), (axes[1], 3, diversity_label)):
        ax.bar(range(len(bars)), [b[k] for b in bars], color=colours)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(bars)), [b[1] for b in bars], rotation=70, ha="right", fontsize=8)
    for g in groups:
        axes[0].bar(0, 0, color=f"C{groups.index(g)}", label=f"Table {g}")
    axes[0].legend(fontsize=7, ncol=min(3, len(groups)), loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    fig.suptitle("Fig. 4.11 (ours): FID and diversity per configuration")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(out, names):
    """study.md and Fig. 4.11 from the finished runs among ``names``; the failed ones listed with their reason."""
    results = {n: json.loads((out / n / "metrics.json").read_text()) for n in names if (out / n / "metrics.json").exists()}
    failed_path = out / FAILED
    failed = json.loads(failed_path.read_text()) if failed_path.exists() else {}
    failed = {n: failed[n] for n in names if n in failed and n not in results}
    if not results and not failed:
        raise SystemExit(f"no finished configuration in {out} yet: run the study without --tables-only first.")
    lines = []
    if results:
        some = next(iter(results.values()))
        lines += [f"Ours: FID ({some['fid_features']}) and diversity ({some['diversity_distance']}, "
                  f"{some['diversity_sources']} sources × {some['diversity_outputs_per_source']} outputs), "
                  "reader errors in degrees on the test outputs; thesis: FID (Inception) and LPIPS (AlexNet).", ""]
    bars = []                                                      # (table, name, FID, diversity) for Fig. 4.11
    for table, configs in TABLES.items():
        rows = []
        for name in configs:
            if name not in results:
                continue
            m, (t_fid, t_lpips) = results[name], THESIS_SCORES.get(name, (None, None))
            err = m.get("attribute_error_degrees", {})
            rows.append({"configuration": name, "FID": m["fid"], "diversity": m["diversity"],
                         "yaw err °": err.get("yaw"), "gaze-yaw err °": err.get("gaze_yaw"),
                         "thesis FID": t_fid, "thesis LPIPS": t_lpips})
            bars.append((table.split()[0], name, m["fid"], m["diversity"]))
        if rows:
            lines += [f"### Table {table}", "", markdown_table(rows), ""]
    if failed:
        lines += ["### Failed configurations", ""] + [f"- {name}: failed: {why}" for name, why in failed.items()] + [""]
    (out / "study.md").write_text("\n".join(lines))
    if bars:
        score_bars(bars, out / "fig4_11_scores.png", f"FID ({some['fid_features']})",
                   f"diversity ({some['diversity_distance']})")
    print("\n".join(lines))
    return results


@one_sentence_errors
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS), metavar="NAME",
                    help="configurations to run (default: every row of Tables 4.2–4.8)")
    ap.add_argument("--out", type=Path, default=Path("runs/nir_cgan/study"))
    ap.add_argument("--jobs", type=positive_int, default=1,
                    help="configurations at once, as processes (default: 1, in-process)")
    ap.add_argument("--tables-only", action="store_true", help="only re-write study.md and the figures")
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.tables_only and not args.out.is_dir():
        raise SystemExit(f"{args.out} does not exist: run the study without --tables-only first.")
    if extra and not args.tables_only:
        train.parse(["--config", args.configs[0], *extra])   # a bad flag for train.py stops here, before any run
    claim_folder(args.out)
    if not args.tables_only:
        try:
            run_all(args.configs, args.out, extra, args.jobs)
        except KeyboardInterrupt:
            print("study stopped; the same command continues it where it stopped.")
            raise SystemExit(130) from None
    results = tables(args.out, args.configs)
    failed = [name for name in args.configs if name not in results]
    if failed and not args.tables_only:
        raise SystemExit(f"{len(failed)} of {len(args.configs)} configurations failed ({', '.join(failed)}): "
                         f"their reasons are in {args.out / 'study.md'}; the same command retries them.")
    return results


if __name__ == "__main__":
    main()
