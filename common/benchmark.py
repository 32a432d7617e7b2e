"""Measure the built-in faces for the README (DESIGN.md §3): speed and realism.

    python -m common.benchmark            # faces/s per style on one core + dlib detection rate

1. Faces drawn per second at 64×64 on ONE CPU thread, per style: 2,048 faces, after a
   warm-up render, median of three repeats.
2. dlib's frontal face detector (HOG, trained on real photos only) on 200 ``photo``
   faces drawn at 64×64 and upsampled to 256 px: the fraction in which it finds a face.
The synthetic network's accuracy is measured by ``python -m common.train_synthnet``
(written to common/weights/synthnet.json).
"""
import argparse
import statistics
import time

import torch

from common.faces import STYLES, render, sample_params
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=2048, help="faces per timing")
    ap.add_argument("--detect", type=int, default=200, help="photo faces for the dlib test (0: skip it)")
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = [{"style": s, "faces/s (64×64, 1 thread)": round(faces_per_second(s, args.faces))} for s in STYLES]
    torch.set_num_threads(threads)
    print(markdown_table(rows))
    if not args.detect:
        return
    try:
        photos = render(sample_params(args.detect, seed=0), "photo", 64)
        rate = face_detection_rate(photos, upsample_to=256)
        print(f"\ndlib frontal detector finds a face in {rate:.1%} of {args.detect} photo faces (64 px, upsampled to 256)")
    except MetricUnavailable as err:
        print(f"\n{err}")


if __name__ == "__main__":
    main()
