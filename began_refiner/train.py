"""Train a BEGAN whose generator is an image-based refiner (models A, B, C) or BEGAN's noise generator.

    python began_refiner/train.py                       # quick: model B, 32×32, ~10 min on 2 CPU cores
    python began_refiner/train.py --generator A         # or C, or began (the noise baseline)
    python began_refiner/train.py --preset paper --device cuda --amp       # 64×64, n = 64 (§3)
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

from began_refiner.model import (REFINERS, Decoder, Discriminator, Refiner, autoencoder_loss, convergence,
                                 discriminator_loss, generator_loss, image_pyramid, reconstruction_loss,
                                 update_k)
from common import synthetic
from common.data import DataError, InMemoryBatches, load_image_folder, to_float
from common.metrics import fid
from common.plots import plot_losses, save_image_rows
from common.run import (CsvLogger, ImagesPerSecond, NonFiniteLoss, StopOnInterrupt, add_common_args, apply_preset,
                        autocast, check_finite, load_checkpoint, make_run_dir, pick_device, progress,
                        save_checkpoint, seed_everything)
from common.synthnet import SyntheticFeatures

# §3: Adam, lr 0.001, batch 25, 64×64 from an 8×8 lowest input, n = 64. quick: the same
# network at half resolution (32×32 from 4×4, four blocks as in the paper) and n = 16.
PRESETS = {
    "quick": dict(size=32, lowest=4, n=16, h=32, batch_size=25, steps=3000, lr=1e-3, train_faces=10_000,
                  sample_every=500, ckpt_every=500, log_every=25, fid_every=250),
    "paper": dict(size=64, lowest=8, n=64, h=64, batch_size=25, steps=200_000, lr=1e-3, train_faces=20_000,
                  sample_every=2000, ckpt_every=5000, log_every=100, fid_every=5000),
}
# Front-facing aligned portraits, as the paper's 20k training faces (§3).
FRONTAL = dict(yaw=(-10, 10), pitch=(-10, 10), roll=(-3, 3))
HELD_OUT = 500_000       # held-out real faces are items 500,000… of the seed; refinement inputs 900,000…
INPUTS = 900_000


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generator", choices=["A", "B", "C", "began"], default="B",
                    help="refiner A (8×8 in), B (8, 16), C (8, 16, 32) or BEGAN's noise generator (default: B)")
    ap.add_argument("--gamma", type=float, default=0.5, help="BEGAN diversity ratio γ (reference: 0.5)")
    ap.add_argument("--lambda-k", type=float, default=0.001, help="k_t learning rate λ_k (reference: 0.001)")
    ap.add_argument("--lambda-r", type=float, default=0.5, help="weight λ_r of L_RCN in eq. 4 (not in the paper)")
    ap.add_argument("--downsample", choices=["conv", "nearest"], default="conv",
                    help="encoder downsampling: stride-2 conv (BEGAN reference) or nearest (paper §2.1)")
    ap.add_argument("--fid-faces", type=int, default=500, help="unseen inputs and held-out real faces for FID")
    for name in ("lowest", "n", "h", "train_faces", "log_every", "fid_every"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="(default: from --preset)")
    add_common_args(ap)
    return apply_preset(ap.parse_args(argv), PRESETS)


def load_faces(args):
    """Real training faces: --data, or the built-in front-facing photos (uint8 in memory)."""
    if args.data:
        return load_image_folder(args.data, args.size, crop="celeba").images
    return synthetic.faces(args.train_faces, args.size, "photo", seed=0, **FRONTAL)


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    seed_everything(args.seed)
    run_dir = make_run_dir(args.out, "began_refiner", args, resume=args.resume)
    try:
        faces = load_faces(args)
    except DataError as err:
        raise SystemExit(str(err))
    batches = InMemoryBatches(faces, batch_size=args.batch_size, device=device, seed=args.seed,
                              channels_last=device.type == "cuda")
    refiner = args.generator in REFINERS

    # Models and optimisers (§3: Adam, lr 0.001; β = (0.5, 0.999) and halving every 100k steps from the reference).
    D = Discriminator(args.size, args.n, args.h, lowest=args.lowest, downsample=args.downsample).to(device)
    G = (Refiner(args.size, args.n, REFINERS[args.generator], lowest=args.lowest) if refiner
         else Decoder(args.size, args.n, args.h, lowest=args.lowest)).to(device)
    if device.type == "cuda":
        D, G = D.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    opt_d = torch.optim.Adam(D.parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
    opt_g = torch.optim.Adam(G.parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
    sched_d = torch.optim.lr_scheduler.StepLR(opt_d, 100_000, 0.5)
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, 100_000, 0.5)
    k = torch.zeros((), device=device)                                   # k_0 = 0 (BEGAN)

    # Fixed inputs for samples and FID: unseen synthetic `render` faces (the refiner's real job),
    # or fixed noise z ~ U(−1, 1) for the baseline; held-out real photos for FID.
    n_fid = args.fid_faces
    synthetic_inputs = to_float(synthetic.faces(n_fid, args.size, "render", seed=0, start=INPUTS, **FRONTAL)).to(device)
    fixed_z = torch.rand(n_fid, args.h, device=device) * 2 - 1
    held_out = None if args.data else synthetic.faces(n_fid, args.size, "photo", seed=0, start=HELD_OUT, **FRONTAL)
    extractor = SyntheticFeatures(device) if held_out is not None else None

    def generate(n):
        """G on the first n fixed inputs, in eval mode without gradients."""
        G.eval()
        with torch.no_grad(), autocast(device, args.amp):
            out = G(image_pyramid(synthetic_inputs[:n], G.inputs, args.lowest)) if refiner else G(fixed_z[:n])
        G.train()
        return out.float().clamp(-1, 1)

    start = 0
    if args.resume:
        state = load_checkpoint(run_dir / "checkpoint.pt", {"D": D, "G": G}, {"D": opt_d, "G": opt_g},
                                {"D": sched_d, "G": sched_g}, map_location=device)
        start, k = state["step"], state["extra"]["k"].to(device)
        batches.load_state_dict(state["extra"]["batches"])
    log = CsvLogger(run_dir / "log.csv", resume_step=start if args.resume else None,
                    columns=["loss_real", "loss_fake", "loss_rcn", "loss_D", "loss_G", "k", "M", "lr", "img_s", "fid"])
    if not args.resume and extractor is not None:
        log.log(step=0, fid=fid(generate(n_fid), held_out, extractor))  # FID before any training
    speed = ImagesPerSecond(args.batch_size, start, device)
    bar = progress(args.steps, initial=start, desc=f"began_refiner {args.generator}")

    d_params, g_params = list(D.parameters()), list(G.parameters())
    with StopOnInterrupt() as stop:
        for step in range(start + 1, args.steps + 1):
            x = next(batches)
            with autocast(device, args.amp):
                fake = G(image_pyramid(x, G.inputs, args.lowest)) if refiner else G(torch.rand(len(x), args.h, device=device) * 2 - 1)
                # One pass of D over real and generated images; both players learn from it (BEGAN reference).
                reconstruction = D(torch.cat([x, fake]))
                loss_real = autoencoder_loss(x, reconstruction[:len(x)])                 # eq. 1: L(x)
                loss_fake = autoencoder_loss(fake, reconstruction[len(x):])              # eq. 1: L(G(z))
                loss_rcn = reconstruction_loss(x, fake) if refiner else torch.zeros((), device=device)  # eq. 3
                loss_d = discriminator_loss(loss_real, loss_fake, k)                     # eq. 2/4: L_D
                loss_g = generator_loss(loss_fake, loss_rcn, args.lambda_r if refiner else 0.0)  # eq. 4: L_G
            # discriminator step (eq. 2) and generator step (eq. 4): each gradient only into its own network
            opt_d.zero_grad(set_to_none=True)
            opt_g.zero_grad(set_to_none=True)
            loss_d.backward(inputs=d_params, retain_graph=True)
            loss_g.backward(inputs=g_params)
            opt_d.step()
            opt_g.step()
            sched_d.step()
            sched_g.step()
            # equilibrium (eq. 2): k_t moves towards γ·L(x) = L(G(z)), kept in [0, 1], on the device
            k = update_k(k, loss_real.detach().float(), loss_fake.detach().float(), args.gamma, args.lambda_k)
            bar.update()

            if step % args.log_every == 0 or step == args.steps:
                values = dict(loss_real=loss_real.item(), loss_fake=loss_fake.item(), loss_rcn=loss_rcn.item(),
                              loss_D=loss_d.item(), loss_G=loss_g.item())
                try:
                    check_finite(step, checkpoint=run_dir / "checkpoint.pt", **values)
                except NonFiniteLoss as err:
                    raise SystemExit(str(err))
                values.update(k=k.item(), M=convergence(values["loss_real"], values["loss_fake"], args.gamma),
                              lr=sched_g.get_last_lr()[0], img_s=speed(step))
                if extractor is not None and (step % args.fid_every == 0 or step == args.steps):
                    values["fid"] = fid(generate(n_fid), held_out, extractor)
                log.log(step=step, **values)
                bar.set_postfix(M=f"{values['M']:.3f}", k=f"{values['k']:.3f}")
            if step % args.sample_every == 0 or step == args.steps:
                shown = [synthetic_inputs[:8], generate(8)] if refiner else [generate(16)]
                save_image_rows(shown, run_dir / "samples" / f"step_{step:07d}.png", scale=max(1, 128 // args.size),
                                row_labels=["input", "refined"] if refiner else None)
            if step % args.ckpt_every == 0 or step == args.steps or stop.requested:
                save_checkpoint(run_dir / "checkpoint.pt", step, {"D": D, "G": G}, {"D": opt_d, "G": opt_g},
                                {"D": sched_d, "G": sched_g}, extra={"k": k.cpu(), "batches": batches.state_dict()},
                                config=vars(args))
            if stop.requested:
                print(f"\nstopped at step {step}; continue with --resume --out {run_dir}")
                break
    bar.close()
    plot_losses(run_dir / "log.csv", run_dir / "loss.png", title=f"began_refiner {args.generator}")
    print(f"run folder: {run_dir} (samples/, log.csv, loss.png, checkpoint.pt); "
          f"evaluate with: python began_refiner/eval.py --run {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
