"""--ema DECAY (common.ema): the average's equation by hand, and the four train.py that take it:
fid_ema logged beside fid, G_ema checkpointed, continued exactly on --resume, loaded by eval as G."""
import argparse
import math

import pytest
import torch
from test_began_refiner import TINY as BEGAN_TINY
from test_dcgan_celeba import TINY as DCGAN_TINY
from test_nir_cgan import TINY as NIR_TINY
from torch import nn

from common.checkpoints import load_networks, read_checkpoint
from common.csvlog import read_log
from common.ema import MovingAverage, decay, decay_at, with_average
from conftest import check_resume


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


RUNS = {"began_refiner": BEGAN_TINY + ["--generator", "began"], "dcgan_celeba": DCGAN_TINY,
        "nir_cgan": NIR_TINY + ["--config", "ED-LS-LR-2", "--fid-pairs", "8", "--fid-every", "2"],
        "style_anime": ["--size", "16", "--train-faces", "32", "--fid-faces", "16", "--batch-size", "8",
                        "--log-every", "2", "--fid-every", "2", "--sample-every", "4", "--ckpt-every", "2"]}


@pytest.mark.parametrize("paper", sorted(RUNS))
def test_ema_is_logged_checkpointed_resumed_and_evaluated(paper, tmp_path, capsys):
    train = __import__(f"{paper}.train", fromlist=["main"])
    steps = 6 if paper == "began_refiner" else 4               # a half that ends on a log step
    straight, _ = check_resume(train.main, RUNS[paper] + ["--ema", "0.9"], tmp_path, steps=steps, half=steps // 2)
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
