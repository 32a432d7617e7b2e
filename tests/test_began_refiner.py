"""began_refiner: equations 1–4 and M by hand, network shapes, refiner inputs, train.py."""
import json

import pytest
import torch

import tools.ship
from began_refiner import eval as evaluate
from began_refiner import train
from began_refiner.model import (Decoder, Discriminator, Refiner, autoencoder_loss, convergence, discriminator_loss,
                                 generator_loss, image_pyramid, reconstruction_loss, update_k)
from common.checkpoints import read_checkpoint
from conftest import (assert_same_checkpoint, check_one_sentence, check_resume, check_same_seed_same_run, files,
                      repository_at, ship_runs)

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
    with pytest.raises(ValueError, match="downscaled input"):
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

TINY = ["--steps", "6", "--train-faces", "40", "--width", "8", "--z-dim", "8", "--batch-size", "8", "--fid-faces", "16",
        "--log-every", "3", "--fid-every", "6", "--sample-every", "6", "--ckpt-every", "3"]


@pytest.mark.loss_png
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


@pytest.mark.parametrize("generator", ["B", "began"])
def test_resume_continues_exactly(tmp_path, generator):
    """Every network, optimiser, scheduler, k_t and the batch order, as if it had never stopped. Without
    the ramp: a ramp follows --steps, so 3 steps then --resume --steps 6 is another schedule than 6."""
    check_resume(train.main, TINY + ["--generator", generator, "--lr-ramp", "0"], tmp_path, steps=6, half=3)


def test_a_ramped_run_stopped_by_ctrl_c_resumes_on_its_schedule(tmp_path, monkeypatch):
    """The quick preset's ramp to 0: stopped at step 3 of 6 and resumed, the same run as 6 straight."""
    from common import loop
    straight = train.main(TINY + ["--lr-ramp", "0.5", "--out", str(tmp_path / "straight")])
    log = loop.Run.log

    def ctrl_c_after_step_3(run, step, **values):
        log(run, step, **values)
        run._stop.requested = step == 3
    monkeypatch.setattr(loop.Run, "log", ctrl_c_after_step_3)
    with pytest.raises(SystemExit):
        train.main(TINY + ["--lr-ramp", "0.5", "--out", str(tmp_path / "stopped")])
    monkeypatch.setattr(loop.Run, "log", log)
    resumed = train.main(["--resume", "--out", str(tmp_path / "stopped")])
    assert_same_checkpoint(straight, resumed, 1e-6)


def test_same_seed_same_samples(tmp_path):
    check_same_seed_same_run(train.main, TINY + ["--steps", "3"], tmp_path, "samples/step_0000003.png")


# ----------------------------------------------------------------- the BEGAN reference where it decides

def test_init_is_the_references_xavier_uniform_with_zero_biases():
    import math

    from began_refiner.model import build
    for generator in ("B", "began"):
        torch.manual_seed(0)
        nets = build(generator, 32, n=16, h=32, lowest=4)
        for net in nets.values():
            for m in net.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
                    assert m.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out))
                    assert torch.equal(m.bias, torch.zeros_like(m.bias))
    z = torch.rand(64, 32) * 2 - 1                          # the noise baseline depends on z at step 0 (measured:
    assert nets["G"](z).std(0).mean() > 10 * Decoder(32, 16, 32, lowest=4)(z).std(0).mean()   # 93× the default)


def test_encoder_downsamples_with_a_stride_2_conv_and_elu_keeping_the_width():
    encoder = list(Discriminator(32, n=8, h=8, lowest=4).encoder)
    strided = [i for i, m in enumerate(encoder) if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 3
    for i in strided:
        assert encoder[i].in_channels == encoder[i].out_channels and isinstance(encoder[i + 1], torch.nn.ELU)


def test_learning_rate_factor_halves_then_ramps_to_zero_by_hand():
    # 3,000 steps, halved every 1,000, the last 0.4 (1,200 steps, from step 1,800) ramping to 0:
    #   step 0 → 1;  999 → 1;  1,000 → 0.5;  1,800 → 0.5 · 1 = 0.5;  2,400 → 0.25 · 600/1200 = 0.125;
    #   2,700 → 0.25 · 300/1200 = 0.0625;  3,000 → 0.
    factor = [train.learning_rate_factor(t, 3000, 1000, 0.4) for t in (0, 999, 1000, 1800, 2400, 2700, 3000)]
    assert factor == pytest.approx([1, 1, 0.5, 0.5, 0.125, 0.0625, 0])
    assert train.learning_rate_factor(2999, 3000, 1000, 0.0) == 0.25                 # no ramp: halving only


def test_the_schedule_is_the_rate_the_optimisers_use(tmp_path):
    run = train.main(TINY + ["--steps", "4", "--log-every", "1", "--lr", "0.01", "--lr-half-every", "2",
                             "--lr-ramp", "0.5", "--out", str(tmp_path / "lr")])
    rates = [float(r.split(",")[-3]) for r in (run / "log.csv").read_text().splitlines()[1:] if r[0] != "0"]
    # log.csv's lr at step t is the next step's rate, lr · factor(t): 0.01 · (1, 0.5 · 1, 0.5 · 1/2, 0.25 · 0)
    assert rates == pytest.approx([0.01, 0.005, 0.0025, 0.0])


def test_k_is_updated_from_the_losses_of_the_same_pass(tmp_path):
    """Step 1 from k_0 = 0: k_1 = clip(λ_k·(γ·L(x) − L(G(z)))) with the L(x), L(G(z)) logged for that step."""
    run = train.main(TINY + ["--steps", "1", "--log-every", "1", "--generator", "began", "--lambda-k", "0.1",
                             "--gamma", "1.0", "--out", str(tmp_path / "k")])
    row = [r for r in (run / "log.csv").read_text().splitlines()[1:] if r.startswith("1,")][0].split(",")
    header = (run / "log.csv").read_text().splitlines()[0].split(",")
    value = dict(zip(header, row))
    expected = max(0.0, 0.1 * (1.0 * float(value["loss_real"]) - float(value["loss_fake"])))
    assert float(value["k"]) == pytest.approx(expected, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("argv, generator, gamma, lambda_k, lr, half, ramp, amp",
                         [([], "B", 1.0, 0.05, 5e-4, 1000, 0.33, True),           # settled end: lower rate, ramp to 0
                          (["--generator", "A"], "A", 1.0, 0.05, 5e-4, 1000, 0.33, True),
                          (["--generator", "began"], "began", 1.0, 0.05, 2.5e-4, 1000, 0.33, False),  # noise: fp32
                          (["--preset", "long"], "began", 1.0, 0.05, 1e-4, 4000, 0.0, True),
                          (["--preset", "paper"], "B", 0.5, 0.001, 1e-3, 100_000, 0.0, False)])  # the paper's: no ramp
def test_presets_paper_keeps_the_references_values(argv, generator, gamma, lambda_k, lr, half, ramp, amp):
    args, _ = train.parse(argv)
    assert (args.generator, args.gamma, args.lambda_k, args.lr, args.lr_half_every, args.lr_ramp, args.amp) == (
        generator, gamma, lambda_k, lr, half, ramp, amp)


# ----------------------------------------------------------------- a run you can trust

def test_a_nan_stops_the_run_and_the_last_checkpoint_stays_finite(tmp_path, monkeypatch):
    calls = []

    def reconstruction_loss_that_breaks_at_step_7(v, refined):
        calls.append(1)
        return reconstruction_loss(v, refined) * (float("nan") if len(calls) >= 7 else 1.0)

    monkeypatch.setattr(train, "reconstruction_loss", reconstruction_loss_that_breaks_at_step_7)
    with pytest.raises(SystemExit, match=r"loss_rcn became non-finite at step 7; the last good checkpoint \(step 5\)"):
        train.main(TINY + ["--steps", "12", "--ckpt-every", "5", "--log-every", "12", "--out", str(tmp_path / "nan")])
    ckpt = read_checkpoint(tmp_path / "nan" / "checkpoint.pt")
    assert ckpt["step"] == 5
    for net in ckpt["models"].values():
        assert all(torch.isfinite(t).all() for t in net.values())


def test_lr_10_leaves_no_checkpoint_with_a_non_finite_value(tmp_path):
    """The issue's command: it diverges within a few steps; whatever checkpoint.pt it leaves is finite."""
    with pytest.raises(SystemExit, match="became non-finite"):
        train.main(TINY + ["--steps", "200", "--lr", "10", "--ckpt-every", "5", "--out", str(tmp_path / "nan")])
    if (tmp_path / "nan" / "checkpoint.pt").exists():
        for net in read_checkpoint(tmp_path / "nan" / "checkpoint.pt")["models"].values():
            assert all(torch.isfinite(t).all() for t in net.values())


def test_a_mismatched_resume_leaves_the_run_as_it_was(tmp_path):
    run = train.main(TINY + ["--steps", "3", "--out", str(tmp_path / "B")])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit, match=r"--generator A \(the run has B\)"):
        train.main(TINY + ["--generator", "A", "--resume", "--out", str(run)])
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    evaluate.main(["--run", str(run), "--faces", "16"])                 # still a run that evaluates


@pytest.mark.parametrize("flags, message", [
    (["--size", "33"], "times a power of two"),
    (["--generator", "C", "--size", "16", "--lowest", "4"], "has room for 2 downscaled input(s) below its output, and "
                                                            "this one reads 3: give a larger --size (--size 32 or more)"),
    (["--size", "8"], "give a larger --size (--size 16 or more), a smaller --lowest, or a refiner that reads fewer "
                      "inputs (--generator A reads one)"),
])
def test_bad_flags_give_one_sentence(tmp_path, flags, message, capsys):
    check_one_sentence(train.main, TINY + flags + ["--out", str(tmp_path / "bad")], message, capsys)
    assert not (tmp_path / "bad").exists()


def test_eval_refuses_what_it_cannot_evaluate(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        evaluate.main(["--run", str(tmp_path / "missing")])
    assert not (tmp_path / "missing").exists()
    small = train.main(TINY + ["--steps", "1", "--size", "16", "--lowest", "4", "--out", str(tmp_path / "16")])
    big = train.main(TINY + ["--steps", "1", "--out", str(tmp_path / "32")])
    with pytest.raises(SystemExit, match="different sizes"):
        evaluate.main(["--run", str(big), str(small)])
    only_checkpoint = tmp_path / "only"
    only_checkpoint.mkdir()
    (only_checkpoint / "checkpoint.pt").write_bytes((small / "checkpoint.pt").read_bytes())
    metrics = evaluate.main(["--run", str(only_checkpoint), "--faces", "16"])
    assert {"fid_synthetic-v1", "diversity", "sharpness", "identity_similarity"} <= set(metrics["B"])


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A stand-in repository whose began_refiner/weights/ holds tiny A, B, C and BEGAN runs' G, as shipped."""
    runs = tmp_path_factory.mktemp("runs")
    with repository_at(tmp_path_factory.mktemp("repo")) as root:
        ship_runs("began_refiner", {g: train.main(TINY + ["--generator", g, "--steps", "1", "--out", str(runs / g)])
                               for g in evaluate.SHIPPED})
    return root


def test_eval_without_run_evaluates_the_shipped_networks(shipped, tmp_path, monkeypatch, capsys):
    weights = shipped / "began_refiner" / "weights"
    before = files(weights)
    monkeypatch.chdir(tmp_path)
    with repository_at(shipped):
        metrics = evaluate.main(["--faces", "8"])
    said = capsys.readouterr().out
    assert "no --run: evaluating the networks shipped in began_refiner/weights/ (A, B, C, began" in said
    assert "has no log.csv" not in said                                  # log.csv is shipped: convergence.png
    out = tmp_path / "runs" / "began_refiner" / "shipped"
    for name in ("fig3_refinements.png", "fig4_realism.png", "fig5_similarity.png", "convergence.png"):
        assert (out / "figures" / name).exists(), name
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert list(metrics) == ["synthetic input", "A", "B", "C", "BEGAN (noise)"]
    assert files(weights) == before


def test_golden_output_is_deterministic(shipped):
    with repository_at(shipped):
        for name in evaluate.SHIPPED:
            torch.manual_seed(1)
            a = evaluate.golden_output(shipped / "began_refiner" / "weights" / name)
            torch.manual_seed(2)                         # the global seed plays no part
            assert torch.equal(a, evaluate.golden_output(shipped / "began_refiner" / "weights" / name))
            assert a.shape == (4, 3, 32, 32) and a.dtype == torch.float32
        assert tools.ship.check() == 0               # the fingerprints the manifest recorded, found again
