"""Retrain the synthetic-face network shipped in common/weights/ (see common/synthnet.py; a maintainer's command:
the network, its training draw and its loss live there).

    python -m tools.train_synthnet                   # the shipped weights: --steps 4000 --seed 0
    python -m tools.train_synthnet --steps 200 --out /tmp/synthnet.pt   # a quick try

Every step draws fresh faces (never seen twice) of all six styles with wide pose and gaze
ranges, a quarter of them blurred by a 2× down-and-up resize so that the network also reads
softer generator outputs. At the end it measures itself on 1,200 clean faces of another
seed and writes those numbers beside the weights (``synthnet.json``).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from common.cli import one_sentence_errors
from common.device import seed_everything
from common.faces import POSE_GAZE, STYLES, render, sample_params
from common.loop import progress
from common.synthnet import TRAIN_RANGES, WEIGHTS, SynthNet, loss_fn, predict, targets

EVAL_SEED = 1


def draw_batch(n, seed, start, size=64, blur=True):
    """n fresh faces of the six styles (n/6 each) with their params and styles; a quarter blurred."""
    params = sample_params(n, seed, start, **TRAIN_RANGES)
    styles = [STYLES[i % len(STYLES)] for i in range(n)]
    images = torch.empty(n, 3, size, size)
    for k, style in enumerate(STYLES):
        idx = torch.arange(k, n, len(STYLES))
        images[idx] = render({name: v[idx] for name, v in params.items()}, style, size)
    if blur:
        soft = torch.arange(n) % 4 == 0
        small = F.interpolate(images[soft], scale_factor=0.5, mode="bilinear", antialias=True)
        images[soft] = F.interpolate(small, size=(size, size), mode="bilinear")
    return images, params, styles


def evaluate(net, n=1200):
    """Accuracy on clean faces of another seed: MAE in degrees per angle, per style; attribute accuracy."""
    images, params, styles = draw_batch(n, EVAL_SEED, 0, blur=False)
    out = predict(images, net)
    t = targets(params, styles)
    error = (out["pose_gaze"] - t["pose_gaze"] * 30).abs()
    report = {"faces": n, "mae_degrees": {}}
    for k, style in enumerate(STYLES):
        idx = torch.arange(k, n, len(STYLES))
        report["mae_degrees"][style] = dict(zip(POSE_GAZE, [round(v, 2) for v in error[idx].mean(0).tolist()]))
    report["mae_degrees"]["all"] = dict(zip(POSE_GAZE, [round(v, 2) for v in error.mean(0).tolist()]))
    report["accuracy"] = {
        "beard": ((out["attributes"][:, 0] > 0.5).float() == t["attributes"][:, 0]).float().mean().item(),
        "glasses": ((out["attributes"][:, 1] > 0.5).float() == t["attributes"][:, 1]).float().mean().item(),
        "hair_style (not mask)": (out["hair_style"].argmax(1) == t["hair_style"])[
            torch.tensor([s != "mask" for s in styles])].float().mean().item(),
        "style": (out["style"].argmax(1) == t["style"]).float().mean().item()}
    report["accuracy"] = {k: round(v, 4) for k, v in report["accuracy"].items()}
    return report


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=60)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--eval-faces", type=int, default=1200, help="faces of another seed to measure it on")
    args = ap.parse_args(argv)
    seed_everything(args.seed)
    net = SynthNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    start = time.time()
    bar = progress(args.steps, desc="synthnet")
    for step in range(args.steps):
        images, params, styles = draw_batch(args.batch_size, args.seed, step * args.batch_size)
        loss = loss_fn(net(images), targets(params, styles), styles)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    net.eval()
    report = evaluate(net, args.eval_faces)
    report.update(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                  train_minutes=round((time.time() - start) / 60, 1),
                  command=" ".join(["python -m tools.train_synthnet", *(sys.argv[1:] if argv is None else argv)]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"model": half, "config": {"width": 32, "features": 256}}, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"weights: {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
