"""Can a linear stain transfer undo a camera's colours? The residue each one leaves, inside the leukocytes.

Usage: python benchmarks/linear_transfer_residue.py --splits SPLITS [--data DATA] [--every 4] [--outline "lightness guided"]

`cells.stain=reinhard` matches each channel's mean and spread in L*a*b*, so it cannot undo a turn of the
cells' colours in the a*-b* plane. Two transfers that could are compared with it, each fitted on a
field's leukocyte pixels and mapping them to one reference (the pooled leukocytes of every 10th
training field):
- Monge-Kantorovich: the linear optimal-transport map between the two Gaussians, which matches the full
  L*a*b* covariance (Pitié and Kokaram 2007). Its matrix is symmetric: it reshapes, it does not turn.
- principal axes: the field's principal axes in L*a*b* turned onto the reference's by the smallest proper
  rotation, each axis scaled to the reference's spread. It undoes a turn of an elongated distribution.
Each shift is applied to the field, its cells are found on the unshifted field (the detector held
still), and both fields' leukocytes are moved by each transfer. Printed: the mean absolute difference
of the two results' RGB values, inside the leukocytes ("none": the shift's own change).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

import numpy as np
from torchstain.numpy.utils.lab2rgb import lab2rgb
from torchstain.numpy.utils.rgb2lab import rgb2lab

from leukoscope.cells.detect import DetectionConfig, leukocyte_pixels
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import DOMAIN_SHIFTS
from leukoscope.data.split import split_rows

SHIFTS = [name for name in DOMAIN_SHIFTS if name.split()[0] in ("hue", "saturation", "white", "gamma", "blur", "JPEG")]
MIN_PIXELS = 50  # a field with fewer leukocyte pixels has no covariance worth fitting


def to_lab(rgb_pixels: np.ndarray) -> np.ndarray:
    return rgb2lab(rgb_pixels.reshape(-1, 1, 3).astype(np.float32) / 255).reshape(-1, 3).astype(np.float64)


def to_rgb(lab_pixels: np.ndarray) -> np.ndarray:
    return np.clip(lab2rgb(lab_pixels.reshape(-1, 1, 3).astype(np.float32)).reshape(-1, 3) * 255, 0, 255)


def symmetric_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.maximum(w, 1e-9))) @ v.T


def axes_rotation(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The map that turns `source`'s principal axes onto `reference`'s by the smallest proper rotation and scales them."""
    ws, us = np.linalg.eigh(source)
    wt, ut = np.linalg.eigh(reference)
    signs = max(
        (np.diag(s) for s in itertools.product((1, -1), repeat=len(ws)) if np.linalg.det(ut @ np.diag(s) @ us.T) > 0),
        key=lambda d: np.trace(ut @ d @ us.T),
    )
    return ut @ np.diag(np.sqrt(wt / ws)) @ signs @ us.T


def transfers(mean: np.ndarray, cov: np.ndarray) -> dict[str, Callable[[np.ndarray], np.ndarray] | None]:
    """Each transfer onto the reference (`mean`, `cov`), as a function of a field's L*a*b* leukocyte pixels."""
    spread = np.sqrt(np.diag(cov))

    def reinhard(x: np.ndarray) -> np.ndarray:
        return (x - x.mean(0)) / x.std(0) * spread + mean

    def monge_kantorovich(x: np.ndarray) -> np.ndarray:
        root = symmetric_sqrt(np.cov(x.T))
        inverse = np.linalg.inv(root)
        return (x - x.mean(0)) @ (inverse @ symmetric_sqrt(root @ cov @ root) @ inverse).T + mean

    def principal_axes(x: np.ndarray) -> np.ndarray:
        return (x - x.mean(0)) @ axes_rotation(np.cov(x.T), cov).T + mean

    return {"none": None, "Reinhard": reinhard, "Monge-Kantorovich": monge_kantorovich, "principal axes": principal_axes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/taleqani-all")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--every", type=int, default=4, help="keep every Nth test field")
    parser.add_argument("--outline", default="lightness guided", help="the detector's outline rule")
    args = parser.parse_args()
    detection = DetectionConfig(outline=args.outline)
    reference_fields = [read_rgb(r.path) for r in split_rows(args.data, args.splits, "train")[::10]]
    pooled = np.concatenate([to_lab(x[leukocyte_pixels(x, detection)]) for x in reference_fields])
    methods = transfers(pooled.mean(0), np.cov(pooled.T))
    residue: dict[str, dict[str, list[float]]] = {s: {m: [] for m in methods} for s in SHIFTS}
    fields = 0
    for row in split_rows(args.data, args.splits, "test")[:: args.every]:
        x = read_rgb(row.path)
        mask = leukocyte_pixels(x, detection)
        if mask.sum() < MIN_PIXELS:
            continue
        fields += 1
        moved = {m: to_rgb(f(to_lab(x[mask]))) for m, f in methods.items() if f is not None}
        for shift in SHIFTS:
            y = DOMAIN_SHIFTS[shift](x)[mask]
            for m, f in methods.items():
                change = y.astype(np.float64) - x[mask] if f is None else to_rgb(f(to_lab(y))) - moved[m]
                residue[shift][m].append(float(np.abs(change).mean()))
    print(f"{fields} test fields ({len(reference_fields)} training fields pooled for the reference); mean |RGB change| inside the leukocytes")
    print(f"{'shift':40s}" + "".join(f"{m:>19s}" for m in methods))
    for shift in SHIFTS:
        print(f"{shift:40s}" + "".join(f"{np.mean(residue[shift][m]):19.2f}" for m in methods))


if __name__ == "__main__":
    main()
