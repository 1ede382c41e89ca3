"""A deep ensemble: models of one architecture trained from different seeds, read as one model.

Each member sees the same input. The features are the members' features side by side, so that an
out-of-distribution fit sees every member's view of a cell; the logits are the mean of the members'
(Lakshminarayanan et al. 2017 average probabilities; a mean of logits keeps the model one graph
for ONNX, and the bundle's temperature is fitted on it afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from leukoscope.models.base import LeukoscopeModel


class Ensemble(LeukoscopeModel):
    def __init__(self, members: Sequence[LeukoscopeModel]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        first = members[0]
        for m in members[1:]:
            if m.model_name != first.model_name or m.model_args != first.model_args:
                raise ValueError(f"members differ in architecture: {first.model_name} {first.model_args} vs {m.model_name} {m.model_args}")
        self.members = nn.ModuleList(members)
        if hasattr(first, "attention_maps"):  # explain shows attention only for models that have it
            self.attention_maps = self._mean_attention_maps
        self.model_args = {"members": [{"name": m.model_name, "kwargs": m.model_args} for m in members]}

    @staticmethod
    def _feature_dim(features: torch.Tensor) -> int:
        """Where the members' features sit side by side: channels of a map (b, c, h, w), or of tokens (b, n, c)."""
        return 1 if features.dim() == 4 else -1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        parts = [m.forward_features(x) for m in self.members]
        return torch.cat(parts, dim=self._feature_dim(parts[0]))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        parts = features.chunk(len(self.members), dim=self._feature_dim(features))
        outs = [m.forward_head(f, pre_logits=pre_logits) for m, f in zip(self.members, parts)]
        return torch.cat(outs, dim=-1) if pre_logits else torch.stack(outs).mean(0)

    def gradcam_layers(self) -> list[nn.Module]:
        return [layer for m in self.members for layer in m.gradcam_layers()]

    def _mean_attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m.attention_maps(x) for m in self.members]).mean(0)
