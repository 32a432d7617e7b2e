"""The configuration study of §4.1: train configurations, measure them, write Tables 4.2–4.8 and Fig. 4.11.

    python nir_cgan/study.py --out runs/nir_cgan/study                      # every row of Tables 4.2–4.8
    python nir_cgan/study.py --configs ED-LS Mult-LS --out runs/nir_cgan/study --jobs 4 -- --device cuda
    python nir_cgan/study.py --out runs/nir_cgan/study --tables-only        # re-write the tables

Each configuration trains with ``nir_cgan/train.py`` (flags after ``--`` are passed on, e.g.
``--steps``, ``--device``, ``--vgg-weights none``) into ``OUT/<name>/`` and is measured with
``nir_cgan/eval.py`` (FID, LPIPS, attribute errors in degrees). Finished runs (with
``metrics.json``) are kept, so an interrupted study continues where it stopped. ``--jobs N``
runs N configurations at once as separate processes (for a GPU; on a 2-core CPU keep 1).
Writes ``OUT/study.md`` (one table per thesis table, ours beside the thesis's) and
``OUT/fig4_11_scores.png``.
"""
import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

from common.plots import markdown_table  # (first: it selects matplotlib's file-only backend)
import matplotlib.pyplot as plt
from nir_cgan import eval as evaluate
from nir_cgan import train
from nir_cgan.configs import CONFIGS, TABLES, THESIS_SCORES

HERE = Path(__file__).parent


def run_one(name, out, extra, in_process):
    """Train (unless finished) and evaluate one configuration; returns its metrics."""
    run = out / name
    if not (run / "metrics.json").exists():
        train_argv = ["--config", name, "--out", str(run)] + (["--resume"] if (run / "checkpoint.pt").exists() else [])
        if in_process:
            train.main(train_argv + extra)
            evaluate.main(["--run", str(run), "--distance", "synthetic"])
        else:
            device = extra[extra.index("--device") + 1] if "--device" in extra else "cpu"
            with open(out / f"{name}.log", "w") as log:
                for script, argv in (("train.py", train_argv + extra),
                                     ("eval.py", ["--run", str(run), "--distance", "synthetic", "--device", device])):
                    subprocess.run([sys.executable, str(HERE / script), *argv], check=True, stdout=log,
                                   stderr=subprocess.STDOUT)
    return json.loads((run / "metrics.json").read_text())


def score_bars(bars, path, fid_label, lpips_label):
    """Fig. 4.11: FID and diversity per configuration, one colour per experiment (thesis table)."""
    fig, axes = plt.subplots(2, 1, figsize=(max(6, 0.45 * len(bars)), 6), sharex=True)
    groups = list(dict.fromkeys(b[0] for b in bars))
    colours = [f"C{groups.index(b[0])}" for b in bars]
    for ax, k, label in ((axes[0], 2, fid_label), (axes[1], 3, lpips_label)):
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
    """study.md and Fig. 4.11 from the finished runs among ``names``."""
    results = {n: json.loads((out / n / "metrics.json").read_text()) for n in names if (out / n / "metrics.json").exists()}
    if not results:
        raise SystemExit(f"no finished configuration in {out} yet")
    some = next(iter(results.values()))
    lines = [f"Ours: FID ({some['fid_features']}) and diversity ({some['lpips_distance']}, "
             f"{some['diversity_sources']} sources × {some['diversity_outputs_per_source']} outputs), "
             "reader errors in degrees on the test outputs; thesis: FID (Inception) and LPIPS (AlexNet).", ""]
    bars = []                                                      # (table, name, FID, LPIPS) for Fig. 4.11
    for table, configs in TABLES.items():
        rows = []
        for name in configs:
            if name not in results:
                continue
            m, (t_fid, t_lpips) = results[name], THESIS_SCORES.get(name, (None, None))
            err = m.get("attribute_error_degrees", {})
            rows.append({"configuration": name, "FID": m["fid"], "LPIPS": m["lpips"],
                         "yaw err °": err.get("yaw"), "gaze-yaw err °": err.get("gaze_yaw"),
                         "thesis FID": t_fid, "thesis LPIPS": t_lpips})
            bars.append((table.split()[0], name, m["fid"], m["lpips"]))
        if rows:
            lines += [f"### Table {table}", "", markdown_table(rows), ""]
    (out / "study.md").write_text("\n".join(lines))
    score_bars(bars, out / "fig4_11_scores.png", f"FID ({some['fid_features']})", f"diversity ({some['lpips_distance']})")
    print("\n".join(lines))
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS), metavar="NAME",
                    help="configurations to run (default: every row of Tables 4.2–4.8)")
    ap.add_argument("--out", type=Path, default=Path("runs/nir_cgan/study"))
    ap.add_argument("--jobs", type=int, default=1, help="configurations at once, as processes (default: 1, in-process)")
    ap.add_argument("--tables-only", action="store_true", help="only re-write study.md and the figures")
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.tables_only:
        if args.jobs == 1:
            for name in args.configs:
                run_one(name, args.out, extra, in_process=True)
        else:
            with ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(lambda n: run_one(n, args.out, extra, in_process=False), args.configs))
    return tables(args.out, args.configs)


if __name__ == "__main__":
    main()
