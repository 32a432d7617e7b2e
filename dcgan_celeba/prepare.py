"""Arrange CelebA into one folder per identity, as §4.1 describes (optional for training).

    python dcgan_celeba/prepare.py ~/data/img_align_celeba ~/data/identity_CelebA.txt ~/data/celeba_by_identity

``identity_CelebA.txt`` (from CelebA's Anno/ folder) has one line per image,
``000001.jpg 2880``. Each image is linked (or, with --copy, copied) into
``OUT/<identity>/``. Training reads nested folders too, so
``python dcgan_celeba/train.py --data OUT`` works on the result as on the flat folder.
"""
import argparse
import shutil
from collections import Counter
from pathlib import Path


def read_identities(path):
    """{file name: identity} from identity_CelebA.txt; one clear sentence on a malformed line."""
    identities = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"{path}, line {number}: expected 'FILE IDENTITY', got {line!r}.")
        identities[parts[0]] = parts[1]
    return identities


def arrange(images, identities_file, out, copy=False):
    """Link or copy every listed image into out/<identity>/; returns (placed, missing) counts."""
    images, out = Path(images), Path(out)
    if not images.is_dir():
        raise SystemExit(f"{images} is not a folder: give CelebA's img_align_celeba folder.")
    placed, missing = Counter(), 0
    for name, identity in read_identities(identities_file).items():
        source, target = images / name, out / identity / name
        if not source.exists():
            missing += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            if copy:
                shutil.copy2(source, target)
            else:
                target.symlink_to(source.resolve())
        placed[identity] += 1
    return placed, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", help="CelebA's img_align_celeba folder")
    ap.add_argument("identities", help="identity_CelebA.txt")
    ap.add_argument("out", help="output folder, one sub-folder per identity")
    ap.add_argument("--copy", action="store_true", help="copy the images instead of linking them")
    args = ap.parse_args(argv)
    placed, missing = arrange(args.images, args.identities, args.out, args.copy)
    print(f"{sum(placed.values())} images of {len(placed)} identities in {args.out}"
          + (f"; {missing} listed images were not found in {args.images}" if missing else ""))
    return placed, missing


if __name__ == "__main__":
    main()
