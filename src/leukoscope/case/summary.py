"""A case's summary: leukocytes counted per class with 95 % intervals, the blast-like share, and the call.

The page recounts with the same rule as the reviewer works (serve/static/index.html, `summarise`):
a reviewed class replaces the model's label and makes the cell reliable; "not a leukocyte" removes
the cell; "other leukocyte" counts as a leukocyte of no class; "unsure" keeps the model's label but
not its reliability. The call is the class most reliable cells carry, or a referral when fewer than
`min_reliable` cells are reliable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from leukoscope.cells.review import NOT_A_LEUKOCYTE, OTHER_LEUKOCYTE, UNSURE
from leukoscope.config import BENIGN_CLASS
from leukoscope.scoring.intervals import wilson

DEFAULT_MIN_RELIABLE = 5
REFER = "refer: not enough reliable cells"


def _share(k: int, n: int) -> dict[str, Any]:
    low, high = wilson(k, n) if n else (0.0, 0.0)
    return {"n": k, "share": k / n if n else 0.0, "ci": [low, high]}


def summarise(
    cells: Sequence[Mapping[str, Any]], classes: Sequence[str], min_reliable: int = DEFAULT_MIN_RELIABLE, reviews: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """Counts, shares and the case call for `cells` (case.json's cell records), after `reviews` (cell id -> reviewed label)."""
    reviews = reviews or {}
    counted: list[tuple[str, bool]] = []  # (label, reliable) of every leukocyte
    for cell in cells:
        reviewed = reviews.get(int(cell["id"]), "")
        if reviewed == NOT_A_LEUKOCYTE:
            continue
        if reviewed == OTHER_LEUKOCYTE:
            counted.append((OTHER_LEUKOCYTE, False))
        elif reviewed and reviewed != UNSURE:
            counted.append((reviewed, True))
        else:
            counted.append((cell["label"], not reviewed and not cell["abstain"]))
    n = len(counted)
    per_label = Counter(label for label, _ in counted)
    reliable = Counter(label for label, ok in counted if ok)
    n_reliable = sum(reliable.values())
    malignant = [c for c in classes if c != BENIGN_CLASS]
    summary: dict[str, Any] = {
        "leukocytes": n,
        "reviewed": sum(1 for cell in cells if reviews.get(int(cell["id"]))),
        "per_class": {c: _share(per_label[c], n) for c in classes},
        "other_leukocytes": per_label[OTHER_LEUKOCYTE],
        "blast_like": _share(sum(per_label[c] for c in malignant), n),
        "reliable": n_reliable,
        "min_reliable": min_reliable,
    }
    if n_reliable < min_reliable:
        why = "no leukocyte found" if n == 0 else f"{n_reliable} of {n} leukocytes reliable, at least {min_reliable} needed"
        summary["call"] = {"label": None, "text": f"{REFER} ({why})"}
    else:
        label, k = max(reliable.items(), key=lambda kv: (kv[1], -list(classes).index(kv[0])))
        summary["call"] = {"label": label, **_share(k, n_reliable), "text": f"{label}: {k} of {n_reliable} reliable cells"}
    return summary
