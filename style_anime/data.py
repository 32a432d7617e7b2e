"""The anime faces of the DCGAN experiment (§IV.D–E), shared by train.py and eval.py.

Training faces are ``--data`` (the Kaggle anime-faces folder, centre-cropped) or the
built-in ``anime`` faces. The held-out faces that FID is measured against are never
trained on: with ``--data``, its last ``--fid-faces`` images; built in, other items of the
same seed.
"""
from common import synthetic
from common.data import DataError, load_image_folder

HELD_OUT = 500_000       # held-out built-in anime faces for FID are items 500,000… of seed 0


def load_faces(data, size, train_faces, fid_faces, batch_size):
    """(training faces, held-out faces), uint8 (N, 3, size, size).

    ``data``: every image but the last ``fid_faces`` for training, the last ones held out.
    Built in: ``train_faces`` anime faces and ``fid_faces`` held-out ones.
    """
    if data:
        images = load_image_folder(data, size, crop="center").images
        if len(images) <= fid_faces + batch_size:
            raise DataError(f"{data} holds {len(images)} images: too few to hold out --fid-faces "
                            f"{fid_faces} and still fill a batch of {batch_size}")
        return images[:-fid_faces], images[-fid_faces:]
    return (synthetic.faces(train_faces, size, "anime", seed=0),
            synthetic.faces(fid_faces, size, "anime", seed=0, start=HELD_OUT))
