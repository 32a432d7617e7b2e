"""style_anime style transfer: eqs. 2–5 by hand and line by line, the loss networks, the measures, stylize.py."""
import json
import socket
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.models._api
from PIL import Image
from torchvision.models.vgg import cfgs, make_layers

from common.features import WeightsUnavailable
from style_anime import loss_networks, measures, stylize
from style_anime.loss_networks import VGG19Features, random_vgg19

# ----------------------------------------------------------------- equations, by hand

# Two feature maps (N_l = 2) of 1×2 positions (M_l = 2): rows are the vectorised maps F_1 = (1, 2), F_2 = (3, 0).
F_X = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]])


def test_gram_matrix_is_inner_products_of_vectorised_maps():
    # G_11 = 1·1 + 2·2 = 5, G_12 = G_21 = 1·3 + 2·0 = 3, G_22 = 9
    torch.testing.assert_close(stylize.gram_matrix(F_X), torch.tensor([[5.0, 3.0], [3.0, 9.0]]))
    torch.testing.assert_close(stylize.gram_matrix(F_X[None]), stylize.gram_matrix(F_X))   # batch of one


def test_eq2_content_loss_is_the_summed_squared_difference():
    p = torch.tensor([[[0.0, 2.0]], [[1.0, 1.0]]])
    # (1 − 0)² + 0² + (3 − 1)² + (0 − 1)² = 6
    assert stylize.content_loss(F_X, p).item() == pytest.approx(6.0)


def test_eq3_layer_style_loss_normalisation():
    a = torch.tensor([[4.0, 3.0], [3.0, 7.0]])
    # Σ (G − A)² = (5 − 4)² + 0 + 0 + (9 − 7)² = 5; 1/(4·N²·M²) = 1/(4·4·4) = 1/64
    assert stylize.layer_style_loss(F_X, a).item() == pytest.approx(5 / 64)


def test_eq4_and_eq5_style_loss_weights_layers_equally():
    targets = {"conv1_1": torch.tensor([[4.0, 3.0], [3.0, 7.0]]),          # E = 5/64, as above
               "conv2_1": torch.tensor([[5.0, 3.0], [3.0, 9.0]])}          # E = 0: the same Gram matrix
    features = {"conv1_1": F_X, "conv2_1": F_X}
    # w_l = 1/|L| = 1/2: L_style = (5/64 + 0) / 2
    assert stylize.style_loss(features, targets).item() == pytest.approx(5 / 128)
    assert stylize.total_loss(torch.tensor(6.0), torch.tensor(0.5), 2.0, 10.0).item() == pytest.approx(17.0)


# ----------------------------------------------------------------- the ImageNet path, pinned to eqs. 2–5

# torchvision's VGG-19 (make_layers(cfgs["E"]), the module its ImageNet weights load into): the ReLU after
# each of our layers, by torchvision index.
TORCHVISION_RELU = {"conv1_1": 1, "conv2_1": 6, "conv3_1": 11, "conv4_1": 20, "conv4_2": 22, "conv5_1": 29}


def random_torchvision_state():
    """A state dict with the names and shapes of torchvision's ImageNet VGG-19 file, random values."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 25088)                   # the file has a classifier; unused
    return state


def torchvision_features(state, x, layer):
    """The ReLU output at ``layer`` of torchvision's own VGG-19 features, for x in [0, 1]."""
    features = make_layers(cfgs["E"])
    features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)          # torchvision's ImageNet normalisation
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return features[:TORCHVISION_RELU[layer] + 1]((x - mean) / std)[0].double()   # N_l × H × W


@pytest.fixture
def fake_imagenet_download(monkeypatch):
    """torchvision's weight loader returns random weights of the right names and shapes: the imagenet
    code path runs end to end, offline."""
    state = random_torchvision_state()
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda url, *a, **k: state)
    return state


def test_eqs_2_to_5_equal_a_line_by_line_computation_on_vgg19_features(fake_imagenet_download):
    net = loss_networks.imagenet_vgg19()
    torch.manual_seed(1)
    content, style, x = torch.rand(3, 1, 3, 32, 32)
    alpha, beta = 0.7, 30.0
    p, a = stylize.targets(net, content, style)
    ours = stylize.losses(net, x, p, a, alpha, beta)

    # The same weights in torchvision's own VGG-19; the equations written out element by element.
    F = {l: torchvision_features(fake_imagenet_download, x, l).flatten(1).numpy()                   # N_l × M_l
         for l in TORCHVISION_RELU}
    P = torchvision_features(fake_imagenet_download, content, "conv4_2").flatten(1).numpy()
    S = {l: torchvision_features(fake_imagenet_download, style, l).flatten(1).numpy()
         for l in loss_networks.STYLE_LAYERS}
    l_content = 0.0                                             # eq. 2 at conv4_2, no ½
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            l_content += (F["conv4_2"][i, j] - P[i, j]) ** 2
    E, ours_features = {}, net(x, loss_networks.STYLE_LAYERS)
    for l in loss_networks.STYLE_LAYERS:                         # eq. 3
        n, m = F[l].shape
        G, A = np.zeros((n, n)), np.zeros((n, n))
        for k in range(m):                                       # G^l_ij = Σ_k F^l_ik·F^l_jk, position by position
            G += np.outer(F[l][:, k], F[l][:, k])
            A += np.outer(S[l][:, k], S[l][:, k])                # A^l: the same for the style image
        np.testing.assert_allclose(stylize.gram_matrix(ours_features[l]).double().numpy(), G, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(a[l].double().numpy(), A, rtol=1e-4, atol=1e-6)
        total = 0.0
        for i in range(n):
            for j in range(n):
                total += (G[i, j] - A[i, j]) ** 2
        E[l] = total / (4 * n ** 2 * m ** 2)
    l_style = sum(E[l] / len(E) for l in E)                      # eqs. 4–5: w_l = 1/|L|

    assert ours["content"].item() == pytest.approx(alpha * l_content, rel=1e-4)
    for l in loss_networks.STYLE_LAYERS:
        assert ours[l].item() == pytest.approx(E[l], rel=1e-4), l
    assert ours["style"].item() == pytest.approx(beta * l_style, rel=1e-4)
    assert ours["total"].item() == pytest.approx(alpha * l_content + beta * l_style, rel=1e-4)
    assert l_content > 0 and all(e > 0 for e in E.values())      # nothing trivially zero


def test_vgg19_layers_match_torchvision_indices():
    net = VGG19Features()
    assert net.index["conv1_1"] == 1 and net.index["conv4_2"] == 22 and net.index["conv5_1"] == 29
    assert net.content_layer == "conv4_2" and net.style_layers == loss_networks.STYLE_LAYERS
    out = net(torch.rand(1, 3, 32, 32), ("conv1_1", "conv4_2", "conv5_1"))
    assert out["conv1_1"].shape == (1, 64, 32, 32) and out["conv4_2"].shape == (1, 512, 4, 4)
    assert out["conv5_1"].shape == (1, 512, 2, 2) and (out["conv1_1"] >= 0).all()    # rectified responses


def test_imagenet_path_runs_end_to_end_with_its_own_weights_and_beta(fake_imagenet_download, tmp_path):
    net = loss_networks.imagenet_vgg19()
    torch.testing.assert_close(net.layers[28].weight, fake_imagenet_download["features.28.weight"])  # conv5_1
    for weights in ("imagenet", "auto"):                          # auto takes ImageNet where it can be had
        [record] = stylize.main(["builtin:hopper", "builtin:ihc", "-o", str(tmp_path / f"{weights}.png"),
                                 "--size", "32", "--steps", "3", "--weights", weights, "--device", "cpu"])
        assert record["weights"] == "imagenet" and record["beta"] == 1e3 and len(record["history"]) >= 2
        assert (tmp_path / f"{weights}_figure.png").stat().st_size > 0


# ----------------------------------------------------------------- offline

@pytest.fixture
def no_network(monkeypatch):
    """Any weight download fails at once, and no socket can connect."""
    def fail(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent/torch-hub")     # an empty cache
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fail)
    monkeypatch.setattr(socket.socket, "connect", fail)


def test_offline_imagenet_gives_one_sentence_naming_file_folder_and_alternative(no_network, tmp_path):
    with pytest.raises(WeightsUnavailable) as err:
        loss_networks.imagenet_vgg19()
    message = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in message and "/nonexistent/torch-hub/checkpoints" in message
    assert "--weights random" in message
    with pytest.raises(SystemExit) as exit_:                 # the command line ends with that sentence
        stylize.main(["builtin:hopper", "builtin:anime", "-o", str(tmp_path / "out.png"), "--size", "32",
                      "--steps", "1", "--device", "cpu", "--weights", "imagenet"])
    assert str(exit_.value) == message
    assert not (tmp_path / "out.png").exists()


def test_offline_auto_uses_the_random_network_and_says_so_in_one_line(no_network, tmp_path, capsys):
    [record] = stylize.main(["builtin:hopper", "builtin:ihc", "-o", str(tmp_path / "out.png"), "--size", "32",
                             "--steps", "2", "--device", "cpu"])
    assert record["weights"] == "random" and record["beta"] == 1e8
    said = [line for line in capsys.readouterr().out.splitlines() if "vgg19-dcbb9e9d.pth" in line]
    assert len(said) == 1 and said[0].endswith("Using --weights random for this run.")


def test_random_vgg19_is_seeded_and_each_layer_of_unit_size():
    torch.manual_seed(0)
    calibration = torch.rand(2, 3, 32, 32)
    net = random_vgg19(calibration, seed=0)
    same, other = random_vgg19(calibration, seed=0), random_vgg19(calibration, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), same.state_dict().values()))
    assert not torch.equal(net.layers[0].weight, other.layers[0].weight)
    names = list(net.index)                                       # conv1_1 … conv5_1: 13 layers
    for name, f in net(calibration, names).items():              # He et al.: unit-size activations
        assert f.pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=1e-4), name
    assert [f.shape[1] for f in net(calibration, ["conv1_1", "conv5_1"]).values()] == [16, 128]   # widths / 4
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in net.layers) and net.content_layer == "conv3_1"


def test_random_network_transfers_colour_and_lowers_the_loss():
    content, style = stylize.load_image("builtin:hopper", 32), stylize.load_image("builtin:ihc", 32)
    assert content.shape == style.shape == (1, 3, 32, 32) and 0 <= content.min() and content.max() <= 1
    net = random_vgg19(torch.cat([content, style]))
    for optimizer in ("lbfgs", "adam"):
        out, history = stylize.stylize(net, content, style, steps=30, beta=1e8, optimizer=optimizer)
        assert history[-1]["total"] < 0.5 * history[0]["total"], (optimizer, history)
        assert 0 <= out.min() and out.max() <= 1
        if optimizer == "lbfgs":                                   # the default moves the colours in 30 steps
            assert measures.colour_distance(out, style) < measures.colour_distance(content, style) - 0.02


# ----------------------------------------------------------------- measures, by hand

def test_colour_histogram_and_distance():
    image = torch.tensor([0.6, 0.1, 0.9]).view(1, 3, 1, 1)
    assert measures.colour_histogram(image, bins=2).nonzero().flatten().tolist() == [5]   # cube (1, 0, 1): 4+0+1
    black_white = torch.tensor([[0.0, 1.0]] * 3).view(1, 3, 1, 2)    # one black, one white pixel
    black = torch.zeros(1, 3, 1, 2)
    # ½ (|½ − 1| + |½ − 0|) = ½: half the pixels change colour
    assert measures.colour_distance(black_white, black) == pytest.approx(0.5)
    assert measures.colour_distance(black, black) == 0


def test_texture_distance_of_a_checkerboard_against_flat_grey():
    y = torch.arange(16)
    board = (0.5 + 0.25 * (-1) ** (y[:, None] + y[None, :])).float().expand(1, 3, 16, 16)   # grey 0.25 / 0.75
    flat = torch.full((1, 3, 16, 16), 0.5)
    # level 0: the board's band is ±0.25 (its 2×2 mean is flat 0.5), the flat image's 0: W1 = 0.25;
    # levels 1–3: both flat, 0. Mean over 4 levels: 0.0625.
    assert measures.texture_distance(board, flat) == pytest.approx(0.0625)
    assert measures.texture_distance(board, board) == 0


def test_edge_magnitude_of_a_step_and_edge_ssim():
    step = torch.tensor([0.0, 0.0, 1.0, 1.0]).expand(1, 3, 4, 4)   # columns 0, 0, 1, 1
    # Sobel x: (1 − 0)·(1 + 2 + 1) = 4 at both valid columns; Sobel y: 0
    torch.testing.assert_close(measures.edge_magnitude(step), torch.full((1, 1, 2, 2), 4.0, dtype=torch.float64))
    photo = stylize.load_image("builtin:hopper", 32)
    assert measures.edge_ssim(photo, photo) == pytest.approx(1.0)
    assert measures.edge_ssim(photo, stylize.load_image("builtin:brick", 32)) < 0.5


# ----------------------------------------------------------------- stylize.py

def test_stylize_cli_writes_result_figure_and_measures(tmp_path):
    [record] = stylize.main(["builtin:hopper", "builtin:sketch", "-o", str(tmp_path / "out.png"), "--size", "32",
                             "--steps", "3", "--weights", "random", "--device", "cpu"])
    assert len(record["history"]) >= 3 and set(record["style_loss_after"]) == set(loss_networks.STYLE_LAYERS)
    for name in ("out.png", "out_figure.png", "out_measures.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    [saved] = json.loads((tmp_path / "out_measures.json").read_text())
    assert saved["colour_result"] == pytest.approx(record["colour_result"]) and "history" not in saved


def test_bare_command_runs_the_built_in_pairs_deterministically(tmp_path):
    runs = [stylize.main(["-o", str(tmp_path / run / "demo.png"), "--size", "32", "--steps", "2",
                          "--weights", "random", "--device", "cpu"]) for run in ("a", "b")]
    assert [(r["content"], r["style"]) for r in runs[0]] == list(stylize.DEMO_PAIRS) and len(runs[0]) >= 3
    for content, style in stylize.DEMO_PAIRS:
        name = f"demo_{content.split(':')[1]}+{style.split(':')[1]}.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()   # seeded
    assert (tmp_path / "a" / "demo_figure.png").stat().st_size > 0
    for name in stylize.SHIPPED.values():                         # small images shipped with the repo
        assert (stylize.IMAGES / name).stat().st_size < 60_000, name


@pytest.fixture
def no_optimisation(monkeypatch):
    """Bad input must stop the script before the optimisation starts."""
    def fail(*args, **kwargs):
        raise AssertionError("the optimisation started")
    monkeypatch.setattr(stylize, "stylize", fail)


def test_a_bad_output_path_stops_before_the_optimisation(tmp_path, no_optimisation):
    (tmp_path / "file.txt").write_text("")
    for out, message in [(tmp_path / "file.txt" / "sub" / "out.png", "file.txt is a file, not a folder"),
                         ("/proc/out.png", "cannot write into /proc"),
                         (tmp_path / "out.xyz", "ending in .png or .jpg"),
                         (tmp_path, "ending in .png or .jpg")]:
        with pytest.raises(SystemExit, match=message):
            stylize.main(["builtin:hopper", "builtin:ihc", "-o", str(out), "--size", "32", "--weights", "random"])


@pytest.mark.parametrize("args, message", [
    (["builtin:anime:abc", "builtin:ihc"], "the face number must be a whole number"),
    (["builtin:hopper", "builtin:starry"], "unknown built-in image builtin:starry: use one of builtin:hopper"),
    (["builtin:hopper"], "give both CONTENT and STYLE, or neither"),
    (["builtin:hopper", "builtin:ihc", "--size", "8"], "must be at least 16"),
])
def test_bad_arguments_give_one_sentence(tmp_path, args, message, capsys, no_optimisation):
    with pytest.raises(SystemExit) as exit_:
        stylize.main(args + ["-o", str(tmp_path / "out.png"), "--weights", "random"])
    assert message in str(exit_.value) + capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_bad_images_give_one_sentence(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        stylize.load_image(str(tmp_path / "missing.jpg"), 32)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(SystemExit, match="could not be read"):
        stylize.load_image(str(tmp_path / "broken.png"), 32)
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    with pytest.raises(SystemExit, match="is 8×8 pixels: too small, give an image of at least 16 pixels"):
        stylize.load_image(str(tmp_path / "tiny.png"), 32)
    Image.new("RGB", (200, 20)).save(tmp_path / "strip.png")
    with pytest.raises(SystemExit, match="its centred square would keep only 10% of it"):
        stylize.load_image(str(tmp_path / "strip.png"), 32)
    Image.new("RGB", (80, 20)).save(tmp_path / "four_to_one.png")          # 4:1 is still accepted
    assert stylize.load_image(str(tmp_path / "four_to_one.png"), 32).shape == (1, 3, 32, 32)


def test_ctrl_c_keeps_the_image_so_far_and_exits_130(tmp_path, monkeypatch, capsys):
    """The first Ctrl-C (SIGINT) stops the optimisation after its step; the image so far is written."""
    import os
    import signal
    evaluations, losses = [], stylize.losses

    def interrupted_at_the_third(*args, **kwargs):
        evaluations.append(1)
        if len(evaluations) == 3:
            os.kill(os.getpid(), signal.SIGINT)              # as a Ctrl-C at the terminal
        return losses(*args, **kwargs)
    monkeypatch.setattr(stylize, "losses", interrupted_at_the_third)
    out = tmp_path / "partial.png"
    with pytest.raises(SystemExit) as err:
        stylize.main(["builtin:hopper", "builtin:ihc", "-o", str(out), "--size", "32", "--steps", "50",
                      "--weights", "random"])
    assert err.value.code == 130 and out.is_file()
    assert "stopped by Ctrl-C after 3 of 50 steps" in capsys.readouterr().out


def test_a_size_that_does_not_fit_in_memory_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(stylize, "available_bytes", lambda device: 4e9)
    monkeypatch.setattr(stylize, "load_image", lambda *a: pytest.fail("an image was loaded"))
    with pytest.raises(SystemExit, match=r"--size 10000 needs about \d+ GB .* 4.0 GB are free on the cpu: "
                                         r"--size \d+ is the largest that fits") as err:
        stylize.main(["builtin:hopper", "builtin:ihc", "-o", str(tmp_path / "big.png"), "--size", "10000"])
    largest = int(str(err.value.code).split("--size ")[-1].split()[0])
    assert stylize.bytes_needed(largest, 300, "lbfgs") <= 4e9 < stylize.bytes_needed(largest + 16, 300, "lbfgs")
