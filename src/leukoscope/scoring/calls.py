"""How probabilities become a call: the most probable class, or the benign line first.

The most probable of K classes is a biased benign-vs-malignant call: when p(Benign) = 0.4 and the
other 0.6 is split among three subtypes, argmax calls Benign although malignant is more probable.
`benign_first` decides the benign line on p(Benign) >= 1/2 and only then the most probable
malignant class: the call of a model trained with the benign decision on its own and the subtype
beneath it (loss.class_weight=0), and a call that never misses a field its own probabilities call
more likely malignant.
"""

from __future__ import annotations

import numpy as np

CALL_RULES = ("argmax", "benign_first")


def call_classes(probs: np.ndarray, benign_index: int | None = None, rule: str = "argmax") -> np.ndarray:
    """The called class of each row of (N, K) probabilities; `benign_first` needs Benign's index."""
    probs = np.asarray(probs)
    if rule not in CALL_RULES:
        raise ValueError(f"unknown call rule {rule!r}; known: {', '.join(CALL_RULES)}")
    if len(probs) == 0:
        return np.zeros(0, int)
    if rule == "argmax":
        return probs.argmax(axis=1)
    if benign_index is None:
        raise ValueError("the benign_first call needs a Benign class")
    malignant = probs.copy()
    malignant[:, benign_index] = -np.inf
    return np.where(probs[:, benign_index] >= 0.5, benign_index, malignant.argmax(axis=1))


def called_probability(probs: np.ndarray, called: np.ndarray) -> np.ndarray:
    """Each row's probability of the class it was called."""
    probs = np.asarray(probs)
    return probs[np.arange(len(probs)), np.asarray(called, dtype=int)]
