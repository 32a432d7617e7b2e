"""sr_degradation: eq. 1 and the hinge/pixel losses by hand, network shapes, build(), the pipeline and each
stage through train.main (smoke, resume, determinism, bad input, a longer earlier stage, Ctrl-C, your own
faces), eval.py on a pipeline, on one stage, on a --data run's held-out faces and on the shipped pipeline (no --run),
and golden_output."""
import ast
import csv
import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from common import loop
from common.checkpoints import read_checkpoint, save_checkpoint
from common.data import load_image_folder, to_float
from common.loop import Run
from common.metrics import psnr
from conftest import assert_same_checkpoint, check_one_sentence, evaluate_shipped, ship
from sr_degradation import eval as evaluate
from sr_degradation import train
from sr_degradation.data import bicubic_down
from sr_degradation.model import (Discriminator, HighToLow, LowToHigh, bicubic_up, build, compute_d_loss,
                                  compute_g_loss, downsample_target, generator_loss, hinge_d_loss, hinge_g_loss,
                                  pixel_loss)

pytestmark = pytest.mark.filterwarnings("ignore:FID. singular covariance")      # tiny FID sets


# ----------------------------------------------------------------- losses, by hand

def test_pixel_loss_is_the_mean_squared_error():
    out = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    target = torch.tensor([[0.0, -1.0], [0.0, 1.0]])
    assert pixel_loss(out, target).item() == pytest.approx((1 + 0 + 0.25 + 1) / 4)


def test_high_to_low_target_is_the_4x4_average():
    high = torch.arange(64.0).view(1, 1, 8, 8)
    # top-left 4×4 block of 0…63 (rows of 8): mean of 0–3, 8–11, 16–19, 24–27 = 13.5
    assert downsample_target(high)[0, 0].tolist() == [[13.5, 17.5], [45.5, 49.5]]


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.5])
    # E[max(0, 1 − real)] = (0 + 0.5 + 2)/3, E[max(0, 1 + fake)] = (0 + 1 + 1.5)/3
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 2.5 / 3)
    assert hinge_g_loss(fake).item() == pytest.approx(2.5 / 3)          # −E[D(fake)] = −(−2.5/3)


def test_eq1_weighting():
    # α = 1, β = 0.05: 1·0.3 + 0.05·(−2)
    assert generator_loss(torch.tensor(0.3), torch.tensor(-2.0)).item() == pytest.approx(0.3 - 0.05 * 2)
    assert generator_loss(torch.tensor(0.3), torch.tensor(-2.0), alpha=2, beta=0.5).item() == pytest.approx(-0.4)
    # no GAN term (Low-to-High's --pixel-warmup): α·pixel alone
    assert generator_loss(torch.tensor(0.3), None, alpha=2).item() == pytest.approx(0.6)


def test_compute_d_loss_is_each_critics_hinge_loss_and_their_sum():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    # D_low = identity: (max(0, 1 − 2) + max(0, 1 − 0.5))/2 + (max(0, 1 − 3) + max(0, 1 + 0))/2 = 0.25 + 0.5
    # D_high = 2·x: scores (4, 1) and (−6, 0): (0 + 0)/2 + (0 + 1)/2 = 0.5
    terms = compute_d_loss(D_low=(lambda x: x, real, fake), D_high=(lambda x: 2 * x, real, fake))
    assert set(terms) == {"loss_D_low", "loss_D_high", "loss_D"}
    assert terms["loss_D_low"].item() == pytest.approx(0.75) and terms["loss_D_high"].item() == pytest.approx(0.5)
    assert terms["loss_D"].item() == pytest.approx(1.25)
    assert set(compute_d_loss(D_low=(lambda x: x, real, fake))) == {"loss_D_low", "loss_D"}


def test_compute_g_loss_is_eq1_per_generator_summed_end_to_end():
    """Stand-in networks on 4×4 HR images of 2s: High-to-Low returns z as a 1×1 LR image (its target, the
    4×4 average of the HR image, is 2), Low-to-High repeats it to 4×4, D_low scores 0.5·x, D_high the mean."""
    high, z = torch.full((1, 1, 4, 4), 2.0), torch.tensor([3.0], requires_grad=True)
    nets = dict(H2L=lambda hr, noise: noise.view(1, 1, 1, 1), D_low=lambda x: 0.5 * x.flatten(),
                L2H=lambda lr: F.interpolate(lr, scale_factor=4), D_high=lambda x: x.mean((1, 2, 3)))
    # High-to-Low alone (stage h2l): pixel (3 − 2)² = 1, GAN −0.5·3 = −1.5, eq. 1: 1 + 0.05·(−1.5) = 0.925
    terms = compute_g_loss(high, nets["H2L"], nets["D_low"], z)
    assert set(terms) == {"pixel_h2l", "gan_h2l", "loss_G"}
    assert [terms[k].item() for k in terms] == pytest.approx([1.0, -1.5, 0.925])
    # Low-to-High alone on a given LR image of 0s (stage l2h): pixel (0 − 2)² = 4, GAN −0 = 0 → 4; with no
    # critic (the warm-up): no GAN term, loss_G = α·pixel
    low = torch.zeros(1, 1, 1, 1)
    terms = compute_g_loss(high, L2H=nets["L2H"], D_high=nets["D_high"], low=low, alpha=2.0)
    assert [terms[k].item() for k in ("pixel_l2h", "gan_l2h", "loss_G")] == pytest.approx([4.0, 0.0, 8.0])
    terms = compute_g_loss(high, L2H=nets["L2H"], low=low, alpha=2.0)
    assert terms["gan_l2h"] is None and terms["loss_G"].item() == pytest.approx(8.0)
    # both (the fine-tune): Low-to-High reads High-to-Low's 3s: pixel (3 − 2)² = 1, GAN −3, eq. 1: 0.85; sum 1.775
    terms = compute_g_loss(high, z=z, **nets)
    assert [terms[k].item() for k in ("pixel_l2h", "gan_l2h", "loss_G")] == pytest.approx([1.0, -3.0, 1.775])
    # end to end: d loss_G / dz = 2(z − 2) − 0.05·0.5 (High-to-Low's eq. 1) + 2(z − 2) − 0.05 (Low-to-High's)
    terms["loss_G"].backward()
    assert z.grad.item() == pytest.approx(2 - 0.025 + 2 - 0.05)


# ----------------------------------------------------------------- architecture

def test_high_to_low_shapes_and_noise():
    torch.manual_seed(0)
    G = HighToLow(width=8, blocks=(1, 1, 1)).eval()
    high = torch.randn(2, 3, 64, 64)
    out = G(high, torch.randn(2, 64))
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    # Two noises, two degradations of the same face (§X); the same noise, the same output.
    z1, z2 = torch.randn(2, 64), torch.randn(2, 64)
    assert (G(high, z1) - G(high, z2)).abs().max() > 1e-3
    assert torch.equal(G(high, z1), G(high, z1))
    assert HighToLow(width=8, blocks=(0, 1, 1), size=32)(high[..., :32, :32], z1).shape == (2, 3, 8, 8)


def test_forward_runs_high_to_low_and_the_critics_in_the_parts_its_shape_comments_name():
    G = HighToLow(width=8, blocks=(1, 2, 1)).eval()
    x, shapes = torch.randn(2, 4, 64, 64), []
    for part in G.stages:                                                 # stem, at 64, at 32, at 16 (+ tanh)
        x = G.body[part](x)
        shapes.append(tuple(x.shape))
    assert shapes == [(2, 8, 64, 64), (2, 8, 32, 32), (2, 8, 16, 16), (2, 3, 16, 16)]
    assert G.stages[-1].stop == len(G.body)                               # every layer in one part
    for size in (64, 16):                                                 # D_high, D_low: ↓2 blocks down to 4×4
        D = Discriminator(size, width=8)
        assert D.body[:D.downs](torch.randn(2, 3, size, size)).shape == (2, 8, 4, 4)


def test_low_to_high_shapes():
    L = LowToHigh(width=16, blocks=(2, 2))
    out = L(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    assert L.blocks32[0].body[2].out_channels == 8                        # w → w/2 at 32×32


def test_residual_low_to_high_starts_as_bicubic_upsampling_and_learns_on_top():
    torch.manual_seed(0)
    L = LowToHigh(width=16, blocks=(2, 2), residual=True)
    low = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(L(low), bicubic_up(low))                          # the last 1×1 conv starts at zero
    assert bicubic_up(torch.full((1, 3, 16, 16), 0.25)).sub(0.25).abs().max() < 1e-6   # flat stays flat
    pixel_loss(L(low), torch.zeros(2, 3, 64, 64)).backward()
    assert L.head[-1].weight.grad.abs().sum() > 0                         # …and gets a gradient at once
    assert build(["L2H"], l2h_width=8, l2h_blocks=(1, 1), l2h_residual=True)["L2H"].residual


@pytest.mark.parametrize("size,blocks", [(64, 5), (16, 5), (8, 4)])
def test_discriminator_shapes(size, blocks):
    D = Discriminator(size, width=8)
    assert len(D.body) - 1 == blocks                                      # stride-2 blocks to 4×4, then extras
    assert D.body(torch.randn(2, 3, size, size)).shape == (2, 8, 4, 4)
    assert D(torch.randn(2, 3, size, size)).shape == (2,)
    assert hasattr(D.fc, "parametrizations")                              # spectral norm on every layer


def test_build_makes_the_named_networks_and_refuses_impossible_sizes():
    nets = build(["H2L", "D_low"], size=32, z_dim=8, h2l_width=4, h2l_blocks=[0, 1, 1], d_low_width=4)
    assert set(nets) == {"H2L", "D_low"}
    low = nets["H2L"](torch.randn(2, 3, 32, 32), torch.randn(2, 8))
    assert low.shape == (2, 3, 8, 8) and nets["D_low"](low).shape == (2,)
    for size in (0, 8, 33, 48):
        with pytest.raises(ValueError, match="power of two"):
            build(size=size)
    with pytest.raises(ValueError, match="at least 3"):
        build(["L2H"], l2h_width=2)
    with pytest.raises(ValueError, match="no network named"):
        build(["G"])


# ----------------------------------------------------------------- train.py: the pipeline and each stage



TINY = ["--size", "16", "--high-faces", "12", "--low-faces", "12", "--batch-size", "4", "--fid-faces", "0",
        "--z-dim", "8", "--h2l-width", "4", "--l2h-width", "4", "--h2l-blocks", "0", "1", "0", "--l2h-blocks", "0", "1",
        "--d-low-width", "4", "--d-high-width", "4", "--d-steps", "1", "--log-every", "1", "--sample-every", "1",
        "--ckpt-every", "1"]
PIPELINE = TINY + ["--h2l-steps", "2", "--l2h-steps", "2", "--finetune-steps", "2", "--with-bicubic"]
NETWORKS = {"h2l": {"H2L", "D_low"}, "l2h": {"L2H", "D_high"}, "finetune": {"H2L", "D_low", "L2H", "D_high"},
            "bicubic": {"L2H", "D_high"}}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The bare command (no --stage), with tiny sizes, widths and stage lengths given by flags."""
    return train.main(PIPELINE + ["--out", str(tmp_path_factory.mktemp("sr") / "pipeline")])


@pytest.fixture
def no_loss_png(monkeypatch):
    """No loss.png at the end of each stage (matplotlib: most of a tiny stage's time); the tests using
    this read checkpoints and log.csv, and the pipeline test checks that every stage writes one."""
    monkeypatch.setattr(loop, "plot_losses", lambda *args, **kwargs: None)


def files(folder):
    """{relative path: sha256} of every file under ``folder``: a run folder byte for byte."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_bare_command_runs_the_pipeline_with_the_presets_stage_lengths():
    args, resumed = train.parse([])
    assert args.stage is None and resumed is None and args.with_bicubic
    assert (args.h2l_steps, args.l2h_steps, args.finetune_steps) == (600, 2000, 100)
    assert args.l2h_residual and args.pixel_warmup == 2000                 # quick: l2h on the pixel loss alone
    assert train.parse(["--stage", "h2l"])[0].steps == 600
    assert train.parse(["--stage", "bicubic"])[0].steps == 2000
    paper = train.parse(["--preset", "paper"])[0]
    assert not paper.l2h_residual and paper.pixel_warmup == 0             # the authors' network and eq. 1 throughout
    assert not hasattr(train.parse(["--stage", "bicubic"])[0], "h2l_steps")       # a stage's config is its own


def test_parse_only_reads_and_training_never_imports_eval(tmp_path):
    """parse() loads no network: a --h2l-run that does not exist is refused by main, with one sentence.
    eval.py is imported by train.py's main alone (the bare command's closing evaluation), not by training."""
    flags = TINY + ["--stage", "l2h", "--h2l-run", str(tmp_path / "none"), "--out", str(tmp_path / "l2h")]
    args, resumed = train.parse(flags)
    assert args.h2l_run == str(tmp_path / "none") and resumed is None
    with pytest.raises(SystemExit, match="does not exist"):
        train.main(flags)

    def imports_eval(node):
        return any(isinstance(n, ast.ImportFrom) and (n.module == "sr_degradation.eval" or n.module == "sr_degradation"
                                                      and any(a.name == "eval" for a in n.names))
                   for n in ast.walk(node))
    for module, importers in ((train, ["main"]), (train.pipeline, [])):
        tree = ast.parse(Path(module.__file__).read_text())
        assert [getattr(node, "name", "the module") for node in tree.body if imports_eval(node)] == importers


def test_pipeline_writes_one_complete_run_folder_per_stage(pipeline):
    assert json.loads((pipeline / "config.json").read_text())["h2l_steps"] == 2
    for stage, networks in NETWORKS.items():
        run = pipeline / stage
        for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000002.png"):
            assert (run / name).exists(), (stage, name)
        checkpoint = read_checkpoint(run / "checkpoint.pt")
        assert checkpoint["step"] == 2 and checkpoint["config"]["stage"] == stage
        assert set(checkpoint["models"]) == networks and set(build(**checkpoint["model_args"])) == networks
    assert json.loads((pipeline / "l2h" / "config.json").read_text())["h2l_run"] == str(pipeline / "h2l")
    assert json.loads((pipeline / "finetune" / "config.json").read_text())["l2h_run"] == str(pipeline / "l2h")
    header = (pipeline / "finetune" / "log.csv").read_text().splitlines()[0].split(",")
    assert {"loss_D_low", "loss_D_high", "pixel_h2l", "gan_h2l", "pixel_l2h", "gan_l2h", "loss_G"} <= set(header)
    # the fine-tune started from both stages, then trained them
    for name, stage in (("H2L", "h2l"), ("L2H", "l2h")):
        before = read_checkpoint(pipeline / stage / "checkpoint.pt")["models"][name]
        after = read_checkpoint(pipeline / "finetune" / "checkpoint.pt")["models"][name]
        assert max((before[k].float() - after[k].float()).abs().max().item() for k in before) > 0, name


def stage_flags(stage, pipeline):
    return ["--stage", stage] + {"l2h": ["--h2l-run", str(pipeline / "h2l")],
                                 "finetune": ["--l2h-run", str(pipeline / "l2h")]}.get(stage, [])


@pytest.mark.parametrize("stage", ["h2l", "l2h", "finetune", "bicubic"])
def test_one_stage_alone_resumed_equals_the_pipelines_stage(stage, pipeline, tmp_path):
    """Each stage runs alone with --stage; 1 step, stopped, resumed to 2 equals the pipeline's 2 straight
    steps; the same seed gives the same samples, bit for bit (determinism)."""
    args = TINY + stage_flags(stage, pipeline)
    half = train.main(args + ["--steps", "1", "--out", str(tmp_path / stage)])
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt"):
        assert (half / name).exists(), name
    assert ((half / "samples/step_0000001.png").read_bytes()
            == (pipeline / stage / "samples/step_0000001.png").read_bytes())
    train.main(args + ["--steps", "2", "--resume", "--out", str(half)])
    assert_same_checkpoint(half, pipeline / stage)                # networks, optimisers, batch order, hand-over


def test_ctrl_c_mid_pipeline_prints_one_resume_command_that_equals_the_uninterrupted_pipeline(
        pipeline, tmp_path, monkeypatch, capsys, no_loss_png):
    log = Run.log

    def ctrl_c_in_l2h(self, step, **values):                  # Ctrl-C during the l2h stage's first step
        if self.dir.name == "l2h" and step == 1:
            self._stop.requested = True
        log(self, step, **values)

    monkeypatch.setattr(Run, "log", ctrl_c_in_l2h)
    out = tmp_path / "pipeline"
    with pytest.raises(SystemExit) as stopped:
        train.main(PIPELINE + ["--no-with-bicubic", "--sample-every", "9", "--out", str(out)])
    assert stopped.value.code == 130                           # interrupted: `train && eval` does not evaluate
    said = [line for line in capsys.readouterr().out.splitlines() if "--resume" in line]
    assert len(said) == 1 and said[0].endswith(f"continue with: python sr_degradation/train.py --resume --out {out}")
    assert read_checkpoint(out / "l2h" / "checkpoint.pt")["step"] == 1 and not (out / "finetune").exists()
    monkeypatch.setattr(Run, "log", log)
    train.main(said[0].split("train.py ")[1].split())         # the command it printed; config.json brings the flags
    for stage in ("h2l", "l2h", "finetune"):
        assert_same_checkpoint(out / stage, pipeline / stage)
    assert not (out / "bicubic").exists()


def test_a_longer_earlier_stage_trains_the_later_ones_again_from_scratch(pipeline, tmp_path, capsys, no_loss_png):
    """--resume --h2l-steps 3: h2l goes on to step 3; l2h and finetune were trained on its step-2 outputs,
    so each is trained again from scratch (one line says so); the baseline does not read h2l and stays."""
    out, old_l2h = tmp_path / "pipeline", tmp_path / "old_l2h"
    shutil.copytree(pipeline, out)
    shutil.copytree(pipeline / "l2h", old_l2h)
    bicubic = files(out / "bicubic")
    train.main(["--resume", "--out", str(out), "--h2l-steps", "3", "--sample-every", "9"])
    said = capsys.readouterr().out
    assert "l2h: h2l/ changed (step 2 → 3), so l2h/ is trained again from scratch" in said
    assert "finetune: h2l/ changed (step 2 → 3), so finetune/ is trained again from scratch" in said
    assert read_checkpoint(out / "h2l" / "checkpoint.pt")["step"] == 3 and files(out / "bicubic") == bicubic
    assert read_checkpoint(out / "finetune" / "checkpoint.pt")["extra"]["h2l_step"] == 3
    assert [r["step"] for r in csv.DictReader(open(out / "l2h" / "log.csv"))] == ["1", "2"]     # a new log
    alone = train.main(TINY + ["--stage", "l2h", "--h2l-run", str(out / "h2l"), "--steps", "2", "--sample-every", "9",
                               "--out", str(tmp_path / "l2h_alone")])
    assert_same_checkpoint(out / "l2h", alone)                 # = l2h trained from scratch on the new High-to-Low
    check_one_sentence(train.main, TINY + ["--stage", "finetune", "--l2h-run", str(old_l2h), "--h2l-run",
                                           str(out / "h2l"), "--out", str(tmp_path / "ft")],
                       "at step 2, and", capsys)              # an l2h run trained on the old High-to-Low
    assert not (tmp_path / "ft").exists()


def test_d_steps_0_trains_no_critic_and_leaves_its_loss_cells_empty(tmp_path):
    run = train.main(TINY + ["--stage", "h2l", "--d-steps", "0", "--steps", "1", "--fid-faces", "4",
                             "--out", str(tmp_path / "run")])
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["step"] for r in rows] == ["0", "1"] and rows[1]["loss_D_low"] == "" and rows[1]["loss_G"] != ""
    assert rows[0]["fid_h2l"] and rows[1]["fid_h2l"]                          # FID before and after training
    optimizers = read_checkpoint(run / "checkpoint.pt")["optimizers"]
    assert optimizers["D_low"]["state"] == {} and optimizers["H2L"]["state"]
    run = train.main(TINY + ["--stage", "bicubic", "--d-steps", "0", "--steps", "1", "--out", str(tmp_path / "b")])
    assert read_checkpoint(run / "checkpoint.pt")["optimizers"]["D_high"]["state"] == {}


def test_pixel_warmup_trains_low_to_high_alone_then_adds_the_gan_term(tmp_path):
    flags = TINY + ["--stage", "bicubic", "--pixel-warmup", "1", "--fid-faces", "4"]
    run = train.main(flags + ["--steps", "1", "--out", str(tmp_path / "run")])
    assert read_checkpoint(run / "checkpoint.pt")["optimizers"]["D_high"]["state"] == {}     # no critic yet
    train.main(flags + ["--steps", "2", "--resume", "--out", str(run)])
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[1]["gan_l2h"] == rows[1]["loss_D_high"] == "" and rows[1]["loss_G"] == rows[1]["pixel_l2h"]
    assert rows[2]["gan_l2h"] and rows[2]["loss_D_high"]                 # step 2: eq. 1 and the critic
    assert 0 < float(rows[0]["psnr_db"]) < 100 and rows[2]["fid_sr"]      # PSNR on bicubic LR, FID on real LR
    assert read_checkpoint(run / "checkpoint.pt")["optimizers"]["D_high"]["state"]


# ----------------------------------------------------------------- bad input: one sentence, nothing written

@pytest.mark.parametrize("flags,message", [
    (["--batch-size", "0"], "greater than 0"), (["--size", "0"], "greater than 0"), (["--size", "33"], "power of two"),
    (["--size", "48"], "power of two"), (["--lr", "-1"], "greater than 0"), (["--ckpt-every", "0"], "greater than 0"),
    (["--sample-every", "0"], "greater than 0"), (["--stage", "h2l", "--steps", "0"], "greater than 0"),
    (["--h2l-steps", "0"], "greater than 0"), (["--d-steps", "-1"], "0 or more"), (["--l2h-width", "2"], "at least 3"),
    (["--data", "faces/"], "--data-high and --data-low"), (["--steps", "5"], "one length per stage"),
    (["--stage", "h2l", "--h2l-steps", "5"], "belongs to the pipeline"), (["--stage", "l2h"], "needs --h2l-run"),
    (["--stage", "finetune"], "needs --l2h-run"), (["--stage", "h2l", "--h2l-run", "x"], "read by"),
    (["--fid-faces", "1"], "at least 2"), (["--stage", "x"], "invalid choice"),
    (["--seed", "-1"], "from 0 to 4294967295"), (["--stage", "h2l", "--seed", "-1"], "from 0 to 4294967295")])
def test_bad_flags_are_refused_with_one_sentence(flags, message, tmp_path, capsys):
    check_one_sentence(train.main, TINY + flags + ["--out", str(tmp_path / "run")], message, capsys)
    assert not (tmp_path / "run").exists()


def test_an_out_that_cannot_hold_a_run_is_refused_with_one_sentence(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    for flags in ([], ["--stage", "h2l"]):
        check_one_sentence(train.main, TINY + flags + ["--out", str(a_file)], "is a file, not a folder", capsys)
    monkeypatch.setattr(os, "access", lambda path, mode: False)          # as a folder this user cannot write
    for flags in ([], ["--stage", "h2l"]):
        check_one_sentence(train.main, TINY + flags + ["--out", str(tmp_path / "new" / "run")], "cannot be written",
                           capsys)
    assert a_file.read_text() == "not a folder" and not (tmp_path / "new").exists()


def test_data_that_cannot_fill_a_batch_is_refused_with_one_sentence(tmp_path):
    with pytest.raises(SystemExit, match="does not fit the 3 HR training faces"):
        train.main(TINY + ["--high-faces", "3", "--out", str(tmp_path / "pipeline")])
    folder = tmp_path / "one_low_image"
    folder.mkdir()
    Image.new("RGB", (8, 8), "gray").save(folder / "face.png")
    with pytest.raises(SystemExit, match="holds 1 images: too few to hold out its last 8"):
        train.main(TINY + ["--stage", "h2l", "--data-low", str(folder), "--out", str(tmp_path / "h2l")])
    assert not (tmp_path / "pipeline").exists() and not (tmp_path / "h2l").exists()


def test_wrong_stage_folders_and_refused_resumes_change_nothing(pipeline, tmp_path):
    with pytest.raises(SystemExit, match="is a bicubic stage folder, not the h2l"):
        train.main(TINY + ["--stage", "l2h", "--h2l-run", str(pipeline / "bicubic"), "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="does not exist"):
        train.main(TINY + ["--stage", "finetune", "--l2h-run", str(tmp_path / "none"), "--out", str(tmp_path / "a")])
    assert not (tmp_path / "a").exists()
    config, stage_config = (pipeline / "config.json").read_bytes(), (pipeline / "h2l" / "config.json").read_bytes()
    with pytest.raises(SystemExit, match=r"--size 32 \(the run has 16\)"):
        train.main(["--resume", "--out", str(pipeline), "--size", "32"])
    with pytest.raises(SystemExit, match="every stage .* is finished"):
        train.main(["--resume", "--out", str(pipeline)])
    with pytest.raises(SystemExit, match="already holds a pipeline"):
        train.main(PIPELINE + ["--out", str(pipeline)])
    with pytest.raises(SystemExit, match=r"--size 32 \(the run has 16\)"):
        train.main(["--stage", "h2l", "--resume", "--out", str(pipeline / "h2l"), "--size", "32", "--steps", "3"])
    with pytest.raises(SystemExit, match="is not an sr_degradation pipeline folder"):
        train.main(["--resume", "--out", str(pipeline / "h2l")])
    assert (pipeline / "config.json").read_bytes() == config
    assert (pipeline / "h2l" / "config.json").read_bytes() == stage_config


# ----------------------------------------------------------------- eval.py on any run

def test_eval_on_the_pipeline_shows_table2_the_degradation_and_every_figure(pipeline, tmp_path):
    before, out = files(pipeline), tmp_path / "eval"
    metrics = evaluate.main(["--run", str(pipeline), "--faces", "6", "--out", str(out)])
    assert files(pipeline) == before                                      # --out: nothing written into the run
    assert list(metrics["stages"]) == ["h2l", "l2h", "finetune", "bicubic"]
    assert metrics["not_shown"] == []
    table2 = metrics["table2"]
    assert {evaluate.LABELS[s] for s in ("l2h", "finetune", "bicubic")} <= set(table2)
    assert set(metrics["table2_columns"]) >= set(table2["bicubic upsampling"]) - {"no_face_fraction"}
    dlib_missing = importlib.util.find_spec("dlib") is None               # CI has no dlib: no no-face column
    assert ("no_face_fraction" in table2["bicubic upsampling"]) != dlib_missing
    # the two questions of Table 2, named in full, with both numbers and the answer
    psnr_check, *fid_checks = metrics["checks"].values()
    assert psnr_check["holds"] == (psnr_check[evaluate.LABELS["bicubic"]] > psnr_check["bicubic upsampling"])
    assert len(fid_checks) == 2 and all(set(c) >= {evaluate.LABELS["bicubic"], "holds"} for c in fid_checks)
    assert metrics["failures"]["method"] == evaluate.LABELS["finetune"] and 0 <= metrics["failures"]["fraction"] <= 1
    assert len(metrics["degradation_fid"]) == 4 and set(metrics["table1"]) == set(NETWORKS)
    assert json.loads((out / "metrics.json").read_text())["shown"] == metrics["shown"]
    for name in ("degradation.png", "table2.png", "super_resolution.png", "table1_fig5_curves.png", "failures.png"):
        assert (out / "figures" / name).exists(), name
    results = (out / "figures" / "results.md").read_text()
    assert "15.20" in results and "85.59" in results                     # the paper's numbers beside ours


def test_eval_on_one_stage_says_what_it_cannot_show(pipeline, tmp_path, capsys):
    only = tmp_path / "h2l_checkpoint_only"                              # no config.json, no log.csv
    only.mkdir()
    shutil.copy(pipeline / "h2l" / "checkpoint.pt", only)
    metrics = evaluate.main(["--run", str(only), "--faces", "4"])
    assert list(metrics["stages"]) == ["h2l"] and "degradation_fid" in metrics and "table2" not in metrics
    assert any("Table 2" in x for x in metrics["not_shown"]) and any("no log.csv" in x for x in metrics["not_shown"])
    assert "Not shown" in capsys.readouterr().out and (only / "figures" / "degradation.png").exists()


def test_eval_refuses_bad_runs_with_one_sentence_and_creates_nothing(pipeline, tmp_path, capsys):
    missing = tmp_path / "missing"
    with pytest.raises(SystemExit, match="does not exist"):
        evaluate.main(["--run", str(missing)])
    assert not missing.exists()
    other = tmp_path / "other"
    other.mkdir()
    save_checkpoint(other / "checkpoint.pt", paper="dcgan_celeba", step=1, models={}, model_args={}, optimizers={})
    with pytest.raises(SystemExit, match="is a dcgan_celeba run"):
        evaluate.main(["--run", str(other)])
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "checkpoint.pt").write_bytes((pipeline / "h2l" / "checkpoint.pt").read_bytes()[:200])
    with pytest.raises(SystemExit, match="damaged or truncated"):
        evaluate.main(["--run", str(truncated)])
    with pytest.raises(SystemExit, match="two h2l stages"):
        evaluate.main(["--run", str(pipeline), str(pipeline / "h2l")])
    for faces in ("0", "1"):
        check_one_sentence(evaluate.main, ["--run", str(pipeline), "--faces", faces], "--faces", capsys)
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    check_one_sentence(evaluate.main, ["--run", str(pipeline), "--out", str(a_file)], "is a file, not a folder", capsys)
    assert not (other / "figures").exists() and not (truncated / "figures").exists()
    assert not (pipeline / "figures").exists() and a_file.read_text() == "not a folder"


def face_folder(folder, n, side):
    """n random-noise PNG faces of side×side pixels, 00.png … in sorted order."""
    folder.mkdir()
    generator = torch.Generator().manual_seed(side)
    for i in range(n):
        pixels = torch.randint(0, 256, (side, side, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:02d}.png")
    return folder


def test_a_pipeline_on_your_own_faces_holds_out_their_last_images_and_ends_measuring_on_them(tmp_path, capsys,
                                                                                            no_loss_png):
    """--data-high / --data-low: the last max(--fid-faces, 8) = 8 images of each folder are never trained
    on; the pipeline's closing eval measures on them (Table 2's bicubic row, by hand, on the last 4)."""
    high, low = face_folder(tmp_path / "high", 14, 16), face_folder(tmp_path / "low", 14, 4)
    out = train.main(TINY + ["--h2l-steps", "1", "--l2h-steps", "1", "--finetune-steps", "1", "--fid-faces", "4",
                             "--data-high", str(high), "--data-low", str(low), "--out", str(tmp_path / "pipeline")])
    batches = read_checkpoint(out / "finetune" / "checkpoint.pt")["extra"]["batches"]
    assert len(batches["high"]["permutation"]) == len(batches["low"]["permutation"]) == 14 - 8
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["faces"] == {"HR": 4, "real LR": 4} and len(metrics["checks"]) == 3
    assert metrics["held_out"]["HR"] == f"the last 4 images of {high}, held out from training"
    held_out = to_float(load_image_folder(high, 16, last=4).images)
    bicubic = psnr(bicubic_up(bicubic_down(held_out)).clamp(-1, 1), held_out).mean().item()
    assert metrics["table2"]["bicubic upsampling"]["psnr_db_bicubic_lr"] == pytest.approx(bicubic, rel=1e-5)
    assert float(next(csv.DictReader(open(out / "l2h" / "log.csv")))["fid_sr"]) > 0     # FID in the log too
    assert (out / "figures" / "super_resolution.png").exists() and "The two checks" in capsys.readouterr().out


# ----------------------------------------------------------------- the shipped pipeline (sr_degradation/weights/pipeline)

def test_eval_without_run_evaluates_the_shipped_pipeline(pipeline, tmp_path, monkeypatch, capsys):
    metrics, out, _ = evaluate_shipped(evaluate.main, "sr_degradation", "pipeline", pipeline, ["--faces", "4"],
                                       tmp_path, monkeypatch, capsys)
    shipped = tmp_path / "repo" / "sr_degradation" / "weights" / "pipeline"
    assert {s: set(read_checkpoint(shipped / s / "checkpoint.pt")["models"]) for s in NETWORKS} == {
        "h2l": {"H2L"}, "l2h": {"L2H"}, "finetune": {"H2L", "L2H"}, "bicubic": {"L2H"}}      # generators only
    assert list(metrics["stages"]) == list(NETWORKS) and metrics["not_shown"] == []    # log.csv shipped per stage
    for name in ("degradation.png", "table2.png", "super_resolution.png", "table1_fig5_curves.png", "failures.png"):
        assert (out / "figures" / name).exists(), name
    measured = evaluate.main(["--run", str(pipeline), "--faces", "4", "--out", str(tmp_path / "of_the_run")])
    assert metrics["degradation_fid"] == pytest.approx(measured["degradation_fid"])
    assert all(metrics["table2"][m] == pytest.approx(row) for m, row in measured["table2"].items())
    assert metrics["table1"] == measured["table1"]


def test_golden_output_is_every_stages_generators_on_fixed_inputs(pipeline, tmp_path, monkeypatch):
    shipped = ship("sr_degradation", "pipeline", pipeline, tmp_path, monkeypatch)
    out = evaluate.golden_output(shipped)
    low, high = 4 * 3 * 4 * 4, 4 * 3 * 16 * 16            # size 16: H2L makes 4-px LR faces, L2H 16-px HR faces
    assert out.shape == (low + high + (low + high) + high,)                   # h2l, l2h, finetune, bicubic
    assert torch.equal(out, evaluate.golden_output(shipped))
    assert torch.equal(out, evaluate.golden_output(pipeline))                 # shipping keeps the generators
    assert torch.equal(evaluate.golden_output(pipeline / "l2h"), out[low:low + high])   # one stage: its part
    assert not torch.equal(out[low:low + high], out[-high:])                  # l2h and bicubic differ
