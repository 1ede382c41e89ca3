import numpy as np
import torch

from leukoscope.config import AugmentConfig
from leukoscope.preprocess.augment import build_eval_transform, build_train_transform, expand_offline, hwc_to_chw
from leukoscope.preprocess.steps import IMAGENET_MEAN, IMAGENET_STD


def _images(n=6, size=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_eval_transform_is_deterministic_normalisation():
    img = hwc_to_chw(_images(1)[0])
    t = build_eval_transform(IMAGENET_MEAN, IMAGENET_STD)
    a, b = t(img), t(img)
    assert torch.equal(a, b) and a.dtype == torch.float32
    expected = (img.float() / 255 - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(a, expected, atol=1e-5)


def test_train_transform_changes_images():
    img = hwc_to_chw(_images(1)[0])
    t = build_train_transform(AugmentConfig(), IMAGENET_MEAN, IMAGENET_STD)
    torch.manual_seed(0)
    outs = [t(img) for _ in range(8)]
    assert outs[0].shape == (3, 32, 32)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_offline_expansion_balances_classes_from_given_items_only():
    images = _images(7)
    labels = [0, 0, 0, 0, 0, 1, 1]
    out, out_labels, sources = expand_offline(images, labels, per_class=6, cfg=AugmentConfig(), seed=0)
    assert out.shape == (12, 32, 32, 3) and out.dtype == np.uint8
    assert out_labels.count(0) == 6 and out_labels.count(1) == 6
    assert set(sources) <= set(range(7))
    assert all(labels[s] == lab for s, lab in zip(sources, out_labels))
    for i in range(7):  # every original kept, unchanged
        assert any(np.array_equal(images[i], o) for o in out)
    again, _, _ = expand_offline(images, labels, per_class=6, cfg=AugmentConfig(), seed=0)
    assert np.array_equal(out, again)
