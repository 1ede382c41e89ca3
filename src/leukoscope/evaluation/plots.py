"""matplotlib figures for the report, returned as PNG bytes so the HTML can embed them."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def confusion_png(cm: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title("confusion matrix")
    return _png(fig)


def roc_png(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> bytes:
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    for k, name in enumerate(classes):
        positives = y_true == k
        if positives.any() and (~positives).any():
            fpr, tpr, _ = roc_curve(positives, probs[:, k])
            ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, one vs rest")
    ax.legend(fontsize=8)
    return _png(fig)


def reliability_png(curves: dict[str, list[dict[str, float]]]) -> bytes:
    """Reliability diagrams, one line per named set of bins (e.g. before / after temperature scaling)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="perfect")
    for name, bins in curves.items():
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=name, ms=4)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram")
    ax.legend(fontsize=8)
    return _png(fig)


def curves_png(epochs: dict[str, list[tuple[int, float]]]) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, points in epochs.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax.set_xlabel("epoch")
    ax.set_title("training curves")
    ax.legend(fontsize=8)
    return _png(fig)


def bars_png(values: dict[str, float], chance: float | None = None, title: str = "") -> bytes:
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    names = list(values)
    ax.barh(names, [100 * values[n] for n in names], color="#4a78b5")
    if chance is not None:
        ax.axvline(100 * chance, color="red", ls="--", label="chance")
        ax.legend(fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title)
    return _png(fig)
