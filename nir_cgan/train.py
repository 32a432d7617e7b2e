"""Train the thesis's conditional GAN: colour-coded 3D-model renders → near-infrared faces (Algorithm 2).

    python nir_cgan/train.py                                   # quick: ED-LS-LR-2 at 32×32, ~9 min on 2 CPU cores
    python nir_cgan/train.py --config ED-H-LR-SD-1             # any row of Tables 4.2–4.8 (see configs.py)
    python nir_cgan/train.py --preset paper --device cuda --amp            # 128×128, Table 3.8
    python nir_cgan/train.py --data ~/pairs                    # your pairs: ~/pairs/source/…, ~/pairs/target/…

G(y, z) turns a source render y (one fixed identity, §3.1.1) and a latent z ~ N(0, 1) into a
grayscale NIR face with y's pose and gaze and an appearance chosen by z. A PatchGAN D judges
(y, image) pairs. Optional terms of eq. 3.5: perceptual loss (eq. 3.4), latent reconstruction
with an encoder E (eq. 3.1), style diversity (eq. 3.2), identity reconstruction (eq. 3.3), and a
mapping network L in front of z (§3.2.2.4). The configuration name selects them (Table 4.1).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common import synthetic
from common.data import DataError, InMemoryBatches, load_paired_folders, to_float, to_uint8
from common.metrics import fid
from common.plots import plot_losses, save_image_rows
from common.run import (CsvLogger, ImagesPerSecond, NonFiniteLoss, StopOnInterrupt, add_common_args, apply_preset,
                        autocast, check_finite, load_checkpoint, make_run_dir, pick_device, progress,
                        save_checkpoint, seed_everything)
from common.synthnet import SyntheticFeatures, load_synthnet
from nir_cgan.configs import CONFIGS
from nir_cgan.data import augment_pairs, normalise_mean, split_train_test
from nir_cgan.model import (EncoderDecoder, LatentEncoder, MappingNetwork, MultinormDecoder, PatchDiscriminator,
                            VGGDistance, discriminator_loss, feature_matching_loss, generator_loss,
                            identity_reconstruction_loss, init_xavier, l1_distance, latent_reconstruction_loss,
                            style_diversity_loss)

# paper: Table 3.8 (batch 12, 10 + 10 epochs, Adam (0.5, 0.999), lr G 1.5e-4, D 4.5e-4, E 1.5e-4, L 4.5e-6,
# latent 512) at 128×128 with the tables' widths and the Table 3.1 augmentations.
# quick (~9 min on 2 CPU cores): the same networks and learning rates at 32×32, 3,960 training pairs for
# 11 epochs (3,630 steps), an 8-d latent and no augmentation -- the choices that made faces appear
# within a few thousand steps in the tuning runs the README lists.
PRESETS = {
    "quick": dict(size=32, steps=0, pairs=4400, batch_size=12, epochs_fixed=6, epochs_decay=5, lr=1.5e-4, lr_d=4.5e-4,
                  lr_e=1.5e-4, lr_l=4.5e-6, latent_dim=8, g_base=16, g_max=256, e_base=8, e_max=128, d_base=16,
                  spade_hidden=32, augment=False, sample_every=500, ckpt_every=500, log_every=25, fid_every=500),
    "paper": dict(size=128, steps=0, pairs=20_000, batch_size=12, epochs_fixed=10, epochs_decay=10, lr=1.5e-4, lr_d=4.5e-4,
                  lr_e=1.5e-4, lr_l=4.5e-6, latent_dim=512, g_base=16, g_max=256, e_base=32, e_max=512, d_base=32,
                  spade_hidden=128, augment=True, sample_every=2000, ckpt_every=5000, log_every=100, fid_every=5000),
}
# steps=0: train K_fixed + K_decay epochs (§3.2.6.1); an explicit --steps stops earlier or later.
TEST_FRACTION = 0.1          # §3.1.6: 90 / 10 split


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="ED-LS-LR-2", choices=sorted(CONFIGS), metavar="NAME",
                    help="a configuration of Tables 4.2–4.8, e.g. ED-LS-LR-2 (default), Mult-LS, ED-H-P, "
                         "ED-H-LR-SD-1, ED-LS-LR-IR-4, ED-LS-P-LR-SD-SM; all in nir_cgan/configs.py")
    ap.add_argument("--vgg-weights", choices=["imagenet", "none"], default="imagenet",
                    help="VGG-19 for configurations that use it: ImageNet (download) or none (random, offline)")
    ap.add_argument("--faceid-net", metavar="FILE",
                    help="TorchScript face-identity network (B,3,H,W in [−1,1] → features) for d_I = FaceId; "
                         "default: the shipped synthetic-face network")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction,
                    help="Table 3.1 augmentations (default: from --preset: paper on, quick off)")
    for name in ("lr_d", "lr_e", "lr_l", "epochs_fixed", "epochs_decay"):
        ap.add_argument("--" + name.replace("_", "-"), type=float, help="(default: from --preset)")
    for name in ("pairs", "latent_dim", "g_base", "g_max", "e_base", "e_max", "d_base", "spade_hidden",
                 "log_every", "fid_every"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="(default: from --preset)")
    ap.add_argument("--fid-pairs", type=int, default=200, help="test pairs for the FID in log.csv (0: none)")
    add_common_args(ap)
    return apply_preset(ap.parse_args(argv), PRESETS)


def load_pairs(args):
    """§3.1: (train, test) dicts of uint8 source (N,3,H,W) and mean-normalised target (N,1,H,W).

    Built-in: ``args.pairs`` mask → NIR pairs (test pairs keep their true pose/gaze in "params").
    The 90/10 split is seeded, so eval.py gets the same test set back.
    """
    params = None
    if args.data:
        source, target, _ = load_paired_folders(args.data, args.size, source_channels=3, target_channels=1)
    else:
        source, target, params = synthetic.mask_nir_pairs(args.pairs, args.size, seed=0, with_params=True)
    target01 = (to_float(target) + 1) / 2                              # §3.1.5: μ0/μ scaling on [0, 1]
    target = to_uint8(normalise_mean(target01, target01.mean().item()) * 2 - 1)
    train_idx, test_idx = split_train_test(len(source), TEST_FRACTION, seed=0)
    split = []
    for idx in (train_idx, test_idx):
        part = dict(source=source[idx], target=target[idx])
        if params is not None:
            part["params"] = {k: v[idx] for k, v in params.items()}
        split.append(part)
    return split


def build_models(args, config, device):
    """G (ED or Mult), D, and E / L when the configuration uses them, Xavier-initialised (Table 3.8)."""
    g_args = dict(size=args.size, base=args.g_base, max_channels=args.g_max, latent_dim=args.latent_dim)
    G = EncoderDecoder(**g_args) if config.generator == "ED" else MultinormDecoder(**g_args,
                                                                                  spade_hidden=args.spade_hidden)
    models = {"G": G, "D": PatchDiscriminator(base=args.d_base)}
    if config.uses_encoder:
        models["E"] = LatentEncoder(args.size, args.e_base, args.e_max, args.latent_dim)
    if config.mapping:
        models["L"] = MappingNetwork(args.latent_dim, args.latent_dim)
    for m in models.values():
        init_xavier(m).to(device)
        if device.type == "cuda":
            m.to(memory_format=torch.channels_last)
    return models


class FaceIdDistance(torch.nn.Module):
    """d_I = FaceId: mean |f(a) − f(b)| of a frozen face-identity network's features, per pair (B,).

    The thesis used a ResNet-50 trained on VGGFace2 (§3.2.4.2.2), which we cannot ship; by default
    the features are those of the repo's synthetic-face network, which knows the built-in identities.
    """

    def __init__(self, path, device):
        super().__init__()
        self.net = torch.jit.load(path, map_location=device) if path else load_synthnet(device=device)
        self.net.requires_grad_(False).eval()
        self.features = self.net if path else self.net.features

    def forward(self, a, b):
        f = self.features(torch.cat([a, b]).expand(-1, 3, -1, -1))
        return (f[:len(a)] - f[len(a):]).abs().flatten(1).mean(1)


def image_distances(config, args, D, device):
    """The d_I choices this configuration needs, each d(a, b, y) → (B,) with y the shared source."""
    names = {config.sd_image if config.lambda_sd else None, config.ir_image if config.lambda_ir else None}
    vgg = VGGDistance(args.vgg_weights).to(device) if "VGG" in names or config.perceptual == "VGG" else None
    faceid = FaceIdDistance(args.faceid_net, device) if "FaceId" in names else None
    distances = {
        "L1": lambda a, b, y: l1_distance(a, b),
        "D": lambda a, b, y: sum(l1_distance(fa, fb) for fa, fb in zip(D(y, a)[:-1], D(y, b)[:-1])),
        "VGG": lambda a, b, y: vgg(a, b),
        "FaceId": lambda a, b, y: faceid(a, b),
    }
    return {name: distances[name] for name in names if name}, vgg


def lr_factor(step, fixed_steps, decay_steps):
    """§3.2.6.1: 1 for the first K_fixed epochs, then linearly down to 0 over K_decay epochs."""
    if step <= fixed_steps:
        return 1.0
    return max(0.0, 1.0 - (step - fixed_steps) / max(decay_steps, 1))


def main(argv=None):
    args = parse_args(argv)
    config = CONFIGS[args.config]
    device = pick_device(args.device)
    seed_everything(args.seed)
    try:
        train, test = load_pairs(args)
    except DataError as err:
        raise SystemExit(str(err))
    batches = InMemoryBatches(train["source"], train["target"], batch_size=args.batch_size, device=device,
                              seed=args.seed, channels_last=device.type == "cuda")
    steps_per_epoch = len(batches)
    fixed_steps = round(args.epochs_fixed * steps_per_epoch)
    decay_steps = round(args.epochs_decay * steps_per_epoch)
    args.steps = args.steps or fixed_steps + decay_steps
    run_dir = make_run_dir(args.out, "nir_cgan", args, resume=args.resume)
    augment_rng = torch.Generator().manual_seed(args.seed)           # Table 3.1 draws, saved for --resume

    models = build_models(args, config, device)
    G, D, E, L = models["G"], models["D"], models.get("E"), models.get("L")
    lrs = {"G": args.lr, "D": args.lr_d, "E": args.lr_e, "L": args.lr_l}
    optimizers = {name: torch.optim.Adam(m.parameters(), lrs[name], betas=(0.5, 0.999), foreach=True)
                  for name, m in models.items()}
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, fixed_steps, decay_steps))
                  for name, opt in optimizers.items()}
    d_image, vgg = image_distances(config, args, D, device)

    def sample_style(n):
        """z ~ N(0, 1) (Table 3.8), through the mapping network when the configuration has one (s = L(z))."""
        z = torch.randn(n, args.latent_dim, device=device)
        return L(z) if L is not None else z

    # Fixed inputs: 8 test sources with 3 fixed z each for samples/, and the FID test pairs.
    n_fid, n_show = min(args.fid_pairs, len(test["source"])), min(8, len(test["source"]))
    test_source = to_float(test["source"][:max(n_fid, n_show)]).to(device)
    fixed_z = torch.randn(3, args.latent_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    fid_z = torch.randn(n_fid, args.latent_dim, generator=torch.Generator().manual_seed(4321)).to(device)
    extractor = SyntheticFeatures(device) if n_fid and not args.data else None

    @torch.no_grad()
    def generate(source, z):
        """G in eval mode, without gradients; z goes through L when there is one."""
        for m in models.values():
            m.eval()
        with autocast(device, args.amp):
            out = G(source, L(z) if L is not None else z)
        for m in models.values():
            m.train()
        return out.float().clamp(-1, 1)

    def current_fid():
        return fid(generate(test_source[:n_fid], fid_z), test["target"][:n_fid], extractor)

    start = 0
    if args.resume:
        state = load_checkpoint(run_dir / "checkpoint.pt", models, optimizers, schedulers, map_location=device)
        start = state["step"]
        batches.load_state_dict(state["extra"]["batches"])
        augment_rng.set_state(state["extra"]["augment_rng"])
    log = CsvLogger(run_dir / "log.csv", resume_step=start if args.resume else None,
                    columns=["loss_D", "loss_adv", "loss_p", "loss_lr", "loss_sd", "loss_ir", "loss_G", "lr",
                             "img_s", "fid"])
    if not args.resume and extractor is not None:
        log.log(step=0, fid=current_fid())                               # FID before any training
    speed = ImagesPerSecond(args.batch_size, start, device)
    bar = progress(args.steps, initial=start, desc=f"nir_cgan {args.config}")
    g_side = [p for name, m in models.items() if name != "D" for p in m.parameters()]   # G, E, L learn together
    d_params = list(D.parameters())
    zero = torch.zeros((), device=device)

    with StopOnInterrupt() as stop:
        for step in range(start + 1, args.steps + 1):
            y, x = next(batches)                                          # source render, real NIR target
            if args.augment:
                y, x = augment_pairs(y, x, augment_rng)                   # Table 3.1, same warp for both

            # discriminator step (Algorithm 2, first half): fresh z, G frozen
            with autocast(device, args.amp):
                with torch.no_grad():
                    fake = G(y, sample_style(len(y)))
                loss_d = discriminator_loss(D(y, x)[-1], D(y, fake)[-1], config.adversarial)
            optimizers["D"].zero_grad(set_to_none=True)
            loss_d.backward(inputs=d_params)
            optimizers["D"].step()

            # generator step (Algorithm 2, second half; eq. 3.5): a new z, then the optional terms
            with autocast(device, args.amp):
                s = sample_style(len(y))
                fake = G(y, s)
                fake_features = D(y, fake)
                loss_adv = generator_loss(fake_features[-1], config.adversarial)
                loss_p = loss_lr = loss_sd = loss_ir = zero
                if config.perceptual == "VGG":                            # eq. 3.4 on VGG-19 (L1, §3.2.4.2.1)
                    loss_p = vgg(fake, x).mean()
                elif config.perceptual:                                   # eq. 3.4 on D's layers 4 & 5, or all
                    with torch.no_grad():                                 # the real side is a constant target
                        real_features = D(y, x)
                    first = 3 if config.perceptual == "D45" else 0
                    loss_p = feature_matching_loss(fake_features[first:-1], real_features[first:-1])
                if config.lambda_lr:                                      # eq. 3.1
                    loss_lr = latent_reconstruction_loss(s, E(fake))
                if config.lambda_sd:                                      # eq. 3.2 with a second style
                    s2 = sample_style(len(y))
                    d_latent = (torch.ones(len(y), device=device) if config.sd_latent == "const"
                                else l1_distance(s, s2))
                    loss_sd = style_diversity_loss(d_image[config.sd_image](fake, G(y, s2), y), d_latent)
                if config.lambda_ir:                                      # eq. 3.3: x → E → G(y, E(x))
                    loss_ir = identity_reconstruction_loss(d_image[config.ir_image](x, G(y, E(x)), y))
                loss_g = (loss_adv + config.lambda_p * loss_p + config.lambda_lr * loss_lr
                          - config.lambda_sd * loss_sd + config.lambda_ir * loss_ir)
            for name in optimizers:
                if name != "D":
                    optimizers[name].zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_side)
            for name, opt in optimizers.items():
                if name != "D":
                    opt.step()
            for sched in schedulers.values():
                sched.step()
            bar.update()

            if step % args.log_every == 0 or step == args.steps:
                values = dict(loss_D=loss_d.item(), loss_adv=loss_adv.item(), loss_p=loss_p.item(),
                              loss_lr=loss_lr.item(), loss_sd=loss_sd.item(), loss_ir=loss_ir.item(),
                              loss_G=loss_g.item())
                try:
                    check_finite(step, checkpoint=run_dir / "checkpoint.pt", **values)
                except NonFiniteLoss as err:
                    raise SystemExit(str(err))
                values.update(lr=schedulers["G"].get_last_lr()[0], img_s=speed(step))
                if extractor is not None and (step % args.fid_every == 0 or step == args.steps):
                    values["fid"] = current_fid()
                log.log(step=step, **values)
                bar.set_postfix(D=f"{values['loss_D']:.3f}", G=f"{values['loss_G']:.3f}")
            if step % args.sample_every == 0 or step == args.steps:
                rows = [test_source[:n_show], to_float(test["target"][:n_show])] + [
                    generate(test_source[:n_show], z.expand(n_show, -1)) for z in fixed_z]
                save_image_rows(rows, run_dir / "samples" / f"step_{step:07d}.png", scale=max(1, 128 // args.size),
                                row_labels=["source y", "real x", "G(y, z1)", "G(y, z2)", "G(y, z3)"],
                                title=f"{args.config}, step {step}")
            if step % args.ckpt_every == 0 or step == args.steps or stop.requested:
                save_checkpoint(run_dir / "checkpoint.pt", step, models, optimizers, schedulers,
                                extra={"batches": batches.state_dict(), "augment_rng": augment_rng.get_state()},
                                config=vars(args))
            if stop.requested:
                print(f"\nstopped at step {step}; continue with --resume --out {run_dir}")
                break
    bar.close()
    terms = {"loss_p": config.perceptual, "loss_lr": config.lambda_lr, "loss_sd": config.lambda_sd,
             "loss_ir": config.lambda_ir}
    plot_losses(run_dir / "log.csv", run_dir / "loss.png", title=f"nir_cgan {args.config}",
                columns=["loss_D", "loss_adv"] + [name for name, used in terms.items() if used])
    print(f"run folder: {run_dir} (samples/, log.csv, loss.png, checkpoint.pt); "
          f"evaluate with: python nir_cgan/eval.py --run {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
