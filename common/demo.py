"""Draw the built-in synthetic faces: a grid of every style, and yaw and gaze sweeps.

    python -m common.demo                      # -> runs/common/demo/*.png
    python -m common.demo --size 128 --out DIR

The sweeps hold one face fixed and change a single parameter, so you can check that
pose and gaze are visible in every style.
"""
import argparse
from pathlib import Path

import torch

from common.cli import one_sentence_errors
from common.faces import STYLES, render, repeat_face, sample_params
from common.plots import save_image_rows

YAWS = torch.linspace(-40, 40, 9)
GAZES = torch.linspace(-30, 30, 7)


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/common/demo"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    scale = max(1, 128 // args.size)

    params = sample_params(10, args.seed)
    rows = [render(params, style, args.size) for style in STYLES]
    save_image_rows(rows, args.out / "faces.png", row_labels=STYLES, scale=scale,
                    title=f"built-in faces 0-9 of seed {args.seed}, one row per style")

    # One face per style row, yaw swept with gaze straight ahead; then gaze swept with the head frontal.
    face = sample_params(1, args.seed, start=3)
    yaw = repeat_face(face, 0, len(YAWS), yaw=YAWS, pitch=0, roll=0, gaze_yaw=0, gaze_pitch=0)
    save_image_rows([render(yaw, style, args.size) for style in STYLES], args.out / "yaw_sweep.png",
                    row_labels=STYLES, col_labels=[f"{v:.0f}°" for v in YAWS], scale=scale,
                    title="head yaw sweep (gaze 0°)")
    gaze = repeat_face(face, 0, len(GAZES), gaze_yaw=GAZES, yaw=0, pitch=0, roll=0, gaze_pitch=0)
    save_image_rows([render(gaze, style, args.size) for style in STYLES], args.out / "gaze_sweep.png",
                    row_labels=STYLES, col_labels=[f"{v:.0f}°" for v in GAZES], scale=scale,
                    title="gaze yaw sweep (head frontal)")
    print(f"wrote {args.out}/faces.png, yaw_sweep.png, gaze_sweep.png")


if __name__ == "__main__":
    main()
