"""Time the commands a README promises a time for, and record them in docs/timings.json.

    python -m tools.timings eval                 # `python <paper>/eval.py` of every paper (the shipped networks)
    python -m tools.timings eval began_refiner
    python -m tools.timings tests                # the README's test command, `python -m pytest -q` (and its
                                                 # ten slowest tests)

Each record: the command, its wall time, the CPU (``common.device.cpu_name``), the threads torch used,
whether dlib was installed (face detection adds to began_refiner's and dcgan_celeba's eval) and the load
of the machine as it started (time it on an idle machine). The READMEs read them (``tools.readme``);
training times come from the recorded draws (``tools.draws``).
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

from common.cli import one_sentence_errors                       # noqa: E402
from common.device import cpu_name                               # noqa: E402
from common.folders import atomic_write_json                     # noqa: E402
from common.manifest import PAPERS, ROOT                         # noqa: E402

TIMINGS = ROOT / "docs" / "timings.json"


def timed(key: str, command: list, suite: bool = False) -> dict:
    """Run ``command`` from the repository root; its record under ``key``. A failing eval records nothing;
    the test suite is recorded with its exit status (a README waiting for this very number fails its
    check until it is written) and its last lines, the ten slowest tests, are printed."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if suite:
        print("\n".join(done.stdout.splitlines()[-16:]))
    elif done.returncode:
        raise SystemExit(f"{' '.join(command[1:])} failed (exit status {done.returncode}): nothing recorded")
    record = {"command": " ".join(["python", *command[1:]]), "wall_s": round(time.perf_counter() - started, 1),
              "cpu": cpu_name(), "cores": os.cpu_count(), "load_at_start": round(load, 2),
              "dlib": importlib.util.find_spec("dlib") is not None, "exit_status": done.returncode}
    print(f"{key}: {record['wall_s']} s")
    return record


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["eval", "tests"])
    ap.add_argument("papers", nargs="*", metavar="PAPER", help="eval: the papers to time (default: all)")
    args = ap.parse_args(argv)
    records = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    if args.what == "tests":
        records["tests"] = timed("tests", [sys.executable, "-m", "pytest", "-q", "--durations=10"], suite=True)
    for paper in (args.papers or PAPERS) if args.what == "eval" else []:
        records[f"eval {paper}"] = timed(f"eval {paper}", [sys.executable, f"{paper}/eval.py"])
    atomic_write_json(TIMINGS, records, indent=1)
    print(f"wrote {TIMINGS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
