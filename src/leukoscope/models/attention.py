"""Multi-head self-attention over a CNN feature map's H x W positions, on scaled_dot_product_attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadSelfAttention(nn.Module):
    """Plain MHSA written on F.scaled_dot_product_attention (exports to ONNX, unlike the fused path)."""

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, c = x.shape  # batch, tokens, channels
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, n, self.heads, c // self.heads).transpose(1, 2)  # (b, heads, n, head_dim)
        k = k.view(b, n, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, n, self.heads, c // self.heads).transpose(1, 2)
        weights = None
        if return_attention:
            # explicit softmax(QK^T / sqrt(d)) so the weights can be drawn; same result as SDPA
            weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)  # (b, heads, n, n)
            y = F.dropout(weights, self.dropout, self.training) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, n, c)  # re-assemble heads side by side
        return self.proj(y), weights


class SpatialAttentionBlock(nn.Module):
    """Feature map -> tokens (+ learnable 2-D position embedding) -> pre-norm MHSA (+ MLP) -> tokens.

    Returns (b, prefix + h*w, c) tokens; prefix is 1 with a class token, else 0. `to_map` turns
    the position tokens back into a (b, c, h, w) map for convolutional stages that follow.
    """

    def __init__(
        self, dim: int, grid: tuple[int, int], heads: int = 8, dropout: float = 0.1, mlp_ratio: float = 0.0, cls_token: bool = False
    ) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *grid))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.prefix = 1 if cls_token else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, dropout)
        self.drop = nn.Dropout(dropout)
        self.mlp: nn.Module | None = None
        if mlp_ratio > 0:
            hidden = int(dim * mlp_ratio)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.last_attention: torch.Tensor | None = None

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """The embedding for an h x w map: bilinear interpolation when it differs from the built grid."""
        if (h, w) == tuple(self.grid):
            return self.pos_embed
        return F.interpolate(self.pos_embed, size=(h, w), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = (x + self.position_embedding(h, w)).flatten(2).transpose(1, 2)  # (b, h*w, c)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)  # (b, 1 + h*w, c)
        attended, weights = self.attn(self.norm1(tokens), return_attention)
        tokens = tokens + self.drop(attended)
        if self.mlp is not None:
            tokens = tokens + self.mlp(self.norm2(tokens))
        self.last_attention = weights
        self.last_grid = (h, w)
        return tokens

    def to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        h, w = self.last_grid
        return tokens[:, self.prefix :].transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
