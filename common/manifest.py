"""The papers of this repository, and the manifests that are the only truth about their shipped networks.

``<paper>/weights/manifest.json`` records, per shipped folder ``<paper>/weights/<name>/``: the command
that trained it, every file's sha256, a fixed-seed output fingerprint and the numbers its ``eval.py``
measured on exactly those files (``tools.ship`` writes it). ``verify_shipped`` holds a shipped folder
to it before anything reads the folder (``common.checkpoints.load_run``): a missing or unreadable
manifest, a file it has no record of, a recorded file missing, or bytes that differ are refused with
one sentence and the ``git checkout`` that restores the shipped files -- as pip and the Hugging Face
hub check every downloaded file against its recorded hash.
"""
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


def _restore(paper: str) -> str:
    return f"restore the shipped files with: git checkout -- {paper}/weights"


def read_manifest(paper: str) -> dict:
    """``{name: entry}`` of ``<paper>/weights/manifest.json`` (``{}`` when there is none); one sentence when
    it is not a JSON object of entries that each record their files' sha256."""
    path = weights_folder(paper) / "manifest.json"
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path.relative_to(ROOT)} cannot be read ({type(err).__name__}): {_restore(paper)}") from None
    broken = not isinstance(manifest, dict) or any(
        not isinstance(entry, dict) or not isinstance(entry.get("sha256"), dict) for entry in manifest.values())
    if broken:
        raise SystemExit(f"{path.relative_to(ROOT)} is not a manifest (an object of entries, each with the sha256 "
                         f"of its files): {_restore(paper)}")
    return manifest


def shipped_name(folder):
    """``(paper, name)`` when ``folder`` is, or lies inside, a shipped folder ``<paper>/weights/<name>/``."""
    folder = Path(folder).resolve()
    for paper in PAPERS:
        weights = weights_folder(paper)
        if weights in folder.parents:
            return paper, folder.relative_to(weights).parts[0]
    return None


def files_digest(paper: str, name: str) -> str:
    """One sha256 over the names and sha256 of every file in ``<paper>/weights/<name>/``, as they are now: what
    a manifest's numbers record as ``measured_on``, so numbers and weights can be told apart."""
    folder = weights_folder(paper)
    lines = sorted(f"{p.relative_to(folder).as_posix()} {sha256(p)}" for p in (folder / name).rglob("*") if p.is_file())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def shipped_problem(paper: str, name: str):
    """What is wrong with ``<paper>/weights/<name>/`` against its manifest, in a few words, or None."""
    if not (weights_folder(paper) / "manifest.json").exists():
        return f"{paper}/weights/manifest.json is missing"
    entry = read_manifest(paper).get(name)
    if entry is None:
        return f"{paper}/weights/manifest.json has no entry for {name}"
    folder = weights_folder(paper)
    on_disk = {p.relative_to(folder).as_posix() for p in (folder / name).rglob("*") if p.is_file()}
    recorded = set(entry["sha256"])
    for relative in sorted(on_disk - recorded):
        return f"{paper}/weights/{relative} is not recorded in the manifest"
    for relative in sorted(recorded - on_disk):
        return f"{paper}/weights/{relative}, recorded in the manifest, is missing"
    for relative in sorted(recorded):
        if sha256(folder / relative) != entry["sha256"][relative]:
            return f"{paper}/weights/{relative} is not the file the manifest records (sha256 differs)"
    return None


def verify_shipped(folder) -> None:
    """Refuse, with one sentence, a shipped folder that is not exactly what its manifest records; any other
    folder passes untouched."""
    found = shipped_name(folder)
    if found is None:
        return
    problem = shipped_problem(*found)
    if problem:
        raise SystemExit(f"{problem}: the shipped networks are only read as their manifest records them; "
                         f"{_restore(found[0])}")
