"""Evaluate a trained run: realism, diversity and the framework analysis of §3.3 and §3.5.3.

    python nir_cgan/eval.py                                           # the shipped networks, no training needed
    python nir_cgan/eval.py --all                                     # the same, + every analysis figure below
    python nir_cgan/eval.py --run runs/nir_cgan/quick                 # FID, LPIPS, attribute errors, samples
    python nir_cgan/eval.py --run runs/nir_cgan/quick --all           # + every analysis figure below

Without ``--run`` it evaluates the networks shipped in ``nir_cgan/weights/quick/`` (the quick
configuration; how they were trained: ``nir_cgan/weights/manifest.json``) into ``runs/nir_cgan/shipped``;
nothing is ever written into weights/.

The run is rebuilt from its ``checkpoint.pt`` alone (``model_args`` → ``model.build``, loaded
safely by ``common.checkpoints.load_run``); its test pairs are the same 10 % that train.py held out
(``data.load_pairs``).

Always (``metrics.json``, ``figures/``):
- realism (§3.3.1.1): FID between the real test targets and one output per test source;
- diversity (§3.3.1.2, eq. 3.8): mean pairwise LPIPS of M = 10 outputs per source over N sources
  (StarGAN v2's M; the thesis gives neither); the distance is named in the output;
- attribute preservation in degrees on the test set: the NIR reader's pose/gaze estimate on
  each output against the source's true pose/gaze (and the reader's own error on the real targets);
- ``fig4_2_samples.png``: random samples for one fixed source.
With ``--all``:
- Figs. 4.12–4.14: sweeps of head yaw, head pitch and gaze yaw, outputs from random z and from
  ẑ = E(x), with the reader's slope (1 = follows the source, 0 = ignores it);
- Figs. 4.16–4.18: interpolation between two z and between ẑ of two real images; arithmetic
  z_feat = z2 − z1 for beard and hair, chosen by the reader, with how often it switches the attribute on;
- Fig. 4.10: unseen real image → E → G under other source poses, with identity similarity;
- appendix: 80 random samples for the fixed source.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere: find common/

import torch

from common.checkpoints import load_networks, runs_to_evaluate
from common.cli import one_sentence_errors, positive_int
from common.data import to_float, to_uint8
from common.device import pick_device
from common.faces import POSE_GAZE, render, repeat_face, sample_params
from common.features import FeatureDistance, InceptionFeatures, LpipsDistance, WeightsUnavailable
from common.folders import eval_folder
from common.metrics import diversity, fid
from common.plots import save_image_grid, save_image_rows
from common.synthetic import SOURCE_IDENTITY, mask_nir_pairs
from common.synthnet import SyntheticFeatures, load_synthnet, predict
from nir_cgan.data import PAIRS_SEED, SPLIT_SEED, TEST_FRACTION, load_pairs, split_train_test
from nir_cgan.model import build
from nir_cgan.paper import SHIPPED
from nir_cgan.train_reader import READER_WEIGHTS

PAPER = "nir_cgan"
SWEEPS = {"head_yaw": ("yaw", (-30, 30)), "head_pitch": ("pitch", (-20, 20)), "gaze_yaw": ("gaze_yaw", (-25, 25))}
SWEEP_FIGURES = {"head_yaw": "fig4_12_head_yaw", "head_pitch": "fig4_13_head_pitch", "gaze_yaw": "fig4_14_gaze_yaw"}
ANALYSIS_SEED = 77          # the fixed source face (pose/gaze 0) and every random z of the analysis
ATTRIBUTES = {"beard": lambda p: p["attributes"][:, 0],            # reader's probability of each attribute
              "hair": lambda p: 1 - p["hair_style"].softmax(1)[:, 0]}  # 1 − P(bald)


def trained_run(run, device):
    """(networks in eval mode on ``device``, the run's configuration name / size / z_dim, its test split,
    its step), through ``common.checkpoints.load_networks`` (safe; a missing, damaged or other-paper folder is
    one sentence)."""
    models, checkpoint = load_networks(run, PAPER, build, device=device)
    config, model_args = checkpoint["config"], checkpoint["model_args"]
    info = argparse.Namespace(config=config["config"], size=model_args["size"], z_dim=model_args["z_dim"])
    _, test = load_pairs(config["data"], model_args["size"], config["pairs"])       # the run's 10 % test pairs
    return models, info, test, checkpoint["step"]


class Generator:
    """G(y, z) in eval mode without gradients, z through L when the run has one; E(x) when it has one."""

    def __init__(self, models, device, batch=64):
        self.G, self.E, self.L, self.device, self.batch = models["G"], models.get("E"), models.get("L"), device, batch

    @torch.no_grad()
    def __call__(self, source, z):
        out = []
        for i in range(0, len(source), self.batch):
            y = source[i:i + self.batch].to(self.device)
            y = to_float(y) if y.dtype == torch.uint8 else y
            s = z[i:i + self.batch].to(self.device)
            out.append(self.G(y, self.L(s) if self.L is not None else s).clamp(-1, 1).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def encode(self, x):
        """ẑ = E(x) (in the style space when the run has L: then G gets it directly, without L)."""
        return self.E(to_float(x).to(self.device)).cpu()

    @torch.no_grad()
    def from_style(self, source, s):
        return self.G(to_float(source).to(self.device), s.to(self.device)).clamp(-1, 1).cpu()


def latents(n, dim, seed=ANALYSIS_SEED):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def first_test_sources(config, size, n):
    """The first ``n`` test sources of a run (uint8), as ``load_pairs`` splits them: for the built-in pairs
    only those faces are rendered (each face is its own random stream), so this takes milliseconds."""
    if config["data"]:
        return load_pairs(config["data"], size, config["pairs"])[1]["source"][:n]
    _, test = split_train_test(config["pairs"], TEST_FRACTION, seed=SPLIT_SEED)
    return torch.cat([mask_nir_pairs(1, size, seed=PAIRS_SEED, start=int(i))[0] for i in test[:n]])


@torch.no_grad()
def golden_output(folder) -> torch.Tensor:
    """The networks of a run or shipped folder on fixed inputs: G(y, z) (z through L when there is one)
    for the first 4 test sources and 4 fixed z (seed 0), and E of those outputs when there is an E; CPU,
    float32, eval mode, no autocast, flattened into one tensor. ``tools.ship.fingerprint`` records its
    sums; the golden test compares them."""
    models, checkpoint = load_networks(folder, PAPER, build)
    gen = Generator({name: net.float() for name, net in models.items()}, torch.device("cpu"))
    model_args = checkpoint["model_args"]
    sources = first_test_sources(checkpoint["config"], model_args["size"], 4)
    fakes = gen(sources, latents(4, model_args["z_dim"], seed=0))
    out = [fakes.flatten()]
    if gen.E is not None:
        out.append(gen.E(fakes).flatten())
    return torch.cat(out)


def sweep_sources(param, values, size, seed=ANALYSIS_SEED):
    """Source renders of one face where only ``param`` takes ``values`` (pose and gaze 0 otherwise).

    Returns (mask uint8 (n, 3, size, size), the target parameters, identity of face 0 of ``seed``).
    """
    n = len(values)
    base = sample_params(1, seed, glasses=0)                      # no glasses: they come from the source
    still = {k: torch.zeros(n) for k in POSE_GAZE}
    params = repeat_face(base, 0, n, **{**still, param: torch.as_tensor(values, dtype=torch.float32)})
    source = dict(params, **{k: torch.full((n,), v) for k, v in SOURCE_IDENTITY.items()})
    return to_uint8(render(source, "mask", size)), params


def attribute_errors(images, params, reader):
    """Mean |reader estimate − truth| in degrees for each of POSE_GAZE."""
    predicted = predict(images, reader)["pose_gaze"]
    true = torch.stack([params[k] for k in POSE_GAZE], 1)
    return dict(zip(POSE_GAZE, [round(v, 2) for v in (predicted - true).abs().mean(0).tolist()]))


def slope(x, y):
    """Least-squares slope of y on x: 1 when an output follows the swept angle, 0 when it ignores it."""
    x, y = x - x.mean(), y - y.mean()
    return round(float((x * y).sum() / (x * x).sum()), 3)


def realism_and_diversity(gen, test, args, fid_extractor, distance, n_sources):
    """§3.3.1: FID of one output per test source; eq. 3.8 over n_sources × 10 outputs; test-set attribute errors."""
    z = latents(len(test["source"]), args.z_dim, seed=1)
    outputs = gen(test["source"], z)
    m = 10
    sources = test["source"][:n_sources].repeat_interleave(m, 0)
    many = gen(sources, latents(len(sources), args.z_dim, seed=2)).view(n_sources, m, *outputs.shape[1:])
    if len(outputs) < 2:
        print(f"FID not measured: the run has {len(outputs)} test pair (FID compares two sets of at least 2 "
              f"faces); train with more --pairs (10 % are held out for the test).")
    return outputs, {"fid": fid(outputs, test["target"], fid_extractor) if len(outputs) >= 2 else None,
                     "fid_features": fid_extractor.name,
                     "diversity": diversity(many, distance), "diversity_distance": distance.name,
                     "diversity_sources": n_sources, "diversity_outputs_per_source": m}


def output_variance(gen, sources, z_dim, n_z=8):
    """How much G's output depends on the source and on z: per-pixel variance over ``n_z`` latents
    (same source), averaged, and over the sources (same z), averaged. A G that ignores its source
    (grey blobs that change only with z) has a small ``over_sources``."""
    n = len(sources)
    z = latents(n_z, z_dim, seed=3)
    out = gen(sources.repeat_interleave(n_z, 0), z.repeat(n, 1)).view(n, n_z, -1)
    over_sources = round(float(out.var(0).mean()), 5) if n > 1 else None        # one source: no variance over sources
    return {"over_z": round(float(out.var(1).mean()), 5), "over_sources": over_sources}


def sweep_figures(gen, test, args, reader, figures):
    """Figs. 4.12–4.14: each sweep with 3 random z and (when E exists) ẑ of 2 real test images."""
    results = {}
    for name, (param, (low, high)) in SWEEPS.items():
        values = torch.linspace(low, high, 9)
        source, params = sweep_sources(param, values, args.size)
        rows, labels, followed = [to_float(source)], ["source"], []
        for k, z in enumerate(latents(3, args.z_dim)):
            out = gen(source, z.expand(len(values), -1))
            rows.append(out)
            labels.append(f"random z{k + 1}")
            followed.append(predict(out, reader)["pose_gaze"][:, POSE_GAZE.index(param)])
        if gen.E is not None:
            for k, x in enumerate(test["target"][:2]):
                rows.append(gen.from_style(source, gen.encode(x[None]).expand(len(values), -1)))
                labels.append(f"ẑ = E(real {k + 1})")
        slopes = [slope(values, f) for f in followed]
        results[name] = {"values": values.tolist(), "slope_random_z": slopes,
                         "mae_degrees": round(float(torch.stack([(f - values).abs().mean() for f in followed]).mean()), 2)}
        save_image_rows(rows, figures / f"{SWEEP_FIGURES[name]}.png", row_labels=labels,
                        col_labels=[f"{v:.0f}°" for v in values], scale=max(1, 96 // args.size),
                        title=f"{param} sweep ({args.config}); reader slope {sum(slopes) / 3:.2f} (1 = follows)")
    return results


def latent_space_figures(gen, test, args, reader, figures):
    """Figs. 4.16–4.18: interpolations and attribute arithmetic for one frontal source."""
    source, _ = sweep_sources("yaw", [0.0], args.size)
    t = torch.linspace(0, 1, 8)[:, None]
    z = latents(2, args.z_dim)
    rows, labels = [gen(source.expand(8, -1, -1, -1), (1 - t) * z[0] + t * z[1])], ["z1 → z2"]
    if gen.E is not None:
        s = gen.encode(test["target"][:2])
        rows.append(gen.from_style(source.expand(8, -1, -1, -1), (1 - t) * s[0] + t * s[1]))
        labels.append("E(real 1) → E(real 2)")
        rows.append(to_float(test["target"][:2]))
        labels.append("real 1, real 2")
    save_image_rows(rows, figures / "fig4_16_17_interpolation.png", row_labels=labels,
                    scale=max(1, 96 // args.size), title=f"latent interpolation ({args.config})")

    # arithmetic: among 64 random z pick z1 (attribute least likely) and z2 (most likely), add z2 − z1 to others
    k = 64
    zs = latents(k, args.z_dim, seed=ANALYSIS_SEED + 1)
    out = gen(source.expand(k, -1, -1, -1), zs)
    p = predict(out, reader)
    results, rows, labels = {}, [], []
    for name, prob in ATTRIBUTES.items():
        score = prob(p)
        z1, z2 = zs[score.argmin()], zs[score.argmax()]
        lacking = (score < 0.5).nonzero().flatten()
        lacking = lacking[(lacking != score.argmin()) & (lacking != score.argmax())][:16]
        if len(lacking) == 0:
            results[name] = {"note": "every sample already has it"}
            continue
        after = gen(source.expand(len(lacking), -1, -1, -1), zs[lacking] + (z2 - z1))
        q = predict(after, reader)
        yaw_shift = (q["pose_gaze"][:, 0] - p["pose_gaze"][lacking, 0]).abs().mean()
        results[name] = {"switched_on": round(float((prob(q) > 0.5).float().mean()), 3), "tried": len(lacking),
                         "p_z1": round(float(score.min()), 3), "p_z2": round(float(score.max()), 3),
                         "yaw_change_degrees": round(float(yaw_shift), 2)}
        rows += [torch.cat([out[score.argmin()][None], out[score.argmax()][None], out[lacking[:6]]]),
                 torch.cat([torch.zeros_like(out[:2]), after[:6]])]
        labels += [f"{name}: z1, z2, before", "after + z_feat"]
    if rows:
        save_image_rows(rows, figures / "fig4_18_arithmetic.png", row_labels=labels, scale=max(1, 96 // args.size),
                        title=f"z_feat = z2 − z1 added to faces without the attribute ({args.config})")
    return results


def identity_figure(gen, test, args, reader, figures):
    """Fig. 4.10: real test images → ẑ = E(x) → G under five other head yaws; identity similarity."""
    source, _ = sweep_sources("yaw", torch.linspace(-25, 25, 5), args.size)
    reals = test["target"][:4]
    rows, labels, sims, base = [to_float(source)], ["source"], [], []
    for k, x in enumerate(reals):
        rec = gen.from_style(source, gen.encode(x[None]).expand(5, -1))
        rand = gen(source, latents(5, args.z_dim, seed=ANALYSIS_SEED + 2 + k))
        rows += [torch.cat([to_float(x[None]), rec])]
        labels.append(f"real {k + 1} → E → G")
        identity = predict(torch.cat([to_float(x[None]), rec, rand]), reader)["identity"] - 0.5
        sims.append(torch.cosine_similarity(identity[:1], identity[1:6]).mean())
        base.append(torch.cosine_similarity(identity[:1], identity[6:]).mean())
    rows[0] = torch.cat([-torch.ones_like(rows[0][:1]), rows[0]])
    save_image_rows(rows, figures / "fig4_10_identity.png", row_labels=labels, scale=max(1, 96 // args.size),
                    title=f"identity reconstruction ({args.config})")
    return {"identity_similarity_reconstructed": round(float(torch.stack(sims).mean()), 3),
            "identity_similarity_random_z": round(float(torch.stack(base).mean()), 3)}


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, nargs="+",
                    help="run folder(s) with checkpoint.pt (default: the shipped networks, nir_cgan/weights/quick)")
    ap.add_argument("--out", help="where metrics.json and figures/ go (default: each run folder, or "
                                  "runs/nir_cgan/shipped for the shipped networks; with several runs, "
                                  "OUT/<run folder name>/); nothing is written into the runs then")
    ap.add_argument("--all", action="store_true", help="also the sweeps, latent-space and identity figures")
    ap.add_argument("--fid-features", choices=["synthetic", "inception"], default="synthetic",
                    help="FID features: the shipped synthetic-face network (offline) or Inception (download)")
    ap.add_argument("--distance", choices=["lpips", "synthetic"], default="lpips",
                    help="diversity distance: LPIPS-alex (download), falling back to the offline one")
    ap.add_argument("--sources", type=positive_int, default=20, help="N sources for the diversity (eq. 3.8)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    folders, shipped_out = runs_to_evaluate(args.run, PAPER, SHIPPED)
    runs = {run: trained_run(run, device) for run in folders}       # every run checked before anything is written
    several = len(runs) > 1                                          # then OUT/<run folder name>/
    outs = {run: eval_folder(args.out and (Path(args.out) / run.name if several else args.out),
                             (shipped_out / run.name if several else shipped_out) if shipped_out else run)
            for run in runs}

    extractor = SyntheticFeatures(device) if args.fid_features == "synthetic" else InceptionFeatures(device)
    distance = FeatureDistance(SyntheticFeatures(device))
    if args.distance == "lpips":
        try:
            distance = LpipsDistance("alex", device)
        except WeightsUnavailable as err:
            print(f"LPIPS unavailable, diversity uses the offline synthetic-feature distance instead ({err})")
    reader = load_synthnet(READER_WEIGHTS, device)
    for run, (models, info, test, step) in runs.items():
        gen, figures = Generator(models, device), outs[run] / "figures"
        figures.mkdir(exist_ok=True)
        outputs, metrics = realism_and_diversity(gen, test, info, extractor, distance,
                                                 min(args.sources, len(test["source"])))
        metrics.update(config=info.config, step=step, test_pairs=len(test["source"]),
                       output_variance=output_variance(gen, test["source"][:args.sources], info.z_dim))
        if "params" in test:
            metrics["attribute_error_degrees"] = attribute_errors(outputs, test["params"], reader)
            metrics["reader_error_on_real_degrees"] = attribute_errors(test["target"], test["params"], reader)
        fixed = test["source"][:1].expand(8, -1, -1, -1)
        save_image_rows([to_float(test["source"][:1]), gen(fixed, latents(8, info.z_dim))],
                        figures / "fig4_2_samples.png", row_labels=["source", "G(y, z)"],
                        scale=max(1, 96 // info.size), title=f"random samples, {info.config}")
        if args.all:
            metrics["sweeps"] = sweep_figures(gen, test, info, reader, figures)
            metrics["arithmetic"] = latent_space_figures(gen, test, info, reader, figures)
            if gen.E is not None:
                metrics["identity"] = identity_figure(gen, test, info, reader, figures)
            source, _ = sweep_sources("yaw", [0.0], info.size)
            save_image_grid(gen(source.expand(80, -1, -1, -1), latents(80, info.z_dim, seed=80)),
                            figures / "appendix_80_samples.png", nrow=10, title=f"80 samples, {info.config}")
        (outs[run] / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"{run}: FID {metrics['fid'] if metrics['fid'] is None else round(metrics['fid'], 1)} "
              f"({metrics['fid_features']}), "
              f"diversity {metrics['diversity']:.4f} ({metrics['diversity_distance']}); figures in {figures}")
    return metrics


if __name__ == "__main__":
    main()
