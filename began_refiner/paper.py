"""What the rest of the repository needs of began_refiner, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
SHIPPED = ["A", "B", "C", "began"]      # weights/<name>: the refiners of Fig. 2 and the noise BEGAN; eval.py
                                        # evaluates them when given no --run
EVAL_ARGS = []                          # what tools.figures adds to `python began_refiner/eval.py`
FIGURES = ["fig3_refinements.png", "fig4_realism.png", "fig5_similarity.png", "convergence.png"]   # → docs/
LABELS = {"A": "A", "B": "B", "C": "C", "began": "BEGAN (noise)"}      # shipped name → eval's label
DRAWS = {"B": [], "began": ["--generator", "began"]}      # bare commands whose draws tools.draws records
BENCHMARKS = [                                            # benchmarks.speed --train: label, flags
    ("BEGAN refiner B, 32 px, n = 16", ["--train-faces", "500"]),
    ("BEGAN noise baseline, 32 px", ["--generator", "began", "--train-faces", "500"]),
]

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--train-faces", "40", "--width", "8", "--z-dim", "8", "--batch-size", "8", "--fid-faces", "16",
         "--lr-ramp", "0"],             # the ramp follows --steps: the shared tests extend runs with --resume
    eval=["--faces", "16"],             # eval.py flags that keep a tiny run's evaluation fast
    images=40,                          # training images of that run: the largest batch that fits
    data_flag="--data", fid_flag="--fid-faces", resume=[])
# The paper's equations, figures and tables, each with the function that implements it (README, "Equation → code").
EQUATIONS = [
    ("eq. 1: L(v) = |v − D(v)|", "model.py", "autoencoder_loss"),
    ("eq. 2 / 4: L_D = L(x) − k_t·L(G(z))", "model.py", "discriminator_loss"),
    ("eq. 2: k_{t+1} = clip(k_t + λ_k·(γ·L(x) − L(G(z))), 0, 1)", "model.py", "update_k"),
    ("eq. 3: L_RCN = |v_HR − G(v_LR)|", "model.py", "reconstruction_loss"),
    ("eq. 4: L_G = (1 − λ_r)·L(G(z)) + λ_r·L_RCN", "model.py", "generator_loss"),
    ("BEGAN: M = L(x) + |γ·L(x) − L(G(z))|", "model.py", "convergence"),
    ("Fig. 1: the autoencoder discriminator", "model.py", "Discriminator"),
    ("Fig. 1: its decoder, and BEGAN's noise generator G(z)", "model.py", "Decoder"),
    ("Fig. 2: refiners A, B, C (1, 2, 3 downscaled inputs)", "model.py", "Refiner"),
    ("§2.1: the downscaled copies a refiner reads", "model.py", "image_pyramid"),
    ("§3: one training step, both players from one pass of D", "train.py", "compute_losses"),
    ("§3: Adam, the rate's schedule", "train.py", "learning_rate_factor"),
    ("§3: the presets (quick, long, paper)", "train.py", "PRESETS"),
    ("Fig. 3, 4, 5: refinements, realism, similarity", "eval.py", "draw_figures"),
]


def _shipped(name, key):
    from common.manifest import read_manifest
    return read_manifest("began_refiner")[name]["eval"][key]


def _first_step_below(name, fid):
    """The first step at which the shipped run's logged FID (of the network it ships) fell to ``fid``."""
    from common.csvlog import read_log
    from common.manifest import read_manifest, weights_folder
    log = read_log(weights_folder("began_refiner") / name / "log.csv")
    column = "fid_ema" if "average" in next(iter(read_manifest("began_refiner")[name]["stages"].values()))["kept"] \
        else "fid"
    return next((int(s) for s, v in zip(log["step"], log[column]) if v <= fid), None)


def _realism():
    fids = {m: _shipped(m, "fid") for m in "ABC"}
    return (", ".join(f"{m} {v:.1f}" for m, v in fids.items()) + " (FID ↓)",
            min(fids, key=fids.get) == "A" and max(fids, key=fids.get) == "C")


def _similarity():
    ids = {m: _shipped(m, "identity_similarity") for m in "ABC"}
    return ", ".join(f"{m} {v:.2f}" for m, v in ids.items()) + " (identity similarity ↑)", ids["A"] < ids["B"] < ids["C"]


def _speed():
    steps = {m: _first_step_below(m, 65) for m in ("A", "B", "C", "began")}
    said = ", ".join(f"{m} {'step ' + format(s, ',') if s is not None else 'never'}" for m, s in steps.items())
    refiners = [s for m, s in steps.items() if m != "began"]
    noise = steps["began"]
    holds = all(s is not None for s in refiners) and (noise is None or max(refiners) < noise)
    return f"first logged FID ≤ 65: {said}", holds


CLAIMS = [   # the paper's claims (§3–4), each measured on the shipped networks; the verdict is computed
    dict(claim="A is the most realistic, C the least", paper="ranked first by people: A 65 %, B 30 %, C 5 % (Fig. 4)",
         measure=_realism),
    dict(claim="C is the most similar to its input", paper="face-comparison score A 68 %, B 75 %, C 87 % (Fig. 5)",
         measure=_similarity),
    dict(claim="refinement trains faster than a noise BEGAN", paper="stated, not measured", measure=_speed),
]


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json → ``{label: {number: value}}`` for each network it evaluated (the synthetic
    inputs left out): the manifests' ``eval`` numbers and the draws' end numbers."""
    keys = {"fid": "fid_synthetic-v1", "diversity": "diversity", "face_detection_rate": "face_detection_rate",
            "identity_similarity": "identity_similarity"}     # the noise BEGAN has no input to resemble
    return {label: {key: row[source] for key, source in keys.items() if row.get(source) is not None}
            for label, row in metrics.items() if label != "synthetic input"}


def gallery_panel(n: int):
    """``(rows of images, shipped name, caption)`` for docs/gallery.png: B's refinements of unseen renders."""
    from began_refiner.data import synthetic_inputs
    from began_refiner.model import build, image_pyramid
    from common.checkpoints import load_networks
    from common.manifest import weights_folder
    nets, checkpoint = load_networks(weights_folder("began_refiner") / "B", "began_refiner", build, ["G"])
    args = checkpoint["model_args"]
    x = synthetic_inputs(args["size"], n)
    return ([x, nets["G"](image_pyramid(x, nets["G"].inputs, args["lowest"]))], "B",
            "began_refiner, model B: synthetic renders (top) refined into photo-like faces (bottom)")
