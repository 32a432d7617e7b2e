"""The loss networks of style transfer (§IV.A): VGG-19 with ImageNet weights, and a random VGG-19 for offline use.

§IV.A computes its content and style losses on the intermediate layers of VGG-19, "a pretrained image
classification network". Its ImageNet weights are a 548 MB download. Without them we use the loss network
of K. He, Y. Wang and J. Hopcroft, "A powerful generative model using random weights for the deep image
representation" (NeurIPS 2016): the same architecture with random weights, each layer rescaled so that its
activations are of unit size. Eqs. 2–5 are left as they are; only the features they are computed on change.

Both networks return, for ``forward(x, names)``, the rectified responses of the named layers (Gatys et al.)
for an image x in [0, 1], and carry the layers that ``stylize.py`` uses (``content_layer``, ``style_layers``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import VGG19_Weights

from common.features import torchvision_weights

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")     # Gatys et al. §2
VGG19_CONVS = [(f"conv{b}_{c}", width) for b, width, convs in [(1, 64, 2), (2, 128, 2), (3, 256, 4), (4, 512, 4),
                                                                   (5, 512, 4)] for c in range(1, convs + 1)]
BLOCK_ENDS = ("conv1_2", "conv2_2", "conv3_4", "conv4_4")                   # a 2×2 pooling follows each
IMAGENET_MEAN = (0.485, 0.456, 0.406)                                      # torchvision's VGG input normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG-19's convolutional part up to conv5_1, with torchvision's layer indices.

    Blocks of 3×3 convolutions (64, 64 | 128, 128 | 256 ×4 | 512 ×4 | 512), each followed by a ReLU,
    a 2×2 pooling after each block. ``width`` divides every width (the random network uses 4);
    ``pool`` is "max" (torchvision's VGG) or "avg" (Gatys et al.'s suggestion for synthesis).
    """

    def __init__(self, width=1, pool="max", content_layer="conv4_2", style_layers=STYLE_LAYERS):
        super().__init__()
        self.content_layer, self.style_layers = content_layer, tuple(style_layers)
        layers, self.index, c_in = [], {}, 3
        for name, channels in VGG19_CONVS:
            layers += [nn.Conv2d(c_in, channels // width, 3, padding=1), nn.ReLU()]
            self.index[name] = len(layers) - 1                      # the ReLU after the convolution
            c_in = channels // width
            if name == STYLE_LAYERS[-1]:
                break
            if name in BLOCK_ENDS:
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x, names):
        out, x = {}, (x - self.mean) / self.std
        last = max(self.index[n] for n in names)
        for i, layer in enumerate(self.layers[:last + 1]):
            x = layer(x)
            out.update({n: x for n in names if self.index[n] == i})
        return out


def imagenet_vgg19():
    """VGG19Features with torchvision's ImageNet weights (§IV.A), max pooling, content at conv4_2 (Gatys et al.).

    Weights that are not in torch's cache and cannot be downloaded raise ``WeightsUnavailable``: one
    sentence naming the file, the folder to put it in, and ``--weights random``.
    """
    net = VGG19Features()
    state = torchvision_weights(VGG19_Weights.IMAGENET1K_V1, "ImageNet VGG-19",
                                "--weights random (a random VGG-19, offline)")
    kept = len(net.layers)
    net.layers.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items()
                                if k.startswith("features.") and int(k.split(".")[1]) < kept})
    return net.eval().requires_grad_(False)


@torch.no_grad()
def random_vgg19(calibration, seed=0, width=4):
    """He et al.'s random VGG-19: Gaussian weights, zero biases, each layer rescaled to unit-size activations.

    In forward order, each convolution's weights (its bias is zero) are divided by the root mean square of its
    rectified output on ``calibration`` (a batch of images in [0, 1]: the content and style images), so
    every layer's features, and so every E_l of eq. 3, are of comparable size and eq. 5's equal weights
    mean what they say. Seeded: the same seed and images give the same network.

    Three choices of ours (style_anime/README.md): widths divided by ``width`` (4: 16 … 128
    maps, ~1/16 of the cost, so that the built-in examples run on a CPU in minutes); average pooling
    (Gatys et al. 2016 §2: smoother gradients than max pooling); and the content layer conv3_1, as
    conv4_2 of a random network kept less of the content image in our runs.
    """
    net = VGG19Features(width, pool="avg", content_layer="conv3_1")
    generator = torch.Generator().manual_seed(seed)
    x = (calibration - net.mean) / net.std
    for layer in net.layers:
        if isinstance(layer, nn.Conv2d):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
            layer.bias.zero_()
            size = F.relu(layer(x)).pow(2).mean().sqrt()            # the activations' size before rescaling
            layer.weight /= size
        x = layer(x)
    return net.eval().requires_grad_(False)
