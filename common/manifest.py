"""Where shipped networks live and what their manifest records (``tools.ship`` ships them;
``common.checkpoints.load_run`` checks a shipped checkpoint's sha256 here before loading it)."""
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The papers: every folder holding a paper.py, its declaration (read by tools/, benchmarks/, tests/). Adding a
# sixth paper is adding its folder; no list names them by hand.
PAPERS = tuple(sorted(path.parent.name for path in ROOT.glob("*/paper.py")))


def weights_folder(paper: str) -> Path:
    return ROOT / paper / "weights"


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(paper: str) -> dict:
    path = weights_folder(paper) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def manifest_entry(checkpoint_path: Path):
    """``(paper, name, entry)`` when ``checkpoint_path`` is a shipped checkpoint listed in its paper's
    manifest (``<paper>/weights/<name>/…/checkpoint.pt``), else ``None``."""
    path = Path(checkpoint_path).resolve()
    for paper in PAPERS:
        folder = weights_folder(paper)
        if folder in path.parents:
            relative = path.relative_to(folder).as_posix()
            for name, entry in read_manifest(paper).items():
                if relative in entry["sha256"]:
                    return paper, name, entry
    return None


def check_sha256(checkpoint_path: Path) -> None:
    """Refuse, with one sentence, a shipped checkpoint whose bytes are not the ones its manifest records."""
    found = manifest_entry(checkpoint_path)
    if found is None:
        return
    paper, name, entry = found
    relative = Path(checkpoint_path).resolve().relative_to(weights_folder(paper)).as_posix()
    if sha256(checkpoint_path) != entry["sha256"][relative]:
        raise SystemExit(f"{checkpoint_path} is not the file {paper}/weights/manifest.json records (sha256 differs): "
                         f"it was changed or damaged. Restore it with: git checkout -- {paper}/weights")
