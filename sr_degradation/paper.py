"""What the rest of the repository needs of sr_degradation, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
SHIPPED = ["pipeline"]                  # weights/pipeline: h2l/, l2h/, finetune/, bicubic/ (generators only)
EVAL_ARGS = []                          # what tools.figures adds to `python sr_degradation/eval.py`
FIGURES = ["super_resolution.png", "degradation.png", "table2.png", "failures.png", "table1_fig5_curves.png"]
LABELS = {"pipeline": "pipeline"}       # shipped name → the label of numbers()
DRAWS = {"pipeline": []}                # bare commands whose draws tools.draws records
DRAWN_STAGE = "finetune"                # tools.draws reads this stage's log.csv and samples/ (the fine-tuned pair)
BENCHMARKS = [("High-to-Low stage, 64 → 16 px",                       # benchmarks.speed --train
               ["--stage", "h2l", "--high-faces", "300", "--low-faces", "300", "--fid-faces", "8"])]

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--stage", "h2l", "--size", "16", "--high-faces", "12", "--low-faces", "12", "--batch-size", "4",
         "--fid-faces", "8", "--h2l-width", "4", "--h2l-blocks", "0", "1", "0", "--d-low-width", "4", "--d-steps", "1"],
    eval=["--faces", "8"],              # eval.py flags that keep a tiny run's evaluation fast
    images=12,                          # training images of that run: the largest batch that fits
    data_flag="--data-high", fid_flag="--fid-faces", resume=["--stage", "h2l"])      # a stage folder resumes so
# The paper's equations, figures and tables, each with the function that implements it (README, "Equation → code").
EQUATIONS = [
    ("§IX eq. 1: l = α·pixel + β·GAN, α = 1, β = 0.05 (§X)", "model.py", "generator_loss"),
    ("§IX: the L2 pixel loss, mean (output − target)²", "model.py", "pixel_loss"),
    ("High-to-Low's pixel target: the HR face average-pooled to 16×16", "model.py", "downsample_target"),
    ("GAN loss, critic (hinge): E[max(0, 1 − D(real))] + E[max(0, 1 + D(fake))]", "model.py", "hinge_d_loss"),
    ("GAN loss, generator (hinge): GAN = −E[D(fake)]", "model.py", "hinge_g_loss"),
    ("§X: one critic step, each critic on real against generated faces", "model.py", "compute_d_loss"),
    ("§IX–X: one generator step, eq. 1 for each generator, summed", "model.py", "compute_g_loss"),
    ("Fig. 3a: High-to-Low, HR 64×64 + noise z → LR 16×16 (residual blocks)", "model.py", "HighToLow"),
    ("Fig. 3b: Low-to-High, LR 16×16 → 64×64", "model.py", "LowToHigh"),
    ("Fig. 4: the spectral-norm residual critics, 16×16 and 64×64", "model.py", "Discriminator"),
    ("Table 2: bicubic upsampling, and the base of a residual Low-to-High", "model.py", "bicubic_up"),
    ("Fig. 2: the pipeline, stage after stage", "train.py", "train_pipeline"),
    ("Fig. 2, §VII: stage 1, High-to-Low from unpaired HR and real LR faces", "train.py", "train_h2l"),
    ("§X: stage 2, Low-to-High on (High-to-Low(HR, fresh z), HR); the bicubic baseline", "train.py", "train_l2h"),
    ("§X: the fine-tune of both networks together", "train.py", "train_finetune"),
    ("§X: Adam, lr 1e-4, β1 = 0, β2 = 0.9", "train.py", "adam"),
    ("§X: D:G = 5:1, ~570,000 updates per stage, 2,000 to fine-tune (paper preset)", "train.py", "PRESETS"),
    ("Fig. 2: what each stage hands to the next", "pipeline.py", "hand_over"),
    ("§X: flip, scale, rotation, colour jitter", "data.py", "augment"),
    ("Table 2's baseline pairs and Table 2(b)'s input: bicubic(HR)", "data.py", "bicubic_down"),
    ("§VII: is the learned degradation real? FID against real LR faces", "eval.py", "degradation_check"),
    ("Table 2: (a) FID on real LR faces, (b) PSNR / SSIM on downsampled HR faces", "eval.py", "table2"),
    ("Table 2's two questions: learned vs interpolation (PSNR), ours vs bicubic pairs (FID)", "eval.py", "checks"),
    ("§XII: failure cases, about 10%", "eval.py", "failures"),
    ("Table 1 / Fig. 5: loss and training time against iterations", "eval.py", "table1_fig5"),
]


def _shipped(key):
    """A number that eval.py measured on the shipped pipeline (weights/manifest.json, ``numbers`` below)."""
    from common.manifest import read_manifest
    return read_manifest("sr_degradation")["pipeline"]["eval"][key]


def _logged(stage, column):
    """The values of one column of a shipped stage's log.csv, in step order (empty cells left out)."""
    import math

    from common.csvlog import read_log
    from common.manifest import weights_folder
    log = read_log(weights_folder("sr_degradation") / "pipeline" / stage / "log.csv")
    return [v for v in log[column] if not math.isnan(v)]


def _degradation():
    learned, bicubic = _shipped("degradation_fid_h2l"), _shipped("degradation_fid_bicubic")
    untrained, stage1 = _logged("h2l", "fid_h2l")[0], _logged("h2l", "fid_h2l")[-1]
    return (f"FID against real LR faces: High-to-Low(HR) {learned:.1f} (log.csv: {untrained:.1f} untrained, "
            f"{stage1:.1f} after stage 1), bicubic(HR) {bicubic:.1f} (rule: High-to-Low's is the lower)",
            learned < bicubic and stage1 < bicubic)


def _headline():
    ours, trained, upsampling = (_shipped(k) for k in ("fid", "fid_bicubic_trained_l2h", "fid_bicubic_upsampling"))
    return (f"FID {ours:.1f} (ours, fine-tuned) against {trained:.1f} (Low-to-High on bicubic pairs); "
            f"bicubic upsampling {upsampling:.1f}", ours < trained)


def _psnr():
    ours, trained = _shipped("psnr_db"), _shipped("psnr_db_bicubic_trained_l2h")
    return f"PSNR {trained:.1f} dB (bicubic pairs) against {ours:.1f} dB (ours)", trained > ours


def _sanity():
    trained, upsampling = _shipped("psnr_db_bicubic_trained_l2h"), _shipped("psnr_db_bicubic_upsampling")
    return f"PSNR {trained:.1f} dB against {upsampling:.1f} dB", trained > upsampling


def _gan_term():
    from common.manifest import read_manifest
    before, after = _shipped("fid_stage2"), _shipped("fid")
    steps = read_manifest("sr_degradation")["pipeline"]["stages"]["finetune"]["steps"]
    return (f"FID on real LR {before:.1f} (stage 2, pixel loss alone) → {after:.1f} after the fine-tune's "
            f"{steps} steps of eq. 1 (rule: at least 5% lower)", after < 0.95 * before)


def _failures():
    rate = _shipped("failure_rate")
    return (f"{rate:.1%} of our outputs on real LR faces lie further from the HR faces' features than 99% of "
            f"real HR faces do (rule: between 5% and 20%)", 0.05 <= rate <= 0.20)


def _loss_falls():
    def ends(stage):
        losses = _logged(stage, "loss_G")
        return sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    said = {stage: ends(stage) for stage in ("h2l", "l2h")}
    return ("loss_G, mean of the first → last five logged values: "
            + ", ".join(f"{stage} {a:.3f} → {b:.3f}" for stage, (a, b) in said.items()),
            all(b < a for a, b in said.values()))


CLAIMS = [   # the paper's claims (§VII–XII), each measured on the shipped pipeline; the verdict is computed
    dict(claim="High-to-Low learns the real degradation from unpaired faces",
         paper="no number: the method's premise (§VII, §XIII)", measure=_degradation),
    dict(claim="learning the degradation first wins FID on real LR faces",
         paper="FID 15.20 (ours) against 85.59 (Low-to-High on bicubic pairs), Table 2(a)", measure=_headline),
    dict(claim="the bicubic-trained Low-to-High wins PSNR on downsampled faces",
         paper="PSNR 23.50 dB (bicubic pairs) against 18.40 dB (ours), Table 2(b)", measure=_psnr),
    dict(claim="(our check) the bicubic-trained Low-to-High beats bicubic upsampling in PSNR",
         paper="not measured: Table 2 has no interpolation row", measure=_sanity),
    dict(claim="the GAN term (β = 0.05) makes the outputs more realistic than the pixel loss alone",
         paper="stated (§IX: the pixel loss alone is blurry), not measured", measure=_gan_term),
    dict(claim="about one output in ten is a failure", paper="about 10%, judged by eye (§XII)",
         measure=_failures),
    dict(claim="the generator loss falls with training (Table 1)",
         paper="1.5 → 0.447 over 600,000 iterations (network not named)", measure=_loss_falls),
]


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json (one pipeline) → ``{"pipeline": {number: value}}``: Table 2's FID (real LR
    faces) and PSNR (bicubic-downsampled HR faces) of the fine-tuned pipeline, of stage 2 (FID), of the
    bicubic-trained Low-to-High and of bicubic upsampling; the degradation's FID beside bicubic(HR)'s;
    the fine-tuned pipeline's failure rate (§XII)."""
    table, degradation = metrics["table2"], metrics["degradation_fid"]
    ours, stage2 = table["High-to-Low + Low-to-High, fine-tuned"], table["High-to-Low + Low-to-High (stage 2)"]
    trained, upsampling = table["Low-to-High trained on bicubic pairs"], table["bicubic upsampling"]
    return {"pipeline": {
        "fid": ours["fid_real_lr"], "fid_stage2": stage2["fid_real_lr"],
        "fid_bicubic_trained_l2h": trained["fid_real_lr"], "fid_bicubic_upsampling": upsampling["fid_real_lr"],
        "psnr_db": ours["psnr_db_bicubic_lr"], "psnr_db_bicubic_trained_l2h": trained["psnr_db_bicubic_lr"],
        "psnr_db_bicubic_upsampling": upsampling["psnr_db_bicubic_lr"],
        "degradation_fid_h2l": degradation["High-to-Low(HR) after the fine-tune vs real LR"],
        "degradation_fid_bicubic": degradation["bicubic(HR) vs real LR"],
        "failure_rate": ours["failure_fraction"]}}


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
