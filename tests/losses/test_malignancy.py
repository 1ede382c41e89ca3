import math

import pytest
import torch

from leukoscope.config import LossConfig
from leukoscope.errors import ConfigError
from leukoscope.losses import FocalLoss, MalignancyLoss, WeightedTerms, build_loss

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def test_the_term_reads_only_which_side_of_the_benign_line():
    """Trading the malignant classes' logits among themselves leaves p(malignant), and so the term, unchanged."""
    torch.manual_seed(1)
    logits, target = torch.randn(32, 4), torch.randint(0, 4, (32,))
    term = MalignancyLoss(0, [10, 30, 30, 30])
    assert torch.allclose(term(logits, target), term(logits[:, [0, 3, 1, 2]], target), atol=1e-6)
    target_swapped = torch.where(target == 0, target, 1 + (target % 3))  # another subtype, the same side
    assert torch.allclose(term(logits, target), term(logits, target_swapped), atol=1e-6)


def test_benign_and_malignant_sides_weigh_alike_whatever_their_counts():
    term = MalignancyLoss(0, [1, 2, 2, 2], gamma=0.0)
    benign = term(torch.tensor([[0.0, 1.0, 1.0, 1.0]]), torch.tensor([0]))
    malignant = term(torch.tensor([[2.0, 0.0, 0.0, 0.0]]), torch.tensor([1]))
    p_b, p_m = 1 / (1 + 3 * math.e), 3 / (3 + math.e**2)
    assert benign.item() == pytest.approx(7 / 2 * -math.log(p_b), rel=1e-5)  # 7 items / (2 x 1 benign)
    assert malignant.item() == pytest.approx(7 / 12 * -math.log(p_m), rel=1e-5)  # 7 items / (2 x 6 malignant)


def test_gamma_zero_with_balanced_sides_is_binary_cross_entropy():
    torch.manual_seed(2)
    logits, target = torch.randn(40, 4) * 2, torch.randint(0, 4, (40,))
    p_malignant = 1 - torch.softmax(logits, 1)[:, 0]
    bce = torch.nn.functional.binary_cross_entropy(p_malignant, (target != 0).float())
    assert torch.allclose(MalignancyLoss(0, [3, 1, 1, 1], gamma=0.0)(logits, target), bce, atol=1e-5)


def test_build_adds_the_term_to_the_class_loss():
    torch.manual_seed(3)
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    counts = [5, 7, 6, 4]
    plain = build_loss(LossConfig(alpha="balanced"), counts, CLASSES)
    assert isinstance(plain, FocalLoss)  # weight 0: the loss as it was
    both = build_loss(LossConfig(alpha="balanced", malignancy_weight=2.0), counts, CLASSES)
    assert isinstance(both, WeightedTerms)
    expected = plain(logits, target) + 2.0 * MalignancyLoss(0, counts)(logits, target)
    assert torch.allclose(both(logits, target), expected, atol=1e-6)


def test_refusals():
    with pytest.raises(ConfigError, match="need a Benign class"):
        build_loss(LossConfig(malignancy_weight=1.0), [5, 5], ["A", "B"])
    with pytest.raises(ConfigError, match="benign and malignant"):
        build_loss(LossConfig(malignancy_weight=1.0), [0, 5, 5, 5], CLASSES)
    with pytest.raises(ConfigError, match="malignancy_weight must be >= 0"):
        build_loss(LossConfig(malignancy_weight=-1.0), [5, 5, 5, 5], CLASSES)
    with pytest.raises(ConfigError, match="nothing trains the benign line"):
        build_loss(LossConfig(class_weight=0.0, subtype_weight=1.0), [5, 5, 5, 5], CLASSES)
    with pytest.raises(ConfigError, match="nothing trains the malignant classes apart"):
        build_loss(LossConfig(class_weight=0.0, malignancy_weight=1.0), [5, 5, 5, 5], CLASSES)
