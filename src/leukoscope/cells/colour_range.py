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
  in the development fields, it is raised to that edge.
- the nuclei's hue: the saturation-weighted mean hue of the most saturated and darkest pixels
  (saturation x (255 - value), which a hue rotation does not reorder). The score points to magenta
  (300 degrees): nuclei bluer than the range lose score while their red cells, turning magenta, gain
  it, so a hue below the range is rotated up to its edge, unless it lies so far out that those pixels
  cannot be nuclei (a field of red cells alone, whose darkest saturated pixels are pink). Nuclei
  redder than the range only move toward the score's direction, and are left.

A field inside the range is left exactly as it is: 12 of 200 drawn development fields change at all.
The range is measured by `benchmarks/detection_colours.py`.
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

    lamp_floor: tuple[float, float] = (0.94, 0.93)  # the lamp's red and blue over its green, 1st percentile
    min_nuclear_hue: float = 220.0  # degrees: the 5th percentile (the median is 235)
    lamp_share: float = 0.10  # the brightest share of pixels that shows the lamp
    nuclear_share: float = 0.005  # the most saturated and darkest share of pixels that shows the nuclei
    max_rotation: float = 45.0  # degrees: a hue further below is not a nucleus' (pink red cells lie 100 or more above)
    min_saturation: float = 20.0  # a field whose nuclear pixels are greyer than this has no hue to rotate
    max_gain: float = 1.3  # a channel dimmer than this is not a white balance but a missing channel


@dataclass(frozen=True)
class Anchors:
    """What a field shows of its lamp and its nuclei's stain."""

    lamp: np.ndarray  # RGB, 0-255
    nuclear_hue: float  # degrees
    nuclear_saturation: float  # 0-255

    @property
    def red_and_blue_over_green(self) -> np.ndarray:
        return self.lamp[[0, 2]] / max(float(self.lamp[1]), 1.0)


def measure_anchors(rgb: np.ndarray, colours: ColourRange = ColourRange()) -> Anchors:
    """The field's lamp colour and nuclear hue, measured outside the annotation box."""
    h, w = rgb.shape[:2]
    factor = min(1.0, MEASURE_SIDE / max(h, w))
    if factor < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
    outside = np.ones((h, w), bool)
    outside[int(h * ANNOTATION_BOX[0]) :, int(w * ANNOTATION_BOX[1]) :] = False  # the scale bar's red text
    pixels = rgb[outside]
    luma = pixels.astype(np.float32) @ LUMA
    lamp = pixels[luma >= np.quantile(luma, 1 - colours.lamp_share)].astype(np.float32).mean(0)
    hsv = cv2.cvtColor(pixels[None], cv2.COLOR_RGB2HSV_FULL)[0].astype(np.float32)  # hue over 0-255 for 360 degrees
    stained = hsv[:, 1] * (255 - hsv[:, 2])
    nuclear = hsv[stained >= np.quantile(stained, 1 - colours.nuclear_share)]
    angle = nuclear[:, 0] * (2 * np.pi / 256)
    mean = (nuclear[:, 1] * np.exp(1j * angle)).sum() / max(float(nuclear[:, 1].sum()), 1e-9)
    return Anchors(lamp, float(np.degrees(np.angle(mean)) % 360), float(nuclear[:, 1].mean()))


def into_colour_range(rgb: np.ndarray, colours: ColourRange = ColourRange()) -> np.ndarray:
    """`rgb` with its lamp's red and blue raised, and its nuclei's hue turned up, to the development
    range's lower edge where they lie below it; the same array when both lie inside it."""
    anchors = measure_anchors(rgb, colours)
    red, blue = np.asarray(colours.lamp_floor, np.float32) / np.maximum(anchors.red_and_blue_over_green, 1e-3)
    gain = np.array([max(red, 1.0), 1.0, max(blue, 1.0)], np.float32)
    if gain.max() > 1.0 and gain.max() <= colours.max_gain:
        rgb = np.clip(rgb.astype(np.float32) * gain, 0, 255).round().astype(np.uint8)
        anchors = measure_anchors(rgb, colours)
    below = (colours.min_nuclear_hue - anchors.nuclear_hue) % 360  # degrees to turn up to the edge
    if 0 < below <= colours.max_rotation and anchors.nuclear_saturation >= colours.min_saturation:
        rgb = rotate_hue(rgb, below)
    return rgb
