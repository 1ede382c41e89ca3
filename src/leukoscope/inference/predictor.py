"""The Predictor: a bundle's whole pipeline from files to calibrated, flagged predictions."""

from __future__ import annotations

import copy
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leukoscope.data.images import IMAGE_EXTENSIONS, read_rgb
from leukoscope.errors import DataError, ImageError
from leukoscope.inference.pixel_scale import check_pixel_scale, refuse_whole_field
from leukoscope.scoring.bundle import Bundle
from leukoscope.scoring.predictions import Predictions, score_units
from leukoscope.scoring.runner import run_model

if TYPE_CHECKING:
    from leukoscope.cells.crops import FieldCrops
    from leukoscope.cells.outline import Outlines


def expand_inputs(items: Sequence[str]) -> list[str]:
    """Files, folders (recursively, image files only) and glob patterns, in a stable order.

    Folders are walked without following symbolic links to folders (no loops); a broken link with
    an image name is kept, so that it gets a row saying so instead of vanishing.
    """
    import glob

    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(
                os.path.join(top, name)
                for top, _, files in os.walk(p, followlinks=False)
                for name in files
                if Path(name).suffix.lower() in IMAGE_EXTENSIONS
            )
        elif p.exists() or p.is_symlink():
            out.append(str(p))
        elif any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise DataError(f"{item}: the pattern matches no file")
            out += matches
        else:
            raise DataError(f"{item}: no such file or folder")
    return out


def with_error_rows(paths: Sequence[str], rows: Sequence[dict[str, Any]], failures: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """Every input once, in input order: predicted rows, and a row with status `error` and the reason
    for each file that could not be read. A lab that reads only the output file loses no image."""
    by_path = {r["path"]: r for r in rows}
    reasons = {f["path"]: f["reason"] for f in failures}
    return [by_path[p] if p in by_path else {"path": p, "status": "error", "error": reasons.get(p, "not predicted")} for p in paths]


class Predictor:
    """Files or RGB arrays in, one calibrated and flagged prediction per image out.

    A whole-field bundle sees each image as one unit. A cell-level bundle (`cells.enabled`) cuts each
    field into leukocyte crops, classifies every crop and averages their log-probabilities. Either
    way, an image with no leukocyte found is flagged (abstain and out-of-distribution), not guessed.
    """

    def __init__(self, bundle: Bundle, backend: str = "torch", batch_size: int = 32, tta: bool | None = None, pixel_scale: float | None = None) -> None:
        """`tta`: the mean over 8 flips and rotations of each unit; None predicts as the bundle's thresholds were set (`bundle.tta`).
        `pixel_scale`: the images' pixels per pixel of the bundle's training fields (cells.ruler:
        `estimate_pixel_scale`, `pixel_scale_from_size`); None takes each image to show a training
        field's field of view. Cell-level bundles only: a whole-field model sees the field as it is."""
        self.bundle = bundle
        self.pixel_scale = pixel_scale
        self.batch_size = batch_size
        self.tta = bundle.tta if tta is None else tta
        self.backend = backend
        self._onnx = None
        self.cell_level = bundle.cell_level
        self.crop_config = self.detection = None
        if self.cell_level:
            from leukoscope.cells.cache import crop_config, detection_config
            from leukoscope.config import config_from_dict

            cells = config_from_dict({"cells": bundle.meta["config"]["cells"]}).cells
            self.crop_config, self.detection = crop_config(cells), detection_config(cells)
        if backend == "onnx":
            from leukoscope.inference.export import OnnxRunner

            self._onnx = OnnxRunner.for_bundle(bundle)
        elif backend != "torch":
            raise DataError(f"unknown backend {backend!r}; choose torch or onnx")
        self._check_pixel_scale()

    def _check_pixel_scale(self) -> None:
        if self.pixel_scale is not None:
            refuse_whole_field(self.bundle)
            check_pixel_scale(self.pixel_scale)

    def at_pixel_scale(self, pixel_scale: float | None) -> Predictor:
        """This predictor, sharing its model, for images of another pixel scale (one request, one case)."""
        other = copy.copy(self)
        other.pixel_scale = pixel_scale
        other._check_pixel_scale()
        return other

    def units(
        self,
        rgb: np.ndarray,
        require_cells: bool = True,
        detect_on: np.ndarray | None = None,
        outlines: Outlines | None = None,
        fit_outlines: Outlines | None = None,
    ) -> np.ndarray:
        """The preprocessed model inputs of one RGB image: the field, or its cell crops.

        A whole field in which no leukocyte can be found yields no unit: there is nothing for a
        leukocyte classifier to judge, so the image is flagged instead of guessed. `require_cells=False`
        lets a whole-field model see such images anyway (the shortcut checks need exactly that).
        `detect_on` finds the cells on another image of the same size, `outlines` redraws their outlines, and
        `fit_outlines` those the stain transfer is fitted on (cell-level bundles only; `field_crops`).
        """
        pipeline = self.bundle.pipeline
        if not self.cell_level:
            from leukoscope.cells.detect import has_leukocyte

            if require_cells and not has_leukocyte(rgb):
                return np.zeros((0, pipeline.config.size, pipeline.config.size, 3), np.uint8)
            return pipeline(rgb)[None]
        return self.cell_units(rgb, detect_on, outlines, fit_outlines)[0]

    def cell_units(
        self, rgb: np.ndarray, detect_on: np.ndarray | None = None, outlines: Outlines | None = None, fit_outlines: Outlines | None = None
    ) -> tuple[np.ndarray, FieldCrops]:
        """A cell-level bundle's model inputs for one field, with the cells (and their outlines) they come from."""
        from leukoscope.cells.cache import preprocessed_stack
        from leukoscope.cells.crops import field_crops

        found = field_crops(
            rgb, self.crop_config, self.detection, detect_on=detect_on, pixel_scale=self.pixel_scale, training_scale=self.bundle.training_field_scale, outlines=outlines,
            fit_outlines=fit_outlines,
        )
        return preprocessed_stack(self.bundle.pipeline, found.crops), found

    def logits_and_features(self, images: np.ndarray, onnx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        b = self.bundle
        onnx = self._onnx if onnx is None else onnx
        if onnx is not None:
            return onnx.run(images, tta=self.tta)
        logits, feats = run_model(b.model, images, b.mean, b.std, self.batch_size, features=True, tta=self.tta)
        return logits, feats

    def predict_units(self, per_image: Sequence[np.ndarray], onnx: Any = None) -> Predictions:
        """Aggregate unit predictions per image (mean log-probability; mean OOD score)."""
        return score_units(self.bundle, per_image, lambda images: self.logits_and_features(images, onnx))

    def predict_rgbs(self, rgbs: Sequence[np.ndarray]) -> Predictions:
        return self.predict_units([self.units(r) for r in rgbs])

    def predict_arrays(self, images: np.ndarray) -> Predictions:
        """Preprocessed whole-field images (N, S, S, 3): one unit each."""
        return self.predict_units([img[None] for img in images])

    def _load_units(self, path: str) -> np.ndarray | str:
        """The model inputs of one file, or the reason it cannot be read."""
        try:
            return self.units(read_rgb(path, max_pixels=self.bundle.pipeline.config.max_pixels))
        except ImageError as exc:
            return exc.reason
        except OSError as exc:
            return f"unreadable ({exc})"

    def _predict_batch(self, paths: Sequence[str], onnx: Any = None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        loaded = [self._load_units(p) for p in paths]
        good = [(p, u) for p, u in zip(paths, loaded) if not isinstance(u, str)]
        bad = [{"path": p, "reason": u} for p, u in zip(paths, loaded) if isinstance(u, str)]
        rows = self.rows([p for p, _ in good], self.predict_units([u for _, u in good], onnx)) if good else []
        return rows, bad

    def predict_paths(self, paths: list[str], progress: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """One row per readable image, in input order; unreadable files are returned with their reason.

        Two workers take alternate batches and each decodes, prepares and classifies its own with
        half the CPU threads, so one's preprocessing overlaps the other's model. Splitting the cores
        this way, rather than a preprocessing pool beside a model using every core, keeps OpenMP's
        thread team from being preempted mid-layer (BENCHMARKS.md, "Inference throughput").
        """
        import torch

        from leukoscope.progress import progress_bar

        batches = [paths[i : i + self.batch_size] for i in range(0, len(paths), self.batch_size)]
        n_workers = 2 if len(batches) > 1 else 1
        all_threads = torch.get_num_threads()
        threads = max(1, all_threads // n_workers)
        onnx = self._onnx.with_threads(threads) if self._onnx is not None and n_workers > 1 else None
        results: list[tuple[list[dict[str, Any]], list[dict[str, str]]] | None] = [None] * len(batches)
        finished: queue.Queue = queue.Queue()
        stop = threading.Event()

        def work(first: int) -> None:
            torch.set_num_threads(threads)
            try:
                for i in range(first, len(batches), n_workers):
                    if stop.is_set():
                        return
                    results[i] = self._predict_batch(batches[i], onnx)
                    finished.put(i)
            except BaseException as exc:  # handed to the caller's thread
                finished.put(exc)

        workers = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(n_workers)]
        bar = progress_bar(len(paths), "predicting", disable=not progress)
        try:
            for w in workers:
                w.start()
            for _ in batches:
                item = finished.get()
                if isinstance(item, BaseException):
                    raise item
                bar.update(len(batches[item]))
        finally:
            stop.set()
            for w in workers:
                w.join()
            torch.set_num_threads(all_threads)
            bar.close()
        rows = [r for res in results if res for r in res[0]]
        failures = [f for res in results if res for f in res[1]]
        return rows, failures

    def rows(self, paths: Sequence[str], pred: Predictions) -> list[dict[str, Any]]:
        classes = self.bundle.classes
        out = []
        offsets = np.cumsum([0, *pred.units]) if pred.units is not None else None
        for i, path in enumerate(paths):
            row: dict[str, Any] = {
                "path": path,
                "status": "ok",
                "error": "",
                "label": classes[int(pred.labels[i])],
                "confidence": round(float(pred.confidence[i]), 6),
                "abstain": bool(pred.abstain[i]),
                "abstain_reason": pred.abstain_reasons[i] if pred.abstain_reasons is not None else "",
                "ood": bool(pred.ood[i]),
                "ood_score": round(float(pred.ood_score[i]), 4),
                "ood_reason": pred.ood_reasons[i] if pred.ood_reasons is not None else "",
            }
            if pred.screen is not None:
                row["screen"] = "malignant" if pred.screen[i] else "benign"
            for k, name in enumerate(classes):
                row[f"p_{name}"] = round(float(pred.probs[i, k]), 6)
            if self.pixel_scale is not None:
                row["pixel_scale"] = round(self.pixel_scale, 4)
            if self.cell_level:
                row["cells"] = int(pred.units[i])
                if pred.detail is not None:  # the cells' fine detail, which the focus floor is held against
                    row["fine_detail"] = None if np.isnan(pred.detail[i]) else round(float(pred.detail[i]), 4)
                if pred.unit_attention is not None:  # which cells drove the call, in the order they were found
                    row["cell_attention"] = [round(float(w), 4) for w in pred.unit_attention[offsets[i] : offsets[i + 1]]]
            row["_logits"] = pred.logits[i].tolist()
            out.append(row)
        return out


def prediction_columns(classes: Sequence[str]) -> list[str]:
    return ["path", "status", "error", "label", "confidence", "abstain", "abstain_reason", "ood", "ood_score", "ood_reason", "screen"] + [f"p_{c}" for c in classes] + ["cells"]


PREDICTION_FORMATS = (".csv", ".json")


def check_predictions_path(out: str | Path) -> Path:
    """The output path of predictions, refused before any work when its extension names no format."""
    out = Path(out)
    if out.suffix.lower() not in PREDICTION_FORMATS:
        raise DataError(f"{out}: unknown output format {out.suffix or '(no extension)'!r}; name the file .csv or .json")
    return out


def write_predictions(rows: list[dict[str, Any]], out: str | Path, classes: Sequence[str], extra_columns: Sequence[str] = ()) -> Path:
    """CSV or JSON by extension, written atomically."""
    import csv
    import json

    from leukoscope.io_utils import atomic_write

    out = check_predictions_path(out)
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    if out.suffix.lower() == ".json":
        with atomic_write(out) as fh:
            json.dump(rows, fh, indent=1)
            fh.write("\n")
        return out
    optional = [c for c in ("cells", "fine_detail", "cell_attention") if any(c in r for r in rows)]
    columns = [c for c in prediction_columns(classes) if c != "cells"] + optional + list(extra_columns)
    with atomic_write(out, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()} for r in rows)
    return out
