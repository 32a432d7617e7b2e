"""The maintainer commands of tools/: each takes --help, does only what it is asked and says what it wrote."""
import pytest

from common.manifest import ROOT
from tools import draws, figures, gallery, ship


def tracked_outputs():
    """The files tools/ may write: docs/ and every manifest, with their bytes."""
    paths = [*ROOT.glob("docs/**/*.png"), *ROOT.glob("*/weights/manifest.json"), *ROOT.glob("*/draws.json")]
    return {p: p.read_bytes() for p in paths}


@pytest.mark.parametrize("main", [figures.main, gallery.main, ship.main, draws.main])
def test_help_prints_and_writes_nothing(main, capsys):
    before = tracked_outputs()
    with pytest.raises(SystemExit) as err:
        main(["--help"])
    assert err.value.code == 0 and "usage:" in capsys.readouterr().out
    assert tracked_outputs() == before


def test_figures_refuses_a_paper_it_does_not_know(capsys):
    with pytest.raises(SystemExit):
        figures.main(["no_such_paper"])
    assert "is not a paper of this repository" in capsys.readouterr().err


def test_the_gallery_writes_the_png_it_is_given_or_one_inside_a_folder(tmp_path, capsys):
    gallery.main(["--out", str(tmp_path)])
    assert (tmp_path / "gallery.png").stat().st_size > 0 and f"wrote {tmp_path / 'gallery.png'}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        gallery.main(["--out", str(tmp_path / "gallery.txt")])
    assert not (tmp_path / "gallery.txt").exists()


def test_the_end_numbers_of_a_draw_are_the_last_logged_values(tmp_path):
    (tmp_path / "log.csv").write_text("step,fid,fid_ema,diversity\n0,100,100,0.5\n25,,,\n50,40.5,38.25,0.7\n60,,,\n")
    assert draws.end_numbers(tmp_path) == {"steps": 60, "fid": 40.5, "fid_ema": 38.25, "diversity": 0.7}


def test_the_samples_figure_of_a_set_is_kept_when_a_draw_ran_elsewhere(tmp_path, capsys):
    """Records travel with the repository, run folders do not: a set whose draws' samples are absent here
    keeps its figure byte for byte (a redraw would drop rows) and says so."""
    figure = ROOT / "docs" / "dcgan_celeba" / "draws_began_now.png"
    before = figure.read_bytes()
    assert draws.last_samples_figure("dcgan_celeba", "began", "now", tmp_path) == figure
    assert figure.read_bytes() == before and f"kept {figure} as it was: no samples in {tmp_path}" in capsys.readouterr().out
