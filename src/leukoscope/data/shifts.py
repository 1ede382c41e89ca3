"""Acquisition shifts: what another laboratory's stain, camera, optics and file format do to a field.

Each of `DOMAIN_SHIFTS` maps an RGB uint8 field to another of the same size, one change at a time;
`OTHER_LAB_SHIFTS` makes several at once, as another laboratory's images differ, and records the
view at that lab's pixel scale. The domain-shift benchmark runs every bundle under each of them, and
the synthetic "other lab" fields are rendered with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
from skimage.color import hed_from_rgb, rgb_from_hed

Shift = Callable[[np.ndarray], np.ndarray]


def rotate_hue(rgb: np.ndarray, degrees: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)  # hue over 0-255 for 360 degrees
    hsv[..., 0] = ((hsv[..., 0].astype(np.float32) + degrees * 256 / 360).round() % 256).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def scale_saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
    return cv2.cvtColor(hsv.round().astype(np.uint8), cv2.COLOR_HSV2RGB)


def white_balance(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Per-channel gain, as a camera's white balance set for another lamp would apply."""
    return np.clip(rgb.astype(np.float32) * np.asarray(gains, np.float32), 0, 255).round().astype(np.uint8)


def gamma(rgb: np.ndarray, value: float) -> np.ndarray:
    table = np.clip(255 * (np.arange(256) / 255.0) ** value, 0, 255).round().astype(np.uint8)
    return cv2.LUT(rgb, table)


def blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), sigma)


def sharpen(rgb: np.ndarray, amount: float, radius: float = 1.0) -> np.ndarray:
    """Unsharp masking, as a camera's or a scanner's sharpening, or finer optics, would show the chromatin:
    the detail finer than a Gaussian of sigma `radius` px raised by `amount`. (scikit-image 0.26's
    `unsharp_mask` returned a field of mean 2.6 from a uint8 field of mean 209, with preserve_range.)"""
    return cv2.addWeighted(rgb, 1 + amount, cv2.GaussianBlur(rgb, (0, 0), radius), -amount, 0)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def magnify(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The field seen at `factor` x the magnification, same pixel size: enlarged and centre-cropped,
    or shrunk and padded with the field's median (plasma) colour, which holds no cell."""
    h, w = rgb.shape[:2]
    nh, nw, dy, dx = _magnified_frame(h, w, factor)
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    if factor >= 1:
        return np.ascontiguousarray(resized[-dy : -dy + h, -dx : -dx + w])
    out = np.empty_like(rgb)
    out[:] = np.median(rgb.reshape(-1, 3), axis=0).astype(np.uint8)
    out[dy : dy + nh, dx : dx + nw] = resized
    return out


def magnified_box(box: tuple[int, int, int, int], shape: tuple[int, ...], factor: float) -> tuple[float, float, float, float] | None:
    """Where `magnify` puts a box (x0, y0, x1, y1) of a field of `shape`; None when it leaves the frame."""
    h, w = shape[:2]
    nh, nw, dy, dx = _magnified_frame(h, w, factor)
    x0, y0, x1, y1 = box[0] * nw / w + dx, box[1] * nh / h + dy, box[2] * nw / w + dx, box[3] * nh / h + dy
    return (x0, y0, x1, y1) if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h else None


def _magnified_frame(h: int, w: int, factor: float) -> tuple[int, int, int, int]:
    """The resized field's height and width, and the offset of its top-left corner in the output frame."""
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    if factor < 1:  # padded around
        return nh, nw, (h - nh) // 2, (w - nw) // 2
    return nh, nw, -((nh - h) // 2), -((nw - w) // 2)  # centre-cropped


def resolution(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The field as a camera with `factor` x the pixels per side would record it, brought back to its size."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _squared_distance_from_centre(h: int, w: int) -> np.ndarray:
    """Each pixel's squared distance from the image's centre, in pixels (an (h, w) array)."""
    yy, xx = np.ogrid[:h, :w]
    return (xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2


def vignette(rgb: np.ndarray, corner: float) -> np.ndarray:
    """Light falling off from the centre, as the square of the distance, to `corner` x the centre's in the
    corners: a camera's vignetting, or a lamp not centred on the field."""
    h, w = rgb.shape[:2]
    r2 = _squared_distance_from_centre(h, w) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
    return np.clip(rgb * (1 - (1 - corner) * r2)[..., None], 0, 255).round().astype(np.uint8)


def field_stop(rgb: np.ndarray, radius: float = 0.6) -> np.ndarray:
    """The field through a round field stop of radius `radius` x the image's width about its centre, black
    beyond (the edge softened over a pixel of a 224-px field): the dark corners of many microscope cameras' images."""
    h, w = rgb.shape[:2]
    inside = (_squared_distance_from_centre(h, w) <= (radius * w) ** 2).astype(np.float32)
    inside = cv2.GaussianBlur(inside, (0, 0), max(h, w) / 224)
    return (rgb.astype(np.float32) * inside[..., None]).round().astype(np.uint8)


def dye_amounts(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's amount of the three dyes, (n, 3) in optical density: colour deconvolution (Ruifrok and
    Johnston) onto scikit-image's haematoxylin, eosin and DAB vectors. scikit-image's `rgb2hed` clips
    negative amounts, and its round trip moved this data's pixels by up to 139 levels; this one, with
    `from_dye_amounts`, returns every uint8 pixel as it was."""
    return -np.log((rgb.reshape(-1, 3).astype(np.float64) + 1.0) / 256.0) @ hed_from_rgb


def from_dye_amounts(amounts: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 image of `shape` whose pixels hold `amounts` (n, 3) of the dyes (`dye_amounts`' inverse)."""
    return np.clip(256.0 * np.exp(-(amounts @ rgb_from_hed)) - 1.0, 0, 255).round().astype(np.uint8).reshape(shape)


def stain_balance(rgb: np.ndarray, hematoxylin: float = 1.0, eosin: float = 1.0) -> np.ndarray:
    """One dye of the stain heavier than the other, as a Romanowsky stain's balance moves with the buffer's pH
    and the staining time from lab to lab: each dye's amount scaled, a white pixel kept white. A Romanowsky
    stain is not H&E, but its nuclear dye lies near the haematoxylin vector (blue-purple)."""
    return from_dye_amounts(dye_amounts(rgb) * np.array([hematoxylin, eosin, 1.0]), rgb.shape)


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luminance in all three channels: the shape of a colour image, none of its hues."""
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


MAGNIFICATIONS = {"magnification x0.5": 0.5, "magnification x2": 2.0, "magnification x3": 3.0}  # the shifts that move the cells

DOMAIN_SHIFTS: dict[str, Shift] = {
    "hue -30°": lambda x: rotate_hue(x, -30),
    "hue -15°": lambda x: rotate_hue(x, -15),
    "hue +15°": lambda x: rotate_hue(x, 15),
    "hue +30°": lambda x: rotate_hue(x, 30),
    "saturation x0.6": lambda x: scale_saturation(x, 0.6),
    "saturation x1.4": lambda x: scale_saturation(x, 1.4),
    "white balance warm (R +15 %, B -15 %)": lambda x: white_balance(x, (1.15, 1.0, 0.85)),
    "white balance cool (R -15 %, B +15 %)": lambda x: white_balance(x, (0.85, 1.0, 1.15)),
    "gamma 0.7": lambda x: gamma(x, 0.7),
    "gamma 1.4": lambda x: gamma(x, 1.4),
    "blur sigma 1": lambda x: blur(x, 1.0),
    "blur sigma 2": lambda x: blur(x, 2.0),
    "sharpen 1": lambda x: sharpen(x, 1.0),
    "sharpen 2": lambda x: sharpen(x, 2.0),
    "JPEG quality 60": lambda x: jpeg(x, 60),
    "JPEG quality 30": lambda x: jpeg(x, 30),
    **{name: partial(magnify, factor=factor) for name, factor in MAGNIFICATIONS.items()},
    "vignetting (corners at 60 %)": lambda x: vignette(x, 0.6),
    "field stop (black corners)": field_stop,
    "nuclear stain x1.5 (HED)": lambda x: stain_balance(x, hematoxylin=1.5),
    "nuclear stain x0.67 (HED)": lambda x: stain_balance(x, hematoxylin=1 / 1.5),
    "grey": grey,
}


@dataclass(frozen=True)
class OtherLab:
    """How another laboratory's fields differ: stain palette, camera white balance, optics, file format."""

    name: str
    hue: float = 0.0  # degrees
    saturation: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    zoom: float = 1.0  # pixels per micrometre relative to the development data, the same view (another camera)
    # a stronger objective on a frame of the same pixels: the view's centre magnified (`magnify`), so the pixel scale is
    # zoom x objective while each image is as large as a view at zoom alone; beyond the ruler's tolerance, a pixel scale
    # that the image's size does not tell
    objective: float = 1.0
    blur: float = 0.0  # extra defocus, sigma in pixels
    jpeg: int | None = None  # recompression quality


OTHER_LABS = (
    OtherLab("oil 100x, warm lamp, JPEG", hue=-12, saturation=1.25, white_balance=(1.12, 1.0, 0.9), zoom=1.6, blur=0.8, jpeg=60),
    OtherLab("pale stain, cool camera, soft focus", hue=10, saturation=0.7, white_balance=(0.9, 1.0, 1.12), zoom=0.8, blur=1.5),
    OtherLab("oil objective 2x on the same camera, warm lamp, JPEG", hue=-12, saturation=1.25, white_balance=(1.12, 1.0, 0.9), objective=2.0, blur=0.8, jpeg=60),
)


def recorded_by(rgb: np.ndarray, lab: OtherLab) -> np.ndarray:
    """A view already at `lab`'s pixel scale, in its stain and camera colours, through its optics and software."""
    out = white_balance(scale_saturation(rotate_hue(rgb, lab.hue), lab.saturation), lab.white_balance)
    out = blur(out, lab.blur) if lab.blur else out
    return jpeg(out, lab.jpeg) if lab.jpeg else out


def other_lab_view(rgb: np.ndarray, lab: OtherLab) -> np.ndarray:
    """The view as `lab` would have recorded it: `lab.zoom` x the pixels per side, its centre magnified by
    `lab.objective` in the same frame, then `recorded_by`."""
    h, w = rgb.shape[:2]
    size = (max(1, round(w * lab.zoom)), max(1, round(h * lab.zoom)))
    zoomed = rgb if lab.zoom == 1 else cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if lab.zoom > 1 else cv2.INTER_AREA)
    return recorded_by(zoomed if lab.objective == 1 else magnify(zoomed, lab.objective), lab)


OTHER_LAB_SHIFTS: dict[str, Shift] = {f"another lab: {lab.name}": partial(other_lab_view, lab=lab) for lab in OTHER_LABS}


@dataclass(frozen=True)
class AcquisitionRanges:
    """What one random acquisition draws from: focus and resolution, the camera's white balance and
    response, a residual hue and saturation difference, and the file's compression. Training fields cut
    under such draws teach the model cells as the detector finds them in another laboratory's field."""

    blur: tuple[float, float] = (0.0, 1.5)  # Gaussian sigma, px
    resolution: tuple[float, float] = (0.5, 1.0)  # pixels per side, as a share of the field's
    white_balance: float = 0.15  # the R and B gains each drawn from 1 +- this (G is the camera's reference)
    gamma: tuple[float, float] = (0.7, 1.4)  # drawn log-uniformly
    hue: float = 15.0  # degrees either way
    saturation: tuple[float, float] = (0.7, 1.3)
    jpeg: tuple[int, int] = (30, 95)


def random_acquisition(rgb: np.ndarray, rng: np.random.Generator, ranges: AcquisitionRanges = AcquisitionRanges()) -> np.ndarray:
    """`rgb` as one randomly drawn other camera and microscope would have recorded it (optics, then camera, then file)."""
    out = blur(rgb, s) if (s := rng.uniform(*ranges.blur)) > 0.1 else rgb
    out = random_camera_colour(resolution(out, rng.uniform(*ranges.resolution)), rng, ranges)
    return jpeg(out, int(rng.integers(ranges.jpeg[0], ranges.jpeg[1] + 1)))


def random_camera_colour(rgb: np.ndarray, rng: np.random.Generator, ranges: AcquisitionRanges = AcquisitionRanges()) -> np.ndarray:
    """`rgb` in the colours of a randomly drawn other camera: its white balance and response, and a residual hue and saturation difference."""
    out = white_balance(rgb, (1 + rng.uniform(-1, 1) * ranges.white_balance, 1.0, 1 + rng.uniform(-1, 1) * ranges.white_balance))
    out = gamma(out, float(np.exp(rng.uniform(*np.log(ranges.gamma)))))
    return scale_saturation(rotate_hue(out, rng.uniform(-ranges.hue, ranges.hue)), rng.uniform(*ranges.saturation))
