"""Which leukocytes the detector's paleness rule drops: a nucleus whose median stain score is below a share of the
field's most stained nucleus is taken for a red cell under a purple cast. No model needed.

Usage: python benchmarks/paler_nuclei.py [--data DATA] [--per-class 50] [--seed 0] [--cuts 0.6 0.5 0.4 0.3]
       [--sheet paler_nuclei.png]

On drawn development fields (as `detection_swap.py` draws them), the recipe's detector (`configs/cells.yaml`) runs at
each cut. Printed per class: the cells found at the first cut, and those each lower cut adds. The cells the second cut
adds to the first are written as a contact sheet, each tile labelled with its class and radius (px at 224), so
whether they are leukocytes or red cells is seen, not assumed.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict

import cv2
import numpy as np
from detection_swap import MISSING_IOU, best_overlaps, drawn_fields, drawn_fields_parser

from leukoscope.cells.cache import detection_config
from leukoscope.cells.detect import Cell, detect_leukocytes
from leukoscope.config import load_config
from leukoscope.data.images import read_rgb

TILE = 64
COLUMNS = 16


def added(cells: list[Cell], before: list[Cell]) -> list[Cell]:
    """The cells of `cells` that appeared: no cell of `before` overlaps their box (IoU < 0.3, as `detection_swap.py` counts)."""
    overlaps = best_overlaps([c.box for c in cells], [b.box for b in before])
    return [c for c, overlap in zip(cells, overlaps) if overlap < MISSING_IOU]


def tile(rgb: np.ndarray, cell: Cell, label: str) -> np.ndarray:
    x0, y0, x1, y1 = cell.box
    margin = 8
    out = cv2.resize(rgb[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin], (TILE, TILE), interpolation=cv2.INTER_AREA)
    cv2.putText(out, f"{label[:3]} {cell.radius:.0f}", (1, 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def contact_sheet(tiles: list[np.ndarray]) -> np.ndarray:
    rows = max(1, -(-len(tiles) // COLUMNS))
    sheet = np.full((rows * TILE, COLUMNS * TILE, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, COLUMNS)
        sheet[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = t
    return sheet


def main() -> None:
    parser = drawn_fields_parser(__doc__)
    parser.add_argument("--cuts", type=float, nargs="+", default=[0.6, 0.5, 0.4, 0.3], help="shares of the most stained nucleus, first the reference")
    parser.add_argument("--sheet", default="paler_nuclei.png", help="contact sheet of the cells the second cut adds to the first")
    args = parser.parse_args()
    recipe = detection_config(load_config("configs/cells.yaml").cells)
    paths, labels = drawn_fields(args.data, args.per_class, args.seed)
    found: dict[str, list[int]] = defaultdict(lambda: [0] * len(args.cuts))
    fields_gaining: dict[str, int] = defaultdict(int)
    tiles = []
    start = time.perf_counter()
    for path, label in zip(paths, labels):
        rgb = read_rgb(path)
        per_cut = [detect_leukocytes(rgb, dataclasses.replace(recipe, relative=cut))[0] for cut in args.cuts]
        for k, cells in enumerate(per_cut):
            found[label][k] += len(cells) if k == 0 else len(added(cells, per_cut[k - 1]))
        gained = added(per_cut[1], per_cut[0]) if len(per_cut) > 1 else []
        fields_gaining[label] += bool(gained)
        tiles += [tile(rgb, c, label) for c in gained]
    print(f"{len(paths)} fields ({args.per_class} per class, seed {args.seed}), {time.perf_counter() - start:.1f} s")
    header = f"cells at {args.cuts[0]:g}" + "".join(f"  added at {c:g}" for c in args.cuts[1:])
    print(f"{'class':8} {header}  fields gaining at {args.cuts[1]:g}" if len(args.cuts) > 1 else f"{'class':8} {header}")
    for label in sorted(found):
        counts = found[label]
        extra = "".join(f"  {n:>6} ({n / max(counts[0], 1):5.1%})" for n in counts[1:])
        print(f"{label:8} {counts[0]:>11}{extra}  {fields_gaining[label]:>4}")
    if len(args.cuts) > 1:
        cv2.imwrite(args.sheet, cv2.cvtColor(contact_sheet(tiles), cv2.COLOR_RGB2BGR))
        print(f"the {len(tiles)} cells added at {args.cuts[1]:g}: {args.sheet}")


if __name__ == "__main__":
    main()
