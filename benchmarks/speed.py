"""Measure the built-in faces and the training steps for the README.

    python -m benchmarks.speed            # faces/s per style on one core + dlib detection rate
    python -m benchmarks.speed --train    # each paper's training step in images/s: float32, the fast path,
                                          # and DCGAN 64 px written the usual way

It lives beside the paper folders, not in common/, because it imports every train.py (common/
never imports a paper).

1. Faces drawn per second at 64×64 on ONE CPU thread, per style: 2,048 faces, after a
   warm-up render, median of three repeats.
2. dlib's frontal face detector (HOG, trained on real photos only) on 200 ``photo``
   faces drawn at 64×64 and upsampled to 256 px: the fraction in which it finds a face.
3. ``--train``: images per second of each paper's real ``train.py`` step (its quick preset,
   run in-process for a few dozen steps; ``img_s`` of log.csv, which leaves evaluation out),
   three ways, alternating them and keeping each one's best of ``--repeats``: float32 with
   networks and batches in the default (contiguous) layout (``--no-amp --no-channels-last``),
   float32 in ``channels_last`` (``--no-amp``), and the fast path (``--amp``: bfloat16 autocast +
   ``channels_last``, what the quick presets do on CPUs with native bf16).
   Beside them, the DCGAN 64 px step written the usual way (pytorch/examples dcgan): PNG
   files read by ``ImageFolder`` through a ``DataLoader`` with 2 workers, float32,
   contiguous layout, and ``.item()`` on both losses every step.
The synthetic network's accuracy is measured by ``python -m tools.train_synthnet``
(written to common/weights/synthnet.json).
"""
import argparse
import importlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from common.cli import one_sentence_errors
from common.csvlog import read_log
from common.device import cpu_name
from common.faces import STYLES, render, sample_params
from common.folders import atomic_write_json
from common.manifest import PAPERS, ROOT
from common.metrics import MetricUnavailable, face_detection_rate
from common.plots import markdown_table


def faces_per_second(style, n=2048, size=64, repeats=3):
    params = sample_params(n, seed=1)
    render(params, style, size)                                   # warm-up: allocator, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render(params, style, size)
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


# Each paper's quick step without evaluation: (paper, label, flags). Images per step are each train.py's own count.
NO_EVAL = ["--fid-every", "100000", "--sample-every", "100000", "--ckpt-every", "100000"]
TRAIN_STEPS = [(paper, label, flags) for paper in PAPERS                 # each paper.py's BENCHMARKS
               for label, flags in importlib.import_module(f"{paper}.paper").BENCHMARKS]


def train_step_speed(paper, flags, variant, steps, workdir):
    """img/s of one short run of ``paper``'s train.py: the rate over its second half.

    ``variant``: "contiguous" (float32, the default memory layout), "channels_last" (float32, as
    train.py runs with --no-amp) or "fast" (--amp: bfloat16 + channels_last).
    """
    train = importlib.import_module(f"{paper}.train")
    out = Path(tempfile.mkdtemp(dir=workdir))
    layout = {"contiguous": ["--no-amp", "--no-channels-last"], "channels_last": ["--no-amp"], "fast": ["--amp"]}
    train.main(flags + NO_EVAL + ["--steps", str(steps), "--log-every", str(steps // 2), "--out", str(out / "run"),
                                  *layout[variant]])
    return read_log(out / "run" / "log.csv")["img_s"][-1]


def usual_way_dcgan(size, width, batch, steps, workdir):
    """The DCGAN step as pytorch/examples dcgan writes it, on our networks: img/s (2·batch images a step)."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from common.data import to_uint8
    from dcgan_celeba.model import build
    folder = Path(workdir) / "png" / "faces"
    if not folder.exists():
        folder.mkdir(parents=True)
        from PIL import Image
        for i, face in enumerate(to_uint8(render(sample_params(1000, seed=0), "photo", size))):
            Image.fromarray(face.permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.png")
    dataset = datasets.ImageFolder(folder.parent, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)]))
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=2, drop_last=True)
    G, D = build(model="dcgan", size=size, z_dim=100, width=width).values()
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    done, start = 0, None
    while done < steps:
        for x, _ in loader:
            if done == 3:                                    # after a warm-up
                start = time.perf_counter()
            real, fake_label = torch.ones(len(x)), torch.zeros(len(x))
            fake = G(torch.randn(len(x), 100, 1, 1))
            err_d = (F.binary_cross_entropy_with_logits(D(x), real)
                     + F.binary_cross_entropy_with_logits(D(fake.detach()), fake_label))
            D.zero_grad()
            err_d.backward()
            opt_d.step()
            err_g = F.binary_cross_entropy_with_logits(D(fake), real)
            G.zero_grad()
            err_g.backward()
            opt_g.step()
            err_d.item(), err_g.item()                       # printed every step in the example
            done += 1
            if done == steps:
                break
    return (steps - 3) * 2 * batch / (time.perf_counter() - start)


VARIANTS = {"contiguous": "float32 img/s", "channels_last": "float32 + channels_last", "fast": "bf16 + channels_last"}


def train_table(steps, repeats, only=""):
    """Rows of the README's training-speed table (images/s)."""
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for paper, label, flags in TRAIN_STEPS:
            if only not in f"{paper}: {label}":
                continue
            best = dict.fromkeys(VARIANTS, 0.0)
            for _ in range(repeats):                         # alternate, so drift hits all alike
                for variant in VARIANTS:
                    best[variant] = max(best[variant], train_step_speed(paper, flags, variant, steps, workdir))
            rows.append({"step": f"{paper}: {label}", **{VARIANTS[v]: round(best[v]) for v in VARIANTS},
                         "fast / float32": f"×{best['fast'] / best['contiguous']:.2f}",
                         "fast / float32 + channels_last": f"×{best['fast'] / best['channels_last']:.2f}"})
        if "usual" in only or only == "":
            usual = max(usual_way_dcgan(64, 64, 64, steps, workdir) for _ in range(repeats))
            rows.append({"step": "dcgan_celeba: DCGAN 64 px written the usual way (ImageFolder + DataLoader "
                                 "workers, .item() every step)", VARIANTS["contiguous"]: round(usual)})
    return rows


def record(key: str, rows, **more) -> None:
    """Keep the measurement in docs/speed.json (the READMEs' speed tables are generated from it)."""
    path = ROOT / "docs" / "speed.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}
    recorded[key] = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                     "rows": rows, **more}
    atomic_write_json(path, recorded, indent=1, sort_keys=False)
    print(f"wrote {path.relative_to(ROOT)}")


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=2048, help="faces per timing")
    ap.add_argument("--detect", type=int, default=200, help="photo faces for the dlib test (0: skip it)")
    ap.add_argument("--train", action="store_true", help="measure each paper's training step instead")
    ap.add_argument("--steps", type=int, default=40, help="--train: steps per timed run")
    ap.add_argument("--repeats", type=int, default=2, help="--train: timed runs per variant (the best is kept)")
    ap.add_argument("--only", default="", help="--train: only the steps whose name contains this text")
    ap.add_argument("--record", action="store_true", help="also keep the numbers in docs/speed.json")
    args = ap.parse_args(argv)
    if args.train:
        print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads; torch {torch.__version__}")
        rows = train_table(args.steps, args.repeats, args.only)
        print(markdown_table(rows))
        if args.record:
            record("train", rows, steps=args.steps, repeats=args.repeats)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = [{"style": s, "faces/s (64×64, 1 thread)": round(faces_per_second(s, args.faces))} for s in STYLES]
    torch.set_num_threads(threads)
    print(markdown_table(rows))
    rate = None
    if args.detect:
        try:
            photos = render(sample_params(args.detect, seed=0), "photo", 64)
            rate = face_detection_rate(photos, upsample_to=256)
            print(f"\ndlib frontal detector finds a face in {rate:.1%} of {args.detect} photo faces (64 px, upsampled "
                  f"to 256)")
        except MetricUnavailable as err:
            print(f"\n{err}")
    if args.record:
        record("faces", rows, faces=args.faces, detection_rate=rate, detected_of=args.detect)


if __name__ == "__main__":
    main()
