"""Agreement between the calls on two augmented views of one item (the Jensen-Shannon consistency of AugMix,
Hendrycks et al. 2020).

Augmentation alone shows the model a cell under another stain, camera or focus, and lets it call the
shifted cell differently: a bundle trained with blurred crops still changed a quarter of its calls under
that very blur (BENCHMARKS.md, issue 17, twentieth session). This term asks for the same call on both views.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def jensen_shannon(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of the Jensen-Shannon divergence between the softmaxes of two (N, K) logits: 0 when they agree, at most ln 2."""
    p, q = F.softmax(logits_a.float(), 1), F.softmax(logits_b.float(), 1)
    log_mixture = ((p + q) / 2).clamp_min(1e-7).log()
    divergence = (F.kl_div(log_mixture, p, reduction="batchmean") + F.kl_div(log_mixture, q, reduction="batchmean")) / 2
    return divergence.clamp(0.0, math.log(2))
