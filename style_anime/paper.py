"""What the rest of the repository needs of style_anime, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
TITLE = "Enhanced Unsupervised Image Generation using GAN based Convolutional Nets"

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
