"""A case: one patient's fields, every detected leukocyte classified, ready for a reviewer.

The cells are exactly the units `predict` classifies (the same detector and crops), so a case's
cell count is the sum of `predict`'s per-field counts. A whole-field bundle gives one unit per field.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope import __version__
from leukoscope.case.gallery import (
    encode,
    field_overview,
    field_thumbnail,
    outline_of,
    reviewer_crop,
)
from leukoscope.case.summary import DEFAULT_MIN_RELIABLE, summarise
from leukoscope.cells.crops import FieldCrops
from leukoscope.cells.review import review_choices
from leukoscope.data.images import read_rgb
from leukoscope.errors import ImageError
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.predictions import FAR_FEATURES, LOW_CONFIDENCE, OUT_OF_FOCUS, UNLIKE_STATS, Predictions
from leukoscope.workers import parallel_map

CASE_FORMAT = "leukoscope-case/1"
FIELD_LEVEL_NOTE = "This model classifies whole fields: the gallery shows field-level calls, not cells."


@dataclass
class FieldInput:
    """One uploaded or named field: its pixels, or the reason it could not be read."""

    name: str
    data: bytes | None = None  # the file's bytes, for its SHA-256
    rgb: np.ndarray | None = None
    error: str = ""


def read_field(path: str, max_pixels: int) -> FieldInput:
    """A field from a file: its bytes and pixels, or the reason it cannot be used, as `predict` words it."""
    try:
        rgb = read_rgb(path, max_pixels=max_pixels)
        return FieldInput(path, Path(path).read_bytes(), rgb)
    except ImageError as exc:
        return FieldInput(path, error=exc.reason)
    except OSError as exc:
        return FieldInput(path, error=f"unreadable ({exc.strerror or exc})")


@dataclass
class Case:
    name: str
    predictor: Predictor
    min_reliable: int = DEFAULT_MIN_RELIABLE
    pixel_scale_note: str = ""  # where the predictor's pixel scale came from (measured, given, or why neither)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    fields: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    crops: list[bytes] = field(default_factory=list)  # PNG per cell, by id
    overviews: list[bytes | None] = field(default_factory=list)  # JPEG per field, None when unreadable
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # fields added by one caller at a time

    @property
    def level(self) -> str:
        return "cell" if self.predictor.cell_level else "field"

    @property
    def classes(self) -> list[str]:
        return self.predictor.bundle.classes

    def add(self, inputs: Sequence[FieldInput], model_lock: AbstractContextManager | None = None) -> list[dict[str, Any]]:
        """Classify more fields of the case; returns the new cells. `model_lock` is held only while the network runs."""
        with self.lock:
            return self._add(inputs, model_lock or nullcontext())

    def _add(self, inputs: Sequence[FieldInput], model_lock: AbstractContextManager) -> list[dict[str, Any]]:
        prepared = parallel_map(self._units, inputs, min(2, len(inputs)), "finding cells")
        per_field = [units for units, _ in prepared if units is not None]
        with model_lock:
            pred = self.predictor.predict_units(per_field) if per_field else None
        out_of_focus = pred.out_of_focus if pred is not None else None  # a blurred field's cells are no more reliable than its call
        new_cells: list[dict[str, Any]] = []
        unit, k = 0, 0
        for item, (units, found) in zip(inputs, prepared):
            record: dict[str, Any] = {"index": len(self.fields), "file": item.name, "sha256": hashlib.sha256(item.data).hexdigest() if item.data else ""}
            if units is None:
                self.fields.append({**record, "status": "error", "error": item.error, "cells": 0})
                self.overviews.append(None)
                continue
            n = len(units)
            h, w = item.rgb.shape[:2]
            record.update(status="ok", error="", width=w, height=h, cells=n)
            if n:
                record.update(self._verdict(pred, k))
            cells = [self._cell(item, found, pred, unit + j, j, record["index"], bool(out_of_focus[k])) for j in range(n)]
            self.fields.append(record)
            self.overviews.append(encode(field_overview(item.rgb, cells, self.classes), ".jpg"))
            new_cells += cells
            unit += n
            k += 1
        return new_cells

    def _units(self, item: FieldInput) -> tuple[np.ndarray | None, FieldCrops | None]:
        if item.rgb is None:
            return None, None
        if self.predictor.cell_level:
            return self.predictor.cell_units(item.rgb)
        return self.predictor.units(item.rgb), None

    def _verdict(self, pred: Predictions, k: int) -> dict[str, Any]:
        return {
            "label": self.classes[int(pred.labels[k])],
            "confidence": round(float(pred.confidence[k]), 6),
            "abstain": bool(pred.abstain[k]),
            "ood": bool(pred.ood[k]),
            "ood_reason": pred.ood_reasons[k],
            "abstain_reason": pred.abstain_reasons[k],
        }

    def _cell(self, item: FieldInput, found: FieldCrops | None, pred: Predictions, unit: int, j: int, field_index: int, out_of_focus: bool) -> dict[str, Any]:
        bundle, rgb = self.predictor.bundle, item.rgb
        probs = pred.unit_probs[unit]
        k = int(bundle.calls(probs[None])[0])
        threshold = bundle.ood.threshold if bundle.ood is not None else float("inf")
        score = float(pred.unit_ood_score[unit])
        reasons = ([UNLIKE_STATS] if pred.unit_unlike[unit] else []) + ([f"{FAR_FEATURES} (score {score:.3g} > {threshold:.3g})"] if score > threshold else [])
        review = reasons + ([f"its field: {OUT_OF_FOCUS}"] if out_of_focus else [])
        if bundle.call_confidence(probs[None])[0] < bundle.abstain_threshold:
            review.append(LOW_CONFIDENCE)
        if found is not None:
            c = found.cells[j]
            box, outline = list(c.box), outline_of(found.labels, j + 1)
            crop = reviewer_crop(rgb, (c.x, c.y), c.radius, outline)
            cut = found.cut_by_frame(j)
        else:  # a whole-field model: the unit is the field
            h, w = rgb.shape[:2]
            box, outline = [0, 0, w, h], [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
            crop, cut = field_thumbnail(rgb), False
        cell_id = len(self.cells)
        cell = {
            "id": cell_id,
            "field": field_index,
            "file": item.name,
            "box": box,
            "cut_by_frame": cut,
            "outline": outline,
            "label": self.classes[k],
            "confidence": round(float(probs[k]), 6),
            "probabilities": {c: round(float(p), 6) for c, p in zip(self.classes, probs)},
            "abstain": bool(review),
            "abstain_reason": "; ".join(review),
            "ood": bool(reasons),
            "ood_reason": "; ".join(reasons),
            "ood_score": round(score, 4),
            "attention": None if pred.unit_attention is None else round(float(pred.unit_attention[unit]), 4),  # None: the mean rule, all weigh alike
            "crop": f"cells/{cell_id:04d}.png",
        }
        self.cells.append(cell)
        self.crops.append(encode(crop))
        return cell

    def summary(self, reviews: dict[int, str] | None = None) -> dict[str, Any]:
        out = summarise(self.cells, self.classes, self.min_reliable, reviews)
        out["fields"] = len(self.fields)
        out["fields_unreadable"] = sum(f["status"] == "error" for f in self.fields)
        out["fields_without_leukocytes"] = sum(f["status"] == "ok" and f["cells"] == 0 for f in self.fields)
        return out

    def to_json(self) -> dict[str, Any]:
        bundle = self.predictor.bundle
        data = bundle.meta.get("data", {})
        return {
            "format": CASE_FORMAT,
            "case": self.name,
            "created": self.created,
            "level": self.level,
            "note": FIELD_LEVEL_NOTE if self.level == "field" else "",
            "model": {
                "name": bundle.meta.get("model", {}).get("name", ""),
                "weights_sha256": bundle.weights_sha256,
                "training_data_fingerprint": data.get("fingerprint", ""),
                "trained_with": bundle.meta.get("leukoscope_version", ""),
                "classes": self.classes,
                "abstain_threshold": bundle.abstain_threshold,
            },
            "leukoscope_version": __version__,
            "intended_use": bundle.meta.get("intended_use", ""),
            "pixel_scale": self.predictor.pixel_scale,  # the fields' pixels per training pixel (None: each taken as a field of view)
            "pixel_scale_note": self.pixel_scale_note,
            "review_choices": review_choices(self.classes),
            "summary": self.summary(),
            "fields": self.fields,
            "cells": self.cells,
        }
