"""Focal Loss (Lin et al. 2017) for multi-class softmax outputs, and class weights from frequencies."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from leukoscope.errors import ConfigError


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """'balanced' weights n / (K * n_c): a class's weight is inversely proportional to its count."""
    counts_t = torch.as_tensor(counts, dtype=torch.float32)
    if (counts_t <= 0).any():
        raise ConfigError(f"loss.alpha=balanced needs every class present in training, got counts {list(counts)}")
    return counts_t.sum() / (len(counts_t) * counts_t)


class FocalLoss(nn.Module):
    """FL(p_t) = -alpha_t (1 - p_t)^gamma log p_t; gamma = 0 without alpha is cross-entropy."""

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"loss.gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.register_buffer("alpha", None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1)
        ce = F.nll_loss(log_p, target, reduction="none")
        if self.label_smoothing:
            ce = (1 - self.label_smoothing) * ce - self.label_smoothing * log_p.mean(dim=-1)
        p_t = log_p.gather(1, target[:, None]).squeeze(1).exp()
        loss = (1 - p_t).clamp_min(0) ** self.gamma * ce
        if self.alpha is not None:
            loss = loss * self.alpha[target]
        return loss.mean()
