"""Train the anime-face DCGAN (§IV.D–J).

    python style_anime/train.py                                   # quick: 32×32, built-in anime faces, ~4 min on 2 free CPU cores
    python style_anime/train.py --preset paper --device cuda --amp            # 64×64, DCGAN widths
    python style_anime/train.py --data ~/data/anime-faces --size 64           # the Kaggle anime-faces folder

Each step follows §IV.E: draw normal noise (1), generate a batch beside a real batch (2),
give the discriminator noisy labels (3), train the discriminator on both (5), then train
the combined model G → D with D frozen (4, 6, §IV.H).
Both networks are saved in checkpoint.pt (7).
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
from style_anime.model import (SLOPE, Discriminator, Generator, discriminator_loss, generator_loss, init_weights,
                               noisy_labels)

# The paper gives no hyperparameters; these are DCGAN's (Radford et al.): Adam, lr 2e-4, β1 = 0.5,
# batch 128, z = 100, widths 64. paper: its 64×64 faces (§IV.E). quick: 32×32 and width 32, for a 2-core CPU.
PRESETS = {
    "quick": dict(size=32, width=32, batch_size=32, steps=3000, lr=2e-4, train_faces=8000,
                  sample_every=250, ckpt_every=500, log_every=20, fid_every=500),
    "paper": dict(size=64, width=64, batch_size=128, steps=50_000, lr=2e-4, train_faces=21_551,
                  sample_every=1000, ckpt_every=5000, log_every=100, fid_every=5000),
}
HELD_OUT = 500_000       # held-out built-in anime faces for FID are items 500,000… of seed 0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--z", type=int, default=100, help="noise dimension (DCGAN: 100)")
    ap.add_argument("--slope", type=float, default=SLOPE, help="LeakyReLU negative slope (§IV.F: 0.01)")
    ap.add_argument("--label-noise", type=float, default=0.1, metavar="E",
                    help="discriminator labels: real ~ U[1−E, 1], fake ~ U[0, E] (§IV.E step 3; 0: hard labels)")
    ap.add_argument("--fid-faces", type=int, default=500,
                    help="generated and held-out faces for FID (with --data: the last ones, never trained on)")
    for name in ("width", "train_faces", "log_every", "fid_every"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="(default: from --preset)")
    add_common_args(ap)
    args = apply_preset(ap.parse_args(argv), PRESETS)
    if not 0 <= args.label_noise < 0.5:
        raise SystemExit(f"--label-noise must be in [0, 0.5) so real and fake labels stay apart, not {args.label_noise}")
    return args


def load_faces(args):
    """(training faces, held-out faces) as uint8: the built-in anime faces, or --data split at its end."""
    if args.data:
        images = load_image_folder(args.data, args.size, crop="center").images
        if len(images) <= args.fid_faces + args.batch_size:
            raise DataError(f"{args.data} holds {len(images)} images: too few to hold out --fid-faces "
                            f"{args.fid_faces} and still fill a batch of {args.batch_size}")
        return images[:-args.fid_faces], images[-args.fid_faces:]
    return (synthetic.faces(args.train_faces, args.size, "anime", seed=0),
            synthetic.faces(args.fid_faces, args.size, "anime", seed=0, start=HELD_OUT))


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    seed_everything(args.seed)
    run_dir = make_run_dir(args.out, "style_anime", args, resume=args.resume)
    try:
        faces, held_out = load_faces(args)
    except DataError as err:
        raise SystemExit(str(err))
    batches = InMemoryBatches(faces, batch_size=args.batch_size, device=device, seed=args.seed,
                              channels_last=device.type == "cuda")

    # Models and optimisers (DCGAN: N(0, 0.02) initialisation, Adam with β = (0.5, 0.999)).
    G = Generator(args.size, args.z, args.width, slope=args.slope).to(device)
    D = Discriminator(args.size, args.width, slope=args.slope).to(device)
    G.apply(init_weights)
    D.apply(init_weights)
    if device.type == "cuda":
        D, G = D.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    opt_d = torch.optim.Adam(D.parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
    opt_g = torch.optim.Adam(G.parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
    fixed_q = torch.randn(args.fid_faces, args.z, device=device)   # the same noise for every sample grid and FID
    extractor = SyntheticFeatures(device)

    def generate(n):
        """G on the first n fixed noise vectors, in eval mode without gradients."""
        G.eval()
        with torch.no_grad(), autocast(device, args.amp):
            out = G(fixed_q[:n])
        G.train()
        return out.float()

    start = 0
    if args.resume:
        state = load_checkpoint(run_dir / "checkpoint.pt", {"D": D, "G": G}, {"D": opt_d, "G": opt_g},
                                map_location=device)
        start, fixed_q = state["step"], state["extra"]["fixed_q"].to(device)
        batches.load_state_dict(state["extra"]["batches"])
    log = CsvLogger(run_dir / "log.csv", resume_step=start if args.resume else None,
                    columns=["loss_D", "loss_G", "D_real", "D_fake", "lr", "img_s", "fid"])
    if not args.resume:
        log.log(step=0, fid=fid(generate(args.fid_faces), held_out, extractor))   # FID before any training
    speed = ImagesPerSecond(args.batch_size, start, device)
    bar = progress(args.steps, initial=start, desc="style_anime DCGAN")

    with StopOnInterrupt() as stop:
        for step in range(start + 1, args.steps + 1):
            x = next(batches)
            n = len(x)
            # §IV.E steps 1–3: normal noise → generated images beside a real batch; noisy labels for D
            q = torch.randn(n, args.z, device=device)
            real_labels = noisy_labels(n, True, args.label_noise, device)
            fake_labels = noisy_labels(n, False, args.label_noise, device)
            with autocast(device, args.amp):
                fake = G(q)
                # discriminator step (eq. 1, D's side). Real and generated images go through D as two
                # batches (DCGAN): in one mixed batch, D's batch norm let G fool it with batch statistics.
                d_real, d_fake = D(x).float(), D(fake.detach()).float()
            loss_d = discriminator_loss(d_real, real_labels) + discriminator_loss(d_fake, fake_labels)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # generator step (eq. 1, G's side): the combined model G → D with D frozen (§IV.H)
            D.requires_grad_(False)
            with autocast(device, args.amp):
                d_fake_g = D(fake).float()
            loss_g = generator_loss(d_fake_g)          # (binary cross-entropy is not autocast-safe)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            D.requires_grad_(True)
            bar.update()

            if step % args.log_every == 0 or step == args.steps:
                values = dict(loss_D=loss_d.item(), loss_G=loss_g.item())
                try:
                    check_finite(step, checkpoint=run_dir / "checkpoint.pt", **values)
                except NonFiniteLoss as err:
                    raise SystemExit(str(err))
                values.update(D_real=d_real.mean().item(), D_fake=d_fake.mean().item(), lr=args.lr,
                              img_s=speed(step))
                if step % args.fid_every == 0 or step == args.steps:
                    values["fid"] = fid(generate(args.fid_faces), held_out, extractor)
                log.log(step=step, **values)
                bar.set_postfix(D=f"{values['loss_D']:.3f}", G=f"{values['loss_G']:.3f}")
            if step % args.sample_every == 0 or step == args.steps:
                save_image_grid(generate(64), run_dir / "samples" / f"step_{step:07d}.png", nrow=8,
                                scale=max(1, 64 // args.size))
            if step % args.ckpt_every == 0 or step == args.steps or stop.requested:
                save_checkpoint(run_dir / "checkpoint.pt", step, {"D": D, "G": G}, {"D": opt_d, "G": opt_g},
                                extra={"fixed_q": fixed_q.cpu(), "batches": batches.state_dict()},
                                config=vars(args))
            if stop.requested:
                print(f"\nstopped at step {step}; continue with --resume --out {run_dir}")
                break
    bar.close()
    plot_losses(run_dir / "log.csv", run_dir / "loss.png", columns=[("loss_D", "loss_G"), ("D_real", "D_fake"), "fid"],
                title="style_anime DCGAN")
    print(f"run folder: {run_dir} (samples/, log.csv, loss.png, checkpoint.pt); "
          f"evaluate with: python style_anime/eval.py --run {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
