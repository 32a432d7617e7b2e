"""What the rest of the repository needs of style_anime, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
SHIPPED = ["dcgan"]                     # weights/dcgan: the anime DCGAN's G and its fixed noise
EVAL_ARGS = []                          # what tools.figures adds to `python style_anime/eval.py`
FIGURES = ["fig4_2_5_samples.png", "fig4_2_4_losses.png"]                 # eval's figures/ → docs/style_anime/
LABELS = {"dcgan": "dcgan"}             # shipped name → the label of numbers()
DRAWS = {"dcgan": []}                   # bare commands whose draws tools.draws records
BENCHMARKS = [("anime DCGAN 32 px", ["--train-faces", "500"])]            # benchmarks.speed --train

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--train-faces", "48", "--width", "8", "--size", "16", "--batch-size", "8", "--fid-faces", "16"],
    eval=[],                            # eval.py flags that keep a tiny run's evaluation fast
    images=48,                          # training images of that run: the largest batch that fits
    data_flag="--data", fid_flag="--fid-faces", resume=[])
# The paper's equations, algorithm and figures, each with the function that implements it (README, "Equation → code").
EQUATIONS = [
    ("§IV.A: the image x itself is optimised (Gatys et al.), from the content image", "stylize.py", "stylize"),
    ("§IV.A: VGG-19's intermediate layers, the features every loss is computed on", "loss_networks.py",
     "VGG19Features"),
    ("§IV.A: VGG-19 \"pretrained\" on ImageNet; content conv4_2, style conv1_1 … conv5_1", "loss_networks.py",
     "imagenet_vgg19"),
    ("offline loss network, not the paper's: He et al.'s rescaled random VGG-19", "loss_networks.py", "random_vgg19"),
    ("§IV.B–C: P^l, the content image's features, and A^l, the style image's Gram matrices", "stylize.py",
     "targets"),
    ("eq. 2: L_content = Σ_ij (F^l_ij(x) − P^l_ij(p))²", "stylize.py", "content_loss"),
    ("§IV.C: G^l_ij = Σ_k F^l_ik·F^l_jk, the Gram matrix", "stylize.py", "gram_matrix"),
    ("eq. 3: E_l = 1/(4·N_l²·M_l²) · Σ_ij (G^l_ij − A^l_ij)²", "stylize.py", "layer_style_loss"),
    ("eqs. 4–5: L_style = Σ_l w_l·E_l, w_l = 1/|L|", "stylize.py", "style_loss"),
    ("§IV.A \"both distances minimised\" (Gatys et al. eq. 7): α·L_content + β·L_style", "stylize.py",
     "total_loss"),
    ("α and β: the default β of each loss network (the paper gives neither)", "stylize.py", "STYLE_WEIGHT"),
    ("Fig. 4.1.1: content | style | output, with the losses", "stylize.py", "save_figure"),
    ("not in the paper: colour, texture and edge measures of a transfer, without the loss network", "measures.py",
     "style_measures"),
    ("eq. 1, the discriminator's side: max log D(z) + log(1 − D(G(q)))", "model.py", "discriminator_loss"),
    ("eq. 1, the generator's side: min −log D(G(q)) (non-saturating)", "model.py", "generator_loss"),
    ("eq. 1 as binary cross-entropy against labels y", "model.py", "label_loss"),
    ("§IV.E step 3: noise added to the labels", "model.py", "noisy_labels"),
    ("§IV.F, Fig. 4.2.2: the generator (transposed convolutions, batch norm, LeakyReLU)", "model.py", "Generator"),
    ("§IV.F: the LeakyReLU's negative slope, 0.01", "model.py", "SLOPE"),
    ("§IV.G, Fig. 4.2.3: the discriminator (strided convolutions, batch norm)", "model.py", "Discriminator"),
    ("DCGAN's N(0, 0.02) initialisation (Radford et al. §4; not in the paper)", "model.py", "init_weights"),
    ("§IV.E: the anime faces, and the held-out faces FID compares with", "data.py", "load_faces"),
    ("§IV.E steps 1–7, §IV.H: one step of D, then of the combined G → D with D frozen", "train.py", "main"),
    ("the hyperparameters the paper does not give (DCGAN's)", "train.py", "PRESETS"),
    ("Fig. 4.2.4 losses and Fig. 4.2.5 generated faces", "eval.py", "main"),
]


def _log():
    """The shipped run's log.csv as ``{column: [float, ...]}`` (empty cells: NaN)."""
    from common.csvlog import read_log
    from common.manifest import weights_folder
    return read_log(weights_folder("style_anime") / "dcgan" / "log.csv")


def _logged(column):
    """``[(step, value)]`` of one log.csv column, the rows where it was logged."""
    import math
    log = _log()
    return [(int(s), v) for s, v in zip(log["step"], log[column]) if not math.isnan(v)]


def _losses_fall():
    """Mean loss_D and loss_G over the first and the last tenth of the shipped run's steps."""
    from statistics import mean
    said, falls = [], []
    for column in ("loss_D", "loss_G"):
        rows = _logged(column)
        last = rows[-1][0]
        first_mean = mean(v for s, v in rows if s <= last / 10)
        last_mean = mean(v for s, v in rows if s > last * 9 / 10)
        said.append(f"{column} {first_mean:.2f} → {last_mean:.2f}")
        falls.append(last_mean < first_mean)
    return ", ".join(said) + " (mean of the first and the last tenth of the steps, log.csv)", all(falls)


def _stable():
    """No collapse: FID falls from step 0 and every evaluation of the second half keeps diversity ≥ 0.5."""
    fids, diversity = _logged("fid"), _logged("diversity")
    last = fids[-1][0]
    late = [v for s, v in diversity if s >= last / 2]
    return (f"FID {fids[0][1]:.1f} at step 0 → {fids[-1][1]:.1f} at step {last:,}; diversity {min(late):.2f}–"
            f"{max(late):.2f} at every evaluation of the second half (log.csv; 1 = as varied as real faces)",
            fids[-1][1] < fids[0][1] and min(late) >= 0.5)


def _resolution():
    """The side of the shipped generator's faces against the paper's 64×64 data."""
    import json

    from common.manifest import read_manifest, weights_folder
    config = json.loads((weights_folder("style_anime") / "dcgan" / "config.json").read_text())
    size, fid = config["size"], read_manifest("style_anime")["dcgan"]["eval"]["fid"]
    return f"{size}×{size} faces (the {config['preset']} preset), FID {fid:.1f} in eval", size >= 64


CLAIMS = [   # the paper's claims (§IV.I, the abstract), each measured on the shipped network; the verdict is computed
    dict(claim="both losses decrease as training goes on",
         paper="stated (§IV.I), no number; the plot, Fig. 4.2.4, is missing from the text", measure=_losses_fall),
    dict(claim="the DCGAN is stable: it does not collapse to a few faces",
         paper="stated (abstract), no number; §III names collapse as the risk", measure=_stable),
    dict(claim="anime faces are generated in high resolution, at least the data's 64×64",
         paper="stated (abstract), no number; its data are 64×64, and §V asks for a higher final resolution",
         measure=_resolution),
]


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json (one run) → ``{"dcgan": {number: value}}``."""
    return {"dcgan": {"fid": metrics["fid"], "diversity": metrics["diversity"]}}


def gallery_panel(n: int):
    """``(rows of images, shipped name, caption)`` for docs/gallery.png: the anime DCGAN's samples."""
    from common.checkpoints import load_networks
    from common.manifest import weights_folder
    from style_anime.model import build
    nets, checkpoint = load_networks(weights_folder("style_anime") / "dcgan", "style_anime", build, ["G"])
    q = checkpoint["extra"]["fixed_q"][:2 * n]
    samples = nets["G"](q)
    return [samples[:n], samples[n:]], "dcgan", "style_anime: the anime DCGAN's samples"
