"""Background swap: a field's own leukocytes pasted onto the background of a field of another class.

A model that looks at the cells keeps its prediction; a model that reads the background follows
the donor's class.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.cells.detect import DetectionConfig, detect_leukocytes, grown_leukocyte_mask, leukocyte_mask, smoothed_stain_score
from leukoscope.config import ANNOTATION_BOX


def possibly_leukocyte(rgb: np.ndarray, config: DetectionConfig = DetectionConfig()) -> np.ndarray:
    """A permissive mask: every detected leukocyte and every blob above the stain floor, grown.

    Clearing a field must not leave a pale leukocyte that the detector skipped in its own field
    (relative to stronger cells) but would find next to someone else's cells.
    """
    score, scale = smoothed_stain_score(rgb, config)
    k = int(round(9 * scale)) | 1
    stained = cv2.dilate((score > config.min_score).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return stained.astype(bool) | leukocyte_mask(rgb, grow=0.8, config=DetectionConfig(relative=0.0))


def fill_from_elsewhere(rgb: np.ndarray, mask: np.ndarray, tries: int = 40, seed: int = 0) -> np.ndarray:
    """Masked pixels replaced by unmasked pixels of the same field at shifted positions.

    Keeps the field's own texture (red cells, plasma, focus, stain); inpainting smeared large
    purple-blue patches that the detector then took for cells. The annotation corner is never copied.
    """
    h, w = mask.shape
    out = rgb.copy()
    unusable = mask.copy()
    unusable[int(h * ANNOTATION_BOX[0]) :, int(w * ANNOTATION_BOX[1]) :] = True
    todo = mask.copy()
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        if not todo.any():
            break
        shift = (int(rng.integers(-h // 2, h // 2 + 1)), int(rng.integers(-w // 2, w // 2 + 1)))
        usable = todo & ~np.roll(unusable, shift, (0, 1))
        out[usable] = np.roll(rgb, shift, (0, 1))[usable]
        todo &= ~usable
    if todo.any():  # almost the whole field is stained: its median plasma colour
        source = rgb[~unusable] if (~unusable).any() else rgb.reshape(-1, 3)
        out[todo] = np.median(source, axis=0).astype(np.uint8)
    return out


def remove_leukocytes(rgb: np.ndarray) -> np.ndarray:
    """The field with every leukocyte replaced by its own red cells and plasma."""
    return fill_from_elsewhere(rgb, possibly_leukocyte(rgb))


def swap_background(cells_from: np.ndarray, background_from: np.ndarray, detection: DetectionConfig = DetectionConfig()) -> np.ndarray:
    """`cells_from`'s leukocytes (found with `detection`) over `background_from` with its own leukocytes removed.

    Every pixel of a detected leukocyte is copied as it is; the soft edge that hides the seam lies
    outside them. (Blending across the cells moved their pixels by up to 7 grey levels, which the
    check then blamed on the background.)
    """
    h, w = cells_from.shape[:2]
    donor = background_from if background_from.shape[:2] == (h, w) else cv2.resize(background_from, (w, h), interpolation=cv2.INTER_AREA)
    clean = remove_leukocytes(donor)
    cells, labels = detect_leukocytes(cells_from, detection)
    alpha = cv2.GaussianBlur(grown_leukocyte_mask(cells, labels, grow=0.3).astype(np.float32), (0, 0), 1.0)
    alpha[labels > 0] = 1.0
    return np.rint(alpha[..., None] * cells_from + (1 - alpha[..., None]) * clean).clip(0, 255).astype(np.uint8)


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
