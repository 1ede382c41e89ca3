"""Single preprocessing steps on RGB uint8 arrays (OpenCV). Each returns a new RGB uint8 array."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from leukoscope.config import ANNOTATION_BOX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_local = threading.local()


def resize(rgb: np.ndarray, size: int, mode: str = "pad", pad_mode: str = "reflect", pad_value: tuple[int, ...] = (255, 255, 255)) -> np.ndarray:
    """Scale to size x size: keep the aspect ratio and pad the short side ("pad"), or stretch."""
    h, w = rgb.shape[:2]
    if mode == "stretch" or h == w:
        interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
        return cv2.resize(rgb, (size, size), interpolation=interp) if (h, w) != (size, size) else rgb.copy()
    if mode != "pad":
        raise ValueError(f"unknown resize mode {mode!r}")
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(rgb, (nw, nh), interpolation=interp)
    top, left = (size - nh) // 2, (size - nw) // 2
    border = cv2.BORDER_REFLECT_101 if pad_mode == "reflect" and min(nh, nw) > 1 else cv2.BORDER_CONSTANT
    return cv2.copyMakeBorder(scaled, top, size - nh - top, left, size - nw - left, border, value=tuple(int(v) for v in pad_value))


def _clahe(clip: float, tiles: int) -> cv2.CLAHE:
    key = (clip, tiles)
    cache = getattr(_local, "clahe", None)
    if cache is None:
        cache = _local.clahe = {}
    if key not in cache:
        cache[key] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles))
    return cache[key]


def lab_clahe(rgb: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """RGB -> LAB, contrast-limited adaptive histogram equalisation of L only, back to RGB."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = _clahe(clip, tiles).apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def denoise(rgb: np.ndarray, method: str = "median", size: int = 3) -> np.ndarray:
    if method == "none":
        return rgb
    if method == "median":
        return cv2.medianBlur(rgb, size)
    if method == "gaussian":
        return cv2.GaussianBlur(rgb, (size, size), 0)
    if method == "bilateral":
        return cv2.bilateralFilter(rgb, size, 25, 25)
    if method == "nlmeans":
        return cv2.fastNlMeansDenoisingColored(rgb, None, 5, 5, size | 1, 3 * size | 1)
    raise ValueError(f"unknown denoise method {method!r}")


def mask_annotation(rgb: np.ndarray, box: tuple[float, float] = ANNOTATION_BOX) -> np.ndarray:
    """Paint the lower-right annotation box with the image's median (background) colour."""
    out = rgb.copy()
    h, w = rgb.shape[:2]
    top, left = int(h * box[0]), int(w * box[1])
    out[top:, left:] = np.median(rgb[::4, ::4].reshape(-1, 3), axis=0).astype(np.uint8)
    return out


def stain_normalize(rgb: np.ndarray, reference: tuple[float, ...]) -> np.ndarray:
    """Reinhard colour transfer: match each LAB channel's mean and std to a reference."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    mean, std = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0) + 1e-6
    ref_mean, ref_std = np.asarray(reference[:3], np.float32), np.asarray(reference[3:], np.float32)
    lab = (lab - mean) / std * ref_std + ref_mean
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def normalize(rgb: np.ndarray, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> np.ndarray:
    """uint8 HWC -> float32 CHW, scaled to [0, 1] then standardised per channel."""
    x = rgb.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
