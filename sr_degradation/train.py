"""Learn the degradation first (High-to-Low), then super-resolve with it (Low-to-High), then both (§VII–X).

    python sr_degradation/train.py                          # the whole pipeline, quick preset (2-core CPU)
    python sr_degradation/train.py --resume --out runs/sr_degradation/<time>   # continue a pipeline
    python sr_degradation/train.py --preset paper --device cuda --amp           # the authors' widths
    python sr_degradation/train.py --data-high ~/faces_64 --data-low ~/widerface_16   # your own faces

    python sr_degradation/train.py --stage h2l --out runs/sr_degradation/h2l            # one stage alone
    python sr_degradation/train.py --stage l2h --h2l-run runs/sr_degradation/h2l --out runs/sr_degradation/l2h
    python sr_degradation/train.py --stage finetune --l2h-run runs/sr_degradation/l2h --out runs/sr_degradation/ft
    python sr_degradation/train.py --stage bicubic --out runs/sr_degradation/bicubic    # the baseline: bicubic pairs

The pipeline (Fig. 2) writes runs/sr_degradation/<time>/ with one run folder per stage:
  h2l/       High-to-Low turns clean HR faces (plus noise) into LR faces that its 16×16 critic cannot
             tell from *real* LR faces of other people (unpaired), while staying close to the
             average-pooled HR face;
  l2h/       Low-to-High learns 16→64 on pairs (High-to-Low(HR, fresh noise), HR), with h2l/'s
             High-to-Low frozen;
  finetune/  both generators and both critics train together, end to end;
  bicubic/   (--with-bicubic) Low-to-High on (bicubic(HR), HR) pairs: the baseline of Table 2;
Every generator loss is α·pixel + β·GAN (eq. 1, α = 1, β = 0.05) with a hinge GAN loss.
Each stage folder is a complete run (config.json, log.csv, samples/, checkpoint.pt, loss.png);
--resume --out <pipeline> skips the finished stages and continues the unfinished one.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common.loop import Run
from common.metrics import psnr
from common.plots import save_image_rows
from common.run import (HelpFormatter, add_common_args, autocast, load_models, load_run,
                        new_run_dir, one_sentence_errors, parse_args, parse_with_preset, peek_flag, pick_device, positive_int,
                        outputs, resume_config, seed_everything, to_device, use_amp, write_config)
from sr_degradation import eval as evaluate
from sr_degradation.data import Batches, HeldOut, bicubic_down, load_faces
from sr_degradation.model import (ARGUMENTS, NETWORKS, build, downsample_target, generator_loss, hinge_d_loss,
                                  hinge_g_loss, pixel_loss)

PAPER = "sr_degradation"
# §X: Adam lr 1e-4, β = (0, 0.9), D:G = 5:1, ~570k generator updates per network, 2k to fine-tune.
# paper: the reference code's widths (H2L 64 ch, 12/3/2 blocks; L2H 256 ch, 12/3 blocks; critics 128 ch).
# quick: the same layout, thinner and shallower, so that each stage fits a few minutes on 2 CPU cores.
PRESETS = {
    "quick": dict(size=64, batch_size=16, lr=1e-4, d_steps=5, z_dim=64, h2l_width=16, h2l_blocks=[1, 2, 2],
                  l2h_width=32, l2h_blocks=[4, 2], l2h_residual=True, pixel_warmup=2000, d_low_width=32,
                  d_high_width=16, high_faces=5000,
                  low_faces=5000, h2l_steps=600, l2h_steps=2000, finetune_steps=100, with_bicubic=True, amp=True,
                  sample_every=500, ckpt_every=500, log_every=20, fid_every=200),
    "paper": dict(size=64, batch_size=32, lr=1e-4, d_steps=5, z_dim=64, h2l_width=64, h2l_blocks=[12, 3, 2],
                  l2h_width=256, l2h_blocks=[12, 3], l2h_residual=False, pixel_warmup=0, d_low_width=128,
                  d_high_width=128, high_faces=50_000,
                  low_faces=50_000, h2l_steps=570_000, l2h_steps=570_000, finetune_steps=2000, with_bicubic=True,
                  amp=False, sample_every=5000, ckpt_every=5000, log_every=100, fid_every=5000),
}
ALPHA, BETA = 1.0, 0.05     # eq. 1 weights (§X)
STAGES = ("h2l", "l2h", "finetune", "bicubic")              # the pipeline's order
STAGE_NETWORKS = {"h2l": ("H2L", "D_low"), "l2h": ("L2H", "D_high"), "finetune": NETWORKS,
                  "bicubic": ("L2H", "D_high"), None: NETWORKS}
STEPS_OF = {"h2l": "h2l_steps", "l2h": "l2h_steps", "finetune": "finetune_steps", "bicubic": "l2h_steps"}
PIPELINE_ONLY = ("h2l_steps", "l2h_steps", "finetune_steps", "with_bicubic")


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parse(argv):
    """``(args, resumed)`` for one ``--stage``; ``(args, None)`` with ``args.stage = None`` for the pipeline."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--stage", choices=STAGES,
                    help="train one stage alone: h2l (the degradation), l2h (super-resolution on h2l's outputs), "
                         "finetune (both), bicubic (the baseline). Default: the whole pipeline")
    ap.add_argument("--h2l-run", metavar="DIR", help="--stage l2h / finetune: the h2l stage folder to start from")
    ap.add_argument("--l2h-run", metavar="DIR",
                    help="--stage finetune: the l2h stage folder (its h2l folder is read from its config)")
    pipe = ap.add_argument_group("pipeline (without --stage)")
    pipe.add_argument("--h2l-steps", type=positive_int, help="generator updates of stage h2l")
    pipe.add_argument("--l2h-steps", type=positive_int, help="generator updates of stage l2h and of the baseline")
    pipe.add_argument("--finetune-steps", type=positive_int, help="generator updates of the joint fine-tune")
    pipe.add_argument("--with-bicubic", action=argparse.BooleanOptionalAction,
                      help="also train the baseline: Low-to-High on bicubic pairs (bicubic/)")
    ap.add_argument("--data-high", metavar="PATH", help="folder of high-resolution faces (default: built-in photos)")
    ap.add_argument("--data-low", metavar="PATH", help="folder of real low-resolution faces (default: built-in)")
    ap.add_argument("--no-augment", action="store_true", help="no §X flip/scale/rotation/colour augmentation")
    ap.add_argument("--z-dim", type=positive_int, help="High-to-Low's noise size")
    ap.add_argument("--h2l-width", type=positive_int, help="High-to-Low's channels")
    ap.add_argument("--h2l-blocks", type=non_negative_int, nargs=3, help="High-to-Low residual blocks at 64, 32, 16 px")
    ap.add_argument("--l2h-width", type=positive_int, help="Low-to-High's channels at 16 px")
    ap.add_argument("--l2h-blocks", type=non_negative_int, nargs=2, help="Low-to-High residual blocks at 16, 32 px")
    ap.add_argument("--l2h-residual", action=argparse.BooleanOptionalAction,
                    help="Low-to-High adds its output to bicubic upsampling (ours; the authors' GEN_DEEP does not)")
    ap.add_argument("--pixel-warmup", type=non_negative_int, metavar="N",
                    help="l2h / bicubic stages: the first N generator updates use the pixel loss alone, with no "
                         "critic updates (ours, as ESRGAN's PSNR-oriented start)")
    ap.add_argument("--d-low-width", type=positive_int, help="channels of High-to-Low's critic (LR faces)")
    ap.add_argument("--d-high-width", type=positive_int, help="channels of Low-to-High's critic (HR faces)")
    ap.add_argument("--d-steps", type=non_negative_int,
                    help="critic updates per generator update (§X: 5; 0: the critics stay as initialised)")
    ap.add_argument("--high-faces", type=positive_int, help="built-in HR training faces")
    ap.add_argument("--low-faces", type=positive_int, help="built-in real LR training faces")
    ap.add_argument("--fid-faces", type=non_negative_int, default=500,
                    help="held-out faces for the FID in log.csv (0: no FID)")
    ap.add_argument("--fid-every", type=positive_int, metavar="N", help="FID (synthetic-v1) every N steps")
    add_common_args(ap)

    stage = peek_flag(argv, "--stage", None)
    if stage is None:
        args, resumed = parse_pipeline(ap, argv), None
    elif stage not in STAGES:
        ap.parse_args(argv)                                   # argparse names the valid stages and exits
    else:
        presets = {name: {**{k: v for k, v in p.items() if k not in PIPELINE_ONLY}, "steps": p[STEPS_OF[stage]]}
                   for name, p in PRESETS.items()}
        args, resumed = parse_args(ap, argv, presets, PAPER)
        given = [k for k in PIPELINE_ONLY if getattr(args, k, None) is not None]
        if given:
            ap.error(f"--{given[0].replace('_', '-')} belongs to the pipeline; with --stage, --steps sets "
                     f"the stage's length")
        for k in PIPELINE_ONLY:
            vars(args).pop(k, None)
        needs = {"l2h": ("h2l_run",), "finetune": ("l2h_run", "h2l_run")}.get(args.stage, ())
        for k in ("h2l_run", "l2h_run"):
            if getattr(args, k) and k not in needs:
                ap.error(f"--{k.replace('_', '-')} is read by "
                         f"{'--stage l2h and finetune' if k == 'h2l_run' else '--stage finetune'} only")
        if args.stage == "l2h" and not args.h2l_run:
            ap.error("--stage l2h needs --h2l-run DIR: the h2l stage folder whose High-to-Low makes its inputs "
                     "(or use --stage bicubic for the baseline)")
        if args.stage == "finetune" and not args.l2h_run:
            ap.error("--stage finetune needs --l2h-run DIR: an l2h stage folder (trained on High-to-Low)")
    if args.data:
        ap.error("this paper has two unpaired sets: give --data-high and --data-low instead of --data")
    if args.fid_faces == 1:
        ap.error("--fid-faces must be 0 (no FID) or at least 2: FID compares two sets of faces")
    args.h2l_blocks, args.l2h_blocks = list(args.h2l_blocks), list(args.l2h_blocks)
    try:
        build(**model_args(args))
    except ValueError as err:
        ap.error(str(err))
    return args, resumed


def parse_pipeline(ap, argv):
    """The pipeline's command line: the preset's values as defaults, and on --resume the pipeline's
    config.json fills every flag not given (a given flag that differs is refused, as for one run)."""
    args = parse_with_preset(ap, argv, PRESETS)
    if args.steps is not None:
        ap.error("the pipeline has one length per stage: give --h2l-steps, --l2h-steps or --finetune-steps "
                 "(--steps is for one --stage)")
    if args.h2l_run or args.l2h_run:
        ap.error("the pipeline trains its own stages: --h2l-run and --l2h-run are for --stage l2h / finetune")
    out = Path(args.out) if args.out else None
    if not args.resume:
        if out is not None and (out / "checkpoint.pt").exists():
            raise SystemExit(f"{out} is the run folder of one stage: continue it with --stage and --resume, "
                             f"or choose another --out.")
        if out is not None and (out / "config.json").exists():
            raise SystemExit(f"{out} already holds a pipeline: add --resume to continue it, or choose another --out.")
        return args
    if out is None:
        raise SystemExit("--resume needs --out DIR: the pipeline folder to continue.")
    if not out.is_dir():
        raise SystemExit(f"{out} does not exist: give a pipeline folder (train.py prints where it wrote one).")
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else {}
    if "h2l_steps" not in config:
        raise SystemExit(f"{out} is not an {PAPER} pipeline folder (its config.json is missing or another "
                         f"run's); a single stage's folder continues with --stage and --resume.")
    return resume_config(ap, argv, args, config, out, may_change=PIPELINE_ONLY)


def model_args(args):
    """What build() needs for the networks this stage trains (all four for the pipeline's check);
    stored in every checkpoint. Stage l2h's frozen High-to-Low is not among them: it is read
    from the h2l folder named in the config (``h2l_run``)."""
    networks = STAGE_NETWORKS[args.stage]
    keys = ["size"] + [k for name in networks for k in ARGUMENTS[name]]
    return dict(networks=list(networks), **{k: getattr(args, k) for k in keys})


def adam(models, lr):
    """§X: Adam, lr 1e-4, β1 = 0, β2 = 0.9, one per network."""
    return {name: torch.optim.Adam(net.parameters(), lr, betas=(0.0, 0.9), foreach=True)
            for name, net in models.items()}


def update(optimizers, loss):
    """One step of the networks of ``optimizers`` on ``loss``: gradients go only into their parameters
    (a generator's loss passes through its critic, which must not learn from it)."""
    params = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    for opt in optimizers:
        opt.step()


def hand_over(args, run, stage):
    """Stage hand-over (Fig. 2): the checkpoint of an earlier ``stage`` folder, read with load_run.
    Its networks' sizes become this run's (one line says so where a flag asked for others)."""
    checkpoint = load_run(run, PAPER)
    found = checkpoint["config"].get("stage")
    if found != stage:
        raise SystemExit(f"{run} is a {found} stage folder, not the {stage} stage folder that "
                         f"--{stage}-run needs.")
    if checkpoint["step"] < checkpoint["config"]["steps"]:
        print(f"note: {run} stopped at step {checkpoint['step']} of {checkpoint['config']['steps']}; "
              f"this stage starts from that.")
    taken = {k: v for k, v in checkpoint["model_args"].items() if k != "networks" and getattr(args, k) != v}
    if taken:
        print(f"from {run}: " + ", ".join(f"--{k.replace('_', '-')} {v} (not {getattr(args, k)})"
                                          for k, v in taken.items()))
        vars(args).update(taken)
    return checkpoint


# ----------------------------------------------------------------------------- stage 1: High-to-Low


def train_h2l(args, resumed=None, faces=None):
    """Stage 1 (§VII, Fig. 2): High-to-Low learns to degrade HR faces from unpaired real LR faces."""
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    faces = faces or load_faces(args)
    data, test = Batches(faces, args, device), HeldOut(faces, args, device)
    seed_everything(args.seed)
    models = {name: to_device(net, device, args.channels_last) for name, net in build(**model_args(args)).items()}
    H2L, D_low = models["H2L"], models["D_low"]
    optimizers = adam(models, args.lr)
    run = Run(args, PAPER, models, model_args(args), optimizers, resumed=resumed, state=dict(batches=data),
              images_per_step=args.batch_size,
              columns=["loss_D_low", "pixel_h2l", "gan_h2l", "loss_G", "fid_h2l"], bar_keys=("loss_G",),
              desc="sr_degradation h2l")
    degraded = lambda n: outputs(H2L, test.high[:n], test.z[:n], device=device, amp=amp)   # noqa: E731
    if test.extractor and not run.resumed:
        run.log_eval(0, fid_h2l=test.fid(degraded(test.n), test.low))          # before any training

    for step in run.steps():
        # critic steps (hinge loss), d_steps per generator step (§X: 5:1): real LR faces vs degraded HR faces
        loss_d = None
        for _ in range(args.d_steps):
            high, low = data.next_high(), data.next_low()
            with autocast(device, amp):
                with torch.no_grad():
                    fake_low = H2L(high, data.noise(len(high)))
                loss_d = hinge_d_loss(D_low(low), D_low(fake_low))
            update([optimizers["D_low"]], loss_d)

        # generator step (eq. 1): l = α·pixel + β·GAN, pixel against the average-pooled HR face
        high = data.next_high()
        with autocast(device, amp):
            fake_low = H2L(high, data.noise(len(high)))
            pixel = pixel_loss(fake_low, downsample_target(high))
            gan = hinge_g_loss(D_low(fake_low))
            loss_g = generator_loss(pixel, gan, ALPHA, BETA)
        update([optimizers["H2L"]], loss_g)

        run.log(step, loss_D_low=loss_d, pixel_h2l=pixel, gan_h2l=gan, loss_G=loss_g)
        if test.extractor and run.due(step, args.fid_every):
            run.log_eval(step, fid_h2l=test.fid(degraded(test.n), test.low))      # degradation realism
        if run.due(step, args.sample_every):
            save_image_rows([test.high[:8], degraded(8), test.low[:8]], run.dir / "samples" / f"step_{step:07d}.png",
                            row_labels=["HR (held out)", "High-to-Low(HR)", "real LR (others)"], scale=2)
        run.save(step)
    return run.finish(title="sr_degradation h2l: High-to-Low")


# ----------------------------------------------------------------------------- stage 2: Low-to-High


def train_l2h(args, resumed=None, faces=None):
    """Stage 2 (§X): Low-to-High learns 16→64 super-resolution on pairs (High-to-Low(HR, fresh z), HR),
    with the High-to-Low of --h2l-run frozen. ``--stage bicubic``: on pairs (bicubic(HR), HR) instead,
    the baseline of Table 2 (its "Low-to-High trained on bicubic pairs")."""
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    frozen, extra = None, {}
    if args.stage == "l2h":                                  # stage hand-over: the frozen High-to-Low
        h2l = hand_over(args, args.h2l_run, "h2l")
        extra = {"h2l_step": h2l["step"]}
        if resumed is not None and resumed["extra"]["h2l_step"] != h2l["step"]:
            raise SystemExit(f"--resume refused, nothing was changed: this l2h run was trained on the High-to-Low "
                             f"of {args.h2l_run} at step {resumed['extra']['h2l_step']}, which is now at step "
                             f"{h2l['step']}; start a new l2h run.")
        frozen = load_models(build(**{**h2l["model_args"], "networks": ["H2L"]}), h2l, where=args.h2l_run)["H2L"]
        frozen = to_device(frozen, device, args.channels_last).eval().requires_grad_(False)
    faces = faces or load_faces(args, low=False)
    data, test = Batches(faces, args, device, low=False), HeldOut(faces, args, device)
    seed_everything(args.seed)
    models = {name: to_device(net, device, args.channels_last) for name, net in build(**model_args(args)).items()}
    L2H, D_high = models["L2H"], models["D_high"]
    optimizers = adam(models, args.lr)
    run = Run(args, PAPER, models, model_args(args), optimizers, resumed=resumed, state=dict(batches=data, **extra),
              images_per_step=args.batch_size,
              columns=["loss_D_high", "pixel_l2h", "gan_l2h", "loss_G", "fid_sr", "psnr_db"], bar_keys=("loss_G",),
              desc=f"sr_degradation {args.stage}")

    def degrade(high):
        """The LR half of a training pair: High-to-Low(HR, fresh noise) (§X), or bicubic(HR) for the baseline."""
        if frozen is None:
            return bicubic_down(high)
        with torch.no_grad():
            return frozen(high, data.noise(len(high)))

    super_resolved = lambda n: outputs(L2H, test.low[:n], device=device, amp=amp)     # noqa: E731

    def scores():
        """FID of super-resolved real LR faces against HR faces; PSNR on bicubic-downsampled HR faces."""
        high = test.high[:test.n]
        return dict(fid_sr=test.fid(super_resolved(test.n), test.high),
                    psnr_db=psnr(outputs(L2H, bicubic_down(high), device=device, amp=amp), high).mean())

    if test.extractor and not run.resumed:
        run.log_eval(0, **scores())

    for step in run.steps():
        gan_phase = step > args.pixel_warmup       # before: pixel loss alone, no critic (--pixel-warmup)
        # critic steps (hinge loss), d_steps per generator step (§X: 5:1): HR faces vs super-resolved ones
        loss_d = None
        for _ in range(args.d_steps if gan_phase else 0):
            high = data.next_high()
            with autocast(device, amp):
                with torch.no_grad():
                    fake_high = L2H(degrade(high))
                loss_d = hinge_d_loss(D_high(high), D_high(fake_high))
            update([optimizers["D_high"]], loss_d)

        # generator step (eq. 1): l = α·pixel + β·GAN, pixel against the HR face
        high = data.next_high()
        with autocast(device, amp):
            fake_high = L2H(degrade(high))
            pixel = pixel_loss(fake_high, high)
            gan = hinge_g_loss(D_high(fake_high)) if gan_phase else None
            loss_g = generator_loss(pixel, gan, ALPHA, BETA) if gan_phase else ALPHA * pixel
        update([optimizers["L2H"]], loss_g)

        run.log(step, loss_D_high=loss_d, pixel_l2h=pixel, gan_l2h=gan, loss_G=loss_g)
        if test.extractor and run.due(step, args.fid_every):
            run.log_eval(step, **scores())
        if run.due(step, args.sample_every):
            save_image_rows([test.low[:8], super_resolved(8)], run.dir / "samples" / f"step_{step:07d}.png",
                            row_labels=["real LR input", "Low-to-High"], scale=2)
        run.save(step)
    return run.finish(title=f"sr_degradation {args.stage}: Low-to-High"
                            + (" on bicubic pairs" if frozen is None else " on High-to-Low's outputs"))


# ----------------------------------------------------------------------------- stage 3: fine-tune both


def train_finetune(args, resumed=None, faces=None):
    """Stage 3 (§X: "fine-tuned them together for another 2,000 generator updates"): both generators
    and both critics, end to end (Low-to-High's loss flows back into High-to-Low); fresh optimisers."""
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    if resumed is None:                                      # stage hand-over: both earlier stages
        l2h = hand_over(args, args.l2h_run, "l2h")
        args.h2l_run = args.h2l_run or l2h["config"]["h2l_run"]
        h2l = hand_over(args, args.h2l_run, "h2l")
        if h2l["model_args"]["size"] != l2h["model_args"]["size"]:
            raise SystemExit(f"{args.l2h_run} was trained at size {l2h['model_args']['size']} and {args.h2l_run} "
                             f"at {h2l['model_args']['size']}: fine-tune an l2h run with the h2l run it was "
                             f"trained on.")
    faces = faces or load_faces(args)
    data, test = Batches(faces, args, device), HeldOut(faces, args, device)
    seed_everything(args.seed)
    models = build(**model_args(args))
    if resumed is None:
        load_models({k: models[k] for k in ("H2L", "D_low")}, h2l, where=args.h2l_run)
        load_models({k: models[k] for k in ("L2H", "D_high")}, l2h, where=args.l2h_run)
    models = {name: to_device(net, device, args.channels_last) for name, net in models.items()}
    H2L, D_low, L2H, D_high = (models[k] for k in NETWORKS)
    optimizers = adam(models, args.lr)
    run = Run(args, PAPER, models, model_args(args), optimizers, resumed=resumed, state=dict(batches=data),
              images_per_step=args.batch_size,
              columns=["loss_D_low", "loss_D_high", "pixel_h2l", "gan_h2l", "pixel_l2h", "gan_l2h", "loss_G",
                       "fid_h2l", "fid_sr"], bar_keys=("loss_G",), desc="sr_degradation finetune")
    degraded = lambda n: outputs(H2L, test.high[:n], test.z[:n], device=device, amp=amp)  # noqa: E731
    super_resolved = lambda n: outputs(L2H, test.low[:n], device=device, amp=amp)         # noqa: E731

    def fids():
        return dict(fid_h2l=test.fid(degraded(test.n), test.low), fid_sr=test.fid(super_resolved(test.n), test.high))

    if test.extractor and not run.resumed:
        run.log_eval(0, **fids())

    for step in run.steps():
        # critic steps (hinge loss), d_steps per generator step (§X: 5:1), both critics at once
        loss_d_low = loss_d_high = None
        for _ in range(args.d_steps):
            high, low = data.next_high(), data.next_low()
            with autocast(device, amp):
                with torch.no_grad():
                    fake_low = H2L(high, data.noise(len(high)))
                    fake_high = L2H(fake_low)
                loss_d_low = hinge_d_loss(D_low(low), D_low(fake_low))            # real LR vs degraded HR
                loss_d_high = hinge_d_loss(D_high(high), D_high(fake_high))       # HR vs super-resolved
            update([optimizers["D_low"], optimizers["D_high"]], loss_d_low + loss_d_high)

        # generator step: eq. 1 for each generator, summed; Low-to-High reads High-to-Low's output
        high = data.next_high()
        with autocast(device, amp):
            fake_low = H2L(high, data.noise(len(high)))
            pixel_h2l = pixel_loss(fake_low, downsample_target(high))
            gan_h2l = hinge_g_loss(D_low(fake_low))
            fake_high = L2H(fake_low)
            pixel_l2h = pixel_loss(fake_high, high)
            gan_l2h = hinge_g_loss(D_high(fake_high))
            loss_g = generator_loss(pixel_h2l, gan_h2l, ALPHA, BETA) + generator_loss(pixel_l2h, gan_l2h, ALPHA, BETA)
        update([optimizers["H2L"], optimizers["L2H"]], loss_g)

        run.log(step, loss_D_low=loss_d_low, loss_D_high=loss_d_high, pixel_h2l=pixel_h2l, gan_h2l=gan_h2l,
                pixel_l2h=pixel_l2h, gan_l2h=gan_l2h, loss_G=loss_g)
        if test.extractor and run.due(step, args.fid_every):
            run.log_eval(step, **fids())
        if run.due(step, args.sample_every):
            save_image_rows([test.high[:8], degraded(8), test.low[:8], super_resolved(8)],
                            run.dir / "samples" / f"step_{step:07d}.png", scale=2,
                            row_labels=["HR (held out)", "High-to-Low(HR)", "real LR input", "Low-to-High"])
        run.save(step)
    return run.finish(title="sr_degradation finetune: both together")


STAGE_FUNCTIONS = {"h2l": train_h2l, "l2h": train_l2h, "finetune": train_finetune, "bicubic": train_l2h}


# ----------------------------------------------------------------------------- the pipeline


def stage_args(args, root, stage):
    """One stage's command line inside the pipeline: the same as running it alone with --stage."""
    values = {k: v for k, v in vars(args).items() if k not in PIPELINE_ONLY}
    values.update(stage=stage, steps=getattr(args, STEPS_OF[stage]), out=str(root / stage),
                  resume=(root / stage / "checkpoint.pt").exists(),
                  h2l_run=str(root / "h2l") if stage in ("l2h", "finetune") else None,
                  l2h_run=str(root / "l2h") if stage == "finetune" else None)
    return argparse.Namespace(**values)


def train_pipeline(args):
    """Fig. 2: h2l, then l2h on h2l's outputs, then finetune, then (--with-bicubic) the baseline, each in
    its own folder under the pipeline folder. Finished stages are skipped, an unfinished one resumed."""
    root = new_run_dir(args.out, PAPER)
    args.out = str(root)
    todo = []
    for stage in [s for s in STAGES if s != "bicubic" or args.with_bicubic]:
        steps, folder = getattr(args, STEPS_OF[stage]), root / stage
        done = load_run(folder, PAPER)["step"] if (folder / "checkpoint.pt").exists() else 0
        if done >= steps:
            print(f"{stage}: finished at step {done}, skipped")
        else:
            todo.append(stage)
    if not todo:
        raise SystemExit(f"every stage of {root} is finished: give larger --h2l-steps, --l2h-steps or "
                         f"--finetune-steps{'' if args.with_bicubic else ' (or --with-bicubic)'} to continue it.")
    faces = load_faces(args, low="h2l" in todo or "finetune" in todo)     # once, for every stage
    root.mkdir(parents=True, exist_ok=True)
    write_config(root, args)
    for stage in todo:
        sargs = stage_args(args, root, stage)
        resumed = load_run(sargs.out, PAPER) if sargs.resume else None
        STAGE_FUNCTIONS[stage](sargs, resumed, faces)
        reached = load_run(sargs.out, PAPER)["step"]
        if reached < sargs.steps:                            # stopped (Ctrl-C): the later stages need this one
            print(f"pipeline stopped in stage {stage} at step {reached}; continue with --resume --out {root}")
            return root
    print(f"pipeline folder: {root} ({', '.join(s + '/' for s in STAGES if (root / s).is_dir())})")
    if args.data_high or args.data_low or args.fid_faces < 2:     # eval.py measures on built-in held-out faces
        print(f"evaluate with: python {PAPER}/eval.py --run {root}")
    else:                                                         # the super-resolution figure and Table 2
        evaluate.main(["--run", str(root), "--faces", str(args.fid_faces)])
    return root


@one_sentence_errors
def main(argv=None):
    args, resumed = parse(argv)
    if args.stage is None:
        return train_pipeline(args)
    return STAGE_FUNCTIONS[args.stage](args, resumed)


if __name__ == "__main__":
    main()
