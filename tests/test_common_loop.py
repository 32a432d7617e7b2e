"""Tests for common/loop.py: the Run bookkeeping (finiteness, log rows, checkpoints, Ctrl-C), log.csv, speed."""
import argparse
import math
import os
import signal
import threading

import numpy as np
import pytest
import torch
from torch import nn

from common import loop
from common.checkpoints import read_checkpoint
from common.csvlog import CsvLogger, read_log
from common.loop import ImagesPerSecond, Run, StopOnInterrupt


def _args(tmp_path, **kw):
    values = dict(steps=8, log_every=2, ckpt_every=2, out=str(tmp_path / "run"), lr=0.1)
    return argparse.Namespace(**{**values, **kw})


def _run(tmp_path, resumed=None, **kw):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return Run(_args(tmp_path, **kw), "test", {"G": model}, {"width": 2}, {"G": opt}, resumed=resumed,
               state=dict(counter=torch.tensor(0)), columns=["loss", "late", "fid"], images_per_step=4), model, opt


def _loop(run, model, opt, bad_step=None, poison_weight_at=None):
    """A tiny loop in the shape every train.py has; the loss is NaN from bad_step on."""
    for step in run.steps():
        loss = model(torch.ones(4, 2)).pow(2).mean()
        if bad_step is not None and step >= bad_step:
            loss = loss * float("nan")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == poison_weight_at:
            with torch.no_grad():
                model.weight.fill_(float("inf"))
            loss = loss.detach()                         # the loss itself stays finite
        run.log(step, loss=loss)
        run.save(step, counter=torch.tensor(step))


def test_a_nan_stops_the_run_and_the_checkpoint_left_is_finite(tmp_path):
    run, model, opt = _run(tmp_path, log_every=8)
    with pytest.raises(SystemExit, match=r"loss became non-finite at step 3; the last good checkpoint \(step 2\) "
                                         r"stays in .*checkpoint.pt. A lower --lr"):
        _loop(run, model, opt, bad_step=3)              # checked at the step-4 checkpoint, not only at log steps
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["step"] == 2 and ckpt["extra"]["counter"].item() == 2
    assert all(torch.isfinite(t).all() for t in ckpt["models"]["G"].values())


def test_a_nan_before_any_checkpoint_says_none_was_written(tmp_path):
    run, model, opt = _run(tmp_path, log_every=1, ckpt_every=100)
    with pytest.raises(SystemExit, match="loss became non-finite at step 1 .*; no checkpoint was written"):
        _loop(run, model, opt, bad_step=1)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_non_finite_weight_is_never_saved(tmp_path):
    run, model, opt = _run(tmp_path)
    with pytest.raises(SystemExit, match=r"a weight of G is not finite after step 4; the last good checkpoint \(step 2\)"):
        _loop(run, model, opt, poison_weight_at=4)
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2


@pytest.mark.loss_png
def test_rows_checkpoints_and_model_args(tmp_path):
    run, model, opt = _run(tmp_path, steps=5)
    run.log_eval(0, fid=9.0)
    _loop(run, model, opt)
    run.finish()
    log = read_log(tmp_path / "run" / "log.csv")
    assert log["step"] == [0, 2, 4, 5]                     # every 2 steps and the last
    assert log["fid"][0] == 9.0 and np.isnan(log["loss"][0]) and log["lr"][1] == 0.1 and log["img_s"][1] > 0
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert (ckpt["step"], ckpt["paper"], ckpt["model_args"]) == (5, "test", {"width": 2})
    assert (tmp_path / "run" / "loss.png").exists() and (tmp_path / "run" / "config.json").exists()


def test_ctrl_c_finishes_the_step_saves_says_how_to_continue_and_exits_130(tmp_path, capsys):
    run, model, opt = _run(tmp_path, ckpt_every=100)
    for step in run.steps():
        run.log(step, loss=torch.tensor(1.0))
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)          # the first Ctrl-C only asks to stop
        run.save(step, counter=torch.tensor(step))
    assert step == 3 and run.stopped and read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3
    with pytest.raises(SystemExit) as stopped:           # so `train.py && eval.py` does not evaluate a partial run
        run.finish()
    assert stopped.value.code == 130
    assert f"continue with: python test/train.py --resume --out {tmp_path / 'run'}" in capsys.readouterr().out


def test_declared_state_is_saved_and_restored_and_undeclared_state_refused(tmp_path):
    run, model, opt = _run(tmp_path, steps=4)
    _loop(run, model, opt)
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint["extra"]["counter"].item() == 4
    resumed, _, _ = _run(tmp_path, resumed=checkpoint, steps=6)
    assert resumed.resumed and resumed.start == 4 and resumed.state["counter"].item() == 4
    with pytest.raises(ValueError, match="'k' is not declared"):
        resumed.save(5, k=torch.tensor(1.0))


def test_a_column_that_starts_late_is_watched_too(tmp_path):
    """A value that is None for the first steps (sr's GAN term during the pixel warm-up) is still
    checked once it appears: the watch covers every declared column, not those of the first log call."""
    run, model, opt = _run(tmp_path, log_every=100, ckpt_every=100, steps=6)
    with pytest.raises(SystemExit, match="late became non-finite at step 5"):
        for step in run.steps():
            run.log(step, loss=torch.tensor(1.0), late=None if step < 3 else torch.tensor(1.0 if step < 5 else math.nan))
            run.save(step)


def test_an_undeclared_column_is_refused(tmp_path):
    run, _, _ = _run(tmp_path)
    with pytest.raises(ValueError, match="'typo' is not one of the declared columns"):
        run.log(1, typo=torch.tensor(1.0))


def test_a_run_folder_in_use_by_another_process_is_refused_and_left_alone(tmp_path):
    import fcntl
    folder = tmp_path / "run"
    folder.mkdir()
    other = os.open(folder, os.O_RDONLY)                 # another process's claim: a lock on the folder
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(SystemExit, match="is in use by another process"):
            _run(tmp_path)
        assert list(folder.iterdir()) == []
    finally:
        os.close(other)                                  # the process ends: its claim goes with it
    run, model, opt = _run(tmp_path, steps=2)
    _loop(run, model, opt)
    assert read_checkpoint(folder / "checkpoint.pt")["step"] == 2


def test_log_eval_fills_the_same_row_and_is_not_counted_as_training_time(tmp_path, monkeypatch):
    clock = iter([0.0, 10.0, 10.0, 30.0, 40.0])     # start, log(2), its end, FID done 20 s later, log(4)
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    log = CsvLogger(tmp_path / "log.csv", columns=["loss", "fid", "img_s"])
    speed = ImagesPerSecond(images_per_step=5)
    log.log(step=2, loss=1.0, img_s=speed(2))
    logged_at = loop.time.perf_counter()
    log.log(step=2, fid=7.0)
    speed.exclude(loop.time.perf_counter() - logged_at)
    assert speed(4) == pytest.approx(10 / 10.0)          # 2 steps × 5 images in the 10 s of training only
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,loss,fid,img_s", "2,1,7,1"]


def test_low_diversity_after_step_0_is_flagged_in_the_progress_bar(tmp_path):
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = Run(_args(tmp_path, steps=4), "test", {"G": model}, {}, {"G": opt}, columns=["loss", "diversity"],
              images_per_step=4)
    run.log_eval(0, diversity=0.05)
    assert run.note == "0.05"                            # an untrained generator is not a collapse
    for step in run.steps():
        run.log(step, loss=model(torch.ones(4, 2)).pow(2).mean())
        if step == 2:
            run.log_eval(step, diversity=0.05)
            assert run.note == "0.05 (mode collapse?)"
    run.log_eval(4, diversity=0.8)
    assert run.note == "0.80"
    run.finish()


# ----------------------------------------------------------------- log.csv

def test_csv_logger_rows_resume_and_read_back(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLogger(path)
    for step in (10, 20, 30):
        log.log(step=step, loss_D=1 / 3, lr=torch.tensor(0.5), note="x")
    lines = path.read_text().splitlines()
    assert lines[0] == "step,loss_D,lr,note" and lines[1] == "10,0.333333,0.5,x" and len(lines) == 4
    with pytest.raises(ValueError, match="no column 'extra'"):
        log.log(step=40, extra=1.0)

    resumed = CsvLogger(path, resume_step=20)   # checkpoint was at step 20
    resumed.log(step=30, loss_D=2.0, lr=0.25)   # a column may be left out
    values = read_log(path)
    assert values["step"] == [10.0, 20.0, 30.0]
    assert values["loss_D"] == pytest.approx([1 / 3, 1 / 3, 2.0], rel=1e-5)
    assert values["lr"] == [0.5, 0.5, 0.25] and np.isnan(values["note"][2])

    CsvLogger(path)                             # a new run starts a fresh file
    assert not path.exists()


def test_csv_logger_columns_declared_up_front(tmp_path):
    log = CsvLogger(tmp_path / "log.csv", columns=["loss", "fid"])
    log.log(step=0, fid=9.5)                  # a first row with only some of the columns
    log.log(step=1, loss=0.25)
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,loss,fid", "0,,9.5", "1,0.25,"]


# ----------------------------------------------------------------- Ctrl-C, speed, bar

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


def test_images_per_second(monkeypatch):
    clock = iter([100.0, 102.0, 103.0])
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    speed = ImagesPerSecond(images_per_step=8, start_step=10)
    assert speed(20) == pytest.approx(80 / 2.0)    # 10 steps * 8 images in 2 s
    assert speed(25) == pytest.approx(40 / 1.0)


def test_progress_bar_counts():
    bar = loop.progress(total=10, initial=4, desc="train")
    bar.update(2)
    assert bar.n == 6 and bar.total == 10
    bar.close()
