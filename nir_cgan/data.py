"""The thesis's data pipeline for mask → NIR pairs (§3.1.4–3.1.6), shared by train.py and eval.py.

- ``clean_pairs``       §3.1.4  drop pairs whose image mean is an outlier in its sub-folder
- ``normalise_mean``    §3.1.5  scale each target image to the same mean μ0
- ``augment_pairs``     §3.1.5.1, Table 3.1  one random transform per pair, on the device
- ``split_train_test``  §3.1.6  random 90 % / 10 % split of the pairs
- ``load_pairs``        all of it: the run's (train, test) pairs, so eval.py gets the same test set
- ``training_pairs``    how many pairs a run trains on, before any image is read (train.py's epochs)

Reading the folders and the uint8 ↔ [-1, 1] conversion live in ``common/data.py``.
"""
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from common import synthetic
from common.data import IMAGE_EXTENSIONS, DataError, load_paired_folders, to_float, to_uint8

# Table 3.1: name -> (probability of applying it to a pair, min, max). Each is drawn
# independently per pair. Ranges as in albumentations, which the numbers come from:
# scale is the zoom factor, shift a fraction of the image side (x and y drawn
# separately), rotation in radians, gamma the exponent (the table's "98–102" is
# RandomGamma's gamma_limit, which albumentations divides by 100).
AUGMENTATIONS = {
    "scale": (0.7, 1.0, 1.2),
    "shift": (0.7, -0.0625, 0.0625),
    "rotation": (0.7, -math.pi / 4, math.pi / 4),
    "gamma": (0.5, 0.98, 1.02),
    "flip": (0.5, None, None),
}
MIN_GROUP = 4   # pairs a sub-folder needs before its quartiles are used (clean_pairs)
TEST_FRACTION = 0.1     # §3.1.6: 90 / 10 split
SPLIT_SEED = 0          # the split's seed: every run of the same data has the same test pairs
PAIRS_SEED = 0          # the built-in pairs are items 0, 1, … of this seed


# ---------------------------------------------------------------- §3.1.4 data cleaning


def iqr_bounds(values: torch.Tensor, k=1.5):
    """(Q1 − k·IQR, Q3 + k·IQR) of a 1-D tensor, IQR = Q3 − Q1 (§3.1.4).

    Quartiles by ``torch.quantile`` with linear interpolation (numpy's default);
    the thesis does not say which quartile definition it used, and on small
    groups the choice moves the bounds.
    """
    q1, q3 = torch.quantile(values.double(), torch.tensor([0.25, 0.75], dtype=torch.float64)).tolist()
    return q1 - k * (q3 - q1), q3 + k * (q3 - q1)


def iqr_outliers(values: torch.Tensor, k=1.5) -> torch.Tensor:
    """Bool tensor: True where a value lies more than k·IQR below Q1 or above Q3 (§3.1.4)."""
    low, high = iqr_bounds(values, k)
    return (values < low) | (values > high)


def pair_group(name: str) -> str:
    """The sub-folder of a pair name (``"subject3_cam1/0042"`` -> ``"subject3_cam1"``); "." at the top level."""
    return name.rpartition("/")[0] or "."


def clean_pairs(source, target, names, k=1.5, min_group=MIN_GROUP):
    """Which pairs to keep after the thesis's outlier removal (§3.1.4).

    The pairs are grouped by sub-folder (in the thesis one sub-folder is one
    subject seen by one camera, so its images are alike). In each group, every
    image's mean is computed, separately for the source and the target images,
    and an image whose mean is more than k·IQR below Q1 or above Q3 of its group
    is an outlier (``iqr_outliers``). A pair is dropped when either of its images
    is an outlier. Groups of fewer than ``min_group`` pairs are kept whole: their
    quartiles say nothing (with linear interpolation and k ≥ 1, no value of a
    group of three or fewer can even fall outside the bounds).

    source, target: (N, C, H, W) tensors (uint8 or float); means are in the
    images' own units (0–255 for uint8). names: N pair names as given by
    ``common.data.load_paired_folders`` ("group/stem").

    Returns (keep, report): ``keep`` a bool tensor (N,), and ``report`` a dict with
    ``"groups"``: {group: {"pairs", "checked", "bounds": {"source": (low, high), "target": ...}}}
    (bounds None when not checked) and ``"removed"``: one dict per dropped pair,
    {"index", "name", "group", "domains" (tuple of "source"/"target"), "means":
    {"source": m, "target": m}, "bounds": the group's bounds}.
    """
    means = {"source": source.float().mean(dim=(1, 2, 3)), "target": target.float().mean(dim=(1, 2, 3))}
    groups = {}
    for i, name in enumerate(names):
        groups.setdefault(pair_group(name), []).append(i)

    keep = torch.ones(len(names), dtype=torch.bool)
    report = {"groups": {}, "removed": []}
    for group, members in sorted(groups.items()):
        checked = len(members) >= min_group
        bounds = {domain: iqr_bounds(m[members], k) if checked else None for domain, m in means.items()}
        report["groups"][group] = {"pairs": len(members), "checked": checked, "bounds": bounds}
        if not checked:
            continue
        outlier = {domain: iqr_outliers(m[members], k) for domain, m in means.items()}
        for j, i in enumerate(members):
            domains = tuple(domain for domain in means if outlier[domain][j])
            if domains:
                keep[i] = False
                report["removed"].append({
                    "index": i, "name": names[i], "group": group, "domains": domains,
                    "means": {domain: m[i].item() for domain, m in means.items()}, "bounds": bounds})
    return keep, report


# ---------------------------------------------------------------- §3.1.5 preprocessing


def normalise_mean(target: torch.Tensor, mean: float) -> torch.Tensor:
    """Scale each image by μ0/μ, μ its own mean, so that every mean becomes μ0 (§3.1.5).

    target: float (N, 1, H, W) in [0, 1]; mean: μ0. Every pixel of an image is
    multiplied by the same factor, so relations between pixels stay as they were.
    The result is clipped to [0, 1], which lowers the mean of an image slightly
    below μ0 when some of its pixels would go above 1. An all-black image (μ = 0)
    is left as it is.
    """
    mu = target.mean(dim=(1, 2, 3), keepdim=True)
    factor = torch.where(mu > 0, mean / mu, torch.ones_like(mu))
    return (target * factor).clamp(0, 1)


def draw_augmentations(n, generator: torch.Generator) -> dict:
    """Random parameters of Table 3.1 for n pairs, on the CPU.

    Returns {"scale" (n,), "shift" (n, 2) as (x, y), "rotation" (n,), "gamma" (n,),
    "flip" bool (n,), "applied": {name: bool (n,)}}. Where an augmentation is not
    applied its value is the identity (scale 1, shift 0, rotation 0, gamma 1, no flip).
    """
    probability = torch.tensor([p for p, _, _ in AUGMENTATIONS.values()])
    fires = torch.rand(n, len(AUGMENTATIONS), generator=generator) < probability
    applied = dict(zip(AUGMENTATIONS, fires.unbind(1)))
    u = torch.rand(n, 5, generator=generator)   # scale, shift x, shift y, rotation, gamma

    def uniform(name, u, identity):
        _, low, high = AUGMENTATIONS[name]
        on = applied[name] if u.dim() == 1 else applied[name][:, None]
        return torch.where(on, low + u * (high - low), torch.full_like(u, identity))

    return {"scale": uniform("scale", u[:, 0], 1.0), "shift": uniform("shift", u[:, 1:3], 0.0),
            "rotation": uniform("rotation", u[:, 3], 0.0), "gamma": uniform("gamma", u[:, 4], 1.0),
            "flip": applied["flip"], "applied": applied}


def affine_matrices(params: dict, height, width) -> torch.Tensor:
    """(n, 2, 3) matrices θ for ``F.affine_grid``: output position -> input position.

    The content of a pair is mirrored (flip), rotated and enlarged about the
    centre, then moved by shift·side: p_out = s·R·M·p_in + 2·shift in the [-1, 1]
    coordinates of ``affine_grid`` (a side is 2 units long), so
    θ = [A | −A·2·shift] with A = M·R⁻¹/s. R turns pixel positions; written in the
    normalised coordinates it gains the factors H/W and W/H, so that a non-square
    image turns without being sheared.
    """
    c, s = params["rotation"].cos(), params["rotation"].sin()
    mirror = 1.0 - 2.0 * params["flip"].float()                            # −1 where flipped
    a = torch.stack([mirror * c, mirror * s * height / width,              # M·R(−angle), row 1
                     -s * width / height, c], dim=1).view(-1, 2, 2)        # row 2
    a = a / params["scale"].view(-1, 1, 1)
    b = -a @ (2 * params["shift"]).unsqueeze(-1)
    return torch.cat([a, b], dim=2)


def apply_augmentations(source, target, params: dict):
    """Apply parameters from ``draw_augmentations`` to float pairs in [-1, 1].

    Source and target are concatenated along channels and warped by one
    ``grid_sample`` (bilinear, reflection at the border), so both images of a
    pair move exactly alike; then gamma: x01 ** γ on x01 = (x + 1)/2. The work is
    done in float32 (sampling positions in bfloat16 would be off by a fraction of
    a pixel) and the result has the inputs' dtype.
    """
    channels = source.shape[1]
    both = torch.cat([source, target], dim=1).float()
    theta = affine_matrices(params, *both.shape[2:]).to(both.device, both.dtype)
    grid = F.affine_grid(theta, list(both.shape), align_corners=False)
    both = F.grid_sample(both, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    gamma = params["gamma"].to(both.device, both.dtype).view(-1, 1, 1, 1)
    both = ((both + 1) / 2).clamp(0, 1).pow(gamma) * 2 - 1
    return both[:, :channels].to(source.dtype), both[:, channels:].to(target.dtype)


def augment_pairs(source, target, generator: torch.Generator):
    """Random augmentation of Table 3.1, the same transform for both images of a pair (§3.1.5.1).

    source (B, C, H, W), target (B, C', H, W): float in [-1, 1], on any device.
    Per pair, independently: zoom U[1, 1.2] (p 0.7), shift U[−0.0625, 0.0625] of
    the side in x and in y (p 0.7), rotation U[−π/4, π/4] (p 0.7), gamma
    U[0.98, 1.02] (p 0.5), horizontal flip (p 0.5). Shift ±0.0625 and rotation
    ±45° are albumentations' ShiftScaleRotate defaults, whose default border
    (BORDER_REFLECT_101 in the albumentations 1.x of the thesis's time) is why
    the border here is a reflection too; torch's reflection mirrors about the
    image edge (repeating the edge pixel, like cv2's BORDER_REFLECT), at most
    one pixel away from reflect-101. The zoom range [1, 1.2] is not the default
    (0.9–1.1): it is what scale_limit=(0, 0.2) gives.

    The parameters are drawn with ``generator``, a CPU ``torch.Generator``, so a
    seed gives the same augmentation on the CPU and on a GPU. Scale, shift,
    rotation and flip make one affine matrix per pair and the whole batch is
    warped by one ``grid_sample`` call. Returns (source, target).
    """
    return apply_augmentations(source, target, draw_augmentations(len(source), generator))


# ---------------------------------------------------------------- §3.1.6 train / test split


def split_sizes(n, test_fraction=0.1):
    """(training, test) pair counts of n pairs: the test set gets round(n·test_fraction), at least one when
    n ≥ 2 and never all of them."""
    n_test = round(n * test_fraction)
    if n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    return n - n_test, n_test


def split_train_test(n, test_fraction=0.1, seed=0):
    """Random split of n pairs (§3.1.6: 90 % train, 10 % test), as sorted index tensors.

    The test set gets round(n·test_fraction) pairs, at least one when n ≥ 2 and
    never all of them (``split_sizes``). As in the thesis the split is by pair, not by
    subject, so one person can appear in both sets. Returns (train_idx, test_idx).
    """
    _, n_test = split_sizes(n, test_fraction)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_test:].sort().values, order[:n_test].sort().values


# ---------------------------------------------------------------- a run's pairs


def load_pairs(data, size, pairs):
    """§3.1: the (train, test) pairs of a run, dicts of uint8 ``source`` (N, 3, H, W) and
    mean-normalised ``target`` (N, 1, H, W).

    ``data``: a folder with ``source/`` and ``target/`` (``common.data.load_paired_folders``),
    or None for ``pairs`` built-in mask → NIR pairs, whose test part also keeps the true
    pose and gaze (``"params"``). Targets are scaled by μ0/μ (``normalise_mean``, μ0 the mean
    of all targets). The 90/10 split is seeded, so train.py and eval.py get the same sets.
    """
    params = None
    if data:
        source, target, _ = load_paired_folders(data, size, source_channels=3, target_channels=1)
    else:
        source, target, params = synthetic.mask_nir_pairs(pairs, size, seed=PAIRS_SEED, with_params=True)
    target01 = (to_float(target) + 1) / 2                              # §3.1.5: μ0/μ scaling on [0, 1]
    target = to_uint8(normalise_mean(target01, target01.mean().item()) * 2 - 1)
    split = []
    for idx in split_train_test(len(source), TEST_FRACTION, seed=SPLIT_SEED):
        part = dict(source=source[idx], target=target[idx])
        if params is not None:
            part["params"] = {k: v[idx] for k, v in params.items()}
        split.append(part)
    return split


def training_pairs(data, pairs):
    """How many pairs ``load_pairs`` will train on, known before any image is read (train.py counts its
    epochs in them): the 90 % of ``pairs`` built-in pairs, or of the pairs of the folder ``data``, matched
    by name as ``common.data.load_paired_folders`` matches them (``source/a.png`` with ``target/a.jpg``).

    A pair whose file turns out to be unreadable is left out by ``load_pairs`` (with a warning) but
    counted here. A folder without ``source/`` and ``target/`` is a ``DataError``.
    """
    if not data:
        return split_sizes(pairs, TEST_FRACTION)[0]
    root, stems = Path(data).expanduser(), []
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; check --data (or leave it out to use the built-in pairs)")
    for side in ("source", "target"):
        if not (root / side).is_dir():
            raise DataError(f"{root} has no '{side}/' folder; paired data must be laid out as "
                            f"{root}/source/NAME.png and {root}/target/NAME.png")
        stems.append({p.relative_to(root / side).with_suffix("").as_posix() for p in (root / side).rglob("*")
                      if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()})
    return split_sizes(len(stems[0] & stems[1]), TEST_FRACTION)[0]
