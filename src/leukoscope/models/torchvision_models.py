"""torchvision classifiers behind the forward_features / forward_head interface, head resized to our classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

from leukoscope.models.base import LeukoscopeModel


class TorchvisionModel(LeukoscopeModel):
    """Holds the torchvision network as `net`, so its parameter names are torchvision's own."""

    def __init__(self, arch: str, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self.net = tvm.get_model(arch, weights=None)
        self.model_args = {}
        self._replace_classifier(num_classes)

    def _replace_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def classifier_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the class-specific layer, never loaded from ImageNet weights."""
        raise NotImplementedError


class ResNetModel(TorchvisionModel):
    def _replace_classifier(self, num_classes: int) -> None:
        self.feature_dim = self.net.fc.in_features
        self.net.fc = nn.Linear(self.feature_dim, num_classes)

    def classifier_prefixes(self) -> tuple[str, ...]:
        return ("fc.",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(self.net.avgpool(features), 1)
        return pooled if pre_logits else self.net.fc(pooled)

    def gradcam_layer(self) -> nn.Module:
        return self.net.layer4[-1]

    def trunk_blocks(self) -> list[nn.Module]:
        n = self.net
        return [nn.ModuleList([n.conv1, n.bn1]), n.layer1, n.layer2, n.layer3, n.layer4]


class SequentialClassifierModel(TorchvisionModel):
    """Networks shaped features -> avgpool -> classifier (..., Linear): VGG, EfficientNet, MobileNetV3."""

    def _replace_classifier(self, num_classes: int) -> None:
        last = self.net.classifier[-1]
        self.feature_dim = last.in_features
        self.net.classifier[-1] = nn.Linear(last.in_features, num_classes)

    def classifier_prefixes(self) -> tuple[str, ...]:
        return (f"classifier.{len(self.net.classifier) - 1}.",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(self.net.avgpool(features), 1)
        hidden = self.net.classifier[:-1](pooled)
        return hidden if pre_logits else self.net.classifier[-1](hidden)


class VGGModel(SequentialClassifierModel):
    def gradcam_layer(self) -> nn.Module:
        return self.net.features[-2]

    def trunk_blocks(self) -> list[nn.Module]:
        f = self.net.features
        ends = [i for i, m in enumerate(f) if isinstance(m, nn.MaxPool2d)]
        starts = [0] + [e + 1 for e in ends[:-1]]
        return [f[s : e + 1] for s, e in zip(starts, ends)]


class DenseNetModel(TorchvisionModel):
    def _replace_classifier(self, num_classes: int) -> None:
        self.feature_dim = self.net.classifier.in_features
        self.net.classifier = nn.Linear(self.feature_dim, num_classes)

    def classifier_prefixes(self) -> tuple[str, ...]:
        return ("classifier.",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.net.features(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(F.adaptive_avg_pool2d(features, 1), 1)
        return pooled if pre_logits else self.net.classifier(pooled)

    def gradcam_layer(self) -> nn.Module:
        return self.net.features.norm5

    def trunk_blocks(self) -> list[nn.Module]:
        f = self.net.features
        return [nn.ModuleList([f.conv0, f.norm0]), f.denseblock1, f.denseblock2, f.denseblock3, f.denseblock4]


class MobileStyleModel(SequentialClassifierModel):
    """EfficientNet and MobileNetV3."""

    def gradcam_layer(self) -> nn.Module:
        return self.net.features[-1]

    def trunk_blocks(self) -> list[nn.Module]:
        return list(self.net.features)
