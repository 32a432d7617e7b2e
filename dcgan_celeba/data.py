"""The faces and the noise of the paper's experiments (§4), shared by train.py and eval.py.

Training faces are ``--data`` (CelebA, §4.1) or the built-in ``photo`` faces. Real faces
never trained on, for FID and Table 1: with ``--data``, the folder's last ``--fid-faces``
images; built in, other items of the same seed, as are the sketch inputs of the sketch →
face figure with the photos they were drawn from. All three models draw the same noise,
z ~ U(−1, 1)^z_dim, so eval.py can feed them the same z (Fig. 5(b)).
"""
import torch

from common import synthetic
from common.data import hold_out, load_image_folder, to_float

HELD_OUT = 500_000       # held-out real faces for FID and eval are items 500,000… of seed 0
SKETCHES = 700_000       # sketch inputs (and the photos they were drawn from) are items 700,000… of seed 0
FIXED_NOISE_SEED = 1234  # the fixed noise of the samples and FID during training


def training_faces(data, size, n, n_held_out, batch_size):
    """uint8 (N, 3, size, size): a folder's images but its last ``n_held_out`` (``held_out_faces``),
    or ``n`` built-in photos."""
    if data:
        return hold_out(load_image_folder(data, size).images, n_held_out, batch_size, data)[0]
    return synthetic.faces(n, size, "photo", seed=0)


def held_out_faces(data, size, n):
    """uint8: ``n`` real faces never trained on (FID's reference): a folder's last ``n`` images, or
    built-in photos of other items than the training faces."""
    if data:
        return load_image_folder(data, size, last=n).images
    return synthetic.faces(n, size, "photo", seed=0, start=HELD_OUT)


def sketch_inputs(size, n):
    """n built-in sketches as float [−1, 1], their face parameters, and the photos they were drawn from."""
    sketches, params = synthetic.faces(n, size, "sketch", seed=0, start=SKETCHES, with_params=True)
    originals = synthetic.faces(n, size, "photo", seed=0, start=SKETCHES)
    return to_float(sketches), params, to_float(originals)


def noise(n, z_dim, device, generator=None):
    """z ~ U(−1, 1)^z_dim, for all three models (DCGAN Fig. 1 and BEGAN both draw uniform noise)."""
    return torch.rand(n, z_dim, device=device, generator=generator) * 2 - 1
