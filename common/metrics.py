"""Image-set and image-pair metrics.

- FID: ``fid`` / ``fid_from_features`` = Fréchet distance between Gaussians fitted
  to the features of two image sets (Heusel et al. 2017). The number depends on
  the feature extractor: always report it together with ``extractor.name``.
- Diversity (thesis eq. 3.8): mean pairwise perceptual distance between the M
  outputs of each source, averaged over sources.
- PSNR and SSIM per image pair, for super-resolution.
- Sharpness: mean absolute Laplacian of the luminance (edges count, and so does noise).
- Feature outliers: per image, the Mahalanobis distance of its features to the Gaussian
  that FID fits to real images, to find the generated images least like real ones.
- Face-detection rate (dcgan_celeba Table 1) with dlib's frontal face detector.

Images are uint8 (N, C, H, W) in [0, 255] or float in [-1, 1]; uint8 is
converted with ``common.data.to_float``. Extractors and distances follow the
interfaces described in ``common.features``.
"""
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.linalg import LinAlgWarning, sqrtm

from common import distributed
from common.data import to_float, to_uint8


def _as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]; float images are returned unchanged."""
    return to_float(images) if images.dtype == torch.uint8 else images


def _device_of(module) -> torch.device:
    """Device of a module's first parameter (CPU for objects without parameters)."""
    params = list(module.parameters()) if isinstance(module, torch.nn.Module) else []
    return params[0].device if params else torch.device("cpu")


# ----------------------------------------------------------------------------- FID

def activation_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (N, D) features, in float64:

        mu = 1/N sum_i f_i,    sigma = 1/(N-1) sum_i (f_i - mu)(f_i - mu)^T
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"Activation statistics need at least 2 feature vectors of shape (N, D), "
                         f"got an array of shape {features.shape}.")
    if not np.isfinite(features).all():
        raise ValueError("The features contain NaN or inf; were the images finite?")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm_or_none(matrix: np.ndarray):
    """scipy's matrix square root, or None when scipy finds `matrix` singular or the result not finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinAlgWarning)  # scipy >= 1.16 warns "Matrix is singular"
        try:
            root = sqrtm(matrix)
        except LinAlgWarning:
            return None
    return root if np.isfinite(root).all() else None


_SAID = set()


def _say_once(text: str) -> None:
    """Print ``text`` the first time only (and under torchrun in rank 0 only), so a note shown at every
    FID is read once."""
    if text not in _SAID and distributed.rank() == 0:
        _SAID.add(text)
        print(text)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):

        d² = ||mu1 − mu2||² + Tr(sigma1 + sigma2 − 2·(sigma1·sigma2)^(1/2))
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"The two sets of statistics have different dimensions "
                         f"({mu1.shape[0]} and {mu2.shape[0]}); were they made with the same extractor?")
    covmean = _sqrtm_or_none(sigma1 @ sigma2)
    if covmean is None:
        # As in pytorch-fid: the product is singular (e.g. fewer images than feature
        # dimensions, or a constant feature), so add eps·I to both covariances and retry.
        _say_once(f"note: FID added {eps:g} to the diagonal of both covariances, as pytorch-fid does, because "
                  f"their product was singular (fewer images than feature dimensions, or a feature that never "
                  f"changes, as in a collapsed generator's outputs); said once.")
        offset = eps * np.eye(sigma1.shape[0])
        covmean = sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding gives a tiny imaginary part; a large one means the matrices are not covariances.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"The square root of the covariance product has a significant imaginary part "
                             f"(max {np.abs(covmean.imag).max():.3g}); are both matrices covariances?")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def extract_features(images: torch.Tensor, extractor, batch_size: int = 100, device=None) -> torch.Tensor:
    """(N, C, H, W) uint8 or float [-1, 1] images -> (N, D) float64 CPU features, in batches, no grad.

    `device` defaults to the extractor's device; otherwise the extractor is moved there.
    """
    if device is None:
        device = _device_of(extractor)
    else:
        extractor.to(device)
    features = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = _as_float(images[start:start + batch_size].to(device))
            features.append(extractor(batch).double().cpu())
    return torch.cat(features)


def fid_from_features(features_a, features_b) -> float:
    """FID between two (N, D) feature sets: Fréchet distance of their Gaussian fits."""
    return frechet_distance(*activation_statistics(features_a), *activation_statistics(features_b))


def fid(images_a: torch.Tensor, images_b: torch.Tensor, extractor, batch_size: int = 100, device=None) -> float:
    """FID between two image sets on the features of `extractor` (report it with `extractor.name`)."""
    if len(images_a) < 2 or len(images_b) < 2:
        raise ValueError(f"FID needs at least 2 images in each set, got {len(images_a)} and {len(images_b)}.")
    return fid_from_features(extract_features(images_a, extractor, batch_size, device),
                             extract_features(images_b, extractor, batch_size, device))


class FidReference:
    """Real images to measure generated sets against, their features computed once:
    ``FidReference(real, extractor)(fake)`` gives ``{"fid": …, "diversity": …, "diversity_px": …}``
    (``sample_diversity`` on the extractor's features and on the images' ``colour_layout``).
    Training loops measure at every FID step against the same held-out faces (name the extractor)."""

    def __init__(self, real: torch.Tensor, extractor, batch_size: int = 100):
        if len(real) < 2:
            raise ValueError(f"FID needs at least 2 real images, got {len(real)}.")
        self.extractor, self.batch_size = extractor, batch_size
        features = extract_features(real, extractor, batch_size)
        self.statistics, self.spread = activation_statistics(features), mean_pairwise_distance(features)
        self.pixel_spread = mean_pairwise_distance(colour_layout(real))

    def __call__(self, fake: torch.Tensor) -> dict:
        if len(fake) < 2:
            raise ValueError(f"FID needs at least 2 generated images, got {len(fake)}.")
        features = extract_features(fake, self.extractor, self.batch_size)
        return {"fid": frechet_distance(*activation_statistics(features), *self.statistics),
                "diversity": mean_pairwise_distance(features) / self.spread,
                "diversity_px": mean_pairwise_distance(colour_layout(fake)) / self.pixel_spread}


def mahalanobis_distances(features, reference_features, ridge: float = 1e-3) -> torch.Tensor:
    """Per image, how far its features lie from the Gaussian that FID fits to reference (real) features:

        d_i = sqrt((f_i − mu)^T (sigma + ridge·I)^(-1) (f_i − mu)),   mu, sigma = activation_statistics(ref)

    The ridge keeps sigma invertible when there are fewer images than feature dimensions.
    FID judges a whole set; this picks out the single images that least look like real ones."""
    mu, sigma = activation_statistics(reference_features)
    f = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, float)
    centred = f - mu
    solved = np.linalg.solve(sigma + ridge * np.eye(len(mu)), centred.T).T
    return torch.from_numpy(np.sqrt((centred * solved).sum(axis=1)))


# ----------------------------------------------------------------------------- diversity

def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance ||f_i − f_j|| over all pairs i ≠ j of an (N, D) feature set."""
    n = len(features)
    if n < 2:
        raise ValueError(f"a pairwise distance needs at least 2 feature vectors, got {n}.")
    return (torch.cdist(features, features).sum() / (n * (n - 1))).item()


def colour_layout(images: torch.Tensor, size: int = 8) -> torch.Tensor:
    """(N, C, H, W) images -> (N, C·size·size): each image averaged down to ``size``×``size`` pixels (area
    averaging), in [-1, 1]. What a glance at a sample grid sees -- background, hair, skin, their places --
    without texture or noise: sixteen heads on one background have nearly the same layout, whatever
    their faces, so its ``sample_diversity`` (``diversity_px`` in log.csv) sees the collapse of the
    background that a face-feature diversity misses."""
    images = _as_float(images).float()
    return F.interpolate(images, size=(size, size), mode="area").flatten(1)


def sample_diversity(fake_features: torch.Tensor, real_features: torch.Tensor) -> float:
    """Collapse as a number: the mean pairwise feature distance of generated samples divided by
    that of real faces. 1 = as diverse as real faces; 0 = one image repeated (mode collapse)."""
    return mean_pairwise_distance(fake_features) / mean_pairwise_distance(real_features)


def diversity(outputs: torch.Tensor, distance, batch_size: int = 64, device=None) -> float:
    """Diversity of M outputs per source (thesis eq. 3.8, after StarGAN v2):

        L_i = 1/C(M,2) · sum_{s<t} d(x_s^(i), x_t^(i)),        L = 1/N · sum_i L_i

    outputs: (N sources, M outputs, C, H, W), uint8 or float [-1, 1];
    `distance` (e.g. LPIPS) is evaluated on `batch_size` pairs at a time, no grad.
    """
    n_sources, m = outputs.shape[:2]
    if m < 2:
        raise ValueError(f"Diversity needs at least 2 outputs per source, got outputs of shape {tuple(outputs.shape)}.")
    if device is None:
        device = _device_of(distance)
    else:
        distance.to(device)
    s, t = torch.triu_indices(m, m, offset=1)                # all C(M,2) pairs s < t
    source = torch.arange(n_sources).repeat_interleave(len(s))  # pair k belongs to source k // C(M,2)
    s, t = s.repeat(n_sources), t.repeat(n_sources)
    d = []
    with torch.no_grad():
        for k in range(0, len(source), batch_size):
            i, a, b = source[k:k + batch_size], s[k:k + batch_size], t[k:k + batch_size]
            d.append(distance(_as_float(outputs[i, a].to(device)), _as_float(outputs[i, b].to(device))).cpu())
    per_source = torch.cat(d).double().view(n_sources, -1).mean(dim=1)  # L_i
    return per_source.mean().item()                                     # L


# ----------------------------------------------------------------------------- sharpness

LAPLACIAN = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Per-image mean |Laplacian| of the luminance (ITU-R BT.601 weights), on [-1, 1] images: (B,).

    High-frequency detail: 0 for a flat or linear image; blur lowers it, edges and noise raise it.
    Compare it with the same number for real images of the same size.
    """
    x = _as_float(images).double()
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1) if x.shape[1] == 3 else x
    return F.conv2d(luma, LAPLACIAN.double().view(1, 1, 3, 3)).abs().flatten(1).mean(dim=1)


# ----------------------------------------------------------------------------- PSNR / SSIM

def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image PSNR in dB: 10·log10(data_range² / MSE(a, b)); (B,), inf for identical images.

    data_range = 2 for float images in [-1, 1] (uint8 inputs are converted to that first).
    """
    a, b = _as_float(a).double(), _as_float(b).double()
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-d Gaussian of `size` taps."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0, batch: int = 16) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004), (B,):

        SSIM = mean over pixels and channels of
               (2·mu_a·mu_b + C1)(2·sigma_ab + C2) / ((mu_a² + mu_b² + C1)(sigma_a² + sigma_b² + C2)),
        C1 = (0.01·L)², C2 = (0.03·L)², L = data_range (2 for [-1, 1]),

    with local means / (biased) variances / covariance under an 11×11 Gaussian window,
    sigma 1.5, per channel, 'valid' positions only. This is skimage's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    The window is applied as its two 1-d factors (11×1, then 1×11: the same sums to float64 rounding),
    ``batch`` images at a time: float64 depthwise convolutions on a CPU allocate buffers that grow
    with the batch, and 500 faces at 64 px took 15 s in one 11×11 call, 0.4 s this way.
    """
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11×11 pixels, got {tuple(a.shape[-2:])}.")
    if len(a) > batch:
        return torch.cat([ssim(x, y, data_range, batch) for x, y in zip(a.split(batch), b.split(batch))])
    a, b = _as_float(a).double(), _as_float(b).double()
    channels = a.shape[1]
    w = _gaussian_window().to(a.device)
    rows, cols = w.view(1, 1, 11, 1).expand(channels, 1, 11, 1), w.view(1, 1, 1, 11).expand(channels, 1, 1, 11)

    def local_mean(x):
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)  # 'valid' convolution

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a ** 2
    var_b = local_mean(b * b) - mu_b ** 2
    cov_ab = local_mean(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(dim=1)


# ----------------------------------------------------------------------------- face detection

class MetricUnavailable(RuntimeError):
    """An optional metric's dependency is not installed."""


def detect_faces(images: torch.Tensor, upsample_to: int = 256, threads=None) -> torch.Tensor:
    """Whether dlib's frontal (HOG) face detector finds at least one face, per image: bool (N,).

    images: (N, 1 or 3, H, W), uint8 or float [-1, 1]. Each image is resized (PIL bicubic)
    so its shorter side is `upsample_to` px, because the detector only finds faces of
    about 80 px and more; the detector runs without its own upsampling.
    `threads` (default: torch's thread count) detectors work on parts of the images at once (dlib
    releases the GIL; one detector per thread, as dlib does not allow sharing one): the answer is the same.
    """
    try:
        import dlib
    except ImportError:
        raise MetricUnavailable("face-detection rate needs dlib: pip install dlib-bin") from None
    images = images if images.dtype == torch.uint8 else to_uint8(images)
    images = images.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, 3) uint8

    def detect(part):
        detector = dlib.get_frontal_face_detector()
        found = []
        for image in part:
            h, w = image.shape[:2]
            scale = upsample_to / min(h, w)
            image = Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BICUBIC)
            found.append(len(detector(np.asarray(image), 0)) > 0)
        return found

    threads = max(1, min(threads or torch.get_num_threads(), len(images)))
    with ThreadPoolExecutor(threads) as pool:
        found = [f for part in pool.map(detect, np.array_split(images, threads)) for f in part]
    return torch.tensor(found, dtype=torch.bool)


def face_detection_rate(images: torch.Tensor, upsample_to: int = 256) -> float:
    """Fraction of images in which dlib's frontal face detector finds a face (dcgan_celeba Table 1)."""
    return detect_faces(images, upsample_to).float().mean().item()
