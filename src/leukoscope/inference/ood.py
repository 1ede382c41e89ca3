"""Out-of-distribution score (Mahalanobis distance on penultimate features) and abstention threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MahalanobisOOD:
    """min over classes of (f - mu_c)^T P (f - mu_c), P the shrunk inverse of the shared covariance."""

    means: np.ndarray  # (K, D)
    precision: np.ndarray  # (D, D)
    threshold: float = float("inf")

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, shrinkage: float = 0.1) -> MahalanobisOOD:
        classes = np.unique(labels)
        means = np.stack([features[labels == c].mean(0) for c in classes])
        centred = features - means[np.searchsorted(classes, labels)]
        cov = centred.T @ centred / max(1, len(features) - 1)
        cov = (1 - shrinkage) * cov + shrinkage * np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
        return cls(means.astype(np.float32), np.linalg.pinv(cov).astype(np.float32))

    def score(self, features: np.ndarray) -> np.ndarray:
        diff = features[:, None, :] - self.means[None, :, :]  # (N, K, D)
        d = np.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        return d.min(axis=1)

    def calibrate(self, reference_features: np.ndarray, quantile: float = 0.99, margin: float = 1.5) -> float:
        """Threshold = margin x the given quantile of in-distribution scores (held-out data preferred)."""
        self.threshold = float(np.quantile(self.score(reference_features), quantile) * margin)
        return self.threshold


def abstain_threshold(confidence: np.ndarray, correct: np.ndarray, target_error: float, floor: float = 0.5) -> float:
    """Lowest confidence cut whose accepted predictions have error <= target (on validation data).

    Never below `floor`: a top probability under one half is a guess between classes, whatever
    the validation data says.
    """
    if len(confidence) == 0:
        return floor
    order = np.argsort(-confidence)
    conf, ok = confidence[order], correct[order].astype(float)
    errors = np.cumsum(1 - ok) / np.arange(1, len(ok) + 1)
    feasible = np.flatnonzero(errors <= target_error)
    if len(feasible) == 0:
        return float(max(conf[0], floor))
    cut = 0.0 if feasible[-1] == len(conf) - 1 else conf[feasible[-1]]
    return float(max(cut, floor))
