"""Paired comparison of two models on the same images: exact McNemar test and paired bootstrap CIs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from leukoscope.errors import DataError
from leukoscope.scoring.metrics import macro_f1


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (A right, B wrong) and c (A wrong, B right)."""
    n = b + c
    if n == 0:
        return 1.0
    return float(binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue)


def read_predictions(path: str | Path) -> dict[str, tuple[str, str]]:
    """path -> (true, predicted) from an evaluate predictions.csv."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: predictions file not found")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label", "true"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; use the predictions.csv of `leukoscope evaluate`")
        return {row["path"]: (row["true"], row["label"]) for row in reader}


def compare_predictions(a_file: str | Path, b_file: str | Path, resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    a, b = read_predictions(a_file), read_predictions(b_file)
    common = sorted(set(a) & set(b))
    if not common:
        raise DataError(f"{a_file} and {b_file} share no image paths: a paired comparison needs the same images")
    mismatched = [p for p in common if a[p][0] != b[p][0]]
    if mismatched:
        raise DataError(f"the true label of {mismatched[0]} differs between the two files")
    truth = np.array([a[p][0] for p in common])
    pred_a, pred_b = np.array([a[p][1] for p in common]), np.array([b[p][1] for p in common])
    ok_a, ok_b = pred_a == truth, pred_b == truth
    b_count, c_count = int((ok_a & ~ok_b).sum()), int((~ok_a & ok_b).sum())
    p_value = mcnemar_exact(b_count, c_count)
    labels = sorted(set(truth))  # the macro F1's classes; a call outside them (k) only misses its true class
    k = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    true_i = np.array([index[t] for t in truth])
    pred_a_i, pred_b_i = (np.array([index.get(p, k) for p in pred]) for pred in (pred_a, pred_b))
    rng = np.random.default_rng(seed)
    n = len(common)
    diffs_acc, diffs_f1 = [], []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        diffs_acc.append(ok_a[idx].mean() - ok_b[idx].mean())
        diffs_f1.append(macro_f1(true_i[idx], pred_a_i[idx], k) - macro_f1(true_i[idx], pred_b_i[idx], k))
    acc_a, acc_b = float(ok_a.mean()), float(ok_b.mean())
    f1_a, f1_b = macro_f1(true_i, pred_a_i, k), macro_f1(true_i, pred_b_i, k)
    significant = p_value < alpha
    sentence = (
        f"{'A' if acc_a > acc_b else 'B'} is more accurate, significant at {100 * alpha:.0f} % (exact McNemar p = {p_value:.3g})"
        if significant
        else f"no significant difference at {100 * alpha:.0f} % (exact McNemar p = {p_value:.3g})"
    )
    return {
        "n": n,
        "only_in_a": len(set(a) - set(b)),
        "only_in_b": len(set(b) - set(a)),
        "accuracy_a": acc_a,
        "accuracy_b": acc_b,
        "macro_f1_a": f1_a,
        "macro_f1_b": f1_b,
        "a_right_b_wrong": b_count,
        "a_wrong_b_right": c_count,
        "mcnemar_p": p_value,
        "accuracy_difference": acc_a - acc_b,
        "accuracy_difference_ci": [float(np.quantile(diffs_acc, 0.025)), float(np.quantile(diffs_acc, 0.975))],
        "macro_f1_difference": f1_a - f1_b,
        "macro_f1_difference_ci": [float(np.quantile(diffs_f1, 0.025)), float(np.quantile(diffs_f1, 0.975))],
        "significant": significant,
        "conclusion": sentence,
    }
