"""Find the pairs that the thesis's data cleaning (§3.1.4) would remove, and report them.

    python nir_cgan/clean.py --data PATH                # PATH/source/<group>/<name>.png + PATH/target/...
    python nir_cgan/clean.py --demo                     # built-in set with planted corruptions (the default)

Pairs are grouped by sub-folder (in the thesis: one subject seen by one camera). In
each group an image whose mean lies more than 1.5·IQR below Q1 or above Q3 of the
group's means, in the source or in the target images, makes its pair an outlier.

Nothing is deleted or moved: the script prints the report and writes, in --out,
``removed.txt`` (the removed pair names, one a line) and ``removed.png`` (the removed
pairs, source above target).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch
from PIL import Image

from common.cli import one_sentence_errors, positive_int
from common.data import DataError, load_paired_folders
from common.faces import IDENTITY, sample_params
from common.plots import save_image_rows
from common.synthetic import mask_nir_pairs
from nir_cgan.data import MIN_GROUP, clean_pairs

DEFAULT_OUT = Path("runs/nir_cgan/clean")
MAX_SHOWN = 24          # removed pairs drawn in removed.png

# The demo: 4 sub-folders of 40 pairs at 64×64. A sub-folder is one person under one
# camera (fixed identity, lighting and background; pose and gaze vary), as in §3.1.4.
DEMO_GROUPS, DEMO_PAIRS, DEMO_SIZE, DEMO_SEED = 4, 40, 64, 0
CAMERA = ("light_azimuth", "light_elevation", "light_strength", "bg_hue", "bg_value", "bg_angle")


def _shift_right(images, pixels):
    """Move image content right by ``pixels``, filling with black."""
    out = torch.zeros_like(images)
    out[..., pixels:] = images[..., :-pixels]
    return out


def _occlude(target):
    h, w = target.shape[-2:]
    target[..., h // 3:, w // 6: 5 * w // 6] = 0            # a dark object over the lower face
    return target


# (kind, which image it spoils, how, whether a change of mean can reveal it)
CORRUPTIONS = [
    ("target occluded", "target", _occlude, True),
    ("target over-exposed", "target", lambda t: (t.float() * 3).clamp(max=255).to(torch.uint8), True),
    ("source half out of frame", "source", lambda s: _shift_right(s, s.shape[-1] // 2), True),
    ("source blank", "source", torch.zeros_like, True),
    ("source slightly misaligned", "source", lambda s: _shift_right(s, s.shape[-1] // 10), False),
]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = ap.add_mutually_exclusive_group()
    data.add_argument("--data", help="folder holding source/ (RGB) and target/ (grayscale) with matching names")
    data.add_argument("--demo", action="store_true",
                      help=f"write a built-in set with planted corruptions to OUT/demo_data and clean it "
                           f"({DEMO_GROUPS} sub-folders × {DEMO_PAIRS} pairs, {DEMO_SIZE}×{DEMO_SIZE}; "
                           "the default without --data)")
    ap.add_argument("--size", type=positive_int, help=f"images are resized to size×size (default: 128, demo {DEMO_SIZE})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default: {DEFAULT_OUT})")
    return ap.parse_args(argv)


def write_demo_set(root: Path) -> dict:
    """Write the demo pairs as PNG files under ``root`` and return {pair name: corruption kind}."""
    people = sample_params(DEMO_GROUPS, seed=DEMO_SEED)
    fixed = {name: people[name].repeat_interleave(DEMO_PAIRS) for name in IDENTITY + CAMERA}
    sources, targets = mask_nir_pairs(DEMO_GROUPS * DEMO_PAIRS, DEMO_SIZE, seed=DEMO_SEED, start=1000, **fixed)
    planted = {}
    for g in range(DEMO_GROUPS):
        source, target = sources[g * DEMO_PAIRS:(g + 1) * DEMO_PAIRS], targets[g * DEMO_PAIRS:(g + 1) * DEMO_PAIRS]
        group = f"subject{g + 1}_cam{g % 2 + 1}"
        for k, (kind, side, spoil, _) in enumerate(CORRUPTIONS):
            if g in (k % DEMO_GROUPS, (k + 2) % DEMO_GROUPS):           # each kind in two sub-folders
                i = 3 + 7 * k
                if side == "source":
                    source[i] = spoil(source[i].clone())
                else:
                    target[i] = spoil(target[i].clone())
                planted[f"{group}/{i:04d}"] = kind
        for side, images in (("source", source), ("target", target)):
            folder = root / side / group
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                pixels = image.permute(1, 2, 0).numpy()
                Image.fromarray(pixels if pixels.shape[2] == 3 else pixels[..., 0]).save(folder / f"{i:04d}.png")
    return planted


def clean_folder(path, size, out: Path) -> list:
    """Load, clean, print the report, write removed.txt and removed.png; return the removed names."""
    pairs = load_paired_folders(path, size, source_channels=3, target_channels=1)
    keep, report = clean_pairs(pairs.source, pairs.target, pairs.names)
    removed = report["removed"]

    print(f"Data cleaning (§3.1.4) of {len(pairs.names)} pairs in {path}, {size}×{size}: an image is an outlier "
          f"when its mean (0–255) lies more than 1.5·IQR outside [Q1, Q3] of its sub-folder.")
    print(f"\n  {'sub-folder':<24} {'pairs':>5} {'removed':>8}   {'source bounds':<19}target bounds")
    for group, info in report["groups"].items():
        n_removed = sum(r["group"] == group for r in removed)
        if info["checked"]:
            bounds = "   ".join(f"[{low:6.1f}, {high:6.1f}]" for low, high in info["bounds"].values())
        else:
            bounds = f"not checked: fewer than {MIN_GROUP} pairs"
        print(f"  {group:<24} {info['pairs']:>5} {n_removed:>8}   {bounds}")

    print(f"\nRemoved {len(removed)} of {len(pairs.names)} pairs:" if removed else "\nNo pair removed.")
    for number, r in enumerate(removed, 1):
        why = ", ".join(f"{d} mean {r['means'][d]:.1f} outside [{r['bounds'][d][0]:.1f}, {r['bounds'][d][1]:.1f}]"
                        for d in r["domains"])
        print(f"  [{number}] {r['name']}: {why}")

    out.mkdir(parents=True, exist_ok=True)
    names = [r["name"] for r in removed]
    (out / "removed.txt").write_text("".join(name + "\n" for name in names))
    written = [out / "removed.txt"]
    if removed:
        shown = torch.tensor([r["index"] for r in removed[:MAX_SHOWN]])
        title = f"Removed pairs (§3.1.4), {len(shown)} of {len(removed)}" if len(removed) > MAX_SHOWN \
            else "Removed pairs (§3.1.4)"
        written.append(save_image_rows([pairs.source[shown], pairs.target[shown]], out / "removed.png",
                                       row_labels=["source", "target"],
                                       col_labels=[str(k) for k in range(1, len(shown) + 1)],
                                       title=title, scale=max(1.0, 128 / size)))
    print(f"\nWrote {' and '.join(str(p) for p in written)}; {int(keep.sum())} pairs kept, "
          "no file was moved or deleted.")
    return names


@one_sentence_errors
def main(argv=None):
    """Returns {"removed": names}; with --demo also the counts it prints ("caught", "planted", …)."""
    args = parse_args(argv)
    try:
        if not args.data:
            root = args.out / "demo_data"
            planted = write_demo_set(root)
            print(f"Demo: {DEMO_GROUPS} sub-folders × {DEMO_PAIRS} pairs written to {root}, "
                  f"{len(planted)} of them corrupted on purpose.\n")
            removed = clean_folder(root, args.size or DEMO_SIZE, args.out)
        else:
            return {"removed": clean_folder(args.data, args.size or 128, args.out)}
    except DataError as err:
        raise SystemExit(str(err))

    print(f"\n  {'planted corruption':<28} {'planted':>7} {'caught':>6}")
    result = {"removed": removed, "planted": 0, "caught": 0, "subtle planted": 0, "subtle caught": 0}
    for kind, _, _, visible in CORRUPTIONS:
        names = [name for name, k in planted.items() if k == kind]
        caught = len(set(removed).intersection(names))
        note = "" if visible else "   (a small shift barely changes a mean: the thesis's misses)"
        print(f"  {kind:<28} {len(names):>7} {caught:>6}{note}")
        result["planted" if visible else "subtle planted"] += len(names)
        result["caught" if visible else "subtle caught"] += caught
    result["clean"] = DEMO_GROUPS * DEMO_PAIRS - len(planted)
    result["mistakes"] = len(set(removed) - planted.keys())
    print(f"\nCaught {result['caught']} of {result['planted']} corruptions that change an image's mean "
          f"and {result['subtle caught']} of {result['subtle planted']} small misalignments; "
          f"removed {result['mistakes']} of {result['clean']} clean pairs by mistake.")
    return result


if __name__ == "__main__":
    main()
