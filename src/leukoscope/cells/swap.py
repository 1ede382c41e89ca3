"""Background swap: a field's own leukocytes pasted onto the background of a field of another class.

A model that looks at the cells keeps its prediction; a model that reads the background follows
the donor's class.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.cells.detect import leukocyte_mask


def swap_background(cells_from: np.ndarray, background_from: np.ndarray) -> np.ndarray:
    """`cells_from`'s leukocytes (soft-edged) over `background_from` with its own leukocytes painted out."""
    h, w = cells_from.shape[:2]
    donor = background_from if background_from.shape[:2] == (h, w) else cv2.resize(background_from, (w, h), interpolation=cv2.INTER_AREA)
    donor_mask = leukocyte_mask(donor, grow=0.8).astype(np.uint8)  # generous: no nucleus residue may survive
    clean = cv2.inpaint(donor, donor_mask, 5, cv2.INPAINT_TELEA) if donor_mask.any() else donor.copy()
    mask = leukocyte_mask(cells_from, grow=0.3).astype(np.float32)
    alpha = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
    return np.clip(alpha * cells_from + (1 - alpha) * clean, 0, 255).astype(np.uint8)


def swap_partners(labels: list[str], seed: int = 0) -> list[int]:
    """For each image, the index of a donor of a different class (deterministic, spread over classes)."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    partners = []
    for i, lab in enumerate(labels):
        others = [c for c in sorted(by_class) if c != lab]
        if not others:
            partners.append(i)
            continue
        donor_class = others[int(rng.integers(len(others)))]
        pool = by_class[donor_class]
        partners.append(pool[int(rng.integers(len(pool)))])
    return partners
