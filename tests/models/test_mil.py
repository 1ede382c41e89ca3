"""Gated attention pooling learns which cell of a field carries its label."""

import numpy as np
import torch

from leukoscope.engine.mil import fit_attention_pool, random_subset
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


def test_a_random_subset_holds_one_to_all_of_a_bags_cells_each_once():
    bag = torch.arange(6, dtype=torch.float32)[:, None]
    rng = np.random.default_rng(0)
    subsets = [random_subset(bag, rng)[:, 0].tolist() for _ in range(600)]
    assert {len(s) for s in subsets} == set(range(1, 7))
    assert all(len(set(s)) == len(s) and set(s) <= set(range(6)) for s in subsets)


def _weak_votes(n_bags, rng, directions, cells):
    """Fields whose every cell is a faint, noisy vote for the field's class: many cells make a sure call, one does not."""
    bags, labels = [], []
    for _ in range(n_bags):
        y = int(rng.integers(2))
        bags.append((rng.normal(0, 1, (int(rng.integers(*cells)), directions.shape[1])) + 0.35 * directions[y]).astype(np.float32))
        labels.append(y)
    return bags, np.array(labels)


def test_a_pool_trained_on_subsets_is_less_overconfident_about_a_single_cell():
    """Trained on whole fields of 20-30 cells, a pool learns how sure their average makes it, and is as sure
    about a view of one cell; trained on random subsets, it has also seen one cell's worth of evidence."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        directions = rng.normal(0, 0.5, (2, 16))
        train_bags, train_labels = _weak_votes(300, rng, directions, (20, 30))
        one_cell, truth = _weak_votes(300, rng, directions, (1, 2))
        losses = {}
        for subsample in (0.0, 1.0):
            pool = fit_attention_pool(train_bags, train_labels, 2, seed=0, epochs=40, subsample=subsample)
            probs = torch.softmax(torch.from_numpy(pool_bags(pool, one_cell)[0]), 1).numpy()
            losses[subsample] = -np.log(probs[np.arange(len(truth)), truth]).mean()
        assert losses[1.0] < losses[0.0] - 0.05, (seed, losses)
