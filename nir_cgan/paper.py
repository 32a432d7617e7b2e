"""What the rest of the repository needs of nir_cgan, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
TITLE = "Multimodal Image-to-Image Translation for Driver Monitoring System Development"

SHIPPED = ["quick"]                     # weights/quick: the quick configuration's networks
EVAL_ARGS = ["--all"]                   # tools.figures: the sweeps and the latent arithmetic too
FIGURES = ["fig4_2_samples.png", "fig4_12_head_yaw.png", "fig4_14_gaze_yaw.png", "fig4_18_arithmetic.png"]
LABELS = {"quick": "quick"}             # shipped name → the label of numbers()
DRAWS = {"quick": []}                   # bare commands whose draws tools.draws records
BENCHMARKS = [("ED-LS-LR-2, 32 px", ["--pairs", "400", "--fid-pairs", "8"])]     # benchmarks.speed --train

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--config", "ED-LS", "--pairs", "40", "--batch-size", "4", "--z-dim", "8", "--g-base", "4", "--g-max", "16",
         "--d-base", "8", "--fid-pairs", "8"],
    eval=["--distance", "synthetic", "--sources", "2", "--device", "cpu"],   # fast, and no LPIPS download
    images=36,                          # training pairs of that run (10 % of 40 held out): the largest batch
    data_flag="--data", fid_flag="--fid-pairs", resume=[])


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json (one run) → ``{"quick": {number: value}}``."""
    return {"quick": {"fid": metrics["fid"], "diversity": metrics["diversity"]}}


def gallery_panel(n: int):
    """``(rows of images, shipped name, caption)`` for docs/gallery.png: renders and their NIR faces."""
    import torch

    from common.checkpoints import load_networks
    from common.data import to_float
    from common.manifest import weights_folder
    from nir_cgan.data import load_pairs
    from nir_cgan.model import build
    nets, checkpoint = load_networks(weights_folder("nir_cgan") / "quick", "nir_cgan", build)
    config = checkpoint["config"]
    _, test = load_pairs(None, config["size"], config["pairs"])
    source = to_float(test["source"][:n])
    z = torch.randn(n, config["z_dim"], generator=torch.Generator().manual_seed(0))
    s = nets["L"](z) if "L" in nets else z
    return ([source, nets["G"](source, s).expand(-1, 3, -1, -1)], "quick",
            "nir_cgan: colour-coded renders (top) turned into near-infrared faces (bottom)")
