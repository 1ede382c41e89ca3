"""What the reviewer looks at: each cell unsuppressed with its outline, and each field with its cells outlined."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from leukoscope.cells.crops import cut_square, square_map

CROP_SIZE = 112  # px of a gallery tile
CROP_CONTEXT = 2.2  # tile side / cell diameter: the neighbouring red cells stay in view
OVERVIEW_SIDE = 448
OUTLINE = (0, 170, 0)
# one colour per class position, and grey for "other": an outline's colour names the model's call
CLASS_COLOURS = [(40, 120, 220), (230, 120, 20), (200, 30, 160), (200, 30, 30), (20, 160, 160), (120, 80, 200)]


def class_colour(index: int) -> tuple[int, int, int]:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def outline_of(labels: np.ndarray, index: int) -> list[list[int]]:
    """The cell's outline as [x, y] points in field pixels (1-based `index` in the label image)."""
    contours, _ = cv2.findContours((labels == index).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    biggest = max(contours, key=cv2.contourArea)
    return cv2.approxPolyDP(biggest, 0.8, True).reshape(-1, 2).tolist()


def reviewer_crop(rgb: np.ndarray, centre: tuple[float, float], radius: float, outline: Sequence[Sequence[int]], size: int = CROP_SIZE) -> np.ndarray:
    """A size x size RGB tile around one cell, its surroundings kept, its outline drawn."""
    half = max(CROP_CONTEXT * radius, 12.0)
    tile = cut_square(rgb, centre, half, size, border=cv2.BORDER_CONSTANT, border_value=(255, 255, 255))
    m = square_map(centre, half, size)
    scale = float(m[0, 0])
    if len(outline) >= 3:
        points = (np.asarray(outline, np.float32) * scale + m[:, 2]).round().astype(np.int32)
        cv2.polylines(tile, [points], True, OUTLINE, 1, cv2.LINE_AA)
    return tile


def field_thumbnail(rgb: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The whole field fitted into a size x size tile (a whole-field model's unit)."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    return tile


def field_overview(rgb: np.ndarray, cells: Sequence[dict], classes: Sequence[str], side: int = OVERVIEW_SIDE) -> np.ndarray:
    """The field scaled to `side` px on its long edge, each cell outlined in its class colour and numbered."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    vis = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    for cell in cells:
        colour = class_colour(list(classes).index(cell["label"])) if cell["label"] in classes else (120, 120, 120)
        points = (np.asarray(cell["outline"], np.float32) * scale).round().astype(np.int32)
        if len(points) >= 3:
            cv2.polylines(vis, [points], True, colour, 2, cv2.LINE_AA)
        x0, y0 = cell["box"][0] * scale, cell["box"][1] * scale
        cv2.putText(vis, str(cell["id"]), (int(x0), max(12, int(y0) - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(vis, str(cell["id"]), (int(x0), max(12, int(y0) - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return vis


def encode(rgb: np.ndarray, ext: str = ".png", quality: int = 88) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"{ext} encoding failed")
    return buf.tobytes()
