"""What the rest of the repository needs of sr_degradation, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
TITLE = "Images Synthesis and Image Degradations Using GANs"

SHIPPED = ["pipeline"]                  # weights/pipeline: h2l/, l2h/, finetune/, bicubic/ (generators only)
EVAL_ARGS = []                          # what tools.figures adds to `python sr_degradation/eval.py`
FIGURES = ["super_resolution.png", "degradation.png", "table2.png", "failures.png", "table1_fig5_curves.png"]
LABELS = {"pipeline": "pipeline"}       # shipped name → the label of numbers()
DRAWS = {"pipeline": []}                # bare commands whose draws tools.draws records
BENCHMARKS = [("High-to-Low stage, 64 → 16 px",                       # benchmarks.speed --train
               ["--stage", "h2l", "--high-faces", "300", "--low-faces", "300", "--fid-faces", "8"])]

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--stage", "h2l", "--size", "16", "--high-faces", "12", "--low-faces", "12", "--batch-size", "4",
         "--fid-faces", "8", "--h2l-width", "4", "--h2l-blocks", "0", "1", "0", "--d-low-width", "4", "--d-steps", "1"],
    eval=["--faces", "8"],              # eval.py flags that keep a tiny run's evaluation fast
    images=12,                          # training images of that run: the largest batch that fits
    data_flag="--data-high", fid_flag="--fid-faces", resume=["--stage", "h2l"])      # a stage folder resumes so


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json (one pipeline) → ``{"pipeline": {number: value}}``: Table 2's FID and PSNR of the
    fine-tuned pipeline beside bicubic upsampling's, and the degradation's FID."""
    table = metrics["table2"]
    ours, bicubic = table["High-to-Low + Low-to-High, fine-tuned"], table["bicubic upsampling"]
    return {"pipeline": {
        "fid": ours["fid_real_lr"], "psnr_db": ours["psnr_db_bicubic_lr"],
        "fid_bicubic_upsampling": bicubic["fid_real_lr"], "psnr_db_bicubic_upsampling": bicubic["psnr_db_bicubic_lr"],
        "psnr_db_bicubic_trained_l2h": table["Low-to-High trained on bicubic pairs"]["psnr_db_bicubic_lr"],
        "degradation_fid_h2l": metrics["degradation_fid"]["High-to-Low(HR) after the fine-tune vs real LR"]}}


def gallery_panel(n: int):
    """``(rows of images, shipped name, caption)`` for docs/gallery.png: real LR faces super-resolved."""
    from common.checkpoints import load_networks
    from common.data import to_float
    from common.manifest import weights_folder
    from sr_degradation.data import held_out_set
    from sr_degradation.model import bicubic_up, build
    folder = weights_folder("sr_degradation") / "pipeline" / "finetune"
    nets, checkpoint = load_networks(folder, "sr_degradation", build, ["L2H"])
    low = to_float(held_out_set("real LR", None, checkpoint["config"]["size"], n))
    return ([bicubic_up(low), nets["L2H"](low)], "pipeline",
            "sr_degradation: real low-quality faces (top, enlarged bicubically) super-resolved by Low-to-High (bottom)")
