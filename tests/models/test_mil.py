"""Gated attention pooling learns which cell of a field carries its label."""

import numpy as np
import torch

from leukoscope.engine.mil import fit_attention_pool
from leukoscope.models.mil import GatedAttentionPool, pad_bags, pool_bags


def _bags(n_bags, rng, directions):
    """Fields of 6-12 cells. One cell per field shows its class strongly (3 x a class direction); the others
    are decoys, each a faint trace of a random class, so that neither the mean nor a missing class gives
    the label away: only the strong cell does."""
    classes, dim = directions.shape
    bags, labels, keys = [], [], []
    for _ in range(n_bags):
        y = int(rng.integers(classes))
        n = int(rng.integers(6, 13))
        cells = rng.normal(0, 1, (n, dim)) + directions[rng.integers(classes, size=n)]
        k = int(rng.integers(n))
        cells[k] += 3 * directions[y]
        bags.append(cells.astype(np.float32))
        labels.append(y)
        keys.append(k)
    return bags, np.array(labels), keys


def test_attention_pooling_puts_its_weight_on_the_one_cell_that_carries_the_label():
    rng = np.random.default_rng(0)
    directions = rng.normal(0, 1, (3, 16))
    train_bags, train_labels, _ = _bags(300, rng, directions)
    test_bags, test_labels, test_keys = _bags(100, rng, directions)
    pool = fit_attention_pool(train_bags, train_labels, 3, seed=0, epochs=60)
    logits, weights = pool_bags(pool, test_bags)
    assert (logits.argmax(1) == test_labels).mean() >= 0.9
    assert np.mean([int(w.argmax()) == k for w, k in zip(weights, test_keys)]) >= 0.9
    assert all(abs(w.sum() - 1) < 1e-5 for w in weights)


def test_padding_never_takes_weight():
    pool = GatedAttentionPool(8, 2).eval()
    feats, mask = pad_bags([torch.randn(2, 8), torch.randn(5, 8)])
    _, a = pool(feats, mask)
    assert a.shape == (2, 5) and torch.all(a[0, 2:] == 0) and torch.allclose(a.sum(1), torch.ones(2))
