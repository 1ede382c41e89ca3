"""Gated attention pooling over a field's cells (multiple-instance learning, Ilse et al. 2018).

A field is a bag of cells and only the field is labelled. Each cell's feature vector h_k gets a
weight a_k = softmax_k(w . (tanh(V h_k) * sigmoid(U h_k))); the field is classified from
z = sum_k a_k h_k. The weights say which cells drove the call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class GatedAttentionPool(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.in_features, self.num_classes, self.hidden = in_features, num_classes, hidden
        self.value = nn.Linear(in_features, hidden)  # V: what a cell shows
        self.gate = nn.Linear(in_features, hidden)  # U: whether it counts
        self.score = nn.Linear(hidden, 1)  # w
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))

    def weights(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """feats (B, N, D), mask (B, N) True for real cells -> attention (B, N), summing to 1 over each bag's cells."""
        scores = self.score(torch.tanh(self.value(feats)) * torch.sigmoid(self.gate(feats))).squeeze(-1)  # (B, N)
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Field logits (B, K) and cell weights (B, N)."""
        a = self.weights(feats, mask)
        pooled = torch.einsum("bn,bnd->bd", a, feats)  # (B, D)
        return self.head(pooled), a


class PoolEnsemble(nn.Module):
    """An ensemble's field call: each member's own pool reads its member's slice of the cell features
    (models/ensemble.py puts them side by side), and the field's log-probabilities are the mean of the
    members' (each at its own calibration temperature). A cell's weight is the mean of its weights."""

    def __init__(self, pools: Sequence[GatedAttentionPool], temperatures: Sequence[float]) -> None:
        super().__init__()
        if len(pools) != len(temperatures):
            raise ValueError(f"{len(pools)} pools but {len(temperatures)} temperatures")
        self.pools = nn.ModuleList(pools)
        self.temperatures = [float(t) for t in temperatures]
        self.in_features = sum(p.in_features for p in pools)
        self.num_classes = pools[0].num_classes

    def weights(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self(feats, mask)[1]

    def members(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's field log-probabilities (M, B, K) and cell weights (M, B, N)."""
        parts = feats.split([p.in_features for p in self.pools], dim=-1)
        outs = [pool(f, mask) for pool, f in zip(self.pools, parts)]
        log_probs = torch.stack([torch.log_softmax(logits / t, dim=-1) for (logits, _), t in zip(outs, self.temperatures)])
        return log_probs, torch.stack([a for _, a in outs])

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs, weights = self.members(feats, mask)
        return log_probs.mean(0), weights.mean(0)


def pad_bags(bags: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Bags of (n_i, D) features -> (B, max n, D) zero-padded and the (B, max n) mask of real cells."""
    feats = torch.nn.utils.rnn.pad_sequence(bags, batch_first=True)
    lengths = torch.tensor([len(b) for b in bags])
    return feats, torch.arange(feats.shape[1]) < lengths[:, None]


@torch.no_grad()
def member_probs(pool: PoolEnsemble, bags: Sequence[np.ndarray]) -> np.ndarray:
    """Each member's field probabilities (M, B, K), for non-empty bags."""
    pool.eval()
    out = []
    for start in range(0, len(bags), 256):
        feats, mask = pad_bags([torch.from_numpy(np.asarray(b, np.float32)) for b in bags[start : start + 256]])
        out.append(pool.members(feats, mask)[0].exp().numpy())
    return np.concatenate(out, axis=1)


@torch.no_grad()
def pool_bags(pool: GatedAttentionPool | PoolEnsemble, bags: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Field logits (B, K) and each bag's cell weights, for non-empty bags."""
    pool.eval()
    logits, weights = [], []
    for start in range(0, len(bags), 256):
        chunk = [torch.from_numpy(np.asarray(b, np.float32)) for b in bags[start : start + 256]]
        feats, mask = pad_bags(chunk)
        out, a = pool(feats, mask)
        logits.append(out.numpy())
        weights += [a[i, : len(b)].numpy() for i, b in enumerate(chunk)]
    return np.concatenate(logits), weights
