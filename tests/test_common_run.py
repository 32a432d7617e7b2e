"""Tests for common/run.py: checkpoints, log.csv, Ctrl-C, non-finite guard, flags."""
import argparse
import json
import os
import random
import signal
import threading

import numpy as np
import pytest
import torch
from torch import nn

from common import run
from common.run import (CsvLogger, ImagesPerSecond, NonFiniteLoss, StopOnInterrupt,
                        add_common_args, apply_preset, check_finite, load_checkpoint,
                        make_run_dir, pick_device, read_log, save_checkpoint, seed_everything)


# ----------------------------------------------------------------- checkpoints

def _train_steps(model, opt, sched, n):
    """n Adam steps on random inputs drawn from torch's RNG (so RNG state matters)."""
    for _ in range(n):
        x = torch.randn(8, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()


def _setup(seed):
    torch.manual_seed(seed)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    return model, opt, sched


def _draws():
    return torch.rand(3), np.random.rand(3), random.random()


def test_checkpoint_round_trip_restores_states_and_rng(tmp_path):
    seed_everything(0)
    model, opt, sched = _setup(0)
    _train_steps(model, opt, sched, 2)
    fixed_noise = torch.randn(5, 2)
    path = save_checkpoint(tmp_path / "checkpoint.pt", 2, {"G": model}, {"G": opt}, {"G": sched},
                           extra={"k_t": 0.25, "noise": fixed_noise}, config={"lr": 0.01})
    draws_a = _draws()                         # what the original run draws next
    _train_steps(model, opt, sched, 2)         # ... and how it goes on training
    params_a = [p.detach().clone() for p in model.parameters()]

    seed_everything(123)                       # a different RNG state and a different model
    model2, opt2, sched2 = _setup(1)
    assert not torch.equal(model2.weight, model.weight)
    ckpt = load_checkpoint(path, {"G": model2}, {"G": opt2}, {"G": sched2})

    assert ckpt["step"] == 2 and ckpt["config"] == {"lr": 0.01}
    assert ckpt["extra"]["k_t"] == 0.25 and torch.equal(ckpt["extra"]["noise"], fixed_noise)
    assert sched2.last_epoch == 2
    state = opt2.state[model2.weight]
    assert float(state["step"]) == 2 and state["exp_avg"].abs().sum() > 0
    draws_b = _draws()
    assert torch.equal(draws_a[0], draws_b[0])
    assert np.array_equal(draws_a[1], draws_b[1])
    assert draws_a[2] == draws_b[2]
    _train_steps(model2, opt2, sched2, 2)     # training continues identically
    for p_a, p_b in zip(params_a, model2.parameters()):
        assert torch.equal(p_a, p_b)


def test_checkpoint_loaded_parameters_equal_saved(tmp_path):
    model, opt, sched = _setup(0)
    _train_steps(model, opt, sched, 2)
    save_checkpoint(tmp_path / "c.pt", 2, {"G": model}, {"G": opt})
    model2, opt2, _ = _setup(1)
    load_checkpoint(tmp_path / "c.pt", {"G": model2}, {"G": opt2})
    assert torch.equal(model.weight, model2.weight) and torch.equal(model.bias, model2.bias)
    s1, s2 = opt.state[model.weight], opt2.state[model2.weight]
    assert torch.equal(s1["exp_avg"], s2["exp_avg"]) and torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"])


def test_checkpoint_errors_are_one_sentence(tmp_path):
    model, opt, _ = _setup(0)
    with pytest.raises(SystemExit, match="No checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt", {"G": model}, {"G": opt})
    save_checkpoint(tmp_path / "c.pt", 1, {"G": model}, {"G": opt})
    with pytest.raises(SystemExit, match="no model named 'D'"):
        load_checkpoint(tmp_path / "c.pt", {"D": model}, {})


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model, opt, _ = _setup(0)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, 1, {"G": model}, {"G": opt})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no .tmp left

    def broken_save(obj, f):                   # writes half a file, then fails
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, 2, {"G": model}, {"G": opt})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert load_checkpoint(path, {"G": model}, {"G": opt})["step"] == 1


# ----------------------------------------------------------------- log.csv

def test_csv_logger_rows_resume_and_read_back(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLogger(path)
    for step in (10, 20, 30):
        log.log(step=step, loss_D=1 / 3, lr=torch.tensor(0.5), note="x")
    lines = path.read_text().splitlines()
    assert lines[0] == "step,loss_D,lr,note"
    assert lines[1] == "10,0.333333,0.5,x"
    assert len(lines) == 4
    with pytest.raises(ValueError, match="no column 'extra'"):
        log.log(step=40, extra=1.0)

    resumed = CsvLogger(path, resume_step=20)   # checkpoint was at step 20
    resumed.log(step=30, loss_D=2.0, lr=0.25)   # a column may be left out
    values = read_log(path)
    assert values["step"] == [10.0, 20.0, 30.0]
    assert values["loss_D"] == pytest.approx([1 / 3, 1 / 3, 2.0], rel=1e-5)
    assert values["lr"] == [0.5, 0.5, 0.25]
    assert np.isnan(values["note"][2])

    CsvLogger(path)                             # a new run starts a fresh file
    assert not path.exists()


# ----------------------------------------------------------------- non-finite guard

@pytest.mark.parametrize("bad, word", [(float("nan"), "nan"), (float("inf"), "inf"),
                                       (torch.tensor([1.0, float("-inf")]), "inf")])
def test_check_finite_names_loss_and_step(bad, word):
    with pytest.raises(NonFiniteLoss, match=f"loss_D became {word} at step 120; the last good "
                                            f"checkpoint stays in runs/x/checkpoint.pt"):
        check_finite(120, loss_G=0.5, loss_D=bad, checkpoint="runs/x/checkpoint.pt")


def test_check_finite_passes_finite_values():
    check_finite(5, loss_D=0.1, loss_G=torch.tensor(3.0), k_t=0)


# ----------------------------------------------------------------- Ctrl-C

def test_stop_on_interrupt_first_ctrl_c_sets_flag_second_raises():
    before = signal.getsignal(signal.SIGINT)
    with StopOnInterrupt() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested                   # no KeyboardInterrupt was raised
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_stop_on_interrupt_is_a_no_op_outside_main_thread():
    result = {}

    def body():
        with StopOnInterrupt() as stop:
            result["requested"] = stop.requested
            result["installed"] = stop._installed

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert result == {"requested": False, "installed": False}


# ----------------------------------------------------------------- run folder, flags, device

def test_make_run_dir_writes_config_and_refuses_to_clobber(tmp_path):
    out = tmp_path / "run"
    config = {"lr": 2e-4, "out": tmp_path / "run", "device": torch.device("cpu"), "size": 32}
    run_dir = make_run_dir(str(out), "dcgan_celeba", config)
    assert run_dir == out and (out / "samples").is_dir()
    loaded = json.loads((out / "config.json").read_text())
    assert loaded == {"lr": 2e-4, "out": str(out), "device": "cpu", "size": 32}
    assert list(loaded) == sorted(loaded)

    (out / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(SystemExit, match="already holds a checkpoint.pt: add --resume"):
        make_run_dir(str(out), "dcgan_celeba", config)
    assert make_run_dir(str(out), "dcgan_celeba", config, resume=True) == out
    with pytest.raises(SystemExit, match="no checkpoint.pt"):
        make_run_dir(str(tmp_path / "empty"), "dcgan_celeba", config, resume=True)


def test_make_run_dir_default_name(tmp_path):
    a = make_run_dir(None, "nir_cgan", {}, root=tmp_path / "runs")
    b = make_run_dir(None, "nir_cgan", {}, root=tmp_path / "runs")
    assert a.parent == b.parent == tmp_path / "runs" / "nir_cgan" and a != b
    with pytest.raises(SystemExit, match="--resume needs --out"):
        make_run_dir(None, "nir_cgan", {}, resume=True, root=tmp_path / "runs")


PRESETS = {"quick": dict(size=32, batch_size=16, steps=200, lr=2e-4, sample_every=50,
                         ckpt_every=100, gamma=0.5),
           "paper": dict(size=64, batch_size=64, steps=100_000, lr=1e-4, sample_every=1000,
                         ckpt_every=5000)}


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_common_args(parser, ckpt_every=999)
    parser.add_argument("--gamma", type=float, default=None)
    return apply_preset(parser.parse_args(argv), PRESETS)


def test_preset_fills_defaults_and_explicit_flags_win():
    args = _parse([])
    assert (args.preset, args.size, args.steps, args.lr, args.gamma) == ("quick", 32, 200, 2e-4, 0.5)
    assert args.device == "auto" and args.seed == 0 and not args.amp and not args.resume
    assert not hasattr(args, "preset_fallbacks")
    args = _parse(["--preset", "paper", "--steps", "7", "--batch-size", "3", "--gamma", "0.7"])
    assert (args.size, args.steps, args.batch_size, args.lr, args.gamma) == (64, 7, 3, 1e-4, 0.7)


def test_preset_missing_value_uses_fallback_or_says_so():
    presets = {"quick": dict(size=32, batch_size=16, steps=200, lr=2e-4, sample_every=50),
               "paper": dict(size=64)}
    parser = argparse.ArgumentParser()
    add_common_args(parser, ckpt_every=999)
    assert apply_preset(parser.parse_args([]), presets).ckpt_every == 999
    with pytest.raises(SystemExit, match="No value for --batch-size"):
        apply_preset(parser.parse_args(["--preset", "paper"]), presets)


def test_pick_device(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(SystemExit, match="Unknown --device 'tpu'"):
        pick_device("tpu")


def test_seed_everything_repeats_draws():
    seed_everything(7)
    a = _draws()
    seed_everything(7)
    b = _draws()
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_autocast_on_cpu_is_a_warned_no_op():
    with pytest.warns(UserWarning, match="--amp is ignored on CPU"):
        ctx = run.autocast(torch.device("cpu"), enabled=True)
    with ctx:
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_images_per_second(monkeypatch):
    clock = iter([100.0, 102.0, 103.0])
    monkeypatch.setattr(run.time, "perf_counter", lambda: next(clock))
    speed = ImagesPerSecond(batch_size=8, start_step=10)
    assert speed(20) == pytest.approx(80 / 2.0)    # 10 steps * 8 images in 2 s
    assert speed(25) == pytest.approx(40 / 1.0)


def test_progress_bar_counts(capsys):
    bar = run.progress(total=10, initial=4, desc="train")
    bar.update(2)
    assert bar.n == 6 and bar.total == 10
    bar.close()


def test_csv_logger_columns_declared_up_front(tmp_path):
    log = CsvLogger(tmp_path / "log.csv", columns=["loss", "fid"])
    log.log(step=0, fid=9.5)                  # a first row with only some of the columns
    log.log(step=1, loss=0.25)
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,loss,fid", "0,,9.5", "1,0.25,"]
