"""Train DCGAN, WGAN or began, the paper's BEGAN-style "our model", on faces.

    python dcgan_celeba/train.py                          # quick: began ("our model"), 32×32, ~10 min on 2 cores
    python dcgan_celeba/train.py --preset long            # began for 16,000 steps (~47 min on 2 cores): FID 53
    python dcgan_celeba/train.py --model dcgan            # or wgan: the paper's two baselines (§4)
    python dcgan_celeba/train.py --preset paper --device cuda --amp              # 64×64, the papers' settings
    python dcgan_celeba/train.py --data ~/data/img_align_celeba                  # CelebA (§4.1)
    python dcgan_celeba/train.py --resume --steps 5000 --out RUN                 # continue RUN (its --model too)

All three draw z ~ U(−1, 1)^z_dim, so eval.py can feed them the same noise (Fig. 5(b)).
One step per model below, each its paper's algorithm with the losses of model.py: ``dcgan_step``,
``wgan_step``, ``began_step`` (which also moves k_t); ``main`` runs the chosen one.
Each model has its own presets: ``--model wgan --preset paper --help`` prints that one's numbers.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common import distributed
from common.cli import (HelpFormatter, add_common_args, at_least, one_sentence_errors, parse_args, peek_flag,
                        positive_float, positive_int)
from common.data import InMemoryBatches
from common.device import autocast, outputs, pick_device, seed_everything, to_device, use_amp
from common.ema import add_ema_arg, with_average
from common.loop import Run
from common.metrics import FidReference
from common.plots import save_image_grid
from common.synthnet import SyntheticFeatures
from dcgan_celeba.data import FIXED_NOISE_SEED, held_out_faces, noise, training_faces
from dcgan_celeba.model import (MODELS, autoencoder_loss, began_discriminator_loss, build, clip_weights, convergence,
                                dcgan_discriminator_loss, dcgan_generator_loss, update_k, wgan_critic_loss,
                                wgan_generator_loss)

# Each model with its own paper's settings (the issue: "DCGAN and WGAN use their own papers' settings"):
#   DCGAN (Radford et al. §4): Adam lr 2e-4, β1 0.5, batch 128, 64×64.
#   WGAN (Arjovsky et al. Algorithm 1): RMSprop lr 5e-5, clip c = 0.01, n_critic = 5, batch 64.
#   ours (§4.2): Adam lr 1e-4, ×0.9 every 2,000 iterations; BEGAN's γ = 0.5, λ_k = 0.001, batch 16, h = 64.
# `steps` counts generator updates. quick: the same networks at 32×32 and smaller widths, sized to ~10 min on
# a 2-core CPU; paper: 64×64 and the papers' widths (a GPU job).
COMMON = dict(z_dim=100, train_faces=10_000, log_every=25, fid_every=250, lr_decay_every=2000, gamma=0.5,
              lambda_k=0.001)
QUICK, PAPER = dict(COMMON, amp=True), dict(COMMON, amp=False, train_faces=50_000)
PRESETS = {                          # by --model, then by --preset
    "dcgan": {
        "quick": dict(QUICK, size=32, width=32, batch_size=64, steps=5000, lr=2e-4, lr_decay=1.0,
                      sample_every=500, ckpt_every=1000),
        "paper": dict(PAPER, size=64, width=64, batch_size=128, steps=30_000, lr=2e-4, lr_decay=1.0,
                      sample_every=1000, ckpt_every=5000, log_every=100, fid_every=2500),
    },
    "wgan": {
        "quick": dict(QUICK, size=32, width=32, batch_size=64, steps=1500, lr=5e-5, lr_decay=1.0,
                      sample_every=250, ckpt_every=500, log_every=10, fid_every=100),
        "paper": dict(PAPER, size=64, width=64, batch_size=64, steps=20_000, lr=5e-5, lr_decay=1.0,
                      sample_every=500, ckpt_every=2000, log_every=50, fid_every=1000),
    },
    "began": {
        # quick and long depart from §3.2/§4.2 (README, "a BEGAN that learns"): γ = 1 and λ_k = 0.05 make
        # k_t act within the first hundred steps (at γ = 0.5, λ_k = 0.001 every sample was one face), and
        # halving the rate settles the oscillation that k_t drives. quick also samples from a moving average of G
        # (--ema 0.999, not in the paper): it lowered the end FID in both seeds measured (README).
        "quick": dict(QUICK, size=32, width=32, batch_size=16, steps=4000, lr=1e-4, lr_decay=0.5, lr_decay_every=1000,
                      gamma=1.0, lambda_k=0.05, sample_every=500, ckpt_every=1000, ema=0.999),
        "long": dict(QUICK, size=32, width=32, batch_size=16, steps=16_000, lr=1e-4, lr_decay=0.5, lr_decay_every=4000,
                     gamma=1.0, lambda_k=0.05, sample_every=2000, ckpt_every=2000, fid_every=500),
        "paper": dict(PAPER, size=64, width=64, batch_size=16, steps=100_000, lr=1e-4, lr_decay=0.9,
                      sample_every=2000, ckpt_every=5000, log_every=100, fid_every=5000),
    },
}


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--model", choices=MODELS, default="began",
                    help="dcgan, wgan, or began: the paper's 'our model' (on --resume: the run's)")
    ap.add_argument("--gamma", type=float, help="began: BEGAN diversity ratio γ (§3.2: in [0, 1]; BEGAN: 0.5)")
    ap.add_argument("--lambda-k", type=float, help="began: k_t learning rate λ_k (BEGAN: 0.001)")
    ap.add_argument("--h", type=positive_int, default=64, help="began: the discriminator's bottleneck (BEGAN: 64)")
    ap.add_argument("--n-critic", type=positive_int, default=5, help="wgan: critic steps per generator step")
    ap.add_argument("--clip", type=positive_float, default=0.01, help="wgan: weight clipping c")
    ap.add_argument("--lr-decay", type=positive_float, help="learning rate ×this every --lr-decay-every steps "
                                                             "(began: 0.9, §4.2; baselines: 1, constant)")
    ap.add_argument("--lr-decay-every", type=positive_int, metavar="N", help="steps between two lr decays")
    ap.add_argument("--fid-faces", type=at_least(2), default=500,
                    help="generated and held-out real faces for FID (with --data: the folder's last N images, "
                         "never trained on)")
    ap.add_argument("--z-dim", type=positive_int, help="noise size: z ~ U(−1, 1)^z_dim")
    ap.add_argument("--width", type=positive_int, help="network width (DCGAN's ngf = ndf; began: BEGAN's n)")
    ap.add_argument("--train-faces", type=positive_int, help="built-in training faces")
    ap.add_argument("--fid-every", type=positive_int, metavar="N", help="FID (synthetic-v1) every N steps")
    add_ema_arg(ap)
    add_common_args(ap)
    # The presets depend on the model: read --model first (a new run's; --resume brings back the run's).
    model = peek_flag(argv, "--model", "began")               # an unknown name is refused by `ap` below
    args, resumed = parse_args(ap, argv, PRESETS.get(model, PRESETS["began"]), "dcgan_celeba")
    try:
        build(**model_args(args))
    except ValueError as err:
        ap.error(str(err))
    return args, resumed


def model_args(args):
    """What build() needs; stored in every checkpoint."""
    return dict(model=args.model, size=args.size, z_dim=args.z_dim, width=args.width, h=args.h)


def make_optimizers(models, args):
    """Each model's own paper's optimiser, and §4.2's decay: ``{"G": …, "D": …}`` twice (optimisers, schedulers).

    WGAN (Algorithm 1): RMSprop. DCGAN (Radford et al. §4) and BEGAN's reference: Adam with β1 = 0.5.
    §4.2 read as: the learning rate ×0.9 every 2,000 iterations (``--lr-decay``; began only, the baselines keep 1).
    """
    if args.model == "wgan":
        opt = {name: torch.optim.RMSprop(models[name].parameters(), args.lr, foreach=True) for name in ("G", "D")}
    else:
        opt = {name: torch.optim.Adam(models[name].parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
               for name in ("G", "D")}
    return opt, {name: torch.optim.lr_scheduler.StepLR(opt[name], args.lr_decay_every, args.lr_decay) for name in opt}


def fixed_inputs(args, device):
    """Fixed noise for samples and FID (its own seed), and FID's reference: held-out real faces, never trained on."""
    fixed_z = noise(args.fid_faces, args.z_dim, device, torch.Generator(device).manual_seed(FIXED_NOISE_SEED))
    return fixed_z, FidReference(held_out_faces(args.data, args.size, args.fid_faces), SyntheticFeatures(device))


# One training step per model, as its paper gives the algorithm. Each takes the networks as the step calls
# them (under torchrun, DistributedDataParallel), their optimisers, the batch and the noise, and the numbers
# it uses; autocast is around the forward passes only (backward and optimiser steps run outside it). Each
# returns its losses as tensors (no host sync).

def dcgan_step(G, D, opt_g, opt_d, x, z, amp):
    """DCGAN (Radford et al. §3, Goodfellow et al.'s losses): a discriminator update on x and G(z), then a
    generator update on the same G(z)."""
    with autocast(x.device, amp):
        fake = G(z)
        loss_d = dcgan_discriminator_loss(D(x), D(fake.detach()))  # Goodfellow eq. 1: −log D(x) − log(1 − D(G(z)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with autocast(x.device, amp), distributed.frozen(D):     # D frozen: no gradient, none exchanged under torchrun
        loss_g = dcgan_generator_loss(D(fake))                       # Goodfellow §3, non-saturating: −log D(G(z))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(G.parameters()))
    opt_g.step()
    return dict(loss_D=loss_d, loss_G=loss_g)


def wgan_step(G, D, opt_g, opt_d, batches, z_dim, amp, n_critic, clip):
    """WGAN (Arjovsky et al. Algorithm 1): ``n_critic`` critic updates, each on a fresh batch and fresh
    noise z ~ U(−1, 1)^z_dim and followed by weight clipping to [−clip, clip], then one generator update."""
    for _ in range(n_critic):                                        # lines 2–8
        x = next(batches)                                            # line 3: a real batch
        z = noise(len(x), z_dim, x.device)                           # line 4: its noise
        with autocast(x.device, amp):
            with torch.no_grad():
                fake = G(z)
            loss_d = wgan_critic_loss(D(x), D(fake))                 # line 5: mean f(G(z)) − mean f(x)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()                                                 # line 6: RMSprop
        clip_weights(D, clip)                                        # line 7: w ← clip(w, −c, c)
    z = noise(len(x), z_dim, x.device)                               # line 9: a fresh z
    with autocast(x.device, amp), distributed.frozen(D):     # lines 10–11: only G's weights are updated
        loss_g = wgan_generator_loss(D(G(z)))                        # line 10: −mean f(G(z))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(G.parameters()))
    opt_g.step()
    return dict(loss_D=loss_d, loss_G=loss_g, wasserstein=-loss_d)


def began_step(G, D, opt_g, opt_d, x, z, amp, k, gamma, lambda_k):
    """§3.3 as the BEGAN reference runs it: one pass of D over real and generated faces, both players learn
    from that pass (z_D = z_G), then k_t moves from the same two losses. Returns the losses and the new k_t."""
    with autocast(x.device, amp):
        fake = G(z)
        reconstruction = D(torch.cat([x, fake]))
        loss_real = autoencoder_loss(x, reconstruction[:len(x)])      # §3.3 (BEGAN eq. 1): L(x)
        loss_fake = autoencoder_loss(fake, reconstruction[len(x):])   # §3.3 (BEGAN eq. 1): L(G(z))
        loss_d = began_discriminator_loss(loss_real, loss_fake, k)  # §3.3 (BEGAN eq. 4): L_D = L(x) − k_t·L(G(z_D))
        loss_g = loss_fake                                            # §3.3 (BEGAN eq. 4): L_G = L(G(z_G))
    # discriminator step and generator step: each gradient only into its own network
    opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    loss_d.backward(inputs=list(D.parameters()), retain_graph=True)
    loss_g.backward(inputs=list(G.parameters()))
    opt_d.step()
    opt_g.step()
    # equilibrium (§3.3, BEGAN eq. 4): k_t moves towards γ·L(x) = L(G(z_G)), clipped to [0, 1], from the losses
    # averaged over processes (the same k_t in every process under torchrun)
    real, generated = distributed.average(loss_real, loss_fake)
    k = update_k(k, real, generated, gamma, lambda_k)
    return dict(loss_D=loss_d, loss_G=loss_g, loss_real=loss_real, loss_fake=loss_fake, k=k,
                M=convergence(real, generated, gamma))                # BEGAN §3.4.1: M = L(x) + |γ·L(x) − L(G(z))|


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
    optimizers, schedulers = make_optimizers(models, args)
    fixed_z, reference = fixed_inputs(args, device)

    images_per_step = args.batch_size * (args.n_critic + 1 if args.model == "wgan" else 2)
    run = Run(args, "dcgan_celeba", models, model_args(args), optimizers, schedulers,
              resumed=resumed, state=dict(k=torch.zeros((), device=device), batches=batches),   # BEGAN: k_0 = 0
              images_per_step=images_per_step, bar_keys=("loss_D", "loss_G"),
              columns=["loss_D", "loss_G", "wasserstein", "loss_real", "loss_fake", "k", "M", "fid", "diversity", "diversity_px"],
              desc=f"dcgan_celeba {args.model}", ema=args.ema)
    k = run.state["k"]
    ema = run.moving_average("G")                    # --ema: an average of G's weights (common.ema), else None
    shown_g = ema.net if ema else models["G"]        # what samples show and eval.py evaluates

    def measure(net):
        return reference(outputs(net, fixed_z, device=device, amp=amp))

    if run.writes and not run.resumed:
        run.log_eval(0, **with_average(measure, models["G"], ema))    # FID before any training

    nets = distributed.wrap(models)                  # as the steps call them: under torchrun, DistributedDataParallel
    G, D, opt_g, opt_d = nets["G"], nets["D"], optimizers["G"], optimizers["D"]
    for step in run.steps():
        if args.model == "dcgan":                    # a D step, then a G step, on one batch and one z
            x = next(batches)
            losses = dcgan_step(G, D, opt_g, opt_d, x, noise(len(x), args.z_dim, device), amp)
        elif args.model == "wgan":                   # n_critic critic steps, each with its own batch, then a G step
            losses = wgan_step(G, D, opt_g, opt_d, batches, args.z_dim, amp, args.n_critic, args.clip)
        else:                                        # began: one D pass for both players, then k_t
            x = next(batches)
            losses = began_step(G, D, opt_g, opt_d, x, noise(len(x), args.z_dim, device), amp, k, args.gamma,
                                args.lambda_k)
            k = losses["k"]
        if ema:
            ema.update(step)
        schedulers["G"].step()
        schedulers["D"].step()

        run.log(step, **losses)
        if run.due(step, args.fid_every):
            run.log_eval(step, **with_average(measure, models["G"], ema))
        if run.due(step, args.sample_every):
            save_image_grid(outputs(shown_g, fixed_z[:16], device=device, amp=amp),
                            run.dir / "samples" / f"step_{step:07d}.png", nrow=8, scale=max(1, 96 // args.size))
        run.save(step, k=k)
    return run.finish(plot_columns=[("loss_D", "loss_G"), ("k", "M"), ("fid", "fid_ema"), ("diversity", "diversity_px")],
                      title=f"dcgan_celeba {args.model}")


if __name__ == "__main__":
    main()
