"""nir_cgan evaluation (§3.3, §3.5.3): the diversity metric, FID against itself, the sweep builder,
eval.py --all end to end, eval.py on bad run folders, and the configuration study at a tiny size."""
import ast
import json
import shutil
from pathlib import Path

import pytest
import torch

from common.checkpoints import save_checkpoint
from common.faces import POSE_GAZE
from common.metrics import diversity, fid
from common.synthnet import SyntheticFeatures
from conftest import one_sentence
from nir_cgan import eval as nir_eval
from nir_cgan import study, train

pytestmark = pytest.mark.filterwarnings("ignore:FID. singular covariance")   # tiny sets: fewer images than features

TINY = ["--size", "32", "--pairs", "40", "--batch-size", "4", "--z-dim", "8", "--g-base", "4", "--g-max", "16",
        "--e-base", "4", "--e-max", "16", "--d-base", "8", "--spade-hidden", "8", "--fid-pairs", "0",
        "--vgg-weights", "none", "--device", "cpu", "--no-amp", "--steps", "2", "--log-every", "1",
        "--sample-every", "2"]


class MeanAbs:
    """A simple per-pair distance for the metric tests: mean |a − b| over pixels."""
    name = "mean-abs"

    def to(self, device):
        return self

    def __call__(self, a, b):
        return (a - b).abs().flatten(1).mean(1)


def test_diversity_is_zero_for_identical_outputs_and_grows_with_spread():
    torch.manual_seed(0)
    base = torch.rand(3, 1, 1, 8, 8) * 2 - 1
    same = base.expand(3, 10, 1, 8, 8)
    assert diversity(same, MeanAbs()) == 0.0
    spreads = [diversity((base + s * torch.randn(3, 10, 1, 8, 8)).clamp(-1, 1), MeanAbs()) for s in (0.05, 0.2, 0.5)]
    assert 0 < spreads[0] < spreads[1] < spreads[2]
    # eq. 3.8 by hand: one source, M = 3 outputs at constant values 0, 0.5, 1 → pairs 0.5, 1, 0.5 → mean 2/3
    three = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 4, 4)
    assert diversity(three, MeanAbs()) == pytest.approx(2 / 3)


def test_fid_of_a_set_against_itself_is_about_zero():
    images = torch.rand(64, 1, 32, 32) * 2 - 1
    extractor = SyntheticFeatures()
    assert abs(fid(images, images, extractor)) < 1e-3
    assert fid(images, -images, extractor) > 1.0


@pytest.mark.parametrize("name", list(nir_eval.SWEEPS))
def test_sweep_builder_changes_only_the_swept_parameter(name):
    param, (low, high) = nir_eval.SWEEPS[name]
    values = torch.linspace(low, high, 5)
    source, params = nir_eval.sweep_sources(param, values, 32)
    assert source.shape == (5, 3, 32, 32) and source.dtype == torch.uint8
    assert torch.equal(params[param], values)
    for key, value in params.items():
        if key != param:
            assert torch.equal(value, value[:1].expand_as(value)), key          # the same in every column
    assert all(params[k].abs().max() == 0 for k in POSE_GAZE if k != param)    # other angles at 0
    assert params["glasses"].max() == 0
    assert not torch.equal(source[0], source[-1])                               # the render does change


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train.main(TINY + ["--config", "ED-LS-LR-2", "--out", str(tmp_path_factory.mktemp("nir_eval") / "run")])


def test_eval_all_writes_every_figure_and_metrics(tiny_run):
    metrics = nir_eval.main(["--run", str(tiny_run), "--all", "--distance", "synthetic", "--sources", "2"])
    figures = {p.name for p in (tiny_run / "figures").iterdir()}
    assert figures == {"fig4_2_samples.png", "fig4_12_head_yaw.png", "fig4_13_head_pitch.png", "fig4_14_gaze_yaw.png",
                       "fig4_16_17_interpolation.png", "fig4_18_arithmetic.png", "fig4_10_identity.png",
                       "appendix_80_samples.png"}
    saved = json.loads((tiny_run / "metrics.json").read_text())
    assert saved["config"] == "ED-LS-LR-2" and saved["step"] == 2 and saved["diversity_distance"] == "synthetic-v1-l2"
    assert saved["fid"] > 0 and saved["diversity"] > 0 and saved["diversity_outputs_per_source"] == 10
    assert saved["output_variance"]["over_z"] > 0 and saved["output_variance"]["over_sources"] > 0
    assert set(saved["attribute_error_degrees"]) == set(POSE_GAZE)
    assert set(saved["sweeps"]) == set(nir_eval.SWEEPS) and len(saved["sweeps"]["gaze_yaw"]["slope_random_z"]) == 3
    assert -1 <= saved["identity"]["identity_similarity_reconstructed"] <= 1
    assert metrics["fid"] == saved["fid"]


def test_eval_of_a_run_with_one_test_pair_says_what_it_cannot_measure(tmp_path, capsys):
    """12 pairs leave 1 for the test: FID (two sets of at least 2) and the variance over sources are not
    measured, and eval says so in one line instead of a traceback; the rest is written."""
    run = train.main(TINY + ["--config", "ED-LS", "--pairs", "12", "--batch-size", "2", "--out", str(tmp_path / "run")])
    capsys.readouterr()
    metrics = nir_eval.main(["--run", str(run), "--all", "--distance", "synthetic", "--out", str(tmp_path / "eval")])
    printed = capsys.readouterr().out
    assert metrics["fid"] is None and metrics["output_variance"]["over_sources"] is None
    assert "FID not measured: the run has 1 test pair" in printed and "diversity " in printed and "LPIPS" not in printed
    assert (tmp_path / "eval" / "figures" / "fig4_12_head_yaw.png").exists()


def test_slope_reads_following_and_ignoring():
    x = torch.linspace(-20, 20, 9)
    assert nir_eval.slope(x, 0.5 * x + 3) == pytest.approx(0.5)
    assert nir_eval.slope(x, torch.full_like(x, 7.0)) == 0


def test_output_variance_over_latents_and_over_sources():
    """A G that ignores its source (output = z's first number everywhere) varies only over z:
    over_sources is 0 and over_z is the variance of the 8 latents' first numbers."""
    def gen(source, z):
        return z[:, :1, None, None].expand(-1, 1, 2, 2)
    sources = torch.rand(5, 3, 4, 4)
    v = nir_eval.output_variance(gen, sources, 3)
    assert v["over_sources"] == 0
    assert v["over_z"] == pytest.approx(float(nir_eval.latents(8, 3, seed=3)[:, 0].var()), abs=1e-5)

    def copy(source, z):                                  # follows the source, ignores z
        return source[:, :1]
    v = nir_eval.output_variance(copy, sources, 3)
    assert v["over_z"] == 0 and v["over_sources"] == pytest.approx(float(sources[:, :1].var(0).mean()), abs=1e-5)


def test_eval_reads_only_the_checkpoint_and_never_imports_train(tiny_run, tmp_path):
    imported = {node.module for node in ast.walk(ast.parse(Path(nir_eval.__file__).read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert "nir_cgan.train" not in imported and "nir_cgan.data" in imported and "nir_cgan.model" in imported
    alone = tmp_path / "alone"                            # no config.json, no log.csv: the checkpoint suffices
    alone.mkdir()
    shutil.copy(tiny_run / "checkpoint.pt", alone)
    metrics = nir_eval.main(["--run", str(alone), "--distance", "synthetic", "--sources", "2", "--device", "cpu"])
    assert metrics["config"] == "ED-LS-LR-2" and metrics["step"] == 2 and metrics["test_pairs"] == 4
    assert (alone / "metrics.json").exists() and (alone / "figures" / "fig4_2_samples.png").exists()


def refused(argv, capsys):
    """eval.py's one-sentence refusal (SystemExit with a message, or argparse's error line)."""
    with pytest.raises(SystemExit) as err:
        nir_eval.main(argv)
    return one_sentence(err, capsys)


def test_eval_bad_run_folders_are_one_sentence_and_create_nothing(tiny_run, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert "does not exist" in refused(["--run", str(missing)], capsys)
    assert not missing.exists()
    other = tmp_path / "other"                            # another paper's run
    other.mkdir()
    save_checkpoint(other / "checkpoint.pt", paper="began_refiner", step=1, models={}, model_args={}, optimizers={})
    assert "is a began_refiner run, not a nir_cgan run" in refused(["--run", str(other)], capsys)
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    data = (tiny_run / "checkpoint.pt").read_bytes()
    (truncated / "checkpoint.pt").write_bytes(data[:len(data) // 2])
    assert "cannot be read" in refused(["--run", str(truncated)], capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No checkpoint at" in refused(["--run", str(empty)], capsys)
    assert "--sources: must be greater than 0" in refused(["--run", str(tiny_run), "--sources", "0"], capsys)
    for folder in (other, truncated, empty):
        assert sorted(p.name for p in folder.iterdir()) == ([] if folder is empty else ["checkpoint.pt"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_eval_on_cuda_without_a_gpu_is_one_sentence(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / "checkpoint.pt", run)
    assert "sees no CUDA GPU" in refused(["--run", str(run), "--device", "cuda"], capsys)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


def test_configuration_study_runs_end_to_end_and_survives_failures(tmp_path, monkeypatch, capsys):
    """Two configurations train; ED-O stops with a SystemExit and Mult-LS crashes: both are recorded
    in study.md with their reason, and the study goes on."""
    real_train = train.main

    def failing(argv):
        name = argv[argv.index("--config") + 1]
        if name == "ED-O":
            raise SystemExit("the data ran out.")
        if name == "Mult-LS":
            raise RuntimeError("CUDA error: an illegal memory access\nsecond line")
        return real_train(argv)
    monkeypatch.setattr(train, "main", failing)
    with pytest.raises(SystemExit, match=r"2 of 4 configurations failed \(ED-O, Mult-LS\): their reasons are in"):
        study.main(["--configs", "ED-LS", "ED-O", "Mult-LS", "ED-H", "--out", str(tmp_path), "--"] + TINY)
    results = study.main(["--configs", "ED-LS", "ED-H", "--out", str(tmp_path), "--tables-only"])
    assert set(results) == {"ED-LS", "ED-H"}
    study.main(["--configs", "ED-LS", "ED-O", "Mult-LS", "ED-H", "--out", str(tmp_path), "--tables-only"])
    text = (tmp_path / "study.md").read_text()
    assert "### Table 4.2 generator" in text and "| ED-H |" in text and "78.5" in text    # thesis FID beside ours
    assert "- ED-O: failed: the data ran out." in text
    assert "- Mult-LS: failed: RuntimeError: CUDA error: an illegal memory access\n" in text
    assert "ED-O failed, the study goes on" in capsys.readouterr().out
    assert (tmp_path / "fig4_11_scores.png").stat().st_size > 1000
    again = study.main(["--configs", "ED-LS", "ED-O", "--out", str(tmp_path), "--tables-only"])   # no training
    assert again["ED-LS"]["fid"] == results["ED-LS"]["fid"] and set(again) == {"ED-LS"}
    assert "- ED-O: failed: the data ran out." in (tmp_path / "study.md").read_text()


def test_study_checks_the_flags_for_train_py_before_any_run(tmp_path, capsys):
    """A bad flag after -- stops the study at once, with argparse's line and status 2 (it used to fail every
    configuration one by one and exit 0)."""
    with pytest.raises(SystemExit) as err:
        study.main(["--configs", "ED-LS", "--out", str(tmp_path / "study"), "--", "--stepz", "3"])
    assert "unrecognized arguments: --stepz 3" in one_sentence(err, capsys)
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_study_refuses_jobs_below_one(jobs, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        study.main(["--jobs", jobs, "--out", str(tmp_path / "study")])
    assert err.value.code == 2
    assert f"--jobs: must be greater than 0, not {jobs}" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()
