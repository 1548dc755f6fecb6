import itertools
import math

import numpy as np
import pytest

from tf_faceedit.errors import ConfigError
from tf_faceedit.eval import metrics


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- PSNR / L1 ------------------------------------------------------------------------------------------------------


def test_psnr_golden_values_and_conventions():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    b = a.copy()
    b[0] = 10  # MSE 100
    b[1, :4] = 20  # MSE 400 on half the pixels -> 200
    expected = [10 * math.log10(255**2 / 100), 10 * math.log10(255**2 / 200)]
    np.testing.assert_allclose(metrics.psnr(a, b), expected, rtol=1e-12)
    # the same images in [-1, 1] with data_range 2 give the same PSNR
    fa, fb = a / 127.5 - 1.0, b / 127.5 - 1.0
    np.testing.assert_allclose(metrics.psnr(fa, fb, data_range=2.0), expected, rtol=1e-12)
    assert metrics.psnr(a, a)[0] == np.inf
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(fa, fb)


def test_masked_psnr_and_l1_average_only_the_selected_pixels():
    a = np.full((1, 8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, :, :4] = 110  # error 10 on the left half only
    hole = np.zeros((1, 8, 8, 1), np.float32)
    hole[0, :, :4] = 1
    np.testing.assert_allclose(metrics.psnr(a, b, mask=hole), [10 * math.log10(255**2 / 100)])
    assert metrics.psnr(a, b, mask=1 - hole)[0] == np.inf  # outside: untouched
    np.testing.assert_allclose(metrics.l1(a, b, mask=hole), [10.0])
    np.testing.assert_allclose(metrics.l1(a, b), [5.0])
    np.testing.assert_allclose(metrics.l1(a / 127.5 - 1, b / 127.5 - 1, mask=hole), [10 / 127.5])
    # soft weights (e.g. 1 - attention) give a weighted mean; an empty mask gives NaN
    soft = np.full((1, 8, 8, 1), 0.25)
    soft[0, :, :4] = 0.75
    np.testing.assert_allclose(metrics.l1(a, b, mask=soft), [(0.75 * 10) / (0.75 + 0.25)])
    assert np.isnan(metrics.l1(a, b, mask=np.zeros_like(hole))[0])
    with pytest.raises(ValueError, match="mask"):
        metrics.l1(a, b, mask=np.ones((1, 4, 4, 1)))


# -- SSIM -------------------------------------------------------------------------------------------------------------


def _ssim_direct(x, y, data_range):
    """Reference: explicit loop over every valid window and channel with the 2-D Gaussian weights."""
    g = metrics.gaussian_window()
    w = np.outer(g, g)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for c in range(x.shape[-1]):
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i : i + 11, j : j + 11, c], y[i : i + 11, j : j + 11, c]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return np.mean(values)


def test_colour_shift_counts_a_tint_not_brightness_nor_a_small_spot():
    a = np.full((4, 40, 40, 3), 100, np.uint8)
    b = a.copy()
    b[0, ..., 0] += 10  # a red tint: chroma (+20/3, -10/3, -10/3)
    b[1] += 30  # brighter: no chroma
    b[2, 19:21, 19:21] = [200, 60, 60]  # a 2x2 red spot (lips), far smaller than the blur
    shift = metrics.colour_shift(a, b)
    np.testing.assert_allclose(shift[[0, 1, 3]], [40 / 9, 0.0, 0.0], atol=1e-9)
    assert 0 < shift[2] < 0.2
    # the mask chooses the pixels averaged: the tint of one half only
    half = b.copy()
    half[0, :, 20:] = a[0, :, 20:]
    mask = np.zeros((4, 40, 40, 1))
    mask[:, :, :10] = 1
    assert metrics.colour_shift(a, half, sigma=2.0, mask=mask)[0] == pytest.approx(40 / 9, abs=1e-6)


def test_ssim_window():
    g = metrics.gaussian_window()
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0)
    assert g[5] / g[0] == pytest.approx(math.exp(25 / (2 * 1.5**2)))


def test_ssim_of_constant_images_has_the_closed_form():
    # constant windows: variances and covariance vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a = np.full((1, 16, 16, 3), 100, np.uint8)
    b = np.full((1, 16, 16, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    np.testing.assert_allclose(metrics.ssim(a, b), [(2 * 100 * 150 + c1) / (100**2 + 150**2 + c1)], rtol=1e-12)


def test_ssim_matches_a_direct_per_window_reference():
    rng = _rng(1)
    x = rng.uniform(-1, 1, (2, 14, 13, 3))
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1)
    expected = [_ssim_direct(x[i], y[i], 2.0) for i in range(2)]
    np.testing.assert_allclose(metrics.ssim(x, y, data_range=2.0), expected, rtol=1e-10)
    # a single 11x11 image = one window: the global Gaussian-weighted statistics
    np.testing.assert_allclose(
        metrics.ssim(x[:1, :11, :11], y[:1, :11, :11], data_range=2.0),
        [_ssim_direct(x[0, :11, :11], y[0, :11, :11], 2.0)],
        rtol=1e-10,
    )
    assert metrics.ssim_map(x, y, data_range=2.0).shape == (2, 4, 3, 3)


def test_ssim_properties():
    rng = _rng(2)
    x = rng.integers(0, 256, (3, 24, 24, 3)).astype(np.uint8)
    x = np.repeat(np.repeat(x[:, ::4, ::4], 4, axis=1), 4, axis=2)  # some structure
    low = np.clip(x + rng.normal(0, 10, x.shape), 0, 255).astype(np.uint8)
    high = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(metrics.ssim(x, x), 1.0, rtol=1e-12)
    np.testing.assert_allclose(metrics.ssim(x, low), metrics.ssim(low, x), rtol=1e-12)
    assert np.all(metrics.ssim(x, high) < metrics.ssim(x, low)) and np.all(metrics.ssim(x, low) < 1)
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(x[:, :8, :8], x[:, :8, :8])


def test_masked_ssim_averages_the_map_over_window_centres():
    rng = _rng(3)
    x = rng.uniform(0, 1, (1, 32, 32, 3))
    y = x.copy()
    y[:, :, 16:] = rng.uniform(0, 1, (1, 32, 16, 3))  # right half differs
    smap = metrics.ssim_map(x, y, data_range=1.0)  # [1, 22, 22, 3]: window centres 5..26
    left = np.zeros((1, 32, 32, 1))
    left[:, :, :8] = 1  # centres 5..7 -> windows spanning columns 0..12: identical
    np.testing.assert_allclose(metrics.ssim(x, y, 1.0, mask=left), [1.0], rtol=1e-12)
    ones = np.ones((1, 32, 32, 1))
    np.testing.assert_allclose(metrics.ssim(x, y, 1.0, mask=ones), metrics.ssim(x, y, 1.0), rtol=1e-12)
    right = np.zeros((1, 32, 32, 1))
    right[:, :, 24:] = 1  # centres 24..26 -> map columns 19..21
    np.testing.assert_allclose(metrics.ssim(x, y, 1.0, mask=right), [smap[:, :, 19:22].mean()], rtol=1e-12)
    np.testing.assert_allclose(metrics.masked_ssim(x, y, right, data_range=1.0), [smap[:, :, 19:22].mean()])
    border = np.zeros((1, 32, 32, 1))
    border[:, :3] = 1  # no window centre in the first 5 rows
    assert np.isnan(metrics.ssim(x, y, 1.0, mask=border)[0])


# -- FID / KID --------------------------------------------------------------------------------------------------------


def _factorial_features(sigmas, mean):
    """2^D rows of +-1 (orthogonal, zero-mean columns) scaled so the unbiased sample variances are sigmas^2."""
    d = len(sigmas)
    x = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    n = len(x)
    return x * np.sqrt((n - 1) / n) * np.asarray(sigmas) + np.asarray(mean)


def test_fid_of_identical_sets_is_zero():
    f = _rng(4).normal(size=(200, 16)) @ _rng(5).normal(size=(16, 16))
    assert metrics.fid_from_features(f, f) <= 1e-6 * np.trace(np.cov(f, rowvar=False))


def test_fid_closed_form_for_diagonal_covariances():
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    f1, f2 = _factorial_features(s1, m1), _factorial_features(s2, m2)
    np.testing.assert_allclose(np.cov(f1, rowvar=False), np.diag(s1**2), atol=1e-12)
    expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)  # var1 + var2 - 2 sqrt(var1 var2) = (s1 - s2)^2
    assert metrics.fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-10)
    # rotating both covariances by the same orthogonal matrix leaves the distance unchanged (non-diagonal case)
    q, _ = np.linalg.qr(_rng(6).normal(size=(3, 3)))
    rotated = metrics.frechet_distance(m1 @ q, q.T @ np.diag(s1**2) @ q, m2 @ q, q.T @ np.diag(s2**2) @ q)
    assert rotated == pytest.approx(expected, rel=1e-9)
    # a singular covariance (rank deficient features) stays finite and >= 0
    assert metrics.fid_from_features(f1[:, :1].repeat(3, axis=1), f2) >= 0


def test_fid_with_non_commuting_covariances_matches_eigenvalues_of_c1_c2():
    # tr((C1 C2)^(1/2)) = sum of sqrt of the eigenvalues of C1 C2 (real and >= 0 for PSD C1, C2)
    rng = _rng(11)
    f1 = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    f2 = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 1.0
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    assert not np.allclose(c1 @ c2, c2 @ c1)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvals(c1 @ c2).real, 0, None)).sum()
    diff = f1.mean(0) - f2.mean(0)
    expected = diff @ diff + np.trace(c1) + np.trace(c2) - 2 * trace_sqrt
    assert metrics.fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-9)


def _mmd2_by_hand(x, y):
    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / len(a) + 1.0) ** 3

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_kid_matches_the_unbiased_estimator_written_out():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.5, 0.5]])
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(_mmd2_by_hand(x.tolist(), y.tolist()), rel=1e-12)
    # subset_size >= both sizes: every subset is a permutation of all rows, so std is 0 (x has 3 rows)
    mean, std = metrics.kid_from_features(x, y[:3], subsets=5, subset_size=10, seed=0)
    assert mean == pytest.approx(_mmd2_by_hand(x.tolist(), y[:3].tolist()), rel=1e-12) and std == pytest.approx(0)


def test_kid_is_near_zero_for_one_distribution_and_seeded():
    rng = _rng(7)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    shifted = rng.normal(size=(400, 8)) + 0.5
    same, same_std = metrics.kid_from_features(a, b, subsets=20, subset_size=200, seed=1)
    diff, _ = metrics.kid_from_features(a, shifted, subsets=20, subset_size=200, seed=1)
    assert abs(same) < 0.05 * diff and abs(same) < 3 * same_std + 1e-3
    assert metrics.kid_from_features(a, b, 5, 100, seed=3) == metrics.kid_from_features(a, b, 5, 100, seed=3)


# -- inpainting baseline ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_inpaint_baseline_fills_only_the_hole(method):
    rng = _rng(8)
    images = rng.integers(0, 256, (2, 24, 24, 3)).astype(np.uint8)
    images[1] = (90, 140, 200)  # a constant image
    masks = np.zeros((2, 24, 24, 1), np.float32)
    masks[:, 8:14, 6:16] = 1
    damaged = images.copy()
    damaged[masks[..., 0] > 0] = 0  # what is under the hole must not matter
    out = metrics.inpaint_baseline(damaged, masks, method=method, radius=3)
    assert out.dtype == np.uint8 and out.shape == images.shape
    outside = masks[..., 0] == 0
    np.testing.assert_array_equal(out[outside], damaged[outside])
    hole = out[1][masks[1, ..., 0] > 0].astype(int)
    assert np.abs(hole - np.array([90, 140, 200])).max() <= 3  # Telea's weighted average rounds a little
    np.testing.assert_allclose(hole.mean(axis=0), [90, 140, 200], atol=1.0)
    assert out[0][masks[0, ..., 0] > 0].mean() > 10  # the hole of the noisy image was filled too


def test_inpaint_baseline_validates_its_inputs():
    with pytest.raises(ValueError, match="uint8"):
        metrics.inpaint_baseline(np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="method"):
        metrics.inpaint_baseline(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 1)), method="fast")


# -- feature extractors -----------------------------------------------------------------------------------------------


def test_inception_features_need_a_weights_file(tmp_path):
    with pytest.raises(ConfigError, match="--inception_weights"):
        metrics.InceptionFeatures(tmp_path / "missing.h5")
    with pytest.raises(ConfigError, match="--inception_weights"):
        metrics.InceptionFeatures(None)


@pytest.mark.slow
def test_inception_features_with_random_weights_at_a_small_size():
    """About 12 s on 2 CPU cores (building InceptionV3)."""
    extractor = metrics.InceptionFeatures(random_weights=True, input_size=75, batch_size=2)
    assert "RANDOM" in extractor.feature_label and extractor.label("KID").startswith("KID (InceptionV3")
    images = _rng(9).integers(0, 256, (3, 20, 20, 3)).astype(np.uint8)
    features = extractor(images)
    assert features.shape == (3, 2048) and np.all(np.isfinite(features))
    np.testing.assert_allclose(extractor(images / 127.5 - 1.0), features, rtol=1e-4, atol=1e-5)


def test_classifier_features_label_and_both_kinds_of_classifier():
    import keras

    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, {"features": pooled * 2.0, "logits": pooled})
    images = _rng(10).uniform(-1, 1, (5, 8, 8, 3)).astype(np.float32)
    extractor = metrics.ClassifierFeatures(model, batch_size=2)
    assert extractor.feature_label == "FID* (classifier features, not comparable to published FID)"
    assert extractor.label("KID").startswith("KID*")
    np.testing.assert_allclose(extractor(images), 2 * images.mean(axis=(1, 2)), rtol=1e-5)

    class Loaded:
        def features(self, x):
            return x.reshape(len(x), -1)[:, :4]

    np.testing.assert_allclose(metrics.ClassifierFeatures(Loaded())(images), images.reshape(5, -1)[:, :4])
