"""Train the thesis's conditional GAN: colour-coded 3D-model renders → near-infrared faces (Algorithm 2).

    python nir_cgan/train.py                                   # quick: ED-LS-P-1 at 32×32, ~10 min on 2 CPU cores
    python nir_cgan/train.py --config ED-H-LR-SD-1             # any row of Tables 4.2–4.8 (see configs.py)
    python nir_cgan/train.py --preset paper --device cuda      # ED-LS-LR-2, 128×128, Table 3.8 (--amp: bfloat16)
    python nir_cgan/train.py --data ~/pairs                    # your pairs: ~/pairs/source/…, ~/pairs/target/…
    python nir_cgan/train.py --resume --out RUN --lr-d 2e-4    # continue RUN, with another D learning rate

G(y, z) turns a source render y (one fixed identity, §3.1.1) and a latent z ~ N(0, 1) into a
grayscale NIR face with y's pose and gaze and an appearance chosen by z. A PatchGAN D judges
(y, image) pairs. Optional terms of eq. 3.5: perceptual loss (eq. 3.4), latent reconstruction
with an encoder E (eq. 3.1), style diversity (eq. 3.2), identity reconstruction (eq. 3.3), and a
mapping network L in front of z (§3.2.2.4). The configuration name selects them (Table 4.1).
A run lasts K_fixed + K_decay epochs (§3.2.6.1) unless --steps says otherwise.
"""
import argparse
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common import distributed
from common.cli import HelpFormatter, add_common_args, one_sentence_errors, parse_args, positive_float, positive_int
from common.data import InMemoryBatches, to_float
from common.device import autocast, outputs, pick_device, seed_everything, to_device, use_amp
from common.ema import add_ema_arg
from common.loop import Run
from common.metrics import fid
from common.plots import save_image_rows
from common.synthnet import SyntheticFeatures
from nir_cgan.configs import CONFIGS
from nir_cgan.data import augment_pairs, load_pairs, training_pairs
from nir_cgan.model import (FaceIdDistance, VGGDistance, build, discriminator_loss, feature_matching_loss, full_loss,
                            generator_loss, identity_reconstruction_loss, image_distances, l1_distance,
                            latent_reconstruction_loss, style, style_diversity_loss)

# paper: Table 3.8 (batch 12, 10 + 10 epochs, Adam (0.5, 0.999), lr G 1.5e-4, D 4.5e-4, E 1.5e-4, L 4.5e-6,
# latent 512) at 128×128 with the tables' widths and the Table 3.1 augmentations, and the thesis's best
# configuration, ED-LS-LR-2 (§3.5.2).
# quick (~10 min on 2 CPU cores): ED-LS-P-1 (Table 4.4: least squares + D feature matching), because
# ED-LS-LR-2 makes no faces at CPU scale and ED-LS's faces turn too little with the mask (README), at 32×32
# with the same learning rates, 7,920 training pairs for 3 + 3 epochs (3,960 steps), an 8-d latent and no
# augmentation -- the choices that made faces appear within a few thousand steps in the tuning runs.
# steps=None: train K_fixed + K_decay epochs (§3.2.6.1), counted once the data is loaded; --steps N stops at N.
PRESETS = {
    "quick": dict(config="ED-LS-P-1", size=32, steps=None, pairs=8_800, batch_size=12, epochs_fixed=3, epochs_decay=3,
                  lr=1.5e-4, lr_d=4.5e-4, lr_e=1.5e-4, lr_l=4.5e-6, z_dim=8, g_base=16, g_max=256, e_base=8, e_max=128,
                  d_base=16, spade_hidden=32, augment=False, amp=True, lr_warmup=0, sample_every=500,
                  ckpt_every=500, log_every=25, fid_every=500),
    "paper": dict(config="ED-LS-LR-2", size=128, steps=None, pairs=20_000, batch_size=12, epochs_fixed=10,
                  epochs_decay=10, lr=1.5e-4, lr_d=4.5e-4, lr_e=1.5e-4, lr_l=4.5e-6, z_dim=512, g_base=16, g_max=256,
                  e_base=32, e_max=512, d_base=32, spade_hidden=128, augment=True, amp=False, lr_warmup=0,
                  sample_every=2000, ckpt_every=5000, log_every=100, fid_every=5000),
}
SAMPLE_SEED, FID_SEED = 1234, 4321     # the fixed z of samples/ and of the in-log FID


def parser():
    """train.py's flags: the common ones (``common.cli``) and the thesis's."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), metavar="NAME",
                    help="a configuration of Tables 4.2–4.8, e.g. ED-LS-LR-2, Mult-LS, ED-H-P, ED-H-LR-SD-1, "
                         "ED-LS-LR-IR-4, ED-LS-P-LR-SD-SM; all in nir_cgan/configs.py (quick preset: ED-LS-P-1, "
                         "paper: the thesis's best, ED-LS-LR-2; the README says why)")
    ap.add_argument("--lr-warmup", type=float, metavar="K",
                    help="epochs over which λ_lr rises linearly from 0 to its value (0: from the start, as the "
                         "thesis; ours, see README)")
    ap.add_argument("--vgg-weights", choices=["imagenet", "none"], default="imagenet",
                    help="VGG-19 for configurations that use it: ImageNet (download) or none (random, offline)")
    ap.add_argument("--faceid-net", metavar="FILE",
                    help="TorchScript face-identity network (B,3,H,W in [−1,1] → features) for d_I = FaceId; "
                         "without it: the shipped synthetic-face network")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction,
                    help="Table 3.1 augmentations (paper preset: on, quick: off)")
    ap.add_argument("--lr-d", type=positive_float, help="D's learning rate (--lr is G's; on --resume: applied "
                                                        "from there on, as are --lr-e and --lr-l)")
    ap.add_argument("--lr-e", type=positive_float, help="E's learning rate")
    ap.add_argument("--lr-l", type=positive_float, help="L's learning rate")
    ap.add_argument("--epochs-fixed", type=float, metavar="K", help="K_fixed: epochs at a constant learning rate")
    ap.add_argument("--epochs-decay", type=float, metavar="K",
                    help="K_decay: epochs of linear decay to 0 (§3.2.6.1); without --steps the run lasts "
                         "K_fixed + K_decay epochs")
    ap.add_argument("--pairs", type=positive_int, help="built-in pairs (90 %% train, 10 %% test)")
    ap.add_argument("--z-dim", type=positive_int, help="size of the latent z (and of the style s = L(z))")
    ap.add_argument("--g-base", type=positive_int, help="G's channels at full resolution")
    ap.add_argument("--g-max", type=positive_int, help="G's widest layer")
    ap.add_argument("--e-base", type=positive_int, help="E's channels at full resolution")
    ap.add_argument("--e-max", type=positive_int, help="E's widest layer")
    ap.add_argument("--d-base", type=positive_int, help="D's first layer's channels")
    ap.add_argument("--spade-hidden", type=positive_int, help="hidden channels of SPADE (Mult generator)")
    ap.add_argument("--fid-pairs", type=int, default=200, help="test pairs for the FID in log.csv (0: none)")
    ap.add_argument("--fid-every", type=positive_int, metavar="N", help="FID (synthetic-v1) every N steps")
    add_ema_arg(ap)
    add_common_args(ap)
    return ap


def parse(argv):
    """The command line, checked, with the run's length settled: without --steps (and not resumed, where the
    run's config brings it back) K_fixed + K_decay epochs of the training pairs (§3.2.6.1)."""
    ap = parser()
    args, resumed = parse_args(ap, argv, PRESETS, "nir_cgan", may_change=("lr_d", "lr_e", "lr_l"))
    if args.lr_warmup < 0:
        ap.error(f"--lr-warmup cannot be negative (got {args.lr_warmup:g})")
    if args.epochs_fixed < 0 or args.epochs_decay < 0:
        ap.error(f"--epochs-fixed and --epochs-decay cannot be negative (got {args.epochs_fixed:g} "
                 f"and {args.epochs_decay:g})")
    if args.steps is None and args.epochs_fixed + args.epochs_decay <= 0:
        ap.error("--epochs-fixed + --epochs-decay is 0 epochs: give more epochs, or --steps")
    if args.fid_pairs < 0 or args.fid_pairs == 1:
        ap.error(f"--fid-pairs must be 0 (no FID) or at least 2 (FID compares two sets of faces), "
                 f"not {args.fid_pairs}")
    if not args.data and args.pairs < 2:
        ap.error("--pairs must be at least 2: one of them goes to the test set")
    if args.faceid_net and not Path(args.faceid_net).is_file():
        ap.error(f"--faceid-net {args.faceid_net} is not a file")
    try:
        build(**model_args(args))
    except ValueError as err:
        ap.error(str(err))
    if args.steps is None:                                                  # the preset's K_fixed + K_decay epochs
        args.steps = epochs_in_steps(args)
    return args, resumed


def model_args(args):
    """What build() needs; stored in every checkpoint (eval.py rebuilds the run from it alone)."""
    config = CONFIGS[args.config]
    return dict(generator=config.generator, size=args.size, z_dim=args.z_dim, g_base=args.g_base, g_max=args.g_max,
                spade_hidden=args.spade_hidden, d_base=args.d_base, encoder=config.uses_encoder,
                e_base=args.e_base, e_max=args.e_max, mapping=config.mapping)


# ------------------------------------------------------------------------------ the schedule (§3.2.6.1)

class Schedule(NamedTuple):
    """The learning-rate schedule in steps: K_fixed epochs, K_decay epochs, and the λ_lr warm-up (ours)."""
    fixed: int
    decay: int
    warmup: int


def schedule(args) -> Schedule:
    """``--epochs-fixed``, ``--epochs-decay`` and ``--lr-warmup`` in steps: epochs × batches an epoch, an epoch
    being every training pair once (``data.training_pairs``, in full batches, as ``InMemoryBatches`` draws them)."""
    batches = training_pairs(args.data, args.pairs) // args.batch_size
    return Schedule(fixed=round(args.epochs_fixed * batches), decay=round(args.epochs_decay * batches),
                    warmup=round(args.lr_warmup * batches))


def epochs_in_steps(args):
    """K_fixed + K_decay epochs in steps (§3.2.6.1): the length of a run without --steps; a sentence if it is none."""
    pairs = training_pairs(args.data, args.pairs)
    if args.batch_size > pairs:
        raise SystemExit(f"batch size {args.batch_size} does not fit the {pairs} training pairs; "
                         f"use --batch-size between 1 and {pairs}")
    steps = schedule(args)
    if steps.fixed + steps.decay < 1:
        raise SystemExit(f"{args.epochs_fixed:g} + {args.epochs_decay:g} epochs of {pairs // args.batch_size} "
                         f"batches is less than one step: give more epochs, or --steps.")
    return steps.fixed + steps.decay


def lr_factor(step, fixed_steps, decay_steps):
    """§3.2.6.1: 1 for the first K_fixed epochs, then linearly down to 0 over K_decay epochs."""
    if step <= fixed_steps:
        return 1.0
    return max(0.0, 1.0 - (step - fixed_steps) / max(decay_steps, 1))


def linear_decay(optimizer, fixed_steps, decay_steps):
    """§3.2.6.1's scheduler: the learning rate times ``lr_factor`` (a lambda: the checkpoint keeps no state of it)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, fixed_steps, decay_steps))


def warmup_factor(step, warmup_steps):
    """λ_lr's share at ``step``: step / warmup_steps up to 1 (1 throughout when warmup_steps is 0). Ours,
    not the thesis's: it keeps E's term from outweighing L_adv while G has not yet learnt faces (README)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


# ------------------------------------------------------------------------------ the players' losses (Algorithm 2)

def compute_d_loss(nets, config, y, x, z):
    """Algorithm 2, the discriminator's half: L_D of Table 2.1 on the real pair (y, x) and the
    pair (y, G(y, s)) for a fresh latent z. G is frozen here (no graph is kept through it).

    Returns {"loss_D": tensor}.
    """
    G, D = nets["G"], nets["D"]
    with torch.no_grad():
        fake = G(y, style(nets, z))
    # adversarial loss (Table 2.1): real pairs towards f, generated pairs towards g
    loss_d = discriminator_loss(D(y, x)[-1], D(y, fake)[-1], config.adversarial)
    return {"loss_D": loss_d}


def compute_g_loss(nets, config, y, x, z, z2=None, d_image=None, vgg=None, lr_weight=1.0):
    """Algorithm 2, the generator's half: eq. 3.5 for G (E and L learn with it)

        L_G = L_adv + λ_p·L_p + w·λ_lr·L_lr − λ_sd·L_sd + λ_ir·L_ir

    with only the terms the configuration uses. z: this step's latent; z2: a second latent
    for L_sd (eq. 3.2); d_image: the d_I of eqs. 3.2–3.3 (``model.image_distances``); vgg: the
    VGG-19 distance of the VGG perceptual loss; lr_weight: w, the λ_lr warm-up factor
    (``warmup_factor``; 1 is eq. 3.5 itself). Returns tensors {"loss_adv", "loss_p",
    "loss_lr", "loss_sd", "loss_ir" (those used), "loss_G"}.
    """
    G, D, E = nets["G"], nets["D"], nets.get("E")
    s = style(nets, z)
    fake = G(y, s)
    fake_features = D(y, fake)
    # adversarial loss (Table 2.1)
    terms = {"loss_adv": generator_loss(fake_features[-1], config.adversarial)}
    # perceptual loss (eq. 3.4): on VGG-19 (L1, §3.2.4.2.1), or on D's layers 4 & 5 or all (the real side a target)
    if config.perceptual == "VGG":
        terms["loss_p"] = vgg(fake, x).mean()
    elif config.perceptual:
        with torch.no_grad():
            real_features = D(y, x)
        first = 3 if config.perceptual == "D45" else 0
        terms["loss_p"] = feature_matching_loss(fake_features[first:-1], real_features[first:-1])
    # latent reconstruction loss (eq. 3.1): E(G(y, s)) should give s back
    if config.lambda_lr:
        terms["loss_lr"] = latent_reconstruction_loss(s, E(fake))
    # style diversity loss (eq. 3.2): a second style s2; G(y, s2) detached, as StarGAN v2
    if config.lambda_sd:
        s2 = style(nets, z2)
        d_latent = torch.ones(len(y), device=y.device) if config.sd_latent == "const" else l1_distance(s, s2)
        fake2 = G(y, s2).detach()
        terms["loss_sd"] = style_diversity_loss(d_image[config.sd_image](fake, fake2, y), d_latent)
    # identity reconstruction loss (eq. 3.3): x → E → G(y, E(x)) should give x back
    if config.lambda_ir:
        terms["loss_ir"] = identity_reconstruction_loss(d_image[config.ir_image](x, G(y, E(x)), y))
    # full loss (eq. 3.5), λ_lr weighted by the warm-up w
    lambda_lr = lr_weight * config.lambda_lr
    terms["loss_G"] = full_loss(terms, config.lambda_p, lambda_lr, config.lambda_sd, config.lambda_ir)
    return terms


# ------------------------------------------------------------------------------ what the loop is given

def learning_rates(args):
    """One learning rate per network (§3.2.6.1, Table 3.8): --lr for G, --lr-d, --lr-e, --lr-l."""
    return {"G": args.lr, "D": args.lr_d, "E": args.lr_e, "L": args.lr_l}


def optimisers(models, lrs, epochs):
    """Table 3.8: one Adam, β = (0.5, 0.999), per network with its own learning rate ``lrs[name]``, held
    for K_fixed epochs and then decayed linearly to 0 over K_decay (§3.2.6.1; ``epochs``: a ``Schedule``).
    Returns (optimizers, schedulers)."""
    optimizers = {name: torch.optim.Adam(m.parameters(), lrs[name], betas=(0.5, 0.999), foreach=True)
                  for name, m in models.items()}
    return optimizers, {name: linear_decay(opt, epochs.fixed, epochs.decay) for name, opt in optimizers.items()}


def distances(config, D, vgg_weights, faceid_net, device):
    """The d_I of eqs. 3.2–3.3 the configuration uses (``model.image_distances``), and VGG-19 when it needs one
    (as d_I, or for the VGG perceptual loss of eq. 3.4; else None). Returns (d_image, vgg)."""
    vgg = VGGDistance(vgg_weights).to(device) if config.uses_vgg else None                       # §3.2.4.2.1
    faceid = FaceIdDistance(faceid_net, device) if "FaceId" in config.image_distances else None   # §3.2.4.2.2
    return image_distances(config.image_distances, D, vgg, faceid), vgg


def loss_terms(config):
    """log.csv's columns for the terms of L_G (eq. 3.5) the configuration uses: L_adv and those of L_p, L_lr,
    L_sd and L_ir whose λ (or perceptual network) it has."""
    optional = (("loss_p", config.perceptual), ("loss_lr", config.lambda_lr), ("loss_sd", config.lambda_sd),
                ("loss_ir", config.lambda_ir))
    return ["loss_adv"] + [name for name, on in optional if on]


def fixed_inputs(test, fid_pairs, z_dim, synthetic, device):
    """What samples and the in-log FID always show: (up to 8 test pairs with 3 fixed z (SAMPLE_SEED) for
    samples/, up to ``fid_pairs`` test pairs with one fixed z each (FID_SEED) and synthetic-v1 features
    for FID), dicts of "source" (float, on ``device``), "target", "z" (and "features"). No FID (None)
    with fewer than 2 pairs or on data that is not ``synthetic``."""
    n_fid, n_show = min(fid_pairs, len(test["source"])), min(8, len(test["source"]))
    source = to_float(test["source"][:max(n_fid, n_show)]).to(device)
    fixed_z = torch.randn(3, z_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED)).to(device)
    fid_z = torch.randn(n_fid, z_dim, generator=torch.Generator().manual_seed(FID_SEED)).to(device)
    shown = dict(source=source[:n_show], target=to_float(test["target"][:n_show]), z=fixed_z)
    if n_fid < 2 or not synthetic:
        return shown, None
    fid_set = dict(source=source[:n_fid], target=test["target"][:n_fid], z=fid_z)
    return shown, dict(fid_set, features=SyntheticFeatures(device))


# ------------------------------------------------------------------------------ outputs: samples and FID

def generate(nets, source, z, device, amp):
    """G(y, s) as samples and FID see it (``common.device.outputs``: eval mode, no gradients), s = L(z) when
    there is an L (an MLP: the same in either mode)."""
    with torch.no_grad(), autocast(device, amp):
        s = style(nets, z)
    return outputs(nets["G"], source, s, device=device, amp=amp)


def in_log_fid(nets, fid_set, device, amp):
    """FID (synthetic-v1) of G(y, z) for the FID test sources and their fixed z, against the real targets."""
    return fid(generate(nets, fid_set["source"], fid_set["z"], device, amp), fid_set["target"], fid_set["features"])


def fids(nets, averaged, fid_set, device, amp):
    """log.csv's ``fid`` of G, and with --ema ``fid_ema`` of the averages of G and L (``averaged``, else None)."""
    values = dict(fid=in_log_fid(nets, fid_set, device, amp))
    if averaged is not None:
        values["fid_ema"] = in_log_fid(averaged, fid_set, device, amp)
    return values


def moving_averages(run, models, decay):
    """--ema: moving averages of G and of the mapping network L (StarGAN v2's nets_ema; ``common.ema``), as
    (the averages to update, the networks with the averages in place of G and L, or None without --ema)."""
    averages = {name: run.moving_average(name) for name in ("G", "L") if name in models and decay}
    return averages, ({**models, **{name: ema.net for name, ema in averages.items()}} if averages else None)


def save_samples(run_dir, step, shown, nets, config_name, size, device, amp):
    """samples/step_XXXXXXX.png: the test sources y, their real x, and G(y, z) for each of the 3 fixed z."""
    n = len(shown["source"])
    rows = [shown["source"], shown["target"]] + [generate(nets, shown["source"], z.expand(n, -1), device, amp)
                                                 for z in shown["z"]]
    save_image_rows(rows, run_dir / "samples" / f"step_{step:07d}.png", scale=max(1, 128 // size),
                    row_labels=["source y", "real x", "G(y, z1)", "G(y, z2)", "G(y, z3)"],
                    title=f"{config_name}, step {step}")


# ------------------------------------------------------------------------------ Algorithm 2

@one_sentence_errors
def main(argv=None):
    args, resumed = parse(argv)
    config, epochs = CONFIGS[args.config], schedule(args)                   # K_fixed, K_decay, warm-up in steps
    device = pick_device(args.device)
    amp = use_amp(args.amp, device)
    seed_everything(args.seed)
    train, test = load_pairs(args.data, args.size, args.pairs)
    batches = InMemoryBatches(train["source"], train["target"], batch_size=args.batch_size, device=device,
                              seed=args.seed, channels_last=args.channels_last)
    models = {name: to_device(net, device, args.channels_last) for name, net in build(**model_args(args)).items()}
    optimizers, schedulers = optimisers(models, learning_rates(args), epochs)      # Table 3.8, §3.2.6.1
    d_image, vgg = distances(config, models["D"], args.vgg_weights, args.faceid_net, device)    # eqs. 3.2–3.4
    shown, fid_set = fixed_inputs(test, args.fid_pairs, args.z_dim, not args.data, device)     # samples/, FID
    run = Run(args, "nir_cgan", models, model_args(args), optimizers, schedulers, resumed=resumed,
              state=dict(batches=batches, augment_rng=torch.Generator().manual_seed(args.seed)),  # Table 3.1 draws
              columns=["loss_D", *loss_terms(config), "loss_G", "fid"], images_per_step=args.batch_size,
              bar_keys=("loss_D", "loss_G"), desc=f"nir_cgan {args.config}", ema=args.ema)
    averages, averaged = moving_averages(run, models, args.ema)           # --ema: of G and L (StarGAN v2)
    if fid_set is not None and run.writes and not run.resumed:
        run.log_eval(0, **fids(models, averaged, fid_set, device, amp))     # FID before any training

    nets = distributed.wrap(models)          # as the steps call them: under torchrun, DistributedDataParallel
    g_side = [name for name in models if name != "D"]                       # G, E, L learn together
    d_params, g_params = list(models["D"].parameters()), [p for name in g_side for p in models[name].parameters()]
    for step in run.steps():
        y, x = next(batches)                                                # source render, real NIR target
        if args.augment:
            y, x = augment_pairs(y, x, run.state["augment_rng"])            # Table 3.1, same warp for both

        # discriminator step (Algorithm 2, first half): a fresh z, G frozen
        z = torch.randn(len(y), args.z_dim, device=device)
        with autocast(device, amp):
            d_terms = compute_d_loss(nets, config, y, x, z)                 # L_D (Table 2.1)
        optimizers["D"].zero_grad(set_to_none=True)
        d_terms["loss_D"].backward(inputs=d_params)
        optimizers["D"].step()

        # generator step (Algorithm 2, second half): a new z, and z2 for L_sd; D frozen (no gradient, no sync)
        z = torch.randn(len(y), args.z_dim, device=device)
        z2 = torch.randn(len(y), args.z_dim, device=device) if config.lambda_sd else None
        with autocast(device, amp), distributed.frozen(nets["D"]):
            g_terms = compute_g_loss(nets, config, y, x, z, z2, d_image, vgg, warmup_factor(step, epochs.warmup))
        for name in g_side:
            optimizers[name].zero_grad(set_to_none=True)
        g_terms["loss_G"].backward(inputs=g_params)                         # L_G (eq. 3.5) into G, E and L
        for name in g_side:
            optimizers[name].step()
        for ema in averages.values():
            ema.update(step)
        for scheduler in schedulers.values():
            scheduler.step()                                                # §3.2.6.1

        run.log(step, **d_terms, **g_terms)
        if fid_set is not None and run.due(step, args.fid_every):
            run.log_eval(step, **fids(models, averaged, fid_set, device, amp))
        if run.due(step, args.sample_every):                                # with --ema: G's (and L's) average
            save_samples(run.dir, step, shown, averaged or models, args.config, args.size, device, amp)
        run.save(step)
    return run.finish(plot_columns=["loss_D", *loss_terms(config)], title=f"nir_cgan {args.config}")


if __name__ == "__main__":
    main()
