"""A field's colours brought into the development fields' range before its leukocytes are found.

The detector's stain score, (R + B) / 2 - G, was tuned on one laboratory's fields, and another
camera or stain moves it. Under a hue rotation of -30 degrees it found 66.5 % of 200 development
fields' cells again (red cells turned magenta and scored like nuclei); under a cool white balance
(R -15 %, B +15 %), 84.2 %.
On the cells found before such a shift the classifier kept its accuracy: the detector was the weak
link (BENCHMARKS.md, issue 17, eleventh session). Two anchors every smear field has are therefore
brought to the edge of the range the development fields span, where they lie outside it:

- the lamp: the mean colour of the brightest tenth of the field (glass and plasma). A camera's white
  balance sets the red and blue gains against green; where red or blue is dimmer, against green, than
  in any development field, it is raised to that edge.
- the nuclei's hue: the saturation-weighted mean hue of the leukocytes the detector finds in the field
  as imaged. The score points to magenta (300 degrees): nuclei bluer than the range lose score while
  their red cells, turning magenta, gain it, so a hue below the range is rotated up to its edge, and
  the cells are found again. A hue so far below that it cannot be a nucleus' (the detector took pink
  red cells for leukocytes) is left. Nuclei redder than the range only move toward the score's
  direction, and are left too. Where no leukocyte is found, the field's most saturated and darkest
  pixels stand for the nuclei (saturation x (255 - value), which a hue rotation does not reorder),
  against their own range.

Both anchors read as little of the background as they can. Read on the darkest saturated pixels of
the whole field, the nuclear hue followed the background: pasted onto another class's background
(the background swap), 28 of 200 development fields' cells changed, against 6 or 7 without the range.
Read on the cells, and with the lamp's floor at the lowest development field rather than the 1st
percentile, 6 did; a hue turn of -30 degrees finds 91.0 % of the cells again, a cool white
balance 91.1 % (`benchmarks/detection_colours.py --shifts`). A field inside the range is left exactly
as it is: 6 of those 200 fields find other cells at all.

The crops may be cut from the field brought into the range, too (`cells.crop_in_colour_range`): the
cells were found again, but a model that read them as imaged still lost 14.5 points at hue -30 degrees
(`configs/cells.yaml`, seed 0); the same model given crops cut in range lost none (+0.5), and the recipe
retrained on them 0.5-1.0 over three seeds (BENCHMARKS.md, issue 17, "Crops cut in the colour range"). Only the lower edge: the upper one
(the red and blue lamp down to the development fields' white, a nuclear hue down to their 95th
percentile, 276 degrees) bought nothing under hue +30 degrees or a warm white balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.config import ANNOTATION_BOX
from leukoscope.data.shifts import rotate_hue

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as OpenCV's RGB2GRAY weighs the channels
MEASURE_SIDE = 448  # the anchors are measured on a copy at most this wide: a 2000 px field's quantiles cost 20x as much


@dataclass(frozen=True)
class ColourRange:
    """The development fields' range of the two anchors, and how much may be corrected."""

    # the lamp's red and blue over its green: the lowest of the development fields, so that no development
    # background (a background swap's donor) sets the gain off (at the 1st percentile, 0.94 and 0.93, swaps did)
    lamp_floor: tuple[float, float] = (0.92, 0.87)
    min_nuclear_hue: float = 241.0  # degrees, on the leukocytes found in the field as imaged: the 5th percentile (median 250)
    min_darkest_hue: float = 220.0  # degrees, on the darkest saturated pixels of a field where none is found: the 5th percentile (median 234)
    lamp_share: float = 0.10  # the brightest share of pixels that shows the lamp
    darkest_share: float = 0.005  # where no leukocyte is found, the most saturated and darkest share of pixels stands for the nuclei
    max_rotation: float = 45.0  # degrees: a hue further below is not a nucleus' (pink red cells lie 100 or more above)
    min_saturation: float = 20.0  # a field whose nuclear pixels are greyer than this has no hue to rotate
    max_gain: float = 1.3  # a channel dimmer than this is not a white balance but a missing channel


@dataclass(frozen=True)
class Anchors:
    """What a field shows of its lamp and its nuclei's stain."""

    lamp: np.ndarray  # RGB, 0-255
    nuclear_hue: float  # degrees
    nuclear_saturation: float  # 0-255
    on_cells: bool  # measured on the leukocytes found, not on the field's darkest saturated pixels

    @property
    def red_and_blue_over_green(self) -> np.ndarray:
        return self.lamp[[0, 2]] / max(float(self.lamp[1]), 1.0)

    def hue_below(self, colours: ColourRange) -> float:
        """Degrees, 0-360, by which the nuclear hue lies below the range's edge for how it was measured."""
        edge = colours.min_nuclear_hue if self.on_cells else colours.min_darkest_hue
        return (edge - self.nuclear_hue) % 360


def measure_anchors(rgb: np.ndarray, colours: ColourRange = ColourRange(), cells: np.ndarray | None = None) -> Anchors:
    """The field's lamp colour, measured outside the annotation box, and its nuclear hue: on the pixels
    of `cells` (a mask of the leukocytes found in the field as imaged) where it holds any, otherwise on
    the field's most saturated and darkest pixels."""
    small, outside = _measured_copy(rgb)
    pixels = small[outside]
    luma = pixels.astype(np.float32) @ LUMA
    lamp = pixels[luma >= np.quantile(luma, 1 - colours.lamp_share)].astype(np.float32).mean(0)
    on_cells = cells is not None and bool(cells.any())
    if on_cells:
        nuclear = _hsv(rgb[cells])
    else:  # the darkest saturated pixels: saturation x (255 - value), an order a hue rotation keeps
        hsv = _hsv(pixels)
        stained = hsv[:, 1] * (255 - hsv[:, 2])
        nuclear = hsv[stained >= np.quantile(stained, 1 - colours.darkest_share)]
    angle = nuclear[:, 0] * (2 * np.pi / 256)
    mean = (nuclear[:, 1] * np.exp(1j * angle)).sum() / max(float(nuclear[:, 1].sum()), 1e-9)
    return Anchors(lamp, float(np.degrees(np.angle(mean)) % 360), float(nuclear[:, 1].mean()), on_cells)


def _measured_copy(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A copy at most `MEASURE_SIDE` wide, and the mask of its pixels outside the annotation box (the scale bar's red text)."""
    h, w = rgb.shape[:2]
    factor = min(1.0, MEASURE_SIDE / max(h, w))
    if factor < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
    outside = np.ones((h, w), bool)
    outside[int(h * ANNOTATION_BOX[0]) :, int(w * ANNOTATION_BOX[1]) :] = False
    return rgb, outside


def _hsv(pixels: np.ndarray) -> np.ndarray:
    """An (n, 3) RGB array as float HSV, hue over 0-255 for 360 degrees."""
    return cv2.cvtColor(pixels[None], cv2.COLOR_RGB2HSV_FULL)[0].astype(np.float32)


def into_colour_range(rgb: np.ndarray, colours: ColourRange = ColourRange(), cells: np.ndarray | None = None) -> np.ndarray:
    """`rgb` with its lamp's red and blue raised, and its nuclei's hue turned up, to the development
    range's lower edge where they lie below it; the same array when both lie inside it. `cells`: the
    leukocytes found in `rgb` as imaged (`measure_anchors`)."""
    anchors = measure_anchors(rgb, colours, cells)
    red, blue = np.asarray(colours.lamp_floor, np.float32) / np.maximum(anchors.red_and_blue_over_green, 1e-3)
    gain = np.array([max(red, 1.0), 1.0, max(blue, 1.0)], np.float32)
    if gain.max() > 1.0 and gain.max() <= colours.max_gain:
        rgb = np.clip(rgb.astype(np.float32) * gain, 0, 255).round().astype(np.uint8)
        anchors = measure_anchors(rgb, colours, cells)
    below = anchors.hue_below(colours)
    if 0 < below <= colours.max_rotation and anchors.nuclear_saturation >= colours.min_saturation:
        rgb = rotate_hue(rgb, below)
    return rgb
