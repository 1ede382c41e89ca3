"""The screening operating point: how sure of Benign the model must be before a field is let go.

A second reader that screens for ALL must miss few leukaemias. The plain call (the most probable
class) trades sensitivity for specificity wherever the probabilities happen to fall; the screening
call fixes the trade on validation data instead: a field screens positive (malignant) unless
p(Benign) reaches a cut chosen on the validation's malignant fields for the target sensitivity.
It only ever adds positives to the plain call, never removes one.

The cut at which the validation fields reach the target (`reached`) is the most specific, but it is fitted
to those fields: on new ones it falls short of the target about half the time. The `conformal` cut is the
next order statistic up that makes it a promise: a new malignant field, exchangeable with the n validation
ones, falls below the ⌈(n+1)·target⌉-th smallest of their p(Benign) with probability at least the target
(split conformal prediction; Vovk et al. 2005, Angelopoulos & Bates 2021).
"""

from __future__ import annotations

import math

import numpy as np

from leukoscope.scoring.calls import call_classes


SCREENING_RULES = ("reached", "conformal")


def fields_below_cut(n_malignant: int, target_sensitivity: float, rule: str = "reached") -> int:
    """How many of the n malignant fields the cut must lie above: enough to reach the target on them
    (`reached`), or on a new field (`conformal`, at most all n)."""
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target sensitivity must lie in (0, 1], got {target_sensitivity}")
    if rule not in SCREENING_RULES:
        raise ValueError(f"screening rule must be one of {', '.join(SCREENING_RULES)}, got {rule!r}")
    if rule == "reached":
        return math.ceil(target_sensitivity * n_malignant - 1e-9)
    return min(n_malignant, math.ceil(target_sensitivity * (n_malignant + 1) - 1e-9))


def screening_threshold(p_benign: np.ndarray, malignant: np.ndarray, target_sensitivity: float, rule: str = "reached") -> float | None:
    """The cut on p(Benign) below which malignant fields screen positive, chosen by `rule` (module
    docstring) for `target_sensitivity`; None without malignant fields to choose it on."""
    p = np.sort(np.asarray(p_benign, np.float64)[np.asarray(malignant, bool)])
    needed = fields_below_cut(len(p), target_sensitivity, rule)
    if len(p) == 0:
        return None
    return float(np.nextafter(p[needed - 1], np.inf))


def too_few_to_screen(n_malignant: int, target_sensitivity: float, rule: str = "reached") -> str | None:
    """Why n malignant validation fields cannot back the target sensitivity on new fields, or None."""
    missed = 1 - target_sensitivity
    if rule == "conformal":
        promised = fields_below_cut(n_malignant, target_sensitivity, rule) / (n_malignant + 1)
        if promised >= target_sensitivity - 1e-12:
            return None
        if missed > 0:
            needed = f"it needs {math.ceil(target_sensitivity / missed - 1e-9)}; label more malignant validation fields"
        else:
            needed = "no number of fields promises 100 %"
        return (
            f"the screening cut rests on {n_malignant} malignant validation fields: the cut above all of them holds "
            f"{100 * promised:.3g} % sensitivity on a new field, not {100 * target_sensitivity:g} % ({needed})"
        )
    if n_malignant * missed >= 1:
        return None
    if missed == 0:
        return f"the screening cut lies above all {n_malignant} malignant validation fields: that promises no new field 100 %"
    return (
        f"the screening cut rests on {n_malignant} malignant validation fields, too few to tell a "
        f"{100 * target_sensitivity:g} % sensitivity from 100 % (it needs {1 / missed:.0f}): expect less on new fields"
    )


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
