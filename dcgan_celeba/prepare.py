"""Arrange CelebA into one folder per identity, as §4.1 describes (optional for training).

    python dcgan_celeba/prepare.py ~/data/img_align_celeba ~/data/identity_CelebA.txt ~/data/celeba_by_identity

``identity_CelebA.txt`` (from CelebA's Anno/ folder) has one line per image,
``000001.jpg 2880``. Each image is linked (or, with --copy, copied) into
``OUT/<identity>/``. Training reads nested folders too, so
``python dcgan_celeba/train.py --data OUT`` works on the result as on the flat folder.
"""
import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

from common.cli import one_sentence_errors
from common.folders import check_out, claim_folder


def _plain_name(name):
    """True for a single file or folder name: nothing that could lead outside OUT (no '/', no '..')."""
    return name not in (".", "..") and "/" not in name and "\\" not in name and not Path(name).is_absolute()


def read_identities(path):
    """{file name: identity} from identity_CelebA.txt; one clear sentence on a file that cannot be read,
    on a malformed line, and on a name that is not a plain name (it could write outside OUT)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"{path} does not exist: give CelebA's Anno/identity_CelebA.txt.") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = "it is not UTF-8 text" if isinstance(err, UnicodeDecodeError) else err.strerror or err
        raise SystemExit(f"{path} cannot be read ({reason}): give CelebA's Anno/identity_CelebA.txt, "
                         f"one 'FILE IDENTITY' pair per line.") from None
    if "\0" in text:
        raise SystemExit(f"{path} is a binary file, not a text file: give CelebA's Anno/identity_CelebA.txt, "
                         f"one 'FILE IDENTITY' pair per line.")
    identities = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"{path}, line {number}: expected 'FILE IDENTITY', got {line!r}.")
        for what, name in zip(("file name", "identity"), parts):
            if not _plain_name(name):
                raise SystemExit(f"{path}, line {number}: the {what} {name!r} is a path, not a plain name, "
                                 f"so it could place files outside the output folder; nothing was written.")
        identities[parts[0]] = parts[1]
    return identities


def arrange(images, identities_file, out, copy=False):
    """Link or copy every listed image into out/<identity>/; returns (placed, missing) counts.

    The whole list is read and checked before anything is written."""
    images, out = Path(images), Path(out)
    if not images.is_dir():
        raise SystemExit(f"{images} is not a folder: give CelebA's img_align_celeba folder.")
    placed, missing = Counter(), 0
    identities = read_identities(identities_file)
    claim_folder(out)                                          # one process writes it at a time
    for name, identity in identities.items():
        source, target = images / name, out / identity / name
        if not source.exists():
            missing += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() or target.is_symlink()):       # a link left by an earlier run stays
            if copy:
                shutil.copy2(source, target)
            else:
                target.symlink_to(source.resolve())
        placed[identity] += 1
    return placed, missing


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", help="CelebA's img_align_celeba folder")
    ap.add_argument("identities", help="identity_CelebA.txt")
    ap.add_argument("out", help="output folder, one sub-folder per identity (outside the images folder)")
    ap.add_argument("--copy", action="store_true", help="copy the images instead of linking them")
    args = ap.parse_args(argv)
    check_out(args.out, [args.images], flag="OUT")   # not a file, writable, not inside the images (nor around them)
    placed, missing = arrange(args.images, args.identities, args.out, args.copy)
    print(f"{sum(placed.values())} images of {len(placed)} identities in {args.out}"
          + (f"; {missing} listed images were not found in {args.images}" if missing else ""))
    return placed, missing


if __name__ == "__main__":
    main()
