"""Train-time augmentation (torchvision transforms v2), the model's input from a batch, and the paper's offline
class-balanced expansion.

Augmentation and expansion act only on the training split. Items stay uint8 until a whole batch is turned into
the model's input (`ModelInput`), in the training process: evaluation items are never augmented.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

from leukoscope.config import AugmentConfig
from leukoscope.data.shifts import AcquisitionRanges, dye_amounts, from_dye_amounts, jpeg, random_camera_colour
from leukoscope.preprocess.suppressed_crop import cell_pixels

# What a field's blur mixes into a leukocyte's rim, as the stain-normalised crop sees it: the 10th and 90th
# percentiles, per channel, of the median colour in a 2 px ring around the detected leukocytes of 48
# development fields, moved by each field's stain transfer (RGB)
PLASMA_RGB = (np.array([224.0, 221.0, 245.0]), np.array([240.0, 240.0, 251.0]))


class CropTransform(torch.nn.Module):
    """A random change to a uint8 image that works on it as an HWC array (`apply`): `AugmentPipeline` runs a chain
    of them on one array, converted from and to the CHW tensor once. Called alone on a CHW tensor, it converts
    each way itself. `apply` never writes into the array it is given (a loader's crops in shared memory)."""

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hwc_to_chw(self.apply(chw_to_hwc(x))).contiguous()


class AugmentPipeline(v2.Compose):
    """The training augmentation: its `CropTransform`s chained on one HWC array, any other transform (torchvision's)
    on the CHW tensor. Converting a 64-px crop between the two around each of five transforms, twice a view, was a
    tenth of a loader worker's time (BENCHMARKS.md, issue 17, "The model's input made once a batch")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hwc: np.ndarray | None = None
        for transform in self.transforms:
            if isinstance(transform, CropTransform):
                hwc = transform.apply(chw_to_hwc(x) if hwc is None else hwc)
            else:
                if hwc is not None:
                    x, hwc = hwc_to_chw(hwc).contiguous(), None
                x = transform(x)
        return x if hwc is None else hwc_to_chw(hwc)


class RandomFlip(CropTransform):
    """A mirror image with probability p, across the vertical axis (`axis` 1, left-right) or the horizontal one
    (0): torchvision's RandomHorizontalFlip and RandomVerticalFlip, drawing as they draw, without their
    per-call input checks."""

    def __init__(self, axis: int, p: float = 0.5) -> None:
        super().__init__()
        self.axis, self.p = axis, p

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if torch.rand(1) >= self.p:
            return hwc
        return np.ascontiguousarray(np.flip(hwc, self.axis))


class RandomRot90(CropTransform):
    """Rotate by a random multiple of 90 degrees: smears have no up; torchvision has no such transform."""

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        k = int(torch.randint(0, 4, (1,)).item())
        return np.ascontiguousarray(np.rot90(hwc, k)) if k else hwc  # as torch.rot90(chw, k, dims=(-2, -1))


def turn_hue(hwc: np.ndarray, shift: float) -> np.ndarray:
    """An HWC uint8 RGB image with its hue turned by `shift` of the colour circle, as torchvision's `adjust_hue`
    (within one grey level), through OpenCV's float HSV: 0.11 ms on a 64-px crop, against torchvision's 0.52,
    in a training step of 1.9 ms a crop (benchmarks/augment_throughput.py)."""
    hsv = cv2.cvtColor(hwc.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + 360 * shift) % 360
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


class RandomHue(CropTransform):
    """Hue turned by U(-hue, hue) of the colour circle: torchvision's ColorJitter hue, at a fifth of its cost."""

    def __init__(self, hue: float) -> None:
        super().__init__()
        self.hue = hue

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        return turn_hue(hwc, (2 * torch.rand(1).item() - 1) * self.hue)


class RandomColourJitter(CropTransform):
    """Brightness, contrast and saturation each scaled by U(1 - x, 1 + x), in a random order: torchvision's
    ColorJitter without its hue, through Albumentations' OpenCV version: on one thread 0.11 ms a real 64-px cell
    crop against torchvision's 0.18, measured side by side (0.095 against 0.152 on random crops,
    benchmarks/augment_throughput.py).

    Albumentations draws from a generator of its own. It is seeded from torch's the first time it runs in a
    process, so each data-loader worker (seeded by torch apart) draws its own values and a seeded run repeats."""

    def __init__(self, brightness: float, contrast: float, saturation: float) -> None:
        super().__init__()
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self._jitter: Any = None
        self._process: int | None = None

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if self._process != os.getpid():
            os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no call to PyPI from a lab's machine
            import albumentations

            self._jitter = albumentations.ColorJitter(self.brightness, self.contrast, self.saturation, hue=0.0, p=1.0)
            self._jitter.set_random_seed(int(torch.randint(2**31, (1,)).item()))
            self._process = os.getpid()
        return np.atleast_3d(self._jitter(image=hwc)["image"])  # the whole crop, its constant too

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_jitter": None, "_process": None}  # built again in the process that unpickles it


class RandomHEDJitter(CropTransform):
    """Stain augmentation in haematoxylin-eosin-DAB space (colour deconvolution, `data.shifts.dye_amounts`):
    each stain's optical density scaled by U(1 - s, 1 + s) and shifted by U(-s, s) of its own range,
    after Tellez et al. 2018. A Romanowsky stain is not H&E, but its nuclear and cytoplasmic dyes separate along
    similar axes, which is what the jitter moves independently."""

    def __init__(self, strength: float) -> None:
        super().__init__()
        self.strength = strength

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        s = self.strength
        scale = 1 + (torch.rand(3) * 2 - 1) * s
        shift = (torch.rand(3) * 2 - 1) * s
        amounts = dye_amounts(hwc)
        moved = amounts * scale.numpy() + shift.numpy() * np.percentile(np.abs(amounts), 99, axis=0).clip(1e-3)
        return from_dye_amounts(moved, hwc.shape)


class RandomJPEG(CropTransform):
    """JPEG recompression at a quality drawn from `quality`, with probability p. `outline_fill` as
    `RandomGaussianBlur`'s: a recompressed field's crops are cut after the recompression, so the constant
    around a cell has no ringing."""

    def __init__(self, p: float, quality: tuple[int, int], outline_fill: int | None = None) -> None:
        super().__init__()
        self.p, self.quality, self.outline_fill = p, quality, outline_fill

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if torch.rand(1).item() >= self.p:
            return hwc
        q = int(torch.randint(self.quality[0], self.quality[1] + 1, (1,)).item())
        return inside_outline(hwc, lambda rgb: jpeg(rgb, q), self.outline_fill)


class RandomCameraColour(CropTransform):
    """Another camera's colours (`data.shifts.random_camera_colour`, the hue turned by up to `hue` degrees),
    then the stain normalised back to the image's own (Reinhard's transfer: LAB means and spreads), with probability p.

    The stain normalisation before the model matches a camera's colours in their LAB means and spreads
    only. What it leaves is a few grey levels, and under a hue turn of 30 degrees it still moved a tenth
    of the cells' calls, towards Benign; the same shift on a normalised crop, normalised back, moved
    them alike (BENCHMARKS.md, issue 17, fourteenth session). `outline_fill` is the constant around a
    suppressed cell crop: it stays exact, and the cell's own pixels are what is normalised. The transfer
    runs in OpenCV's CIELAB under a mask: through torchstain's NumPy conversion it cost twice as much.
    """

    def __init__(self, p: float, hue: float, outline_fill: int | None = None) -> None:
        super().__init__()
        self.p, self.ranges, self.outline_fill = p, AcquisitionRanges(hue=hue), outline_fill

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if torch.rand(1).item() >= self.p:
            return hwc
        return normalised_back_inside_outline(
            hwc, lambda rgb, cell: random_camera_colour(rgb, np.random.default_rng(int(torch.randint(2**31, (1,)).item())), self.ranges), self.outline_fill
        )


MIN_CELL_PIXELS = 16  # fewer carry no spread to normalise


def normalised_back_inside_outline(
    hwc: np.ndarray, change: Callable[[np.ndarray, np.ndarray], np.ndarray], outline_fill: int | None
) -> np.ndarray:
    """`change` (an HWC uint8 image and its cell's mask -> HWC uint8) applied to an HWC image, then the cell given
    its own LAB means and spreads back (`normalised_back`), as a stain normalisation would. The cell is every
    pixel but the constant `outline_fill` (None: the whole image); `hwc` as it was when it is too small or flat."""
    cell = np.ones(hwc.shape[:2], bool) if outline_fill is None else cell_pixels(hwc, outline_fill)
    if cell.sum() < MIN_CELL_PIXELS:
        return hwc
    out = normalised_back(hwc, change(hwc, cell), cell)
    return hwc if out is None else out


# sRGB's transfer function for each 8-bit level (IEC 61966-2-1): the linear light a uint8 pixel stands for
_LEVELS = np.arange(256) / 255
SRGB_TO_LINEAR = np.where(_LEVELS <= 0.04045, _LEVELS / 12.92, ((_LEVELS + 0.055) / 1.055) ** 2.4).astype(np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """An HWC uint8 sRGB image in float CIELAB (L 0-100), as OpenCV's float RGB2LAB, at a fifth of its cost.

    OpenCV linearises a float image per pixel, 0.25 ms on a 64-px crop, two of them in every camera-colour
    augmentation; an 8-bit image has 256 levels, linearised once in SRGB_TO_LINEAR. Its LAB2RGB brings the
    result back to the same uint8 pixels, where a float RGB2LAB's round trip moved 0.7 % of them by a level."""
    return cv2.cvtColor(SRGB_TO_LINEAR[rgb], cv2.COLOR_LRGB2LAB)


def normalised_back(original: np.ndarray, moved: np.ndarray, cell: np.ndarray) -> np.ndarray | None:
    """`moved` (HWC uint8) with its `cell` pixels given the LAB means and spreads of `original`'s (Reinhard's
    transfer) and the rest of `original` as it was; None when a LAB channel of the moved cell is flat."""
    own, shifted = srgb_to_lab(original), srgb_to_lab(moved)
    mask = cell.astype(np.uint8)
    (own_mean, own_std), (mean, std) = (cv2.meanStdDev(lab, mask=mask) for lab in (own, shifted))
    if (std < 0.1).any():
        return None
    gain = own_std / std
    per_channel = np.hstack([np.diagflat(gain), own_mean - mean * gain]).astype(np.float32)  # LAB' = gain * LAB + offset
    rgb = cv2.cvtColor(cv2.transform(shifted, per_channel), cv2.COLOR_LAB2RGB)
    return cv2.copyTo(cv2.multiply(rgb, (255.0, 255.0, 255.0), dtype=cv2.CV_8U), mask, original.copy())  # rounded, saturated


def inside_outline(hwc: np.ndarray, optics: Callable[[np.ndarray], np.ndarray], outline_fill: int | None) -> np.ndarray:
    """`optics` (an OpenCV filter on HWC uint8, returning a new image) applied to an HWC image; the pixels of
    `outline_fill`, the constant around a suppressed cell crop, stay as they were (None: a field, filtered everywhere)."""
    out = np.atleast_3d(optics(hwc))
    if outline_fill is not None:
        np.copyto(out, np.uint8(outline_fill), where=~cell_pixels(hwc, outline_fill)[..., None])
    return out


class KeepOutlineFill(CropTransform):
    """`transform` applied to a suppressed cell crop, the constant `outline_fill` around the cell kept as it was:
    the cell's colours move against it."""

    def __init__(self, transform: CropTransform, outline_fill: int) -> None:
        super().__init__()
        self.transform, self.outline_fill = transform, outline_fill

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        outside = ~cell_pixels(hwc, self.outline_fill)
        out = self.transform.apply(hwc)
        out = out.copy() if out is hwc else out
        out[outside] = self.outline_fill
        return out


class RandomGaussianBlur(CropTransform):
    """A Gaussian blur of sigma drawn from U(sigma), with probability p. OpenCV's kernel spans +-3 sigma:
    torchvision's fixed 7-px kernel, used before, held every sigma under 2 px, and a wide enough one
    cost 4.3 ms per 64-px crop against OpenCV's 0.3.

    `outline_fill`: the constant around a suppressed cell crop, which stays as it is. A blurred field's
    crops are cut after the blur, so their outline is sharp; a model trained on crops whose outline the
    blur had softened told the two apart and still called a blurred field's cells Benign.

    `as_field`: blurred as a field's blur and its stain normalisation leave a cell crop. The cell is blurred
    with plasma around it (PLASMA_RGB), not the constant, and its LAB means and spreads are then restored,
    as the field's stain transfer restores them. Blurred against the constant, a crop kept half its
    contrast, while a field's blurred cells keep all of theirs (BENCHMARKS.md, issue 17, twentieth session).
    """

    def __init__(self, p: float, sigma: tuple[float, float], outline_fill: int | None = None, as_field: bool = False) -> None:
        super().__init__()
        if as_field and outline_fill is None:
            raise ValueError("a field-like blur needs the constant around a cell crop (outline_fill)")
        self.p, self.sigma, self.outline_fill, self.as_field = p, sigma, outline_fill, as_field
        # the share of p in force, set by a warm-up; in shared memory, so data-loader workers see it change
        self.strength = torch.ones(1).share_memory_()

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if torch.rand(1).item() >= self.p * float(self.strength):
            return hwc
        s = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * torch.rand(1).item()
        if self.as_field:
            return normalised_back_inside_outline(hwc, lambda rgb, cell: blurred_in_plasma(rgb, cell, s), self.outline_fill)
        return inside_outline(hwc, lambda rgb: cv2.GaussianBlur(rgb, (0, 0), s, borderType=cv2.BORDER_REFLECT_101), self.outline_fill)


def blurred_in_plasma(hwc: np.ndarray, cell: np.ndarray, sigma: float) -> np.ndarray:
    """`hwc` blurred with a plasma colour drawn from PLASMA_RGB in place of everything outside `cell`."""
    low, high = PLASMA_RGB
    surrounded = hwc.copy()
    surrounded[~cell] = np.round(low + (high - low) * torch.rand(3).numpy()).astype(np.uint8)
    return cv2.GaussianBlur(surrounded, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)


class RandomResample(CropTransform):
    """The image seen at a coarser pixel size, with probability p: area-averaged down by a factor drawn from
    U(scale) and brought back up (bicubic), as cutting cells at the training pixel size from another
    objective's images does. A model whose subtype calls moved when the same cells were resampled once
    (issue 17) has to have seen that. `outline_fill` as `RandomGaussianBlur`'s: the outline stays sharp."""

    def __init__(self, p: float, scale: tuple[float, float], outline_fill: int | None = None) -> None:
        super().__init__()
        self.p, self.scale, self.outline_fill = p, scale, outline_fill

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if torch.rand(1).item() >= self.p:
            return hwc
        factor = self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand(1).item()

        def coarser(rgb: np.ndarray) -> np.ndarray:
            h, w = rgb.shape[:2]
            small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)

        return inside_outline(hwc, coarser, self.outline_fill)


class RandomFrameCut(CropTransform):
    """A cell as the image's frame cuts it, with probability p: beyond a straight line across the cell, parallel to
    one side of the crop, every pixel becomes the constant `outline_fill` around the cell, as in the crop of a
    cell the frame cuts. The share of the cell's extent kept is drawn from `keep`. About a quarter of the detected
    cells are cut so, and a cut benign cell is read as benign half as often as a whole one (benchmarks/frame_cut_cells.py)."""

    def __init__(self, p: float, outline_fill: int | None, keep: tuple[float, float] = (0.4, 0.9)) -> None:
        super().__init__()
        if outline_fill is None:
            raise ValueError("augment.frame_cut cuts a cell against the constant around it: it needs suppressed cell crops (cells.suppress: constant or disc)")
        if not 0 < keep[0] <= keep[1] <= 1:
            raise ValueError(f"the share of a cut cell kept lies in (0, 1], low to high; got {keep}")
        self.p, self.outline_fill, self.keep = p, outline_fill, keep

    def apply(self, hwc: np.ndarray) -> np.ndarray:
        if torch.rand(1).item() >= self.p:
            return hwc
        side, share = int(torch.randint(4, (1,)).item()), self.keep[0] + (self.keep[1] - self.keep[0]) * torch.rand(1).item()
        axis = side // 2  # 0: rows go, below or above the line; 1: columns, right or left of it
        extent = np.flatnonzero(cell_pixels(hwc, self.outline_fill).any(axis=1 - axis))
        if len(extent) < 2:
            return hwc
        first, end = int(extent[0]), int(extent[-1]) + 1
        kept = max(1, round(share * (end - first)))
        beyond = slice(first + kept, None) if side % 2 == 0 else slice(None, end - kept)
        out = hwc.copy()
        out[(beyond,) if axis == 0 else (slice(None), beyond)] = self.outline_fill
        return out


def build_augment(cfg: AugmentConfig, fill: int = 255, outline_fill: int | None = None) -> AugmentPipeline:
    """uint8 CHW -> uint8 CHW random optical, geometric and stain-plausible colour changes; `fill` is
    what an affine move exposes at the border: slide glass for a field, the constant around a cell
    crop. `outline_fill` is that constant when the input is a suppressed cell crop: the blur, first,
    as the optics come before the camera, keeps it sharp."""
    ops: list[torch.nn.Module] = []

    def on_cell_alone(colour: CropTransform) -> CropTransform:
        """`colour` on the cell alone, its crop's constant surround kept, where `cfg.colour_inside_outline` asks."""
        return KeepOutlineFill(colour, outline_fill) if cfg.colour_inside_outline and outline_fill is not None else colour

    if cfg.random_crop:
        ops.append(v2.RandomCrop(cfg.random_crop))
    if cfg.frame_cut:  # the frame cuts the image the optics made: before the blur, whose outline stays sharp
        ops.append(RandomFrameCut(cfg.frame_cut, outline_fill, tuple(cfg.frame_cut_keep)))
    if cfg.blur:
        ops.append(RandomGaussianBlur(cfg.blur, tuple(cfg.blur_sigma), outline_fill, as_field=cfg.blur_as_field and outline_fill is not None))
    if cfg.resample:
        ops.append(RandomResample(cfg.resample, tuple(cfg.resample_scale), outline_fill))
    if cfg.hflip:
        ops.append(RandomFlip(axis=1))
    if cfg.vflip:
        ops.append(RandomFlip(axis=0))
    if cfg.rot90:
        ops.append(RandomRot90())
    if cfg.affine_degrees or cfg.affine_translate or tuple(cfg.affine_scale) != (1.0, 1.0):
        ops.append(
            v2.RandomAffine(
                degrees=cfg.affine_degrees,
                translate=(cfg.affine_translate, cfg.affine_translate) if cfg.affine_translate else None,
                scale=tuple(cfg.affine_scale),
                fill=fill,
            )
        )
    if cfg.camera_colour:
        ops.append(RandomCameraColour(cfg.camera_colour, cfg.camera_hue, outline_fill))
    if cfg.stain_hed:
        ops.append(on_cell_alone(RandomHEDJitter(cfg.stain_hed)))
    if cfg.brightness or cfg.contrast or cfg.saturation:
        ops.append(on_cell_alone(RandomColourJitter(cfg.brightness, cfg.contrast, cfg.saturation)))
    if cfg.hue:
        ops.append(RandomHue(cfg.hue))
    if cfg.grey:
        ops.append(v2.RandomGrayscale(cfg.grey))
    if cfg.jpeg:
        ops.append(RandomJPEG(cfg.jpeg, tuple(cfg.jpeg_quality), outline_fill))
    return AugmentPipeline(ops or [v2.Identity()])


def set_blur_strength(transform: torch.nn.Module, fraction: float) -> int:
    """Every `RandomGaussianBlur` in `transform` (nested composes included) applied with `fraction` x its
    probability; returns how many there were."""
    found = 0
    if isinstance(transform, RandomGaussianBlur):
        transform.strength.fill_(fraction)
        found += 1
    for inner in getattr(transform, "transforms", []):
        found += set_blur_strength(inner, fraction)
    return found


def to_model_input(mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class ModelInput(torch.nn.Module):
    """A batch of uint8 images (..., C, H, W) as the model reads them: scaled to [0, 1] and normalised by `mean`
    and `std`, then, in training, each image erased in a random rectangle with probability `erasing`.

    Done once a batch in the training process, not on each item in a loader worker: the float items were four times
    the bytes to pass back, and their conversion a fifth of a worker's time (BENCHMARKS.md, issue 17, "The model's
    input made once a batch"). Each element gets the same arithmetic, so the batch is the items' values exactly."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], erasing: float = 0.0) -> None:
        super().__init__()
        self.normalise = to_model_input(mean, std)
        self.erase = v2.RandomErasing(p=erasing) if erasing else None

    def forward(self, images: torch.Tensor, training: bool = False) -> torch.Tensor:
        x = self.normalise(images)
        if training and self.erase is not None:
            flat = x.flatten(0, -4)  # one rectangle drawn for each image, not one for the batch
            x = torch.stack([self.erase(image) for image in flat]).view_as(x)
        return x


def hwc_to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def chw_to_hwc(x: torch.Tensor) -> np.ndarray:
    """A CHW uint8 tensor as a contiguous HWC array (a view where the tensor is a permuted HWC array, as a loader's item is)."""
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def expand_offline(
    images: np.ndarray, labels: list[int], per_class: int, cfg: AugmentConfig, seed: int = 0
) -> tuple[np.ndarray, list[int], list[int]]:
    """Class-balanced expansion of the TRAINING images to `per_class` each, as in the paper.

    Every original is kept once; the remainder are augmented copies drawn at random (seeded) from
    the same class. Returns the expanded images, their labels and the index of each one's source.
    A class already above `per_class` keeps all its originals.
    """
    augment = build_augment(dataclasses.replace(cfg, random_crop=None))  # stored copies keep the full field
    rng = np.random.default_rng(seed)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    out_images: list[np.ndarray] = []
    out_labels: list[int] = []
    sources: list[int] = []
    labels_arr = np.asarray(labels)
    try:
        for c in sorted(set(labels)):
            members = np.flatnonzero(labels_arr == c)
            picks = list(members) + list(rng.choice(members, size=max(0, per_class - len(members)), replace=True))
            for k, i in enumerate(picks):
                img = images[i]
                if k >= len(members):
                    img = augment(hwc_to_chw(img)).permute(1, 2, 0).numpy()
                out_images.append(img)
                out_labels.append(int(c))
                sources.append(int(i))
    finally:
        torch.random.set_rng_state(gen_state)
    return np.stack(out_images), out_labels, sources
