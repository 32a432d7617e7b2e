"""Every README figure that an ``eval.py`` draws, regenerated from the shipped networks, in one command:

    python -m tools.figures            # ~4 min on 2 CPU cores (five evals and the gallery)

For each paper: ``python <paper>/eval.py`` with no ``--run`` (into ``runs/<paper>/shipped``), its
figures copied into ``docs/<paper>/`` under the names the README shows, and the headline numbers
of each shipped network (FID …) written into ``<paper>/weights/manifest.json`` (``eval``); then
``python -m tools.gallery`` (``docs/gallery.png``). README figures, README numbers and weights
then come from one source. Figures of other runs (GPU runs, studies, training samples) stay as
they are; each README says which run drew them.
"""
import importlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

from tools import gallery                                       # noqa: E402
from common.manifest import ROOT, read_manifest                  # noqa: E402
from tools.ship import write_manifest                        # noqa: E402

# eval's figures/<file> → docs/<paper>/<file> (the names the READMEs show)
FIGURES = {
    "began_refiner": ["fig3_refinements.png", "fig4_realism.png", "fig5_similarity.png", "convergence.png"],
    "dcgan_celeba": ["fig5b_comparison.png", "table1_detection.png", "fig4_4_losses.png", "fid_curves.png",
                     "sketch_to_face.png"],
    "nir_cgan": ["fig4_2_samples.png", "fig4_12_head_yaw.png", "fig4_14_gaze_yaw.png", "fig4_18_arithmetic.png"],
    "sr_degradation": ["super_resolution.png", "degradation.png", "table2.png", "failures.png",
                       "table1_fig5_curves.png"],
    "style_anime": ["fig4_2_5_samples.png", "fig4_2_4_losses.png"],
}


def began_refiner(metrics):
    labels = {"A": "A", "B": "B", "C": "C", "began": "BEGAN (noise)"}
    keys = {"fid": "fid_synthetic-v1", "diversity": "diversity", "face_detection_rate": "face_detection_rate",
            "identity_similarity": "identity_similarity"}          # the noise BEGAN has no input to resemble
    return {name: {key: metrics[label][source] for key, source in keys.items() if source in metrics[label]}
            for name, label in labels.items()}


def dcgan_celeba(metrics):
    rows = {row["model"]: row for row in metrics["table1"]}
    labels = {"dcgan": "DCGAN", "wgan": "WGAN", "ours": "ours"}
    return {name: {"fid": rows[label][f"FID ({metrics['fid_features']})"], "diversity": rows[label]["diversity"],
                   "faces_not_detected_of_1000": rows[label]["can't detect face"]} for name, label in labels.items()}


def nir_cgan(metrics):
    return {"quick": {"fid": metrics["fid"], "diversity": metrics["diversity"]}}


def sr_degradation(metrics):
    table = metrics["table2"]
    ours, bicubic = table["High-to-Low + Low-to-High, fine-tuned"], table["bicubic upsampling"]
    return {"pipeline": {"fid": ours["fid_real_lr"], "psnr_db": ours["psnr_db_bicubic_lr"],
                         "fid_bicubic_upsampling": bicubic["fid_real_lr"],
                         "psnr_db_bicubic_upsampling": bicubic["psnr_db_bicubic_lr"],
                         "psnr_db_bicubic_trained_l2h": table["Low-to-High trained on bicubic pairs"]["psnr_db_bicubic_lr"],
                         "degradation_fid_h2l": metrics["degradation_fid"]["High-to-Low(HR) after the fine-tune vs real LR"]}}


EVAL_ARGS = {"nir_cgan": ["--all"]}          # nir_cgan: the sweeps and latent arithmetic too
HEADLINES = {"began_refiner": began_refiner, "dcgan_celeba": dcgan_celeba, "nir_cgan": nir_cgan,
             "sr_degradation": sr_degradation, "style_anime": lambda m: {"dcgan": {"fid": m["fid"], "diversity": m["diversity"]}}}


def regenerate(paper: str) -> dict:
    """Run ``paper``'s eval on its shipped networks; copy its figures into docs/; record its numbers."""
    importlib.import_module(f"{paper}.eval").main(EVAL_ARGS.get(paper, []))
    out = Path("runs") / paper / "shipped"
    metrics = json.loads((out / "metrics.json").read_text())
    for name in FIGURES[paper]:
        (ROOT / "docs" / paper).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "figures" / name, ROOT / "docs" / paper / name)
    manifest = read_manifest(paper)
    numbers = HEADLINES[paper](metrics)
    for name, values in numbers.items():
        manifest[name]["eval"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    write_manifest(paper, manifest)
    return numbers


def main():
    for paper in FIGURES:
        print(f"== {paper}")
        for name, values in regenerate(paper).items():
            print(f"   {name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in values.items()))
    print(f"wrote {gallery.draw(ROOT / 'docs' / 'gallery.png')}")


if __name__ == "__main__":
    main()
