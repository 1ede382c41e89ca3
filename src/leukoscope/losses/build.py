"""The configured loss, built from the config's loss section and the training split's class counts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from leukoscope.config import BENIGN_CLASS, LossConfig
from leukoscope.errors import ConfigError
from leukoscope.losses.focal import FocalLoss, class_weights
from leukoscope.losses.malignancy import MalignancyLoss, WeightedTerms
from leukoscope.losses.subtype import SubtypeLoss


def build_loss(cfg: LossConfig, class_counts: Sequence[int], classes: Sequence[str] | None = None) -> nn.Module:
    """The configured loss; alpha may be None, "balanced" (from training counts) or a per-class list.
    The benign-vs-malignant and subtype terms need the class names, to find Benign among them."""
    for key in ("class_weight", "malignancy_weight", "subtype_weight"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"loss.{key} must be >= 0, got {getattr(cfg, key)}")
    if not (cfg.class_weight or cfg.malignancy_weight):
        raise ConfigError("loss: class_weight and malignancy_weight are both 0, so nothing trains the benign line")
    if not (cfg.class_weight or cfg.subtype_weight):
        # measured: the temperature, fitted on the K classes, then flattens every p(Benign) below 1/2
        raise ConfigError("loss: class_weight and subtype_weight are both 0, so nothing trains the malignant classes apart")
    class_loss = _class_loss(cfg, class_counts)
    if cfg.class_weight == 1 and not (cfg.malignancy_weight or cfg.subtype_weight):
        return class_loss
    if classes is None or BENIGN_CLASS not in classes:
        raise ConfigError(f"loss.malignancy_weight and loss.subtype_weight need a {BENIGN_CLASS} class, the data has {list(classes or [])}")
    benign = list(classes).index(BENIGN_CLASS)
    terms: list[tuple[float, nn.Module]] = [(cfg.class_weight, class_loss)]
    if cfg.malignancy_weight:
        terms.append((cfg.malignancy_weight, MalignancyLoss(benign, class_counts, cfg.gamma)))
    if cfg.subtype_weight:
        terms.append((cfg.subtype_weight, SubtypeLoss(benign, class_counts, cfg.gamma)))
    return WeightedTerms(terms)


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
