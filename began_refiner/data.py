"""The faces of the paper's experiments (§3), shared by train.py and eval.py.

Training faces are real faces only (§2.1): ``--data``, or the built-in front-facing
``photo`` faces. Held-out real faces (for FID) and the unseen synthetic ``render`` faces
that the refiners are evaluated on come from other items of the same seed, so they are
never trained on.
"""
from common import synthetic
from common.data import load_image_folder, to_float

# Front-facing aligned portraits, as the paper's 20k training faces (§3).
FRONTAL = dict(yaw=(-10, 10), pitch=(-10, 10), roll=(-3, 3))
HELD_OUT = 500_000       # held-out real faces are items 500,000… of seed 0
INPUTS = 900_000         # unseen synthetic inputs are items 900,000… of seed 0


def training_faces(data, size, n):
    """uint8 (N, 3, size, size): the images under ``data`` (CelebA's crop), or n built-in photos."""
    if data:
        return load_image_folder(data, size, crop="celeba").images
    return synthetic.faces(n, size, "photo", seed=0, **FRONTAL)


def held_out_faces(size, n):
    """uint8: n built-in real faces never trained on (the FID reference)."""
    return synthetic.faces(n, size, "photo", seed=0, start=HELD_OUT, **FRONTAL)


def synthetic_inputs(size, n, with_params=False):
    """n unseen ``render``-style faces as float [-1, 1] (the refiner's real job); with their parameters."""
    images, params = synthetic.faces(n, size, "render", seed=0, start=INPUTS, with_params=True, **FRONTAL)
    return (to_float(images), params) if with_params else to_float(images)
