"""Evaluation metrics on numpy arrays: PSNR, L1, SSIM (optionally masked), FID/KID from features, an OpenCV
inpainting baseline, and the feature extractors for FID/KID.

Conventions
  * Images are numpy [N, H, W, C] (C = 3 for RGB; any C works for the pixel metrics), uint8 in [0, 255] or float.
    `data_range` is the span of the pixel values: 255 for uint8 (the default for uint8 inputs), 2.0 for float
    images in [-1, 1], 1.0 for [0, 1]. Float inputs must pass it (it cannot be guessed). Both images of a pair must
    use the same convention; everything is computed in float64.
  * Masks are [N, H, W, 1] (or [N, H, W]) weights in [0, 1], broadcast over channels: 1 selects a pixel. Use the hole
    mask (1 = hole) to score completion inside the hole, and `1 - attention` to score how well an edit preserves
    what lies outside the attention mask. Soft weights give weighted averages. An image whose mask is all zero
    gets NaN.
  * Per-image metrics return float64 [N].

FID and KID are computed from features [N, D] of any extractor. Reports must say which: `InceptionFeatures` gives
"FID (InceptionV3)", comparable to published numbers only with the standard InceptionV3 weights and enough samples
(>= 10k); `ClassifierFeatures` gives "FID* (classifier features, ...)", comparable only between runs judged by the
same classifier. Each extractor has a `feature_label` and `label(metric)` for that purpose.
"""

from pathlib import Path

import cv2
import numpy as np

from tf_faceedit.errors import ConfigError
from tf_faceedit.images import ensure_float

# ---------------------------------------------------------------------------------------------------------------
# Pixel metrics


def _pair(a, b, data_range):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {a.shape}")
    if data_range is None:
        if a.dtype == np.uint8 and b.dtype == np.uint8:
            data_range = 255.0
        else:
            raise ValueError(
                "data_range is required for float images: 2.0 for [-1, 1], 1.0 for [0, 1], 255 for [0, 255]"
            )
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    return a.astype(np.float64), b.astype(np.float64), float(data_range)


def _weights(mask, shape):
    """Mask [N, H, W(, 1 or C)] -> float64 weights broadcastable to `shape` [N, H, W, C]."""
    w = np.asarray(mask, dtype=np.float64)
    if w.ndim == 3:
        w = w[..., None]
    if w.ndim != 4 or w.shape[:3] != tuple(shape[:3]) or w.shape[3] not in (1, shape[3]):
        raise ValueError(f"mask must be [N, H, W, 1] matching images {tuple(shape)}, got {w.shape}")
    if w.min(initial=0.0) < 0 or w.max(initial=0.0) > 1:
        raise ValueError("mask values must lie in [0, 1]")
    return np.broadcast_to(w, shape)


def _weighted_mean(values, mask):
    """Per-image mean of values [N, H, W, C], weighted by the mask (NaN for an all-zero mask)."""
    if mask is None:
        return values.reshape(len(values), -1).mean(axis=1)
    w = _weights(mask, values.shape)
    total = w.reshape(len(values), -1).sum(axis=1)
    weighted = (w * values).reshape(len(values), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted / np.where(total > 0, total, 1.0), np.nan)


def mse(a, b, data_range=None, mask=None):
    """Mean squared error per image [N], in squared pixel units of the inputs (mask: see the module docstring)."""
    a, b, _ = _pair(a, b, data_range)
    return _weighted_mean((a - b) ** 2, mask)


def psnr(a, b, data_range=None, mask=None):
    """Peak signal-to-noise ratio per image [N], in dB: 10 log10(data_range^2 / MSE).

    Args:
      a, b: [N, H, W, C] images (uint8, or float with `data_range`).
      data_range: 255 (uint8 default), 2.0 for [-1, 1], 1.0 for [0, 1].
      mask: optional [N, H, W, 1] weights in [0, 1]; the MSE averages the selected pixels (all channels).
    Returns: float64 [N]; +inf for identical images, NaN for an empty mask.
    """
    a, b, data_range = _pair(a, b, data_range)
    err = _weighted_mean((a - b) ** 2, mask)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / err)


def l1(a, b, mask=None):
    """Mean absolute error per image [N], in the pixel units of the inputs (0..255 for uint8, 0..2 for [-1, 1]:
    divide by the data range to compare conventions). mask: optional [N, H, W, 1] weights in [0, 1]."""
    a, b, _ = _pair(a, b, 1.0)
    return _weighted_mean(np.abs(a - b), mask)


def colour_shift(a, b, sigma=None, mask=None):
    """The low-frequency colour change from a to b per image [N], in the inputs' units (0..255 for uint8): the mean
    absolute Gaussian blur (`sigma` pixels, default a tenth of the width: a tint across the face at the aligned
    crop sizes) of the chroma of b - a (each channel's difference from the pixel's mean over channels). A smile's
    change (teeth, lips: a few pixels of opposite signs) mostly averages out; a cast over the face does not, nor
    does a change of brightness count. mask: optional [N, H, W, 1] weights of the pixels averaged."""
    a, b, _ = _pair(a, b, 1.0)
    change = b - a
    chroma = change - change.mean(axis=-1, keepdims=True)
    sigma = float(sigma or a.shape[2] / 10.0)
    low = np.stack([cv2.GaussianBlur(c, (0, 0), sigma).reshape(c.shape) for c in chroma])
    return _weighted_mean(np.abs(low), mask)


# ---------------------------------------------------------------------------------------------------------------
# SSIM

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """1-D normalized Gaussian of `size` taps (the 2-D SSIM window is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x, g):
    """Separable 'valid' correlation of x [N, H, W, C] with the 1-D window g along H then W."""
    k = len(g)
    x = np.lib.stride_tricks.sliding_window_view(x, k, axis=1) @ g  # [N, H-k+1, W, C]
    return np.lib.stride_tricks.sliding_window_view(x, k, axis=2) @ g  # [N, H-k+1, W-k+1, C]


def ssim_map(a, b, data_range=None, window=SSIM_WINDOW, sigma=SSIM_SIGMA, k1=SSIM_K1, k2=SSIM_K2):
    """The SSIM map of Wang et al. 2004 per channel, over VALID windows: [N, H - window + 1, W - window + 1, C].

    Local statistics are Gaussian-weighted (11x11, sigma 1.5) means, variances E[x^2] - mu^2 and covariance
    E[xy] - mu_x mu_y; C1 = (k1 L)^2, C2 = (k2 L)^2 with L = data_range. Entry (i, j) is the SSIM of the window whose
    top-left pixel is (i, j), i.e. centred on pixel (i + window // 2, j + window // 2).
    """
    a, b, data_range = _pair(a, b, data_range)
    if min(a.shape[1:3]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window}, got {a.shape[1]}x{a.shape[2]}")
    g = gaussian_window(window, sigma)
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim(a, b, data_range=None, mask=None):
    """Structural similarity per image [N] (Wang et al., "Image Quality Assessment: From Error Visibility to
    Structural Similarity", IEEE TIP 2004): 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, computed per
    channel over valid windows and averaged over windows and channels. Images must be at least 11x11.

    Masked variant: with `mask` [N, H, W, 1] in [0, 1], the SSIM map is averaged with weights = the mask value at
    each window's CENTRE pixel (the map only covers valid windows, so pixels within 5 of the border never centre a
    window and count only through their neighbours' windows). NaN when no window centre is selected.
    """
    smap = ssim_map(a, b, data_range)
    if mask is None:
        return smap.reshape(len(smap), -1).mean(axis=1)
    h = SSIM_WINDOW // 2
    w = _weights(mask, np.shape(a)[:3] + (1,))[:, h : h + smap.shape[1], h : h + smap.shape[2], :]
    return _weighted_mean(smap, np.broadcast_to(w, smap.shape[:3] + (1,)))


def masked_ssim(a, b, mask, data_range=None):
    """`ssim(a, b, data_range, mask)`: the SSIM map averaged over the windows centred in the mask."""
    return ssim(a, b, data_range=data_range, mask=mask)


# ---------------------------------------------------------------------------------------------------------------
# FID / KID from features


def _features(f, name):
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"{name} must be [N, D] features with N >= 2, got shape {f.shape}")
    return f


def _sqrt_psd(matrix):
    """Symmetric square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, cov1, mu2, cov2):
    """||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^(1/2)), with tr((C1 C2)^(1/2)) computed as
    tr((sqrt(C1) C2 sqrt(C1))^(1/2)) (same eigenvalues; symmetric, so `np.linalg.eigh` suffices, no scipy)."""
    root1 = _sqrt_psd(np.asarray(cov1, np.float64))
    middle = root1 @ np.asarray(cov2, np.float64) @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def fid_from_features(f1, f2):
    """Fréchet distance between Gaussians fitted to features f1 [N1, D] and f2 [N2, D] (Heusel et al., 2017):
    sample means and unbiased covariances (ddof 1). Returns a float >= 0."""
    f1, f2 = _features(f1, "f1"), _features(f2, "f2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sizes differ: {f1.shape[1]} and {f2.shape[1]}")
    return frechet_distance(
        f1.mean(0),
        np.cov(f1, rowvar=False, ddof=1).reshape(f1.shape[1], -1),
        f2.mean(0),
        np.cov(f2, rowvar=False, ddof=1).reshape(f2.shape[1], -1),
    )


def polynomial_kernel(x, y):
    """k(x, y) = (x . y / d + 1)^3 for rows of x [n, d] and y [m, d] -> [n, m] (the KID kernel)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    """Unbiased MMD^2 with the polynomial kernel: mean of k(x_i, x_j) over i != j, plus the same for y, minus twice
    the mean of k(x_i, y_j) over all pairs (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018)."""
    n, m = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2.0 * kxy.mean()
    )


def kid_from_features(f1, f2, subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance: unbiased MMD^2 (polynomial kernel) averaged over random subsets.

    Each of `subsets` rounds draws min(subset_size, N1, N2) rows of each set without replacement (numpy Generator
    seeded with `seed`). Returns (mean, std) over the subsets, floats; the mean may be slightly negative (unbiased).
    """
    f1, f2 = _features(f1, "f1"), _features(f2, "f2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sizes differ: {f1.shape[1]} and {f2.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(int(subset_size), len(f1), len(f2))
    if m < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(f1[rng.choice(len(f1), m, replace=False)], f2[rng.choice(len(f2), m, replace=False)])
        for _ in range(int(subsets))
    ]
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------------------------
# Inpainting baseline


INPAINT_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def inpaint_baseline(images, masks, method="telea", radius=3):
    """Classical inpainting baseline for completion (OpenCV `cv2.inpaint`).

    Args:
      images: uint8 [N, H, W, 3] (channel order is kept as given: inpainting treats channels alike).
      masks: [N, H, W, 1] or [N, H, W]; nonzero = hole.
      method: "telea" (Telea 2004, fast marching) or "ns" (Navier-Stokes, Bertalmio et al. 2001).
      radius: inpainting neighbourhood radius in pixels.
    Returns:
      uint8 [N, H, W, 3]: the holes filled; pixels outside the holes are exactly the input.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    if method not in INPAINT_METHODS:
        raise ValueError(f"method must be one of {', '.join(INPAINT_METHODS)}, got {method!r}")
    masks = np.asarray(masks)
    if masks.ndim == 4:
        masks = masks[..., 0]
    if masks.shape != images.shape[:3]:
        raise ValueError(f"masks must be [N, H, W, 1] matching images {images.shape}, got {np.shape(masks)}")
    out = np.empty_like(images)
    for i, (image, mask) in enumerate(zip(images, masks)):
        hole = (mask != 0).astype(np.uint8)
        filled = cv2.inpaint(np.ascontiguousarray(image), hole, float(radius), INPAINT_METHODS[method])
        out[i] = np.where(hole[..., None].astype(bool), filled, image)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Feature extractors


def _batched(fn, images, batch_size):
    return np.concatenate([np.asarray(fn(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])


class InceptionFeatures:
    """2048-d pool features of InceptionV3 (Szegedy et al., 2016) for FID/KID.

    `keras.applications.InceptionV3(include_top=False, pooling="avg")` with weights read from `weights_path` (a
    no-top ImageNet weights file, e.g. `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`, fetched on a
    connected machine: nothing is downloaded here). Images are resized (bilinear) to `input_size` and mapped with
    `inception_v3.preprocess_input`.

    Args:
      weights_path: path of the weights file (flag `--inception_weights`).
      input_size: side fed to the network (299 for FID; >= 75 works, for tests only).
      batch_size: images per forward pass.
      random_weights: build with random weights instead (tests only; the label then says so).
    Call: `extractor(images)` with uint8 [N, H, W, 3] or float [N, H, W, 3] in [-1, 1] -> float64 [N, 2048].
    """

    def __init__(self, weights_path=None, input_size=299, batch_size=32, random_weights=False):
        import keras

        if not random_weights:
            path = Path(weights_path).expanduser() if weights_path else None
            if path is None or not path.is_file():
                raise ConfigError(
                    f"InceptionV3 weights not found: {weights_path or '(none given)'} (--inception_weights). They "
                    "cannot be downloaded here: on a connected machine, save "
                    "keras.applications.InceptionV3(include_top=False, weights='imagenet') with save_weights(...) "
                    "and pass that file, or score with classifier features (FID*)"
                )
            weights_path = str(path)
        self.input_size, self.batch_size = int(input_size), int(batch_size)
        self.model = keras.applications.InceptionV3(
            include_top=False,
            pooling="avg",
            weights=None if random_weights else weights_path,
            input_shape=(self.input_size, self.input_size, 3),
        )
        self._preprocess = keras.applications.inception_v3.preprocess_input
        self.feature_label = (
            "FID (InceptionV3)" if not random_weights else "FID (InceptionV3, RANDOM weights: not a real FID)"
        )
        self.name = "InceptionV3" + ("" if not random_weights else " (random weights)")

    def label(self, metric="FID"):
        """e.g. label("KID") -> "KID (InceptionV3)"."""
        return self.feature_label.replace("FID", metric, 1)

    def _forward(self, batch):
        import keras

        x = keras.ops.image.resize(batch, (self.input_size, self.input_size), interpolation="bilinear")
        x = self._preprocess((x + 1.0) * 127.5)  # [-1, 1] -> [0, 255] -> InceptionV3's own [-1, 1] scaling
        return keras.ops.convert_to_numpy(self.model(x, training=False))

    def __call__(self, images):
        return _batched(self._forward, ensure_float(images), self.batch_size).astype(np.float64)


class ClassifierFeatures:
    """Penultimate features of the attribute classifier, for FID*/KID* (not comparable to published FID).

    Args:
      classifier_model: the object of `tf_faceedit.eval.classifier.load_classifier` (anything with
        `.features(images)`), or the `attribute_classifier` keras.Model itself (output "features").
      batch_size: images per forward pass (keras.Model only).
    Call: `extractor(images)` with uint8 or float [-1, 1] images [N, H, W, 3] -> float64 [N, F].
    """

    def __init__(self, classifier_model, batch_size=64):
        self.classifier = classifier_model
        self.batch_size = int(batch_size)
        self.feature_label = "FID* (classifier features, not comparable to published FID)"
        self.name = "attribute classifier"

    def label(self, metric="FID"):
        """e.g. label("KID") -> "KID* (classifier features, not comparable to published KID)"."""
        return self.feature_label.replace("FID", metric)

    def __call__(self, images):
        images = ensure_float(images)
        if hasattr(self.classifier, "features") and callable(self.classifier.features):
            return np.asarray(self.classifier.features(images), dtype=np.float64)
        import keras

        def forward(batch):
            return keras.ops.convert_to_numpy(self.classifier(batch, training=False)["features"])

        return _batched(forward, images, self.batch_size).astype(np.float64)


__all__ = [
    "ClassifierFeatures",
    "InceptionFeatures",
    "fid_from_features",
    "frechet_distance",
    "gaussian_window",
    "inpaint_baseline",
    "kid_from_features",
    "l1",
    "masked_ssim",
    "mmd2_unbiased",
    "mse",
    "polynomial_kernel",
    "psnr",
    "ssim",
    "ssim_map",
]
