"""dcgan_celeba: every loss by hand, network shapes, sketch search, prepare, train.py and eval.py."""
import json
import math

import pytest
import torch

from dcgan_celeba import eval as evaluate
from dcgan_celeba import prepare, train
from dcgan_celeba.model import (AutoencoderDiscriminator, DCGANDiscriminator, DCGANGenerator, Decoder,
                                autoencoder_loss, began_discriminator_loss, build, clip_weights, convergence,
                                dcgan_discriminator_loss, dcgan_generator_loss, update_k, wgan_critic_loss,
                                wgan_generator_loss)
from dcgan_celeba.sketch import edges, fit_latent, ink, sketch_loss


# ----------------------------------------------------------------- losses, by hand

def test_dcgan_losses():
    # D(x) = σ(0) = 1/2 and D(G(z)) = σ(ln 3) = 3/4: L_D = −log(1/2) − log(1 − 3/4) = ln 2 + ln 4 = ln 8
    real, fake = torch.zeros(4), torch.full((4,), math.log(3))
    assert dcgan_discriminator_loss(real, fake).item() == pytest.approx(math.log(8))
    # non-saturating: L_G = −log D(G(z)) = −log(3/4)
    assert dcgan_generator_loss(fake).item() == pytest.approx(-math.log(0.75))


def test_wgan_losses_and_clipping():
    # mean f(G(z)) − mean f(x) = 0 − 2
    assert wgan_critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])).item() == pytest.approx(-2.0)
    assert wgan_generator_loss(torch.tensor([1.0, 2.0])).item() == pytest.approx(-1.5)
    critic = torch.nn.Linear(3, 1, bias=False)
    critic.weight.data = torch.tensor([[-0.5, 0.005, 0.3]])
    clip_weights(critic, 0.01)
    assert critic.weight.data[0].tolist() == pytest.approx([-0.01, 0.005, 0.01])


def test_began_losses_k_and_convergence():
    v = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    assert autoencoder_loss(v, torch.tensor([[0.5, -1.0], [0.0, 1.0]])).item() == pytest.approx(2 / 4)
    assert began_discriminator_loss(torch.tensor(0.3), torch.tensor(0.5), 0.2).item() == pytest.approx(0.2)
    # k + λ_k(γ·L(x) − L(G(z))) = 0.5 + 0.01·(0.5·0.4 − 0.1) = 0.501, and clipping to [0, 1] both ways
    assert update_k(torch.tensor(0.5), torch.tensor(0.4), torch.tensor(0.1), 0.5, 0.01).item() == pytest.approx(0.501)
    assert update_k(torch.tensor(0.999), torch.tensor(1.0), torch.tensor(0.0), 0.5, 0.01).item() == 1.0
    assert update_k(torch.tensor(0.001), torch.tensor(0.0), torch.tensor(1.0), 0.5, 0.01).item() == 0.0
    # M = L(x) + |γ·L(x) − L(G(z))| = 0.4 + |0.2 − 0.5| = 0.7
    assert convergence(0.4, 0.5, 0.5) == pytest.approx(0.7)


# ----------------------------------------------------------------- architecture

def _shapes(layers, x):
    shapes = []
    for layer in layers:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            shapes.append(tuple(x.shape[1:]))
    return shapes


def test_dcgan_shapes_layer_by_layer_at_64_and_32():
    w = 8
    assert _shapes(DCGANGenerator(64, nz=10, width=w).net, torch.randn(2, 10, 1, 1)) == [
        (8 * w, 4, 4), (4 * w, 8, 8), (2 * w, 16, 16), (w, 32, 32), (3, 64, 64)]
    assert _shapes(DCGANDiscriminator(64, width=w).net, torch.randn(2, 3, 64, 64)) == [
        (w, 32, 32), (2 * w, 16, 16), (4 * w, 8, 8), (8 * w, 4, 4), (1, 1, 1)]
    assert _shapes(DCGANGenerator(32, nz=10, width=w).net, torch.randn(2, 10, 1, 1)) == [
        (4 * w, 4, 4), (2 * w, 8, 8), (w, 16, 16), (3, 32, 32)]
    assert DCGANDiscriminator(32, width=w)(torch.randn(2, 3, 32, 32)).shape == (2,)
    out = DCGANGenerator(32, nz=10, width=w)(torch.rand(5, 10))
    assert out.shape == (5, 3, 32, 32) and out.abs().max() <= 1


@pytest.mark.parametrize("size,levels", [(32, 3), (64, 4)])
def test_began_style_shapes(size, levels):
    D = AutoencoderDiscriminator(size, n=8, h=16)
    x = torch.randn(2, 3, size, size)
    assert D.encoder(x).shape == (2, 8 * levels, 8, 8)        # widths n, 2n, …, linearly expanded (§3.1)
    assert D(x).shape == x.shape
    G = Decoder(size, n=8, h=10, activation=torch.nn.ReLU, tanh=True)
    out = G(torch.rand(2, 10))
    assert out.shape == x.shape and out.abs().max() <= 1                    # tanh output (§3.1)
    G, D = build("began", size, nz=10, width=8, h=16)
    assert isinstance(G.blocks[0][1], torch.nn.ReLU) and isinstance(D.decoder.blocks[0][1], torch.nn.ELU)


def test_bad_size_is_one_sentence():
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(48)


def test_dcgan_init_is_normal_0_02():
    G, _ = build("dcgan", 64, nz=100, width=64)
    weight = G.net[0].weight
    assert abs(weight.mean().item()) < 2e-3 and weight.std().item() == pytest.approx(0.02, rel=0.05)


# ----------------------------------------------------------------- sketch → face

def test_edges_and_ink():
    flat = torch.zeros(1, 3, 8, 8)
    assert edges(flat).max() < 1e-4                             # no edges (the sqrt epsilon: 2e-5)
    step = torch.full((1, 3, 8, 8), -1.0)
    step[..., 4:] = 1.0                                        # black | white, a vertical edge
    e = edges(step)[0, 0]
    assert e[:, 3:5].min() == pytest.approx(1.0) and e[:, :2].max() < 1e-4
    assert ink(torch.full((1, 3, 2, 2), 1.0)).max() == 0 and ink(torch.full((1, 3, 2, 2), -1.0)).min() == 1


def test_latent_search_lowers_the_sketch_loss():
    torch.manual_seed(0)
    G = Decoder(16, n=8, h=6, activation=torch.nn.ReLU, tanh=True)
    sketches = G(torch.rand(2, 6) * 2 - 1).detach()            # reachable targets
    z0, loss0 = fit_latent(G, sketches, 6, steps=0, restarts=2)
    z, loss = fit_latent(G, sketches, 6, steps=40, restarts=2)
    assert (loss < loss0).all() and z.abs().max() <= 1
    assert torch.allclose(sketch_loss(G(z), sketches), loss, atol=1e-6)


# ----------------------------------------------------------------- prepare.py

def test_prepare_arranges_one_folder_per_identity(tmp_path):
    images = tmp_path / "img_align_celeba"
    images.mkdir()
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        (images / name).write_bytes(b"jpeg")
    ids = tmp_path / "identity_CelebA.txt"
    ids.write_text("000001.jpg 7\n000002.jpg 9\n000003.jpg 7\n000004.jpg 9\n")
    placed, missing = prepare.main([str(images), str(ids), str(tmp_path / "out")])
    assert placed == {"7": 2, "9": 1} and missing == 1
    assert sorted(p.name for p in (tmp_path / "out" / "7").iterdir()) == ["000001.jpg", "000003.jpg"]
    ids.write_text("000001.jpg\n")
    with pytest.raises(SystemExit, match="line 1"):
        prepare.main([str(images), str(ids), str(tmp_path / "out2")])


# ----------------------------------------------------------------- train.py and eval.py

TINY = ["--size", "16", "--width", "8", "--nz", "8", "--h", "8", "--batch-size", "8", "--train-faces", "32",
        "--fid-faces", "16", "--steps", "4", "--log-every", "2", "--fid-every", "4", "--sample-every", "4",
        "--ckpt-every", "2", "--n-critic", "2"]


@pytest.mark.parametrize("model", ["dcgan", "wgan", "began"])
def test_train_smoke_resume_and_determinism(tmp_path, model):
    args = TINY + ["--model", model]
    straight = train.main(args + ["--out", str(tmp_path / "straight")])
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000004.png"):
        assert (straight / name).exists(), name
    header, *rows = (straight / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["0", "2", "4"]
    # resume: 2 steps, then on to 4, equals 4 straight (weights and samples)
    half = train.main(args + ["--steps", "2", "--out", str(tmp_path / "resumed")])
    train.main(args + ["--resume", "--out", str(half)])
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(half / "checkpoint.pt", weights_only=False)
    assert b["step"] == 4
    for name, tensor in a["models"]["G"].items():
        assert torch.allclose(tensor.float(), b["models"]["G"][name].float(), atol=1e-6), name
    assert torch.equal(a["extra"]["k"], b["extra"]["k"])
    # determinism: the same seed gives the same sample PNG, byte for byte
    again = train.main(args + ["--out", str(tmp_path / "again")])
    assert (again / "samples/step_0000004.png").read_bytes() == (straight / "samples/step_0000004.png").read_bytes()


def test_began_k_moves_and_wgan_logs_its_estimate(tmp_path):
    began = train.main(TINY + ["--model", "began", "--lambda-k", "0.5", "--out", str(tmp_path / "b")])
    assert torch.load(began / "checkpoint.pt", weights_only=False)["extra"]["k"].item() > 0
    wgan = train.main(TINY + ["--model", "wgan", "--steps", "2", "--out", str(tmp_path / "w")])
    header, _, row = (wgan / "log.csv").read_text().splitlines()
    assert row.split(",")[header.split(",").index("wasserstein")] != ""


def test_eval_writes_every_figure_and_table(tmp_path):
    runs = [train.main(TINY + ["--model", m, "--steps", "2", "--out", str(tmp_path / m)])
            for m in ("dcgan", "wgan", "began")]
    out = tmp_path / "compare"
    metrics = evaluate.main(["--run", *map(str, runs), "--out", str(out), "--faces", "24", "--sketches", "2",
                             "--sketch-steps", "2"])
    for name in ("fig5b_comparison.png", "fig4_4_losses.png", "fid_curves.png", "table1.md",
                 "table1_detection.png", "sketch_to_face.png", "metrics.json"):
        assert (out / name).exists(), name
    assert [r["model"] for r in metrics["table1"]] == ["real faces (reference)", "DCGAN", "WGAN", "ours"]
    assert "281" in (out / "table1.md").read_text()                        # the paper's numbers beside ours
    assert set(metrics["sketch_to_face"]) == {"fitted", "random z", "model"}
    assert json.loads((out / "metrics.json").read_text())["fid_features"] == "synthetic-v1"
