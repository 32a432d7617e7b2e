"""Train the anime-face DCGAN (§IV.D–J).

    python style_anime/train.py                                   # quick: 32×32, built-in anime faces, ~4 min on 2 free CPU cores
    python style_anime/train.py --preset paper --device cuda --amp            # 64×64, DCGAN widths
    python style_anime/train.py --data ~/data/anime-faces --size 64           # the Kaggle anime-faces folder
    python style_anime/train.py --resume --steps 6000 --out RUN               # continue RUN

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

from common import distributed
from common.cli import HelpFormatter, add_common_args, at_least, one_sentence_errors, parse_args, positive_int
from common.data import InMemoryBatches
from common.device import autocast, outputs, pick_device, seed_everything, to_device, use_amp
from common.ema import add_ema_arg, with_average
from common.loop import Run
from common.metrics import FidReference
from common.plots import save_image_grid
from common.synthnet import SyntheticFeatures
from style_anime.data import load_faces
from style_anime.model import SLOPE, build, discriminator_loss, generator_loss, noisy_labels

# The paper gives no hyperparameters; these are DCGAN's (Radford et al.): Adam, lr 2e-4, β1 = 0.5,
# batch 128, z_dim = 100, widths 64. paper: its 64×64 faces (§IV.E). quick: 32×32 and width 32, for a 2-core CPU.
PRESETS = {
    "quick": dict(size=32, width=32, batch_size=32, steps=3000, lr=2e-4, train_faces=8000, amp=True,
                  sample_every=250, ckpt_every=500, log_every=20, fid_every=500),
    "paper": dict(size=64, width=64, batch_size=128, steps=50_000, lr=2e-4, train_faces=21_551, amp=False,
                  sample_every=1000, ckpt_every=5000, log_every=100, fid_every=5000),
}


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--z-dim", type=positive_int, default=100, help="noise size: q ~ N(0, I) in R^z_dim (DCGAN: 100)")
    ap.add_argument("--slope", type=float, default=SLOPE, help="LeakyReLU negative slope (§IV.F: 0.01)")
    ap.add_argument("--label-noise", type=float, default=0.1, metavar="E",
                    help="discriminator labels: real ~ U[1−E, 1], fake ~ U[0, E] (§IV.E step 3; 0: hard labels)")
    ap.add_argument("--fid-faces", type=at_least(2), default=500,
                    help="generated and held-out faces for FID (with --data: the last ones, never trained on)")
    ap.add_argument("--width", type=positive_int, help="network width w (DCGAN's ngf = ndf)")
    ap.add_argument("--train-faces", type=positive_int, help="built-in training faces")
    ap.add_argument("--fid-every", type=positive_int, metavar="N", help="FID (synthetic-v1) every N steps")
    add_ema_arg(ap)
    add_common_args(ap)
    args, resumed = parse_args(ap, argv, PRESETS, "style_anime")
    if not 0 <= args.label_noise < 0.5:
        ap.error(f"--label-noise must be in [0, 0.5) so real and fake labels stay apart, not {args.label_noise}")
    try:
        build(**model_args(args))
    except ValueError as err:
        ap.error(str(err))
    return args, resumed


def model_args(args):
    """What build() needs; stored in every checkpoint."""
    return dict(size=args.size, z_dim=args.z_dim, width=args.width, slope=args.slope)


def training_batches(args, device):
    """The training faces as endless shuffled batches, and the held-out faces (never trained on) for FID."""
    faces, held_out = load_faces(args.data, args.size, args.train_faces, args.fid_faces, args.batch_size)
    return InMemoryBatches(faces, batch_size=args.batch_size, device=device, seed=args.seed,
                           channels_last=args.channels_last), held_out


def networks(args, device):
    """The run's networks on the device (``build``: DCGAN's N(0, 0.02) initialisation) and their optimisers
    (DCGAN's Adam, β = (0.5, 0.999))."""
    models = {name: to_device(net, device, args.channels_last) for name, net in build(**model_args(args)).items()}
    return models, {name: torch.optim.Adam(models[name].parameters(), args.lr, betas=(0.5, 0.999), foreach=True)
                    for name in ("D", "G")}


def fixed_inputs(held_out, args, device):
    """FID's reference, the held-out faces (never trained on), and the fixed noise q of every sample grid and FID."""
    reference = FidReference(held_out, SyntheticFeatures(device))
    return reference, torch.randn(args.fid_faces, args.z_dim, device=device)


@one_sentence_errors
def main(argv=None):
    args, resumed = parse(argv)
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    seed_everything(args.seed)
    batches, held_out = training_batches(args, device)
    models, optimizers = networks(args, device)
    reference, fixed_q = fixed_inputs(held_out, args, device)
    run = Run(args, "style_anime", models, model_args(args), optimizers, resumed=resumed, ema=args.ema,
              state=dict(batches=batches, fixed_q=fixed_q), images_per_step=args.batch_size,
              bar_keys=("loss_D", "loss_G"), desc="style_anime DCGAN",
              columns=["loss_D", "loss_G", "D_real", "D_fake", "fid", "diversity", "diversity_px"])
    fixed_q = run.state["fixed_q"]                   # a resumed run's own
    ema = run.moving_average("G")                    # --ema: an average of G's weights (common.ema), else None
    shown_g = ema.net if ema else models["G"]        # what samples show and eval.py evaluates

    def measure(net):
        return reference(outputs(net, fixed_q, device=device, amp=amp))

    if run.writes and not run.resumed:
        run.log_eval(0, **with_average(measure, models["G"], ema))  # before any training

    nets = distributed.wrap(models)          # as the step calls them: under torchrun, DistributedDataParallel
    G, D, opt_d, opt_g = nets["G"], nets["D"], optimizers["D"], optimizers["G"]
    for step in run.steps():
        x = next(batches)                                                    # a real batch
        q = torch.randn(len(x), args.z_dim, device=device)                  # §IV.E step 1: normal noise q ~ N(0, I)
        real_labels = noisy_labels(len(x), True, args.label_noise, device)  # step 3: noisy labels for D
        fake_labels = noisy_labels(len(x), False, args.label_noise, device)
        with autocast(device, amp):
            fake = G(q)                                                      # step 2: generated beside real images
            # real and generated images through D as two batches (DCGAN): in one mixed batch, D's batch
            # norm let G fool it with batch statistics. Probabilities in float32: BCE is not autocast-safe.
            d_real, d_fake = D(x).float(), D(fake.detach()).float()
        # discriminator step (§IV.E step 5)
        loss_d = discriminator_loss(d_real, d_fake, real_labels, fake_labels)     # eq. 1, D's side
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # generator step (§IV.E steps 4, 6): the combined model G → D, D frozen (§IV.H; and not synced under torchrun)
        with distributed.frozen(D):
            with autocast(device, amp):
                d_fake_g = D(fake).float()
            loss_g = generator_loss(d_fake_g)                                     # eq. 1, G's side (non-saturating)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        if ema:
            ema.update(step)

        run.log(step, loss_D=loss_d, loss_G=loss_g, D_real=d_real.detach().mean(), D_fake=d_fake.detach().mean())
        if run.due(step, args.fid_every):
            run.log_eval(step, **with_average(measure, models["G"], ema))
        if run.due(step, args.sample_every):
            save_image_grid(outputs(shown_g, fixed_q[:64], device=device, amp=amp),
                            run.dir / "samples" / f"step_{step:07d}.png", nrow=8, scale=max(1, 64 // args.size))
        run.save(step)
    return run.finish(plot_columns=[("loss_D", "loss_G"), ("D_real", "D_fake"), ("fid", "fid_ema"), ("diversity", "diversity_px")],
                      title="style_anime DCGAN")


if __name__ == "__main__":
    main()
