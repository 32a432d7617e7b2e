"""The synthetic-face network: a small CNN that reads the built-in faces' parameters.

Trained on the built-in faces only (``python -m tools.train_synthnet``, weights in
``common/weights/synthnet.pt``), it predicts head pose and gaze in degrees, identity
parameters, beard / glasses / hair style, and the drawing style. It serves three metrics
that need no download:

- ``SyntheticFeatures``: its 256-d penultimate features, an offline FID feature extractor;
- ``pose_gaze_error``: does an output keep its source's head pose and gaze (degrees)?
- ``identity_similarity``: cosine similarity of predicted identity vectors.

Numbers measured with it are comparable only with numbers measured with it, and are
reported under the extractor's name, ``synthetic-v1``.
"""
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.data import to_float
from common.faces import HAIR_STYLES, POSE_GAZE, RANGES, STYLES

WEIGHTS = Path(__file__).parent / "weights" / "synthnet.pt"
ANGLE_SCALE = 30.0                        # pose/gaze targets are degrees / 30
IDENTITY_REGRESSED = ("face_width", "face_length", "skin_tone", "hair_colour", "brow_thickness",
                      "eye_size", "eye_colour", "nose_size", "mouth_width", "smile")
INPUT_SIZE = 64
# Trained on (tools/train_synthnet.py): wider than the datasets' defaults, so that sweeps to ±40° stay inside what it has seen.
TRAIN_RANGES = dict(yaw=(-45, 45), pitch=(-25, 25), roll=(-15, 15), gaze_yaw=(-30, 30), gaze_pitch=(-20, 20))



def _block(c_in, c_out, stride):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SynthNet(nn.Module):
    """64×64 RGB in [−1, 1] → features (256) → heads.

    Shapes: 3×64×64 → 24×64×64 → 32×32×32 → 64×16×16 → 64×16×16 → 128×8×8 → 128×8×8
    → 128×4×4 → flatten 2048 → Linear → 256 features → pose/gaze (5), identity (10),
    beard + glasses (2 logits), hair style (4), style (6). The first layer keeps full
    resolution: gaze moves an iris by only 1–2 pixels at 64×64.
    """

    def __init__(self, width=32, features=256):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _block(3, 24, 1), _block(24, w, 2),                                               # 64×64, 32×32
            _block(w, 2 * w, 2), _block(2 * w, 2 * w, 1),                                    # 16×16
            _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 1),                                # 8×8
            _block(4 * w, 4 * w, 2),                                                          # 4×4
            nn.Flatten(), nn.Linear(4 * w * 16, features), nn.ReLU(inplace=True))
        self.pose_gaze = nn.Linear(features, len(POSE_GAZE))
        self.identity = nn.Linear(features, len(IDENTITY_REGRESSED))
        self.attributes = nn.Linear(features, 2)
        self.hair_style = nn.Linear(features, len(HAIR_STYLES))
        self.style = nn.Linear(features, len(STYLES))

    def features(self, x):
        """(B, 1|3, H, W) in [−1, 1] → (B, 256); resized to 64×64, grayscale repeated.

        The input is taken in float32 (the antialiased resize has no bfloat16 kernel on CPU,
        and a generator under ``--amp`` hands over bfloat16 images)."""
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return self.body(x)

    def forward(self, x):
        h = self.features(x)
        return {"pose_gaze": self.pose_gaze(h), "identity": self.identity(h), "attributes": self.attributes(h),
                "hair_style": self.hair_style(h), "style": self.style(h)}


def targets(params, styles):
    """Training targets from face parameters: angles / 30, identity scaled to [0, 1] by its range."""
    lows = {name: (low, high) for name, low, high in RANGES}
    return {
        "pose_gaze": torch.stack([params[k] for k in POSE_GAZE], 1) / ANGLE_SCALE,
        "identity": torch.stack([(params[k] - lows[k][0]) / (lows[k][1] - lows[k][0]) for k in IDENTITY_REGRESSED], 1),
        "attributes": torch.stack([params["beard"], params["glasses"]], 1),
        "hair_style": params["hair_style"].long(),
        "style": torch.as_tensor([STYLES.index(s) for s in styles]),
    }


def load_synthnet(path=WEIGHTS, device="cpu"):
    """The shipped network in eval mode (weights stored as float16, used as float32)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"synthetic-face network weights not found at {path}; "
                                "retrain them with: python -m tools.train_synthnet")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = SynthNet(**state["config"])
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()})
    return net.to(device).eval()


class SyntheticFeatures(nn.Module):
    """Offline FID features (see common.features for the extractor interface)."""

    name = "synthetic-v1"

    def __init__(self, device="cpu"):
        super().__init__()
        self.net = load_synthnet(device=device)

    def forward(self, x):
        return self.net.features(x)


@torch.no_grad()
def predict(images, net=None, batch_size=256):
    """Predictions for uint8 or [−1, 1] images: pose/gaze in degrees, identity, probabilities."""
    net = net or load_synthnet()
    device = next(net.parameters()).device
    outs = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        outs.append(net(x))
    out = {k: torch.cat([o[k] for o in outs]).cpu() for k in outs[0]}
    out["pose_gaze"] = out["pose_gaze"] * ANGLE_SCALE
    out["attributes"] = out["attributes"].sigmoid()
    return out


def pose_gaze_error(images, params, net=None):
    """Mean absolute error in degrees between the true pose/gaze in ``params`` and the
    network's estimate on ``images``: {"yaw": …, "pitch": …, "roll": …, "gaze_yaw": …, "gaze_pitch": …}."""
    predicted = predict(images, net)["pose_gaze"]
    true = torch.stack([params[k] for k in POSE_GAZE], 1)
    return dict(zip(POSE_GAZE, (predicted - true).abs().mean(0).tolist()))


def identity_similarity(images_a, images_b, net=None):
    """Per-pair cosine similarity of predicted identity vectors (centred on the range middle)."""
    a = predict(images_a, net)["identity"] - 0.5
    b = predict(images_b, net)["identity"] - 0.5
    return F.cosine_similarity(a, b, dim=1)


def loss_fn(out, t, styles):
    """Smooth-L1 on angles and identity (identity not on ``mask``, which has none), BCE on
    beard/glasses, cross-entropy on hair style (not on ``mask``) and on style."""
    has_identity = torch.tensor([s != "mask" for s in styles])
    return (F.smooth_l1_loss(out["pose_gaze"], t["pose_gaze"], beta=0.1)
            + F.smooth_l1_loss(out["identity"][has_identity], t["identity"][has_identity], beta=0.1)
            + F.binary_cross_entropy_with_logits(out["attributes"], t["attributes"])
            + F.cross_entropy(out["hair_style"][has_identity], t["hair_style"][has_identity])
            + F.cross_entropy(out["style"], t["style"]))
