"""Calibration: expected / maximum calibration error and temperature scaling fitted on validation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> list[dict[str, float]]:
    """Per confidence bin: count, mean confidence, accuracy (equal-width bins on the top probability)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            bins.append({"low": float(lo), "high": float(hi), "count": int(inside.sum()), "confidence": float(conf[inside].mean()), "accuracy": float(correct[inside].mean())})
    return bins


def calibration_errors(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> tuple[float, float]:
    """(ECE, MCE): the count-weighted mean and the maximum gap between confidence and accuracy."""
    bins = reliability_bins(probs, labels, n_bins)
    n = len(labels)
    if not n:
        return 0.0, 0.0
    gaps = [abs(b["confidence"] - b["accuracy"]) for b in bins]
    ece = sum(g * b["count"] for g, b in zip(gaps, bins)) / n
    return float(ece), float(max(gaps, default=0.0))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 200) -> float:
    """The temperature T > 0 minimising the negative log-likelihood of softmax(logits / T)."""
    if len(labels) == 0:
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    return float(np.clip(t, 0.05, 20.0))
