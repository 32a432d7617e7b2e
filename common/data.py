"""Image data in memory: conversions, folder loaders, batches.

Every dataset in this repo lives in memory as a ``uint8`` tensor of shape
(N, C, H, W). Models see ``float32`` in [-1, 1]; the two conversions below are
the only place where that mapping is written.

Why uint8 in memory: it is 4x smaller than float32 (202,599 CelebA faces at
64x64 take 2.5 GB), it is what image files hold anyway, and a whole dataset can
sit on the GPU so that a training step never waits for the disk or for a host to
device copy. Decoding, cropping and resizing happen once, when a folder is
loaded; ``InMemoryBatches`` then serves shuffled batches and converts only the
batch to float, on the device.

- ``load_image_folder``   a folder of images (flat or nested) -> ``ImageSet``
- ``load_paired_folders`` ``source/`` and ``target/`` matched by file name -> ``PairSet``
- ``InMemoryBatches``     endless random batches, exactly resumable from a checkpoint

Bad input raises ``DataError`` with one sentence saying what is wrong and what to do.
"""
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from common import distributed

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
CROPS = ("auto", "center", "celeba", "none")
CELEBA_FRAME = (178, 218)   # width, height of every img_align_celeba image
PROGRESS_BAR_FROM = 2000  # files; fewer load in a moment and need no bar


class DataError(ValueError):
    """The data given cannot be used; the message says why and what to do."""


class ImageSet(NamedTuple):
    images: torch.Tensor  # uint8 (N, C, size, size)
    names: list  # file paths relative to the folder, "/"-separated, sorted


class PairSet(NamedTuple):
    source: torch.Tensor  # uint8 (N, source_channels, size, size)
    target: torch.Tensor  # uint8 (N, target_channels, size, size)
    names: list  # shared file stems (relative, without extension), sorted


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


# ---------------------------------------------------------------- folder loaders


def load_image_folder(path, size, crop="auto", channels=3, limit=None, last=None) -> ImageSet:
    """Load every image under ``path`` (searched recursively) as uint8 (N, C, size, size).

    Files are taken in sorted path order, so item i is the same on every machine;
    ``limit`` keeps the first ``limit`` of them, ``last`` the last ``last`` (the held-out
    images of ``hold_out``). Extensions: jpg, jpeg, png, webp,
    bmp, in any case. ``crop`` is one of:

    - ``"center"``: the largest centred square, then resize (what the pytorch
      DCGAN example does with ``Resize`` + ``CenterCrop``);
    - ``"celeba"``: the 128x128 face box of the 178x218 ``img_align_celeba`` frame
      used by BEGAN (see ``_crop_box``), then resize;
    - ``"auto"``: ``"celeba"`` for images of exactly CelebA's 178x218 frame, ``"center"``
      for every other image (your own faces, anime faces);
    - ``"none"``: resize the whole image to size x size (non-square images are squeezed).

    Images are never upscaled: if the cropped region is smaller than ``size``, a
    ``DataError`` suggests the largest power-of-two ``--size`` that fits (every network
    in this repository takes power-of-two sizes). Files that cannot be read are
    skipped with one warning that counts them. Colour modes are converted as in
    ``_convert_mode``.
    """
    root = _existing_folder(path)
    _check_options(size, crop, channels)
    names = _image_names(root)
    if not names:
        raise DataError(f"no images (.jpg, .jpeg, .png, .webp, .bmp) found in {root}; "
                        "point --data at a folder of images")
    for count in (limit, last):
        if count is not None and count < 1:
            raise DataError(f"limit and last must be at least 1, got {count}")
    names = names[:limit]
    if last is not None:
        names = names[-last:]
    images, readable = _read_images(root, names, size, crop, channels)
    _report_unreadable(root, names, readable)
    keep = [i for i, ok in enumerate(readable) if ok]
    return ImageSet(_select(images, keep), [names[i] for i in keep])


def load_paired_folders(path, size, crop="auto", source_channels=3,
                        target_channels=3) -> PairSet:
    """Load image pairs from ``path/source/`` and ``path/target/``, matched by file stem.

    ``source/a.png`` pairs with ``target/a.jpg`` (in nested folders the stem
    includes the sub-folder: ``source/x/a.png`` pairs with ``target/x/a.jpg``).
    Files without a partner, and pairs where either file cannot be read, are left
    out with a warning. Both sides are cropped and resized as in
    ``load_image_folder``.
    """
    root = _existing_folder(path)
    _check_options(size, crop, source_channels)
    _check_options(size, crop, target_channels)
    sides = {}
    for side in ("source", "target"):
        folder = root / side
        if not folder.is_dir():
            raise DataError(f"{root} has no '{side}/' folder; paired data must be laid out as "
                            f"{root}/source/NAME.png and {root}/target/NAME.png")
        sides[side] = _names_by_stem(folder)

    stems = sorted(sides["source"].keys() & sides["target"].keys())
    for side, other in (("source", "target"), ("target", "source")):
        alone = sorted(sides[side].keys() - sides[other].keys())
        if alone:
            warnings.warn(f"left out {len(alone)} files in {root / side} with no partner of the "
                          f"same name in {other}/ (first: {', '.join(alone[:3])})", stacklevel=2)
    if not stems:
        raise DataError(f"no file name in {root}/source/ matches one in {root}/target/; pairs "
                        "are matched by name without extension (source/a.png with target/a.jpg)")

    loaded = {}
    for side, channels in (("source", source_channels), ("target", target_channels)):
        names = [sides[side][stem] for stem in stems]
        loaded[side] = _read_images(root / side, names, size, crop, channels)
        _report_unreadable(root / side, names, loaded[side][1])
    keep = [i for i in range(len(stems)) if loaded["source"][1][i] and loaded["target"][1][i]]
    if not keep:
        raise DataError(f"no pair in {root} has both files readable; check the images")
    return PairSet(_select(loaded["source"][0], keep), _select(loaded["target"][0], keep),
                   [stems[i] for i in keep])


def _existing_folder(path) -> Path:
    root = Path(path).expanduser()
    if root.is_file():
        raise DataError(f"--data {root} is a file, not a folder: give the folder that holds the images (e.g. "
                        f"--data {root.parent}), or leave --data out to use the built-in synthetic faces")
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; check --data "
                        "(or leave it out to use the built-in synthetic faces)")
    return root


def _check_options(size, crop, channels):
    if crop not in CROPS:
        raise DataError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if size < 1:
        raise DataError(f"size must be a positive number of pixels, got {size}")


def _image_names(folder: Path) -> list:
    """Sorted relative paths ("/"-separated) of the image files under ``folder``."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _names_by_stem(folder: Path) -> dict:
    """{relative path without extension: relative path} for the images under ``folder``."""
    by_stem = {}
    for name in _image_names(folder):
        stem = name.rsplit(".", 1)[0]
        if stem in by_stem:
            raise DataError(f"{folder} holds two images named {stem!r} ({by_stem[stem]} and "
                            f"{name}); keep one, since pairs are matched by name")
        by_stem[stem] = name
    return by_stem


def _read_images(folder: Path, names, size, crop, channels):
    """Decode ``names`` in a thread pool into uint8 (N, channels, size, size).

    Returns the images and a list saying which files could be read (unreadable
    slots are left as zeros). Raises ``DataError`` if any image is too small.
    PIL releases the GIL while decoding and resizing, so threads run in parallel.
    """
    images = torch.zeros(len(names), channels, size, size, dtype=torch.uint8)
    readable = [False] * len(names)
    too_small = []  # shorter side of the cropped region, one per too-small image

    def read(name):
        try:
            with Image.open(folder / name) as image:
                image = _convert_mode(ImageOps.exif_transpose(image), channels)
        except Exception:  # any decoder error means "cannot be read"; counted below
            return None
        box = _crop_box(image.width, image.height, crop)
        side = min(box[2] - box[0], box[3] - box[1])
        if side < size:
            return side
        return np.array(image.resize((size, size), Image.Resampling.LANCZOS, box=box))

    with ThreadPoolExecutor() as pool:
        results = tqdm(pool.map(read, names), total=len(names), unit="img",
                       desc=f"loading {folder}", disable=len(names) <= PROGRESS_BAR_FROM)
        for i, result in enumerate(results):
            if isinstance(result, np.ndarray):
                pixels = torch.from_numpy(result)
                images[i] = pixels.permute(2, 0, 1) if channels == 3 else pixels[None]
                readable[i] = True
            elif result is not None:
                too_small.append(result)

    if too_small:
        smallest = int(min(too_small))
        fits = 2 ** int(math.log2(smallest)) if smallest >= 1 else 0
        advice = f"use --size {fits} (the largest power of two that fits)" if fits >= 8 else "use larger images"
        raise DataError(f"{len(too_small)} of {len(names)} images in {folder} are smaller than "
                        f"{size}x{size} after the '{crop}' crop (smallest: {smallest} px); "
                        f"{advice}, or remove the small images")
    return images, readable


def _convert_mode(image: Image.Image, channels) -> Image.Image:
    """Any PIL image -> mode "RGB" (channels=3) or "L" (channels=1).

    - 16-bit grayscale ("I;16", "I;16B", and "I", which older PIL uses for 16-bit
      PNGs) is scaled to 8 bit by dividing by 257 (65535 -> 255, 32768 -> 128);
      a plain ``convert`` would clip everything above 255 to white.
    - Transparent images (RGBA, LA, PA, or a palette/colour key with a transparent
      entry) are composited onto white, so transparent backgrounds do not turn black.
    - Everything else (L, P, 1, CMYK, YCbCr, ...) goes through ``Image.convert``.
    """
    if image.mode.startswith("I"):
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
        image = Image.fromarray(np.rint(pixels / 257).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return image.convert("RGB" if channels == 3 else "L")


def _crop_box(width, height, crop):
    """(left, top, right, bottom) of the region to keep, in pixels (may be fractional)."""
    if crop == "auto":
        crop = "celeba" if (width, height) == CELEBA_FRAME else "center"
    if crop == "center":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return (left, top, left + side, top + side)
    if crop == "celeba":
        # carpedm20/BEGAN-tensorflow, data_loader.py:
        #   tf.image.crop_to_bounding_box(queue, 50, 25, 128, 128)
        # i.e. rows 50..177, columns 25..152 of the 178x218 img_align_celeba image:
        # centred left-right, 50 px from the top, so the box holds the face from
        # brows to chin. Other image sizes get the same box relative to their size.
        return (25 * width / 178, 50 * height / 218, 153 * width / 178, 178 * height / 218)
    return (0, 0, width, height)


def _report_unreadable(folder: Path, names, readable):
    """Warn once, with a count, about files that could not be read; error if none could."""
    bad = [name for name, ok in zip(names, readable) if not ok]
    if len(bad) == len(names):
        raise DataError(f"none of the {len(names)} image files in {folder} could be read "
                        f"(first: {bad[0]}); check that they are valid images")
    if bad:
        warnings.warn(f"skipped {len(bad)} of {len(names)} files in {folder} that could not "
                      f"be read (first: {bad[0]})", stacklevel=3)


def _select(images: torch.Tensor, keep) -> torch.Tensor:
    """``images[keep]``, without a copy when nothing was dropped."""
    return images if len(keep) == len(images) else images[keep]


def hold_out(images: torch.Tensor, n: int, batch_size: int, where) -> tuple:
    """``(training images, held-out images)``: the last ``n`` images of a folder are held out, never
    trained on, so that FID compares generated faces with real faces the networks never saw. The
    split is by position (files in sorted order), so train.py and eval.py make the same one."""
    if len(images) < n + batch_size:
        raise DataError(f"{where} holds {len(images)} images: too few to hold out {n} for FID (--fid-faces) "
                        f"and still fill a batch of {batch_size}; give more images or a smaller --fid-faces")
    return images[:len(images) - n], images[len(images) - n:]


# ---------------------------------------------------------------- batches


def _share(batch_size: int) -> slice:
    """This process's part of a batch of ``batch_size`` split over all processes: equal shares, or where
    the size does not divide, the first ``batch_size % N`` processes take one image more (one line says so)."""
    processes, me = distributed.world(), distributed.rank()
    if batch_size < processes:
        raise DataError(f"--batch-size {batch_size} gives less than one image to each of {processes} processes "
                        f"(it is the batch of all of them together): give at least {processes}")
    share, extra = divmod(batch_size, processes)
    if extra and me == 0:
        sizes = " + ".join(str(share + (r < extra)) for r in range(processes))
        print(f"--batch-size {batch_size} over {processes} processes: {sizes} images a step (each process averages "
              f"its own losses, so an image of a smaller share weighs a little more; a multiple of {processes} "
              f"splits evenly)")
    start = me * share + min(me, extra)
    return slice(start, start + share + (me < extra))


class InMemoryBatches:
    """Endless random batches from uint8 tensors of equal length, as float [-1, 1].

    ``batches = InMemoryBatches(images, targets, batch_size=25, device="cuda", seed=0)``;
    ``x, y = next(batches)``. With one tensor, ``next`` returns one tensor.

    Each epoch visits every item once in a fresh random order drawn from the
    object's own ``torch.Generator`` (so the order depends only on ``seed``); the
    incomplete last batch is dropped. The uint8 data is moved to ``device`` once,
    here, so a step only indexes it and converts the batch to float on the device.
    ``state_dict`` / ``load_state_dict`` save and restore the position exactly, so
    a resumed run sees the same batches as one that never stopped.

    Under torchrun, ``batch_size`` is the batch of all N processes together: every process
    draws the same order and returns its own ``batch_size / N`` slice of each batch
    (``common.distributed``), so the order and the position mean the same for any N.
    """

    def __init__(self, *tensors, batch_size, device="cpu", seed=0, channels_last=False):
        if not tensors:
            raise DataError("InMemoryBatches needs at least one image tensor")
        n = len(tensors[0])
        for t in tensors:
            if t.dtype != torch.uint8 or t.dim() != 4:
                raise DataError(f"InMemoryBatches expects uint8 (N, C, H, W) tensors, got "
                                f"{t.dtype} of shape {tuple(t.shape)}")
            if len(t) != n:
                raise DataError(f"InMemoryBatches needs tensors of equal length (pairs), "
                                f"got {[len(t) for t in tensors]}")
        if not 1 <= batch_size <= n:
            raise DataError(f"batch size {batch_size} does not fit a dataset of {n} images; "
                            f"use --batch-size between 1 and {n}")
        self.mine = _share(batch_size)                              # this process's part of every batch
        self.device = torch.device(device)
        self.tensors = [t.to(self.device) for t in tensors]
        self.batch_size = batch_size
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0  # epochs completed so far
        self.position = 0  # index into the permutation of the next batch
        self.permutation = self._shuffle()

    def _shuffle(self) -> torch.Tensor:
        n = len(self.tensors[0])
        return torch.randperm(n, generator=self.generator).to(self.device)

    def __len__(self):
        """Batches per epoch."""
        return len(self.tensors[0]) // self.batch_size

    def __iter__(self):
        return self

    def __next__(self):
        if self.position + self.batch_size > len(self.permutation):
            self.epoch += 1
            self.position = 0
            self.permutation = self._shuffle()
        index = self.permutation[self.position:self.position + self.batch_size][self.mine]
        self.position += self.batch_size
        batch = []
        for t in self.tensors:
            x = to_float(t[index])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            batch.append(x)
        return batch[0] if len(batch) == 1 else tuple(batch)

    def state_dict(self) -> dict:
        """Everything needed to continue with exactly the same batches."""
        return {"generator": self.generator.get_state(), "permutation": self.permutation.cpu(),
                "position": self.position, "epoch": self.epoch}

    def load_state_dict(self, state: dict):
        """Restore a ``state_dict``; the data must be the same as when it was saved."""
        if len(state["permutation"]) != len(self.permutation):
            raise DataError(f"the saved batch order is for {len(state['permutation'])} images "
                            f"but the data has {len(self.permutation)}; resume with the same "
                            "--data and --size")
        self.generator.set_state(state["generator"])
        self.permutation = state["permutation"].to(self.device)
        self.position = state["position"]
        self.epoch = state["epoch"]
