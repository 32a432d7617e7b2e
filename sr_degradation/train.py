"""Train High-to-Low (stage 1), then Low-to-High on its outputs (stage 2), then fine-tune both (§X).

    python sr_degradation/train.py --out runs/sr_degradation/h2l                      # stage 1 (--stage h2l), ~5 min CPU
    python sr_degradation/train.py --stage l2h --h2l-run runs/sr_degradation/h2l --out runs/sr_degradation/l2h
    python sr_degradation/train.py --stage l2h --degradation bicubic --out runs/sr_degradation/bicubic   # baseline
    python sr_degradation/train.py --stage finetune --l2h-run runs/sr_degradation/l2h --out runs/sr_degradation/ft
    python sr_degradation/train.py --stage h2l --preset paper --device cuda --amp       # the authors' widths

Stage h2l: High-to-Low turns clean HR faces (plus noise) into LR faces that its 16×16 critic
cannot tell from *real* LR faces of other people (unpaired), while staying close to the
average-pooled HR image. Stage l2h: Low-to-High learns to undo it on pairs
(High-to-Low(HR, fresh noise), HR), or on (bicubic(HR), HR) for the SRGAN-style baseline.
Stage finetune: both generators and both critics train together, end to end.
Every generator loss is α·pixel + β·GAN (eq. 1, α = 1, β = 0.05) with a hinge GAN loss.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch
import torch.nn.functional as F

from common import synthetic
from common.data import DataError, InMemoryBatches, load_image_folder, to_float
from common.metrics import fid
from common.plots import plot_losses, save_image_rows
from common.run import (CsvLogger, ImagesPerSecond, NonFiniteLoss, StopOnInterrupt, add_common_args, apply_preset,
                        autocast, check_finite, load_checkpoint, make_run_dir, pick_device, progress,
                        save_checkpoint, seed_everything)
from common.synthnet import SyntheticFeatures
from sr_degradation.model import (Discriminator, HighToLow, LowToHigh, downsample_target, generator_loss,
                                  hinge_d_loss, hinge_g_loss, pixel_loss)

# §X: Adam lr 1e-4, β = (0, 0.9), D:G = 5:1, ~570k generator updates per network, 2k to fine-tune.
# paper: the reference code's widths (H2L 64 ch, 12/3/2 blocks; L2H 256 ch, 12/3 blocks; critics 128 ch).
# quick: the same layout, thinner and shallower, so each stage fits ~7 min on 2 CPU cores.
PRESETS = {
    "quick": dict(size=64, batch_size=16, lr=1e-4, d_steps=5, h2l_width=16, h2l_blocks=(1, 2, 2), l2h_width=32,
                  l2h_blocks=(4, 2), d_width_lr=32, d_width_hr=16, hr_faces=5000, lr_faces=5000,
                  stage_steps=dict(h2l=600, l2h=400, finetune=100), sample_every=200, ckpt_every=200,
                  log_every=20, fid_every=100),
    "paper": dict(size=64, batch_size=32, lr=1e-4, d_steps=5, h2l_width=64, h2l_blocks=(12, 3, 2), l2h_width=256,
                  l2h_blocks=(12, 3), d_width_lr=128, d_width_hr=128, hr_faces=50_000, lr_faces=50_000,
                  stage_steps=dict(h2l=570_000, l2h=570_000, finetune=2000), sample_every=5000, ckpt_every=5000,
                  log_every=100, fid_every=5000),
}
ALPHA, BETA = 1.0, 0.05     # eq. 1 weights (§X)
NOISE_DIM = 64              # High-to-Low's noise vector, as in the reference (Linear(64, 64·64))
TEST_SEED = 1               # held-out HR and real-LR faces: seed 1, never seen in training (seed 0)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["h2l", "l2h", "finetune"], default="h2l",
                    help="h2l: learn the degradation (default, stage 1); l2h: learn super-resolution; "
                         "finetune: both together")
    ap.add_argument("--h2l-run", type=Path, help="stage l2h: the stage-1 run folder whose High-to-Low makes the inputs")
    ap.add_argument("--l2h-run", type=Path, help="stage finetune: the stage-2 run (its stage-1 run is read from it)")
    ap.add_argument("--degradation", choices=["h2l", "bicubic"], default="h2l",
                    help="stage l2h inputs: High-to-Low outputs (ours) or bicubic downsampling (SRGAN-style baseline)")
    ap.add_argument("--data-hr", metavar="PATH", help="folder of high-resolution faces (default: built-in photos)")
    ap.add_argument("--data-lr", metavar="PATH", help="folder of real low-resolution faces (default: built-in)")
    ap.add_argument("--no-augment", action="store_true", help="no §X flip/scale/rotation/colour augmentation")
    ap.add_argument("--h2l-blocks", type=int, nargs=3, help="High-to-Low residual blocks at 64, 32, 16 px")
    ap.add_argument("--l2h-blocks", type=int, nargs=2, help="Low-to-High residual blocks at 16, 32 px")
    for name in ("d_steps", "h2l_width", "l2h_width", "d_width_lr", "d_width_hr", "hr_faces", "lr_faces",
                 "log_every", "fid_every"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="(default: from --preset)")
    ap.add_argument("--fid-faces", type=int, default=500, help="held-out faces for the FID in log.csv (0: none)")
    add_common_args(ap)
    args = ap.parse_args(argv)
    presets = {name: {**p, "steps": p["stage_steps"][args.stage]} for name, p in PRESETS.items()}
    args = apply_preset(args, presets)
    del args.stage_steps
    args.h2l_blocks, args.l2h_blocks = list(args.h2l_blocks), list(args.l2h_blocks)
    if args.size % 16:
        raise SystemExit(f"--size must be a multiple of 16 (LR is size/4, critics go to 4×4), not {args.size}")
    if args.stage == "l2h" and args.degradation == "h2l" and args.h2l_run is None:
        raise SystemExit("--stage l2h needs --h2l-run DIR (a finished stage-1 run), or --degradation bicubic")
    if args.stage == "finetune" and args.l2h_run is None:
        raise SystemExit("--stage finetune needs --l2h-run DIR (a finished stage-2 run trained on High-to-Low)")
    if args.data:
        raise SystemExit("this paper has two unpaired sets: give --data-hr and --data-lr instead of --data")
    return args


def load_sets(args):
    """(HR uint8 N×3×S×S, real LR uint8 M×3×S/4×S/4): user folders, or the built-in unpaired faces."""
    lr_size = args.size // 4
    built_in = synthetic.sr_unpaired(args.hr_faces, args.lr_faces, args.size, lr_size, seed=0) \
        if not (args.data_hr and args.data_lr) else (None, None)
    hr = load_image_folder(args.data_hr, args.size).images if args.data_hr else built_in[0]
    lr = load_image_folder(args.data_lr, lr_size).images if args.data_lr else built_in[1]
    return hr, lr


def augment(images, geometric):
    """§X augmentation, per image: random horizontal flip; with ``geometric`` also scale ∈ [0.9, 1.1],
    rotation ∈ [−10°, 10°] and colour jitter (brightness ±0.1, contrast and saturation ×[0.9, 1.1]).

    Real LR faces get the flip only: resampling a 16×16 image would add blur of our own on top
    of the degradation that High-to-Low must learn from them.
    """
    n, dev = len(images), images.device
    flip = (torch.rand(n, device=dev) < 0.5).float() * 2 - 1                  # −1 mirrors x
    if not geometric:
        return torch.where(flip.view(-1, 1, 1, 1) < 0, images.flip(3), images)
    angle = (torch.rand(n, device=dev) * 20 - 10) * math.pi / 180
    scale = torch.rand(n, device=dev) * 0.2 + 0.9
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin * flip, cos, torch.zeros_like(cos)], 1)], 1)   # n×2×3
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    rand = lambda: torch.rand(n, 1, 1, 1, device=dev)                        # noqa: E731
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * (0.9 + 0.2 * rand())                              # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * (0.9 + 0.2 * rand()) + (rand() * 0.2 - 0.1)       # contrast, brightness
    return x.clamp(-1, 1)


def bicubic_down(hr, factor=4):
    """The classic synthetic LR image: bicubic (antialiased) downsampling by 4."""
    return F.interpolate(hr, scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def build_models(args):
    """The networks a stage trains, plus a frozen High-to-Low for stage l2h: {name: module}."""
    h2l = lambda: HighToLow(args.h2l_width, args.h2l_blocks, NOISE_DIM, args.size)       # noqa: E731
    l2h = lambda: LowToHigh(args.l2h_width, args.l2h_blocks)                       # noqa: E731
    models = {}
    if args.stage in ("h2l", "finetune"):
        models.update(H2L=h2l(), D_lr=Discriminator(args.size // 4, args.d_width_lr))
    if args.stage in ("l2h", "finetune"):
        models.update(L2H=l2h(), D_hr=Discriminator(args.size, args.d_width_hr))
    return models


def read_config(run):
    """config.json of an earlier stage's run folder."""
    path = Path(run) / "config.json"
    if not path.exists():
        raise SystemExit(f"{run} is not a run folder (no config.json): train that stage first")
    return json.loads(path.read_text())


def load_stage_weights(models, args):
    """Stage l2h: a frozen High-to-Low from --h2l-run. Stage finetune: all four networks from the
    stage-2 run and its stage-1 run (fresh optimisers). The architecture flags come from those runs."""
    run = args.h2l_run if args.stage == "l2h" else args.l2h_run
    sources = {"l2h": {"H2L": run}}.get(args.stage)
    if args.stage == "finetune":
        h2l_run = Path(read_config(run)["h2l_run"])
        sources = {"H2L": h2l_run, "D_lr": h2l_run, "L2H": run, "D_hr": run}
    for name, folder in sources.items():
        path = Path(folder) / "checkpoint.pt"
        if not path.exists():
            raise SystemExit(f"{path} does not exist: finish that stage first")
        models[name].load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["models"][name])


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    if args.stage == "l2h" and args.degradation == "h2l" or args.stage == "finetune":
        # A stage-2 run must match the stage-1 architecture: take the widths from the earlier run.
        earlier = read_config(args.h2l_run or args.l2h_run)
        keys = ["h2l_width", "h2l_blocks", "size"] + (["l2h_width", "l2h_blocks", "d_width_lr", "d_width_hr"]
                                                      if args.stage == "finetune" else [])
        vars(args).update({k: earlier[k] for k in keys})
        if args.stage == "finetune":
            if not earlier.get("h2l_run"):
                raise SystemExit(f"{args.l2h_run} was trained on bicubic pairs: fine-tune a run trained on High-to-Low")
            args.h2l_run = earlier["h2l_run"]
    seed_everything(args.seed)
    run_dir = make_run_dir(args.out, "sr_degradation", args, resume=args.resume)
    try:
        hr_set, lr_set = load_sets(args)
    except DataError as err:
        raise SystemExit(str(err))
    cuda = device.type == "cuda"
    hr_batches = InMemoryBatches(hr_set, batch_size=args.batch_size, device=device, seed=args.seed, channels_last=cuda)
    lr_batches = InMemoryBatches(lr_set, batch_size=args.batch_size, device=device, seed=args.seed + 1,
                                 channels_last=cuda)

    # Models: the stage's generators and critics; stage l2h also holds the frozen High-to-Low.
    models = build_models(args)
    frozen_h2l = None
    if args.stage == "l2h" and args.degradation == "h2l":
        frozen_h2l = {"H2L": HighToLow(args.h2l_width, args.h2l_blocks, NOISE_DIM, args.size)}
        load_stage_weights(frozen_h2l, args)
        frozen_h2l = frozen_h2l["H2L"].to(device).eval().requires_grad_(False)
    if args.stage == "finetune" and not args.resume:
        load_stage_weights(models, args)
    for name, m in models.items():
        models[name] = m.to(device, memory_format=torch.channels_last) if cuda else m.to(device)
    generators = [n for n in ("H2L", "L2H") if n in models]
    critics = [n for n in ("D_lr", "D_hr") if n in models]
    # §X: Adam, lr 1e-4, β1 = 0, β2 = 0.9, for every network.
    opts = {n: torch.optim.Adam(models[n].parameters(), args.lr, betas=(0.0, 0.9), foreach=True) for n in models}
    opt_g = [opts[n] for n in generators]
    opt_d = [opts[n] for n in critics]
    g_params = [p for n in generators for p in models[n].parameters()]
    d_params = [p for n in critics for p in models[n].parameters()]

    # Fixed held-out faces for samples and the FID in log.csv (built-in data only).
    n_test = max(args.fid_faces, 8)
    test_hr, test_lr = synthetic.sr_unpaired(n_test, n_test, args.size, args.size // 4, seed=TEST_SEED)
    test_hr, test_lr = to_float(test_hr).to(device), to_float(test_lr).to(device)
    fixed_z = torch.randn(n_test, NOISE_DIM, device=device)
    extractor = SyntheticFeatures(device) if args.fid_faces and not (args.data_hr or args.data_lr) else None

    def low_res(hr, z):
        """Stage-2 inputs: the degraded HR image (frozen or trained High-to-Low) or bicubic(HR)."""
        if args.stage == "finetune":
            return models["H2L"](hr, z)                                          # end to end (§X fine-tune)
        if frozen_h2l is not None:
            with torch.no_grad():
                return frozen_h2l(hr, z)                                         # fresh noise each time (§X)
        return bicubic_down(hr)

    def evaluate(n):
        """Outputs on the first n held-out faces, in eval mode: H2L(HR) or L2H(real LR)."""
        for m in models.values():
            m.eval()
        with torch.no_grad(), autocast(device, args.amp):
            out = {}
            if "H2L" in models:
                out["H2L"] = models["H2L"](test_hr[:n], fixed_z[:n]).float()
            if "L2H" in models:
                out["L2H"] = models["L2H"](test_lr[:n]).float()
        for m in models.values():
            m.train()
        return out

    def log_fid(values):
        out = evaluate(args.fid_faces)
        if "H2L" in out:
            values["fid_h2l"] = fid(out["H2L"], test_lr, extractor)             # degradation realism
        if "L2H" in out:
            values["fid_sr"] = fid(out["L2H"], test_hr, extractor)              # SR of real LR vs HR

    start, elapsed = 0, 0.0
    if args.resume:
        state = load_checkpoint(run_dir / "checkpoint.pt", models, opts, map_location=device)
        start, elapsed = state["step"], state["extra"]["elapsed"]
        hr_batches.load_state_dict(state["extra"]["hr_batches"])
        lr_batches.load_state_dict(state["extra"]["lr_batches"])
    log = CsvLogger(run_dir / "log.csv", resume_step=start if args.resume else None,
                    columns=["loss_D_lr", "loss_D_hr", "pixel_h2l", "gan_h2l", "pixel_l2h", "gan_l2h", "loss_G",
                             "lr", "img_s", "time_s", "fid_h2l", "fid_sr"])
    if not args.resume and extractor is not None:
        values = {"time_s": 0.0}
        log_fid(values)
        log.log(step=0, **values)                                                # before any training
    speed = ImagesPerSecond(args.batch_size, start, device)
    t0 = time.perf_counter() - elapsed
    bar = progress(args.steps, initial=start, desc=f"sr_degradation {args.stage}")
    aug = (lambda x, geometric: x) if args.no_augment else augment
    zeros = torch.zeros((), device=device)

    def batch():
        """One step's data: augmented HR, augmented real LR, fresh noise z ~ N(0, I) (§X)."""
        hr = aug(next(hr_batches), True)
        lr = aug(next(lr_batches), False)
        return hr, lr, torch.randn(len(hr), NOISE_DIM, device=device)

    with StopOnInterrupt() as stop:
        for step in range(start + 1, args.steps + 1):
            # discriminator steps (hinge loss), d_steps per generator step (§X: 5:1)
            for _ in range(args.d_steps):
                hr, lr, z = batch()
                with autocast(device, args.amp):
                    loss_d_lr = loss_d_hr = zeros
                    with torch.no_grad():
                        fake_lr = models["H2L"](hr, z) if "H2L" in models else None
                        fake_hr = models["L2H"](fake_lr if fake_lr is not None else low_res(hr, z)) \
                            if "L2H" in models else None
                    if "D_lr" in models:     # High-to-Low's critic: real LR faces vs degraded HR faces
                        loss_d_lr = hinge_d_loss(models["D_lr"](lr), models["D_lr"](fake_lr))
                    if "D_hr" in models:     # Low-to-High's critic: HR faces vs super-resolved faces
                        loss_d_hr = hinge_d_loss(models["D_hr"](hr), models["D_hr"](fake_hr))
                for opt in opt_d:
                    opt.zero_grad(set_to_none=True)
                (loss_d_lr + loss_d_hr).backward(inputs=d_params)
                for opt in opt_d:
                    opt.step()

            # generator step (eq. 1): l = α·pixel + β·GAN for each generator the stage trains
            hr, lr, z = batch()
            with autocast(device, args.amp):
                pixel_h2l = gan_h2l = pixel_l2h = gan_l2h = loss_g = zeros
                if "H2L" in models:
                    fake_lr = models["H2L"](hr, z)
                    pixel_h2l = pixel_loss(fake_lr, downsample_target(hr))        # vs the average-pooled HR
                    gan_h2l = hinge_g_loss(models["D_lr"](fake_lr))
                    loss_g = loss_g + generator_loss(pixel_h2l, gan_h2l, ALPHA, BETA)
                if "L2H" in models:
                    sr = models["L2H"](fake_lr if args.stage == "finetune" else low_res(hr, z))
                    pixel_l2h = pixel_loss(sr, hr)                                # vs the HR image
                    gan_l2h = hinge_g_loss(models["D_hr"](sr))
                    loss_g = loss_g + generator_loss(pixel_l2h, gan_l2h, ALPHA, BETA)
            for opt in opt_g:
                opt.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)
            for opt in opt_g:
                opt.step()
            bar.update()

            if step % args.log_every == 0 or step == args.steps:
                losses = dict(loss_D_lr=loss_d_lr, loss_D_hr=loss_d_hr, pixel_h2l=pixel_h2l, gan_h2l=gan_h2l,
                              pixel_l2h=pixel_l2h, gan_l2h=gan_l2h, loss_G=loss_g)
                # a network this stage does not train leaves its cells empty (its loss is still `zeros`)
                values = {name: loss.item() for name, loss in losses.items() if loss is not zeros}
                try:
                    check_finite(step, checkpoint=run_dir / "checkpoint.pt", **values)
                except NonFiniteLoss as err:
                    raise SystemExit(str(err))
                values.update(lr=args.lr, img_s=speed(step), time_s=time.perf_counter() - t0)
                if extractor is not None and (step % args.fid_every == 0 or step == args.steps):
                    log_fid(values)
                log.log(step=step, **values)
                bar.set_postfix(G=f"{values['loss_G']:.3f}",
                                D=f"{values.get('loss_D_lr', 0) + values.get('loss_D_hr', 0):.3f}")
            if step % args.sample_every == 0 or step == args.steps:
                out = evaluate(8)
                rows, labels = [], []
                if "H2L" in out:
                    rows += [test_hr[:8], out["H2L"], test_lr[:8]]
                    labels += ["HR (held out)", "High-to-Low(HR)", "real LR (others)"]
                if "L2H" in out:
                    rows += [test_lr[:8], out["L2H"]]
                    labels += ["real LR input", "Low-to-High"]
                save_image_rows(rows, run_dir / "samples" / f"step_{step:07d}.png", row_labels=labels, scale=2)
            if step % args.ckpt_every == 0 or step == args.steps or stop.requested:
                save_checkpoint(run_dir / "checkpoint.pt", step, models, opts,
                                extra={"hr_batches": hr_batches.state_dict(), "lr_batches": lr_batches.state_dict(),
                                       "elapsed": time.perf_counter() - t0},
                                config=vars(args))
            if stop.requested:
                print(f"\nstopped at step {step}; continue with --resume --out {run_dir}")
                break
    bar.close()
    plot_losses(run_dir / "log.csv", run_dir / "loss.png", title=f"sr_degradation {args.stage}")
    print(f"run folder: {run_dir} (samples/, log.csv, loss.png, checkpoint.pt)")
    return run_dir


if __name__ == "__main__":
    main()
