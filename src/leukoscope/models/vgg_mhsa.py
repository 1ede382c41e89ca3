"""The paper's model: a VGG19 convolutional trunk with multi-head self-attention over its feature map."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs as VGG_CFGS
from torchvision.models.vgg import make_layers

from leukoscope.models.attention import SpatialAttentionBlock
from leukoscope.models.base import LeukoscopeModel


# the head's hidden activation. A ReLU head can die: in the training runs that stalled, 3-52 % of the
# 128 hidden units ever fired on test crops (91-97 % where training went well), so the trunk got almost
# no gradient. A negative GELU unit still passes gradient, so it can come back.
HEAD_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


# torchvision's layer lists by depth (weight layers): the same five blocks, 1-4 convolutions each
VGG_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}


def _scaled_cfg(width: float, depth: int) -> list[int | str]:
    """torchvision's VGG layer list for `depth` with channels scaled by `width`, kept multiples of 8."""
    return [v if v == "M" else max(8, int(round(v * width / 8)) * 8) for v in VGG_CFGS[VGG_DEPTHS[depth]]]


class MaxPool2x2(nn.MaxPool2d):
    """VGG's 2 x 2 max-pooling (stride 2). Without gradients it takes the maximum of the four strided quarters of
    the map: the same values (NaN included), 1.4-2.8 times faster than the CPU's max_pool2d on channels_last maps
    of 8-32 channels, where max_pool2d was a fifth of a cell crop's forward (BENCHMARKS.md, issue 17, "The model's
    input made once a batch"). Training, exports and gradient maps take max_pool2d, whose gradient goes to the
    first maximum of each window."""

    def __init__(self) -> None:
        super().__init__(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()
        if (torch.is_grad_enabled() and x.requires_grad) or exporting or not (h and w):
            return super().forward(x)
        x = x[..., :h, :w]
        return torch.maximum(torch.maximum(x[..., ::2, ::2], x[..., ::2, 1::2]), torch.maximum(x[..., 1::2, ::2], x[..., 1::2, 1::2]))


def _fast_pools(features: nn.Sequential) -> nn.Sequential:
    """torchvision's VGG layers with each 2 x 2 max-pooling as a `MaxPool2x2` (no weights: checkpoints are unchanged)."""
    for i, layer in enumerate(features):
        if type(layer) is nn.MaxPool2d and layer.kernel_size == 2 and layer.stride == 2 and layer.padding == 0 and layer.dilation == 1 and not layer.ceil_mode:
            features[i] = MaxPool2x2()
    return features


class VGGMHSA(LeukoscopeModel):
    """VGG trunk (VGG19 by default, the paper's) -> MHSA over H x W tokens (after block `attention_after`, default the last) -> pool -> head.

    `features` keeps torchvision's layout and names, so ImageNet VGG weights of its depth load into it at
    width 1. `depth` is not among `model_args`: the registered name carries it (vgg11_bn_mhsa, ...).
    """

    def __init__(
        self,
        num_classes: int = 4,
        width: float = 1.0,
        depth: int = 19,
        batch_norm: bool = False,
        heads: int = 8,
        attn_dropout: float = 0.1,
        mlp_ratio: float = 0.0,
        attention_after: int = 5,
        pool: str = "mean",
        head_hidden: int = 256,
        head_dropout: float = 0.5,
        input_size: int = 224,
        head_activation: str = "relu",
    ) -> None:
        super().__init__()
        if depth not in VGG_DEPTHS:
            raise ValueError(f"depth must be one of {', '.join(map(str, VGG_DEPTHS))}, got {depth}")
        if not 1 <= attention_after <= 5:
            raise ValueError(f"attention_after must be a VGG block between 1 and 5, got {attention_after}")
        if pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")
        if head_activation not in HEAD_ACTIVATIONS:
            raise ValueError(f"head_activation must be one of {', '.join(HEAD_ACTIVATIONS)}, got {head_activation!r}")
        if pool == "cls" and attention_after != 5:
            raise ValueError("pool='cls' needs the attention after the last block (attention_after=5)")
        cfg = _scaled_cfg(width, depth)
        self.features = _fast_pools(make_layers(cfg, batch_norm=batch_norm))
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        self.block_ends = pools  # index of the max-pool closing each of the 5 blocks
        self.insert_at = pools[attention_after - 1]
        block_channels = [cfg[i - 1] for i, v in enumerate(cfg) if v == "M"]  # each block's last convolution
        dim = block_channels[attention_after - 1]
        grid = max(1, input_size // 2**attention_after)
        self.attention = SpatialAttentionBlock(dim, (grid, grid), heads, attn_dropout, mlp_ratio, cls_token=pool == "cls")
        self.attention_is_last = attention_after == 5
        self.pool = pool
        self.feature_dim = block_channels[-1]
        self.norm = nn.LayerNorm(self.feature_dim)
        self.head = nn.Sequential(
            nn.Dropout(head_dropout),
            nn.Linear(self.feature_dim, head_hidden),
            HEAD_ACTIVATIONS[head_activation](),
            nn.Dropout(head_dropout),
            nn.Linear(head_hidden, num_classes),
        )
        self.model_args = dict(
            width=width, batch_norm=batch_norm, heads=heads, attn_dropout=attn_dropout, mlp_ratio=mlp_ratio,
            attention_after=attention_after, pool=pool, head_hidden=head_hidden, head_dropout=head_dropout, input_size=input_size,
            head_activation=head_activation,
        )  # fmt: skip
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor, return_attention: bool = False) -> torch.Tensor:
        """Tokens (b, prefix + h*w, c) when the attention is last, else the final feature map."""
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.insert_at:
                tokens = self.attention(x, return_attention)
                if self.attention_is_last:
                    return tokens
                x = self.attention.to_map(tokens)
        return x

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if features.dim() == 4:
            pooled = features.flatten(2).mean(2)
        elif self.pool == "cls":
            pooled = features[:, 0]
        else:
            pooled = features[:, self.attention.prefix :].mean(1)
        pooled = self.norm(pooled)
        return pooled if pre_logits else self.head(pooled)

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(b, h, w) map of how much attention each position receives (from the class token when pooling by it)."""
        self.forward_features(x, return_attention=True)
        weights = self.attention.last_attention.mean(1)  # (b, n, n), averaged over heads
        prefix = self.attention.prefix
        received = weights[:, 0, prefix:] if prefix else weights.mean(1)
        h, w = self.attention.last_grid
        return received.reshape(-1, h, w)

    def gradcam_layer(self) -> nn.Module:
        last_conv = max(i for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d))
        return self.features[last_conv + (2 if isinstance(self.features[last_conv + 1], nn.BatchNorm2d) else 1)]

    def trunk_blocks(self) -> list[nn.Module]:
        starts = [0] + [e + 1 for e in self.block_ends[:-1]]
        return [self.features[s : e + 1] for s, e in zip(starts, self.block_ends)]
