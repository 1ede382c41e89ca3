"""Grad-CAM (pytorch-grad-cam) and attention heatmaps, drawn beside the input with the prediction."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.calls import called_probability
from leukoscope.scoring.bundle import Bundle
from leukoscope.scoring.predictions import Predictions
from leukoscope.scoring.runner import to_input

METHODS = ("gradcam", "attention", "both")


def gradcam_map(bundle: Bundle, image: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM heatmap in [0, 1] at the image's size for one preprocessed uint8 image."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = bundle.model.eval()
    x = to_input(image[None], bundle.mean, bundle.std, channels_last=False)
    with GradCAM(model=model, target_layers=model.gradcam_layers()) as cam:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(class_index)])[0]
    return cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def attention_map(bundle: Bundle, image: np.ndarray) -> np.ndarray | None:
    """Attention received per position, upsampled to the image and scaled to [0, 1]; None without MHSA."""
    model = bundle.model.eval()
    if not hasattr(model, "attention_maps"):
        return None
    x = to_input(image[None], bundle.mean, bundle.std, channels_last=False)
    with torch.no_grad():
        att = model.attention_maps(x)[0].numpy()
    att = cv2.resize(att, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_CUBIC)
    att -= att.min()
    return att / att.max() if att.max() > 0 else att


def _overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    return cv2.addWeighted(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 1 - alpha, colour, alpha, 0)


def explanation_panel(bundle: Bundle, rgb: np.ndarray, method: str = "both", pixel_scale: float | None = None) -> tuple[np.ndarray, dict]:
    """BGR panel for one RGB image: input | Grad-CAM | attention, headed by the predicted class.

    A cell-level bundle shows the field with each detected leukocyte outlined and labelled with its
    own predicted class, beside the Grad-CAM of the most confident cell; `pixel_scale` as `Predictor`'s,
    so the cells explained are the cells `predict --pixel-size` classifies.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose {', '.join(METHODS)}")
    if bundle.cell_level:
        return _cell_panel(bundle, rgb, method, pixel_scale)
    predictor = Predictor(bundle)
    units = predictor.units(rgb)
    verdict = predictor.predict_units([units])
    image = units[0] if len(units) else bundle.pipeline(rgb)  # a field without leukocytes is still shown
    x = to_input(image[None], bundle.mean, bundle.std, channels_last=False)
    with torch.no_grad():
        k = int(bundle.model.eval()(x).argmax())  # the network's own top class, explained even when the field is flagged
    tiles = [("input", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))]
    if method in ("gradcam", "both"):
        tiles.append((f"Grad-CAM ({bundle.classes[k]})", _overlay(image, gradcam_map(bundle, image, k))))
    if method in ("attention", "both"):
        att = attention_map(bundle, image)
        if att is not None:
            tiles.append(("attention", _overlay(image, att)))
        elif method == "attention":
            raise ValueError(f"{bundle.meta['model']['name']} has no attention block; use --method gradcam")
    info = _verdict(bundle, verdict)
    title = f"{info['label']}  {100 * info['confidence']:.1f} %" if verdict.units[0] else "no leukocyte found: not classified"
    return _compose(tiles, title, max(224, image.shape[0]), _review_line(info)), info


def _verdict(bundle: Bundle, pred: Predictions) -> dict:
    """What `predict` says of the image: class, calibrated probabilities and the review flags."""
    k = int(pred.labels[0])
    return {
        "label": bundle.classes[k],
        "confidence": float(pred.confidence[0]),
        "probabilities": dict(zip(bundle.classes, map(float, pred.probs[0]))),
        "abstain": bool(pred.abstain[0]),
        "ood": bool(pred.ood[0]),
        "ood_reason": pred.ood_reasons[0] if pred.ood_reasons else "",
        "abstain_reason": pred.abstain_reasons[0] if pred.abstain_reasons else "",
    }


def _review_line(info: dict) -> str | None:
    return f"review: {info['abstain_reason']}" if info["abstain"] else None


HEADER = 66  # pixels above the tiles: title, review line, tile names


def _compose(tiles: list[tuple[str, np.ndarray]], title: str, size: int, review: str | None = None) -> np.ndarray:
    tiles = [(name, cv2.resize(t, (size, size), interpolation=cv2.INTER_NEAREST)) for name, t in tiles]
    panel = np.full((size + HEADER, size * len(tiles), 3), 255, np.uint8)
    cv2.putText(panel, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    if review:
        cv2.putText(panel, review, (8, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 190), 1, cv2.LINE_AA)
    for i, (name, tile) in enumerate(tiles):
        panel[HEADER:, i * size : (i + 1) * size] = tile
        cv2.putText(panel, name, (i * size + 8, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    return panel


def _cell_panel(bundle: Bundle, rgb: np.ndarray, method: str, pixel_scale: float | None = None) -> tuple[np.ndarray, dict]:
    predictor = Predictor(bundle, pixel_scale=pixel_scale)
    units, found = predictor.cell_units(rgb)
    field = predictor.predict_units([units])
    vis = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    tiles = [("cells", vis)]
    if len(units):
        cell_labels = bundle.calls(field.unit_probs)
        cell_confidence = called_probability(field.unit_probs, cell_labels)
        for i, cell in enumerate(found.cells):
            contours, _ = cv2.findContours((found.labels == i + 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(vis, contours, -1, (0, 160, 0), max(1, rgb.shape[0] // 200))
            text = bundle.classes[int(cell_labels[i])][:3]
            if field.unit_attention is not None:  # the cell's weight in the field's call
                text += f" {field.unit_attention[i]:.2f}"
            cv2.putText(vis, text, (int(cell.x) - 10, int(cell.y)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        best = int(cell_confidence.argmax())
        if method in ("gradcam", "both"):
            tiles.append(("Grad-CAM, most confident cell", _overlay(units[best], gradcam_map(bundle, units[best], int(cell_labels[best])))))
    info = {**_verdict(bundle, field), "cells": len(units)}
    if field.unit_attention is not None:
        info["cell_attention"] = [round(float(w), 4) for w in field.unit_attention]
    title = f"{info['label']}  {100 * info['confidence']:.1f} %  ({len(units)} cell(s))" if len(units) else "no leukocyte found: not classified"
    return _compose(tiles, title, max(224, rgb.shape[0]), _review_line(info)), info


def png_bytes(panel: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", panel)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def explain_files(
    bundle: Bundle, paths: list[str], out: str | Path, method: str = "both", pixel_scale: float | None = None
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Write OUT/<stem>_explain.png per image and OUT/explain.csv, a row per input (status, error,
    overlay); returns {path: png} and the failures."""
    import csv

    from leukoscope.data.images import read_rgb
    from leukoscope.errors import ImageError
    from leukoscope.io_utils import atomic_write

    out = Path(out)
    written, failures = {}, []
    for path in paths:
        try:
            rgb = read_rgb(path, max_pixels=bundle.pipeline.config.max_pixels)
        except ImageError as exc:
            failures.append({"path": path, "reason": exc.reason})
            continue
        panel, _ = explanation_panel(bundle, rgb, method, pixel_scale)
        target = out / f"{Path(path).stem}_explain.png"
        with atomic_write(target, "wb") as fh:
            fh.write(png_bytes(panel))
        written[path] = str(target)
    reasons = {f["path"]: f["reason"] for f in failures}
    with atomic_write(out / "explain.csv", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "status", "error", "overlay"])
        writer.writerows([p, "error", reasons[p], ""] if p in reasons else [p, "ok", "", written[p]] for p in paths)
    return written, failures
