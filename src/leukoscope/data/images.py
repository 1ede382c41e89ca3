"""Read any image file into an RGB uint8 array, refusing what would crash or mislead."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from leukoscope.errors import ImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 50_000_000  # ~7,000 x 7,000: far above any microscope field, far below OOM


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Convert every Pillow mode to RGB uint8; transparency is composited on white (slide glass)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "La"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def open_image(path: str | Path, data: bytes | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open (headers only) and check size; raises ImageError naming the file."""
    path = str(path)
    try:
        src = io.BytesIO(data) if data is not None else path
        if data is not None and len(data) == 0 or data is None and Path(path).stat().st_size == 0:
            raise ImageError(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(src)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(path, "broken symbolic link (its target is missing)" if os.path.islink(path) else "file not found") from None
    except IsADirectoryError:
        raise ImageError(path, "is a folder, not an image") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not a readable image (no image format recognised in its contents)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError, ValueError) as exc:
        raise ImageError(path, f"not a readable image ({type(exc).__name__}: {exc})".replace(path, "file")) from None
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageError(path, f"image too large: {width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}")
    return img


def decode_rgb(img: Image.Image, path: str | Path) -> np.ndarray:
    """Decode pixels of an opened image into RGB uint8 (H, W, 3), honouring EXIF orientation."""
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return _to_rgb(img)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(str(path), f"corrupt or truncated image ({exc})") from None


def _is_plain_complete_jpeg(img: Image.Image, data: bytes) -> bool:
    """A baseline RGB JPEG with its end marker and no rotation: OpenCV decodes it faster than Pillow."""
    return (
        img.format == "JPEG"
        and img.mode == "RGB"
        and data.rstrip(b"\0").endswith(b"\xff\xd9")
        and img.getexif().get(0x0112, 1) == 1
    )


def read_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None) -> np.ndarray:
    """Read one image file as an RGB uint8 array; every failure is an ImageError naming the file."""
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = None  # let open_image name the problem
    img = open_image(path, data=data, max_pixels=max_pixels)
    with img:
        if data is not None and _is_plain_complete_jpeg(img, data):
            flag = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if flag is None else flag)
            if decoded is not None and decoded.shape[:2] == (img.height, img.width):
                return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB) if flag is None else decoded
        return decode_rgb(img, path)
