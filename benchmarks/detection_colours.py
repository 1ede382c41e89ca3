"""The development fields' colour range, and what bringing a shifted field into it does to the detector.

Usage: python benchmarks/detection_colours.py [--data DATA] [--per-class 50] [--seed 0] [--shifts]

Per class, and over all drawn fields: the lamp's red and blue over its green (the brightest tenth of
the field) and the nuclei's hue, as `cells.colour_range` measures them, with the percentiles its
`ColourRange` defaults come from (the lower edges the detector's, the upper ones the crops' too). Then how many fields the range
changes (cells found differ from those found without it). With `--shifts`, under each acquisition
shift: the share of the unshifted field's cells (found without the range) found again (box IoU >= 0.5),
the cells that appeared and the fields left with none, without and with the range.
"""

from __future__ import annotations

import time

import numpy as np
from detection_swap import drawn_fields, drawn_fields_parser, print_shift_recall

from leukoscope.cells.colour_range import measure_anchors
from leukoscope.cells.detect import DetectionConfig, detect_leukocytes
from leukoscope.data.images import read_rgb

WITHOUT = DetectionConfig(colour_range=None)


def print_range(images: list[np.ndarray], labels: list[str], cells: list[np.ndarray]) -> None:
    """`cells`: each field's leukocyte mask, found without the range."""
    on_cells = [measure_anchors(rgb, cells=mask) for rgb, mask in zip(images, cells)]
    darkest = [measure_anchors(rgb) for rgb in images]
    lamp = np.array([a.red_and_blue_over_green for a in darkest])
    names = np.array(labels)
    print(f"  fields with no leukocyte found (nuclear hue from the darkest saturated pixels): {sum(not a.on_cells for a in on_cells)}")
    for label in [*sorted(set(labels)), "all"]:
        m = names == label if label != "all" else np.ones(len(names), bool)
        lowest, first, highest = lamp[m].min(0), np.percentile(lamp[m], 1, axis=0), lamp[m].max(0)
        print(f"  {label:8s} lamp R/G, B/G: lowest {lowest[0]:.3f} {lowest[1]:.3f}, 1st percentile {first[0]:.3f} {first[1]:.3f}, "
              f"highest {highest[0]:.3f} {highest[1]:.3f}   nuclear hue, 1st / 5th / 50th / 95th / 99th percentile:", end="")
        for name, anchors in (("on the cells found", on_cells), ("on the darkest pixels", darkest)):
            hue = np.array([a.nuclear_hue for a in anchors])[m]
            print(f"  {name} " + " ".join(f"{np.percentile(hue, q):5.1f}" for q in (1, 5, 50, 95, 99)), end="")
        print(" degrees")


def main() -> None:
    args = drawn_fields_parser(__doc__).parse_args()
    paths, labels = drawn_fields(args.data, args.per_class, args.seed)
    images = [read_rgb(p) for p in paths]
    print(f"{len(images)} fields ({args.per_class} per class, seed {args.seed})")
    started = time.perf_counter()
    found = [detect_leukocytes(rgb, WITHOUT) for rgb in images]
    middle = time.perf_counter()
    within = [[c.box for c in detect_leukocytes(rgb)[0]] for rgb in images]
    took = time.perf_counter() - middle, middle - started
    without = [[c.box for c in cells] for cells, _ in found]
    print_range(images, labels, [label_image > 0 for _, label_image in found])
    changed = sum(a != b for a, b in zip(within, without))
    print(f"fields whose cells the range changes: {changed} of {len(images)}; detection {took[0]:.1f} s with it, {took[1]:.1f} s without")
    if args.shifts:
        print_shift_recall(images, without, {"without the range: ": WITHOUT, "with it: ": DetectionConfig()})


if __name__ == "__main__":
    main()
