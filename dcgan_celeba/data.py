"""The faces and the noise of the paper's experiments (§4), shared by train.py and eval.py.

Training faces are ``--data`` (CelebA, §4.1) or the built-in ``photo`` faces. Faces never
trained on come from other items of the same seed: held-out real faces for FID and
Table 1, and the sketch inputs of the sketch → face figure with the photos they were
drawn from. All three models draw the same noise, z ~ U(−1, 1)^z_dim, so eval.py can feed
them the same z (Fig. 5(b)).
"""
import torch

from common import synthetic
from common.data import load_image_folder, to_float

HELD_OUT = 500_000       # held-out real faces for FID and eval are items 500,000… of seed 0
SKETCHES = 700_000       # sketch inputs (and the photos they were drawn from) are items 700,000… of seed 0
FIXED_NOISE_SEED = 1234  # the fixed noise of the samples and FID during training


def training_faces(data, size, n):
    """uint8 (N, 3, size, size): the images under ``data`` (CelebA's crop), or n built-in photos."""
    if data:
        return load_image_folder(data, size, crop="celeba").images
    return synthetic.faces(n, size, "photo", seed=0)


def held_out_faces(size, n):
    """uint8: n built-in photos never trained on (the FID reference during training)."""
    return synthetic.faces(n, size, "photo", seed=0, start=HELD_OUT)


def reference_faces(data, size, n):
    """Real faces for eval.py's FID and Table 1: held-out built-in photos, or the first n images of ``data``."""
    if data is None:
        return held_out_faces(size, n)
    return load_image_folder(data, size, crop="celeba", limit=n).images


def sketch_inputs(size, n):
    """n built-in sketches as float [−1, 1], their face parameters, and the photos they were drawn from."""
    sketches, params = synthetic.faces(n, size, "sketch", seed=0, start=SKETCHES, with_params=True)
    originals = synthetic.faces(n, size, "photo", seed=0, start=SKETCHES)
    return to_float(sketches), params, to_float(originals)


def noise(n, z_dim, device, generator=None):
    """z ~ U(−1, 1)^z_dim, for all three models (DCGAN Fig. 1 and BEGAN both draw uniform noise)."""
    return torch.rand(n, z_dim, device=device, generator=generator) * 2 - 1
