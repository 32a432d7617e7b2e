"""The READMEs can be trusted: every generated number agrees with the file that holds it, every code link
points at the line that holds what it names, every relative link and image resolves, each README keeps
to its length, and none reads as history."""
import re
from pathlib import Path

import pytest

from common.manifest import PAPERS, ROOT
from tools import readme

DOCS = readme.readmes()
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def test_every_generated_number_and_table_agrees_with_its_source(capsys):
    assert readme.main(["--check"]) == 0, capsys.readouterr().out


def test_a_changed_manifest_number_names_the_readme_that_no_longer_agrees(monkeypatch, capsys):
    real = readme.read_manifest

    def changed(paper):
        manifest = real(paper)
        for entry in manifest.values():
            entry["eval"] = {k: (v + 1.0 if isinstance(v, float) else v) for k, v in entry["eval"].items()}
        return manifest
    monkeypatch.setattr(readme, "read_manifest", changed)
    monkeypatch.setattr(Path, "write_text", lambda *a, **k: pytest.fail("--check wrote a file"))
    assert readme.main(["--check"]) == 1
    said = capsys.readouterr().out
    assert "began_refiner/README.md" in said and "dcgan_celeba/README.md" in said


def test_a_changed_draw_names_the_readme_that_no_longer_agrees(monkeypatch, capsys):
    real = readme.read_draws
    monkeypatch.setattr(readme, "read_draws", lambda paper: [{**d, "eval": {**d["eval"], "fid": d["eval"]["fid"] + 9}}
                                                             for d in real(paper)])
    assert readme.main(["--check"]) == 1 and "began_refiner/README.md" in capsys.readouterr().out


def links(path):
    return [(text, target) for text, target in LINK.findall(path.read_text()) if "://" not in target
            and not target.startswith(("#", "mailto:"))]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_link_points_at_the_line_that_holds_what_it_names(path):
    for text, target in links(path):
        if "#L" not in target:
            continue
        file, line = target.split("#L")
        lines = (path.parent / file).read_text().splitlines()
        number = int(line.split("-")[0])
        assert 1 <= number <= len(lines), f"{path.name}: {target} is past the end of {file}"
        name = text.strip("`").split("(")[0].split(".")[-1]
        assert re.search(rf"\b{re.escape(name)}\b", lines[number - 1]), \
            f"{path.relative_to(ROOT)}: {target} is `{lines[number - 1].strip()}`, not {name}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(path):
    for _, target in links(path):
        file = target.split("#")[0]
        assert (path.parent / file).exists(), f"{path.relative_to(ROOT)} links {target}, which does not exist"


@pytest.mark.parametrize("path, budget", [(ROOT / "README.md", 200), *((ROOT / p / "README.md", 250) for p in PAPERS)],
                         ids=lambda x: str(x.relative_to(ROOT)) if isinstance(x, Path) else str(x))
def test_each_readme_keeps_to_its_length(path, budget):
    assert len(path.read_text().splitlines()) <= budget


HISTORY = re.compile(r"this session|issues? #?\d|earlier version|in this version|renamed|re-?run after|this time|"
                     r"no GPU was lent|used to be|was changed|previous(ly)? session", re.I)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_readme_reads_as_history(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if "](" in line and "github.com" in line:
            continue                                          # a link may name an upstream issue
        found = HISTORY.search(line)
        assert not found, f"{path.relative_to(ROOT)}:{number} reads as history: {found.group(0)!r}"



def redrawn(image: Path) -> bool:
    """Whether one command writes this image under docs/: ``tools.figures`` (each paper's ``FIGURES``),
    ``tools.draws`` (``draws_<name>_<label>.png`` of a declared draw), ``tools.gallery`` and
    ``python -m common.demo --out docs/common``."""
    import importlib
    parts = image.resolve().relative_to(ROOT / "docs").parts
    if parts in {("gallery.png",), *(("common", f) for f in ("faces.png", "yaw_sweep.png", "gaze_sweep.png"))}:
        return True
    if len(parts) != 2 or parts[0] not in PAPERS:
        return False
    declared = importlib.import_module(f"{parts[0]}.paper")
    names = "|".join(map(re.escape, declared.DRAWS))
    return parts[1] in declared.FIGURES or re.fullmatch(rf"draws_({names})_[\w.+-]+\.png", parts[1]) is not None


def test_every_figure_is_redrawn_by_a_command_and_shown_by_a_readme():
    shown = {(path.parent / target.split("#")[0]).resolve() for path in DOCS for _, target in links(path)}
    for image in [*ROOT.glob("docs/**/*.png"), *ROOT.glob("docs/**/*.jpg")]:
        assert redrawn(image), f"{image.relative_to(ROOT)}: no command redraws it"
        assert image.resolve() in shown, f"{image.relative_to(ROOT)}: no README shows it"
    for image in shown:
        if (ROOT / "docs") in image.parents:
            assert redrawn(image), f"a README shows {image.relative_to(ROOT)}, which no command redraws"
