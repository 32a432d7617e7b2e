"""The faces of the experiments (§VIII, §XI), shared by train.py and eval.py.

Two *unpaired* training sets (§VII): clean HR faces, and real LR faces of other people.
``--data-high`` / ``--data-low`` are folders of your own: the last ``held_out_count(--fid-faces)``
images of each (in sorted file order) are held out, never trained on; the samples, the FID in
log.csv and eval.py measure on them. The built-in stand-ins come from ``common.synthetic``'s
``sr_unpaired`` faces: 64×64 ``photo`` faces, and 16×16 faces of other people put through a
hidden degradation (blur, resampling, colour shift, noise, JPEG) that no model ever sees;
training faces are drawn with seed 0, held-out test faces with seed 1.
"""
import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from common import synthetic
from common.data import DataError, InMemoryBatches, load_image_folder, to_float
from common.device import outputs
from common.metrics import fid, psnr
from common.synthnet import SyntheticFeatures

TRAIN_SEED = 0      # built-in training faces: seed 0
TEST_SEED = 1       # held-out HR and real LR test faces: seed 1
SAMPLE_FACES = 8    # faces per row of samples/step_*.png


def built_in_high(n, size, seed):
    """uint8 n×3×size×size clean HR faces (= sr_unpaired's HR faces)."""
    return synthetic.faces(n, size, "photo", seed=seed)


def built_in_low(n, size, seed):
    """uint8 n×3×(size/4)² real LR faces (= sr_unpaired's): other people (items from LR_STREAM on)
    through the hidden degradation."""
    people = synthetic.faces(n, size, "photo", seed=seed, start=synthetic.LR_STREAM)
    return synthetic.degrade(people, seed, synthetic.LR_STREAM, size // 4)


BUILT_IN = {"HR": built_in_high, "real LR": built_in_low}


def side(kind, size):
    """The image side of ``kind``: HR faces are size×size, real LR faces size/4 (16 for 64)."""
    return size if kind == "HR" else size // 4


def held_out_count(fid_faces):
    """How many images of a --data-high / --data-low folder are held out: the --fid-faces that FID
    measures on, and at least one row of samples."""
    return max(fid_faces, SAMPLE_FACES)


def training_set(kind, folder, size, n, held, batch_size):
    """uint8 training faces of ``kind`` ("HR" or "real LR"): every image of ``folder`` but its last
    ``held`` (split by position, as ``common.data.hold_out`` splits the other papers' folders), or n
    built-in faces (seed 0)."""
    if not folder:
        return BUILT_IN[kind](n, size, TRAIN_SEED)
    images = load_image_folder(folder, side(kind, size)).images
    if len(images) < held + batch_size:
        raise DataError(f"{folder} holds {len(images)} images: too few to hold out its last {held} (samples, FID "
                        f"and eval.py measure on them: the larger of --fid-faces and {SAMPLE_FACES}) and still fill "
                        f"a batch of {batch_size}; give more images or a smaller --batch-size.")
    return images[:-held]


def held_out_set(kind, folder, size, n):
    """uint8: n faces of ``kind`` never trained on: the last n images of ``folder`` (n at most the
    number it held out), or n built-in test faces (seed 1)."""
    if not folder:
        return BUILT_IN[kind](n, size, TEST_SEED)
    return load_image_folder(folder, side(kind, size), last=n).images


def bicubic_down(high, factor=4):
    """The classic synthetic LR image: bicubic (antialiased) downsampling by 4, the training input of
    Table 2's "Low-to-High trained on bicubic pairs" and Table 2(b)'s PSNR input."""
    return F.interpolate(high, scale_factor=1 / factor, mode="bicubic", antialias=True,
                         align_corners=False).clamp(-1, 1)


class Faces(NamedTuple):
    high: torch.Tensor               # uint8 HR training faces
    low: Optional[torch.Tensor]      # uint8 real LR training faces (None where the stage needs none)
    test_high: torch.Tensor          # uint8 held-out HR faces: samples and FID
    test_low: torch.Tensor           # uint8 held-out real LR faces


def load_faces(args, low=True):
    """The training and held-out faces of a stage (``low``: with real LR training faces, for the
    stages with High-to-Low's critic), checked to hold at least one batch each."""
    held = held_out_count(args.fid_faces)
    faces = Faces(training_set("HR", args.data_high, args.size, args.high_faces, held, args.batch_size),
                  training_set("real LR", args.data_low, args.size, args.low_faces, held, args.batch_size)
                  if low else None,
                  held_out_set("HR", args.data_high, args.size, held),
                  held_out_set("real LR", args.data_low, args.size, held))
    for name, images in (("HR", faces.high), ("real LR", faces.low)):
        if images is not None and len(images) < args.batch_size:
            raise DataError(f"--batch-size {args.batch_size} does not fit the {len(images)} {name} training "
                            f"face{'s' * (len(images) != 1)}: use a batch of at most {len(images)}, or more faces.")
    return faces


def augment(images, geometric):
    """§X augmentation, per image: random horizontal flip; with ``geometric`` also scale ∈ [0.9, 1.1],
    rotation ∈ [−10°, 10°] and colour jitter (brightness ±0.1, contrast and saturation ×[0.9, 1.1]).

    Real LR faces get the flip only: resampling a 16×16 image would add blur of our own on top
    of the degradation that High-to-Low must learn from them.
    """
    n, dev = len(images), images.device
    flip = (torch.rand(n, device=dev) < 0.5).float() * 2 - 1                  # −1 mirrors x
    if not geometric:
        return torch.where(flip.view(-1, 1, 1, 1) < 0, images.flip(3), images)
    angle = (torch.rand(n, device=dev) * 20 - 10) * math.pi / 180
    scale = torch.rand(n, device=dev) * 0.2 + 0.9
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin * flip, cos, torch.zeros_like(cos)], 1)], 1)   # n×2×3
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def per_image():
        """One uniform number in [0, 1) per image."""
        return torch.rand(n, 1, 1, 1, device=dev)

    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * (0.9 + 0.2 * per_image())                         # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * (0.9 + 0.2 * per_image()) + (per_image() * 0.2 - 0.1)   # contrast, brightness
    return x.clamp(-1, 1)


class Batches:
    """A stage's training data (§X): augmented HR faces, augmented real LR faces (``low``: for the stages
    with High-to-Low's critic), fresh noise z ~ N(0, I); in channels_last layout with --channels-last.
    Resumable: ``state_dict`` holds the batch orders."""

    def __init__(self, faces, args, device, low=True):
        self.high = InMemoryBatches(faces.high, batch_size=args.batch_size, device=device, seed=args.seed,
                                    channels_last=args.channels_last)
        self.low = (InMemoryBatches(faces.low, batch_size=args.batch_size, device=device, seed=args.seed + 1,
                                    channels_last=args.channels_last) if low else None)
        self.augment, self.z_dim, self.device = not args.no_augment, args.z_dim, device

    def next_high(self):
        x = next(self.high)
        return augment(x, geometric=True) if self.augment else x

    def next_low(self):
        x = next(self.low)
        return augment(x, geometric=False) if self.augment else x

    def noise(self, n):
        return torch.randn(n, self.z_dim, device=self.device)

    def state_dict(self):
        return {"high": self.high.state_dict(), **({"low": self.low.state_dict()} if self.low else {})}

    def load_state_dict(self, state):
        self.high.load_state_dict(state["high"])
        if self.low:
            self.low.load_state_dict(state["low"])


class HeldOut:
    """The held-out faces (never trained on) and fixed noise of a stage's samples and of the FID in
    log.csv: High-to-Low's degradations of held-out HR faces, Low-to-High's super-resolutions of
    held-out real LR faces, as eval.py sees them (``common.device.outputs``)."""

    def __init__(self, faces, args, device, amp):
        self.high, self.low = to_float(faces.test_high).to(device), to_float(faces.test_low).to(device)
        self.z = torch.randn(len(self.high), args.z_dim, generator=torch.Generator().manual_seed(args.seed)).to(device)
        self.n, self.device, self.amp = args.fid_faces, device, amp
        self.extractor = SyntheticFeatures(device) if self.n else None

    def degraded(self, H2L, n):
        """High-to-Low(the first n held-out HR faces, their fixed noise)."""
        return outputs(H2L, self.high[:n], self.z[:n], device=self.device, amp=self.amp)

    def super_resolved(self, L2H, n):
        """Low-to-High(the first n held-out real LR faces)."""
        return outputs(L2H, self.low[:n], device=self.device, amp=self.amp)

    def fid_degraded(self, H2L):
        """Is the learned degradation real? FID of High-to-Low(held-out HR) against held-out real LR faces."""
        return fid(self.degraded(H2L, self.n), self.low[:self.n], self.extractor)

    def fid_super_resolved(self, L2H):
        """Table 2(a): FID of super-resolved held-out real LR faces against held-out HR faces."""
        return fid(self.super_resolved(L2H, self.n), self.high[:self.n], self.extractor)

    def psnr_db(self, L2H):
        """Table 2(b): PSNR (dB) of Low-to-High on bicubic-downsampled held-out HR faces, against them."""
        high = self.high[:self.n]
        return psnr(outputs(L2H, bicubic_down(high), device=self.device, amp=self.amp), high).mean()
