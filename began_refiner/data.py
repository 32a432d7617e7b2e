"""The faces of the paper's experiments (§3), shared by train.py and eval.py.

Training faces are real faces only (§2.1): ``--data``, or the built-in front-facing
``photo`` faces. Held-out real faces (FID's reference) are never trained on: with ``--data``,
the folder's last ``--fid-faces`` images; built in, other items of the same seed. The unseen
synthetic ``render`` faces that the refiners are evaluated on are built in either way (the
synthetic domain is the paper's input, whatever the real domain).
"""
from common import synthetic
from common.data import hold_out, load_image_folder, to_float

# Front-facing aligned portraits, as the paper's 20k training faces (§3).
FRONTAL = dict(yaw=(-10, 10), pitch=(-10, 10), roll=(-3, 3))
HELD_OUT = 500_000       # held-out real faces are items 500,000… of seed 0
INPUTS = 900_000         # unseen synthetic inputs are items 900,000… of seed 0


def training_faces(data, size, n, n_held_out, batch_size):
    """uint8 (N, 3, size, size): a folder's images but its last ``n_held_out`` (``held_out_faces``),
    or ``n`` built-in photos."""
    if data:
        return hold_out(load_image_folder(data, size).images, n_held_out, batch_size, data)[0]
    return synthetic.faces(n, size, "photo", seed=0, **FRONTAL)


def held_out_faces(data, size, n):
    """uint8: ``n`` real faces never trained on (FID's reference): a folder's last ``n`` images, or
    built-in photos of other items than the training faces."""
    if data:
        return load_image_folder(data, size, last=n).images
    return synthetic.faces(n, size, "photo", seed=0, start=HELD_OUT, **FRONTAL)


def synthetic_inputs(size, n, with_params=False):
    """n unseen ``render``-style faces as float [-1, 1] (the refiner's real job); with their parameters."""
    images, params = synthetic.faces(n, size, "render", seed=0, start=INPUTS, with_params=True, **FRONTAL)
    return (to_float(images), params) if with_params else to_float(images)
