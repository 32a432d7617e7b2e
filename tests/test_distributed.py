"""Every train.py under torchrun: 2 CPU processes with gloo, a few steps each.

What is checked: the processes hold the same weights after training (DistributedDataParallel
averaged the gradients of each network); rank 0 alone writes one run folder, with each log.csv step
once; without BatchNorm, 2 processes × b images equal 1 process × 2b images (``--batch-size`` is the
batch of all processes together), and a batch that does not divide is split unevenly with one line; a
run resumes with another number of processes; Ctrl-C saves once and stops both; a process whose peers
never come gives up. Starting processes costs the seconds, so one launch runs every training job.
"""
import importlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import torch

from common.checkpoints import read_checkpoint
from common.csvlog import read_log
from common.manifest import PAPERS
from conftest import assert_same_checkpoint, paper_tests

ROOT = pathlib.Path(__file__).resolve().parents[1]
EVERY = ["--batch-size", "8", "--log-every", "1", "--fid-every", "2", "--sample-every", "2", "--ckpt-every", "2"]
EXACT = ["--generator", "B", "--no-amp"]         # began_refiner's refiner B in float32: no BatchNorm, no noise


def torchrun(jobs, folder, processes=2, **popen):
    """``torchrun --standalone --nproc_per_node N`` on tests/distributed_driver.py (the same launcher a user
    types), running ``jobs`` (paper, dump folder, argv) one after another in one launch; returns the finished
    process (or, with ``popen``, the running one)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jobs.json").write_text(json.dumps([dict(paper=p, dump=str(d), argv=a) for p, d, a in jobs]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               str(ROOT / "tests" / "distributed_driver.py"), str(folder / "jobs.json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if popen:
        return subprocess.Popen(command, cwd=ROOT, env=env, **popen)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def both_ranks(dump):
    return [torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """One torchrun launch of 2 processes running, one after another: each paper's smallest run for 3 steps,
    DCGAN (BatchNorm) for 3, refiner B with a batch of 9 (which does not divide) for 1 and in float32 for 4,
    the second half of a run begun by one process, and the first half of one that one process finishes.
    Returns the root folder and what the launch printed."""
    root = tmp_path_factory.mktemp("two")
    train = importlib.import_module("began_refiner.train").main
    exact = [*paper_tests("began_refiner")["run"], *EXACT, *EVERY]
    train([*exact, "--steps", "4", "--out", str(root / "one")])                       # 1 process, 4 steps
    train([*exact, "--steps", "2", "--out", str(root / "resumed_1_2")])               # 1 process, 2 steps ...
    jobs = [(paper, root / f"{paper}-dump", [*paper_tests(paper)["run"], *EVERY, "--steps", "3", "--out", str(root / paper)])
            for paper in PAPERS]
    jobs += [("dcgan_celeba", root / "batchnorm-dump", [*paper_tests("dcgan_celeba")["run"], *EVERY, "--model", "dcgan",
                                                         "--steps", "3", "--out", str(root / "batchnorm")])]
    jobs += [("began_refiner", root / "dump", argv) for argv in (
        [*exact, "--batch-size", "9", "--steps", "1", "--out", str(root / "uneven")],      # 5 + 4 images a step
        [*exact, "--steps", "4", "--out", str(root / "two_times_b")],
        ["--resume", "--steps", "4", "--out", str(root / "resumed_1_2")],                # ... 2 processes to 4
        [*exact, "--steps", "2", "--out", str(root / "resumed_2_1")])]                   # 2 processes, 2 steps ...
    said = torchrun(jobs, root).stdout
    train(["--resume", "--steps", "4", "--out", str(root / "resumed_2_1")])             # ... 1 process to 4
    return root, said


@pytest.mark.parametrize("paper", PAPERS)
def test_two_processes_keep_identical_weights_and_rank_0_alone_writes(paper, launched):
    root, _ = launched
    run, dump = root / paper, root / f"{paper}-dump"
    rank0, rank1 = both_ranks(dump)
    for name, weights in rank0.items():
        for key, value in weights.items():
            if "running" not in key and "num_batches" not in key:            # parameters: one model
                assert torch.equal(value, rank1[name][key]), f"{name}.{key} differs between the processes"
    steps = read_log(run / "log.csv")["step"]
    assert len(steps) == len(set(steps)) and steps[-1] == 3
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 3
    assert sorted(p.name for p in run.glob("samples/*.png")) == ["step_0000002.png", "step_0000003.png"]


def test_batchnorm_on_the_cpu_normalises_each_process_by_its_own_slice(launched):
    """What holds for a BatchNorm network (DCGAN's D) on the CPU: the weights are the same in both
    processes, but the running statistics are not, because SyncBatchNorm needs CUDA, so each process
    normalises with its own half of the batch (and rank 0's statistics are the ones saved). So
    2 × b is not 1 × 2b here, and the README says so."""
    rank0, rank1 = both_ranks(launched[0] / "batchnorm-dump")
    stats = [key for key in rank0["D"] if key.endswith("running_mean")]
    assert stats and any(not torch.equal(rank0["D"][k], rank1["D"][k]) for k in stats)
    assert all(torch.equal(rank0["D"][k], rank1["D"][k]) for k in rank0["D"] if k.endswith("weight"))


def test_a_batch_that_does_not_divide_is_split_unevenly_and_said_once(launched):
    """--batch-size 9 over 2 processes: 5 and 4 images a step, one line (process 0 alone says it)."""
    assert launched[1].count("--batch-size 9 over 2 processes: 5 + 4 images a step") == 1, launched[1]


def test_two_processes_times_b_equal_one_process_times_2b(launched):
    """--batch-size is the batch of all processes together: refiner B (no BatchNorm, no noise) in float32
    trains the same with 1 and with 2 processes, to float tolerance (the sums are split differently: Adam's
    running averages differ by about 1e-5 after four steps; averaging wrongly would differ by their size)."""
    assert_same_checkpoint(launched[0] / "one", launched[0] / "two_times_b", atol=5e-5)


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_a_run_resumes_with_another_number_of_processes(first, then, launched):
    """2 steps with ``first`` processes, resumed to 4 with ``then``, equals 4 steps straight."""
    resumed = launched[0] / f"resumed_{first}_{then}"
    assert_same_checkpoint(launched[0] / "one", resumed, atol=5e-5)
    assert read_log(resumed / "log.csv")["step"] == [0, 1, 2, 3, 4]


def test_ctrl_c_under_torchrun_saves_once_and_stops_both_processes(tmp_path):
    """torchrun passes Ctrl-C (SIGINT) on to every process; they agree on the step to stop at, rank 0
    saves, both exit 130 (torchrun then reports the signal itself)."""
    run = tmp_path / "run"
    argv = [*paper_tests("began_refiner")["run"], "--batch-size", "8", "--steps", "100000", "--log-every", "5",
            "--ckpt-every", "100000", "--fid-every", "100000", "--sample-every", "100000", "--out", str(run)]
    launcher = torchrun([("began_refiner", tmp_path / "dump", argv)], tmp_path, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not ((run / "log.csv").exists() and len(read_log(run / "log.csv")["step"]) > 2) and time.time() < deadline:
        time.sleep(0.5)
    launcher.send_signal(signal.SIGINT)
    output = launcher.communicate(timeout=120)[0]
    assert output.count("saved in") == 1 and "continue with: torchrun --standalone --nproc_per_node 2" in output
    step = read_checkpoint(run / "checkpoint.pt")["step"]
    assert step > 0 and "Traceback (most recent call last):\n  File \"" + str(ROOT) not in output


# ----------------------------------------------------------------- waiting is bounded, variables are checked

def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("env, said", [
    ({"RANK": "0", "WORLD_SIZE": "two"}, "WORLD_SIZE is 'two'"),
    ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "29500"}, "MASTER_ADDR is missing"),
    ({"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}, "RANK is 'x'"),
    ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}, "not below WORLD_SIZE")])
def test_a_missing_or_malformed_torchrun_variable_is_one_sentence(env, said, monkeypatch):
    from common import distributed
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=said):
        distributed.start(torch.device("cpu"))


def test_without_torchrun_variables_nothing_distributed_happens(monkeypatch):
    from common import distributed
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.start(torch.device("cpu")) == torch.device("cpu") and distributed.world() == 1


@pytest.mark.parametrize("rank", [0, 1])
def test_a_process_whose_peers_never_come_says_so_once_and_gives_up(rank):
    """RANK and WORLD_SIZE set by hand, no other process: a line saying what it waits for, then one sentence
    after DISTRIBUTED_TIMEOUT_S seconds (process 0 holds the meeting point, process 1 looks for it)."""
    env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "DISTRIBUTED_TIMEOUT_S": "2", "PYTHONPATH": str(ROOT)}
    env.pop("TORCHELASTIC_RUN_ID", None)
    started = time.time()
    done = subprocess.run([sys.executable, "-c", "import torch; from common import cli, device\n"
                           "cli.one_sentence_errors(lambda argv: device.pick_device('cpu'))()"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and time.time() - started < 30
    assert done.stdout.count("waiting up to 2 s for the others") == 1, done.stdout
    assert done.stderr.strip().startswith(f"process {rank} gave up") and "Traceback" not in done.stderr, done.stderr


def test_under_torchrun_only_process_0_says_what_every_process_meets(monkeypatch):
    from common import cli, distributed
    monkeypatch.setattr(distributed, "world", lambda: 2)

    @cli.one_sentence_errors
    def refused(argv=None):
        raise SystemExit("--out is empty: give a folder name")

    for rank, code in ((0, "--out is empty: give a folder name"), (1, 1)):
        monkeypatch.setattr(distributed, "rank", lambda: rank)
        with pytest.raises(SystemExit) as err:
            refused()
        assert err.value.code == code


def test_a_process_stopped_by_a_lost_peer_speaks_only_of_what_it_wrote(tmp_path, monkeypatch, capsys):
    """After a kill -9 of one process, torchrun stops the others (SIGTERM): process 1 wrote nothing, so it
    names no checkpoint, and none claims a message that may not be there."""
    from common import distributed, loop
    run = loop.Run.__new__(loop.Run)
    run.saved_step, run.checkpoint = 4, tmp_path / "checkpoint.pt"
    monkeypatch.setattr(loop.os, "_exit", lambda status: None)
    for rank, writes in ((1, False), (0, True)):
        monkeypatch.setattr(distributed, "rank", lambda: rank)
        run.writes = writes
        run._ended_elsewhere(None, None)
    process1, process0 = [line for line in capsys.readouterr().out.splitlines() if line]
    assert "checkpoint" not in process1 and "message is above" not in process1 + process0
    assert "the last good checkpoint (step 4)" in process0
