"""Classification metrics with 95 % intervals, on scikit-learn where it has them."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from leukoscope.scoring.calibration import calibration_errors
from leukoscope.scoring.calls import call_classes
from leukoscope.config import BENIGN_CLASS
from leukoscope.scoring.intervals import bootstrap, wilson
from leukoscope.scoring.screening import screen_positive, specificity_at_sensitivity

SCREENING_REFERENCE = 0.99  # every evaluation states the specificity its ranking allows at this sensitivity


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """The mean over classes 0..k-1 of 2·TP / (2·TP + FP + FN), 0 for a class never true nor called: scikit-learn's
    macro F1 over `labels=range(k)` with zero_division=0, at a hundredth of its cost, for bootstraps of thousands of
    resamples. A call of k stands for one outside the k classes: a miss of its true class, no class's false positive."""
    cm = np.bincount((k + 1) * np.asarray(y_true) + np.asarray(y_pred), minlength=(k + 1) ** 2).reshape(k + 1, k + 1)[:k]
    tp = np.diag(cm)
    denominator = 2 * tp + (cm[:, :k].sum(0) - tp) + (cm.sum(1) - tp)
    return float(np.mean(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)))


def classification_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    bootstrap_resamples: int = 1000,
    seed: int = 0,
    benign: str = BENIGN_CLASS,
    screen_threshold: float | None = None,
    call_rule: str = "argmax",
) -> dict[str, Any]:
    """Everything metrics.json promises, for integer labels and (N, K) probabilities; `screen_threshold`
    is the bundle's screening cut on p(Benign) (scoring/screening.py), None for the plain call alone;
    `call_rule` how probabilities become calls (scoring/calls.py)."""
    y_true = np.asarray(y_true)
    k = len(classes)
    y_pred = call_classes(probs, classes.index(benign) if benign in classes else None, call_rule)
    n = len(y_true)
    correct = int((y_pred == y_true).sum())
    labels = list(range(k))
    out: dict[str, Any] = {"n": n, "classes": classes, "call_rule": call_rule, "accuracy": correct / n if n else 0.0, "accuracy_ci": list(wilson(correct, n))}
    if n == 0:
        return out
    out["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
    out["macro_f1"] = macro_f1(y_true, y_pred, k)
    out["macro_f1_ci"] = list(bootstrap(lambda idx: macro_f1(y_true[idx], y_pred[idx], k), n, bootstrap_resamples, seed))
    out["cohen_kappa"] = float(cohen_kappa_score(y_true, y_pred, labels=labels))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    out["confusion_matrix"] = cm.tolist()
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = {}
    for i, name in enumerate(classes):
        tp, fn = int(cm[i, i]), int(cm[i].sum() - cm[i, i])
        fp = int(cm[:, i].sum() - cm[i, i])
        tn = int(cm.sum() - tp - fn - fp)
        entry = {
            "support": int(support[i]),
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "recall_ci": list(wilson(tp, tp + fn)),
            "f1": float(f1[i]),
            "specificity": tn / (tn + fp) if tn + fp else 0.0,
            "specificity_ci": list(wilson(tn, tn + fp)),
        }
        positives = y_true == i
        if positives.any() and (~positives).any():
            entry["auroc"] = float(roc_auc_score(positives, probs[:, i]))
        per_class[name] = entry
    out["per_class"] = per_class
    aurocs = [v["auroc"] for v in per_class.values() if "auroc" in v]
    if aurocs:
        out["macro_auroc"] = float(np.mean(aurocs))
    out["ece"], out["mce"] = calibration_errors(probs, y_true)
    if benign in classes and k > 1:
        b = classes.index(benign)
        malignant_true, malignant_pred = y_true != b, y_pred != b
        pos, neg = int(malignant_true.sum()), int((~malignant_true).sum())
        out["benign_vs_malignant"] = _binary(malignant_true, malignant_pred)
        if pos and neg:
            out["benign_vs_malignant"]["auroc"] = float(roc_auc_score(malignant_true, 1 - probs[:, b]))
            out["benign_vs_malignant"]["specificity_at_99_sensitivity"] = specificity_at_sensitivity(
                probs[:, b], malignant_true, SCREENING_REFERENCE
            )
        if screen_threshold is not None:
            screened = screen_positive(probs, b, screen_threshold, call_rule)
            out["screening"] = {"p_benign_below": screen_threshold, **_binary(malignant_true, screened)}
    return out


def _binary(malignant_true: np.ndarray, malignant_pred: np.ndarray) -> dict[str, Any]:
    """Malignant sensitivity and benign specificity of one benign/malignant call, with Wilson intervals."""
    tp = int((malignant_true & malignant_pred).sum())
    tn = int((~malignant_true & ~malignant_pred).sum())
    pos, neg = int(malignant_true.sum()), int((~malignant_true).sum())
    return {
        "sensitivity": tp / pos if pos else 0.0,
        "sensitivity_ci": list(wilson(tp, pos)),
        "specificity": tn / neg if neg else 0.0,
        "specificity_ci": list(wilson(tn, neg)),
        "accuracy": (tp + tn) / len(malignant_true),
        "accuracy_ci": list(wilson(tp + tn, len(malignant_true))),
    }
