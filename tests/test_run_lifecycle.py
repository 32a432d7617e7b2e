"""The run lifecycle, the same in all five folders: a shared run folder never runs code; a run of
another paper is refused by eval.py and by --resume; a folder in use by one process is refused to
another; --out never lands where it mixes with data; Ctrl-C exits 130 with the command that
continues; every eval writes where --out says. Plus the conventions every entry point keeps."""
import ast
import contextlib
import fcntl
import importlib
import inspect
import io
import json
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import tokenize

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from common import loop
from common.checkpoints import FORMAT, read_checkpoint, save_checkpoint
from common.csvlog import read_log
from common.data import load_image_folder
from common.manifest import PAPERS
from conftest import check_one_sentence, paper_tests


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
    return argv + paper_tests(paper)["resume"]


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


# ----------------------------------------------------------------- runs that are never mixed, lost or misjudged

EVERY = ["--log-every", "1", "--fid-every", "2", "--sample-every", "2", "--ckpt-every", "1"]


def _train(paper, out, *flags, steps=2):
    argv = [*paper_tests(paper)["run"], *EVERY, "--steps", str(steps), *flags, "--out", str(out)]
    return _script(paper, "train").main(argv)


def _files(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@contextlib.contextmanager
def _held_by_another_process(folder):
    """What a second process does to a folder it trains into: an OS lock on the folder itself."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield folder
    finally:
        os.close(fd)


@pytest.mark.parametrize("paper", PAPERS)
def test_a_run_folder_in_use_is_refused_to_train_and_to_eval_and_left_alone(paper, tmp_path, capsys):
    with _held_by_another_process(tmp_path / "busy") as busy:
        check_one_sentence(lambda argv: _train(paper, busy), [], "is in use by another process", capsys)
        assert list(busy.iterdir()) == []
    run = _train(paper, tmp_path / "run")
    before = _files(run)
    with _held_by_another_process(run):
        check_one_sentence(_script(paper, "eval").main, ["--run", str(run)], "is in use by another process", capsys)
        _script(paper, "eval").main(["--run", str(run), "--out", str(tmp_path / "eval"),
                                     *paper_tests(paper)["eval"]])                                # reading: fine
    assert _files(run) == before and (tmp_path / "eval" / "metrics.json").exists()


def test_two_trainings_into_one_folder_the_second_is_refused(tmp_path):
    """The issue's repro, with a real second process: the first keeps its folder, log.csv has each step once."""
    out = tmp_path / "R"
    argv = [sys.executable, "began_refiner/train.py", *paper_tests("began_refiner")["run"], "--steps", "400",
            "--fid-faces", "16", "--log-every", "1", "--ckpt-every", "1000", "--sample-every", "1000", "--fid-every",
            "1000", "--out", str(out)]
    first = subprocess.Popen(argv, cwd=pathlib.Path(__file__).parents[1], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60                          # until it holds the folder and trains
        while not ((out / "log.csv").exists() and len(read_log(out / "log.csv")["step"]) > 1) and time.time() < deadline:
            time.sleep(0.2)
        assert (out / "log.csv").exists(), "the first training never started"
        with pytest.raises(SystemExit, match="is in use by another process"):
            _train("began_refiner", out, "--seed", "7", steps=100)
    finally:
        first.send_signal(signal.SIGINT)                                  # Ctrl-C: it saves and exits 130
        assert first.wait(timeout=60) == 130
    steps = read_log(out / "log.csv")["step"]
    assert len(steps) == len(set(steps)) and json.loads((out / "config.json").read_text())["seed"] == 0


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("out, message", [("", "--out is empty"), ("file", "is a file, not a folder"),
                                          ("data", "overlap"), ("data/run", "overlap")])
def test_out_must_be_a_folder_apart_from_the_data(paper, out, message, tmp_path, capsys):
    data = tmp_path / "data"
    (tmp_path / "file").write_text("not a folder")
    data_flags = [paper_tests(paper)["data_flag"], str(data)]
    argv = [*paper_tests(paper)["run"], *data_flags, "--out", str(tmp_path / out) if out else ""]
    check_one_sentence(_script(paper, "train").main, argv, message, capsys)
    assert not data.exists()


@pytest.mark.parametrize("paper", PAPERS)
def test_a_seed_outside_numpys_range_is_one_sentence(paper, tmp_path, capsys):
    for seed in ("-1", str(2 ** 32)):
        check_one_sentence(_script(paper, "train").main,
                           [*paper_tests(paper)["run"], "--seed", seed, "--out", str(tmp_path)],
                           "argument --seed: must be from 0 to 4294967295", capsys)


@pytest.mark.parametrize("paper", [p for p in PAPERS if p != "sr_degradation"])
def test_ctrl_c_saves_says_how_to_continue_and_exits_130(paper, tmp_path, monkeypatch, capsys):
    """So `train.py && eval.py` never evaluates a partial run; the printed command continues it."""
    log = loop.Run.log

    def ctrl_c_after_step_1(run, step, **values):
        log(run, step, **values)
        run._stop.requested = step == 1
    monkeypatch.setattr(loop.Run, "log", ctrl_c_after_step_1)
    with pytest.raises(SystemExit) as stopped:
        _train(paper, tmp_path / "run", steps=3)
    assert stopped.value.code == 130
    command = capsys.readouterr().out.split("continue with: ")[1].split()
    assert command[:2] == ["python", f"{paper}/train.py"] and read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 1
    monkeypatch.setattr(loop.Run, "log", log)
    _script(paper, "train").main(command[2:] + ["--steps", "3"])
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3


@pytest.mark.parametrize("paper", PAPERS)
def test_eval_out_that_is_a_file_is_one_sentence(paper, tmp_path, capsys):
    run = _train(paper, tmp_path / "run", steps=1)
    (tmp_path / "file").write_text("")
    check_one_sentence(_script(paper, "eval").main, ["--run", str(run), "--out", str(tmp_path / "file")],
                       "is a file, not a folder", capsys)


# ----------------------------------------------------------------- conventions that hold by test

# Every module with a main(): each paper's scripts, common.demo, benchmarks/ and tools/.
ENTRY_POINTS = [f"{folder}.{path.stem}" for folder in (*PAPERS, "common", "benchmarks", "tools")
                for path in sorted((pathlib.Path(__file__).parents[1] / folder).glob("*.py"))
                if "\ndef main(" in path.read_text()]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_ends_user_errors_with_one_sentence(module):
    main = importlib.import_module(module).main
    assert getattr(main, "__wrapped__", None) is not None and main.__qualname__ == "main", \
        f"{module}.main is not decorated with @one_sentence_errors"
    assert "one_sentence_errors" in inspect.getsource(importlib.import_module(module))


@pytest.mark.parametrize("paper", PAPERS)
def test_the_noise_size_is_z_dim_in_every_train_py(paper, capsys):
    with pytest.raises(SystemExit):
        _script(paper, "train").main(["--help"])
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", capsys.readouterr().out))
    assert "--z-dim" in flags and not {"--z", "--nz", "--noise", "--latent"} & flags


def test_no_nan_test_written_as_a_comparison_with_itself():
    """`v == v` is NaN's test in disguise: `math.isnan(v)` says what it means (code only, not strings)."""
    root = pathlib.Path(__file__).parents[1]
    for path in [*root.glob("*/*.py"), *root.glob("*/*/*.py")]:
        if ".venv" in path.parts or "venv" in path.parts:
            continue
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
        for before, a, op, b, after in zip(tokens, tokens[1:], tokens[2:], tokens[3:], tokens[4:]):
            alone = before.string != "." and after.string not in (".", "(", "[")        # not x.v == v.y
            assert not (alone and a.type == b.type == tokenize.NAME and op.string in ("==", "!=")
                        and a.string == b.string), f"{path}:{a.start[0]}: {a.line.strip()}"


@pytest.mark.parametrize("paper", ["began_refiner", "dcgan_celeba", "style_anime"])
def test_a_run_on_your_own_faces_is_measured_against_the_faces_it_held_out(paper, tmp_path, capsys):
    """--data: the folder's last --fid-faces images are never trained on, and FID (in training and in
    eval.py) compares with exactly those, not with the built-in faces."""
    data = tmp_path / "faces"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / f"{i:02d}.png")
    run = _train(paper, tmp_path / "run", "--data", str(data), "--fid-faces", "8", steps=1)
    assert not math.isnan(read_log(run / "log.csv")["fid"][0])                  # FID during training too
    capsys.readouterr()
    _script(paper, "eval").main(["--run", str(run), "--out", str(tmp_path / "eval"), *paper_tests(paper)["eval"]])
    printed = capsys.readouterr().out
    if paper != "style_anime":                                                   # (its metrics name the data)
        assert f"the last 8 images of {data}, held out from training" in printed
    everything = load_image_folder(data, 16).images
    if paper == "style_anime":
        train_faces, held_out = importlib.import_module("style_anime.data").load_faces(str(data), 16, 0, 8, 8)
    else:
        module = importlib.import_module(f"{paper}.data")
        train_faces, held_out = module.training_faces(str(data), 16, 0, 8, 8), module.held_out_faces(str(data), 16, 8)
    assert torch.equal(torch.cat([train_faces, held_out]), everything) and len(held_out) == 8


def test_the_advice_for_images_too_small_is_a_size_that_then_trains(tmp_path, capsys):
    """Images of 20 px at --size 32: the message proposes --size 16 (a power of two, as every network here
    takes), not 20, and that command then runs."""
    data = tmp_path / "faces"
    data.mkdir()
    for i in range(40):
        Image.new("RGB", (20, 20), (6 * i, 0, 0)).save(data / f"{i:02d}.png")
    said = check_one_sentence(lambda argv: _train("dcgan_celeba", tmp_path / "run", *argv), ["--size", "32", "--data",
                              str(data)], "smallest: 20 px); use --size 16 (the largest power of two that fits)", capsys)
    assert "--size 20" not in said
    _train("dcgan_celeba", tmp_path / "run", "--size", "16", "--data", str(data), "--fid-faces", "8", steps=1)


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("flag", ["--size", "--batch-size", "--lr", "--steps", "--z-dim", "--ckpt-every",
                                  "--sample-every"])
def test_numbers_that_must_be_positive_are_refused_by_argparse(paper, flag, tmp_path, capsys):
    check_one_sentence(_script(paper, "train").main,
                       [*paper_tests(paper)["run"], flag, "0", "--out", str(tmp_path / "bad")],
                       f"argument {flag}: must be greater than 0, not 0", capsys)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("paper", PAPERS)
def test_a_batch_larger_than_the_data_or_one_fid_image_is_one_sentence(paper, tmp_path, capsys):
    n = paper_tests(paper)["images"]
    check_one_sentence(_script(paper, "train").main,
                       [*paper_tests(paper)["run"], "--batch-size", str(n + 1), "--out", str(tmp_path / "bad")], str(n),
                       capsys)
    check_one_sentence(_script(paper, "train").main,
                       [*paper_tests(paper)["run"], paper_tests(paper)["fid_flag"], "1", "--out", str(tmp_path / "bad")],
                       "at least 2", capsys)
    assert not (tmp_path / "bad").exists()


def test_no_paper_folder_imports_another():
    """Each folder reads beside its own paper: what two papers share lives in common/, never in a sibling."""
    root = pathlib.Path(__file__).parents[1]
    for paper in PAPERS:
        for path in (root / paper).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                others = [n for n in names if n.split(".")[0] in PAPERS and n.split(".")[0] != paper]
                assert not others, f"{paper}/{path.name} imports {others}"


def test_common_never_imports_a_paper_folder_and_has_no_import_cycle():
    """common/ stands below the papers: benchmarks/ and the paper folders import it, never the other way,
    and its modules import each other without a cycle (a cycle breaks whichever is imported first)."""
    root = pathlib.Path(__file__).parents[1]
    graph = {}
    for path in (root / "common").glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.split(".")[0] in [*PAPERS, "benchmarks"] for n in names), f"{path.name} imports {names}"
            imported |= {n.split(".")[1] for n in names if n.startswith("common.")}
        graph[path.stem] = imported & {p.stem for p in (root / "common").glob("*.py")}

    def visit(module, path):
        assert module not in path, f"import cycle: {' -> '.join([*path, module])}"
        for other in graph[module]:
            visit(other, [*path, module])
    for module in graph:
        visit(module, [])


# ----------------------------------------------------------------- messages early and right

@pytest.mark.parametrize("paper", PAPERS)
def test_eval_of_a_folder_it_cannot_write_is_refused_before_evaluating(paper, tmp_path, monkeypatch, capsys):
    run = _train(paper, tmp_path / "run", steps=1)
    real_access = os.access
    monkeypatch.setattr("common.folders.os.access",       # a read-only shared run (root may write anywhere)
                        lambda path, mode: pathlib.Path(path).resolve() != run.resolve() and real_access(path, mode))
    check_one_sentence(_script(paper, "eval").main, ["--run", str(run), *paper_tests(paper)["eval"]],
                       "cannot be written (not writable for this user)", capsys)
    assert not (run / "metrics.json").exists() and not (run / "figures").exists()


@pytest.mark.parametrize("paper", ["began_refiner", "dcgan_celeba", "sr_degradation"])
def test_eval_faces_below_two_are_refused_by_the_parser(paper, capsys):
    check_one_sentence(_script(paper, "eval").main, ["--faces", "1"], "must be at least 2", capsys)


@pytest.mark.parametrize("paper", ["began_refiner", "dcgan_celeba", "style_anime"])
def test_data_naming_a_file_says_so(paper, tmp_path, capsys):
    (tmp_path / "face.png").write_bytes(b"")
    said = check_one_sentence(_script(paper, "train").main, ["--data", str(tmp_path / "face.png"), "--out",
                                                             str(tmp_path / "run")], "is a file, not a folder", capsys)
    assert f"--data {tmp_path}" in said                   # the folder that holds it
