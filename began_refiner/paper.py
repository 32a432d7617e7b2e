"""What the rest of the repository needs of began_refiner, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
TITLE = "An Image-based Generator Architecture for Synthetic Image Refinement"

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
    run=["--train-faces", "40", "--width", "8", "--z-dim", "8", "--batch-size", "8", "--fid-faces", "16"],
    eval=["--faces", "16"],             # eval.py flags that keep a tiny run's evaluation fast
    images=40,                          # training images of that run: the largest batch that fits
    data_flag="--data", fid_flag="--fid-faces", resume=[])


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
