import math

import torch

from leukoscope.losses.consistency import jensen_shannon


def test_two_views_called_alike_cost_nothing_and_opposite_sure_calls_cost_ln2():
    logits = torch.randn(16, 4)
    assert float(jensen_shannon(logits, logits)) < 1e-6
    sure_a, sure_b = torch.full((8, 4), -30.0), torch.full((8, 4), -30.0)
    sure_a[:, 0], sure_b[:, 1] = 30.0, 30.0
    assert abs(float(jensen_shannon(sure_a, sure_b)) - math.log(2)) < 1e-4


def test_the_divergence_is_symmetric_and_its_gradient_brings_the_views_together():
    torch.manual_seed(0)
    a, b = torch.randn(32, 4, requires_grad=True), torch.randn(32, 4)
    assert torch.isclose(jensen_shannon(a, b), jensen_shannon(b, a))
    before = float(jensen_shannon(a, b))
    optimiser = torch.optim.SGD([a], lr=50.0)
    for _ in range(100):
        optimiser.zero_grad()
        jensen_shannon(a, b).backward()
        optimiser.step()
    assert float(jensen_shannon(a, b)) < 0.1 * before, (before, float(jensen_shannon(a, b)))
