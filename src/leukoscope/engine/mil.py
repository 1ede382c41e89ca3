"""Fitting the attention pooling of a cell-level model: bags of cell features, field labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from leukoscope.models.mil import GatedAttentionPool, pad_bags

MIL_EPOCHS = 60
MIL_BATCH = 32


def fit_attention_pool(
    bags: Sequence[np.ndarray],
    labels: Sequence[int],
    num_classes: int,
    seed: int = 0,
    epochs: int = MIL_EPOCHS,
    lr: float = 2e-3,
    hidden: int = 64,
    loss_fn: torch.nn.Module | None = None,
    subsample: float = 0.0,
) -> GatedAttentionPool:
    """Train a gated attention pool on bags of (n_i, D) features with one label per bag (by default a class-balanced cross-entropy).

    `subsample`: the share of bags seen, each epoch, as a random subset of their cells (`random_subset`)."""
    generator = torch.Generator().manual_seed(seed)
    draws = np.random.default_rng(seed)  # apart from `generator`, so that subsample=0 fits the pool it always did
    torch.manual_seed(seed)
    kept = [(torch.from_numpy(np.asarray(b, np.float32)), int(y)) for b, y in zip(bags, labels) if len(b)]
    pool = GatedAttentionPool(kept[0][0].shape[1], num_classes, hidden)
    if loss_fn is None:
        counts = np.bincount([y for _, y in kept], minlength=num_classes).astype(np.float64)
        weight = torch.tensor(np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(pool.parameters(), lr=lr, weight_decay=1e-4)
    pool.train()
    for _ in range(epochs):
        order = torch.randperm(len(kept), generator=generator).tolist()
        for start in range(0, len(order), MIL_BATCH):
            batch = [kept[i] for i in order[start : start + MIL_BATCH]]
            feats, mask = pad_bags([random_subset(b, draws) if subsample and draws.random() < subsample else b for b, _ in batch])
            logits, _ = pool(feats, mask)
            loss = loss_fn(logits, torch.tensor([y for _, y in batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return pool.eval()


def random_subset(bag: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """1 to n of a bag's n cells, the number and the cells drawn uniformly: a field as a view that holds fewer of them."""
    size = int(rng.integers(1, len(bag) + 1))
    return bag[torch.from_numpy(np.sort(rng.choice(len(bag), size, replace=False)))]
