"""What a cell bundle's stain transfer does with a moved outline and with another camera's colours, before any model.

Usage: python benchmarks/stain_fit.py --splits SPLITS [--data DATA] [--split train] [--every N]

`cells.stain=reinhard` moves each field's leukocytes to one reference stain, fitted on all their pixels
(`cells.stain_fit=cells`) or on their cores (`cores`). Here, on every N-th field of a split (the training
split by default: what this chooses must not be read off the test fields), with the cells found on the
field as imaged:

- the two targets each fit can be given: the stain of a typical field (the mean over fields of each
  field's LAB means and standard deviations) and the pooled pixels of all fields. The pooled spread also
  holds the differences between fields, so it is wider than any one field's, and a transfer to it
  stretches every field's contrast;
- per fit and target: the restained cells' texture (the standard deviation of their pixels, grey levels),
  the share of their channel values clipped at 0 or 255, and how far their pixels move (mean absolute
  change, as a percentage of that texture) when the fit follows every outline drawn 1 px in or out
  (`cells.outline.outlines_moved_by`), and under each colour shift of the domain-shift benchmark.

A transfer that a pixel of outline moves is read by the model as the cell changing (BENCHMARKS.md, "Where
the detector draws the outline"); one that lets a camera's colours through hands the model the camera.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from cell_bundle_args import DEFAULT_DATA

from leukoscope.cells.detect import detect_leukocytes, field_scale
from leukoscope.cells.outline import cell_cores, outlines_moved_by
from leukoscope.cells.stain import MAX_POOLED_PIXELS, StainTarget
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import DOMAIN_SHIFTS
from leukoscope.data.split import split_rows

COLOUR_SHIFTS = [name for name in DOMAIN_SHIFTS if name.split()[0] in ("hue", "saturation", "white", "gamma")]
FITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"cells": lambda labels: labels > 0, "cores": cell_cores}


def stats(target: StainTarget) -> np.ndarray:
    return np.r_[target.normalizer.target_means, target.normalizer.target_stds].astype(np.float64)


def targets(fields: list[tuple[np.ndarray, np.ndarray]], fit: str, rng: np.random.Generator) -> dict[str, StainTarget]:
    """The typical field's stain and the pooled stain of the fields' fitted pixels."""
    per_field, pooled = [], []
    for rgb, labels in fields:
        pixels = rgb[FITS[fit](labels)]
        if len(pixels) >= 10:
            per_field.append(stats(StainTarget(pixels)))
            pooled.append(pixels)
    pixels = np.concatenate(pooled)
    if len(pixels) > MAX_POOLED_PIXELS:
        pixels = pixels[rng.choice(len(pixels), MAX_POOLED_PIXELS, replace=False)]
    return {"typical field": StainTarget.from_stats(np.mean(per_field, 0).tolist()), "pooled": StainTarget(pixels)}


def restained(target: StainTarget, rgb: np.ndarray, labels: np.ndarray, fit: str, fit_labels: np.ndarray | None = None) -> np.ndarray:
    """The cell pixels of `rgb` (in `labels`) after the transfer, fitted on `fit_labels`' pixels (default: `labels`')."""
    fit_labels = labels if fit_labels is None else fit_labels
    moved = target.restain(rgb, (labels > 0) | (fit_labels > 0), fit_on=FITS[fit](fit_labels))
    return moved[labels > 0].astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", required=True)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--split", default="train")
    parser.add_argument("--every", type=int, default=11)
    args = parser.parse_args()
    rows = split_rows(args.data, args.splits, args.split)[:: args.every]
    fields = []
    for row in rows:
        rgb = read_rgb(row.path)
        cells, labels = detect_leukocytes(rgb)
        if cells:
            fields.append((rgb, labels))
    print(f"{len(fields)} {args.split} fields with leukocytes (of {len(rows)})")
    moves = {"outline 1 px in": outlines_moved_by(-1.0), "outline 1 px out": outlines_moved_by(1.0)}
    rng = np.random.default_rng(0)
    header = ["texture", "clipped", *moves, *COLOUR_SHIFTS]
    print("fit | target (L a b means, stds) | " + " | ".join(header))
    for fit in FITS:
        for target_name, target in targets(fields, fit, rng).items():
            texture, clipped, change = [], [], {k: [] for k in header[2:]}
            for rgb, labels in fields:
                base = restained(target, rgb, labels, fit)
                texture.append(base.std(0).mean())
                clipped.append(((base == 0) | (base == 255)).mean())
                for name, move in moves.items():
                    change[name].append(np.abs(restained(target, rgb, labels, fit, move(labels, field_scale(rgb.shape))) - base).mean())
                for name in COLOUR_SHIFTS:
                    change[name].append(np.abs(restained(target, DOMAIN_SHIFTS[name](rgb), labels, fit) - base).mean())
            scale = 100 / np.mean(texture)
            figures = [f"{np.mean(texture):.1f}", f"{100 * np.mean(clipped):.1f} %"] + [f"{np.mean(v) * scale:.1f} %" for v in change.values()]
            print(f"{fit} | {target_name} {np.round(stats(target), 1).tolist()} | " + " | ".join(figures), flush=True)


if __name__ == "__main__":
    main()
