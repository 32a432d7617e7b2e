"""sr_degradation: eq. 1 and the hinge/pixel losses by hand, network shapes, the noise input, train.py stages."""
import importlib.util
import json

import pytest
import torch

from sr_degradation import train
from sr_degradation.model import (Discriminator, HighToLow, LowToHigh, downsample_target, generator_loss,
                                  hinge_d_loss, hinge_g_loss, pixel_loss)


# ----------------------------------------------------------------- losses, by hand

def test_pixel_loss_is_the_mean_squared_error():
    out = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    target = torch.tensor([[0.0, -1.0], [0.0, 1.0]])
    assert pixel_loss(out, target).item() == pytest.approx((1 + 0 + 0.25 + 1) / 4)


def test_high_to_low_target_is_the_4x4_average():
    hr = torch.arange(64.0).view(1, 1, 8, 8)
    # top-left 4×4 block of 0…63 (rows of 8): mean of 0–3, 8–11, 16–19, 24–27 = 13.5
    assert downsample_target(hr)[0, 0].tolist() == [[13.5, 17.5], [45.5, 49.5]]


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.5])
    # E[max(0, 1 − real)] = (0 + 0.5 + 2)/3, E[max(0, 1 + fake)] = (0 + 1 + 1.5)/3
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 2.5 / 3)
    assert hinge_g_loss(fake).item() == pytest.approx(2.5 / 3)          # −E[D(fake)] = −(−2.5/3)


def test_eq1_weighting():
    # α = 1, β = 0.05: 1·0.3 + 0.05·(−2)
    assert generator_loss(torch.tensor(0.3), torch.tensor(-2.0)).item() == pytest.approx(0.3 - 0.05 * 2)
    assert generator_loss(torch.tensor(0.3), torch.tensor(-2.0), alpha=2, beta=0.5).item() == pytest.approx(-0.4)


# ----------------------------------------------------------------- architecture

def test_high_to_low_shapes_and_noise():
    torch.manual_seed(0)
    G = HighToLow(width=8, blocks=(1, 1, 1)).eval()
    hr = torch.randn(2, 3, 64, 64)
    out = G(hr, torch.randn(2, 64))
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    # Two noises, two degradations of the same face (§X); the same noise, the same output.
    z1, z2 = torch.randn(2, 64), torch.randn(2, 64)
    assert (G(hr, z1) - G(hr, z2)).abs().max() > 1e-3
    assert torch.equal(G(hr, z1), G(hr, z1))
    assert HighToLow(width=8, blocks=(0, 1, 1), size=32)(hr[..., :32, :32], z1).shape == (2, 3, 8, 8)


def test_low_to_high_shapes():
    L = LowToHigh(width=16, blocks=(2, 2))
    out = L(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    assert L.blocks32[0].body[2].out_channels == 8                        # w → w/2 at 32×32


@pytest.mark.parametrize("size,blocks", [(64, 5), (16, 5), (8, 4)])
def test_discriminator_shapes(size, blocks):
    D = Discriminator(size, width=8)
    assert len(D.body) - 1 == blocks                                      # stride-2 blocks to 4×4, then extras
    assert D.body(torch.randn(2, 3, size, size)).shape == (2, 8, 4, 4)
    assert D(torch.randn(2, 3, size, size)).shape == (2,)
    assert hasattr(D.fc, "parametrizations")                              # spectral norm on every layer


# ----------------------------------------------------------------- train.py

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids OpenMP overhead (5× faster on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = ["--size", "32", "--hr-faces", "24", "--lr-faces", "24", "--batch-size", "8", "--fid-faces", "0",
        "--h2l-width", "8", "--l2h-width", "8", "--h2l-blocks", "0", "1", "1", "--l2h-blocks", "1", "1",
        "--d-width-lr", "8", "--d-width-hr", "8", "--d-steps", "2", "--log-every", "1", "--sample-every", "1",
        "--ckpt-every", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each stage, chained as the README does; stage 1 also logs FID."""
    root = tmp_path_factory.mktemp("sr")
    h2l = train.main(TINY + ["--stage", "h2l", "--steps", "2", "--fid-faces", "16", "--out", str(root / "h2l")])
    l2h = train.main(TINY + ["--stage", "l2h", "--h2l-run", str(h2l), "--steps", "2", "--out", str(root / "l2h")])
    return {"h2l": h2l, "l2h": l2h}


def stage_args(stage, runs):
    return {"h2l": ["--stage", "h2l"], "l2h": ["--stage", "l2h", "--h2l-run", str(runs["h2l"])],
            "bicubic": ["--stage", "l2h", "--degradation", "bicubic"],
            "finetune": ["--stage", "finetune", "--l2h-run", str(runs["l2h"])]}[stage]


def test_h2l_smoke_writes_the_run_folder(runs):
    run = runs["h2l"]
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000002.png"):
        assert (run / name).exists(), name
    header, *rows = (run / "log.csv").read_text().splitlines()
    assert {"loss_D_lr", "pixel_h2l", "gan_h2l", "time_s", "fid_h2l"} <= set(header.split(","))
    assert [r.split(",")[0] for r in rows] == ["0", "1", "2"]
    assert rows[0].split(",")[header.split(",").index("fid_h2l")] != ""          # FID before training
    assert set(torch.load(run / "checkpoint.pt", weights_only=False)["models"]) == {"H2L", "D_lr"}


def test_stage_two_reads_stage_one_and_finetune_moves_both(runs, tmp_path):
    assert json.loads((runs["l2h"] / "config.json").read_text())["h2l_run"] == str(runs["h2l"])
    ft = train.main(TINY + stage_args("finetune", runs) + ["--steps", "1", "--out", str(tmp_path / "ft")])
    state = torch.load(ft / "checkpoint.pt", weights_only=False)
    assert set(state["models"]) == {"H2L", "D_lr", "L2H", "D_hr"}
    for name, run in (("H2L", runs["h2l"]), ("L2H", runs["l2h"])):      # started from them, then trained
        before = torch.load(run / "checkpoint.pt", weights_only=False)["models"][name]
        after = state["models"][name]
        assert max((before[k].float() - after[k].float()).abs().max().item() for k in before) > 0, name


def test_stage_two_needs_its_stage_one_run():
    with pytest.raises(SystemExit, match="--h2l-run"):
        train.main(TINY + ["--stage", "l2h"])


@pytest.mark.parametrize("stage", ["h2l", "l2h", "bicubic", "finetune"])
def test_resume_continues_exactly_and_same_seed_same_samples(stage, runs, tmp_path):
    args = TINY + stage_args(stage, runs)
    straight = train.main(args + ["--steps", "2", "--out", str(tmp_path / "straight")])
    half = train.main(args + ["--steps", "1", "--out", str(tmp_path / "half")])
    again = train.main(args + ["--steps", "1", "--out", str(tmp_path / "again")])
    # determinism: the same seed gives the same samples, bit for bit
    assert (half / "samples/step_0000001.png").read_bytes() == (again / "samples/step_0000001.png").read_bytes()
    train.main(args + ["--steps", "2", "--resume", "--out", str(half)])
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(half / "checkpoint.pt", weights_only=False)
    assert b["step"] == 2
    for name in a["models"]:
        for key, tensor in a["models"][name].items():
            assert torch.allclose(tensor.float(), b["models"][name][key].float(), atol=1e-6), (name, key)


def test_eval_writes_table2_and_every_figure(runs, tmp_path):
    from sr_degradation import eval as evaluate
    bicubic = train.main(TINY + stage_args("bicubic", runs) + ["--steps", "1", "--out", str(tmp_path / "bicubic")])
    out = tmp_path / "eval"
    evaluate.main(["--run", str(runs["l2h"]), "--bicubic-run", str(bicubic), "--faces", "12", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    figures = ["table2.md", "table2.png", "degradation.png", "table1_fig5_curves.png"]
    if importlib.util.find_spec("dlib"):                                 # the failure grid needs the detector
        figures.append("failures.png")
    for name in figures:
        assert list(out.rglob(name)), name
    table = next(out.rglob("table2.md")).read_text()
    assert "15.20" in table and "85.59" in table                        # the paper's numbers beside ours
    assert metrics
