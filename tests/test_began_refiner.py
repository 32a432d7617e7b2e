"""began_refiner: equations 1–4 and M by hand, network shapes, refiner inputs, train.py."""
import json

import pytest
import torch

from began_refiner import train
from began_refiner.model import (Decoder, Discriminator, Refiner, autoencoder_loss, convergence,
                                 discriminator_loss, generator_loss, image_pyramid, reconstruction_loss,
                                 update_k)


# ----------------------------------------------------------------- equations, by hand

def test_eq1_autoencoder_loss_is_the_mean_absolute_error():
    v = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    d_v = torch.tensor([[0.5, -1.0], [0.0, 1.0]])
    assert autoencoder_loss(v, d_v).item() == pytest.approx((0.5 + 0 + 0.5 + 1) / 4)


def test_eq3_reconstruction_loss():
    assert reconstruction_loss(torch.zeros(2, 3), torch.full((2, 3), -0.25)).item() == pytest.approx(0.25)


def test_eq2_and_eq4_losses():
    assert discriminator_loss(torch.tensor(0.3), torch.tensor(0.5), 0.2).item() == pytest.approx(0.3 - 0.2 * 0.5)
    # L_G = (1 − λ_r)·L(G(z)) + λ_r·L_RCN: 0.75·0.4 + 0.25·0.2 = 0.35; λ_r = 0 is BEGAN's L_G = L(G(z)).
    assert generator_loss(torch.tensor(0.4), torch.tensor(0.2), 0.25).item() == pytest.approx(0.35)
    assert generator_loss(torch.tensor(0.4), torch.tensor(0.2), 0.0).item() == pytest.approx(0.4)


def test_k_update_moves_towards_equilibrium_and_is_clipped_both_ways():
    # k + λ_k(γ·L(x) − L(G(z))) = 0.5 + 0.01·(0.5·0.4 − 0.1) = 0.501
    assert update_k(torch.tensor(0.5), torch.tensor(0.4), torch.tensor(0.1), 0.5, 0.01).item() == pytest.approx(0.501)
    assert update_k(torch.tensor(0.999), torch.tensor(1.0), torch.tensor(0.0), 0.5, 0.01).item() == 1.0   # 1.004 → 1
    assert update_k(torch.tensor(0.001), torch.tensor(0.0), torch.tensor(1.0), 0.5, 0.01).item() == 0.0   # −0.009 → 0


def test_convergence_measure():
    # M = L(x) + |γ·L(x) − L(G(z))| = 0.4 + |0.2 − 0.5| = 0.7
    assert convergence(torch.tensor(0.4), torch.tensor(0.5), 0.5).item() == pytest.approx(0.7)


# ----------------------------------------------------------------- architecture

@pytest.mark.parametrize("size,lowest,blocks", [(32, 4, 4), (32, 8, 3), (64, 8, 4)])
def test_discriminator_and_decoder_shapes(size, lowest, blocks):
    D = Discriminator(size, n=8, h=16, lowest=lowest)
    x = torch.randn(2, 3, size, size)
    assert D.encoder(x).shape == (2, 8 * blocks, lowest, lowest)     # widths n, 2n, …, blocks·n
    assert D(x).shape == x.shape
    assert Decoder(size, n=8, h=16, lowest=lowest)(torch.randn(2, 16)).shape == x.shape
    assert Discriminator(size, n=8, h=16, lowest=lowest, downsample="nearest")(x).shape == x.shape


def test_refiner_shapes_and_input_counts():
    x = torch.randn(2, 3, 64, 64)
    for inputs in (1, 2, 3):
        pyramid = image_pyramid(x, inputs)
        assert [p.shape[-1] for p in pyramid] == [8, 16, 32][:inputs]
        assert Refiner(64, n=8, inputs=inputs)(pyramid).shape == x.shape
    with pytest.raises(ValueError, match="input resolutions"):
        Refiner(64, n=8, inputs=4)          # 64×64 would be the answer itself
    assert Refiner(32, n=8, inputs=3, lowest=4)(image_pyramid(x[..., :32, :32], 3, lowest=4)).shape == (2, 3, 32, 32)


def test_each_refiner_uses_exactly_its_injected_inputs():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    changed_16 = image_pyramid(x, 3)
    changed_16[1] = changed_16[1] + 1.0
    outputs = {}
    for name, inputs in (("A", 1), ("B", 2), ("C", 3)):
        G = Refiner(64, n=8, inputs=inputs)
        outputs[name] = (G(image_pyramid(x, 3)[:inputs]) - G(changed_16[:inputs])).abs().max().item()
    assert outputs["A"] == 0.0                 # A never sees the 16×16 input
    assert outputs["B"] > 1e-4 and outputs["C"] > 1e-4


# ----------------------------------------------------------------- train.py

TINY = ["--steps", "6", "--train-faces", "40", "--n", "8", "--h", "8", "--batch-size", "8", "--fid-faces", "16",
        "--log-every", "3", "--fid-every", "6", "--sample-every", "6", "--ckpt-every", "3"]


def test_train_smoke_writes_the_run_folder(tmp_path):
    run = train.main(TINY + ["--out", str(tmp_path / "run")])
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000006.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["generator"] == "B"
    header, *rows = (run / "log.csv").read_text().splitlines()
    assert {"loss_real", "loss_fake", "loss_rcn", "k", "M", "lr", "img_s", "fid"} <= set(header.split(","))
    assert [r.split(",")[0] for r in rows] == ["0", "3", "6"]


def test_baseline_generator_trains_too(tmp_path):
    run = train.main(TINY + ["--generator", "began", "--steps", "3", "--out", str(tmp_path / "run")])
    assert (run / "checkpoint.pt").exists()


def test_resume_continues_exactly(tmp_path):
    straight = train.main(TINY + ["--out", str(tmp_path / "straight")])
    half = train.main(TINY + ["--steps", "3", "--out", str(tmp_path / "resumed")])
    train.main(TINY + ["--resume", "--out", str(half)])
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(half / "checkpoint.pt", weights_only=False)
    assert b["step"] == 6
    for name, tensor in a["models"]["G"].items():
        assert torch.allclose(tensor, b["models"]["G"][name], atol=1e-6), name
    assert torch.allclose(a["extra"]["k"], b["extra"]["k"])


def test_same_seed_same_samples(tmp_path):
    one = train.main(TINY + ["--steps", "3", "--out", str(tmp_path / "one")])
    two = train.main(TINY + ["--steps", "3", "--out", str(tmp_path / "two")])
    a = torch.load(one / "checkpoint.pt", weights_only=False)["models"]["G"]
    b = torch.load(two / "checkpoint.pt", weights_only=False)["models"]["G"]
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert (one / "samples" / "step_0000003.png").read_bytes() == (two / "samples" / "step_0000003.png").read_bytes()
