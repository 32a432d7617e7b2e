"""What the rest of the repository needs of dcgan_celeba, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
TITLE = "Implementation of Realistic Face Generation using GAN"

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
