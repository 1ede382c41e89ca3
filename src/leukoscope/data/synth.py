"""Procedural smear-like fields: the embedded default dataset, so every command runs with no download.

Class signal lives only in the leukocytes (nucleus size and outline, chromatin texture, nucleoli,
cytoplasm rim). Background, stain, illumination and focus vary at random and independently of the
class, unless a shortcut is planted on purpose (`shortcut=`: the scale bar, the background, or the
leukocytes' stain) to test the shortcut checks. With
`class_cells=False` every class's leukocytes share one morphology, so a planted shortcut is the only
signal there is: a model that learns anything must have learned the shortcut.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from leukoscope.data.shifts import OtherLab, recorded_by
from leukoscope.io_utils import write_json
from leukoscope.progress import progress

SYNTH_CLASSES = ("Benign", "Early", "Pre", "Pro")
RED_CELL_RADIUS = (8.5, 11.5)  # px at 224 px and magnification 1: red cells 20 px across on average
RED_CELL_DIAMETER = sum(RED_CELL_RADIUS)
SHORTCUTS = (None, "annotation", "background", "stain")
REFERENCE_SIZE = 224
# planted shortcuts, one colour per class: far apart in hue, so that colour augmentation cannot blur them together
PLANTED_PLASMA = ((250, 212, 212), (205, 220, 250), (210, 248, 205), (250, 240, 175))
PLANTED_BAR = ((255, 40, 40), (40, 40, 255), (255, 230, 0), (0, 0, 0))  # apart in lightness too: CLAHE and brightness jitter blur it least
# a planted stain, one nucleus colour per class: apart in hue, alike in luminance (grey 74-80), so
# that only a model that sees colour can read it (and moderate in chroma: a swap stays in gamut)
PLANTED_NUCLEUS = ((90, 50, 155), (100, 60, 130), (135, 45, 70), (125, 50, 80))


@dataclass(frozen=True)
class Morphology:
    cell_radius: tuple[float, float]  # in pixels at 224 px
    nucleus_share: tuple[float, float]  # nucleus radius / cell radius
    irregularity: float  # amplitude of the nucleus outline's harmonics
    cleft: float  # depth of one indentation (0 = round)
    chromatin_grain: float  # blur sigma of the texture: small = fine, large = coarse
    chromatin_contrast: float
    nucleoli: tuple[int, int]
    cytoplasm_rgb: tuple[int, int, int]
    nucleus_rgb: tuple[int, int, int]


MORPHOLOGY = {
    # hematogones: small, round, dense homogeneous chromatin, scant cytoplasm
    "Benign": Morphology((9, 11.5), (0.84, 0.92), 0.03, 0.0, 0.8, 0.10, (0, 0), (190, 185, 225), (80, 40, 130)),
    "Early": Morphology((12, 14.5), (0.78, 0.86), 0.07, 0.05, 1.0, 0.25, (0, 1), (175, 175, 225), (110, 70, 160)),
    "Pre": Morphology((15, 18), (0.70, 0.80), 0.16, 0.18, 2.2, 0.35, (1, 2), (165, 165, 220), (120, 75, 165)),
    "Pro": Morphology((18.5, 22), (0.72, 0.82), 0.22, 0.30, 3.0, 0.45, (2, 4), (140, 140, 215), (125, 80, 170)),
}


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    radius: float


Window = tuple[slice, slice]


def _blend(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray | tuple, window: Window | None = None) -> None:
    """Alpha-blend a colour (or per-pixel colours) into the float canvas, where mask in [0, 1]."""
    region = canvas if window is None else canvas[window]
    m = mask[..., None]
    region *= 1 - m
    region += m * np.asarray(colour, dtype=np.float32)


def _soft_disc(size: int, cx: float, cy: float, r: float, soft: float = 1.0) -> tuple[np.ndarray, Window]:
    """An anti-aliased disc, computed only on its bounding window of the canvas."""
    pad = r + soft + 1
    y0, y1 = max(0, int(cy - pad)), min(size, int(cy + pad) + 1)
    x0, x1 = max(0, int(cx - pad)), min(size, int(cx + pad) + 1)
    y1, x1 = max(y0, y1), max(x0, x1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    return np.clip((r - d) / soft + 0.5, 0, 1), (slice(y0, y1), slice(x0, x1))


def _nucleus_mask(size: int, cx: float, cy: float, r: float, morph: Morphology, rng: np.random.Generator) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    radius = np.ones_like(theta)
    for k in (2, 3, 4, 5):
        radius += morph.irregularity / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    if morph.cleft > 0:
        centre = rng.uniform(0, 2 * np.pi)
        radius -= morph.cleft * np.exp(-((np.angle(np.exp(1j * (theta - centre)))) ** 2) / 0.08)
    pts = np.stack([cx + r * radius * np.cos(theta), cy + r * radius * np.sin(theta)], axis=1)
    mask = np.zeros((size * 4, size * 4), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], 255)
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _draw_leukocyte(canvas: np.ndarray, cell: Cell, morph: Morphology, rng: np.random.Generator, scale: float) -> None:
    size = canvas.shape[0]
    cyto, window = _soft_disc(size, cell.x, cell.y, cell.radius, soft=1.2)
    _blend(canvas, cyto * 0.9, np.array(morph.cytoplasm_rgb) + rng.normal(0, 6, 3), window)
    nr = cell.radius * rng.uniform(*morph.nucleus_share)
    ox, oy = rng.normal(0, 0.06 * cell.radius, 2)
    nucleus = _nucleus_mask(size, cell.x + ox, cell.y + oy, nr, morph, rng)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), morph.chromatin_grain * scale)
    noise /= noise.std() + 1e-6
    base = np.array(morph.nucleus_rgb, np.float32) + rng.normal(0, 5, 3)
    texture = base[None, None, :] * (1 + morph.chromatin_contrast * 0.5 * noise[..., None])
    _blend(canvas, nucleus * 0.97, np.clip(texture, 0, 255))
    for _ in range(rng.integers(morph.nucleoli[0], morph.nucleoli[1] + 1)):
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.5) * nr
        nx, ny = cell.x + ox + dist * np.cos(ang), cell.y + oy + dist * np.sin(ang)
        dot, window = _soft_disc(size, nx, ny, rng.uniform(1.6, 2.4) * scale, 0.8)
        _blend(canvas, dot * nucleus[window] * 0.8, (175, 150, 200), window)


def _place_cells(size: int, n: int, radii: list[float], rng: np.random.Generator) -> list[Cell]:
    cells: list[Cell] = []
    margin = 0.08 * size
    for r in radii[:n]:
        for _ in range(200):
            x, y = rng.uniform(margin + r, size - margin - r, 2)
            if all((x - c.x) ** 2 + (y - c.y) ** 2 > (r + c.radius + 3) ** 2 for c in cells):
                cells.append(Cell(float(x), float(y), float(r)))
                break
    return cells


SHARED_MORPHOLOGY = "Early"  # the leukocytes of every class when `class_cells=False`


def synth_field(
    label: str,
    rng: np.random.Generator,
    size: int = REFERENCE_SIZE,
    shortcut: str | None = None,
    n_cells: int | None = None,
    class_cells: bool = True,
    magnification: float = 1.0,
) -> tuple[np.ndarray, list[Cell]]:
    """One RGB uint8 field of view of class `label` and the leukocytes drawn in it.

    `magnification` scales every cell, red cells included (their diameter is RED_CELL_DIAMETER x
    size / 224 x magnification pixels on average), as another objective or camera would.
    """
    if label not in MORPHOLOGY:
        raise ValueError(f"unknown synthetic class {label!r}; choose from {', '.join(SYNTH_CLASSES)}")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"unknown shortcut {shortcut!r}; choose from {SHORTCUTS}")
    scale = size / REFERENCE_SIZE * magnification
    morph = MORPHOLOGY[label if class_cells else SHARED_MORPHOLOGY]
    if shortcut == "stain":
        morph = replace(morph, nucleus_rgb=PLANTED_NUCLEUS[SYNTH_CLASSES.index(label)])
    plasma = np.array([236, 231, 230], np.float32) + rng.normal(0, 5, 3)
    if shortcut == "background":
        plasma = np.array(PLANTED_PLASMA[SYNTH_CLASSES.index(label)], np.float32)
    canvas = np.ones((size, size, 3), np.float32) * plasma
    rbc_rgb = np.array([220, 168, 166], np.float32) + rng.normal(0, 5, 3)  # pink: stain score well below nuclei
    for _ in range(int(round(rng.integers(25, 55) / magnification**2))):  # the same density of red cells per area of smear
        x, y = rng.uniform(-10, size + 10, 2)
        r = rng.uniform(*RED_CELL_RADIUS) * scale
        disc, window = _soft_disc(size, x, y, r, 1.0)
        if disc.size:
            _blend(canvas, disc * 0.75, rbc_rgb, window)
            pale, window = _soft_disc(size, x, y, r * 0.45, 2.0)
            _blend(canvas, pale * 0.35, plasma, window)

    n = int(n_cells if n_cells is not None else rng.integers(1, 4))
    radii = sorted((rng.uniform(*morph.cell_radius) * scale for _ in range(n)), reverse=True)
    cells = _place_cells(size, n, radii, rng)
    for cell in cells:
        _draw_leukocyte(canvas, cell, morph, rng, scale)

    # illumination: a soft vignette and a linear gradient, then focus and sensor noise
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    gx, gy = rng.normal(0, 0.06, 2)
    light = 1.0 + gx * (xx - 0.5) + gy * (yy - 0.5) - 0.12 * rng.uniform(0, 1) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    canvas *= light[..., None]
    canvas *= (1 + rng.normal(0, 0.015, 3)).astype(np.float32)  # stain colour jitter
    sigma = rng.uniform(0.3, 1.1) * scale
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    canvas += rng.normal(0, 2.0, canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    _draw_scale_bar(image, label, shortcut, rng)
    return image, cells


def other_lab_field(label: str, rng: np.random.Generator, lab: OtherLab, size: int = REFERENCE_SIZE, n_cells: int | None = None) -> tuple[np.ndarray, list[Cell]]:
    """A field of `label` as `lab` would have imaged it: `size` x zoom pixels across, its cells in those pixels and
    magnified by the lab's objective.

    The smear is drawn as `synth_field` draws it; the lab's optics set the pixel scale, its stain
    and camera the colours, its software the compression.
    """
    rgb, cells = synth_field(label, rng, int(round(size * lab.zoom)), n_cells=n_cells, magnification=lab.objective)
    return recorded_by(rgb, lab), cells


def _draw_scale_bar(image: np.ndarray, label: str, shortcut: str | None, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    x1, y1 = int(w * 0.86), int(h * 0.93)
    x0 = x1 - max(6, int(w * 0.06))
    thickness = max(2, h // 60)
    colour = (30, 30, 30)
    if shortcut == "annotation":  # planted on purpose: a bold coloured bar, still inside the annotation box
        colour = PLANTED_BAR[SYNTH_CLASSES.index(label)]
        x0, x1, y1, thickness = int(w * 0.83), int(w * 0.97), int(h * 0.97), max(3, h // 12)
    cv2.rectangle(image, (x0 - 2, y1 - thickness - 2), (x1 + 2, y1 + 2), (250, 250, 250), -1)
    cv2.rectangle(image, (x0, y1 - thickness), (x1, y1), colour, -1)


def synth_dataset(
    out: str | Path,
    per_class: int,
    size: int = REFERENCE_SIZE,
    seed: int = 0,
    shortcut: str | None = None,
    class_cells: bool = True,
    classes: Sequence[str] = SYNTH_CLASSES,
) -> Path:
    """Write `out/<Class>/synth-<class>-NNNN.jpg` and `out/cells.json` (leukocyte centres and radii).

    `classes` picks a subset; each class's fields are the same whichever others are written.
    """
    unknown = [c for c in classes if c not in SYNTH_CLASSES]
    if unknown:
        raise ValueError(f"unknown synthetic class {unknown[0]!r}; choose from {', '.join(SYNTH_CLASSES)}")
    out = Path(out)
    truth: dict[str, list[dict[str, float]]] = {}
    jobs = [(ci, label, i) for ci, label in enumerate(SYNTH_CLASSES) if label in classes for i in range(per_class)]
    for ci, label, i in progress(jobs, "synthesising"):
        rng = np.random.default_rng([seed, ci, i])
        image, cells = synth_field(label, rng, size, shortcut, class_cells=class_cells)
        rel = f"{label}/synth-{label.lower()}-{i:04d}.jpg"
        (out / label).mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {rel}")
        (out / rel).write_bytes(buf.tobytes())
        truth[rel] = [{"x": c.x, "y": c.y, "radius": c.radius} for c in cells]
    write_json(out / "cells.json", {"size": size, "seed": seed, "shortcut": shortcut, "class_cells": class_cells, "cells": truth})
    return out


def load_cell_truth(folder: str | Path) -> dict[str, list[dict[str, float]]]:
    return json.loads((Path(folder) / "cells.json").read_text())["cells"]
