"""The run lifecycle, the same in all five folders: a shared run folder never runs code, and a run of
another paper is refused by eval.py and by --resume, with one sentence and nothing written."""
import importlib
import pathlib

import pytest
import torch
from torch import nn

from common.run import FORMAT, save_checkpoint

PAPERS = ["began_refiner", "dcgan_celeba", "nir_cgan", "sr_degradation", "style_anime"]


class _Payload:
    """Unpickling this creates a file: a stand-in for a checkpoint that runs a shell command."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def _script(paper, name):
    return importlib.import_module(f"{paper}.{name}")


def _resume(paper, run):
    argv = ["--resume", "--out", str(run)]
    return argv + (["--stage", "h2l"] if paper == "sr_degradation" else [])   # sr: a stage folder


@pytest.mark.parametrize("paper", PAPERS)
def test_a_checkpoint_with_a_pickled_object_runs_nothing(paper, tmp_path):
    run, ran = tmp_path / "run", tmp_path / "payload-ran"
    run.mkdir()
    torch.save({"format": FORMAT, "paper": paper, "step": 1, "config": _Payload(ran)}, run / "checkpoint.pt")
    for main, argv in ((_script(paper, "eval").main, ["--run", str(run)]),
                       (_script(paper, "train").main, _resume(paper, run))):
        with pytest.raises(SystemExit, match="holds Python objects besides tensors"):
            main(argv)
        assert not ran.exists()
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize("paper", PAPERS)
def test_another_papers_run_is_refused_by_eval_and_resume(paper, tmp_path):
    other = next(p for p in PAPERS if p != paper)
    run = tmp_path / "run"
    run.mkdir()
    net = nn.Linear(1, 1)
    save_checkpoint(run / "checkpoint.pt", paper=other, step=3, models={"G": net}, model_args={},
                    optimizers={"G": torch.optim.Adam(net.parameters())}, config={"steps": 10})
    before = (run / "checkpoint.pt").read_bytes()
    for main, argv in ((_script(paper, "eval").main, ["--run", str(run)]),
                       (_script(paper, "train").main, _resume(paper, run))):
        with pytest.raises(SystemExit, match=f"is a {other} run, not a {paper} run"):
            main(argv)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]
    assert (run / "checkpoint.pt").read_bytes() == before
