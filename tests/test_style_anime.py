"""style_anime: DCGAN shapes and labels, eq. 1, data.py, train.py, eval.py (of a run and of the shipped
generator; style transfer: test_style_anime_stylize.py)."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from common.checkpoints import read_checkpoint, save_checkpoint
from common.data import DataError
from conftest import check_one_sentence, check_resume, check_same_seed_same_run, evaluate_shipped, ship
from style_anime import eval as evaluate
from style_anime import train
from style_anime.data import load_faces
from style_anime.model import (Discriminator, Generator, build, discriminator_loss, generator_loss, label_loss,
                               noisy_labels)

# ----------------------------------------------------------------- DCGAN

@pytest.mark.parametrize("size,widths", [(32, [8, 16, 32]), (64, [8, 16, 32, 64])])
def test_dcgan_shapes(size, widths):
    G, D = Generator(size, z_dim=10, width=8), Discriminator(size, width=8)
    image = G(torch.randn(3, 10))
    assert image.shape == (3, 3, size, size) and image.abs().max() <= 1              # tanh output
    convs = [m for m in G.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == widths[::-1] + [3]                      # 8w … w → 3 channels
    p = D(image)
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()                              # sigmoid probability
    assert [m.out_channels for m in D.net if isinstance(m, torch.nn.Conv2d)] == widths + [1]
    leaky = [m.negative_slope for m in [*G.net, *D.net] if isinstance(m, torch.nn.LeakyReLU)]
    assert leaky and set(leaky) == {0.01}                                            # §IV.F
    for bad in (48, 33, 8, 0):
        with pytest.raises(ValueError, match=f"power-of-two sizes from 16 up .*not {bad}$"):
            build(bad, z_dim=10, width=8)


def test_build_gives_both_networks_with_the_dcgan_init():
    torch.manual_seed(0)
    nets = build(64, z_dim=100, width=64, slope=0.2)
    assert set(nets) == {"G", "D"} and nets["G"].z_dim == 100
    weight = nets["G"].net[0].weight
    assert abs(weight.mean().item()) < 2e-3 and weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert {m.negative_slope for m in nets["D"].net if isinstance(m, torch.nn.LeakyReLU)} == {0.2}


def test_noisy_labels_stay_in_their_range():
    torch.manual_seed(0)
    real, fake = noisy_labels(10_000, True, 0.2), noisy_labels(10_000, False, 0.2)
    assert real.min() >= 0.8 and real.max() <= 1.0 and fake.min() >= 0.0 and fake.max() <= 0.2
    assert real.std() > 0.05 and fake.std() > 0.05                                  # noisy, not constant
    assert torch.equal(noisy_labels(5, True, 0.0), torch.ones(5)) and torch.equal(noisy_labels(5, False, 0.0),
                                                                                     torch.zeros(5))


def test_eq1_losses_by_hand():
    d = torch.tensor([0.8, 0.25])
    # −[1·log 0.8 + 0] / 2 − [0 + 1·log(1 − 0.25)] / 2 with labels (1, 0)
    expected = -(torch.log(torch.tensor(0.8)) + torch.log(torch.tensor(0.75))) / 2
    assert label_loss(d, torch.tensor([1.0, 0.0])).item() == pytest.approx(expected.item())
    assert generator_loss(torch.tensor([0.5])).item() == pytest.approx(-torch.log(torch.tensor(0.5)).item())


def test_eq1_discriminator_loss_is_both_batches_by_hand():
    # D(x) = 0.8 with label 1: −log 0.8; D(G(q)) = 1/2 with the noisy label 0.1: −(0.1·log ½ + 0.9·log ½) = ln 2
    loss = discriminator_loss(torch.tensor([0.8]), torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([0.1]))
    assert loss.item() == pytest.approx(math.log(2.5))                               # −ln 0.8 + ln 2 = ln 2.5
    # hard labels: −mean log D(x) − mean log(1 − D(G(q))) = −log ½ − log ¼ = ln 8
    loss = discriminator_loss(torch.full((2,), 0.5), torch.full((2,), 0.75), torch.ones(2), torch.zeros(2))
    assert loss.item() == pytest.approx(math.log(8))


def test_eq1_generator_loss_is_the_non_saturating_one_by_hand():
    # −mean log D(G(q)) = −(log ½ + log 0.8) / 2 = ln(2.5) / 2, not −mean log(1 − D(G(q))) = ln(10) / 2
    assert generator_loss(torch.tensor([0.5, 0.8])).item() == pytest.approx(math.log(2.5) / 2)


# ----------------------------------------------------------------- data.py

def test_data_holds_out_the_last_fid_faces_of_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    train_faces, held_out = load_faces(str(tmp_path), 16, None, 4, 2)
    every = load_faces(str(tmp_path), 16, None, 1, 2)
    assert len(train_faces) == 8 and len(held_out) == 4
    assert torch.equal(torch.cat([train_faces, held_out]), torch.cat(every))          # split at the end, in order
    assert len(load_faces(str(tmp_path), 16, None, 8, 4)[0]) == 4       # one batch of 4 is left to train on
    with pytest.raises(DataError, match=r"holds 12 images: too few to hold out 9 for FID \(--fid-faces\) and still "
                                         "fill a batch of 4"):
        load_faces(str(tmp_path), 16, None, 9, 4)
    built_in_train, built_in_held_out = load_faces(None, 16, 6, 3, 2)
    assert len(built_in_train) == 6 and len(built_in_held_out) == 3
    assert not any(torch.equal(a, b) for a in built_in_train for b in built_in_held_out)


# ----------------------------------------------------------------- train.py, eval.py

TINY = ["--steps", "6", "--train-faces", "48", "--width", "8", "--size", "16", "--batch-size", "8",
        "--fid-faces", "16", "--log-every", "3", "--fid-every", "6", "--sample-every", "3", "--ckpt-every", "3",
        "--device", "cpu"]


@pytest.mark.loss_png
def test_train_smoke_and_eval(tmp_path):
    run = train.main(TINY + ["--out", str(tmp_path / "run")])
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000006.png"):
        assert (run / name).exists(), name
    header, *rows = (run / "log.csv").read_text().splitlines()
    assert {"loss_D", "loss_G", "D_real", "D_fake", "lr", "img_s", "fid"} <= set(header.split(","))
    assert [r.split(",")[0] for r in rows] == ["0", "3", "6"]
    checkpoint = read_checkpoint(run / "checkpoint.pt")
    assert checkpoint["model_args"] == dict(size=16, z_dim=100, width=8, slope=0.01)
    assert checkpoint["config"]["amp"] is True                                   # the quick preset
    metrics = evaluate.main(["--run", str(run)])
    assert metrics["fid_extractor"] == "synthetic-v1" and metrics["step"] == 6
    assert json.loads((run / "metrics.json").read_text())["fid"] == pytest.approx(metrics["fid"])
    fid_column = header.split(",").index("fid")
    assert float(rows[-1].split(",")[fid_column]) == pytest.approx(metrics["fid"], rel=1e-4)   # eval re-measures it
    assert metrics["fid_step0"] == pytest.approx(float(rows[0].split(",")[fid_column]), rel=1e-4)
    for name in ("fig4_2_4_losses.png", "fig4_2_5_samples.png"):
        assert (run / "figures" / name).exists(), name


def test_resume_continues_exactly(tmp_path):
    """Both networks, both optimisers, the fixed noise and the batch order, as if it had never stopped."""
    straight, resumed = check_resume(train.main, TINY, tmp_path, steps=6, half=3, atol=0)
    last = "samples/step_0000006.png"
    assert (straight / last).read_bytes() == (resumed / last).read_bytes()


def test_same_seed_same_samples(tmp_path):
    check_same_seed_same_run(train.main, TINY + ["--steps", "3"], tmp_path, "samples/step_0000003.png")


def test_a_mismatched_resume_leaves_the_run_as_it_was(tmp_path):
    run = train.main(TINY + ["--steps", "3", "--out", str(tmp_path / "run")])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit, match=r"--z-dim 64 \(the run has 100\)"):
        train.main(["--z-dim", "64", "--resume", "--steps", "6", "--out", str(run)])
    with pytest.raises(SystemExit, match="already at step 3"):
        train.main(["--resume", "--steps", "3", "--out", str(run)])
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before      # config.json included


@pytest.mark.parametrize("flags, message", [
    (["--label-noise", "0.6"], "--label-noise must be in [0, 0.5)"),
    (["--size", "33"], "power-of-two sizes from 16 up (16, 32, 64, …), not 33"),
    (["--data", "/nonexistent/anime"], "data folder /nonexistent/anime does not exist"),
])
def test_bad_flags_give_one_sentence(tmp_path, flags, message, capsys):
    check_one_sentence(train.main, TINY + flags + ["--out", str(tmp_path / "bad")], message, capsys)
    assert not (tmp_path / "bad").exists()


def test_eval_refuses_what_it_cannot_evaluate_and_needs_only_the_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit, match="does not exist"):
        evaluate.main(["--run", str(tmp_path / "missing")])
    assert not (tmp_path / "missing").exists()
    other = tmp_path / "other"                                    # another paper's run
    other.mkdir()
    save_checkpoint(other / "checkpoint.pt", paper="dcgan_celeba", step=1, models={}, model_args={},
                    optimizers={})
    with pytest.raises(SystemExit, match="is a dcgan_celeba run, not a style_anime run"):
        evaluate.main(["--run", str(other)])
    run = train.main(TINY + ["--steps", "1", "--out", str(tmp_path / "run")])
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:1000])
    with pytest.raises(SystemExit, match="damaged or truncated"):
        evaluate.main(["--run", str(truncated)])
    assert sorted(p.name for p in truncated.iterdir()) == ["checkpoint.pt"] and not (other / "figures").exists()
    only = tmp_path / "only"
    only.mkdir()
    (only / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes())
    capsys.readouterr()
    metrics = evaluate.main(["--run", str(only)])
    assert metrics["step"] == 1 and metrics["fid_step0"] is None
    assert "has no log.csv" in capsys.readouterr().out
    assert (only / "figures" / "fig4_2_5_samples.png").exists()
    assert not (only / "figures" / "fig4_2_4_losses.png").exists()


# ----------------------------------------------------------------- the shipped generator (style_anime/weights/dcgan)

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train.main(TINY + ["--steps", "3", "--out", str(tmp_path_factory.mktemp("style_anime") / "run")])


def test_eval_without_run_evaluates_the_shipped_generator(tiny_run, tmp_path, monkeypatch, capsys):
    metrics, out, _ = evaluate_shipped(evaluate.main, "style_anime", "dcgan", tiny_run, [], tmp_path, monkeypatch,
                                       capsys, keep=["G"])
    assert metrics["step"] == 3 and json.loads((out / "metrics.json").read_text())["fid"] == metrics["fid"]
    assert {p.name for p in (out / "figures").iterdir()} == {"fig4_2_4_losses.png", "fig4_2_5_samples.png"}
    measured = evaluate.main(["--run", str(tiny_run), "--out", str(tmp_path / "of_the_run")])
    assert metrics["fid"] == pytest.approx(measured["fid"]) and metrics["fid_step0"] == measured["fid_step0"]


def test_golden_output_is_g_on_four_fixed_noise_vectors(tiny_run, tmp_path, monkeypatch):
    shipped = ship("style_anime", "dcgan", tiny_run, tmp_path, monkeypatch, keep=["G"])
    out = evaluate.golden_output(shipped)
    assert torch.equal(out, evaluate.golden_output(shipped))                          # deterministic
    checkpoint = read_checkpoint(tiny_run / "checkpoint.pt")
    G = build(**checkpoint["model_args"])["G"]
    G.load_state_dict(checkpoint["models"]["G"])
    with torch.no_grad():
        expected = G.eval()(torch.randn(4, 100, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (4, 3, 16, 16) and torch.equal(out, expected)
