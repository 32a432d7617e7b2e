"""Train the NIR attribute reader used by eval.py to measure pose and gaze in degrees (§3.5.3.1).

    python nir_cgan/train_reader.py                     # the shipped weights (GPU: ~2 min; CPU: ~1 h)
    python nir_cgan/train_reader.py --faces 4000 --epochs 1 --out /tmp/reader.pt     # a quick try

The repo's synthetic-face network (common/synthnet.py) reads head pose on every style but
gaze only on the colour-coded ``mask`` (its gaze error on ``nir`` faces is at chance). So
this trains the same architecture on ``nir`` faces alone, with the wide pose/gaze ranges
and the quarter of softened images of ``tools.train_synthnet``, and measures itself on
faces of another seed (``nir_reader.json`` beside the weights). Load it with
``common.synthnet.load_synthnet(READER_WEIGHTS)``.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch
import torch.nn.functional as F

from common.cli import one_sentence_errors, positive_float, positive_int
from common.data import to_float, to_uint8
from common.device import pick_device, seed_everything
from common.faces import POSE_GAZE, render, sample_params
from common.loop import progress
from common.synthnet import TRAIN_RANGES, SynthNet, loss_fn, predict, targets

READER_WEIGHTS = Path(__file__).parent / "weights" / "nir_reader.pt"


def nir_faces(n, seed, size=64, soften=True):
    """n ``nir`` faces (uint8, 3 equal channels) and their parameters; a quarter softened 2× like G's outputs."""
    params = sample_params(n, seed, 0, **TRAIN_RANGES)
    images = render(params, "nir", size)
    if soften:
        soft = torch.arange(n) % 4 == 0
        small = F.interpolate(images[soft], scale_factor=0.5, mode="bilinear", antialias=True)
        images[soft] = F.interpolate(small, size=(size, size), mode="bilinear")
    return to_uint8(images), params


def evaluate(net, n=1200):
    """Mean absolute error in degrees per angle on clean ``nir`` faces of seed 1."""
    images, params = nir_faces(n, seed=1, soften=False)
    error = (predict(images, net)["pose_gaze"] - torch.stack([params[k] for k in POSE_GAZE], 1)).abs().mean(0)
    return {"faces": n, "mae_degrees": dict(zip(POSE_GAZE, [round(v, 2) for v in error.tolist()]))}


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=positive_int, default=60_000, help="training faces, rendered once into memory")
    ap.add_argument("--epochs", type=positive_int, default=12)
    ap.add_argument("--batch-size", type=positive_int, default=128)
    ap.add_argument("--lr", type=positive_float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=READER_WEIGHTS)
    args = ap.parse_args(argv)
    if args.batch_size > args.faces:
        ap.error(f"--batch-size {args.batch_size} is larger than --faces {args.faces}")
    seed_everything(args.seed)
    device = pick_device(args.device)
    start = time.time()
    images, params = nir_faces(args.faces, args.seed)
    t = targets(params, ["nir"] * args.faces)
    images, t = images.to(device), {k: v.to(device) for k, v in t.items()}
    net = SynthNet().to(device)
    steps = args.epochs * (args.faces // args.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    bar = progress(steps, desc="nir reader")
    for step in range(steps):
        idx = torch.randint(0, args.faces, (args.batch_size,), device=device)
        x = to_float(images[idx])
        if torch.rand(()) < 0.5:                      # mirror: yaw, roll and gaze yaw change sign
            x = x.flip(-1)
            flip = torch.tensor([-1.0, 1, -1, -1, 1], device=device)
        else:
            flip = torch.ones(5, device=device)
        batch_t = {k: v[idx] for k, v in t.items()}
        batch_t["pose_gaze"] = batch_t["pose_gaze"] * flip
        loss = loss_fn(net(x), batch_t, ["nir"] * args.batch_size)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    net = net.cpu().eval()
    report = evaluate(net)
    report.update(faces_trained=args.faces, epochs=args.epochs, minutes=round((time.time() - start) / 60, 1),
                  device=str(device), command=" ".join(["python nir_cgan/train_reader.py", *(argv or sys.argv[1:])]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"model": half, "config": {"width": 32, "features": 256}}, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
