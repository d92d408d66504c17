"""The paper's MNIST reference numbers, in one place: tables 1-4 of its appendix, transcribed.

Saseendran, Skubch, Falkner, Keuper, "Trading off Image Quality for Robustness is not Necessary with
Regularized Deterministic Autoencoders", NeurIPS 2022, supplementary appendix:

- table 1 (section A.2, "Additional ablation study"): every model, including PGD training and K = 1;
- table 2 (section A.5): number of modes K at alpha 0.95;
- table 3 (section A.6): coupling strength alpha at K 10;
- table 4 (section A.7, MNIST part): decoder quality, clean and under both attacks;
- FID error bars over 5 runs (section A.4, "Evaluation setup").

The MS-SSIMs are the authors' formula (jorge-pessoa ``pytorch_msssim.msssim``, window 6; radae's
``msssim_paper`` metrics), the FID uses Inception-v3 features. Every number is copied from the
appendix's tables as printed (two decimals); nothing is estimated or read off a figure. Cells are
(lambda 1, lambda 3, lambda 5), lambda the L2 budget of the attack.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = (1, 3, 5)
PAPER_FID_NETWORK = "Inception-v3"
CITATION = "Saseendran et al., NeurIPS 2022, appendix"
TABLE1_CITATION = f"{CITATION}, table 1 (section A.2), MNIST"
TABLE2_CITATION = f"{CITATION}, table 2 (section A.5), MNIST"
TABLE3_CITATION = f"{CITATION}, table 3 (section A.6), MNIST"
TABLE4_CITATION = f"{CITATION}, table 4 (section A.7), MNIST"
SOURCE = f"{CITATION}: tables 1 (A.2), 2 (A.5), 3 (A.6) and 4 (A.7), MNIST; FID error bars from A.4"

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class PaperRow:
    """One row of tables 1-3: MS-SSIMs at lambda 1, 3, 5 and the (Inception) FID.

    ``latent_x_xa`` / ``max_damage_x_xa``: MS-SSIM(x, x_a) of each attack's perturbation (how visible it
    is; lower = more visible), given by tables 2 and 3 only (None in table 1)."""

    model: str
    latent: Triple  # MS-SSIM(x_t, recon x_a), lower = more robust
    max_damage: Triple  # MS-SSIM(recon x, recon x_a), higher = more robust
    fid: float
    latent_x_xa: Triple | None = None
    max_damage_x_xa: Triple | None = None


@dataclass(frozen=True)
class DecoderRow:
    """One MNIST row of table 4 (decoder quality, higher = better): MS-SSIM(x_r, recon x_r) of clean
    images, and MS-SSIM(x_a, recon x_a) under the latent and the max-damage attack at lambda 1, 3, 5."""

    model: str
    clean: float
    latent: Triple
    max_damage: Triple


OURS_NAME = "robust GMM AE (K=10, alpha 0.95)"

# Appendix table 1; the paper's own names in the comments. The robust GMM AE ("Ours") stays last.
TABLE1 = (
    PaperRow("VAE", (0.55, 0.78, 0.89), (0.64, 0.27, 0.08), 43.21),
    PaperRow("beta-VAE", (0.52, 0.73, 0.86), (0.65, 0.36, 0.22), 42.72),
    PaperRow("beta-TCVAE", (0.53, 0.69, 0.83), (0.73, 0.38, 0.28), 45.61),
    PaperRow("LipschitzVAE", (0.50, 0.68, 0.79), (0.75, 0.41, 0.33), 59.45),
    PaperRow("SE", (0.49, 0.62, 0.68), (0.90, 0.60, 0.54), 47.34),
    PaperRow("AVAE", (0.49, 0.59, 0.62), (0.80, 0.65, 0.59), 48.47),
    PaperRow("unimodal robust AE", (0.48, 0.62, 0.70), (0.89, 0.73, 0.62), 41.41),  # "Unimodal-Ours"
    PaperRow("PGD-trained robust GMM AE (K=10, alpha 0.95)", (0.39, 0.46, 0.58), (0.93, 0.83, 0.71), 39.10),
    PaperRow(OURS_NAME, (0.38, 0.47, 0.60), (0.92, 0.82, 0.69), 39.37),  # "Ours"
)
OURS = TABLE1[-1]

# Which radae rows stand for a paper model: (config.model.name, {param or config key: value}).
TABLE1_MATCH = {
    "VAE": ("vae", {}),
    "beta-VAE": ("beta-vae", {}),
    "beta-TCVAE": ("beta-tcvae", {}),
    "LipschitzVAE": ("lipschitz-vae", {}),
    "SE": ("se", {}),
    "AVAE": ("avae", {}),
    "unimodal robust AE": ("rae", {"prior.num_modes": 1, "loss.alpha": 0.95, "adv.method": "fgsm"}),
    "PGD-trained robust GMM AE (K=10, alpha 0.95)": (
        "rae",
        {"prior.num_modes": 10, "loss.alpha": 0.95, "adv.method": "pgd"},
    ),
    OURS_NAME: ("rae", {"prior.num_modes": 10, "loss.alpha": 0.95, "adv.method": "fgsm"}),
}

# Appendix table 2: K at alpha 0.95; table 3: alpha at K 10 (sweeps/reproduction*.yaml together run both).
TABLE2_K = (1, 5, 10, 15, 20, 25)
TABLE2_ALPHA = 0.95
TABLE3_ALPHA = (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 1.0)
TABLE3_K = 10
# Tables 2 and 3 are of the FGSM-trained model (the paper's "ours").
SENSITIVITY_MATCH = {"adv.method": "fgsm"}


def _row(name: str, latent: Triple, latent_x_xa: Triple, damage: Triple, damage_x_xa: Triple, fid: float) -> PaperRow:
    """A table 2/3 row in the appendix's column order: latent, latent x-x_a, max damage, max damage x-x_a, FID."""
    return PaperRow(name, latent, damage, fid, latent_x_xa=latent_x_xa, max_damage_x_xa=damage_x_xa)


TABLE2: dict[int, PaperRow] = {
    1: _row("K=1", (0.48, 0.62, 0.70), (0.99, 0.93, 0.86), (0.89, 0.73, 0.62), (0.98, 0.92, 0.86), 42.45),
    5: _row("K=5", (0.43, 0.53, 0.66), (0.98, 0.92, 0.83), (0.91, 0.76, 0.65), (0.98, 0.91, 0.82), 40.11),
    10: _row("K=10", (0.38, 0.47, 0.60), (0.95, 0.90, 0.80), (0.92, 0.82, 0.69), (0.98, 0.89, 0.78), 39.37),
    15: _row("K=15", (0.37, 0.45, 0.58), (0.95, 0.89, 0.80), (0.93, 0.82, 0.70), (0.97, 0.89, 0.77), 39.04),
    20: _row("K=20", (0.37, 0.45, 0.57), (0.94, 0.88, 0.79), (0.93, 0.83, 0.71), (0.97, 0.88, 0.78), 38.49),
    25: _row("K=25", (0.36, 0.43, 0.58), (0.94, 0.88, 0.78), (0.94, 0.83, 0.71), (0.97, 0.88, 0.77), 38.02),
}
TABLE3: dict[float, PaperRow] = {
    0.1: _row("alpha=0.1", (0.46, 0.56, 0.68), (0.98, 0.91, 0.84), (0.80, 0.59, 0.50), (0.98, 0.91, 0.80), 40.18),
    0.3: _row("alpha=0.3", (0.44, 0.55, 0.65), (0.97, 0.92, 0.82), (0.81, 0.65, 0.61), (0.97, 0.90, 0.80), 39.84),
    0.5: _row("alpha=0.5", (0.43, 0.53, 0.64), (0.97, 0.90, 0.82), (0.85, 0.75, 0.63), (0.98, 0.89, 0.80), 40.01),
    0.7: _row("alpha=0.7", (0.40, 0.49, 0.63), (0.96, 0.90, 0.81), (0.90, 0.79, 0.67), (0.98, 0.89, 0.79), 39.28),
    0.9: _row("alpha=0.9", (0.39, 0.48, 0.62), (0.95, 0.90, 0.80), (0.91, 0.81, 0.68), (0.98, 0.89, 0.78), 39.61),
    0.95: _row("alpha=0.95", (0.38, 0.47, 0.60), (0.95, 0.90, 0.80), (0.92, 0.82, 0.69), (0.98, 0.89, 0.78), 39.37),
    1.0: _row("alpha=1", (0.38, 0.47, 0.59), (0.95, 0.89, 0.80), (0.92, 0.83, 0.69), (0.97, 0.87, 0.78), 41.86),
}

# Appendix table 4, MNIST part (the appendix has FashionMNIST, SVHN and CelebA parts too). It has no
# unimodal or PGD row; "Ours" is the robust GMM AE of table 1.
TABLE4 = (
    DecoderRow("VAE", 0.94, (0.71, 0.42, 0.24), (0.66, 0.35, 0.31)),
    DecoderRow("beta-VAE", 0.93, (0.73, 0.48, 0.31), (0.64, 0.38, 0.35)),
    DecoderRow("beta-TCVAE", 0.93, (0.72, 0.47, 0.25), (0.64, 0.40, 0.38)),
    DecoderRow("LipschitzVAE", 0.85, (0.70, 0.46, 0.38), (0.66, 0.44, 0.39)),
    DecoderRow("SE", 0.91, (0.71, 0.53, 0.48), (0.69, 0.58, 0.50)),
    DecoderRow("AVAE", 0.92, (0.70, 0.55, 0.50), (0.71, 0.62, 0.59)),
    DecoderRow(OURS_NAME, 0.97, (0.89, 0.79, 0.55), (0.82, 0.70, 0.61)),
)

# FID of the robust GMM AE per dataset: (mean, error bar over 5 runs), section A.4.
FID_ERROR_BARS = {
    "mnist": (39.37, 0.9),
    "fashion-mnist": (64.89, 0.9),
    "svhn": (38.89, 1.2),
    "celeba": (51.98, 1.3),
}

SENSITIVITY_NOTE = (
    "Paper rows of tables 2 and 3: the appendix's tables 2 (A.5) and 3 (A.6). The paper finds robustness and "
    "FID improving with K from 1 to 25, robustness improving with alpha from 0.1 to 1.0 and FID worsening at "
    "alpha = 1; it recommends 0.9 <= alpha < 1."
)
