"""What the rest of the repository needs of nir_cgan, declared once (tools/, benchmarks/, tests/ read it).

A folder with a ``paper.py`` is a paper of this repository (``common.manifest.PAPERS`` finds them).
"""
SHIPPED = ["quick"]                     # weights/quick: the quick configuration's networks
EVAL_ARGS = ["--all"]                   # tools.figures: the sweeps and the latent arithmetic too
FIGURES = ["fig4_2_samples.png", "fig4_12_head_yaw.png", "fig4_14_gaze_yaw.png", "fig4_16_17_interpolation.png",
           "fig4_18_arithmetic.png"]
LABELS = {"quick": "quick"}             # shipped name → the label of numbers()
DRAWS = {"quick": []}                   # bare commands whose draws tools.draws records
BENCHMARKS = [("ED-LS-LR-2, 32 px", ["--pairs", "400", "--fid-pairs", "8"])]     # benchmarks.speed --train

TESTS = dict(                            # what the shared tests (tests/test_run_lifecycle.py, ...) run
    run=["--config", "ED-LS", "--pairs", "40", "--batch-size", "4", "--z-dim", "8", "--g-base", "4", "--g-max", "16",
         "--d-base", "8", "--fid-pairs", "8"],
    eval=["--distance", "synthetic", "--sources", "2", "--device", "cpu"],   # fast, and no LPIPS download
    images=36,                          # training pairs of that run (10 % of 40 held out): the largest batch
    data_flag="--data", fid_flag="--fid-pairs", resume=[])


# The thesis's equations, algorithms and tables, each with the code that implements it (README, "Equation → code").
EQUATIONS = [
    ("Table 2.1 / eq. 2.5: L_D of the original, least-squares and hinge losses", "model.py", "discriminator_loss"),
    ("Table 2.1 / eq. 2.4: L_G = h(y) (original in its non-saturating form)", "model.py", "generator_loss"),
    ("Algorithms 1–2: one D step, then one G step, alternately", "train.py", "main"),
    ("Algorithm 2, D's half: real (y, x) against (y, G(y, z))", "train.py", "compute_d_loss"),
    ("Algorithm 2, G's half: the terms of eq. 3.5 the configuration uses", "train.py", "compute_g_loss"),
    ("§2.4.1, Fig. 3.12: ResBlock y = F(x) + x (here / √2), down by AvgPool", "model.py", "ResBlk"),
    ("Fig. 3.12: AdaIN ResBlock and Multinorm ResBlock, up by bilinear interpolation", "model.py", "UpResBlk"),
    ("eq. 2.8: AdaIN, x' = γ(z)·IN(x) + β(z)", "model.py", "AdaIN"),
    ("eq. 2.9: SPADE, x' = γ_hw(y)·BN(x) + β_hw(y)", "model.py", "SPADE"),
    ("§3.1.4: outliers beyond Q1 − 1.5·IQR or Q3 + 1.5·IQR, per sub-folder", "data.py", "clean_pairs"),
    ("§3.1.5: each target scaled by μ0/μ", "data.py", "normalise_mean"),
    ("Table 3.1, §3.1.5.1: random augmentations, one warp for both images of a pair", "data.py", "augment_pairs"),
    ("§3.1.6: random 90 % / 10 % split", "data.py", "split_train_test"),
    ("eq. 3.1: L_lr = ‖z − E(G(y, z))‖₁", "model.py", "latent_reconstruction_loss"),
    ("eq. 3.2: L_sd = d_I(G(y, z1), G(y, z2)) / d_z(z1, z2), maximised", "model.py", "style_diversity_loss"),
    ("eq. 3.3: L_ir = d_I(x, G(y, E(x)))", "model.py", "identity_reconstruction_loss"),
    ("eq. 3.4: L_p = Σ_l ‖f_l(x̂) − f_l(x)‖², f = D's layers", "model.py", "feature_matching_loss"),
    ("§3.2.4.2.1: VGG-19 layers 1, 6, 11, 20, 29 with L1", "model.py", "VGGDistance"),
    ("§3.2.4.2.2: the face-identity network as d_I", "model.py", "FaceIdDistance"),
    ("Table 3.2 / eq. 3.5: L_full = L_adv + λ_p·L_p + λ_lr·L_lr + λ_ir·L_ir − λ_sd·L_sd", "model.py",
     "full_loss"),
    ("§3.2.6.1: one Adam per network; constant for K_fixed epochs, then linear to 0", "train.py", "optimisers"),
    ("Table 3.3: PatchGAN discriminator", "model.py", "PatchDiscriminator"),
    ("Table 3.4: encoder–decoder generator (ED)", "model.py", "EncoderDecoder"),
    ("Table 3.5: Multinorm decoder generator (Mult)", "model.py", "MultinormDecoder"),
    ("Table 3.6: latent encoder E", "model.py", "LatentEncoder"),
    ("Table 3.7: style mapping network L", "model.py", "MappingNetwork"),
    ("Table 3.8: Xavier initialisation", "model.py", "init_xavier"),
    ("Table 3.8: the hyperparameters (paper preset) and the quick preset", "train.py", "PRESETS"),
    ("Table 4.1: the configuration names, every row of Tables 4.2–4.8 (their scores: THESIS_SCORES)", "configs.py",
     "TABLES"),
    ("eq. 3.6: FID = ‖μ_r − μ_g‖² + Tr(C_r + C_g − 2(C_r·C_g)^½)", "../common/metrics.py",
     "frechet_distance"),
    ("eq. 3.7: LPIPS", "../common/features.py", "LpipsDistance"),
    ("eq. 3.8: diversity, mean pairwise distance of M outputs per source", "../common/metrics.py", "diversity"),
    ("§3.3.1: realism (one output per test source) and diversity", "eval.py", "realism_and_diversity"),
    ("Fig. 4.2, appendix: random samples for one source", "eval.py", "main"),
    ("Figs. 4.12–4.15: head-yaw, head-pitch and gaze-yaw sweeps", "eval.py", "sweep_figures"),
    ("Figs. 4.16–4.18: latent interpolation and arithmetic z_feat = z2 − z1", "eval.py", "latent_space_figures"),
    ("Fig. 4.10: identity reconstruction of unseen real faces", "eval.py", "identity_figure"),
    ("Fig. 4.11 and Tables 4.2–4.8 side by side with ours", "study.py", "tables"),
]


def _shipped(key):
    from common.manifest import read_manifest
    return read_manifest("nir_cgan")["quick"]["eval"][key]


def _head_pose():
    slope, error, floor = _shipped("yaw_slope"), _shipped("yaw_err"), _shipped("real_yaw_err")
    return (f"head-yaw slope {slope:.2f} (1: turns fully with the render, 0: ignores it; yes from 0.5); "
            f"yaw error {error:.1f}° on the test outputs, {floor:.1f}° on the real targets", slope >= 0.5)


def _gaze():
    gaze, head, floor = _shipped("gaze_slope"), _shipped("yaw_slope"), _shipped("real_gaze_yaw_err")
    return (f"gaze-yaw slope {gaze:.2f} against head-yaw {head:.2f} (yes when below half of it); the reader's own "
            f"gaze error on the real test targets is {floor:.1f}°", gaze < head / 2)


def _diversity():
    value = _shipped("diversity")
    return (f"diversity {value:.2f} (synthetic-v1-l2 distance, 20 sources × 10 z each; a G that ignores z "
            f"scores 0; yes from 0.1)", value >= 0.1)


def _arithmetic():
    rate, shift, noise = _shipped("beard_rate"), _shipped("beard_yaw_shift"), _shipped("yaw_err")
    return (f"the reader sees a beard on {rate:.0%} of the beardless faces after adding z_feat, and their head "
            f"yaw moves by {shift:.1f}° (yes: a beard on at least half, and yaw moved less than the {noise:.1f}° "
            f"the reader errs by on outputs)", rate >= 0.5 and shift < noise)


CLAIMS = [   # the thesis's claims that the shipped ED-LS-P-1 can answer, each verdict computed
    dict(claim="the faces follow the render's head pose (§4.2.1.1, Fig. 4.12)",
         paper="\"seem to follow changes in head pose well\" (ED-LS-LR-2, by eye)", measure=_head_pose),
    dict(claim="with least squares the faces ignore gaze (§4.2.1.2, Fig. 4.14)",
         paper="LS configurations \"almost completely ignore changes in gaze direction\" (by eye)", measure=_gaze),
    dict(claim="a different face for each z, no mode collapse (§3.2.1, Fig. 4.2)",
         paper="ED-LS-P-1: LPIPS 0.151 (Table 4.4); a collapsed G (ED-LS-SM) 2.8·10⁻⁶", measure=_diversity),
    dict(claim="z2 − z1 of a bearded and a beardless face adds a beard to others and changes nothing else "
               "(§3.5.3.2.2, Fig. 4.18)",
         paper="faces \"should only change with respect to this feature\"; shown for ED-LS-LR-2 by eye",
         measure=_arithmetic),
]


def numbers(metrics: dict) -> dict:
    """eval.py's metrics.json (one run) → ``{"quick": {number: value}}``: FID and diversity; on the built-in
    pairs the reader's yaw error (°) on the outputs and its yaw and gaze-yaw errors on the real targets; with
    ``--all`` the mean slopes of the head-yaw and gaze-yaw sweeps over 3 z, and how often z_feat adds a beard
    and how far it moves the head's yaw."""
    out = {"fid": metrics["fid"], "diversity": metrics["diversity"]}
    errors, floor = metrics.get("attribute_error_degrees"), metrics.get("reader_error_on_real_degrees")
    if errors and floor:
        out.update(yaw_err=errors["yaw"], real_yaw_err=floor["yaw"], real_gaze_yaw_err=floor["gaze_yaw"])
    sweeps = metrics.get("sweeps")
    if sweeps:
        mean = {name: sum(s["slope_random_z"]) / len(s["slope_random_z"]) for name, s in sweeps.items()}
        out.update(yaw_slope=mean["head_yaw"], gaze_slope=mean["gaze_yaw"])
    beard = metrics.get("arithmetic", {}).get("beard", {})
    if "switched_on" in beard:
        out.update(beard_rate=beard["switched_on"], beard_yaw_shift=beard["yaw_change_degrees"])
    return {"quick": out}


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
