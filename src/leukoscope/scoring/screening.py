"""The screening operating point: how sure of Benign the model must be before a field is let go.

A second reader that screens for ALL must miss few leukaemias. The plain call (the most probable
class) trades sensitivity for specificity wherever the probabilities happen to fall; the screening
call fixes the trade on validation data instead: a field screens positive (malignant) unless
p(Benign) reaches the cut at which the validation's malignant fields reached the target
sensitivity. It only ever adds positives to the plain call, never removes one.
"""

from __future__ import annotations

import math

import numpy as np

from leukoscope.scoring.calls import call_classes


def screening_threshold(p_benign: np.ndarray, malignant: np.ndarray, target_sensitivity: float) -> float | None:
    """The lowest cut on p(Benign) below which at least `target_sensitivity` of the malignant
    fields fall; None without malignant fields to choose it on."""
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target sensitivity must lie in (0, 1], got {target_sensitivity}")
    p = np.sort(np.asarray(p_benign, np.float64)[np.asarray(malignant, bool)])
    if len(p) == 0:
        return None
    needed = math.ceil(target_sensitivity * len(p) - 1e-9)  # fields that must fall below the cut
    return float(np.nextafter(p[needed - 1], np.inf))


def screen_positive(probs: np.ndarray, benign_index: int, threshold: float | None, call_rule: str = "argmax") -> np.ndarray:
    """Whether each field screens malignant: its plain call is malignant, or p(Benign) is below the cut."""
    probs = np.asarray(probs)
    positive = call_classes(probs, benign_index, call_rule) != benign_index
    if threshold is not None:
        positive |= probs[:, benign_index] < threshold
    return positive


def specificity_at_sensitivity(p_benign: np.ndarray, malignant: np.ndarray, target_sensitivity: float) -> float | None:
    """Benign specificity at the cut chosen on these same fields: what their ranking allows at best."""
    threshold = screening_threshold(p_benign, malignant, target_sensitivity)
    benign = ~np.asarray(malignant, bool)
    if threshold is None or not benign.any():
        return None
    return float((np.asarray(p_benign)[benign] >= threshold).mean())
