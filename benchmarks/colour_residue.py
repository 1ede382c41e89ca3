"""How far does a cell bundle's call on each cell move with a camera's colours or a blur, once the stain normalisation has run?

Usage: python benchmarks/colour_residue.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA] [--split test] [--every N]

A cell bundle normalises each field's leukocytes to one reference stain (Reinhard's transfer) before
cutting its crops, so a camera's colours reach the model only as what that transfer leaves: a few grey
levels. This measures what they still do, cell by cell, with the cells found on the unshifted field
(the detector held still). Printed per bundle, for each colour shift of the domain-shift benchmark
(hue, saturation, white balance, gamma) and blur: the mean change of the cells' p(Benign), the share of
cells whose most probable class changes, and the mean absolute change of the crop's pixels inside the cell.
Further rows shift the normalised crop itself, as training augments it, to show how closely that stands
in for the field's shift: its hue turned by ±30° and the cell normalised back to its own LAB statistics
(`preprocess.augment.normalised_back`, what `augment.camera_colour` trains on); a blur of σ 2 crop px
against the constant around the cell, and one as a field's blur leaves it (`augment.blur_as_field`). A
last row adds Gaussian noise of σ 4 grey levels to each crop: what a change of that size moves when it
carries no colour.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from cell_bundle_args import bundles_and_fields_parser, load_cell_bundle, split_fields

from leukoscope.cells.cache import preprocessed_stack
from leukoscope.cells.crops import field_crops
from leukoscope.config import BENIGN_CLASS
from leukoscope.data.shifts import DOMAIN_SHIFTS, rotate_hue
from leukoscope.inference.predictor import Predictor
from leukoscope.preprocess.augment import RandomGaussianBlur, hwc_to_chw, normalised_back
from leukoscope.preprocess.suppressed_crop import cell_pixels

FIELD_SHIFTS = [name for name in DOMAIN_SHIFTS if name.split()[0] in ("hue", "saturation", "white", "gamma", "blur")]
NOISE_SIGMA = 4.0
CROP_BLUR_SIGMA = 2.0  # crop px: a crop of 64 px spans about 60 px of a 224 px development field


def crop_shifts(fill: int, seed: int = 0) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Shifts of a normalised crop itself, whose fill stays as it is."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # the plasma colour a field-like blur draws

    def hue_normalised_back(degrees: float) -> Callable[[np.ndarray], np.ndarray]:
        def apply(crop: np.ndarray) -> np.ndarray:
            out = normalised_back(crop, rotate_hue(crop, degrees), cell_pixels(crop, fill))
            return crop if out is None else out

        return apply

    def blurred(as_field: bool) -> Callable[[np.ndarray], np.ndarray]:
        blur = RandomGaussianBlur(1.0, (CROP_BLUR_SIGMA, CROP_BLUR_SIGMA), fill, as_field=as_field)
        return lambda crop: blur(hwc_to_chw(crop)).permute(1, 2, 0).numpy()

    def noise(crop: np.ndarray) -> np.ndarray:
        out = np.clip(crop + rng.normal(0, NOISE_SIGMA, crop.shape), 0, 255).round().astype(np.uint8)
        outside = ~cell_pixels(crop, fill)
        out[outside] = crop[outside]
        return out

    return {
        "crop: hue -30°, normalised back": hue_normalised_back(-30),
        "crop: hue +30°, normalised back": hue_normalised_back(30),
        f"crop: blur σ {CROP_BLUR_SIGMA:g}, against the constant": blurred(False),
        f"crop: blur σ {CROP_BLUR_SIGMA:g}, as a field's": blurred(True),
        f"crop: noise σ {NOISE_SIGMA:g}": noise,
    }


def run(bundle_path: str, images: list[np.ndarray]) -> None:
    bundle = load_cell_bundle(bundle_path)
    predictor = Predictor(bundle)
    benign = bundle.classes.index(BENIGN_CLASS)

    def probabilities(crops: list[np.ndarray]) -> np.ndarray:
        logits, _ = predictor.logits_and_features(preprocessed_stack(bundle.pipeline, crops))
        return torch.softmax(torch.from_numpy(logits).float(), 1).numpy()

    reference = [c for rgb in images for c in field_crops(rgb, predictor.crop_config, predictor.detection).crops]
    p0 = probabilities(reference)
    print(f"  {len(reference)} cells; unshifted mean p(Benign) {p0[:, benign].mean():.3f}")
    shifted: dict[str, list[np.ndarray]] = {}
    for name in FIELD_SHIFTS:
        shift = DOMAIN_SHIFTS[name]
        shifted[name] = [c for rgb in images for c in field_crops(shift(rgb), predictor.crop_config, predictor.detection, detect_on=rgb).crops]
    fill = predictor.crop_config.fill
    for name, shift in crop_shifts(fill).items():
        shifted[name] = [shift(c) for c in reference]
    for name, crops in shifted.items():
        p = probabilities(crops)
        moved = np.mean([np.abs(c.astype(int) - r)[cell_pixels(r, fill)].mean() for c, r in zip(crops, reference)])
        print(
            f"  {name:40s} p(Benign) {p[:, benign].mean() - p0[:, benign].mean():+.3f}  "
            f"class changed {100 * (p.argmax(1) != p0.argmax(1)).mean():5.1f} %  pixels moved {moved:4.1f}",
            flush=True,
        )


def main() -> None:
    args = bundles_and_fields_parser(__doc__.splitlines()[0]).parse_args()
    _, images = split_fields(args)
    for b in args.bundles:
        print(b)
        run(b, images)


if __name__ == "__main__":
    main()
