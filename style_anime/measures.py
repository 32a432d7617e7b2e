"""Measures of style and content that do not use the loss network, to check a style transfer independently.

The paper shows pictures only (Fig. 4.1.1). Its losses (eqs. 2–5) are what the optimiser lowers, so they
cannot tell whether the picture changed in a way a person would call style. These three can:

- ``colour_distance``: how far apart two images' colour histograms are;
- ``texture_distance``: how far apart their band-pass (Laplacian pyramid) statistics are, the texture
  statistics of D. Heeger and J. Bergen, "Pyramid-based texture analysis/synthesis" (SIGGRAPH 1995);
- ``edge_ssim``: how much of one image's edges the other keeps (SSIM of the Sobel magnitudes).

A transfer shows style when the result's colour and texture distances to the style image are smaller than
the content image's; it keeps content when its edge SSIM with the content image stays well above the style
image's. Images are float (1, 3, H, W) in [0, 1] of the same size.
"""
import torch
import torch.nn.functional as F

from common.metrics import ssim

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)


def colour_histogram(image, bins=8):
    """The joint RGB histogram: each pixel falls in one of bins³ cubes of colour; the fractions, (bins³,)."""
    q = (image[0].double().clamp(0, 1) * bins).long().clamp(max=bins - 1)           # 3 × H × W bin indices
    cube = (q[0] * bins + q[1]) * bins + q[2]
    counts = torch.bincount(cube.flatten(), minlength=bins ** 3).double()
    return counts / counts.sum()


def colour_distance(a, b, bins=8):
    """Total variation between the colour histograms: ½ Σ |h_a − h_b|, the fraction of pixels that would
    have to change colour cube to turn one histogram into the other (0: same colours, 1: none shared)."""
    return 0.5 * (colour_histogram(a, bins) - colour_histogram(b, bins)).abs().sum().item()


def luminance(image):
    """ITU-R BT.601 luma of (1, 3, H, W) → (1, 1, H, W), in float64."""
    r, g, b = image.double()[:, 0:1], image.double()[:, 1:2], image.double()[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def pyramid_bands(image, levels=4):
    """The band-pass levels of a Laplacian pyramid of the luminance: L_k = Y_k − upsample(Y_{k+1}),
    Y_{k+1} = 2×2 average of Y_k; level 0 holds the finest detail (edges, grain), level 3 blobs of ~16 px."""
    y, bands = luminance(image), []
    for _ in range(levels):
        low = F.avg_pool2d(y, 2)
        bands.append((y - F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)).flatten())
        y = low
    return bands


def texture_distance(a, b, levels=4):
    """Mean over pyramid levels of the 1-d Wasserstein distance between the two images' band coefficients:
    mean |sort(L_k(a)) − sort(L_k(b))| (equal sizes, so the sorted values pair up). Heeger and Bergen
    match exactly these histograms to synthesise a texture; 0 when the distributions are equal."""
    return sum((x.sort().values - y.sort().values).abs().mean().item()
               for x, y in zip(pyramid_bands(a, levels), pyramid_bands(b, levels))) / levels


def edge_magnitude(image):
    """Sobel gradient magnitude of the luminance, (1, 1, H − 2, W − 2)."""
    y = luminance(image)
    gx = F.conv2d(y, SOBEL_X.view(1, 1, 3, 3).to(y.device))
    gy = F.conv2d(y, SOBEL_X.T.reshape(1, 1, 3, 3).to(y.device))
    return (gx ** 2 + gy ** 2).sqrt()


def edge_ssim(a, b):
    """SSIM (Wang et al. 2004, ``common.metrics.ssim``) between the Sobel magnitudes of a and b, both divided
    by the larger maximum: 1 when b has a's edges, near 0 for unrelated images."""
    ea, eb = edge_magnitude(a), edge_magnitude(b)
    top = torch.maximum(ea.max(), eb.max()).clamp(min=1e-12)
    return ssim(ea / top * 2 - 1, eb / top * 2 - 1).item()                 # ssim takes [-1, 1]


def style_measures(content, style, result):
    """The three measures for one transfer: the result against the style image, beside the content image
    against the style image (the distances to beat), and the edges the result keeps of the content."""
    return dict(colour_content=colour_distance(content, style), colour_result=colour_distance(result, style),
                texture_content=texture_distance(content, style), texture_result=texture_distance(result, style),
                edge_ssim_result=edge_ssim(result, content), edge_ssim_style=edge_ssim(style, content))
