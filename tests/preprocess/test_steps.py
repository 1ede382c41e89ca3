import cv2
import numpy as np
import pytest

from leukoscope.data.synth import synth_field
from leukoscope.preprocess import steps


@pytest.fixture(scope="module")
def field():
    return synth_field("Pre", np.random.default_rng(0), size=224)[0]


def test_resize_pad_keeps_aspect():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :, 0] = 200
    cv2.circle(img, (100, 50), 40, (0, 0, 255), -1)
    out = steps.resize(img, 64, mode="pad", pad_mode="constant", pad_value=(0, 255, 0))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert (out[:16, :, 1] == 255).all() and (out[-16:, :, 1] == 255).all()  # padding bands
    blue = out[..., 2] > 128
    ys, xs = np.nonzero(blue)
    assert abs((ys.max() - ys.min()) - (xs.max() - xs.min())) <= 2  # the circle stays round
    stretched = steps.resize(img, 64, mode="stretch")
    ys, xs = np.nonzero(stretched[..., 2] > 128)
    assert (ys.max() - ys.min()) > 1.5 * (xs.max() - xs.min())


def test_resize_reflect_fills_with_image_content():
    img = np.full((50, 100, 3), 120, np.uint8)
    out = steps.resize(img, 100, mode="pad", pad_mode="reflect")
    assert (out == 120).all()


def test_clahe_raises_local_contrast_on_flat_image():
    rng = np.random.default_rng(0)
    low = (120 + rng.normal(0, 4, (128, 128))).clip(0, 255).astype(np.uint8)
    rgb = np.stack([low, low, low], axis=2)
    out = steps.lab_clahe(rgb, clip=2.0, tiles=8)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert out.std() > 1.5 * rgb.std()


def test_denoise_methods_shape_and_smoothing(field):
    noisy = np.clip(field.astype(int) + np.random.default_rng(1).normal(0, 20, field.shape), 0, 255).astype(np.uint8)
    for method in ("median", "gaussian", "bilateral", "nlmeans"):
        out = steps.denoise(noisy, method, 3)
        assert out.shape == noisy.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - field).mean() < np.abs(noisy.astype(int) - field).mean(), method
    assert steps.denoise(noisy, "none") is noisy
    with pytest.raises(ValueError):
        steps.denoise(noisy, "wavelet")


def test_mask_annotation_hides_the_scale_bar():
    red = synth_field("Benign", np.random.default_rng(0), size=224, shortcut="annotation")[0]
    from leukoscope.data.fingerprint import annotation_red_fraction

    assert annotation_red_fraction(red) > 0.01
    masked = steps.mask_annotation(red)
    assert annotation_red_fraction(masked) == 0
    assert np.array_equal(masked[:150], red[:150])


def test_stain_normalize_matches_reference(field):
    ref = (150.0, 135.0, 125.0, 25.0, 6.0, 6.0)
    lab = cv2.cvtColor(steps.stain_normalize(field, ref), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
    assert np.allclose(lab.mean(0), ref[:3], atol=3)


def test_normalize_contract(field):
    x = steps.normalize(field)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert np.allclose(x[0] * steps.IMAGENET_STD[0] + steps.IMAGENET_MEAN[0], field[..., 0] / 255.0, atol=1e-6)
