"""Per-image facts from a single decode: content hash, perceptual hash, foreground, annotation colour."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from leukoscope.config import ANNOTATION_BOX
from leukoscope.data.images import DEFAULT_MAX_PIXELS, decode_rgb, open_image
from leukoscope.errors import ImageError

THUMBNAIL_SIZE = 64


@dataclass
class ImageFacts:
    path: str
    sha256: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    phash: str = ""  # 64-bit DCT hash, 16 hex digits
    brightness: float = 0.0  # median grey level: bright for smears, dark for segmented cut-outs
    foreground_fraction: float = 0.0  # share of pixels unlike the image's dominant colour
    annotation_red_fraction: float = 0.0  # share of strongly red pixels in the lower-right box
    error: str = ""
    thumbnail: np.ndarray | None = field(default=None, repr=False)  # 64x64 grey, for near-duplicate checks


def thumbnail(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), interpolation=cv2.INTER_AREA)


def phash(gray: np.ndarray) -> str:
    """DCT perceptual hash of a grey image: robust to re-encoding, resizing and small shifts."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def foreground_fraction(rgb: np.ndarray, tolerance: int = 30) -> float:
    """Share of pixels far from the median colour; near 0 for black, white or flat images."""
    small = rgb[::2, ::2].reshape(-1, 3).astype(np.int16)
    median = np.median(small, axis=0)
    far = np.abs(small - median).max(axis=1) > tolerance
    return float(far.mean())


def annotation_red_fraction(rgb: np.ndarray) -> float:
    h, w = rgb.shape[:2]
    box = rgb[int(h * ANNOTATION_BOX[0]) :, int(w * ANNOTATION_BOX[1]) :].astype(np.int16)
    r, g, b = box[..., 0], box[..., 1], box[..., 2]
    red = (r > 140) & (r - g > 70) & (r - b > 50)
    return float(red.mean()) if red.size else 0.0


def scan_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFacts:
    """All facts the manifest and the audit need, from one read and one decode; never raises."""
    facts = ImageFacts(path=path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        facts.sha256 = hashlib.sha256(data).hexdigest()
        img = open_image(path, data=data, max_pixels=max_pixels)
        facts.width, facts.height, facts.mode = img.width, img.height, img.mode
        rgb = decode_rgb(img, path)
    except ImageError as exc:
        facts.error = exc.reason
        return facts
    except OSError as exc:
        facts.error = f"unreadable ({exc.strerror or exc})"
        return facts
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    facts.phash = phash(gray)
    facts.thumbnail = thumbnail(gray)
    facts.brightness = float(np.median(gray[::4, ::4]))
    facts.foreground_fraction = round(foreground_fraction(rgb), 5)
    facts.annotation_red_fraction = round(annotation_red_fraction(rgb), 5)
    return facts
