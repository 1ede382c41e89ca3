"""`leukoscope evaluate`: a bundle on labelled images -> predictions.csv, metrics.json, report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.data.discover import discover
from leukoscope.data.split import split_rows
from leukoscope.errors import DataError
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import Bundle
from leukoscope.scoring.metrics import classification_metrics
from leukoscope.scoring.predictions import DISAGREE, OUT_OF_FOCUS, TOO_FEW, ood_reason_counts, reason_count


def labelled_paths(bundle: Bundle, data: str | Path, splits_file: str | Path | None, split: str) -> tuple[list[str], list[str]]:
    """(paths, true labels): one split of a splits file, or every image of a labelled dataset."""
    if splits_file:
        rows = split_rows(data, splits_file, split)
        return [r.path for r in rows], [r.label for r in rows]
    variant = bundle.meta.get("data", {}).get("variant") or "Original"
    found = discover(data, variant=variant)
    return [s.path for s in found.samples], [s.label for s in found.samples]


def accepted_error(bundle: Bundle, y: np.ndarray, probs: np.ndarray, abstain: np.ndarray) -> dict[str, Any]:
    """The error of the calls not sent back for review, counted on what abstention vouches for (the class, or
    benign vs malignant): what the validation-chosen threshold promised, checked on these images."""
    wrong = ~bundle.call_correct(bundle.calls(probs), y)
    kept = ~abstain
    return {
        "abstain_on": bundle.abstain_on,
        "accepted": int(kept.sum()),
        "accepted_error": float(wrong[kept].mean()) if kept.any() else None,
        "target_error": (bundle.meta.get("abstain") or {}).get("target_error"),
    }


def evaluate_paths(
    predictor: Predictor, paths: list[str], truth: list[str], bootstrap: int = 1000, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, str]]]:
    classes = predictor.bundle.classes
    unknown = sorted(set(truth) - set(classes))
    if unknown:
        raise DataError(f"labels {', '.join(unknown)} are not classes of this model ({', '.join(classes)})")
    if not paths:
        raise DataError("no images to evaluate")
    rows, failures = predictor.predict_paths(paths)
    true_of = dict(zip(paths, truth))
    for r in rows:
        r["true"] = true_of[r["path"]]
    y = np.array([classes.index(r["true"]) for r in rows])
    probs = np.array([[r[f"p_{c}"] for c in classes] for r in rows]) if rows else np.zeros((0, len(classes)))
    metrics = classification_metrics(y, probs, classes, bootstrap, seed, screen_threshold=predictor.bundle.screening_threshold, call_rule=predictor.bundle.call_rule)
    metrics["abstained"] = int(sum(r["abstain"] for r in rows))
    metrics.update(accepted_error(predictor.bundle, y, probs, np.array([r["abstain"] for r in rows], bool)))
    metrics["min_leukocytes"] = predictor.bundle.min_leukocytes
    metrics["too_few_leukocytes"] = reason_count(rows, TOO_FEW)
    if predictor.bundle.focus is not None:
        metrics["min_fine_detail"] = predictor.bundle.focus.floor
        metrics["out_of_focus"] = reason_count(rows, OUT_OF_FOCUS)
    if predictor.bundle.flag_disagreement:
        metrics["members_disagree"] = reason_count(rows, DISAGREE)
    metrics["ood_flagged"] = int(sum(r["ood"] for r in rows))
    metrics["ood_reasons"] = ood_reason_counts(rows)
    metrics["unreadable"] = failures
    return rows, metrics, failures
