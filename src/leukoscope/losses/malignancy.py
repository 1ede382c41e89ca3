"""A benign-vs-malignant term beside the class loss: the decision morphology can make and a lab must not miss.

Whether a cell is a lymphoblast is what morphology can tell; early pre-B, pre-B and pro-B are
defined by immunophenotype. Under a K-class loss the benign line is one boundary among several,
its benign side weighing a K-th of the total; on this data the subtypes are separated with the
session's look. This term adds the benign line on its own, p(malignant) = 1 - p(Benign) read from
the model's one softmax, its benign and malignant sides weighted alike, so the argmax of that
softmax keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from leukoscope.errors import ConfigError


def malignant_classes(num_classes: int, benign_index: int) -> torch.Tensor:
    """A boolean mask over the classes: True for every class but Benign."""
    malignant = torch.ones(num_classes, dtype=torch.bool)
    malignant[benign_index] = False
    return malignant


class MalignancyLoss(nn.Module):
    """Focal loss -(1 - p)^gamma log p of the right side of the benign line, benign and malignant items weighted alike."""

    def __init__(self, benign_index: int, class_counts: Sequence[int], gamma: float = 2.0) -> None:
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float32)
        malignant = malignant_classes(len(counts), benign_index)
        n_benign, n_malignant = counts[benign_index], counts[malignant].sum()
        if n_benign <= 0 or n_malignant <= 0:
            raise ConfigError(f"loss.malignancy_weight needs benign and malignant items in training, got counts {list(class_counts)}")
        self.benign_index, self.gamma = benign_index, gamma
        self.register_buffer("malignant", malignant)
        self.register_buffer("side_weight", torch.stack([counts.sum() / (2 * n_benign), counts.sum() / (2 * n_malignant)]))  # benign, malignant

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1)
        is_malignant = target != self.benign_index
        log_p_side = torch.where(is_malignant, torch.logsumexp(log_p[:, self.malignant], dim=1), log_p[:, self.benign_index])
        loss = -((1 - log_p_side.exp()).clamp_min(0) ** self.gamma) * log_p_side
        return (loss * self.side_weight[is_malignant.long()]).mean()


class WeightedTerms(nn.Module):
    """The sum of weight x term over the given terms (those of weight 0 left out)."""

    def __init__(self, terms: Sequence[tuple[float, nn.Module]]) -> None:
        super().__init__()
        kept = [(w, t) for w, t in terms if w]
        self.weights = [w for w, _ in kept]
        self.terms = nn.ModuleList([t for _, t in kept])

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(w * term(logits, target) for w, term in zip(self.weights, self.terms))
