"""nir_cgan: Table 2.1 and eqs. 2.8–2.9, 3.1–3.4 by hand, Tables 3.3–3.7 layer by layer, VGG-19,
the configurations of Tables 4.2–4.8, train.py (every configuration, Algorithm 2, resume, seeds), and eval.py of
the shipped networks (no --run) and their golden output (the rest of eval.py: test_nir_cgan_eval.py)."""
import json
import math
import shutil
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
from torchvision.models import VGG19_Weights

from common.checkpoints import read_checkpoint
from common.csvlog import read_log
from common.features import WeightsUnavailable
from conftest import assert_same_checkpoint, evaluate_shipped, one_sentence, ship
from nir_cgan import eval as nir_eval
from nir_cgan import train
from nir_cgan.configs import CONFIGS, TABLES, THESIS_SCORES
from nir_cgan.data import load_pairs
from nir_cgan.model import (SPADE, VGG_LAYERS, VGG_WEIGHTS, AdaIN, EncoderDecoder, FaceIdDistance, LatentEncoder,
                            MappingNetwork, MultinormDecoder, PatchDiscriminator, VGGDistance, build,
                            discriminator_distance, discriminator_loss, feature_matching_loss, full_loss,
                            generator_loss, identity_reconstruction_loss, image_distances, init_xavier, l1_distance,
                            latent_reconstruction_loss, style, style_diversity_loss, widths)

# ----------------------------------------------------------------- Table 2.1, by hand

REAL, FAKE = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, -2.0]])


@pytest.mark.parametrize("kind,expected", [
    # softplus(−y_r) + softplus(y_f): mean(log(1+e^−2), log(1+e^1)) + mean(log(1+e^0.5), log(1+e^−2))
    #   = (0.126928 + 1.313262)/2 + (0.974077 + 0.126928)/2 = 0.720095 + 0.550502 = 1.270597
    ("original", 1.270597),
    # ½(y_r − 1)² + ½y_f²: ½·mean(1, 4) + ½·mean(0.25, 4) = 1.25 + 1.0625
    ("least-squares", 2.3125),
    # relu(1 − y_r) + relu(1 + y_f): mean(0, 2) + mean(1.5, 0) = 1 + 0.75
    ("hinge", 1.75),
])
def test_table_2_1_discriminator_losses(kind, expected):
    assert discriminator_loss(REAL, FAKE, kind).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind,expected", [
    # non-saturating softplus(−y_f): mean(log(1+e^−0.5), log(1+e^2)) = (0.474077 + 2.126928)/2 = 1.300502
    ("original", 1.300502),
    ("least-squares", 2.3125),          # ½·mean((0.5 − 1)², (−2 − 1)²) = ½·(0.25 + 9)/2
    ("hinge", 0.75),                    # −mean(0.5, −2) = 0.75
])
def test_table_2_1_generator_losses(kind, expected):
    assert generator_loss(FAKE, kind).item() == pytest.approx(expected, abs=1e-6)


def test_adversarial_losses_are_the_table_written_as_minimisation():
    """L_D = −mean f(y_r) − mean g(y_f) with Table 2.1's f and g, on random patch maps."""
    torch.manual_seed(0)
    real, fake = torch.randn(3, 1, 5, 5) * 3, torch.randn(3, 1, 5, 5) * 3
    table = {"original": (lambda y: -torch.log1p(torch.exp(-y)), lambda y: -y - torch.log1p(torch.exp(-y))),
             "least-squares": (lambda y: -0.5 * (y - 1) ** 2, lambda y: -0.5 * y ** 2),
             "hinge": (lambda y: torch.clamp(y - 1, max=0), lambda y: torch.clamp(-y - 1, max=0))}
    for kind, (f, g) in table.items():
        expected = -f(real).mean() - g(fake).mean()
        assert discriminator_loss(real, fake, kind).item() == pytest.approx(expected.item(), rel=1e-5), kind
    assert generator_loss(fake, "hinge").item() == pytest.approx(-fake.mean().item())


def test_unknown_adversarial_loss_is_an_error():
    with pytest.raises(ValueError, match="wasserstein"):
        discriminator_loss(REAL, FAKE, "wasserstein")
    with pytest.raises(ValueError, match="wasserstein"):
        generator_loss(FAKE, "wasserstein")


# ----------------------------------------------------------------- eqs. 3.1–3.4, by hand

def test_eq_3_4_feature_matching_sums_layer_means_and_detaches_the_real_side():
    fake = [torch.tensor([[1.0, 2.0]], requires_grad=True), torch.tensor([[[3.0]]], requires_grad=True)]
    real = [torch.tensor([[0.0, 4.0]], requires_grad=True), torch.tensor([[[1.0]]], requires_grad=True)]
    loss = feature_matching_loss(fake, real)
    # layer 1: mean(1², (−2)²) = 2.5; layer 2: 2² = 4; sum 6.5
    assert loss.item() == pytest.approx(6.5)
    loss.backward()
    # d/df mean (f − r)² = 2(f − r)/n: layer 1 (2·1/2, 2·(−2)/2) = (1, −2); layer 2: 2·2 = 4
    assert fake[0].grad.tolist() == [[1.0, -2.0]] and fake[1].grad.tolist() == [[[4.0]]]
    assert real[0].grad is None and real[1].grad is None


def test_eq_3_1_latent_reconstruction_is_the_mean_absolute_error():
    z = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    z_hat = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    assert latent_reconstruction_loss(z, z_hat).item() == pytest.approx((0.5 + 0 + 0.5 + 2) / 4)


def test_eq_3_2_style_diversity_is_the_mean_of_the_ratios():
    # (0.6/2 + 0.2/0.5)/2 = (0.3 + 0.4)/2 = 0.35, not mean(d_I)/mean(d_z) = 0.4/1.25 = 0.32
    assert style_diversity_loss(torch.tensor([0.6, 0.2]), torch.tensor([2.0, 0.5])).item() == pytest.approx(0.35)


def test_eq_3_3_identity_reconstruction_and_the_l1_distance():
    a = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])
    b = torch.tensor([[[[0.0, 0.0]]], [[[1.0, -1.0]]]])
    d = l1_distance(a, b)                                    # per pair: (1 + 2)/2, (1 + 1)/2
    assert d.shape == (2,) and d.tolist() == [1.5, 1.0]
    assert identity_reconstruction_loss(d).item() == pytest.approx(1.25)


def test_eq_3_5_full_loss_weighs_each_term_and_subtracts_style_diversity():
    terms = {"loss_adv": torch.tensor(1.0), "loss_p": torch.tensor(2.0), "loss_lr": torch.tensor(0.5),
             "loss_sd": torch.tensor(0.4), "loss_ir": torch.tensor(3.0)}
    # 1 + 0.5·2 + 2·0.5 − 1·0.4 + 0.1·3 = 1 + 1 + 1 − 0.4 + 0.3 = 2.9
    assert full_loss(terms, lambda_p=0.5, lambda_lr=2, lambda_sd=1, lambda_ir=0.1).item() == pytest.approx(2.9)
    # a term the configuration does not use counts 0, whatever its λ: 1 + 2·0.5 = 2
    only_lr = {"loss_adv": torch.tensor(1.0), "loss_lr": torch.tensor(0.5)}
    assert full_loss(only_lr, lambda_p=7, lambda_lr=2, lambda_sd=3, lambda_ir=4).item() == pytest.approx(2.0)
    assert full_loss({"loss_adv": torch.tensor(1.5)}).item() == 1.5


def test_style_goes_through_the_mapping_network_when_there_is_one():
    z = torch.tensor([[1.0, -2.0]])
    assert style({"G": None, "D": None}, z) is z                                  # no L: s = z
    assert style({"G": None, "L": lambda t: 3 * t}, z).tolist() == [[3.0, -6.0]]     # s = L(z)


# ----------------------------------------------------------------- d_I of eqs. 3.2–3.3 (§3.2.4), by hand

def fake_discriminator(source, image):
    """Three "layers": the image, twice the image plus the source's mean, and patch scores (never compared)."""
    return [image, 2 * image + source.mean(), image.sum() * 100]


def test_d_i_on_discriminator_layers_sums_the_l1_of_every_layer_but_the_scores():
    y = torch.full((2, 3, 2, 2), 5.0)
    a, b = torch.zeros(2, 1, 2, 2), torch.tensor([1.0, 3.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    # layer 1: |0 − b| = (1, 3); layer 2: |(0 + 5) − (2b + 5)| = (2, 6); the scores are left out: (3, 9)
    assert discriminator_distance(fake_discriminator, a, b, y).tolist() == [3.0, 9.0]


def test_image_distances_are_the_named_choices_each_per_pair():
    y = torch.full((2, 3, 2, 2), 5.0)
    a, b = torch.zeros(2, 1, 2, 2), torch.tensor([1.0, 3.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    d = image_distances(["L1", "D", "VGG", "FaceId"], fake_discriminator,
                        vgg=lambda p, q: (p - q).abs().flatten(1).sum(1), faceid=lambda p, q: torch.full((len(p),), 7.0))
    assert d["L1"](a, b, y).tolist() == [1.0, 3.0]                  # mean |a − b| per pair
    assert d["D"](a, b, y).tolist() == [3.0, 9.0]                   # as above
    assert d["VGG"](a, b, y).tolist() == [4.0, 12.0]                # the network's own distance, y unused
    assert d["FaceId"](a, b, y).tolist() == [7.0, 7.0]
    assert set(image_distances({"L1"}, fake_discriminator)) == {"L1"} and image_distances(set(), None) == {}


def test_a_configuration_names_the_distances_and_networks_it_needs():
    assert CONFIGS["ED-LS"].image_distances == set() and not CONFIGS["ED-LS"].uses_vgg
    assert CONFIGS["ED-H-LR-SD-IR"].image_distances == {"FaceId"}                  # SD and IR, both FaceId
    assert CONFIGS["ED-H-LR-SD-4"].image_distances == {"D"} and not CONFIGS["ED-H-LR-SD-4"].uses_vgg
    assert CONFIGS["ED-LS-LR-IR-3"].image_distances == {"L1"}
    assert CONFIGS["ED-LS-LR-IR-4"].image_distances == {"VGG"} and CONFIGS["ED-LS-LR-IR-4"].uses_vgg
    assert CONFIGS["ED-LS-P-3"].image_distances == set() and CONFIGS["ED-LS-P-3"].uses_vgg   # VGG perceptual loss


class TinyFaceId(nn.Module):
    """A stand-in face-identity network: (B, 3, H, W) → (B, 2), channel 0's mean and twice channel 2's max."""

    def forward(self, x):
        return torch.stack([x[:, 0].mean((1, 2)), 2 * x[:, 2].amax((1, 2))], 1)


def scripted_faceid(folder):
    """``TinyFaceId`` saved as TorchScript, as --faceid-net takes it."""
    path = folder / "faceid.pt"
    torch.jit.script(TinyFaceId()).save(str(path))
    return path


@pytest.mark.filterwarnings("ignore:`torch.jit")                    # TorchScript is deprecated, still --faceid-net's
def test_faceid_distance_is_the_mean_absolute_feature_difference(tmp_path):
    d = FaceIdDistance(str(scripted_faceid(tmp_path)), "cpu")
    a = torch.zeros(2, 1, 2, 2)                                     # grayscale: its channel is repeated 3 times
    b = torch.tensor([[[[1.0, 1.0], [1.0, 3.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    # pair 1: f(a) = (0, 0), f(b) = (1.5, 6): mean(1.5, 6) = 3.75; pair 2: equal images, 0
    assert d(a, b).tolist() == [3.75, 0.0]
    assert not any(p.requires_grad for p in d.parameters())
    shipped = FaceIdDistance(None, "cpu")                           # the synthetic-face network's 256 features
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert shipped(x, x).tolist() == [0.0, 0.0] and torch.all(shipped(x, -x) > 0)
    with torch.no_grad():
        f = shipped.net.features(torch.cat([x, -x]).expand(-1, 3, -1, -1))
    assert torch.allclose(shipped(x, -x), (f[:2] - f[2:]).abs().mean(1))
    assert not any(p.requires_grad for p in shipped.parameters())


# ----------------------------------------------------------------- eqs. 2.8–2.9

GAMMA, BETA = torch.tensor([0.5, -0.25]), torch.tensor([1.0, -2.0])


def test_eq_2_8_adain_is_an_affine_map_of_the_instance_normalised_input():
    torch.manual_seed(0)
    layer = AdaIN(z_dim=3, channels=2)
    with torch.no_grad():
        layer.fc.weight.zero_()
        layer.fc.bias.copy_(torch.cat([GAMMA, BETA]))        # fc(z) = (γ, β) whatever z is
    x = torch.randn(2, 2, 4, 4) * 3 + 1
    mu = x.mean(dim=(2, 3), keepdim=True)                    # per sample and channel
    sigma = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    expected = (1 + GAMMA.view(1, 2, 1, 1)) * (x - mu) / sigma + BETA.view(1, 2, 1, 1)
    assert torch.allclose(layer(x, torch.randn(2, 3)), expected, atol=1e-5)
    # with learned weights, two styles give two outputs
    layer.fc.reset_parameters()
    z = torch.randn(1, 3)
    assert (layer(x[:1], z) - layer(x[:1], -z)).abs().max() > 1e-3


def test_eq_2_9_spade_is_an_affine_map_of_the_batch_normalised_input():
    torch.manual_seed(0)
    layer = SPADE(channels=2, source_channels=3, hidden=4)
    with torch.no_grad():
        for conv, bias in ((layer.gamma, GAMMA), (layer.beta, BETA)):
            conv.weight.zero_()
            conv.bias.copy_(bias)
    x, y = torch.randn(3, 2, 4, 4) * 2 - 1, torch.randn(3, 3, 8, 8)     # y is resized to x
    mu = x.mean(dim=(0, 2, 3), keepdim=True)                 # per channel, over the batch
    sigma = (x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    expected = (1 + GAMMA.view(1, 2, 1, 1)) * (x - mu) / sigma + BETA.view(1, 2, 1, 1)
    assert torch.allclose(layer(x, y), expected, atol=1e-5)
    # with learned weights γ and β vary over the image with y: changing y's top-left corner
    # changes the output near it and leaves the far corner alone
    layer.gamma.reset_parameters()
    y2 = y.clone()
    y2[:, :, :2, :2] += 5
    diff = (layer(x, y) - layer(x, y2)).abs()
    assert diff[..., 0, 0].max() > 1e-3 and diff[..., 3, 3].max() == 0


# ----------------------------------------------------------------- Tables 3.3–3.7, layer by layer

def output_shapes(modules, run):
    """Run ``run()`` with forward hooks on ``modules``; the output shape of each, in order."""
    shapes = [None] * len(modules)
    handles = [m.register_forward_hook(lambda mod, inp, out, i=i: shapes.__setitem__(i, tuple(out.shape)))
               for i, m in enumerate(modules)]
    with torch.no_grad():
        result = run()
    for h in handles:
        h.remove()
    return shapes, result


def test_widths_follow_the_tables():
    assert widths(128, 16, 256, 4) == [16, 32, 64, 128, 256, 256]                 # Tables 3.4 and 3.5
    assert widths(128, 32, 512, 2) == [32, 64, 128, 256, 512, 512, 512]           # Table 3.6
    assert widths(64, 8, 128, 4) == [8, 16, 32, 64, 128]                          # quick preset, G
    assert widths(64, 8, 128, 2) == [8, 16, 32, 64, 128, 128]                     # quick preset, E


def test_table_3_3_patch_discriminator():
    D = PatchDiscriminator()
    features = D(torch.randn(1, 3, 128, 128), torch.randn(1, 1, 128, 128))
    assert [tuple(f.shape[1:]) for f in features] == [(32, 65, 65), (64, 33, 33), (128, 17, 17), (256, 9, 9),
                                                      (512, 10, 10), (1, 11, 11)]
    # normalisation column: none on the first and last conv, instance norm on the four between
    norms = [any(isinstance(m, nn.InstanceNorm2d) for m in block.modules()) for block in D.blocks]
    assert norms == [False, True, True, True, True, False]
    assert D.blocks[0][0].in_channels == 4                    # source (3) ⊕ target or generated (1)


def test_spectral_norm_before_instance_norm_leaves_the_discriminator_unchanged():
    """SPADE's spectralinstance: IN(W/σ ∗ x + b) = IN(W ∗ x) up to IN's ε, so the same D with the raw
    weights and no spectral norm gives the same patch scores (the README's reason for keeping it)."""
    torch.manual_seed(0)
    D = PatchDiscriminator(base=8)
    y, x = torch.randn(2, 3, 32, 32), torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        with_sn = D(y, x)[-1]
        for block in D.blocks[1:-1]:
            raw = block[0].weight_orig.clone()
            nn.utils.remove_spectral_norm(block[0])                 # leaves W/σ as a plain weight
            assert not torch.allclose(block[0].weight, raw, rtol=0.1)     # σ is far from 1
            block[0].weight.copy_(raw)
        without = D(y, x)[-1]
    assert torch.allclose(with_sn, without, atol=1e-3)


def test_table_3_4_encoder_decoder_at_128():
    torch.manual_seed(0)
    G = EncoderDecoder().eval()
    shapes, out = output_shapes([G.stem, *G.down, *G.up], lambda: G(torch.randn(1, 3, 128, 128), torch.randn(1, 512)))
    assert shapes == [(1, 16, 128, 128),
                      (1, 32, 64, 64), (1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8), (1, 256, 4, 4),
                      (1, 256, 8, 8), (1, 128, 16, 16), (1, 64, 32, 32), (1, 32, 64, 64), (1, 16, 128, 128)]
    assert out.shape == (1, 1, 128, 128) and out.abs().max() <= 1
    assert all(isinstance(m.norm1, nn.BatchNorm2d) for m in G.down)           # "Batch norm" column
    assert_tanh_output(G, lambda: G(torch.randn(1, 3, 128, 128), torch.randn(1, 512)))


def assert_tanh_output(G, run):
    """The last conv goes through tanh: a large bias saturates at 1 instead of passing through."""
    with torch.no_grad():
        G.out.bias.fill_(10.0)
        out = run()
    assert out.min() > 0.99 and out.max() <= 1


def test_table_3_5_multinorm_decoder_at_128():
    torch.manual_seed(0)
    G = MultinormDecoder(spade_hidden=8).eval()              # the SPADE hidden width is not in the table
    shapes, out = output_shapes([G.fc, *G.up], lambda: G(torch.randn(1, 3, 128, 128), torch.randn(1, 512)))
    assert shapes == [(1, 4096), (1, 256, 8, 8), (1, 128, 16, 16), (1, 64, 32, 32), (1, 32, 64, 64),
                      (1, 16, 128, 128)]
    assert G.fc.in_features == 512 and G.up[0].conv1.in_channels == 256        # 4096 = 256×4×4
    assert out.shape == (1, 1, 128, 128) and out.abs().max() <= 1
    assert_tanh_output(G, lambda: G(torch.randn(1, 3, 128, 128), torch.randn(1, 512)))


def test_table_3_6_latent_encoder_at_128():
    E = LatentEncoder()
    shapes, z_hat = output_shapes([E.stem, *E.down, E.head[1]], lambda: E(torch.randn(1, 1, 128, 128)))
    assert shapes == [(1, 32, 128, 128), (1, 64, 64, 64), (1, 128, 32, 32), (1, 256, 16, 16), (1, 512, 8, 8),
                      (1, 512, 4, 4), (1, 512, 2, 2), (1, 512, 1, 1)]
    assert z_hat.shape == (1, 512)


def test_table_3_7_mapping_network():
    L = MappingNetwork()
    layers = list(L.net)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    assert len(linears) == 8 and all((m.in_features, m.out_features) == (512, 512) for m in linears)
    # Linear, ReLU, Linear, ReLU, …, Linear: a ReLU after all but the last
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU] * 7 + [nn.Linear]
    assert L(torch.randn(2, 512)).shape == (2, 512)


def test_quick_widths_at_64():
    torch.manual_seed(0)
    ch = widths(64, 8, 128, 4)
    G = EncoderDecoder(64, 8, 128, z_dim=64).eval()
    shapes, out = output_shapes([G.stem, *G.down, *G.up], lambda: G(torch.randn(2, 3, 64, 64), torch.randn(2, 64)))
    down = [(2, c, 64 >> i, 64 >> i) for i, c in enumerate(ch)]                 # 8×64², 16×32², …, 128×4²
    assert shapes == down + down[-2::-1] and out.shape == (2, 1, 64, 64)
    E = LatentEncoder(64, 8, 128, z_dim=64)
    ch = widths(64, 8, 128, 2)
    shapes, z_hat = output_shapes([E.stem, *E.down], lambda: E(torch.randn(2, 1, 64, 64)))
    assert shapes == [(2, c, 64 >> i, 64 >> i) for i, c in enumerate(ch)] and z_hat.shape == (2, 64)
    Gm = MultinormDecoder(64, 8, 128, z_dim=64, spade_hidden=8).eval()
    assert Gm(torch.randn(2, 3, 64, 64), torch.randn(2, 64)).shape == (2, 1, 64, 64)


@pytest.mark.parametrize("size", [0, 4, 33, 48, 100])
def test_networks_refuse_sizes_they_cannot_take(size):
    for make in (lambda: EncoderDecoder(size, 4, 16, z_dim=8), lambda: MultinormDecoder(size, 4, 16, z_dim=8),
                 lambda: build(size=size, z_dim=8, g_base=4, g_max=16, e_base=4, e_max=16, d_base=8)):
        with pytest.raises(ValueError, match=f"power of two from 8 up .*not {size}"):
            make()


def test_build_makes_every_network_of_a_run():
    small = dict(size=16, z_dim=8, g_base=4, g_max=16, spade_hidden=8, d_base=8, e_base=4, e_max=16)
    assert set(build(**small)) == {"G", "D"}
    nets = build(**small, generator="Mult", encoder=True, mapping=True)
    assert set(nets) == {"G", "D", "E", "L"}
    assert isinstance(nets["G"], MultinormDecoder) and isinstance(nets["E"], LatentEncoder)
    assert nets["E"](torch.randn(2, 1, 16, 16)).shape == (2, 8) and nets["L"](torch.randn(2, 8)).shape == (2, 8)
    assert isinstance(build(**small)["G"], EncoderDecoder)
    with pytest.raises(ValueError, match="ED, Mult"):
        build(**small, generator="U-Net")


def test_table_3_8_xavier_init():
    net = nn.Sequential(nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.Sequential(nn.Linear(10, 20)))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    torch.manual_seed(0)
    init_xavier(net)
    conv, bn, linear = net[0], net[1], net[2][0]
    assert conv.bias.abs().max() == 0 and linear.bias.abs().max() == 0
    # gain g = sqrt(2 / (1 + 0.2²)) = 1.3868 (LeakyReLU 0.2); fan_in = 16·9 = 144, fan_out = 32·9 = 288:
    # std g·sqrt(2/432) = 0.0944, bound g·sqrt(6/432) = 0.1634
    g = math.sqrt(2 / 1.04)
    assert conv.weight.std().item() == pytest.approx(g * math.sqrt(2 / 432), rel=0.05)
    assert conv.weight.abs().max().item() <= g * math.sqrt(6 / 432)
    assert linear.weight.abs().max().item() <= g * math.sqrt(6 / 30) and linear.weight.std().item() > 0.1
    assert torch.all(bn.weight == 0.5)                       # only conv and linear layers


# ----------------------------------------------------------------- VGG-19 distance (§3.2.4.2.1)

@pytest.fixture(scope="module")
def vgg():
    """One random-weight VGGDistance for the module: building VGG-19 costs seconds."""
    return VGGDistance(weights="none")


def test_vgg_layers_are_the_first_relu_of_each_block(vgg):
    features = vgg.net                                       # torchvision's vgg19().features, to relu5_1
    assert len(features) == 30
    firsts = [i for i, m in enumerate(features)
              if isinstance(m, nn.ReLU) and (i == 1 or isinstance(features[i - 2], nn.MaxPool2d))]
    assert VGG_LAYERS == (1, 6, 11, 20, 29) and tuple(firsts) == VGG_LAYERS   # relu1_1 … relu5_1


def test_vgg_distance(vgg):
    torch.manual_seed(0)
    a, b = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    d = vgg(a, b)
    assert d.shape == (2,) and torch.all(d > 0)
    assert vgg(a, a).abs().max() < 1e-6
    assert torch.allclose(vgg(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)), d)   # grey = RGB copies
    # explicitly: Σ_l w_l · mean |φ_l(a) − φ_l(b)| on ImageNet-normalised [0, 1] images
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def phi(x, layer):
        return vgg.net[:layer + 1](((x.expand(-1, 3, -1, -1) + 1) / 2 - mean) / std)
    with torch.no_grad():
        expected = sum(w * (phi(a, l) - phi(b, l)).abs().mean(dim=(1, 2, 3)) for w, l in zip(VGG_WEIGHTS, VGG_LAYERS))
    assert torch.allclose(d, expected, rtol=1e-4)
    assert not any(p.requires_grad for p in vgg.parameters())
    assert not vgg.train().training                          # frozen in eval mode


def test_vgg_imagenet_weights_load_the_feature_layers(vgg, monkeypatch):
    state = {f"features.{k}": torch.full_like(v, 0.5) for k, v in vgg.net.state_dict().items()}
    state["features.34.weight"] = torch.zeros(512, 512, 3, 3)                # past relu5_1: dropped
    state["classifier.0.weight"] = torch.zeros(3, 3)                        # not a feature layer
    monkeypatch.setattr(VGG19_Weights, "get_state_dict", lambda self, progress=True: state)
    loaded = VGGDistance("imagenet")
    assert torch.all(loaded.net[0].weight == 0.5) and torch.all(loaded.net[28].bias == 0.5)


def test_vgg_offline_message_names_the_file_and_the_alternative(vgg, monkeypatch, tmp_path):
    def offline(self, progress=True):
        raise OSError("network is unreachable")
    monkeypatch.setattr(VGG19_Weights, "get_state_dict", offline)
    with pytest.raises(WeightsUnavailable) as err:
        VGGDistance("imagenet")
    assert "vgg19-dcbb9e9d.pth" in str(err.value) and "--vgg-weights none" in str(err.value)
    with pytest.raises(ValueError, match="imagenet"):
        VGGDistance("random")
    # through train.py: one sentence, before any checkpoint is written
    out = tmp_path / "run"
    argv = [a for a in TINY if a not in ("--vgg-weights", "none")]
    with pytest.raises(SystemExit) as stop:
        train.main(argv + ["--config", "ED-LS-P-3", "--steps", "1", "--out", str(out)])
    assert isinstance(stop.value.code, str) and "\n" not in stop.value.code
    assert "vgg19-dcbb9e9d.pth" in stop.value.code and "--vgg-weights none" in stop.value.code
    assert not (out / "checkpoint.pt").exists()


# ----------------------------------------------------------------- §3.2.6.1 learning-rate schedule

def test_lr_factor_is_constant_then_decays_linearly_to_zero():
    assert [train.lr_factor(s, 10, 10) for s in (0, 5, 10)] == [1.0, 1.0, 1.0]
    assert train.lr_factor(11, 10, 10) == pytest.approx(0.9)
    assert train.lr_factor(15, 10, 10) == pytest.approx(0.5)
    assert train.lr_factor(20, 10, 10) == 0.0 and train.lr_factor(25, 10, 10) == 0.0
    assert train.lr_factor(6, 4, 8) == pytest.approx(0.75)   # 2 of 8 decay steps done


def test_the_schedule_is_epochs_of_the_training_pairs_counted_before_any_image_is_read():
    # 100 built-in pairs: 90 train, 11 batches of 8 an epoch; K_fixed 1 → 11 steps, K_decay 0.25 → 2.75 → 3,
    # warm-up 0.2 → 2.2 → 2; without --steps the run is K_fixed + K_decay = 14 steps
    flags = TINY + ["--pairs", "100", "--batch-size", "8", "--epochs-fixed", "1", "--epochs-decay", "0.25",
                    "--lr-warmup", "0.2"]
    args = train.parse(flags)[0]
    assert train.schedule(args) == (11, 3, 2) and args.steps == 14
    assert train.parse(flags + ["--steps", "5"])[0].steps == 5          # --steps wins; the schedule stays
    assert train.schedule(train.parse(flags + ["--steps", "5"])[0]) == (11, 3, 2)


def test_an_epoch_schedule_without_a_step_is_one_sentence(tmp_path, capsys):
    # 10 pairs: 9 train, 2 batches of 4; 0.2 + 0.2 epochs = 0.4 + 0.4 steps, rounded to 0
    argv = TINY + ["--pairs", "10", "--epochs-fixed", "0.2", "--epochs-decay", "0.2", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as err:
        train.main(argv)
    assert "0.2 + 0.2 epochs of 2 batches is less than one step" in one_sentence(err, capsys)
    with pytest.raises(SystemExit) as err:
        train.main(TINY + ["--pairs", "10", "--batch-size", "10", "--out", str(tmp_path / "run")])
    assert "batch size 10 does not fit the 9 training pairs" in one_sentence(err, capsys)
    assert not (tmp_path / "run").exists()


def test_lambda_lr_warmup_factor_rises_linearly_then_stays_at_one():
    assert train.warmup_factor(0, 0) == 1.0 and train.warmup_factor(7, 0) == 1.0     # no warm-up: eq. 3.5 as written
    assert train.warmup_factor(50, 200) == pytest.approx(0.25)                          # 50 of 200 steps
    assert train.warmup_factor(1, 4) == pytest.approx(0.25)
    assert train.warmup_factor(200, 200) == 1.0 and train.warmup_factor(300, 200) == 1.0


# ----------------------------------------------------------------- configurations (Tables 4.2–4.8)

def test_the_issue_names_exist():
    for name in ("ED-LS-LR-2", "Mult-LS", "ED-H-P", "ED-H-LR-SD-1", "ED-LS-LR-IR-4", "ED-LS-P-LR-SD-SM"):
        assert name in CONFIGS, name


LS, H, O = "least-squares", "hinge", "original"
# Every row, in the thesis's order: (adversarial, perceptual, λ_p, λ_sd, d_I of 3.2, d_z, λ_ir, d_I of 3.3, mapping)
# for the fields a table gives; λ_lr separately (Tables 4.6–4.7 leave some out: "ours", > 0).
ROWS = {
    "4.2": {"ED-LS": dict(generator="ED", adversarial=LS), "Mult-LS": dict(generator="Mult", adversarial=LS)},
    "4.3": {"ED-O": dict(adversarial=O), "ED-H": dict(adversarial=H), "ED-LS": dict(adversarial=LS)},
    "4.4": {"ED-H-P": dict(adversarial=H, perceptual="D45", lambda_p=1),
            "ED-LS-P-1": dict(adversarial=LS, perceptual="D45", lambda_p=1),
            "ED-LS-P-2": dict(adversarial=LS, perceptual="Dall", lambda_p=1),
            "ED-LS-P-3": dict(adversarial=LS, perceptual="VGG", lambda_p=1)},
    "4.5": {"ED-LS-LR-1": dict(adversarial=LS, lambda_lr=1), "ED-LS-LR-2": dict(adversarial=LS, lambda_lr=2),
            "ED-LS-LR-3": dict(adversarial=LS, lambda_lr=5), "ED-H-LR": dict(adversarial=H, lambda_lr=1)},
    "4.6": {"ED-LS-LR-SD": dict(adversarial=LS, sd_image="FaceId", sd_latent="const", lambda_sd=1),
            "ED-H-LR-SD-1": dict(adversarial=H, sd_image="FaceId", sd_latent="const", lambda_sd=1),
            "ED-H-LR-SD-2": dict(adversarial=H, sd_image="FaceId", sd_latent="L1", lambda_sd=1),
            "ED-H-LR-SD-3": dict(adversarial=H, sd_image="L1", sd_latent="const", lambda_sd=1),
            "ED-H-LR-SD-4": dict(adversarial=H, sd_image="D", sd_latent="const", lambda_sd=1),
            "ED-H-LR-SD-5": dict(adversarial=H, sd_image="VGG", sd_latent="const", lambda_sd=1)},
    "4.7": {"ED-LS-SM": dict(mapping=True, lambda_lr=0, lambda_sd=0),
            "ED-LS-LR-SD-SM": dict(mapping=True, lambda_sd=1),
            "ED-LS-P-LR-SD-SM": dict(mapping=True, lambda_sd=1, perceptual="VGG", lambda_p=1)},
    "4.8": {"ED-LS-LR-IR-1": dict(adversarial=LS, ir_image="FaceId", lambda_lr=1, lambda_ir=1),
            "ED-LS-LR-IR-2": dict(adversarial=LS, ir_image="FaceId", lambda_lr=2, lambda_ir=1),
            "ED-LS-LR-IR-3": dict(adversarial=LS, ir_image="L1", lambda_lr=2, lambda_ir=1),
            "ED-LS-LR-IR-4": dict(adversarial=LS, ir_image="VGG", lambda_lr=2, lambda_ir=1),
            "ED-H-LR-IR": dict(adversarial=H, ir_image="L1", lambda_lr=2, lambda_ir=1)},
}


def test_every_row_of_tables_4_2_to_4_8():
    tables = {key.split()[0]: rows for key, rows in TABLES.items()}
    assert {t: len(tables[t]) for t in ROWS} == {"4.2": 2, "4.3": 3, "4.4": 4, "4.5": 4, "4.6": 6, "4.7": 3, "4.8": 5}
    for t, rows in ROWS.items():
        assert list(tables[t]) == list(rows), t                             # the thesis's row order
        for name, fields in rows.items():
            config = CONFIGS[name]
            for field, value in fields.items():
                assert getattr(config, field) == value, (name, field)
            if name.startswith("ED"):
                assert config.generator == "ED", name
            # what a name leaves out is off: P ⇔ λ_p, LR ⇔ λ_lr, SD ⇔ λ_sd, IR ⇔ λ_ir, SM ⇔ mapping
            parts = name.split("-")
            assert ("P" in parts) == (config.lambda_p > 0) == (config.perceptual is not None), name
            assert ("LR" in parts) == (config.lambda_lr > 0), name
            assert ("SD" in parts) == (config.lambda_sd > 0), name
            assert ("IR" in parts) == (config.lambda_ir > 0), name
            assert ("SM" in parts) == config.mapping, name
            assert config.uses_encoder == ("LR" in parts or "IR" in parts), name
            assert name in THESIS_SCORES, name
    assert THESIS_SCORES["ED-LS-LR-2"] == (12.3, 0.171) and THESIS_SCORES["ED-LS-LR-SD"] == (None, None)


# ----------------------------------------------------------------- train.py

TINY = ["--size", "32", "--pairs", "40", "--batch-size", "4", "--z-dim", "8", "--g-base", "4", "--g-max", "16",
        "--e-base", "4", "--e-max", "16", "--d-base", "8", "--spade-hidden", "8", "--fid-pairs", "0",
        "--vgg-weights", "none", "--device", "cpu", "--no-amp", "--log-every", "1", "--sample-every", "2",
        "--ckpt-every", "2"]


@pytest.fixture
def shared_vgg(vgg, monkeypatch):
    """train.py builds VGG-19 for its VGG configurations: hand it the module's (frozen, so shareable)."""
    def build(weights):
        assert weights == "none"
        return vgg
    monkeypatch.setattr(train, "VGGDistance", build)


@pytest.fixture
def no_figures(monkeypatch):
    """Leave out samples/ and loss.png (matplotlib takes most of a two-step run's time)."""
    import common.plots
    monkeypatch.setattr(train, "save_image_rows", lambda *args, **kwargs: None)
    monkeypatch.setattr(common.plots, "plot_losses", lambda *args, **kwargs: None)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_configuration_builds_and_trains(name, tmp_path, shared_vgg, no_figures, monkeypatch):
    config = CONFIGS[name]
    matched = []                                          # the D layers that eq. 3.4 compares, per call
    real_matching = train.feature_matching_loss

    def recording(fake, real):
        matched.append([f.shape[1] for f in fake])
        return real_matching(fake, real)
    monkeypatch.setattr(train, "feature_matching_loss", recording)
    run = train.main(TINY + ["--config", name, "--steps", "2", "--out", str(tmp_path / "run")])
    log = read_log(run / "log.csv")
    assert log["step"] == [1, 2]
    used = {"loss_D": True, "loss_adv": True, "loss_p": config.lambda_p > 0, "loss_lr": config.lambda_lr > 0,
            "loss_sd": config.lambda_sd > 0, "loss_ir": config.lambda_ir > 0, "loss_G": True}
    for column, on in used.items():                       # log.csv has a column for each term used, and no other
        assert (column in log) == on, column
        for value in log.get(column, []):
            assert math.isfinite(value) and value != 0, (column, value)
    for i in range(2):                                    # eq. 3.5, with −λ_sd: the generator maximises L_sd
        term = {name: log[name][i] if name in log else 0.0 for name in used}
        full = (term["loss_adv"] + config.lambda_p * term["loss_p"] + config.lambda_lr * term["loss_lr"]
                - config.lambda_sd * term["loss_sd"] + config.lambda_ir * term["loss_ir"])
        assert log["loss_G"][i] == pytest.approx(full, rel=1e-4, abs=1e-5)
    # D's layers (d_base 8): 8, 16, 32, 64, 128 channels, then the 1-channel patch scores (never matched)
    assert matched == {None: [], "VGG": [], "D45": [[64, 128]] * 2, "Dall": [[8, 16, 32, 64, 128]] * 2}[config.perceptual]
    checkpoint = read_checkpoint(run / "checkpoint.pt")
    models = checkpoint["models"]
    assert set(models) == {"G", "D"} | ({"E"} if config.uses_encoder else set()) | ({"L"} if config.mapping else set())
    assert ("fc.weight" in models["G"]) == (config.generator == "Mult")
    # the checkpoint alone rebuilds the run: build(**model_args) takes every weight back
    nets = build(**checkpoint["model_args"])
    assert set(nets) == set(models)
    for name, net in nets.items():
        net.load_state_dict(models[name])


def test_loss_functions_return_the_terms_of_eq_3_5():
    """compute_d_loss / compute_g_loss on tiny networks: only the terms a configuration uses, and
    L_G assembled as eq. 3.5 from them."""
    torch.manual_seed(0)
    y, x = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    z, z2 = torch.randn(2, 8), torch.randn(2, 8)
    d_image = {"L1": lambda a, b, _: l1_distance(a, b)}
    for name, keys in (("ED-LS", {"loss_adv", "loss_G"}), ("ED-LS-LR-2", {"loss_adv", "loss_lr", "loss_G"}),
                       ("ED-LS-P-1", {"loss_adv", "loss_p", "loss_G"}),
                       ("ED-LS-LR-IR-3", {"loss_adv", "loss_lr", "loss_ir", "loss_G"})):
        config = CONFIGS[name]
        nets = build(size=16, z_dim=8, g_base=4, g_max=16, d_base=8, e_base=4, e_max=16,
                     encoder=config.uses_encoder, mapping=config.mapping)
        assert set(train.compute_d_loss(nets, config, y, x, z)) == {"loss_D"}
        terms = train.compute_g_loss(nets, config, y, x, z, z2, d_image)
        assert set(terms) == keys, name
        expected = (terms["loss_adv"] + config.lambda_p * terms.get("loss_p", 0) + config.lambda_lr * terms.get("loss_lr", 0)
                    + config.lambda_ir * terms.get("loss_ir", 0))
        assert terms["loss_G"].item() == pytest.approx(expected.item(), rel=1e-6)
    config = replace(CONFIGS["ED-H-LR-SD-3"], lambda_sd=0.5)      # L_sd with d_I = L1, weighted −0.5
    nets = build(size=16, z_dim=8, g_base=4, g_max=16, d_base=8, e_base=4, e_max=16, encoder=True)
    terms = train.compute_g_loss(nets, config, y, x, z, z2, d_image)
    assert set(terms) == {"loss_adv", "loss_lr", "loss_sd", "loss_G"}
    with torch.no_grad():                                         # eq. 3.2 by hand, d_z = const: mean d_I
        by_hand = l1_distance(nets["G"](y, z), nets["G"](y, z2)).mean()
    assert terms["loss_sd"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    expected = terms["loss_adv"] + terms["loss_lr"] - 0.5 * terms["loss_sd"]
    assert terms["loss_G"].item() == pytest.approx(expected.item(), rel=1e-6)
    # λ_lr warm-up: w = 0.25 weights ED-LS-LR-2's λ_lr = 2 by 0.5
    config = CONFIGS["ED-LS-LR-2"]
    terms = train.compute_g_loss(nets, config, y, x, z, z2, d_image, lr_weight=0.25)
    assert terms["loss_G"].item() == pytest.approx((terms["loss_adv"] + 0.5 * terms["loss_lr"]).item(), rel=1e-6)


def test_style_diversity_gradient_flows_through_the_first_fake_only():
    """StarGAN v2 detaches G(y, s2) in L_sd: the gradient of L_sd is that of d_I(G(y, z), const)."""
    torch.manual_seed(0)
    y, x = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    z, z2 = torch.randn(2, 8), torch.randn(2, 8)
    d_image = {"L1": lambda a, b, _: l1_distance(a, b)}
    config = CONFIGS["ED-H-LR-SD-3"]
    nets = build(size=16, z_dim=8, g_base=4, g_max=16, d_base=8, e_base=4, e_max=16, encoder=True)
    G = nets["G"]

    def grads(loss):
        return torch.autograd.grad(loss, list(G.parameters()), allow_unused=True)
    ours = grads(train.compute_g_loss(nets, config, y, x, z, z2, d_image)["loss_sd"])
    detached = grads(l1_distance(G(y, z), G(y, z2).detach()).mean())
    both = grads(l1_distance(G(y, z), G(y, z2)).mean())
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(ours, detached) if a is not None)
    assert not all(torch.allclose(a, b, atol=1e-7) for a, b in zip(ours, both) if a is not None)


def run_args(*extra, steps=2, seed=0):
    return TINY + ["--config", "ED-LS-LR-2", "--steps", str(steps), "--seed", str(seed), "--augment", *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """ED-LS-LR-2: 4 steps straight; 2 steps (checkpoint kept) then resumed to 4; a same-seed twin of the
    2-step run; another seed; and --no-augment."""
    root = tmp_path_factory.mktemp("nir")
    out = {"straight": train.main(run_args("--out", str(root / "straight"), steps=4))}
    half = train.main(run_args("--out", str(root / "half")))
    shutil.copytree(half, root / "half_at_2")
    out["half_at_2"] = root / "half_at_2"
    out["resumed"] = train.main(run_args("--resume", "--out", str(half), steps=4))
    out["twin"] = train.main(run_args("--out", str(root / "twin")))
    out["seed1"] = train.main(run_args("--out", str(root / "seed1"), seed=1))
    out["no_augment"] = train.main(run_args("--no-augment", "--out", str(root / "no_augment")))
    return out


def g_weights(run):
    return read_checkpoint(run / "checkpoint.pt")["models"]["G"]


def test_train_smoke_writes_the_run_folder(runs):
    run = runs["straight"]
    for name in ("config.json", "log.csv", "loss.png", "checkpoint.pt", "samples/step_0000002.png",
                 "samples/step_0000004.png"):
        assert (run / name).exists(), name
    assert '"config": "ED-LS-LR-2"' in (run / "config.json").read_text()
    log = read_log(run / "log.csv")
    assert log["step"] == [1, 2, 3, 4] and all(math.isnan(v) for v in log["fid"])      # --fid-pairs 0
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 4


def test_resume_continues_exactly(runs):
    """Every network (G, D, E), optimiser, scheduler, the batch order and the augmentation draws."""
    straight, resumed = runs["straight"], runs["resumed"]
    assert_same_checkpoint(straight, resumed)
    png = "samples/step_0000004.png"
    assert (straight / png).read_bytes() == (resumed / png).read_bytes()
    assert read_log(resumed / "log.csv")["loss_G"] == read_log(straight / "log.csv")["loss_G"]


def test_same_seed_same_run_and_another_seed_differs(runs):
    half, twin, seed1 = runs["half_at_2"], runs["twin"], runs["seed1"]
    png = "samples/step_0000002.png"
    assert (half / png).read_bytes() == (twin / png).read_bytes()
    a, b, c = g_weights(half), g_weights(twin), g_weights(seed1)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], c[name]) for name in a)
    assert (half / png).read_bytes() != (seed1 / png).read_bytes()


def test_augmentation_flag_and_preset_defaults(runs, tmp_path, monkeypatch):
    assert train.parse(["--preset", "paper"])[0].augment and not train.parse([])[0].augment
    # the configuration depends on the preset: quick makes faces on a CPU, paper is the thesis's best
    assert train.parse([])[0].config == "ED-LS-P-1" and train.parse(["--preset", "paper"])[0].config == "ED-LS-LR-2"
    assert train.parse(["--config", "Mult-LS"])[0].config == "Mult-LS"
    assert train.parse([])[0].lr_warmup == 0 and train.parse(["--lr-warmup", "1.5"])[0].lr_warmup == 1.5
    a, b = g_weights(runs["twin"]), g_weights(runs["no_augment"])
    assert not all(torch.equal(a[name], b[name]) for name in a)
    calls = []
    real = train.augment_pairs

    def counting(y, x, rng):
        calls.append(len(y))
        return real(y, x, rng)
    monkeypatch.setattr(train, "augment_pairs", counting)
    train.main(run_args("--out", str(tmp_path / "on")))
    assert calls == [4, 4]                                    # once per step, on the whole batch
    train.main(run_args("--no-augment", "--out", str(tmp_path / "off")))
    assert calls == [4, 4]


@pytest.mark.filterwarnings("ignore:FID. singular covariance")     # 4 images, 256 features
def test_fid_is_logged_before_training(tmp_path):
    run = train.main(run_args("--fid-pairs", "4", "--fid-every", "2", "--out", str(tmp_path / "run")))
    log = read_log(run / "log.csv")
    assert log["step"] == [0, 1, 2]
    assert math.isfinite(log["fid"][0]) and log["fid"][0] > 0 and math.isnan(log["loss_G"][0])
    assert math.isnan(log["fid"][1]) and math.isfinite(log["fid"][2])


@pytest.mark.parametrize("name", ["ED-H-LR-SD-1", "ED-H-LR-SD-4"])    # SD-4: D is also d_I inside L_G
def test_algorithm_2_each_step_updates_only_its_own_networks(name, tmp_path, monkeypatch):
    """D changes only in its own optimizer step; the G step neither moves D nor adds to D's gradients,
    and the D step adds nothing to G's (G is frozen there)."""
    models, events = {}, []
    real_build = train.build

    def recording_build(**model_args):
        models.clear()
        models.update(real_build(**model_args))
        return dict(models)
    monkeypatch.setattr(train, "build", recording_build)

    def snapshot(tensors):
        return [None if t is None else t.detach().clone() for t in tensors]

    class WatchingAdam(torch.optim.Adam):
        def step(self, closure=None):
            D, G = models["D"], models["G"]
            mine = {id(p) for group in self.param_groups for p in group["params"]}
            event = dict(is_d=mine == {id(p) for p in D.parameters()},
                         touches_d=bool(mine & {id(p) for p in D.parameters()}),
                         d_before=snapshot(D.parameters()), d_grad=snapshot(p.grad for p in D.parameters()),
                         g_grad=snapshot(p.grad for p in G.parameters()))
            result = super().step(closure)
            event["d_after"] = snapshot(D.parameters())
            events.append(event)
            return result
    monkeypatch.setattr(torch.optim, "Adam", WatchingAdam)
    train.main(TINY + ["--config", name, "--steps", "3", "--out", str(tmp_path / "run")])

    def same(a, b):
        return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
                   for x, y in zip(a, b))
    per_step = 3                                              # D, then G and E
    assert len(events) == 3 * per_step and [e["is_d"] for e in events] == [True, False, False] * 3
    assert not any(e["touches_d"] for e in events if not e["is_d"])
    last_d = last_g_grad = None
    for e in events:
        if e["is_d"]:
            assert not same(e["d_before"], e["d_after"])              # D learns in its own step …
            if last_d is not None:
                assert same(e["d_before"], last_d["d_after"])          # … and nowhere else
            if last_g_grad is None:
                assert all(g is None for g in e["g_grad"])              # no gradient reached G yet
            else:
                assert same(e["g_grad"], last_g_grad)                  # the D step added none to G
            assert all(g is not None for g in e["d_grad"])
            last_d = e
        else:
            assert same(e["d_before"], e["d_after"]) and same(e["d_before"], last_d["d_after"])
            assert same(e["d_grad"], last_d["d_grad"])                  # L_G's backward left D's grads alone
            last_g_grad = e["g_grad"]
    assert same(snapshot(models["D"].parameters()), last_d["d_after"])


# ----------------------------------------------------------------- bad input: one sentence, nothing written

@pytest.mark.parametrize("flags,says", [
    (["--size", "33"], "power of two from 8 up"),
    (["--lr-d", "0"], "--lr-d: must be greater than 0"),
    (["--epochs-fixed", "0", "--epochs-decay", "0"], "0 epochs"),
    (["--epochs-fixed", "-1"], "cannot be negative"),
    (["--fid-pairs", "-1"], "--fid-pairs must be 0 (no FID) or at least 2"),
    (["--lr-warmup", "-1"], "--lr-warmup cannot be negative"),
    (["--faceid-net", "/nowhere/net.pt"], "is not a file"),
])
def test_bad_flags_are_refused_with_one_sentence(flags, says, tmp_path, capsys):
    argv = TINY + flags + ["--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as err:
        train.main(argv)
    assert says in one_sentence(err, capsys)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_a_face_identity_network_of_your_own_is_d_i(tmp_path):
    """--faceid-net FILE: a TorchScript network is the FaceId d_I of L_sd (it used to stop at requires_grad_)."""
    run = train.main(TINY + ["--config", "ED-H-LR-SD-1", "--faceid-net", str(scripted_faceid(tmp_path)),
                             "--steps", "1", "--out", str(tmp_path / "run")])
    assert math.isfinite(read_log(run / "log.csv")["loss_sd"][0])


def test_the_preset_steps_are_the_epoch_schedule_and_come_back_on_resume(tmp_path, capsys):
    """No --steps: K_fixed + K_decay epochs, counted on the data (9 training pairs, batch 4: 2 batches an
    epoch, 0.5 + 1 epochs = 3 steps); the run's config keeps the number, so a resume without --steps is
    refused as finished, and config.json stays byte for byte what it was."""
    out = tmp_path / "run"
    small = TINY + ["--pairs", "10", "--epochs-fixed", "0.5", "--epochs-decay", "1"]
    train.main(small + ["--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == 3 and read_checkpoint(out / "checkpoint.pt")["step"] == 3
    assert read_log(out / "log.csv")["step"] == [1, 2, 3]
    before = (out / "config.json").read_bytes()
    with pytest.raises(SystemExit) as err:
        train.main(["--resume", "--out", str(out)])
    assert "already at step 3" in one_sentence(err, capsys)
    assert (out / "config.json").read_bytes() == before


def test_resume_applies_new_learning_rates_and_refuses_other_changes(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["half_at_2"], run)
    before = (run / "config.json").read_bytes()
    with pytest.raises(SystemExit) as err:                           # another network: refused, nothing changed
        train.main(["--resume", "--out", str(run), "--steps", "3", "--z-dim", "16"])
    assert "--resume refused" in one_sentence(err, capsys) and "--z-dim 16" in str(err.value.code)
    assert (run / "config.json").read_bytes() == before
    capsys.readouterr()
    train.main(["--resume", "--out", str(run), "--steps", "3", "--lr-d", "1e-3", "--lr-e", "2e-4"])
    printed = capsys.readouterr().out
    assert "D's learning rate is now 0.001 (the run used 0.00045)" in printed
    assert "E's learning rate is now 0.0002 (the run used 0.00015)" in printed
    assert "G's learning rate" not in printed
    checkpoint = read_checkpoint(run / "checkpoint.pt")
    assert checkpoint["step"] == 3 and checkpoint["config"]["lr_d"] == 1e-3
    assert checkpoint["optimizers"]["D"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    assert checkpoint["optimizers"]["E"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    assert checkpoint["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(1.5e-4)


# ----------------------------------------------------------------- the shipped networks (nir_cgan/weights/quick)

EVAL_FAST = ["--distance", "synthetic", "--sources", "2", "--device", "cpu"]       # no LPIPS download


@pytest.mark.filterwarnings("ignore:FID. singular covariance")                     # 4 test pairs
def test_eval_without_run_evaluates_the_shipped_networks(runs, tmp_path, monkeypatch, capsys):
    run = runs["straight"]
    metrics, out, _ = evaluate_shipped(nir_eval.main, "nir_cgan", "quick", run, EVAL_FAST, tmp_path, monkeypatch,
                                       capsys)
    assert metrics["config"] == "ED-LS-LR-2" and metrics["step"] == 4 and metrics["test_pairs"] == 4
    assert (out / "figures" / "fig4_2_samples.png").exists()
    measured = nir_eval.main(["--run", str(run), "--out", str(tmp_path / "of_the_run"), *EVAL_FAST])
    assert metrics["fid"] == pytest.approx(measured["fid"]) and metrics["diversity"] == pytest.approx(measured["diversity"])


def test_golden_output_is_deterministic_and_follows_the_networks(runs, tmp_path, monkeypatch):
    assert torch.equal(nir_eval.first_test_sources({"data": None, "pairs": 40}, 32, 4),
                       load_pairs(None, 32, 40)[1]["source"][:4])                   # rendered alone, the same faces
    shipped = ship("nir_cgan", "quick", runs["half_at_2"], tmp_path, monkeypatch)   # G and E
    out = nir_eval.golden_output(shipped)
    assert out.shape == (4 * 32 * 32 + 4 * 8,)                                      # G(y, z) of 4 sources, E of those
    assert torch.equal(out, nir_eval.golden_output(shipped))
    assert torch.equal(out, nir_eval.golden_output(runs["twin"]))                  # the same networks, from a run
    assert not torch.equal(out, nir_eval.golden_output(runs["seed1"]))
