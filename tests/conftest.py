"""The shared harness of the test suite: tiny runs, and the checks every train.py gets the same way.

- ``check_resume``: N steps straight, and N/2 then ``--resume`` to N, end in the same checkpoint:
  every network, optimiser, scheduler and declared state entry (``assert_same_checkpoint``), and
  the same log.csv steps;
- ``check_same_seed_same_run``: two runs of one command give identical networks and sample PNGs;
- ``check_one_sentence``: a bad command ends with one sentence (SystemExit or argparse's usage
  error) holding ``message``, never a traceback;
- ``evaluate_shipped``: a run shipped (``tools.ship add``) into a stand-in repository in tmp_path,
  then evaluated by its eval.py without ``--run``: the shipped folder is read, the output goes to
  runs/<paper>/shipped, and nothing is written into weights/.
- ``repository_at`` and ``ship_runs``: tiny runs shipped as ``<paper>/weights/<name>/`` (``tools.ship``) in a
  stand-in repository, for eval without ``--run``, never touching the real shipped networks.

Every script is run in-process through its ``main(argv)`` (importing torch per subprocess costs
seconds).
"""
import contextlib
import importlib
from pathlib import Path

import pytest
import torch

import common.manifest
import tools.ship
from common.checkpoints import read_checkpoint
from common.csvlog import read_log
from common.folders import release_folders


@pytest.fixture(autouse=True)
def loss_png_only_where_asked(request, monkeypatch):
    """A run's loss.png (matplotlib: most of a tiny run's time) is drawn by the tests marked ``loss_png``
    (each train.py's smoke test) and by the plot tests; every other tiny run writes an empty loss.png."""
    if request.node.get_closest_marker("loss_png") is None:
        import common.loop
        monkeypatch.setattr(common.loop, "plot_losses", lambda log, path, **kwargs: Path(path).write_bytes(b""))


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids OpenMP's overhead (several times faster on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _release_run_folders():
    """Tests that drive ``Run`` directly (not through an entry point) leave their folder claims behind."""
    yield
    release_folders()


def assert_same_state(a, b, where="", atol=1e-6):
    """Two nested checkpoint values (dicts, lists, tensors, numbers) are equal (tensors to ``atol``)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same_state(a[key], b[key], f"{where}/{key}", atol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]", atol)
    elif isinstance(a, torch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{where}: {a.shape} {a.dtype} != {b.shape} {b.dtype}"
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=atol, rtol=1e-5), f"{where}: max diff {(a - b).abs().max():.3g}"
        else:
            assert torch.equal(a, b), where
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=atol), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_checkpoint(a_dir, b_dir, atol=1e-6):
    """The checkpoints of two run folders continue identically: step, every network, optimiser,
    scheduler and extra state (all but the training time)."""
    a, b = read_checkpoint(a_dir / "checkpoint.pt"), read_checkpoint(b_dir / "checkpoint.pt")
    assert a["step"] == b["step"]
    for key in ("models", "optimizers", "schedulers"):
        assert_same_state(a[key], b[key], key, atol)
    extra = [{k: v for k, v in c["extra"].items() if k != "time_s"} for c in (a, b)]
    assert_same_state(*extra, "extra", atol)


def check_resume(main, argv, tmp_path, steps, half, resume_argv=(), atol=1e-6):
    """``steps`` straight equals ``half`` steps, then ``--resume --steps steps`` (the run's own flags
    come back from its checkpoint); returns the two run folders."""
    straight = main([*argv, "--steps", str(steps), "--out", str(tmp_path / "straight")])
    resumed = main([*argv, "--steps", str(half), "--out", str(tmp_path / "resumed")])
    main(["--resume", "--out", str(resumed), "--steps", str(steps), *resume_argv])
    assert_same_checkpoint(straight, resumed, atol)
    assert read_log(straight / "log.csv")["step"] == read_log(resumed / "log.csv")["step"]
    return straight, resumed


def check_same_seed_same_run(main, argv, tmp_path, sample):
    """Two runs of one command: identical networks, and the sample PNG ``sample`` byte for byte."""
    one = main([*argv, "--out", str(tmp_path / "one")])
    two = main([*argv, "--out", str(tmp_path / "two")])
    assert_same_state(read_checkpoint(one / "checkpoint.pt")["models"],
                      read_checkpoint(two / "checkpoint.pt")["models"], "models", atol=0)
    assert (one / sample).read_bytes() == (two / sample).read_bytes()
    return one, two


def one_sentence(err, capsys) -> str:
    """The message of a refused command (``err``: a ``pytest.raises(SystemExit)`` result): SystemExit's
    sentence, or argparse's error line (status 2). Never a traceback, never several lines."""
    if isinstance(err.value.code, str):
        message = err.value.code
    else:
        assert err.value.code == 2, f"exit status {err.value.code}"
        message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in message and "\n" not in message, message
    return message


def check_one_sentence(main, argv, message, capsys) -> str:
    """``main(argv)`` stops with one sentence holding ``message``; returns the sentence."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    said = one_sentence(err, capsys)
    assert message in said, said
    return said


def paper_tests(paper: str) -> dict:
    """What ``<paper>/paper.py`` declares for the shared tests (``TESTS``): the smallest run, fast eval
    flags, its training images, and the names of its data and FID flags."""
    return importlib.import_module(f"{paper}.paper").TESTS


def _add(paper, name, run, keep=(), *more):
    """``python -m tools.ship add`` for a test run (into whatever ``common.manifest.ROOT`` is now)."""
    tools.ship.main(["add", paper, name, str(run), "--command", "test", "--commit", "test", "--cpu", "test",
                     "--wall-s", "1", *(["--keep", *keep] if keep else []), *more, "--eval-args", *paper_tests(paper)["eval"]])


def ship(paper, name, run, root, monkeypatch, keep=()):
    """Ship ``run`` as ``<root>/<paper>/weights/<name>/`` with ``tools.ship add``, ``root`` standing in
    for the repository (the real weights/ are never touched); returns the shipped folder."""
    monkeypatch.setattr(common.manifest, "ROOT", root)
    monkeypatch.setattr(tools.ship, "ROOT", root)
    _add(paper, name, run, keep)
    return root / paper / "weights" / name


def evaluate_shipped(main, paper, name, run, argv, tmp_path, monkeypatch, capsys, keep=()):
    """``run`` shipped as ``name`` (``ship``), then ``main(argv)`` (an eval.py's, without ``--run``) from the
    stand-in repository: one line says the shipped networks are evaluated, metrics.json and figures
    are written into runs/<paper>/shipped there, and the weights folder is left byte for byte as it was.
    Returns (what main returned, the output folder, what was printed)."""
    root = tmp_path / "repo"
    weights = ship(paper, name, run, root, monkeypatch, keep).parent

    def contents():
        return {p: p.read_bytes() if p.is_file() else "folder" for p in weights.rglob("*")}
    before = contents()
    monkeypatch.chdir(root)                                                    # as `python <paper>/eval.py` is run
    capsys.readouterr()
    returned = main(argv)
    printed = capsys.readouterr().out
    assert f"no --run: evaluating the networks shipped in {paper}/weights/ ({name};" in printed
    out = root / "runs" / paper / "shipped"
    assert (out / "metrics.json").is_file() and any((out / "figures").glob("*.png")), sorted(out.rglob("*"))
    assert contents() == before                                                # nothing written in weights/
    return returned, out, printed


@contextlib.contextmanager
def repository_at(root):
    """Within it, the repository's shipped networks (``<paper>/weights/``) are those under ``root``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common.manifest, "ROOT", Path(root))
        patch.setattr(tools.ship, "ROOT", Path(root))
        yield Path(root)


def ship_runs(paper, runs: dict) -> Path:
    """Ship each run folder of ``runs`` (name -> folder) as ``<paper>/weights/<name>/`` with ``tools.ship``
    (inside ``repository_at``); returns the paper's weights folder."""
    for name, run in runs.items():
        _add(paper, name, run)
    return common.manifest.weights_folder(paper)


def files(folder) -> dict:
    """Every file under ``folder`` with its bytes."""
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
