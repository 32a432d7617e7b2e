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
Every generator loss is α·pixel + β·GAN (eq. 1, α = 1, β = 0.05) with a hinge GAN loss
(model.py: compute_g_loss, compute_d_loss).
Each stage folder is a complete run (config.json, log.csv, samples/, checkpoint.pt, loss.png);
--resume --out <pipeline> skips the finished stages, continues the unfinished one, and trains a stage
again from scratch when a stage it starts from was made longer (sr_degradation/pipeline.py: plan).

Below: one function per stage (train_h2l, train_l2h, train_finetune), then train_pipeline, which calls
them in the order of Fig. 2; main ends the bare command with eval.py, after training and apart from it.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common import distributed
from common.cli import (HelpFormatter, add_common_args, data_folders, one_sentence_errors, parse_args,
                        parse_with_preset, peek_flag, positive_int, resume_config)
from common.device import autocast, pick_device, seed_everything, to_device, use_amp
from common.folders import check_out, claim_folder, new_run_dir, write_config
from common.loop import Run
from common.plots import save_image_rows
from sr_degradation import pipeline
from sr_degradation.data import Batches, HeldOut, bicubic_down, load_faces
from sr_degradation.model import ARGUMENTS, NETWORKS, build, compute_d_loss, compute_g_loss
from sr_degradation.pipeline import (PIPELINE_ONLY, REAL_LOW, STAGES, STEPS_OF, check_started_from, hand_over,
                                     with_sizes_of)

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
STAGE_NETWORKS = {"h2l": ("H2L", "D_low"), "l2h": ("L2H", "D_high"), "finetune": NETWORKS,
                  "bicubic": ("L2H", "D_high"), None: NETWORKS}


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parser():
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
    ap.add_argument("--data-high", metavar="PATH", help="folder of high-resolution faces (default: built-in photos); "
                                                        "its last max(--fid-faces, 8) images are held out")
    ap.add_argument("--data-low", metavar="PATH", help="folder of real low-resolution faces (default: built-in); "
                                                       "its last max(--fid-faces, 8) images are held out")
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
    return add_common_args(ap)


def parse(argv):
    """``(args, resumed)``: the command line of one ``--stage`` (``resumed``: the checkpoint it continues,
    or None), or of the pipeline (``args.stage`` None, ``resumed`` None). It reads flags and config.json
    only: the networks a stage starts from are loaded by ``train_one_stage`` and ``train_pipeline``."""
    ap = parser()
    stage = peek_flag(argv, "--stage", None)
    if stage is not None and stage not in STAGES:
        ap.parse_args(argv)                                   # argparse names the valid stages and exits
    args, resumed = parse_stage(ap, argv, stage) if stage else (parse_pipeline(ap, argv), None)
    if args.data:
        ap.error("this paper has two unpaired sets: give --data-high and --data-low instead of --data")
    if args.fid_faces == 1:
        ap.error("--fid-faces must be 0 (no FID) or at least 2: FID compares two sets of faces")
    try:
        build(**model_args(args))
    except ValueError as err:
        ap.error(str(err))
    return args, resumed


def parse_stage(ap, argv, stage):
    """One --stage's command line: the preset's values for that stage (``--steps``: its length), and
    --resume as for any run. Without --out, the run folder is named now, for the resume command."""
    presets = {name: {**{k: v for k, v in p.items() if k not in PIPELINE_ONLY}, "steps": p[STEPS_OF[stage]]}
               for name, p in PRESETS.items()}
    args, resumed = parse_args(ap, argv, presets, PAPER)
    given = [k for k in PIPELINE_ONLY if getattr(args, k, None) is not None]
    if given:
        ap.error(f"--{given[0].replace('_', '-')} belongs to the pipeline; with --stage, --steps sets "
                 f"the stage's length")
    needs = {"l2h": ("h2l_run",), "finetune": ("l2h_run", "h2l_run")}.get(stage, ())
    for k in ("h2l_run", "l2h_run"):
        if getattr(args, k) and k not in needs:
            ap.error(f"--{k.replace('_', '-')} is read by "
                     f"{'--stage l2h and finetune' if k == 'h2l_run' else '--stage finetune'} only")
    if stage == "l2h" and not args.h2l_run:
        ap.error("--stage l2h needs --h2l-run DIR: the h2l stage folder whose High-to-Low makes its inputs "
                 "(or use --stage bicubic for the baseline)")
    if stage == "finetune" and not args.l2h_run:
        ap.error("--stage finetune needs --l2h-run DIR: an l2h stage folder (trained on High-to-Low)")
    values = {k: v for k, v in vars(args).items() if k not in PIPELINE_ONLY}
    return argparse.Namespace(**{**values, "out": str(new_run_dir(args.out, PAPER))}), resumed


def parse_pipeline(ap, argv):
    """The pipeline's command line: the preset's values as defaults, and on --resume the pipeline's
    config.json fills every flag not given (a given flag that differs is refused, as for one run)."""
    args = parse_with_preset(ap, argv, PRESETS)
    if args.steps is not None:
        ap.error("the pipeline has one length per stage: give --h2l-steps, --l2h-steps or --finetune-steps "
                 "(--steps is for one --stage)")
    if args.h2l_run or args.l2h_run:
        ap.error("the pipeline trains its own stages: --h2l-run and --l2h-run are for --stage l2h / finetune")
    out = check_out(args.out, data_folders(args))
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


def setup(args, faces, start_from=None):
    """What every stage starts with: the device, whether --amp runs, the training batches and the
    held-out faces, and this stage's networks (seeded; ``start_from``: trained weights to begin with)
    on the device with their optimisers."""
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    data, test = Batches(faces, args, device, low=args.stage in REAL_LOW), HeldOut(faces, args, device, amp)
    seed_everything(args.seed)
    models = build(**model_args(args))
    for name, net in (start_from or {}).items():
        models[name].load_state_dict(net.state_dict())
    models = {name: to_device(net, device, args.channels_last) for name, net in models.items()}
    return device, amp, data, test, models, adam(models, args.lr)


def start_run(args, models, optimizers, resumed, state, columns, resume_hint):
    """The stage's ``common.loop.Run``: its folder, log.csv columns, checkpoints and Ctrl-C."""
    return Run(args, PAPER, models, model_args(args), optimizers, resumed=resumed, state=state,
               images_per_step=args.batch_size, columns=columns, bar_keys=("loss_G",), desc=f"{PAPER} {args.stage}",
               resume_hint=resume_hint)


# ----------------------------------------------------------------------------- stage 1: High-to-Low


def train_h2l(args, resumed, faces, resume_hint=None):
    """Stage 1 (§VII, Fig. 2): High-to-Low learns to degrade HR faces from unpaired real LR faces."""
    device, amp, data, test, models, optimizers = setup(args, faces)
    run = start_run(args, models, optimizers, resumed, dict(batches=data),
                    ["loss_D_low", "pixel_h2l", "gan_h2l", "loss_G", "fid_h2l"], resume_hint)
    if test.extractor and run.writes and not run.resumed:
        run.log_eval(0, fid_h2l=test.fid_degraded(models["H2L"]))         # before any training

    nets = distributed.wrap(models)          # as the steps call them: under torchrun, DistributedDataParallel
    H2L, D_low = nets["H2L"], nets["D_low"]
    for step in run.steps():
        # critic steps (§X: D:G = 5:1), each on a fresh batch: real LR faces (other people) against
        # High-to-Low's degradations of HR faces, made without gradients
        loss_d = {}
        for _ in range(args.d_steps):
            high, low = data.next_high(), data.next_low()
            with autocast(device, amp), torch.no_grad():
                fake_low = models["H2L"](high, data.noise(len(high)))
            with autocast(device, amp):
                loss_d = compute_d_loss(D_low=(D_low, low, fake_low))                      # hinge
            update([optimizers["D_low"]], loss_d["loss_D"])

        # generator step (eq. 1): l = α·pixel + β·GAN, pixel against the average-pooled HR face; the
        # critic frozen (no gradient into it, none exchanged for it under torchrun)
        high = data.next_high()
        with autocast(device, amp), distributed.frozen(D_low):
            loss_g = compute_g_loss(high, H2L, D_low, data.noise(len(high)), alpha=ALPHA, beta=BETA)
        update([optimizers["H2L"]], loss_g["loss_G"])

        run.log(step, loss_D_low=loss_d.get("loss_D_low"), **loss_g)
        if test.extractor and run.due(step, args.fid_every):
            run.log_eval(step, fid_h2l=test.fid_degraded(models["H2L"]))  # degradation realism
        if run.due(step, args.sample_every):
            save_image_rows([test.high[:8], test.degraded(models["H2L"], 8), test.low[:8]],
                            run.dir / "samples" / f"step_{step:07d}.png",
                            row_labels=["HR (held out)", "High-to-Low(HR)", "real LR (others)"], scale=2)
        run.save(step)
    return run.finish(title="sr_degradation h2l: High-to-Low")


# ----------------------------------------------------------------------------- stage 2: Low-to-High


def train_l2h(args, resumed, faces, handed, resume_hint=None):
    """Stage 2 (§X): Low-to-High learns 16→64 super-resolution on pairs (High-to-Low(HR, fresh z), HR),
    with the High-to-Low handed over from the h2l stage frozen. ``--stage bicubic`` (nothing handed
    over): on pairs (bicubic(HR), HR) instead, the baseline of Table 2 ("Low-to-High trained on bicubic
    pairs")."""
    device, amp, data, test, models, optimizers = setup(args, faces)
    frozen = handed.networks.get("H2L")
    if frozen is not None:
        frozen = to_device(frozen, device, args.channels_last).requires_grad_(False)    # eval mode (§X)
    run = start_run(args, models, optimizers, resumed, dict(batches=data, **handed.recorded()),
                    ["loss_D_high", "pixel_l2h", "gan_l2h", "loss_G", "fid_sr", "psnr_db"], resume_hint)

    def degrade(high):
        """The LR half of a training pair: High-to-Low(HR, fresh noise) (§X), or bicubic(HR) for the baseline."""
        if frozen is None:
            return bicubic_down(high)
        with torch.no_grad():
            return frozen(high, data.noise(len(high)))

    if test.extractor and run.writes and not run.resumed:
        run.log_eval(0, fid_sr=test.fid_super_resolved(models["L2H"]), psnr_db=test.psnr_db(models["L2H"]))
    nets = distributed.wrap(models)          # as the steps call them: under torchrun, DistributedDataParallel
    L2H, D_high = nets["L2H"], nets["D_high"]
    for step in run.steps():
        gan_phase = step > args.pixel_warmup       # before: pixel loss alone, no critic (--pixel-warmup)
        # critic steps (§X: D:G = 5:1; none before the GAN phase), each on a fresh batch: HR faces against
        # Low-to-High's super-resolutions of their degradations, made without gradients
        loss_d = {}
        for _ in range(args.d_steps if gan_phase else 0):
            high = data.next_high()
            with autocast(device, amp), torch.no_grad():
                fake_high = models["L2H"](degrade(high))
            with autocast(device, amp):
                loss_d = compute_d_loss(D_high=(D_high, high, fake_high))                 # hinge
            update([optimizers["D_high"]], loss_d["loss_D"])

        # generator step (eq. 1; before the GAN phase α·pixel alone): pixel against the HR face; the critic frozen
        high = data.next_high()
        with autocast(device, amp), distributed.frozen(D_high):
            loss_g = compute_g_loss(high, L2H=L2H, D_high=D_high if gan_phase else None, low=degrade(high),
                                    alpha=ALPHA, beta=BETA)
        update([optimizers["L2H"]], loss_g["loss_G"])

        run.log(step, loss_D_high=loss_d.get("loss_D_high"), **loss_g)
        if test.extractor and run.due(step, args.fid_every):
            run.log_eval(step, fid_sr=test.fid_super_resolved(models["L2H"]), psnr_db=test.psnr_db(models["L2H"]))
        if run.due(step, args.sample_every):
            save_image_rows([test.low[:8], test.super_resolved(models["L2H"], 8)],
                            run.dir / "samples" / f"step_{step:07d}.png", row_labels=["real LR input", "Low-to-High"],
                            scale=2)
        run.save(step)
    return run.finish(title=f"sr_degradation {args.stage}: Low-to-High"
                            + (" on bicubic pairs" if frozen is None else " on High-to-Low's outputs"))


# ----------------------------------------------------------------------------- stage 3: fine-tune both


def train_finetune(args, resumed, faces, handed, resume_hint=None):
    """Stage 3 (§X: "fine-tuned them together for another 2,000 generator updates"): both generators
    and both critics, starting from the h2l and l2h stages' networks (``handed``), end to end
    (Low-to-High's loss flows back into High-to-Low); fresh optimisers."""
    device, amp, data, test, models, optimizers = setup(args, faces, start_from=handed.networks)
    run = start_run(args, models, optimizers, resumed, dict(batches=data, **handed.recorded()),
                    ["loss_D_low", "loss_D_high", "pixel_h2l", "gan_h2l", "pixel_l2h", "gan_l2h", "loss_G",
                     "fid_h2l", "fid_sr"], resume_hint)
    if test.extractor and run.writes and not run.resumed:
        run.log_eval(0, fid_h2l=test.fid_degraded(models["H2L"]), fid_sr=test.fid_super_resolved(models["L2H"]))

    nets = distributed.wrap(models)          # as the steps call them: under torchrun, DistributedDataParallel
    H2L, D_low, L2H, D_high = (nets[k] for k in NETWORKS)
    for step in run.steps():
        # critic steps (§X: D:G = 5:1), both critics on each fresh batch: real LR faces against degraded HR
        # faces, HR faces against the super-resolutions of those degradations, made without gradients
        loss_d = {}
        for _ in range(args.d_steps):
            high, low = data.next_high(), data.next_low()
            with autocast(device, amp), torch.no_grad():
                fake_low = models["H2L"](high, data.noise(len(high)))
                fake_high = models["L2H"](fake_low)
            with autocast(device, amp):
                loss_d = compute_d_loss(D_low=(D_low, low, fake_low), D_high=(D_high, high, fake_high))  # hinge
            update([optimizers["D_low"], optimizers["D_high"]], loss_d["loss_D"])

        # generator step: eq. 1 for each generator, summed; Low-to-High reads High-to-Low's output (end to
        # end); both critics frozen
        high = data.next_high()
        with autocast(device, amp), distributed.frozen(D_low), distributed.frozen(D_high):
            loss_g = compute_g_loss(high, H2L, D_low, data.noise(len(high)), L2H, D_high, alpha=ALPHA, beta=BETA)
        update([optimizers["H2L"], optimizers["L2H"]], loss_g["loss_G"])

        run.log(step, loss_D_low=loss_d.get("loss_D_low"), loss_D_high=loss_d.get("loss_D_high"), **loss_g)
        if test.extractor and run.due(step, args.fid_every):
            run.log_eval(step, fid_h2l=test.fid_degraded(models["H2L"]), fid_sr=test.fid_super_resolved(models["L2H"]))
        if run.due(step, args.sample_every):
            save_image_rows([test.high[:8], test.degraded(models["H2L"], 8), test.low[:8],
                             test.super_resolved(models["L2H"], 8)],
                            run.dir / "samples" / f"step_{step:07d}.png", scale=2,
                            row_labels=["HR (held out)", "High-to-Low(HR)", "real LR input", "Low-to-High"])
        run.save(step)
    return run.finish(title="sr_degradation finetune: both together")


# ----------------------------------------------------------------------------- the pipeline, or one stage


def train_pipeline(args):
    """Fig. 2, the bare command: the stages in order, each in a run folder of its own under the pipeline
    folder and trained as ``--stage`` trains it alone. ``pipeline.plan`` says which this command trains:
    a finished stage is skipped, an unfinished one continued, one whose earlier stage changed trained
    again from scratch (one line each). Returns the pipeline folder."""
    root = new_run_dir(args.out, PAPER)
    args = argparse.Namespace(**{**vars(args), "out": str(root)})
    todo = pipeline.plan(args, root)                     # {stage: "new", "resume" or "retrain"}, in order
    faces = load_faces(args, low=any(stage in REAL_LOW for stage in todo))     # once, for every stage
    pick_device(args.device)                             # under torchrun: join the process group now
    if distributed.rank() == 0:                          # under torchrun, rank 0 alone writes
        claim_folder(root)                               # one process per pipeline folder, before writing
        write_config(root, args)
    hint = f"python {PAPER}/train.py --resume --out {root}"                    # what Ctrl-C prints, every stage
    h2l_run, l2h_run = str(root / "h2l"), str(root / "l2h")

    # Each stage: pipeline.enter gives its command line and the checkpoint it continues; hand_over, the
    # networks it starts from, read from the earlier stages' folders (common.checkpoints.load_networks).
    if "h2l" in todo:           # stage 1 (§VII): High-to-Low learns the degradation from unpaired HR and real LR
        stage_args, resumed = pipeline.enter(args, root, "h2l", todo["h2l"])
        train_h2l(stage_args, resumed, faces, hint)
        distributed.barrier()                            # rank 0's last checkpoint of the stage is written
    if "l2h" in todo:           # stage 2 (§X): Low-to-High on (High-to-Low(HR, z), HR), h2l/'s High-to-Low frozen
        stage_args, resumed = pipeline.enter(args, root, "l2h", todo["l2h"])
        train_l2h(stage_args, resumed, faces, hand_over("l2h", h2l_run), hint)
        distributed.barrier()
    if "finetune" in todo:      # stage 3 (§X): all four networks together, from h2l/'s and l2h/'s
        stage_args, resumed = pipeline.enter(args, root, "finetune", todo["finetune"])
        train_finetune(stage_args, resumed, faces, hand_over("finetune", h2l_run, l2h_run), hint)
        distributed.barrier()
    if "bicubic" in todo:       # Table 2's baseline: Low-to-High on (bicubic(HR), HR)
        stage_args, resumed = pipeline.enter(args, root, "bicubic", todo["bicubic"])
        train_l2h(stage_args, resumed, faces, hand_over("bicubic"), hint)
        distributed.barrier()

    if distributed.rank() == 0:
        print(f"pipeline folder: {root} ({', '.join(s + '/' for s in STAGES if (root / s).is_dir())})")
    return root


def train_one_stage(args, resumed):
    """``--stage``: one stage alone, from the stage folders that ``--h2l-run`` / ``--l2h-run`` name."""
    handed = hand_over(args.stage, args.h2l_run, args.l2h_run)     # their networks (common.checkpoints.load_networks)
    if resumed is not None:
        check_started_from(handed, resumed, args.out)             # …still where this run started from
    elif handed.steps:
        args = with_sizes_of(args, handed)                        # a new run takes their network sizes
    faces = load_faces(args, low=args.stage in REAL_LOW)
    hint = f"python {PAPER}/train.py --stage {args.stage} --resume --out {args.out}"
    if args.stage == "h2l":
        return train_h2l(args, resumed, faces, hint)
    if args.stage == "finetune":
        return train_finetune(args, resumed, faces, handed, hint)
    return train_l2h(args, resumed, faces, handed, hint)            # l2h, or bicubic (nothing handed over)


@one_sentence_errors
def main(argv=None):
    args, resumed = parse(argv)
    if args.stage is not None:
        return train_one_stage(args, resumed)
    root = train_pipeline(args)

    # After training and apart from it: the bare command ends with eval.py on every stage (Table 2, the
    # figures), in the process that writes (under torchrun, rank 0)
    if distributed.rank() == 0 and args.fid_faces:
        from sr_degradation import eval as evaluate      # imported here only: training never needs eval.py
        evaluate.main(["--run", str(root), "--faces", str(args.fid_faces)])
    elif distributed.rank() == 0:
        print(f"evaluate with: python {PAPER}/eval.py --run {root}")
    return root


if __name__ == "__main__":
    main()
