"""Train a BEGAN whose generator is an image-based refiner (models A, B, C) or BEGAN's noise generator.

    python began_refiner/train.py                       # quick: model B, 32×32, ~10 min on 2 CPU cores
    python began_refiner/train.py --generator A         # or C, or began (the noise baseline)
    python began_refiner/train.py --preset long         # the noise BEGAN for 16,000 steps (~47 min on 2 cores)
    python began_refiner/train.py --preset paper --device cuda --amp      # 64×64, n = 64 (§3)
    python began_refiner/train.py --data ~/celeba/img_align_celeba         # your own faces

The refiner is trained on real faces only (§2.1): it sees a downscaled copy of a real
image and must produce a full-size image that BEGAN's autoencoder discriminator takes for
real (eq. 4) while staying close to the original (eq. 3). At test time it is fed
downscaled *synthetic* faces (eval.py).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from began_refiner.data import held_out_faces, synthetic_inputs, training_faces
from began_refiner.model import (REFINERS, autoencoder_loss, build, convergence, discriminator_loss, generator_loss,
                                 image_pyramid, reconstruction_loss, update_k)
from common import distributed
from common.cli import (HelpFormatter, add_common_args, at_least, fraction, one_sentence_errors, parse_args, peek_flag,
                        positive_int)
from common.data import InMemoryBatches
from common.device import autocast, outputs, pick_device, seed_everything, to_device, use_amp
from common.ema import add_ema_arg, with_average
from common.loop import Run
from common.metrics import FidReference
from common.plots import save_image_rows
from common.synthnet import SyntheticFeatures

# §3: Adam, lr 0.001, batch 25, 64×64 from an 8×8 lowest input, n = 64; γ, λ_k and the halving every 100k
# steps are the BEGAN reference's. quick: the same network at half resolution (32×32 from 4×4, four blocks as
# in the paper) and n = 16, with γ = 1 and λ_k = 0.05 so that k_t acts (README: at γ = 0.5, λ_k = 0.001 the
# noise BEGAN gave one face for every z and k_t stayed at 0 for the refiners); the rate 5e-4 (not the paper's
# 1e-3), halved every 1,000 steps and ramped linearly to 0 over the last third (--lr-ramp, not in the paper), so
# that the oscillation k_t drives has died down when training ends: at 1e-3 the end FID was a draw, at 2.5e-4
# the refinements were too soft for dlib to find (README, "Where we differ"). long: the noise BEGAN for
# 16,000 steps, sampled from a moving average of G's weights (--ema 0.999, not in the paper: it lowered the end
# FID from 71.3 to 60.6, README).
QUICK = dict(size=32, lowest=4, width=16, z_dim=32, batch_size=25, steps=3000, lr=5e-4, train_faces=10_000, gamma=1.0,
             lambda_k=0.05, lr_half_every=1000, lr_ramp=0.33, amp=True, sample_every=500, ckpt_every=500, log_every=25,
             fid_every=250)
PRESETS = {
    "quick": QUICK,
    "long": dict(QUICK, generator="began", steps=16_000, lr=1e-4, lr_half_every=4000, lr_ramp=0.0, sample_every=2000,
                 ckpt_every=2000, fid_every=500, ema=0.999),
    "paper": dict(size=64, lowest=8, width=64, z_dim=64, batch_size=25, steps=200_000, lr=1e-3, train_faces=20_000,
                  gamma=0.5, lambda_k=0.001, lr_half_every=100_000, lr_ramp=0.0, amp=False, sample_every=2000,
                  ckpt_every=5000, log_every=100, fid_every=5000),
}
# The noise BEGAN's quick preset keeps 2.5e-4 (at 5e-4, with no input image to hold it, it collapsed) and runs
# float32: over six draws its worst end FID fell from 150.4 (one face for every z) to 98.7 (README).
NOISE_PRESETS = dict(PRESETS, quick=dict(QUICK, lr=2.5e-4, amp=False))


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--generator", choices=["A", "B", "C", "began"], default="B",
                    help="refiner A (8×8 in), B (8, 16), C (8, 16, 32) or BEGAN's noise generator")
    ap.add_argument("--gamma", type=float, help="BEGAN diversity ratio γ in [0, 1] (reference: 0.5)")
    ap.add_argument("--lambda-k", type=float, help="k_t learning rate λ_k (reference: 0.001)")
    ap.add_argument("--lambda-r", type=float, default=0.5, help="weight λ_r of L_RCN in eq. 4 (not in the paper)")
    ap.add_argument("--downsample", choices=["conv", "nearest"], default="conv",
                    help="encoder downsampling: stride-2 conv (BEGAN reference) or nearest (paper §2.1)")
    ap.add_argument("--fid-faces", type=at_least(2), default=500,
                    help="unseen inputs and held-out real faces for FID (with --data: the folder's last N images, "
                         "never trained on)")
    ap.add_argument("--lowest", type=positive_int, help="lowest resolution: the refiner's smallest input")
    ap.add_argument("--width", type=positive_int, help="filters per convolution (BEGAN's n)")
    ap.add_argument("--z-dim", type=positive_int,
                    help="BEGAN's h: D's bottleneck, and the noise size z of --generator began (BEGAN uses one number)")
    ap.add_argument("--train-faces", type=positive_int, help="built-in training faces")
    ap.add_argument("--fid-every", type=positive_int, metavar="N", help="FID (synthetic-v1) every N steps")
    ap.add_argument("--lr-half-every", type=positive_int, metavar="N",
                    help="halve the learning rate every N steps (reference: 100,000)")
    ap.add_argument("--lr-ramp", type=fraction, metavar="F",
                    help="over the last F of the steps the learning rate also falls linearly to 0 (0: never)")
    add_ema_arg(ap)
    add_common_args(ap)
    # The quick preset's rate depends on the generator: read --generator first (--resume brings back the run's).
    generator = peek_flag(argv, "--generator", "B")
    args, resumed = parse_args(ap, argv, NOISE_PRESETS if generator == "began" else PRESETS, "began_refiner")
    try:
        build(**model_args(args))
    except ValueError as err:
        if args.generator not in REFINERS or "room for" not in str(err):
            ap.error(str(err))
        ap.error(f"{err}: give a larger --size (--size {args.lowest * 2 ** REFINERS[args.generator]} or more), "
                 f"a smaller --lowest, or a refiner that reads fewer inputs (--generator A reads one)")
    return args, resumed


def model_args(args):
    """What build() needs; stored in every checkpoint."""
    return dict(generator=args.generator, size=args.size, n=args.width, h=args.z_dim, lowest=args.lowest,
                downsample=args.downsample)


def optimizers(models, args):
    """§3: Adam, lr 0.001 (β = (0.5, 0.999) from the BEGAN reference), one per player, and their schedules:
    ``learning_rate_factor`` of the step (halving, and the quick presets' ramp to 0 at the end)."""
    opts = {name: torch.optim.Adam(models[name].parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
            for name in ("D", "G")}
    schedules = {name: torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: learning_rate_factor(step, args.steps, args.lr_half_every, args.lr_ramp))
        for name, opt in opts.items()}
    return opts, schedules


def learning_rate_factor(step: int, steps: int, half_every: int, ramp: float) -> float:
    """The learning rate's multiplier after ``step`` steps: halved every ``half_every`` steps (the BEGAN
    reference's decay), and over the last ``ramp`` of the ``steps`` (a fraction; 0: none) also falling
    linearly to 0 at the last step, so that training ends settled (the linear decay of pix2pix/CycleGAN):

        factor(t) = 0.5^⌊t / half_every⌋ · min(1, (steps − t) / (ramp · steps))
    """
    factor = 0.5 ** (step // half_every)
    if ramp > 0:
        factor *= min(1.0, (steps - step) / (ramp * steps))
    return factor


def fixed_inputs(args, refiner: bool, levels: int, device):
    """What G is fed at every evaluation (FID, samples), the same each time: the downscaled copies of 500
    unseen synthetic `render` faces (the refiner's real job, §3) with those faces, or for the noise
    baseline fixed noise z ~ U(−1, 1); and the FID reference: held-out real faces, never trained on."""
    renders = synthetic_inputs(args.size, args.fid_faces).to(device)
    z = torch.rand(args.fid_faces, args.z_dim, device=device) * 2 - 1
    g_inputs = image_pyramid(renders, levels, args.lowest) if refiner else z
    reference = FidReference(held_out_faces(args.data, args.size, args.fid_faces), SyntheticFeatures(device))
    return renders, g_inputs, reference


def compute_losses(D, G, x, k, levels: int, args) -> dict:
    """Both players' losses from one pass of D over real and generated images (BEGAN reference): the same
    L(G(z)) enters L_D (through D's weights only) and L_G (through G's only). ``levels``: how many
    downscaled copies of x a refiner reads (0: the noise generator)."""
    if levels:
        fake = G(image_pyramid(x, levels, args.lowest))                       # §2.1: downscaled copies of x
    else:
        fake = G(torch.rand(len(x), args.z_dim, device=x.device) * 2 - 1)     # BEGAN: z ~ U(−1, 1)^h
    reconstruction = D(torch.cat([x, fake]))                                  # (2B, 3, size, size)
    loss_real = autoencoder_loss(x, reconstruction[:len(x)])                  # eq. 1: L(x)
    loss_fake = autoencoder_loss(fake, reconstruction[len(x):])               # eq. 1: L(G(z))
    loss_rcn = reconstruction_loss(x, fake) if levels else None               # eq. 3: L_RCN
    loss_d = discriminator_loss(loss_real, loss_fake, k)                      # eq. 2 / 4: L_D
    loss_g = generator_loss(loss_fake, loss_rcn, args.lambda_r) if levels else loss_fake   # eq. 4 / eq. 2: L_G
    return dict(loss_real=loss_real, loss_fake=loss_fake, loss_rcn=loss_rcn, loss_D=loss_d, loss_G=loss_g)


def save_samples(path, net, renders, g_inputs, args, device, amp):
    """samples/step_*.png: 8 fixed unseen renders above their refinements, or 16 samples of fixed noise."""
    if isinstance(g_inputs, list):                                      # a refiner's pyramid, one tensor per level
        shown = outputs(net, [level[:8] for level in g_inputs], device=device, amp=amp)
        save_image_rows([renders[:8], shown], path, scale=max(1, 128 // args.size), row_labels=["input", "refined"])
    else:
        save_image_rows([outputs(net, g_inputs[:16], device=device, amp=amp)], path, scale=max(1, 128 // args.size))


@one_sentence_errors
def main(argv=None):
    args, resumed = parse(argv)
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    seed_everything(args.seed)
    faces = training_faces(args.data, args.size, args.train_faces, args.fid_faces, args.batch_size)
    batches = InMemoryBatches(faces, batch_size=args.batch_size, device=device, seed=args.seed,
                              channels_last=args.channels_last)
    models = {name: to_device(net, device, args.channels_last) for name, net in build(**model_args(args)).items()}
    opts, schedules = optimizers(models, args)
    refiner = args.generator in REFINERS
    levels = models["G"].inputs if refiner else 0                      # how many downscaled copies G reads
    renders, g_inputs, reference = fixed_inputs(args, refiner, levels, device)

    def measure(net):                                                  # FID, diversity of G or its average
        return reference(outputs(net, g_inputs, device=device, amp=amp))

    run = Run(args, "began_refiner", models, model_args(args), opts, schedules, resumed=resumed,
              state=dict(k=torch.zeros((), device=device), batches=batches),          # k_0 = 0 (BEGAN)
              columns=["loss_real", "loss_fake", "loss_rcn", "loss_D", "loss_G", "k", "M", "fid", "diversity",
                       "diversity_px"], images_per_step=args.batch_size, bar_keys=("M", "k"),
              desc=f"began_refiner {args.generator}", ema=args.ema)
    k = run.state["k"]
    ema = run.moving_average("G")                    # --ema: an average of G's weights (common.ema), else None
    if run.writes and not run.resumed:
        run.log_eval(0, **with_average(measure, models["G"], ema))   # before any training

    D, G = distributed.wrap(models).values()         # under torchrun: each in its own DistributedDataParallel
    d_params, g_params = list(models["D"].parameters()), list(models["G"].parameters())
    for step in run.steps():
        x = next(batches)                                                    # (B, 3, size, size): real faces
        with autocast(device, amp):
            losses = compute_losses(D, G, x, k, levels, args)                # eq. 1–4, from one pass of D
        # discriminator step (eq. 2) and generator step (eq. 4): each gradient only into its own network (and,
        # under torchrun, averaged over processes for that network alone when its backward reaches it)
        for opt in opts.values():
            opt.zero_grad(set_to_none=True)
        losses["loss_D"].backward(inputs=d_params, retain_graph=True)
        losses["loss_G"].backward(inputs=g_params)
        for opt, schedule in zip(opts.values(), schedules.values()):
            opt.step()
            schedule.step()
        if ema:
            ema.update(step)
        # equilibrium (eq. 2): k_t moves towards γ·L(x) = L(G(z)), kept in [0, 1], on the device; from the
        # losses averaged over processes, so k_t is the same number in every process
        real, fake = distributed.average(losses["loss_real"], losses["loss_fake"])
        k = update_k(k, real, fake, args.gamma, args.lambda_k)

        run.log(step, **losses, k=k, M=convergence(real, fake, args.gamma))
        if run.due(step, args.fid_every):
            run.log_eval(step, **with_average(measure, models["G"], ema))
        if run.due(step, args.sample_every):
            save_samples(run.dir / "samples" / f"step_{step:07d}.png", ema.net if ema else models["G"], renders,
                         g_inputs, args, device, amp)
        run.save(step, k=k)
    return run.finish(plot_columns=[("loss_real", "loss_fake", "loss_rcn"), ("k", "M"), ("fid", "fid_ema"),
                                    ("diversity", "diversity_px")], title=f"began_refiner {args.generator}")


if __name__ == "__main__":
    main()
