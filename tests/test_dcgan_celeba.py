"""dcgan_celeba: every loss by hand, network shapes, sketch search, prepare, train.py and eval.py."""
import json
import math

import pytest
import torch

import tools.ship
from common.checkpoints import read_checkpoint, save_checkpoint
from common.csvlog import read_log
from conftest import check_one_sentence, check_resume, check_same_seed_same_run, files, repository_at, ship_runs
from dcgan_celeba import eval as evaluate
from dcgan_celeba import prepare, train
from dcgan_celeba.model import (AutoencoderDiscriminator, DCGANDiscriminator, DCGANGenerator, Decoder, autoencoder_loss,
                                began_discriminator_loss, build, clip_weights, convergence, dcgan_discriminator_loss,
                                dcgan_generator_loss, update_k, wgan_critic_loss, wgan_generator_loss)
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
    assert _shapes(DCGANGenerator(64, z_dim=10, width=w).net, torch.randn(2, 10, 1, 1)) == [
        (8 * w, 4, 4), (4 * w, 8, 8), (2 * w, 16, 16), (w, 32, 32), (3, 64, 64)]
    assert _shapes(DCGANDiscriminator(64, width=w).net, torch.randn(2, 3, 64, 64)) == [
        (w, 32, 32), (2 * w, 16, 16), (4 * w, 8, 8), (8 * w, 4, 4), (1, 1, 1)]
    assert _shapes(DCGANGenerator(32, z_dim=10, width=w).net, torch.randn(2, 10, 1, 1)) == [
        (4 * w, 4, 4), (2 * w, 8, 8), (w, 16, 16), (3, 32, 32)]
    assert DCGANDiscriminator(32, width=w)(torch.randn(2, 3, 32, 32)).shape == (2,)
    out = DCGANGenerator(32, z_dim=10, width=w)(torch.rand(5, 10))
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
    nets = build("began", size, z_dim=10, width=8, h=16)
    G, D = nets["G"], nets["D"]
    assert isinstance(G.blocks[0][1], torch.nn.ReLU) and isinstance(D.decoder.blocks[0][1], torch.nn.ELU)


@pytest.mark.parametrize("model", ["dcgan", "began"])
@pytest.mark.parametrize("size", [48, 33, 0, 4])
def test_bad_size_is_one_sentence(model, size):
    with pytest.raises(ValueError, match=f"power of two .*not {size}$"):
        build(model, size, z_dim=8, width=8)


def test_build_gives_every_network_of_a_run():
    for model in ("dcgan", "wgan", "began"):
        nets = build(model, 32, z_dim=8, width=8, h=8)
        assert set(nets) == {"G", "D"}
        assert nets["G"](torch.rand(2, 8)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown model"):
        build("vae", 32)


def test_began_encoder_widths_follow_the_reference_layer_by_layer():
    """carpedm20/BEGAN-tensorflow: block i has n·(i+1) filters and its stride-2 conv keeps that width."""
    D = AutoencoderDiscriminator(32, n=8, h=16)
    convs = [(m.out_channels, m.stride[0]) for m in D.encoder if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(8, 1), (8, 1), (8, 1), (8, 2), (16, 1), (16, 1), (16, 2), (24, 1), (24, 1)]


@pytest.mark.parametrize("size", [32, 64])
def test_began_init_is_the_references_xavier_uniform_with_zero_biases(size):
    torch.manual_seed(0)
    nets = build("began", size, z_dim=64, width=16, h=32)
    for net in nets.values():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = math.sqrt(6 / (fan_in + fan_out))                       # Xavier-uniform's bound
                assert m.weight.abs().max() <= bound and torch.equal(m.bias, torch.zeros_like(m.bias))
                assert m.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    # what the init is for: at step 0 G's output depends on z (measured: 35× / 95× PyTorch's default at 32 / 64 px)
    z = torch.rand(64, 64) * 2 - 1
    default = Decoder(size, n=16, h=64, activation=torch.nn.ReLU, tanh=True)
    assert nets["G"](z).std(0).mean() > 10 * default(z).std(0).mean()


def test_began_step_is_one_pass_and_k_uses_its_losses():
    """Both players learn from one D pass over [x, G(z)] (z_D = z_G), and k_t is updated from
    those same losses, taken before any update (the reference's order)."""
    import copy
    torch.manual_seed(0)
    G, D = build("began", 16, z_dim=8, width=8, h=8).values()
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    torch.manual_seed(1)
    losses = train.began_step(G, D, opt_g, opt_d, x, train.noise(4, 8, "cpu"), False, torch.tensor(0.0), 0.5, 0.001)
    torch.manual_seed(1)
    fake = G0(train.noise(4, 8, "cpu"))                      # the same z, the weights before the step
    assert losses["loss_real"].item() == pytest.approx(autoencoder_loss(x, D0(x)).item(), rel=1e-5)
    assert losses["loss_fake"].item() == pytest.approx(autoencoder_loss(fake, D0(fake)).item(), rel=1e-5)
    assert losses["loss_G"] is losses["loss_fake"]
    assert not torch.equal(next(G.parameters()), next(G0.parameters()))           # both networks moved
    assert not torch.equal(next(D.parameters()), next(D0.parameters()))
    k = update_k(torch.tensor(0.0), losses["loss_real"], losses["loss_fake"], 0.5, 0.001)
    assert k.item() == pytest.approx(max(0.0, 0.001 * (0.5 * losses["loss_real"].item() - losses["loss_fake"].item())))
    assert torch.equal(losses["k"], k)                       # the step's own k_t update is that one


@pytest.mark.parametrize("preset, gamma, lambda_k, steps, decay", [("quick", 1.0, 0.05, 4000, (0.5, 1000)),
                                                                   ("long", 1.0, 0.05, 16_000, (0.5, 4000)),
                                                                   ("paper", 0.5, 0.001, 100_000, (0.9, 2000))])
def test_began_presets_paper_keeps_the_references_values(preset, gamma, lambda_k, steps, decay):
    args, _ = train.parse(["--preset", preset])
    assert (args.model, args.gamma, args.lambda_k, args.steps, (args.lr_decay, args.lr_decay_every)) == (
        "began", gamma, lambda_k, steps, decay)


def test_long_is_a_preset_of_began_only(capsys):
    with pytest.raises(SystemExit):
        train.parse(["--model", "dcgan", "--preset", "long"])
    assert "it has: quick, paper" in capsys.readouterr().err


def test_dcgan_init_is_normal_0_02():
    G = build("dcgan", 64, z_dim=100, width=64)["G"]
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


def test_each_sketch_is_fitted_as_it_would_be_among_more():
    """What lets eval without --run search 8 sketches where --run searches 16: the first 8 come out the same."""
    torch.manual_seed(0)
    G = Decoder(16, n=8, h=6, activation=torch.nn.ReLU, tanh=True)
    sketches = G(torch.rand(4, 6) * 2 - 1).detach()
    z, loss = fit_latent(G, sketches, 6, steps=5, restarts=2)
    z2, loss2 = fit_latent(G, sketches[:2], 6, steps=5, restarts=2)
    torch.testing.assert_close(z2, z[:2])
    torch.testing.assert_close(loss2, loss[:2])


# ----------------------------------------------------------------- prepare.py

@pytest.fixture
def celeba(tmp_path):
    images = tmp_path / "img_align_celeba"
    images.mkdir()
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        (images / name).write_bytes(b"jpeg")
    return images, tmp_path / "identity_CelebA.txt"


def test_prepare_arranges_one_folder_per_identity(tmp_path, celeba):
    images, ids = celeba
    ids.write_text("000001.jpg 7\n000002.jpg 9\n000003.jpg 7\n000004.jpg 9\n")
    placed, missing = prepare.main([str(images), str(ids), str(tmp_path / "out")])
    assert placed == {"7": 2, "9": 1} and missing == 1
    assert sorted(p.name for p in (tmp_path / "out" / "7").iterdir()) == ["000001.jpg", "000003.jpg"]
    assert (tmp_path / "out" / "7" / "000001.jpg").read_bytes() == b"jpeg"
    assert prepare.main([str(images), str(ids), str(tmp_path / "out")]) == (placed, missing)   # again: no error
    ids.write_text("000001.jpg\n")
    with pytest.raises(SystemExit, match="line 1"):
        prepare.main([str(images), str(ids), str(tmp_path / "out2")])


@pytest.mark.parametrize("line", ["000001.jpg ../escaped", "000001.jpg /tmp/escaped", "000001.jpg ..",
                                  "000001.jpg a/../../escaped", "../000001.jpg 7", "/etc/passwd 7"])
def test_prepare_refuses_names_that_would_write_outside_out(tmp_path, celeba, line):
    images, ids = celeba
    ids.write_text(f"000002.jpg 9\n{line}\n")
    out = tmp_path / "deep" / "out"
    with pytest.raises(SystemExit, match="line 2: .* is a path, not a plain name.*nothing was written"):
        prepare.main([str(images), str(ids), str(out)])
    assert not (tmp_path / "deep").exists() and not (tmp_path / "escaped").exists()


def test_prepare_unreadable_identities_file_is_one_sentence(tmp_path, celeba):
    images, ids = celeba
    with pytest.raises(SystemExit, match="does not exist"):
        prepare.main([str(images), str(ids), str(tmp_path / "out")])
    ids.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    with pytest.raises(SystemExit, match="cannot be read \\(it is not UTF-8 text\\)"):
        prepare.main([str(images), str(ids), str(tmp_path / "out")])
    ids.write_bytes(b"000001.jpg 7\n\x00\x01\x02\n")
    with pytest.raises(SystemExit, match="binary file"):
        prepare.main([str(images), str(ids), str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="cannot be read"):
        prepare.main([str(images), str(tmp_path), str(tmp_path / "out")])           # a folder
    assert not (tmp_path / "out").exists()


def test_prepare_out_that_is_a_file_or_inside_the_images_is_one_sentence(tmp_path, celeba, capsys):
    images, ids = celeba
    ids.write_text("000001.jpg 7\n")
    (tmp_path / "file").write_text("")
    check_one_sentence(prepare.main, [str(images), str(ids), str(tmp_path / "file")], "is a file, not a folder", capsys)
    check_one_sentence(prepare.main, [str(images), str(ids), str(images / "by_identity")], "overlap", capsys)
    assert sorted(p.name for p in images.iterdir()) == ["000001.jpg", "000002.jpg", "000003.jpg"]


# ----------------------------------------------------------------- train.py

TINY = ["--size", "16", "--width", "8", "--z-dim", "8", "--h", "8", "--batch-size", "8", "--train-faces", "32",
        "--fid-faces", "16", "--steps", "4", "--log-every", "2", "--fid-every", "4", "--sample-every", "4",
        "--ckpt-every", "2", "--n-critic", "2"]


@pytest.mark.loss_png
@pytest.mark.parametrize("model", ["dcgan", "wgan", "began"])
def test_train_smoke_resume_and_determinism(tmp_path, model):
    straight, resumed = check_resume(train.main, TINY + ["--model", model], tmp_path, steps=4, half=2)
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000004.png"):
        assert (straight / name).exists(), name
    assert read_log(straight / "log.csv")["step"] == [0, 2, 4]
    a = read_checkpoint(straight / "checkpoint.pt")
    assert a["model_args"] == dict(model=model, size=16, z_dim=8, width=8, h=8)
    assert a["config"]["model"] == model and a["config"]["amp"] is True             # quick preset
    assert (resumed / "samples/step_0000004.png").read_bytes() == (straight / "samples/step_0000004.png").read_bytes()
    check_same_seed_same_run(train.main, TINY + ["--model", model, "--steps", "2"], tmp_path / "again",
                             "samples/step_0000002.png")


def test_resume_without_model_continues_the_runs_model(tmp_path):
    # WGAN's quick preset differs from BEGAN's (the default model): the run's config must come back whole.
    run = train.main(TINY + ["--model", "wgan", "--steps", "2", "--clip", "0.02", "--out", str(tmp_path / "w")])
    train.main(["--resume", "--steps", "3", "--out", str(run)])
    checkpoint = read_checkpoint(run / "checkpoint.pt")
    assert checkpoint["step"] == 3 and checkpoint["model_args"]["model"] == "wgan"
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["clip"], config["n_critic"], config["batch_size"]) == ("wgan", 0.02, 2, 8)
    header, *rows = (run / "log.csv").read_text().splitlines()
    assert rows[-1].split(",")[0] == "3" and rows[-1].split(",")[header.split(",").index("wasserstein")] != ""


def test_a_mismatched_resume_leaves_the_run_as_it_was(tmp_path):
    run = train.main(TINY + ["--model", "wgan", "--steps", "2", "--out", str(tmp_path / "w")])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit, match=r"--model began \(the run has wgan\)"):
        train.main(["--model", "began", "--resume", "--steps", "4", "--out", str(run)])
    with pytest.raises(SystemExit, match=r"--size 32 \(the run has 16\)"):
        train.main(["--size", "32", "--resume", "--steps", "4", "--out", str(run)])
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before      # config.json included


def test_began_k_moves_and_wgan_logs_its_estimate(tmp_path):
    began = train.main(TINY + ["--model", "began", "--lambda-k", "0.5", "--out", str(tmp_path / "b")])
    assert read_checkpoint(began / "checkpoint.pt")["extra"]["k"].item() > 0
    header, *rows = (began / "log.csv").read_text().splitlines()
    assert rows[-1].split(",")[header.split(",").index("M")] != ""
    wgan = train.main(TINY + ["--model", "wgan", "--steps", "2", "--out", str(tmp_path / "w")])
    header, _, row = (wgan / "log.csv").read_text().splitlines()
    assert row.split(",")[header.split(",").index("wasserstein")] != ""


@pytest.mark.parametrize("flags, message", [
    (["--model", "dcgan", "--size", "33"], "power of two (at least 8, e.g. 32), not 33"),
    (["--model", "began", "--size", "8"], "power of two (at least 16, e.g. 64), not 8"),
    (["--model", "vae"], "invalid choice: 'vae'"),
])
def test_bad_flags_give_one_sentence(tmp_path, flags, message, capsys):
    check_one_sentence(train.main, TINY + flags + ["--out", str(tmp_path / "bad")], message, capsys)
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------- eval.py

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {m: train.main(TINY + ["--model", m, "--steps", "2", "--out", str(root / m)]) for m in ("dcgan", "wgan", "began")}


def test_eval_writes_every_figure_and_table(tmp_path, runs):
    out = tmp_path / "compare"
    metrics = evaluate.main(["--run", *map(str, runs.values()), "--out", str(out), "--faces", "24",
                             "--sketches", "2", "--sketch-steps", "2"])
    for name in ("fig5b_comparison.png", "fig4_4_losses.png", "fid_curves.png", "table1.md",
                 "table1_detection.png", "sketch_to_face.png"):
        assert (out / "figures" / name).exists(), name
    assert (out / "metrics.json").exists()
    assert [r["model"] for r in metrics["table1"]] == ["real faces (reference)", "DCGAN", "WGAN", "began"]
    assert "281" in (out / "figures" / "table1.md").read_text()                        # the paper's numbers beside ours
    assert set(metrics["sketch_to_face"]) == {"fitted", "random z", "model", "sketches"}
    assert json.loads((out / "metrics.json").read_text())["fid_features"] == "synthetic-v1"


def test_eval_of_a_folder_holding_only_checkpoint_skips_the_log_figures(tmp_path, runs, capsys):
    only = tmp_path / "only"
    only.mkdir()
    (only / "checkpoint.pt").write_bytes((runs["wgan"] / "checkpoint.pt").read_bytes())
    metrics = evaluate.main(["--run", str(only), "--faces", "8", "--sketches", "0"])
    assert [r["model"] for r in metrics["table1"]] == ["real faces (reference)", "WGAN"]
    assert "has no log.csv" in capsys.readouterr().out
    assert (only / "figures" / "fig5b_comparison.png").exists() and (only / "metrics.json").exists()
    assert not (only / "figures" / "fig4_4_losses.png").exists()


def test_eval_refuses_what_it_cannot_evaluate(tmp_path, runs, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="does not exist"):
        evaluate.main(["--run", str(tmp_path / "missing"), "--out", str(out)])
    assert not (tmp_path / "missing").exists() and not out.exists()
    other = tmp_path / "other"                                    # another paper's run
    other.mkdir()
    save_checkpoint(other / "checkpoint.pt", paper="began_refiner", step=1, models={}, model_args={},
                    optimizers={})
    with pytest.raises(SystemExit, match="is a began_refiner run, not a dcgan_celeba run"):
        evaluate.main(["--run", str(runs["dcgan"]), str(other), "--out", str(out)])
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "checkpoint.pt").write_bytes((runs["dcgan"] / "checkpoint.pt").read_bytes()[:1000])
    with pytest.raises(SystemExit, match="damaged or truncated"):
        evaluate.main(["--run", str(truncated), "--out", str(out)])
    bigger = train.main(TINY + ["--model", "dcgan", "--size", "32", "--steps", "1", "--out", str(tmp_path / "32")])
    with pytest.raises(SystemExit, match=r"different sizes \(size, z_dim\) \[\(16, 8\), \(32, 8\)\]"):
        evaluate.main(["--run", str(runs["dcgan"]), str(bigger), "--out", str(out)])
    for flags, message in ((["--faces", "0"], "must be greater than 0"), (["--faces", "1"], "at least 2"),
                           (["--sketches", "-1"], "must be 0 or more"), (["--sketch-steps", "0"], "greater than 0")):
        with pytest.raises(SystemExit):
            evaluate.main(["--run", str(runs["dcgan"]), "--out", str(out)] + flags)
        assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, runs):
    """A stand-in repository whose dcgan_celeba/weights/ holds the tiny runs' G, as the shipped networks."""
    with repository_at(tmp_path_factory.mktemp("repo")) as root:
        ship_runs("dcgan_celeba", {"dcgan": runs["dcgan"], "wgan": runs["wgan"], "began": runs["began"]})
    return root


def test_eval_without_run_evaluates_the_shipped_networks(shipped, runs, tmp_path, monkeypatch, capsys):
    weights = shipped / "dcgan_celeba" / "weights"
    before = files(weights)
    monkeypatch.chdir(tmp_path)
    with repository_at(shipped):
        metrics = evaluate.main(["--faces", "8", "--sketch-steps", "2"])
    said = capsys.readouterr().out
    assert "no --run: evaluating the networks shipped in dcgan_celeba/weights/ (dcgan, wgan, began" in said
    assert "has no log.csv" not in said                                  # log.csv is shipped: the log figures
    out = tmp_path / "runs" / "dcgan_celeba" / "shipped"
    for name in ("fig5b_comparison.png", "fig4_4_losses.png", "fid_curves.png", "table1.md", "table1_detection.png",
                 "sketch_to_face.png"):
        assert (out / "figures" / name).exists(), name
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert [r["model"] for r in metrics["table1"]] == ["real faces (reference)", "DCGAN", "WGAN", "began"]
    assert metrics["sketch_to_face"]["sketches"] == 8
    assert files(weights) == before
    with repository_at(shipped):
        metrics = evaluate.main(["--run", str(runs["began"]), "--out", str(tmp_path / "run"), "--faces", "8",
                                 "--sketch-steps", "1"])
    assert metrics["sketch_to_face"]["sketches"] == 16


def test_golden_output_is_deterministic(shipped):
    with repository_at(shipped):
        for name in ("dcgan", "wgan", "began"):
            torch.manual_seed(1)
            a = evaluate.golden_output(shipped / "dcgan_celeba" / "weights" / name)
            torch.manual_seed(2)                         # the global seed plays no part
            assert torch.equal(a, evaluate.golden_output(shipped / "dcgan_celeba" / "weights" / name))
            assert a.shape == (4, 3 * 16 * 16) and a.dtype == torch.float32
        assert tools.ship.check() == 0               # the fingerprints the manifest recorded, found again
