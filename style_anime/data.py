"""The anime faces of the DCGAN experiment (§IV.D–E), shared by train.py and eval.py.

Training faces are ``--data`` (the Kaggle anime-faces folder, centre-cropped) or the
built-in ``anime`` faces. The held-out faces that FID is measured against are never
trained on: with ``--data``, its last ``--fid-faces`` images; built in, other items of the
same seed.
"""
from common import synthetic
from common.data import hold_out, load_image_folder

HELD_OUT = 500_000       # held-out built-in anime faces for FID are items 500,000… of seed 0


def load_faces(data, size, train_faces, fid_faces, batch_size):
    """(training faces, held-out faces), uint8 (N, 3, size, size).

    ``data``: every image but the last ``fid_faces`` for training, the last ones held out.
    Built in: ``train_faces`` anime faces and ``fid_faces`` held-out ones.
    """
    if data:
        return hold_out(load_image_folder(data, size).images, fid_faces, batch_size, data)
    return (synthetic.faces(train_faces, size, "anime", seed=0),
            synthetic.faces(fid_faces, size, "anime", seed=0, start=HELD_OUT))
