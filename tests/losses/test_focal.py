import pytest
import torch
import torch.nn.functional as F

from leukoscope.config import LossConfig
from leukoscope.errors import ConfigError
from leukoscope.losses import FocalLoss, build_loss, class_weights


def test_gamma_zero_without_alpha_is_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(64, 4) * 3, torch.randint(0, 4, (64,))
    assert torch.allclose(FocalLoss(gamma=0.0)(logits, target), F.cross_entropy(logits, target), atol=1e-6)
    smooth = FocalLoss(gamma=0.0, label_smoothing=0.1)(logits, target)
    assert torch.allclose(smooth, F.cross_entropy(logits, target, label_smoothing=0.1), atol=1e-6)


def test_easy_examples_are_down_weighted_as_gamma_grows():
    easy = torch.tensor([[6.0, 0.0, 0.0, 0.0]])
    hard = torch.tensor([[0.5, 0.0, 0.0, 0.0]])
    target = torch.tensor([0])
    ratios = []
    for gamma in (0.0, 1.0, 2.0, 5.0):
        loss = FocalLoss(gamma)
        ratios.append((loss(easy, target) / loss(hard, target)).item())
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] < ratios[0] / 100


def test_balanced_alpha_matches_counts():
    w = class_weights([100, 300, 50, 50])
    assert torch.allclose(w, torch.tensor([500 / 400, 500 / 1200, 500 / 200, 500 / 200]))
    assert torch.allclose(w * torch.tensor([100.0, 300, 50, 50]), torch.full((4,), 125.0))
    loss = build_loss(LossConfig(alpha="balanced", gamma=0.0), [100, 300, 50, 50])
    logits, target = torch.randn(8, 4), torch.randint(0, 4, (8,))
    expected = (F.cross_entropy(logits, target, reduction="none") * w[target]).mean()
    assert torch.allclose(loss(logits, target), expected, atol=1e-6)


def test_alpha_validation_and_cross_entropy_option():
    with pytest.raises(ConfigError, match="3 values for 4"):
        build_loss(LossConfig(alpha=[1, 2, 3]), [1, 1, 1, 1])
    with pytest.raises(ConfigError, match="every class"):
        build_loss(LossConfig(alpha="balanced"), [1, 0, 1, 1])
    assert isinstance(build_loss(LossConfig(name="cross_entropy"), [1, 1]), torch.nn.CrossEntropyLoss)
