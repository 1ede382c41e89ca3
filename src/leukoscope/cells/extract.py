"""`leukoscope cells`: detect leukocytes in every field, write crops, a crop manifest, a preview and counts."""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from leukoscope.cells.crops import CropConfig, field_crops
from leukoscope.cells.detect import detect_leukocytes
from leukoscope.data.discover import discover
from leukoscope.data.images import read_rgb
from leukoscope.errors import ImageError
from leukoscope.io_utils import atomic_write, write_json
from leukoscope.workers import parallel_map


def _process(item: tuple[str, str], crop: CropConfig) -> dict[str, Any]:
    path, label = item
    try:
        rgb = read_rgb(path)
    except ImageError as exc:
        return {"path": path, "label": label, "error": exc.reason}
    found = field_crops(rgb, crop)
    return {"path": path, "label": label, "crops": found.crops, "cells": [(c.x, c.y, c.radius) for c in found.cells], "single": found.single, "red_cell_px": found.red_cell_px}


def extract_cells(data: str | Path, out: str | Path, variant: str = "Original", crop: CropConfig = CropConfig(), workers: int | None = None) -> dict[str, Any]:
    found = discover(data, variant=variant)
    root = Path(found.source) / variant if found.layout == "release" else Path(found.source)
    if found.layout == "csv":
        root = Path(found.source).parent
    out = Path(out)
    items = [(s.path, s.label) for s in found.samples]
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    results = parallel_map(lambda item: _process(item, crop), items, workers, "detecting cells")
    rows, failures, per_image = [], [], []
    for res in results:
        if "error" in res:
            failures.append({"path": res["path"], "reason": res["error"]})
            continue
        rel = os.path.relpath(res["path"], root)
        stem = Path(rel).with_suffix("").as_posix().replace("/", "__")
        per_image.append((res["label"], len(res["crops"])))
        for k, (img, (x, y, r)) in enumerate(zip(res["crops"], res["cells"])):
            crop_rel = Path("crops") / res["label"] / f"{stem}_c{k:02d}.png"
            (out / crop_rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / crop_rel), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            ruler = res["red_cell_px"]
            rows.append({"path": crop_rel.as_posix(), "label": res["label"], "group": rel, "source": res["path"], "x": round(x, 1), "y": round(y, 1), "radius": round(r, 2),
                         "red_cell_px": round(ruler, 2) if ruler else ""})  # fmt: skip
    with atomic_write(out / "cells.csv", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "group", "source", "x", "y", "radius", "red_cell_px"])
        writer.writeheader()
        writer.writerows(rows)
    with_cells = Counter(label for label, n in per_image if n > 0)
    totals = Counter(label for label, _ in per_image)
    counts = [n for _, n in per_image]
    summary = {
        "images": len(per_image),
        "images_with_cells": sum(with_cells.values()),
        "fraction_with_cells": sum(with_cells.values()) / max(1, len(per_image)),
        "cells": len(rows),
        "cells_per_image": {"mean": float(np.mean(counts)) if counts else 0.0, "median": float(np.median(counts)) if counts else 0.0, "max": int(max(counts, default=0))},
        "per_class": {c: {"images": totals[c], "with_cells": with_cells[c], "cells": sum(1 for r in rows if r["label"] == c)} for c in sorted(totals)},
        "unreadable": failures,
        "crop": crop.__dict__,
    }
    write_json(out / "summary.json", summary)
    preview_fields([p for p, _ in items[:: max(1, len(items) // 12)][:12]], out / "preview.png")
    return summary


def draw_contours(rgb: np.ndarray) -> np.ndarray:
    cells, labels = detect_leukocytes(rgb)
    vis = rgb.copy()
    for i in range(len(cells)):
        contours, _ = cv2.findContours((labels == i + 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(vis, contours, -1, (0, 200, 0), max(1, rgb.shape[0] // 200))
    cv2.putText(vis, str(len(cells)), (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (220, 0, 0), 2, cv2.LINE_AA)
    return vis


def preview_fields(paths: list[str], out: Path, tile: int = 224, columns: int = 4) -> Path | None:
    """A quality-control grid: detected cell contours drawn on fields, with the count."""
    tiles = []
    for p in paths:
        try:
            tiles.append(cv2.resize(draw_contours(read_rgb(p)), (tile, tile), interpolation=cv2.INTER_AREA))
        except ImageError:
            continue
    if not tiles:
        return None
    while len(tiles) % columns:
        tiles.append(np.full((tile, tile, 3), 255, np.uint8))
    grid = np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)])
    with atomic_write(out, "wb") as fh:
        fh.write(cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))[1].tobytes())
    return out
