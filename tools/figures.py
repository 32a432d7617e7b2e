"""Every README figure that an ``eval.py`` draws, regenerated from the shipped networks, in one command:

    python -m tools.figures            # ~4 min on 2 CPU cores (five evals and the gallery)

For each paper: ``python <paper>/eval.py`` with no ``--run`` (into ``runs/<paper>/shipped``), its
figures copied into ``docs/<paper>/`` under the names the README shows, and the headline numbers
of each shipped network (FID …) written into ``<paper>/weights/manifest.json`` (``eval``); then
``python -m tools.gallery`` (``docs/gallery.png``). README figures, README numbers and weights
then come from one source. Figures of other runs (GPU runs, studies, training samples) stay as
they are; each README says which run drew them.
"""
import importlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

from common.manifest import PAPERS, ROOT, read_manifest          # noqa: E402
from tools import gallery                                        # noqa: E402
from tools.ship import write_manifest                            # noqa: E402


def regenerate(paper: str) -> dict:
    """Run ``paper``'s eval on its shipped networks; copy its figures into docs/; record its numbers."""
    declared = importlib.import_module(f"{paper}.paper")
    importlib.import_module(f"{paper}.eval").main(declared.EVAL_ARGS)
    out = Path("runs") / paper / "shipped"
    metrics = json.loads((out / "metrics.json").read_text())
    for name in declared.FIGURES:
        (ROOT / "docs" / paper).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "figures" / name, ROOT / "docs" / paper / name)
    manifest = read_manifest(paper)
    measured = declared.numbers(metrics)
    numbers = {name: measured[declared.LABELS[name]] for name in declared.SHIPPED}
    for name, values in numbers.items():
        manifest[name]["eval"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    write_manifest(paper, manifest)
    return numbers


def main():
    for paper in PAPERS:
        print(f"== {paper}")
        for name, values in regenerate(paper).items():
            print(f"   {name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in values.items()))
    print(f"wrote {gallery.draw(ROOT / 'docs' / 'gallery.png')}")


if __name__ == "__main__":
    main()
