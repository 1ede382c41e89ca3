import torch

from leukoscope.config import LossConfig
from leukoscope.losses import FocalLoss, MalignancyLoss, SubtypeLoss, build_loss

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def test_the_term_reads_only_the_malignant_classes_of_malignant_items():
    torch.manual_seed(0)
    logits, target = torch.randn(32, 4), torch.randint(0, 4, (32,))
    term = SubtypeLoss(0, [10, 30, 30, 30])
    moved = logits.clone()
    moved[:, 0] += torch.randn(32) * 5  # the benign logit: not the subtype's business
    assert torch.allclose(term(logits, target), term(moved, target), atol=1e-6)
    benign_only = torch.zeros(8, dtype=torch.long)
    assert term(logits[:8], benign_only).item() == 0.0


def test_gamma_zero_is_weighted_cross_entropy_among_the_subtypes_per_batch_item():
    torch.manual_seed(1)
    logits, target = torch.randn(40, 4), torch.randint(0, 4, (40,))
    counts = [5, 10, 20, 40]
    keep = target != 0
    weight = torch.tensor([70 / (3 * 10), 70 / (3 * 20), 70 / (3 * 40)])
    ce = torch.nn.functional.cross_entropy(logits[keep][:, 1:], target[keep] - 1, weight=weight, reduction="none")
    expected = ce.sum() / len(target)  # the weighted "none" reduction carries each item's weight
    assert torch.allclose(SubtypeLoss(0, counts, gamma=0.0)(logits, target), expected, atol=1e-5)


def test_the_benign_first_loss_is_the_benign_line_and_the_subtype_beneath_it():
    torch.manual_seed(2)
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    counts = [5, 7, 6, 4]
    loss = build_loss(LossConfig(class_weight=0.0, malignancy_weight=1.0, subtype_weight=0.5), counts, CLASSES)
    expected = MalignancyLoss(0, counts)(logits, target) + 0.5 * SubtypeLoss(0, counts)(logits, target)
    assert torch.allclose(loss(logits, target), expected, atol=1e-6)
    assert isinstance(build_loss(LossConfig(), counts, CLASSES), FocalLoss)  # the defaults: the class loss alone
