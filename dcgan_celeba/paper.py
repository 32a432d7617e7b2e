"""What the rest of the repository needs of dcgan_celeba, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
SHIPPED = ["dcgan", "wgan", "began"]    # weights/<name>: the three models of §4; eval.py evaluates them without --run
EVAL_ARGS = []                          # what tools.figures adds to `python dcgan_celeba/eval.py`
FIGURES = ["fig5b_comparison.png", "table1_detection.png", "fig4_4_losses.png", "fid_curves.png",
           "sketch_to_face.png"]                                          # eval's figures/ → docs/dcgan_celeba/
LABELS = {"dcgan": "DCGAN", "wgan": "WGAN", "began": "began"}           # shipped name → eval's label
DRAWS = {"began": []}                   # bare commands whose draws tools.draws records
BENCHMARKS = [                          # benchmarks.speed --train: label, flags
    ("began (BEGAN-style), 32 px, n = 32", ["--model", "began", "--train-faces", "500"]),
    ("DCGAN 32 px, width 32", ["--model", "dcgan", "--train-faces", "500"]),
    ("DCGAN 64 px, width 64, batch 64", ["--model", "dcgan", "--size", "64", "--width", "64", "--batch-size", "64",
                                         "--train-faces", "500"]),
]

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--size", "16", "--width", "8", "--z-dim", "8", "--h", "8", "--batch-size", "8", "--train-faces", "32",
         "--fid-faces", "16"],
    eval=["--faces", "16", "--sketches", "0"],      # eval.py flags that keep a tiny run's evaluation fast
    images=32,                          # training images of that run: the largest batch that fits
    data_flag="--data", fid_flag="--fid-faces", resume=[])
# The paper's equations, figures and tables, each with the function that implements it (README, "Equation → code").
EQUATIONS = [
    ("§3.1 Fig. 1: the autoencoder discriminator (two convolutions a layer, stride-2 subsampling)", "model.py",
     "AutoencoderDiscriminator"),
    ("§3.1 Fig. 1–2: its decoder; G has the same architecture with its own weights, ReLU and tanh", "model.py",
     "Decoder"),
    ("BEGAN reference: Xavier-uniform weights, zero biases", "model.py", "xavier_init"),
    ("§3.3: L(v) = |v − D(v)|", "model.py", "autoencoder_loss"),
    ("§3.3 (BEGAN): L_D = L(x) − k_t·L(G(z))", "model.py", "began_discriminator_loss"),
    ("§3.3 (BEGAN): k_{t+1} = clip(k_t + λ_k·(γ·L(x) − L(G(z))), 0, 1)", "model.py", "update_k"),
    ("BEGAN §3.4.1, Fig. 4.4(c): M = L(x) + |γ·L(x) − L(G(z))|", "model.py", "convergence"),
    ("§3.3: one step of the BEGAN-style model: L_D, L_G = L(G(z)), k_t", "train.py", "began_step"),
    ("DCGAN baseline (Radford et al.): the generator", "model.py", "DCGANGenerator"),
    ("DCGAN baseline: the discriminator (WGAN's critic without the sigmoid)", "model.py", "DCGANDiscriminator"),
    ("DCGAN: N(0, 0.02) initialisation", "model.py", "dcgan_init"),
    ("DCGAN: −log D(x) − log(1 − D(G(z)))", "model.py", "dcgan_discriminator_loss"),
    ("DCGAN: the non-saturating −log D(G(z))", "model.py", "dcgan_generator_loss"),
    ("DCGAN: one step", "train.py", "dcgan_step"),
    ("WGAN (Arjovsky et al. Algorithm 1): the critic's −(E[f(x)] − E[f(G(z))])", "model.py", "wgan_critic_loss"),
    ("WGAN: the generator's −E[f(G(z))]", "model.py", "wgan_generator_loss"),
    ("WGAN: weight clipping to [−c, c]", "model.py", "clip_weights"),
    ("WGAN Algorithm 1: n_critic critic steps, then one generator step", "train.py", "wgan_step"),
    ("§4.2: Adam lr 1e-4 ×0.9 every 2,000 iterations; the baselines' own optimisers", "train.py",
     "make_optimizers"),
    ("§4.2 and the baselines' papers: the presets", "train.py", "PRESETS"),
    ("Table 1: faces the detector cannot find, of 1,000", "eval.py", "table1"),
    ("Fig. 4.4: the losses", "eval.py", "loss_figure"),
    ("abstract, §4: sketch → photo (no method given: a search of G's latent space)", "sketch.py", "fit_latent"),
    ("§4.1: one folder per identity", "prepare.py", "arrange"),
]


def _shipped(key):
    from common.manifest import read_manifest
    return {name: entry["eval"][key] for name, entry in read_manifest("dcgan_celeba").items()}


def _table1():
    missed = _shipped("faces_not_detected_of_1000")
    return (", ".join(f"{LABELS[m]} {v}" for m, v in missed.items()) + " of 1,000 not detected",
            missed["began"] < missed["wgan"] < missed["dcgan"])


def _quality():
    fid = _shipped("fid")
    return ", ".join(f"{LABELS[m]} {v:.1f}" for m, v in fid.items()) + " (FID ↓)", min(fid, key=fid.get) == "began"


def _m_falls():
    import math
    from statistics import mean

    from common.csvlog import read_log
    from common.manifest import weights_folder
    log = read_log(weights_folder("dcgan_celeba") / "began" / "log.csv")
    m = [v for v in log["M"] if not math.isnan(v)]      # the logged rows only
    first, last = mean(m[:5]), mean(m[-5:])
    return f"M {first:.3f} → {last:.3f} (mean of the first and last five logged values, log.csv)", last < first / 2


CLAIMS = [   # the paper's claims (§4.3–4.5), each measured on the shipped networks; the verdict is computed
    dict(claim="our model's faces are found most often by dlib, then WGAN's, then DCGAN's",
         paper="not detected: DCGAN 281, WGAN 123, ours 19 of 1,000 (Table 1)", measure=_table1),
    dict(claim="our model generates better faces than DCGAN and WGAN", paper="shown, not measured (Fig. 5(b))",
         measure=_quality),
    dict(claim="our model's loss converges", paper="plotted, no number (Fig. 4.4(c))", measure=_m_falls),
]


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json → ``{label: {number: value}}`` for each model of Table 1 (not the real faces)."""
    fid = f"FID ({metrics['fid_features']})"
    return {row["model"]: {"fid": row[fid], "diversity": row["diversity"],
                           "faces_not_detected_of_1000": row["can't detect face"]}
            for row in metrics["table1"] if "step" in row}


def gallery_panel(n: int):
    """``(rows of images, shipped name, caption)`` for docs/gallery.png: samples of began, "our model"."""
    import torch

    from common.checkpoints import load_networks
    from common.manifest import weights_folder
    from dcgan_celeba.data import noise
    from dcgan_celeba.model import build
    nets, checkpoint = load_networks(weights_folder("dcgan_celeba") / "began", "dcgan_celeba", build, ["G"])
    z = noise(2 * n, checkpoint["model_args"]["z_dim"], "cpu", torch.Generator().manual_seed(0))
    samples = nets["G"](z)
    return [samples[:n], samples[n:]], "began", "dcgan_celeba, began, \"our model\" (BEGAN-style): faces from noise"
