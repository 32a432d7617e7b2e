"""Train DCGAN, WGAN or the paper's BEGAN-style "our model" on faces.

    python dcgan_celeba/train.py                          # quick: "our model" (BEGAN-style), 32×32, ~10 min on 2 cores
    python dcgan_celeba/train.py --model dcgan            # or wgan: the paper's two baselines (§4)
    python dcgan_celeba/train.py --preset paper --device cuda --amp              # 64×64, the papers' settings
    python dcgan_celeba/train.py --data ~/data/img_align_celeba                  # CelebA (§4.1)

All three draw z ~ U(−1, 1)^nz, so eval.py can feed them the same noise (Fig. 5(b)).
One readable step per model below: ``dcgan_step``, ``wgan_step``, ``began_step``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common import synthetic
from common.data import DataError, InMemoryBatches, load_image_folder
from common.metrics import fid
from common.plots import plot_losses, save_image_grid
from common.run import (CsvLogger, ImagesPerSecond, NonFiniteLoss, StopOnInterrupt, add_common_args, apply_preset,
                        autocast, check_finite, load_checkpoint, make_run_dir, pick_device, progress,
                        save_checkpoint, seed_everything)
from common.synthnet import SyntheticFeatures
from dcgan_celeba.model import (autoencoder_loss, began_discriminator_loss, build, clip_weights, convergence,
                                dcgan_discriminator_loss, dcgan_generator_loss, update_k, wgan_critic_loss,
                                wgan_generator_loss)

# Each model with its own paper's settings (the issue: "DCGAN and WGAN use their own papers' settings"):
#   DCGAN (Radford et al. §4): Adam lr 2e-4, β1 0.5, batch 128, 64×64.
#   WGAN (Arjovsky et al. Algorithm 1): RMSprop lr 5e-5, clip c = 0.01, n_critic = 5, batch 64.
#   ours (§4.2): Adam lr 1e-4, ×0.9 every 2,000 iterations; BEGAN's γ = 0.5, λ_k = 0.001, batch 16, h = 64.
# `steps` counts generator updates. quick: the same networks at 32×32 and smaller widths, sized to ~10 min on
# a 2-core CPU; paper: 64×64 and the papers' widths (a GPU job).
COMMON = dict(nz=100, train_faces=10_000, log_every=25, fid_every=250, lr_decay_every=2000)
PRESETS = {
    "dcgan": {
        "quick": dict(COMMON, size=32, width=32, batch_size=64, steps=5000, lr=2e-4, lr_decay=1.0,
                      sample_every=500, ckpt_every=1000),
        "paper": dict(COMMON, size=64, width=64, batch_size=128, steps=30_000, lr=2e-4, lr_decay=1.0,
                      train_faces=50_000, sample_every=1000, ckpt_every=5000, log_every=100, fid_every=2500),
    },
    "wgan": {
        "quick": dict(COMMON, size=32, width=32, batch_size=64, steps=1500, lr=5e-5, lr_decay=1.0,
                      sample_every=250, ckpt_every=500, log_every=10, fid_every=100),
        "paper": dict(COMMON, size=64, width=64, batch_size=64, steps=20_000, lr=5e-5, lr_decay=1.0,
                      train_faces=50_000, sample_every=500, ckpt_every=2000, log_every=50, fid_every=1000),
    },
    "began": {
        "quick": dict(COMMON, size=32, width=32, batch_size=16, steps=1800, lr=1e-4, lr_decay=0.9,
                      sample_every=300, ckpt_every=600, fid_every=150),
        "paper": dict(COMMON, size=64, width=64, batch_size=16, steps=100_000, lr=1e-4, lr_decay=0.9,
                      train_faces=50_000, sample_every=2000, ckpt_every=5000, log_every=100, fid_every=5000),
    },
}
HELD_OUT = 500_000       # held-out real faces for FID and eval are items 500,000… of seed 0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["dcgan", "wgan", "began"], default="began",
                    help="dcgan, wgan, or began: the paper's 'our model' (default: began)")
    ap.add_argument("--gamma", type=float, default=0.5, help="ours: BEGAN diversity ratio γ (§3.2; BEGAN: 0.5)")
    ap.add_argument("--lambda-k", type=float, default=0.001, help="ours: k_t learning rate λ_k (BEGAN: 0.001)")
    ap.add_argument("--h", type=int, default=64, help="ours: the discriminator's bottleneck (BEGAN: 64)")
    ap.add_argument("--n-critic", type=int, default=5, help="wgan: critic steps per generator step (5)")
    ap.add_argument("--clip", type=float, default=0.01, help="wgan: weight clipping c (0.01)")
    ap.add_argument("--lr-decay", type=float, help="learning rate ×this every --lr-decay-every steps "
                                                    "(ours: 0.9, §4.2; baselines: 1, constant)")
    ap.add_argument("--fid-faces", type=int, default=500, help="generated and held-out faces for FID")
    for name in ("nz", "width", "train_faces", "log_every", "fid_every", "lr_decay_every"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="(default: from --preset)")
    add_common_args(ap)
    args = ap.parse_args(argv)
    return apply_preset(args, PRESETS[args.model])


def load_faces(args):
    """Training faces: --data (CelebA's crop), or the built-in photos (uint8, in memory)."""
    if args.data:
        return load_image_folder(args.data, args.size, crop="celeba").images
    return synthetic.faces(args.train_faces, args.size, "photo", seed=0)


def noise(n, nz, device, generator=None):
    """z ~ U(−1, 1)^nz, for all three models (DCGAN Fig. 1 and BEGAN both draw uniform noise)."""
    return torch.rand(n, nz, device=device, generator=generator) * 2 - 1


# One training step per model: autocast around the forward passes only (backward and optimiser
# steps run outside it). Each returns its losses as tensors (no host sync).

def dcgan_step(G, D, opt_g, opt_d, batches, args, device):
    x = next(batches)
    with autocast(device, args.amp):
        fake = G(noise(len(x), args.nz, device))
        # discriminator step: −log D(x) − log(1 − D(G(z)))
        loss_d = dcgan_discriminator_loss(D(x), D(fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # generator step (non-saturating): −log D(G(z))
    with autocast(device, args.amp):
        loss_g = dcgan_generator_loss(D(fake))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(G.parameters()))
    opt_g.step()
    return dict(loss_D=loss_d, loss_G=loss_g)


def wgan_step(G, D, opt_g, opt_d, batches, args, device):
    # critic steps (Algorithm 1, lines 2–8): n_critic batches, clipping after each update
    for _ in range(args.n_critic):
        x = next(batches)
        with autocast(device, args.amp):
            with torch.no_grad():
                fake = G(noise(len(x), args.nz, device))
            loss_d = wgan_critic_loss(D(x), D(fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        clip_weights(D, args.clip)
    # generator step (lines 9–11): −f(G(z)); only G's weights are updated
    with autocast(device, args.amp):
        loss_g = wgan_generator_loss(D(G(noise(args.batch_size, args.nz, device))))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(G.parameters()))
    opt_g.step()
    return dict(loss_D=loss_d, loss_G=loss_g, wasserstein=-loss_d)


def began_step(G, D, opt_g, opt_d, batches, args, device, k):
    x = next(batches)
    # discriminator step (§3.3): L_D = L(x) − k_t·L(G(z_D))
    with autocast(device, args.amp):
        fake_d = G(noise(len(x), args.nz, device)).detach()
        reconstruction = D(torch.cat([x, fake_d]))
        loss_real = autoencoder_loss(x, reconstruction[:len(x)])
        loss_d = began_discriminator_loss(loss_real, autoencoder_loss(fake_d, reconstruction[len(x):]), k)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # generator step (§3.3): L_G = L(G(z_G)), a fresh z_G; only G's weights are updated
    with autocast(device, args.amp):
        fake_g = G(noise(len(x), args.nz, device))
        loss_g = autoencoder_loss(fake_g, D(fake_g))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(G.parameters()))
    opt_g.step()
    return dict(loss_D=loss_d, loss_G=loss_g, loss_real=loss_real, loss_fake=loss_g)


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    seed_everything(args.seed)
    run_dir = make_run_dir(args.out, "dcgan_celeba", args, resume=args.resume)
    try:
        faces = load_faces(args)
    except DataError as err:
        raise SystemExit(str(err))
    batches = InMemoryBatches(faces, batch_size=args.batch_size, device=device, seed=args.seed,
                              channels_last=device.type == "cuda")

    G, D = build(args.model, args.size, args.nz, args.width, args.h)
    G, D = G.to(device), D.to(device)
    if device.type == "cuda":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if args.model == "wgan":
        opt_g = torch.optim.RMSprop(G.parameters(), args.lr, foreach=True)
        opt_d = torch.optim.RMSprop(D.parameters(), args.lr, foreach=True)
    else:    # DCGAN §4 and BEGAN's reference: Adam with β1 = 0.5
        opt_g = torch.optim.Adam(G.parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
        opt_d = torch.optim.Adam(D.parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
    # §4.2 read as: the learning rate is multiplied by 0.9 every 2,000 iterations (ours only).
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, args.lr_decay_every, args.lr_decay)
    sched_d = torch.optim.lr_scheduler.StepLR(opt_d, args.lr_decay_every, args.lr_decay)
    k = torch.zeros((), device=device)                                  # BEGAN: k_0 = 0

    # Fixed noise for samples and FID; held-out real faces for FID (built-in data only).
    fixed_z = noise(args.fid_faces, args.nz, device, torch.Generator(device).manual_seed(1234))
    held_out = None if args.data else synthetic.faces(args.fid_faces, args.size, "photo", seed=0, start=HELD_OUT)
    extractor = SyntheticFeatures(device) if held_out is not None else None

    def generate(n):
        """G on the first n fixed noise vectors, in eval mode without gradients."""
        G.eval()
        with torch.no_grad(), autocast(device, args.amp):
            out = G(fixed_z[:n])
        G.train()
        return out.float().clamp(-1, 1)

    start = 0
    models, optimizers, schedulers = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"G": sched_g, "D": sched_d}
    if args.resume:
        state = load_checkpoint(run_dir / "checkpoint.pt", models, optimizers, schedulers, map_location=device)
        start, k = state["step"], state["extra"]["k"].to(device)
        batches.load_state_dict(state["extra"]["batches"])
    log = CsvLogger(run_dir / "log.csv", resume_step=start if args.resume else None,
                    columns=["loss_D", "loss_G", "wasserstein", "loss_real", "loss_fake", "k", "M", "lr", "img_s",
                             "fid"])
    if not args.resume and extractor is not None:
        log.log(step=0, fid=fid(generate(args.fid_faces), held_out, extractor))   # FID before any training
    images_per_step = args.batch_size * (args.n_critic + 1 if args.model == "wgan" else 2)
    speed = ImagesPerSecond(images_per_step, start, device)
    bar = progress(args.steps, initial=start, desc=f"dcgan_celeba {args.model}")

    with StopOnInterrupt() as stop:
        for step in range(start + 1, args.steps + 1):
            if args.model == "dcgan":
                losses = dcgan_step(G, D, opt_g, opt_d, batches, args, device)
            elif args.model == "wgan":
                losses = wgan_step(G, D, opt_g, opt_d, batches, args, device)
            else:
                losses = began_step(G, D, opt_g, opt_d, batches, args, device, k)
            sched_g.step()
            sched_d.step()
            if args.model == "began":   # equilibrium (§3.3): k_t moves towards γ·L(x) = L(G(z_G)), clipped to [0, 1]
                k = update_k(k, losses["loss_real"].detach().float(), losses["loss_fake"].detach().float(),
                             args.gamma, args.lambda_k)
            bar.update()

            if step % args.log_every == 0 or step == args.steps:
                values = {name: value.item() for name, value in losses.items()}
                try:
                    check_finite(step, checkpoint=run_dir / "checkpoint.pt", **values)
                except NonFiniteLoss as err:
                    raise SystemExit(str(err))
                if args.model == "began":
                    values.update(k=k.item(), M=convergence(values["loss_real"], values["loss_fake"], args.gamma))
                values.update(lr=sched_g.get_last_lr()[0], img_s=speed(step))
                if extractor is not None and (step % args.fid_every == 0 or step == args.steps):
                    values["fid"] = fid(generate(args.fid_faces), held_out, extractor)
                log.log(step=step, **values)
                bar.set_postfix(D=f"{values['loss_D']:.3f}", G=f"{values['loss_G']:.3f}")
            if step % args.sample_every == 0 or step == args.steps:
                save_image_grid(generate(16), run_dir / "samples" / f"step_{step:07d}.png", nrow=8,
                                scale=max(1, 96 // args.size))
            if step % args.ckpt_every == 0 or step == args.steps or stop.requested:
                save_checkpoint(run_dir / "checkpoint.pt", step, models, optimizers, schedulers,
                                extra={"k": k.cpu(), "batches": batches.state_dict()}, config=vars(args))
            if stop.requested:
                print(f"\nstopped at step {step}; continue with --resume --out {run_dir}")
                break
    bar.close()
    plot_losses(run_dir / "log.csv", run_dir / "loss.png", columns=["loss_D", "loss_G"],
                title=f"dcgan_celeba {args.model}")
    print(f"run folder: {run_dir} (samples/, log.csv, loss.png, checkpoint.pt); "
          f"evaluate with: python dcgan_celeba/eval.py --run {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
