"""Tests for common/checkpoints.py, cli.py, device.py and folders.py: safe checkpoints, load_run, presets and --help, the resume check, the fast path."""
import argparse
import json
import pathlib
import random

import numpy as np
import pytest
import torch
from torch import nn

from common import checkpoints, cli, device, folders
from common.checkpoints import load_run, non_finite, read_checkpoint, restore, save_checkpoint
from common.cli import add_common_args, parse_args
from common.device import pick_device, seed_everything, use_amp

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


def _setup(seed, lr=0.01):
    torch.manual_seed(seed)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    return model, opt, sched


def _draws():
    return torch.rand(3), np.random.rand(3), random.random()


def _save(path, model, opt, sched=None, paper="test", step=2, **extra):
    return save_checkpoint(path, paper=paper, step=step, models={"G": model}, model_args={"width": 4},
                           optimizers={"G": opt}, schedulers={"G": sched} if sched else None, extra=extra,
                           config={"lr": 0.01, "out": pathlib.Path("runs/x"), "blocks": (1, 2)})


def test_checkpoint_round_trip_restores_states_and_every_rng(tmp_path):
    seed_everything(0)
    model, opt, sched = _setup(0)
    _train_steps(model, opt, sched, 2)
    fixed_noise = torch.randn(5, 2)
    path = _save(tmp_path / "checkpoint.pt", model, opt, sched, k_t=0.25, noise=fixed_noise)
    draws_a = _draws()                         # what the original run draws next
    _train_steps(model, opt, sched, 2)         # ... and how it goes on training
    params_a = [p.detach().clone() for p in model.parameters()]

    seed_everything(123)                       # a different RNG state and a different model
    model2, opt2, sched2 = _setup(1)
    ckpt = read_checkpoint(path)
    restore(ckpt, {"G": model2}, {"G": opt2}, {"G": sched2})
    assert ckpt["step"] == 2 and ckpt["paper"] == "test" and ckpt["model_args"] == {"width": 4}
    assert ckpt["config"] == {"lr": 0.01, "out": "runs/x", "blocks": [1, 2]}    # JSON values only
    assert ckpt["extra"]["k_t"] == 0.25 and torch.equal(ckpt["extra"]["noise"], fixed_noise)
    assert sched2.last_epoch == 2
    draws_b = _draws()
    assert torch.equal(draws_a[0], draws_b[0]) and np.array_equal(draws_a[1], draws_b[1]) and draws_a[2] == draws_b[2]
    _train_steps(model2, opt2, sched2, 2)     # training continues identically
    for p_a, p_b in zip(params_a, model2.parameters()):
        assert torch.equal(p_a, p_b)


class _Payload:
    """What a malicious checkpoint holds: unpickling it would create a file (it could as well run a shell)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_a_checkpoint_holding_a_pickled_object_is_refused_and_runs_nothing(tmp_path):
    ran = tmp_path / "payload-ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": checkpoints.FORMAT, "paper": "test", "step": 1, "config": _Payload(ran)}, path)
    with pytest.raises(SystemExit, match="holds Python objects besides tensors"):
        read_checkpoint(path)
    assert not ran.exists()
    torch.load(path, weights_only=False)       # proof that the file does carry a payload
    assert ran.exists()


def test_unreadable_checkpoints_get_one_sentence(tmp_path):
    model, opt, _ = _setup(0)
    path = _save(tmp_path / "checkpoint.pt", model, opt)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SystemExit, match="cannot be read .*damaged or truncated"):
        read_checkpoint(path)
    torch.save({"step": 3, "models": {}}, path)                      # an older layout without "format"
    with pytest.raises(SystemExit, match="not a checkpoint of this repo's current format"):
        read_checkpoint(path)
    with pytest.raises(SystemExit, match="No checkpoint at"):
        read_checkpoint(tmp_path / "missing.pt")


def test_load_run_checks_the_folder_and_the_paper(tmp_path):
    model, opt, _ = _setup(0)
    (tmp_path / "run").mkdir()
    _save(tmp_path / "run" / "checkpoint.pt", model, opt, paper="dcgan_celeba")
    assert load_run(tmp_path / "run", "dcgan_celeba")["step"] == 2
    with pytest.raises(SystemExit, match="is a dcgan_celeba run, not a began_refiner run"):
        load_run(tmp_path / "run", "began_refiner")
    with pytest.raises(SystemExit, match="does not exist"):
        load_run(tmp_path / "missing", "began_refiner")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(SystemExit, match="has no network named 'D'"):
        checkpoints.load_models({"D": model}, load_run(tmp_path / "run", "dcgan_celeba"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model, opt, _ = _setup(0)
    path = tmp_path / "checkpoint.pt"
    _save(path, model, opt, step=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no .tmp left

    def broken_save(obj, f):                   # writes half a file, then fails
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _save(path, model, opt, step=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert read_checkpoint(path)["step"] == 1


def test_non_finite_names_the_network():
    good, bad = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():
        bad.weight[0, 1] = float("nan")
    assert non_finite({"G": good, "D": bad}) == ["D"]


def test_resume_with_a_new_learning_rate_applies_it_and_keeps_the_schedule(tmp_path, capsys):
    model, opt, sched = _setup(0, lr=0.01)
    _train_steps(model, opt, sched, 2)                      # StepLR ×0.9 twice: 0.0081
    _save(tmp_path / "c.pt", model, opt, sched)
    model2, opt2, sched2 = _setup(0, lr=0.001)             # the command now says --lr 0.001
    restore(read_checkpoint(tmp_path / "c.pt"), {"G": model2}, {"G": opt2}, {"G": sched2})
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.001 * 0.81)
    assert "G's learning rate is now 0.001 (the run used 0.01)" in capsys.readouterr().out
    _train_steps(model2, opt2, sched2, 1)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.001 * 0.729)


# ----------------------------------------------------------------- command line

PRESETS = {"quick": dict(size=32, batch_size=16, steps=200, lr=2e-4, sample_every=50, ckpt_every=100,
                         log_every=10, gamma=0.5, amp=True),
           "paper": dict(size=64, batch_size=64, steps=100_000, lr=1e-4, sample_every=1000, ckpt_every=5000,
                         log_every=100, gamma=0.7, amp=False)}


def _parser():
    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    parser.add_argument("--gamma", type=float, help="γ")
    parser.add_argument("--width", type=int, default=8, help="channels")
    return add_common_args(parser)


def _parse(argv):
    return parse_args(_parser(), argv, PRESETS, "test")


def test_preset_values_are_defaults_and_explicit_flags_win():
    args, resumed = _parse([])
    assert resumed is None
    assert (args.preset, args.size, args.steps, args.lr, args.gamma, args.amp) == ("quick", 32, 200, 2e-4, 0.5, True)
    args, _ = _parse(["--preset", "paper", "--steps", "7", "--batch-size", "3", "--gamma", "0.7", "--amp"])
    assert (args.size, args.steps, args.batch_size, args.lr, args.gamma, args.amp) == (64, 7, 3, 1e-4, 0.7, True)
    assert _parse(["--no-amp"])[0].amp is False


@pytest.mark.parametrize("preset, shown", [("quick", ["--size SIZE", "(default: 32)", "(default: 0.5)"]),
                                           ("paper", ["(default: 64)", "(default: 100000)", "(default: 0.7)"])])
def test_help_prints_the_presets_numbers(preset, shown, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parse(["--preset", preset, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for piece in shown:
        assert piece in text


@pytest.mark.parametrize("argv", [["--size", "0"], ["--batch-size", "0"], ["--lr", "-1"], ["--steps", "0"],
                                  ["--ckpt-every", "0"], ["--sample-every", "0"], ["--log-every", "x"]])
def test_impossible_numbers_are_refused_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parse(argv)
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err.splitlines()[-1]


def _run_folder(tmp_path, config, step=50):
    out = tmp_path / "run"
    out.mkdir()
    model, opt, _ = _setup(0)
    save_checkpoint(out / "checkpoint.pt", paper="test", step=step, models={"G": model}, model_args={},
                    optimizers={"G": opt}, config=config)
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_resume_takes_the_runs_values_for_flags_not_given(tmp_path):
    args0, _ = _parse(["--gamma", "0.9", "--width", "4", "--steps", "100"])
    out = _run_folder(tmp_path, folders.plain_values(vars(args0)))
    args, resumed = _parse(["--resume", "--out", str(out), "--steps", "300", "--lr", "1e-3"])
    assert resumed["step"] == 50
    assert (args.gamma, args.width, args.steps, args.lr, args.resume) == (0.9, 4, 300, 1e-3, True)


def test_a_mismatched_resume_is_refused_and_changes_nothing(tmp_path):
    args0, _ = _parse(["--gamma", "0.9", "--steps", "100"])
    out = _run_folder(tmp_path, folders.plain_values(vars(args0)))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit, match=r"--resume refused, nothing in .* was changed: .*--gamma 0.5 \(the run has "
                                         r"0.9\); --width 16 \(the run has 8\)"):
        _parse(["--resume", "--out", str(out), "--gamma", "0.5", "--width", "16"])
    with pytest.raises(SystemExit, match="already at step 50: give --steps larger"):
        _parse(["--resume", "--out", str(out), "--steps", "50"])
    with pytest.raises(SystemExit, match="is a test run, not a other run"):
        parse_args(_parser(), ["--resume", "--out", str(out)], PRESETS, "other")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_new_run_never_overwrites_a_checkpoint(tmp_path):
    out = _run_folder(tmp_path, {})
    with pytest.raises(SystemExit, match="already holds a checkpoint.pt: add --resume"):
        _parse(["--out", str(out)])
    with pytest.raises(SystemExit, match="--resume needs --out"):
        _parse(["--resume"])


def test_new_run_dir_default_name(tmp_path):
    a = folders.new_run_dir(None, "nir_cgan", root=tmp_path / "runs")
    a.mkdir(parents=True)
    b = folders.new_run_dir(None, "nir_cgan", root=tmp_path / "runs")
    assert a.parent == b.parent == tmp_path / "runs" / "nir_cgan" and a != b


# ----------------------------------------------------------------- device, fast path

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


def test_amp_on_a_cpu_without_native_bf16_says_so_and_runs_float32(monkeypatch, capsys):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert use_amp(True, torch.device("cpu")) is False
    assert "no native bfloat16" in capsys.readouterr().out
    assert use_amp(False, torch.device("cpu")) is False
    assert use_amp(True, torch.device("cuda")) is True


def test_autocast_on_cpu_computes_in_bfloat16_when_enabled():
    with device.autocast(torch.device("cpu"), True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with device.autocast(torch.device("cpu"), False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_one_sentence_errors_turns_data_and_weights_errors_into_exits():
    from common.data import DataError
    from common.features import WeightsUnavailable

    @cli.one_sentence_errors
    def main(argv=None):
        raise argv

    for error in (DataError("no images in x"), WeightsUnavailable("could not fetch y")):
        with pytest.raises(SystemExit, match=str(error)):
            main(error)
    with pytest.raises(KeyError):                 # a bug stays a traceback
        main(KeyError("bug"))


def test_check_out_refuses_every_place_a_run_would_be_lost_or_mixed(tmp_path, monkeypatch):
    from common.folders import check_out
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "file").write_text("")
    assert check_out(None) is None and check_out(str(tmp_path / "new" / "run"), [data]) == tmp_path / "new" / "run"
    for out, message in (("", "--out is empty"), ("  ", "--out is empty"), (tmp_path / "file", "is a file"),
                         (data, "overlap"), (data / "run", "overlap"), (tmp_path, "overlap")):
        with pytest.raises(SystemExit, match=message):
            check_out(str(out), [data])
    monkeypatch.setattr("common.folders.os.access", lambda path, mode: False)      # (root may write anywhere)
    with pytest.raises(SystemExit, match=r"cannot be written \(.* is not writable for this user\)"):
        check_out(str(tmp_path / "new" / "run"))


def test_eval_never_writes_into_a_shipped_folder_by_default(tmp_path, monkeypatch):
    from common.folders import eval_folder
    monkeypatch.setattr("common.manifest.ROOT", tmp_path)
    shipped = tmp_path / "began_refiner" / "weights" / "B"
    shipped.mkdir(parents=True)
    with pytest.raises(SystemExit, match="holds shipped networks, which eval never writes into: give --out"):
        eval_folder(None, shipped)
    with pytest.raises(SystemExit, match="lies in began_refiner/weights/"):
        eval_folder(str(shipped / "eval"), tmp_path / "runs")
    assert list(shipped.iterdir()) == []
    assert eval_folder(str(tmp_path / "out"), shipped) == tmp_path / "out"


def test_a_folder_claimed_by_this_process_nests_and_is_released(tmp_path):
    from common.folders import _HELD, claim_folder, release_folders
    claim_folder(tmp_path / "a")
    claim_folder(tmp_path / "a")                          # the same process may claim it again (a pipeline's stages)
    assert _HELD[(tmp_path / "a").resolve()][1] == 2
    release_folders()
    assert (tmp_path / "a").resolve() not in _HELD
