"""Network outputs to calibrated, flagged predictions per image: the one rule that training's own
scoring of validation and test and every prediction at inference share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leukoscope.cells.focus import field_detail
from leukoscope.models.mil import member_probs, pool_bags
from leukoscope.scoring.bundle import Bundle
from leukoscope.scoring.calibration import softmax
from leukoscope.scoring.calls import called_probability
from leukoscope.scoring.screening import screen_positive

LogitsAndFeatures = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # preprocessed units -> (logits, features)


@dataclass
class Predictions:
    """Per-image outputs for a batch of preprocessed images."""

    logits: np.ndarray
    probs: np.ndarray
    ood_score: np.ndarray
    ood: np.ndarray
    abstain: np.ndarray
    units: np.ndarray | None = None  # model inputs per image: 1 for a field, the number of cells otherwise
    unit_probs: np.ndarray | None = None  # calibrated probabilities of every unit, images in order
    ood_reasons: list[str] | None = None  # why each image is out of distribution ("" when it is not)
    unit_ood_score: np.ndarray | None = None  # every unit's own OOD score, images in order
    unit_unlike: np.ndarray | None = None  # whether each unit's image statistics fall outside the training range
    unit_attention: np.ndarray | None = None  # each unit's weight in its image's call (attention pooling), None with the mean rule
    screen: np.ndarray | None = None  # whether each image screens malignant at the bundle's cut (None: no Benign class)
    called: np.ndarray | None = None  # each image's call by the bundle's rule (None: the most probable class)
    abstain_reasons: list[str] | None = None  # why each image's call goes to review ("" when it does not)
    detail: np.ndarray | None = None  # each image's fine detail (cells/focus.py; NaN where no cell can say), None unchecked

    @property
    def labels(self) -> np.ndarray:
        return self.probs.argmax(axis=1) if self.called is None else self.called

    @property
    def confidence(self) -> np.ndarray:
        """The called class's probability."""
        return called_probability(self.probs, self.labels)

    @property
    def out_of_focus(self) -> np.ndarray:
        """Whether each image went to review with too little fine detail to call."""
        return np.array([OUT_OF_FOCUS in why for why in self.abstain_reasons or [""] * len(self.probs)], dtype=bool)


NO_CELLS, UNLIKE_STATS, FAR_FEATURES = "no leukocyte found", "image statistics outside the training range", "features far from the training classes"


def ood_reason(no_cells: bool, unlike_stats: Sequence[str], far_score: float | None, threshold: float) -> str:
    """Why an image is out of distribution, in words; "" when it is not."""
    parts = [NO_CELLS] if no_cells else []
    if unlike_stats:
        parts.append(f"{UNLIKE_STATS} ({', '.join(unlike_stats)})")
    if far_score is not None:
        parts.append(f"{FAR_FEATURES} (score {far_score:.3g} > {threshold:.3g})")
    return "; ".join(parts)


TOO_FEW, LOW_CONFIDENCE = "too few leukocytes to call", "confidence below the abstain threshold"
DISAGREE = "the ensemble's members disagree"
# a finer pixel size than the one assumed spreads a sharp cell's detail over more pixels, as a blur does
OUT_OF_FOCUS = "too little fine detail to call (out of focus, or a finer pixel size than assumed)"


def min_leukocytes_problem(minimum: int, cell_level: bool) -> str | None:
    """What is wrong with a minimum of leukocytes for a model of this level; None when nothing is.
    Callers name their own option before it."""
    if minimum < 0:
        return "a number of leukocytes is 0 or more"
    if minimum and not cell_level:
        return "a whole-field model counts no leukocytes; a minimum needs a cell-level model (cells.enabled)"
    return None


def abstain_reason(
    ood_reason: str, leukocytes: int, min_leukocytes: int, confidence: float | None, threshold: float, detail: float | None = None, min_detail: float | None = None,
    disagreement: str = "",
) -> str:
    """Why an image's call goes to review, in words; "" when it does not. `confidence` is None where
    there is no call to be sure of (no leukocyte found); `detail` None where focus was not checked;
    `disagreement` says how an ensemble's members split ("" when they agree)."""
    parts = [ood_reason] if ood_reason else []
    if 0 < leukocytes < min_leukocytes:
        parts.append(f"{TOO_FEW} ({leukocytes} < {min_leukocytes})")
    if detail is not None and min_detail is not None and detail < min_detail:
        parts.append(f"{OUT_OF_FOCUS} ({detail:.3g} < {min_detail:.3g})")
    if disagreement:
        parts.append(f"{DISAGREE} ({disagreement})")
    if confidence is not None and confidence < threshold:
        parts.append(f"{LOW_CONFIDENCE} ({confidence:.3g} < {threshold:.3g})")
    return "; ".join(parts)


def reviewed_whatever_confidence(reason: str) -> bool:
    """Whether an `abstain_reason` sends its call to review for a reason of its own, not only for a confidence below the threshold."""
    return any(part and not part.startswith(LOW_CONFIDENCE) for part in reason.split("; "))


def reason_count(rows: Sequence[dict[str, Any]], reason: str) -> int:
    """How many rows were sent to review for `reason` (among others): TOO_FEW, OUT_OF_FOCUS, DISAGREE."""
    return sum(reason in r["abstain_reason"] for r in rows)


def member_split(bundle: Bundle, member_probs_of_field: np.ndarray) -> str:
    """How an ensemble's members split on what abstention vouches for, in words ("" when they agree)."""
    calls = bundle.calls(member_probs_of_field)
    vouched = bundle.vouched_calls(calls)
    if len(set(vouched.tolist())) <= 1:
        return ""
    if bundle.abstain_on == "malignancy" and bundle.benign_index is not None:
        return f"{int((~vouched).sum())} of {len(vouched)} call it malignant"
    counts = np.bincount(calls, minlength=len(bundle.classes))
    return ", ".join(f"{bundle.classes[k]} {n}" for k, n in enumerate(counts) if n)


def ood_reason_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many rows each kind of reason flagged out of distribution, most frequent first."""
    counts = {kind: sum(kind in r["ood_reason"] for r in rows if r["ood"]) for kind in (NO_CELLS, UNLIKE_STATS, FAR_FEATURES)}
    return {kind: n for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n}


def score_units(bundle: Bundle, per_image: Sequence[np.ndarray], logits_and_features: LogitsAndFeatures) -> Predictions:
    """Per-image predictions from each image's units (the field, or its cell crops): the mean of the
    units' calibrated log-probabilities (or, for a bundle with attention pooling, the pool's call over
    their features), their mean OOD score, and the flags with their reasons."""
    b = bundle
    k = len(b.classes)
    counts = [len(u) for u in per_image]
    stacked = np.concatenate([u for u in per_image if len(u)]) if any(counts) else None
    if stacked is not None:
        unit_logits, feats = logits_and_features(stacked)
        unit_probs = softmax(unit_logits, b.temperature)
        log_p = np.log(np.clip(unit_probs, 1e-12, 1.0))
        unit_ood = b.ood.score(feats.astype(np.float64)) if b.ood is not None else np.zeros(len(stacked))
        unit_stats_out = b.image_ood.outside_each(stacked) if b.image_ood is not None else np.zeros((len(stacked), 0), bool)
    logits = np.zeros((len(per_image), k))
    probs = np.full((len(per_image), k), 1.0 / k)
    score = np.zeros(len(per_image))
    empty = np.zeros(len(per_image), bool)
    unlike_stats: list[list[str]] = [[] for _ in per_image]  # named when most of the image's units are unlike
    pooled = None
    disagreement = [""] * len(per_image)
    if b.mil is not None and stacked is not None:
        offsets = np.cumsum([0, *counts])
        bags = [feats[offsets[i] : offsets[i + 1]] for i in range(len(counts)) if counts[i]]
        pooled_logits, weights = pool_bags(b.mil, bags)
        pooled = iter(zip(pooled_logits, weights))
        unit_attention = np.concatenate(weights)
        if b.flag_disagreement:
            split_of = iter(member_split(b, p) for p in member_probs(b.mil, bags).transpose(1, 0, 2))
            disagreement = [next(split_of) if n else "" for n in counts]
    start = 0
    for i, n in enumerate(counts):
        if n == 0:
            empty[i] = True
            continue
        if pooled is not None:
            logits[i], _ = next(pooled)
            probs[i] = softmax(logits[i][None], b.mil_temperature)[0]
        else:
            mean_log_p = log_p[start : start + n].mean(0)
            logits[i] = unit_logits[start : start + n].mean(0)
            probs[i] = softmax(mean_log_p[None])[0]
        score[i] = unit_ood[start : start + n].mean()
        stats_out = unit_stats_out[start : start + n]
        if stats_out.any(axis=1).mean() > 0.5:
            unlike_stats[i] = [name for name, out in zip(b.image_ood.names, stats_out.any(axis=0)) if out]
        start += n
    detail = None
    if b.focus is not None:
        detail = np.array([np.nan if (d := field_detail(units, b.focus.fill)) is None else d for units in per_image])
    unlike = np.array([bool(names) for names in unlike_stats], dtype=bool)
    far = (score > b.ood.threshold) if b.ood is not None else np.zeros(len(per_image), bool)
    ood = empty | unlike | far
    confidence = b.call_confidence(probs)
    threshold = b.ood.threshold if b.ood is not None else float("inf")
    reasons = [ood_reason(empty[i], unlike_stats[i], float(score[i]) if far[i] else None, threshold) for i in range(len(per_image))]
    why = [
        abstain_reason(
            reasons[i], counts[i], b.min_leukocytes, None if empty[i] else float(confidence[i]), b.abstain_threshold,
            None if detail is None or np.isnan(detail[i]) else float(detail[i]), None if b.focus is None else b.focus.floor, disagreement[i],
        )
        for i in range(len(per_image))
    ]  # fmt: skip
    abstain = np.array([bool(w) for w in why], dtype=bool)  # a call goes to review exactly when there is a reason
    if stacked is None:
        unit_probs, unit_ood, unit_stats_out = np.zeros((0, k)), np.zeros(0), np.zeros((0, 0), bool)
    attention = unit_attention if pooled is not None else None
    screen = screen_positive(probs, b.benign_index, b.screening_threshold, b.call_rule) if b.benign_index is not None else None
    return Predictions(
        logits, probs, score, ood, abstain, np.asarray(counts), unit_probs, reasons, unit_ood, unit_stats_out.any(axis=1), attention, screen,
        called=b.calls(probs), abstain_reasons=why, detail=detail,
    )  # fmt: skip
