"""The red-cell ruler under a known magnification: how far short of the truth does it measure a set's pixel scale?

Usage: python benchmarks/red_cell_ruler.py --splits SPLITS [--data DATA] [--every 5] [--synthetic 32]

Each test field (every Nth) is magnified as the domain-shift benchmark does (`data.shifts.magnify`:
enlarged and centre-cropped, or shrunk and padded), and its red cells measured. Printed per
magnification: the set's pixel scale (`estimate_pixel_scale`, what `--pixel-size auto` uses) over the
unshifted set's, against the true factor; the median and 10th-90th percentile of one field's ruler
against the same field unshifted; how many fields could be measured; the time per field. Before them,
the unshifted fields' own rulers per class: where the classes were photographed in their own
sessions, a field's ruler can tell the session, and crops sized by it can carry the class. Then the
same for `--synthetic` generated fields drawn at each magnification, whose red cells' true diameter is
known.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from leukoscope.cells.ruler import estimate_pixel_scale, measure_red_cells
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import magnify
from leukoscope.data.split import split_rows
from leukoscope.data.synth import RED_CELL_DIAMETER, SYNTH_CLASSES, synth_field

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "taleqani-all"
MAGNIFICATIONS = (0.5, 2.0, 3.0, 4.0)


def development_fields(data: str, splits: str, every: int) -> tuple[list[np.ndarray], list[str]]:
    """Every `every`th field of the splits file's test split, and their classes."""
    rows = split_rows(data, splits, "test")[::every]
    return [read_rgb(r.path) for r in rows], [r.label for r in rows]


def development_rows(images: list[np.ndarray], labels: list[str]) -> None:
    base = [measure_red_cells(x) for x in images]
    print("one field's ruler by class, px (10-90 %):", end="")
    for label in sorted(set(labels)):
        px = [r.red_cell_px for r, y in zip(base, labels) if r is not None and y == label]
        lo, mid, hi = np.percentile(px, [10, 50, 90])
        print(f"  {label} {mid:.1f} ({lo:.1f}-{hi:.1f})", end="")
    print()
    reference = estimate_pixel_scale(base, 1.0)
    if reference is None:
        raise SystemExit("fewer than 3 unshifted fields could be measured")
    print(f"{len(images)} development test fields; unshifted: {reference.red_cell_px:.2f} px over {reference.measured}")
    print(f"  {'magnification':14} {'set / true':>10} {'one field / true (10-90 %)':>28} {'measured':>9} {'ms/field':>9}")
    for factor in MAGNIFICATIONS:
        started = time.perf_counter()
        rulers = [measure_red_cells(magnify(x, factor)) for x in images]
        ms = 1000 * (time.perf_counter() - started) / len(images)
        estimate = estimate_pixel_scale(rulers, 1.0)
        per_field = [r.red_cell_px / (r0.red_cell_px * factor) for r, r0 in zip(rulers, base) if r is not None and r0 is not None]
        lo, mid, hi = np.percentile(per_field, [10, 50, 90])
        ratio = "-" if estimate is None else f"{estimate.pixel_scale / reference.pixel_scale / factor:.3f}"
        print(f"  x{factor:<13g} {ratio:>10} {mid:>13.3f} ({lo:.2f}-{hi:.2f}) {len(per_field):>5}/{len(images):<3} {ms:>9.0f}")


def synthetic_rows(n: int) -> None:
    print(f"{n} synthetic fields per magnification (red cells {RED_CELL_DIAMETER:.0f} px across at x1)")
    for factor in (1.0, *MAGNIFICATIONS):
        rulers = [measure_red_cells(synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng([6, i]), size=224, magnification=factor)[0]) for i in range(n)]
        estimate = estimate_pixel_scale(rulers, RED_CELL_DIAMETER)
        ratio = "-" if estimate is None else f"{estimate.pixel_scale / factor:.3f}"
        print(f"  x{factor:<13g} {ratio:>10} {'':>28} {sum(r is not None for r in rulers):>5}/{n:<3}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--splits", required=True)
    parser.add_argument("--every", type=int, default=5, help="keep every Nth test field")
    parser.add_argument("--synthetic", type=int, default=32, help="synthetic fields per magnification (0: none)")
    args = parser.parse_args()
    development_rows(*development_fields(args.data, args.splits, args.every))
    if args.synthetic:
        synthetic_rows(args.synthetic)


if __name__ == "__main__":
    main()
