"""Does the background move the detector, or another laboratory's stain and camera? No model needed.

Usage: python benchmarks/detection_swap.py [--data DATA] [--per-class 50] [--seed 0] [--shifts] [--outline "lightness guided"]
       [--min-relative-stain 0.5]

Fields are drawn per class (seeded); each field's leukocytes are pasted onto the background of a
field of another class (`cells.swap.swap_background`, as `evaluate --shortcut-checks` does), and the
detector runs on both. A cell of one is matched to the other's cell whose box overlaps it most.
Printed: the share of fields whose detected cells changed, and how many cells went missing (box
IoU < 0.3 with every cell of the swap), appeared, or moved (matched at IoU 0.3-0.8). With `--shifts`,
also under each acquisition shift of `leukoscope.data.shifts`: the share of the unshifted field's
cells found again (IoU >= 0.5, a magnified field's boxes moved with it), the cells that appeared, and
the fields in which no cell was found.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from leukoscope.cells.detect import DetectionConfig, detect_leukocytes
from leukoscope.cells.review import box_iou
from leukoscope.cells.swap import swap_background, swap_partners
from leukoscope.data.discover import discover
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import DOMAIN_SHIFTS, MAGNIFICATIONS, magnified_box

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "taleqani-all"
MISSING_IOU, SAME_IOU, FOUND_IOU = 0.3, 0.8, 0.5


def drawn_fields(data: str, per_class: int, seed: int) -> tuple[list[str], list[str]]:
    """`per_class` fields of each class, drawn with `seed`: their paths and labels."""
    samples = discover(data).samples
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for label in sorted({s.label for s in samples}):
        pool = sorted(s.path for s in samples if s.label == label)
        chosen = rng.choice(len(pool), min(per_class, len(pool)), replace=False)
        paths += [pool[i] for i in chosen]
        labels += [label] * len(chosen)
    return paths, labels


def best_overlaps(boxes: list, others: list) -> np.ndarray:
    return np.array([max((box_iou(a, b) for b in others), default=0.0) for a in boxes])


def drawn_fields_parser(doc: str) -> argparse.ArgumentParser:
    """The options of a benchmark on drawn development fields, with or without the acquisition shifts."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shifts", action="store_true", help="also detect under every acquisition shift")
    return parser


def main() -> None:
    parser = drawn_fields_parser(__doc__)
    parser.add_argument("--outline", default=DetectionConfig.outline, choices=["stain score", "lightness guided"], help="the detector's outline rule")
    parser.add_argument(
        "--min-relative-stain", type=float, default=DetectionConfig.relative, help="a nucleus paler than this share of the field's most stained one is dropped"
    )
    args = parser.parse_args()
    detection = DetectionConfig(outline=args.outline, relative=args.min_relative_stain)
    paths, labels = drawn_fields(args.data, args.per_class, args.seed)
    images = [read_rgb(p) for p in paths]
    partners = swap_partners(labels, args.seed)
    start = time.perf_counter()
    unshifted = [[c.box for c in detect_leukocytes(rgb, detection)[0]] for rgb in images]
    changed = missing = appeared = moved = cells = 0
    for i, (rgb, before) in enumerate(zip(images, unshifted)):
        after = [c.box for c in detect_leukocytes(swap_background(rgb, images[partners[i]], detection), detection)[0]]
        kept, found = best_overlaps(before, after), best_overlaps(after, before)
        field_missing, field_appeared = int((kept < MISSING_IOU).sum()), int((found < MISSING_IOU).sum())
        field_moved = int(((kept >= MISSING_IOU) & (kept < SAME_IOU)).sum())
        changed += bool(field_missing or field_appeared or field_moved)
        missing, appeared, moved, cells = missing + field_missing, appeared + field_appeared, moved + field_moved, cells + len(before)
    print(f"{len(images)} fields ({args.per_class} per class, seed {args.seed}), {cells} cells detected, {time.perf_counter() - start:.1f} s")
    print(f"detected cells changed by the background swap in {changed} fields ({100 * changed / len(images):.1f} %): "
          f"{missing} cells missing, {appeared} appeared, {moved} moved")  # fmt: skip
    if args.shifts:
        print_shift_recall(images, unshifted, {"": detection})


def print_shift_recall(
    images: list[np.ndarray], unshifted: list[list[tuple[int, int, int, int]]], detectors: dict[str, DetectionConfig] | None = None
) -> None:
    """Per shift and detector: how many of the `unshifted` fields' cells (boxes) are found again, and what
    else appears. Under a magnification the boxes are moved where the shift puts them; cells it pushes
    out of the frame are not counted."""
    detectors = detectors or {"": DetectionConfig()}
    for name, shift in DOMAIN_SHIFTS.items():
        factor = MAGNIFICATIONS.get(name, 1.0)
        shifted = [shift(rgb) for rgb in images]
        line = f"  {name:40s}"
        for label, config in detectors.items():
            found = appeared = empty = total = 0
            for rgb, boxes in zip(shifted, unshifted):
                before = [b for b in (magnified_box(box, rgb.shape, factor) for box in boxes) if b is not None]
                after = [c.box for c in detect_leukocytes(rgb, config)[0]]
                found += int((best_overlaps(before, after) >= FOUND_IOU).sum())
                appeared += int((best_overlaps(after, before) < MISSING_IOU).sum())
                empty += not after
                total += len(before)
            line += f"  {label}found again {100 * found / max(total, 1):5.1f} %  appeared {appeared:4d}  fields with no cell {empty:3d}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
