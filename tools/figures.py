"""The README figures that an ``eval.py`` draws, and the manifests' numbers, from the shipped networks.

    python -m tools.figures                        # every paper (~5 min on 2 CPU cores), then the gallery
    python -m tools.figures began_refiner          # one paper's figures and numbers, no gallery
    python -m tools.figures --numbers-only nir_cgan

For each paper asked: ``python <paper>/eval.py`` with no ``--run`` (into ``runs/<paper>/shipped``), its
figures (``paper.FIGURES``) copied into ``docs/<paper>/`` under the names the README shows, and the
numbers of each shipped network (``paper.numbers``) written into ``<paper>/weights/manifest.json`` with
``measured_on``, the digest of the files they were measured on (``tools.ship check`` compares it);
with every paper, also ``docs/gallery.png``. It prints every path it writes. Figures of other runs
(training samples, recorded draws) are drawn by ``python -m tools.readme``.
"""
import argparse
import importlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

from common.cli import one_sentence_errors                       # noqa: E402
from common.manifest import PAPERS, ROOT, files_digest, read_manifest # noqa: E402
from tools import gallery                                        # noqa: E402
from tools.ship import write_manifest                            # noqa: E402


def regenerate(paper: str, figures: bool = True) -> list:
    """Run ``paper``'s eval on its shipped networks; copy its figures into docs/ (unless ``figures`` is
    False); record its numbers. Returns the paths written."""
    declared = importlib.import_module(f"{paper}.paper")
    importlib.import_module(f"{paper}.eval").main(declared.EVAL_ARGS)
    out = ROOT / "runs" / paper / "shipped"
    metrics = json.loads((out / "metrics.json").read_text())
    written = []
    for name in declared.FIGURES if figures else []:
        (ROOT / "docs" / paper).mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copyfile(out / "figures" / name, ROOT / "docs" / paper / name)))
    manifest, measured = read_manifest(paper), declared.numbers(metrics)
    for name in declared.SHIPPED:
        values = measured[declared.LABELS[name]]
        manifest[name]["eval"] = {**{k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()},
                                  "measured_on": files_digest(paper, name)}
    write_manifest(paper, manifest)
    return written + [ROOT / paper / "weights" / "manifest.json"]


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("papers", nargs="*", metavar="PAPER",
                    help=f"the papers to redo (default: all, and the gallery): {', '.join(PAPERS)}")
    ap.add_argument("--numbers-only", action="store_true", help="record the numbers, copy no figure")
    args = ap.parse_args(argv)
    unknown = [p for p in args.papers if p not in PAPERS]
    if unknown:
        ap.error(f"{unknown[0]} is not a paper of this repository ({', '.join(PAPERS)})")
    for paper in args.papers or PAPERS:
        print(f"== {paper}")
        for path in regenerate(paper, figures=not args.numbers_only):
            print(f"wrote {path.relative_to(ROOT)}")
    if not args.papers and not args.numbers_only:
        print(f"wrote {gallery.draw(ROOT / 'docs' / 'gallery.png').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
