"""The subtype beneath the benign line: which lymphoblast, asked only of malignant items.

With a benign-vs-malignant term deciding the benign line, the K-class loss is no longer needed to
draw it. This term trains the malignant classes against each other, p(subtype | malignant) read from
the same softmax restricted to the malignant logits, so that the benign decision and the subtype are
learned apart and a field's subtype never pulls on whether it is called malignant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from leukoscope.errors import ConfigError
from leukoscope.losses.malignancy import malignant_classes


class SubtypeLoss(nn.Module):
    """Focal loss over the malignant classes for malignant items only, the subtypes weighted by inverse frequency."""

    def __init__(self, benign_index: int, class_counts: Sequence[int], gamma: float = 2.0) -> None:
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float32)
        malignant = malignant_classes(len(counts), benign_index)
        subtype_counts = counts[malignant]
        if len(subtype_counts) < 2 or (subtype_counts <= 0).any():
            raise ConfigError(f"loss.subtype_weight needs two or more malignant classes, each in training, got counts {list(class_counts)}")
        # the subtype's index among the malignant classes, for every class (-1 for benign)
        position = torch.full((len(counts),), -1, dtype=torch.long)
        position[malignant] = torch.arange(len(subtype_counts))
        self.gamma = gamma
        self.register_buffer("malignant", malignant)
        self.register_buffer("position", position)
        self.register_buffer("weight", subtype_counts.sum() / (len(subtype_counts) * subtype_counts))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        keep = self.malignant[target]
        if not keep.any():
            return logits.sum() * 0.0  # a batch of benign items only: no subtype to learn, the graph kept
        log_p = F.log_softmax(logits[keep][:, self.malignant].float(), dim=-1)
        sub = self.position[target[keep]]
        log_p_t = log_p.gather(1, sub[:, None]).squeeze(1)
        loss = -((1 - log_p_t.exp()).clamp_min(0) ** self.gamma) * log_p_t * self.weight[sub]
        return loss.sum() / len(target)  # per item of the batch, so the benign share does not inflate it
