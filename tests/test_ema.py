"""--ema DECAY (common.ema): the average's equation by hand, and the four train.py that take it:
fid_ema logged beside fid, G_ema checkpointed, continued exactly on --resume, loaded by eval as G."""
import argparse
import math

import pytest
import torch
from torch import nn

from common.checkpoints import load_networks, read_checkpoint
from common.csvlog import read_log
from common.ema import MovingAverage, decay, decay_at, with_average
from common.manifest import PAPERS, ROOT
from conftest import check_resume, paper_tests


def test_decay_warms_up_as_tensorflow_num_updates():
    assert decay_at(0, 0.999) == pytest.approx(0.1)          # (1 + 0) / (10 + 0)
    assert decay_at(80, 0.999) == pytest.approx(0.9)         # 81 / 90
    assert decay_at(8990, 0.999) == pytest.approx(0.999)     # 8991 / 9000: the warm-up ends here
    assert decay_at(100_000, 0.999) == 0.999


def test_the_average_moves_by_one_minus_decay_towards_the_weights():
    net = nn.Linear(1, 1, bias=False)
    net.weight.data.fill_(0.0)
    ema = MovingAverage(net, 0.5)
    net.weight.data.fill_(1.0)
    ema.update(step=1000)                     # decay 0.5: 0.5·0 + 0.5·1
    assert ema.net.weight.item() == pytest.approx(0.5)
    ema.update(step=1001)                     # 0.5·0.5 + 0.5·1
    assert ema.net.weight.item() == pytest.approx(0.75)
    ema.update(step=0)                        # warm-up, decay 0.1: 0.1·0.75 + 0.9·1
    assert ema.net.weight.item() == pytest.approx(0.975)
    assert not ema.net.weight.requires_grad


def test_buffers_are_copied_not_averaged():
    net = nn.BatchNorm1d(1)
    ema = MovingAverage(net, 0.999)
    net.running_mean.fill_(3.0)
    ema.update(step=10_000)
    assert ema.net.running_mean.item() == 3.0


def test_with_average_names_the_average_s_numbers():
    measure = lambda net: {"fid": float(net)}                      # noqa: E731
    assert with_average(measure, 1, None) == {"fid": 1.0}
    assert with_average(measure, 1, argparse.Namespace(net=2)) == {"fid": 1.0, "fid_ema": 2.0}


@pytest.mark.parametrize("text", ["1", "-0.1", "1.5"])
def test_a_decay_outside_0_1_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        decay(text)


# Every paper whose train.py takes --ema, on its smallest run (nir_cgan with a mapping network L, averaged too)
AVERAGED = [paper for paper in PAPERS if "add_ema_arg(" in (ROOT / paper / "train.py").read_text()]
EVERY = ["--log-every", "2", "--fid-every", "2", "--sample-every", "4", "--ckpt-every", "2", "--ema", "0.9"]


@pytest.mark.parametrize("paper", AVERAGED)
def test_ema_is_logged_checkpointed_resumed_and_evaluated(paper, tmp_path, capsys):
    train = __import__(f"{paper}.train", fromlist=["main"])
    argv = paper_tests(paper)["run"] + EVERY + (["--config", "ED-LS-LR-2"] if paper == "nir_cgan" else [])
    straight, _ = check_resume(train.main, argv, tmp_path, steps=4, half=2)
    log = read_log(straight / "log.csv")
    assert not all(math.isnan(v) for v in log["fid_ema"]), "fid_ema is logged beside fid"
    checkpoint = read_checkpoint(straight / "checkpoint.pt")
    assert "G_ema" in checkpoint["models"]
    assert not torch.equal(checkpoint["models"]["G_ema"][next(iter(checkpoint["models"]["G"]))],
                           checkpoint["models"]["G"][next(iter(checkpoint["models"]["G"]))])
    model = __import__(f"{paper}.model", fromlist=["build"])
    networks, _ = load_networks(straight, paper, model.build, names=["G"])
    average = checkpoint["models"]["G_ema"]
    assert all(torch.equal(networks["G"].state_dict()[k], average[k]) for k in average)
    assert "moving average" in capsys.readouterr().out
