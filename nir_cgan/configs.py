"""The thesis's named configurations (Table 4.1 abbreviations, rows of Tables 4.2–4.8).

A name reads Generator-Loss-Loss-…: ED / Mult generator; O / LS / H adversarial loss;
P perceptual loss; LR latent reconstruction; SD style diversity; IR identity
reconstruction; SM style mapping network. The numbered suffixes only tell rows apart,
so every row is written out here with the λ values and distances its table gives.

Fields (``Config``): generator "ED" | "Mult"; adversarial "original" | "least-squares" |
"hinge"; perceptual None | "D45" (discriminator layers 4 and 5) | "Dall" (layers 1–5) |
"VGG" (VGG-19 layers 1, 6, 11, 20, 29); the λ of eq. 3.5; d_I ("L1", "D", "VGG", "FaceId")
and d_z ("const", "L1") of eqs. 3.2–3.3; mapping (L in front of z).
Where a table leaves a value out, the choice is marked "ours" and explained in the README.
"""
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Config:
    generator: str = "ED"
    adversarial: str = "least-squares"
    perceptual: str = None
    lambda_p: float = 0.0
    lambda_lr: float = 0.0
    lambda_sd: float = 0.0
    sd_image: str = "FaceId"       # d_I of eq. 3.2
    sd_latent: str = "const"       # d_z of eq. 3.2
    lambda_ir: float = 0.0
    ir_image: str = "FaceId"       # d_I of eq. 3.3
    mapping: bool = False

    @property
    def uses_encoder(self):
        return self.lambda_lr > 0 or self.lambda_ir > 0

    @property
    def image_distances(self):
        """The d_I this configuration uses: eq. 3.2's when it has L_sd, eq. 3.3's when it has L_ir."""
        return {name for name, weight in ((self.sd_image, self.lambda_sd), (self.ir_image, self.lambda_ir)) if weight}

    @property
    def uses_vgg(self):
        """Whether a run needs VGG-19: as d_I, or for the VGG perceptual loss (eq. 3.4)."""
        return "VGG" in self.image_distances or self.perceptual == "VGG"


LS, H, O = Config(), Config(adversarial="hinge"), Config(adversarial="original")
LS_LR2, H_LR1 = replace(LS, lambda_lr=2), replace(H, lambda_lr=1)

# table → {name: Config}; the order of each table is the thesis's row order (A, B, C, …).
TABLES = {
    "4.2 generator": {"ED-LS": LS, "Mult-LS": replace(LS, generator="Mult")},
    "4.3 adversarial loss": {"ED-O": O, "ED-H": H, "ED-LS": LS},
    "4.4 perceptual loss": {
        "ED-H-P": replace(H, perceptual="D45", lambda_p=1),
        "ED-LS-P-1": replace(LS, perceptual="D45", lambda_p=1),
        "ED-LS-P-2": replace(LS, perceptual="Dall", lambda_p=1),
        "ED-LS-P-3": replace(LS, perceptual="VGG", lambda_p=1)},
    "4.5 latent reconstruction": {
        "ED-LS-LR-1": replace(LS, lambda_lr=1), "ED-LS-LR-2": LS_LR2,
        "ED-LS-LR-3": replace(LS, lambda_lr=5), "ED-H-LR": H_LR1},
    "4.6 style diversity": {                                       # λ_lr: ours (2 for LS, 1 for H, see README)
        "ED-LS-LR-SD": replace(LS_LR2, lambda_sd=1),
        "ED-H-LR-SD-1": replace(H_LR1, lambda_sd=1),
        "ED-H-LR-SD-2": replace(H_LR1, lambda_sd=1, sd_latent="L1"),
        "ED-H-LR-SD-3": replace(H_LR1, lambda_sd=1, sd_image="L1"),
        "ED-H-LR-SD-4": replace(H_LR1, lambda_sd=1, sd_image="D"),
        "ED-H-LR-SD-5": replace(H_LR1, lambda_sd=1, sd_image="VGG")},
    "4.7 style mapping": {                                         # SD distances, λ_lr: ours
        "ED-LS-SM": replace(LS, mapping=True),
        "ED-LS-LR-SD-SM": replace(LS_LR2, lambda_sd=1, mapping=True),
        "ED-LS-P-LR-SD-SM": replace(LS_LR2, lambda_sd=1, perceptual="VGG", lambda_p=1, mapping=True)},
    "4.8 identity reconstruction": {
        "ED-LS-LR-IR-1": replace(LS, lambda_lr=1, lambda_ir=1),
        "ED-LS-LR-IR-2": replace(LS_LR2, lambda_ir=1),
        "ED-LS-LR-IR-3": replace(LS_LR2, lambda_ir=1, ir_image="L1"),
        "ED-LS-LR-IR-4": replace(LS_LR2, lambda_ir=1, ir_image="VGG"),
        "ED-H-LR-IR": replace(H, lambda_lr=2, lambda_ir=1, ir_image="L1")},   # the table's d_I "1": read as L1
    "4.2.1 analysis (Fig. 4.15)": {"ED-H-LR-SD-IR": replace(H_LR1, lambda_sd=1, lambda_ir=1)},
}
CONFIGS = {name: config for table in TABLES.values() for name, config in table.items()}

# The thesis's results, for the README and eval's comparison table: name → (FID, LPIPS).
THESIS_SCORES = {
    "ED-LS": (14.75, 0.180), "Mult-LS": (18.75, 0.166), "ED-O": (16.5, 0.148), "ED-H": (78.5, 0.0592),
    "ED-H-P": (18.6, 0.134), "ED-LS-P-1": (18.3, 0.151), "ED-LS-P-2": (22.5, 0.133), "ED-LS-P-3": (15.3, 0.138),
    "ED-LS-LR-1": (14.7, 0.179), "ED-LS-LR-2": (12.3, 0.171), "ED-LS-LR-3": (15.4, 0.171), "ED-H-LR": (18.6, 0.135),
    "ED-LS-LR-SD": (None, None), "ED-H-LR-SD-1": (17.1, 0.164), "ED-H-LR-SD-2": (19.4, 0.144),
    "ED-H-LR-SD-3": (17.4, 0.147), "ED-H-LR-SD-4": (55.8, 0.0864), "ED-H-LR-SD-5": (40.5, 0.0619),
    "ED-LS-SM": (25.3, 2.82e-6), "ED-LS-LR-SD-SM": (20.1, 0.193), "ED-LS-P-LR-SD-SM": (15.8, 0.164),
    "ED-LS-LR-IR-1": (15.7, 0.173), "ED-LS-LR-IR-2": (15.3, 0.178), "ED-LS-LR-IR-3": (15.7, 0.180),
    "ED-LS-LR-IR-4": (12.7, 0.183), "ED-H-LR-IR": (13.1, 0.161), "ED-H-LR-SD-IR": (None, None),
}
