"""Scale-normalised cell crops: centred on each leukocyte, sized by the field's red cells or by the cell itself.

The same cell gives the same crop at any magnification. With `scale="cell"` the crop side is
`context` x the cell's own diameter, so every cell fills its crop alike and its absolute size is
lost. With `scale="red_cell"` the crop side is `red_cell_span` red-cell diameters (the red-cell
ruler, cells/ruler.py): magnification is normalised and a lymphoblast stays larger than a small
lymphocyte. With `scale="pixel_size"` the red cell is the training fields', at the image's pixel
size (the set's ruler, `--pixel-size`), not the field's own: a field's background cannot then move
its crops. Either falls back to the cell's own diameter where the field's leukocytes do not measure
0.8-4 red cells across on it (no red cell measured, or an image not at the pixel size assumed), and
the crops record which was used. Pixels outside the (slightly grown) cell mask are suppressed so the
background cannot carry the class. With a `stain_target` the field's leukocytes are first moved
together to that stain (one Reinhard transfer per field, fitted on all its leukocyte pixels: the
cells of a field share a session, and their differences are kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from leukoscope.cells.colour_range import into_colour_range
from leukoscope.cells.detect import Cell, DetectionConfig, detect_leukocytes, field_scale, touches_frame
from leukoscope.cells.outline import Outlines, cell_cores
from leukoscope.cells.ruler import DEVELOPMENT_RED_CELL_PX, Ruler, measure_red_cells, one_scale, plausible
from leukoscope.cells.stain import StainTarget

SUPPRESS_MODES = ("constant", "noise", "none", "disc")
SUPPRESSED_WITH_FILL = ("constant", "disc")  # the modes that leave the constant `fill` around the cell
# suppress="disc" keeps a disc of this share of the crop's half-side around the cell's centre (1 red cell in radius
# with `red_cell_span` 4), whatever the detector's outline: the cell's size is then read from its pixels, not its cut
DISC_SHARE = 0.5
CROP_FORMAT = 6  # raised whenever the same settings cut different crops (detection included), so that no cache serves the old ones


@dataclass(frozen=True)
class CropConfig:
    size: int = 64
    context: float = 1.4  # crop side / cell diameter
    suppress: str = "constant"  # what replaces pixels outside the cell mask
    fill: int = 128
    single_cell_fraction: float = 0.25  # a detected cell this large a share of the image: a single-cell image
    scale: str = "cell"  # what sizes the crop: the cell's own diameter, the field's red cells, or the training fields' at the image's pixel size
    red_cell_span: float = 4.0  # crop side in red-cell diameters (a lymphoblast is 1.5-3 across)
    stain_target: tuple[float, ...] | None = None  # LAB means and stds the field's leukocytes are moved to; None: as imaged
    source_px: int | None = None  # the most field pixels a crop's side keeps: finer detail is averaged away (None: all)
    stain_fit: str = "cells"  # the stain transfer fitted on all the leukocytes' pixels, on their cores, or on the discs disc crops show
    colour_range: bool = False  # cut from the field brought into the detector's colour range, not from the field as imaged

    def __post_init__(self) -> None:
        if self.stain_fit == "discs" and self.suppress != "disc" and self.stain_target is not None:
            raise ValueError(f"stain_fit='discs' fits the transfer on what disc crops show; suppress is {self.suppress!r}")

    def half_side(self, cell: Cell, half: float | None = None) -> float:
        """Half a crop's side in field pixels: `half` when the set's ruler gives one, else `context` x the cell's radius."""
        return self.context * cell.radius if half is None else half


def square_map(centre: tuple[float, float], half: float, size: int) -> np.ndarray:
    """The 2 x 3 affine map from the square of half-side `half` around `centre` onto a size x size crop (sub-pixel)."""
    scale = size / (2 * half)
    x0, y0 = centre[0] - half, centre[1] - half
    return np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)


def cut_square(
    image: np.ndarray, centre: tuple[float, float], half: float, size: int, source_px: int | None = None, border: int = cv2.BORDER_REPLICATE, border_value: Any = 0
) -> np.ndarray:
    """The square of half-side `half` around `centre` as size x size pixels, carrying at most `source_px`
    pixels of detail across.

    A square wider than the output is cut at the field's own resolution, then reduced by area averaging:
    warpAffine samples bilinearly whatever flag it is given, and a 200 px cell sampled onto 64 px
    aliases into sharp, grainy chromatin that no training field shows.
    """
    side = 2 * half
    limit = min(size, source_px) if source_px else size
    if side <= limit:
        return cv2.warpAffine(image, square_map(centre, half, size), (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=border_value)
    native = int(np.ceil(side))
    patch = cv2.warpAffine(image, square_map(centre, half, native), (native, native), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=border_value)
    detail = min(native, source_px) if source_px else native
    if detail < native:
        patch = cv2.resize(patch, (detail, detail), interpolation=cv2.INTER_AREA)
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if detail > size else cv2.INTER_LINEAR)


def in_disc(grid: np.ndarray, cell: Cell, half: float) -> np.ndarray:
    """Which pixels of `grid` (np.mgrid's row and column indices) a disc crop of `cell` shows, its side 2 x `half`."""
    yy, xx = grid
    return (xx - cell.x) ** 2 + (yy - cell.y) ** 2 <= (DISC_SHARE * half) ** 2


def discs_mask(shape: tuple[int, int], cells: list[Cell], halves: list[float]) -> np.ndarray:
    """The pixels that the disc crops of `cells` (their half-sides `halves`) show, over a field of `shape`."""
    mask = np.zeros(shape, bool)
    for cell, half in zip(cells, halves):
        reach = DISC_SHARE * half
        y0, y1 = max(0, int(cell.y - reach)), min(shape[0], int(np.ceil(cell.y + reach)) + 1)
        x0, x1 = max(0, int(cell.x - reach)), min(shape[1], int(np.ceil(cell.x + reach)) + 1)
        if y0 < y1 and x0 < x1:
            mask[y0:y1, x0:x1] |= in_disc(np.mgrid[y0:y1, x0:x1], cell, half)
    return mask


def crop_cell(
    rgb: np.ndarray, labels: np.ndarray, index: int, cell: Cell, config: CropConfig, rng: np.random.Generator | None = None, half: float | None = None
) -> np.ndarray:
    """One size x size RGB crop of cell `index` (1-based in `labels`); `half` is half the crop side in
    field pixels (default: `context` x the cell's radius)."""
    half = config.half_side(cell, half)
    if config.suppress == "none":
        return cut_square(rgb, (cell.x, cell.y), half, config.size, config.source_px)
    # the surroundings are replaced at the field's resolution, before resampling: a crop's border pixels
    # then blend the cell with the fill, never with its background, and the crop depends on the cell alone
    h, w = labels.shape
    x0, y0 = max(0, int(cell.x - half) - 2), max(0, int(cell.y - half) - 2)
    x1, y1 = min(w, int(np.ceil(cell.x + half)) + 3), min(h, int(np.ceil(cell.y + half)) + 3)
    if config.suppress == "disc":
        inside = in_disc(np.mgrid[y0:y1, x0:x1], cell, half)
    else:
        inside = labels[y0:y1, x0:x1] == index
    window = np.where(inside[..., None], rgb[y0:y1, x0:x1], np.uint8(config.fill))
    centre = (cell.x - x0, cell.y - y0)
    crop = cut_square(window, centre, half, config.size, config.source_px, border=cv2.BORDER_CONSTANT, border_value=(config.fill,) * 3)
    mask = cut_square(inside.astype(np.uint8) * 255, centre, half, config.size, border=cv2.BORDER_CONSTANT) > 127
    if config.suppress in SUPPRESSED_WITH_FILL:
        crop[~mask] = config.fill
    elif config.suppress == "noise":
        rng = rng or np.random.default_rng(0)
        crop[~mask] = rng.integers(0, 256, (int((~mask).sum()), 3), dtype=np.uint8)
    else:
        raise ValueError(f"unknown suppress mode {config.suppress!r}; choose {', '.join(SUPPRESS_MODES)}")
    return crop


@dataclass
class FieldCrops:
    """The crops of one field, the cells they were cut from and the label image of those cells."""

    crops: list[np.ndarray]
    cells: list[Cell]
    labels: np.ndarray  # int32, 0 = background, i + 1 = cells[i]
    single: bool  # handled as a single-cell image
    scaled_by: str = "cell diameter"  # or "red cells", or "pixel size"
    red_cell_px: float | None = None  # the red-cell diameter the crops were sized by, in the field's pixels
    pixel_scale: float | None = None  # the pixel scale it was resampled from, when it was (its pixels per training pixel)

    def cut_by_frame(self, index: int) -> bool:
        """Whether the image's frame cuts cell `index`; never a single-cell image's cell, which fills the frame."""
        return not self.single and touches_frame(self.cells[index].box, self.labels.shape)


def field_crops(
    rgb: np.ndarray,
    crop: CropConfig = CropConfig(),
    detection: DetectionConfig = DetectionConfig(),
    detect_on: np.ndarray | None = None,
    pixel_scale: float | None = None,
    training_scale: float = 1.0,
    outlines: Outlines | None = None,
    fit_outlines: Outlines | None = None,
) -> FieldCrops:
    """All cell crops of a field, with their cells, and whether the image is a single-cell image.

    A single-cell image (one detected cell covering a large share of the frame, or no detection in
    a small image) is handled as one cell centred in the frame, so it never fails detection.
    `detect_on` (same size) finds the cells on another image and cuts them from `rgb`: the
    background swap uses it to judge the classifier apart from the detector.

    `pixel_scale` is the image's pixels per pixel of a 224 px development field, measured by the
    red-cell ruler or known from the microscope (`cells.ruler`). Beyond SCALE_TOLERANCE of the field of
    view's own (`field_scale`, what None means), the image is resampled to the training fields' pixel
    size (`training_scale`: theirs, 1 for the development fields), its cells are found and cut there,
    and their outlines are mapped back: the crops then carry the detail that training crops carried,
    neither an oil objective's sharper chromatin nor a low-power objective's few pixels upsampled.

    `outlines` redraws the detected cells' outlines (given the label image and the scale they were found
    at) before anything is cut: the training crops of `cells.outline_jitter`. The stain transfer is fitted
    on the same redrawn outlines unless `fit_outlines` draws its own from the detected ones (`as_detected`:
    fitted on the detected outlines, only the cut moved).

    With `crop.colour_range`, the field is first brought into the detector's colour range, measured on
    the cells found (`colour_range.into_colour_range`): a field inside it is cut as imaged.
    """
    if detect_on is not None and detect_on.shape != rgb.shape:
        raise ValueError(f"detect_on has shape {detect_on.shape}, the image {rgb.shape}")
    if resamples(rgb.shape, pixel_scale):
        return _at_training_pixel_size(rgb, crop, detection, detect_on, pixel_scale, training_scale, outlines, fit_outlines)
    return _field_crops(rgb, crop, detection, detect_on, field_scale(rgb.shape), outlines, fit_outlines)


def resamples(shape: tuple[int, ...], pixel_scale: float | None) -> bool:
    """Whether `field_crops` resamples an image of `shape` at `pixel_scale`: only beyond SCALE_TOLERANCE of its field of view's own."""
    return pixel_scale is not None and not one_scale(pixel_scale, field_scale(shape))


def _at_training_pixel_size(
    rgb: np.ndarray,
    crop: CropConfig,
    detection: DetectionConfig,
    detect_on: np.ndarray | None,
    pixel_scale: float,
    training_scale: float,
    outlines: Outlines | None,
    fit_outlines: Outlines | None,
) -> FieldCrops:
    h, w = rgb.shape[:2]
    factor = pixel_scale / training_scale
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    interpolation = cv2.INTER_AREA if factor > 1 else cv2.INTER_CUBIC

    def resampled(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, size, interpolation=interpolation)

    found = _field_crops(resampled(rgb), crop, detection, None if detect_on is None else resampled(detect_on), training_scale, outlines, fit_outlines)
    sx, sy = w / size[0], h / size[1]
    cells = [
        Cell((c.x + 0.5) * sx - 0.5, (c.y + 0.5) * sy - 0.5, c.radius * np.sqrt(sx * sy), (int(c.box[0] * sx), int(c.box[1] * sy), int(np.ceil(c.box[2] * sx)), int(np.ceil(c.box[3] * sy))), int(round(c.area * sx * sy)))
        for c in found.cells
    ]  # fmt: skip
    labels = cv2.resize(found.labels, (w, h), interpolation=cv2.INTER_NEAREST)
    red_cell_px = None if found.red_cell_px is None else found.red_cell_px * factor
    return FieldCrops(found.crops, cells, labels, found.single, found.scaled_by, red_cell_px, pixel_scale)


def _field_crops(
    rgb: np.ndarray,
    crop: CropConfig,
    detection: DetectionConfig,
    detect_on: np.ndarray | None,
    scale: float,
    outlines: Outlines | None,
    fit_outlines: Outlines | None,
) -> FieldCrops:
    """`field_crops` with the cells detected at `scale` (the image's pixels per development-field pixel)."""
    cells, detected = detect_leukocytes(rgb if detect_on is None else detect_on, detection, scale)
    labels = fitted = detected  # where the cells are cut, and the outlines the stain transfer is fitted on
    if cells:
        labels = detected if outlines is None else outlines(detected, scale)
        fitted = labels if fit_outlines is None else fit_outlines(detected, scale)
    if crop.colour_range and detection.colour_range is not None and cells:
        rgb = into_colour_range(rgb, detection.colour_range, cells=detected > 0)
    h, w = rgb.shape[:2]
    big = [c for c in cells if c.area >= crop.single_cell_fraction * h * w]
    ruler = None
    if crop.scale == "red_cell":
        ruler = measure_red_cells(rgb if detect_on is None else detect_on, labels > 0)
    elif crop.scale == "pixel_size":
        ruler = Ruler(DEVELOPMENT_RED_CELL_PX * scale, red_cells=0.0)
    if not plausible(ruler, [2 * c.radius for c in cells]):
        ruler = None
    half = crop.red_cell_span * ruler.red_cell_px / 2 if ruler is not None else None
    scaled = {"scaled_by": "red cells" if crop.scale == "red_cell" else "pixel size", "red_cell_px": ruler.red_cell_px} if ruler is not None else {}
    single = (len(cells) == 1 and bool(big)) or (not cells and max(h, w) <= 2 * crop.size)
    if single and not cells:
        cells = [Cell(w / 2, h / 2, min(h, w) / (2 * crop.context), (0, 0, w, h), h * w)]
        labels = fitted = np.ones((h, w), np.int32)
    if crop.stain_target is not None and cells:
        leukocytes = (labels > 0) | (fitted > 0)
        moved = np.ones_like(leukocytes) if crop.suppress == "disc" else leukocytes  # a disc shows what surrounds the cell, restained with it
        if crop.stain_fit == "discs":
            fit_on = discs_mask((h, w), cells, [crop.half_side(c, half) for c in cells])
        elif crop.stain_fit == "cores":
            fit_on = cell_cores(fitted)
        elif fitted is labels and moved is leukocytes:
            fit_on = None  # fitted on every pixel it moves
        else:
            fit_on = fitted > 0
        rgb = StainTarget.from_stats(crop.stain_target).restain(rgb, moved, fit_on=fit_on)
    if single:
        return FieldCrops([crop_cell(rgb, labels, 1, cells[0], crop, half=half)], cells, labels, True, **scaled)
    return FieldCrops([crop_cell(rgb, labels, i + 1, c, crop, half=half) for i, c in enumerate(cells)], cells, labels, False, **scaled)
