"""The configured loss, built from the config's loss section and the training split's class counts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from leukoscope.config import BENIGN_CLASS, LossConfig
from leukoscope.errors import ConfigError
from leukoscope.losses.malignancy import MalignancyLoss, WithMalignancy
from leukoscope.losses.focal import FocalLoss, class_weights


def build_loss(cfg: LossConfig, class_counts: Sequence[int], classes: Sequence[str] | None = None) -> nn.Module:
    """The configured loss; alpha may be None, "balanced" (from training counts) or a per-class list.
    A malignancy term (loss.malignancy_weight > 0) needs the class names, to find Benign among them."""
    loss = _class_loss(cfg, class_counts)
    if not cfg.malignancy_weight:
        return loss
    if cfg.malignancy_weight < 0:
        raise ConfigError(f"loss.malignancy_weight must be >= 0, got {cfg.malignancy_weight}")
    if classes is None or BENIGN_CLASS not in classes:
        raise ConfigError(f"loss.malignancy_weight={cfg.malignancy_weight} needs a {BENIGN_CLASS} class, the data has {list(classes or [])}")
    return WithMalignancy(loss, MalignancyLoss(list(classes).index(BENIGN_CLASS), class_counts, cfg.gamma), cfg.malignancy_weight)


def _class_loss(cfg: LossConfig, class_counts: Sequence[int]) -> nn.Module:
    alpha: torch.Tensor | None
    if cfg.alpha is None:
        alpha = None
    elif cfg.alpha == "balanced":
        alpha = class_weights(class_counts)
    elif isinstance(cfg.alpha, (list, tuple)) and all(isinstance(a, (int, float)) for a in cfg.alpha):
        if len(cfg.alpha) != len(class_counts):
            raise ConfigError(f"loss.alpha has {len(cfg.alpha)} values for {len(class_counts)} classes")
        alpha = torch.tensor(cfg.alpha, dtype=torch.float32)
    else:
        raise ConfigError(f"loss.alpha: expected null, 'balanced' or a list of numbers, got {cfg.alpha!r}")
    if cfg.name == "focal":
        return FocalLoss(cfg.gamma, alpha, cfg.label_smoothing)
    return nn.CrossEntropyLoss(weight=alpha, label_smoothing=cfg.label_smoothing)
