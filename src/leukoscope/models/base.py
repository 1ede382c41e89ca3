"""The interface every registered model offers (timm style): forward_features / forward_head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LeukoscopeModel(nn.Module):
    """A classifier split into a feature extractor and a head, with its own description for bundles."""

    model_name: str = ""
    model_args: dict[str, Any]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and classify; with pre_logits, return the penultimate vector (used for OOD scores)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def gradcam_layer(self) -> nn.Module:
        """The last convolutional stage, whose activations Grad-CAM weighs."""
        raise NotImplementedError

    def gradcam_layers(self) -> list[nn.Module]:
        """Every layer Grad-CAM weighs: the last convolutional stage, or each member's (models/ensemble.py)."""
        return [self.gradcam_layer()]

    def trunk_blocks(self) -> list[nn.Module]:
        """The backbone's stages in order, for freezing the first N."""
        raise NotImplementedError

    def freeze_blocks(self, n: int) -> None:
        for block in self.trunk_blocks()[:n]:
            for p in block.parameters():
                p.requires_grad_(False)
