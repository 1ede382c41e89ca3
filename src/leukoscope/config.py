"""One typed config for a run: sections data, preprocess, augment, model, loss, train, cells, eval.

Loads from YAML, takes `section.key=value` overrides, and refuses unknown keys and wrong types with
one line naming the key. The resolved config is written beside every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from leukoscope.errors import ConfigError

# Lower-right box where the release draws its scale bar, as fractions of height and width.
ANNOTATION_BOX = (0.88, 0.80)
BENIGN_CLASS = "Benign"  # the one class that is not a lymphoblast: benign vs malignant figures and blast-like shares


@dataclass
class DataConfig:
    root: str = ""  # dataset: class folders, release root or CSV; empty = synthetic default
    variant: str = "Original"
    splits: str = ""  # splits file; empty = make one with the settings below
    test_per_class: int | None = None
    test_fraction: float | None = 0.2
    val_fraction: float = 0.1
    fold: int | None = None  # train on one fold of the splits file's k folds
    seed: int = 0
    expand_per_class: int | None = None  # paper protocol: expand training offline to N per class
    balanced_sampler: bool = False
    batch_size: int = 32
    num_workers: int = 0
    cache_dir: str = ""  # preprocessing cache; empty = ~/.cache/leukoscope
    synth_per_class: int = 60  # size of the synthetic default when root is empty
    cell_labels: str = ""  # a review.csv: reviewed cells of training fields are supervised with their reviewed class
    # the fields' pixel size, for a cell-level run (engine/crop_scale.py): "auto" (their red cells), "field" (each a
    # training field's view), or µm per pixel; null: auto for a fine-tune (train.init_from), as `case` cuts a lab's images
    pixel_size: float | Literal["auto", "field"] | None = None


@dataclass
class PreprocessConfig:
    """The paper's chain with our parameter choices (the paper publishes none)."""

    size: int = 224
    resize: Literal["pad", "stretch"] = "pad"
    pad_mode: Literal["constant", "reflect"] = "reflect"
    pad_value: list[int] = field(default_factory=lambda: [255, 255, 255])
    mask_annotation: bool = False
    annotation_box: list[float] = field(default_factory=lambda: list(ANNOTATION_BOX))  # top, left of the lower-right box
    stain_normalize: bool = False
    grey: bool = False  # colour-blind: every field as grey in three channels, so no stain can carry the class
    stain_reference: list[float] = field(default_factory=lambda: [160.0, 140.0, 120.0, 30.0, 8.0, 8.0])  # LAB mean, std
    clahe: bool = True
    clahe_clip: float = 2.0
    clahe_tiles: int = 8
    denoise: Literal["none", "median", "gaussian", "bilateral", "nlmeans"] = "median"
    denoise_size: int = 3
    normalize: Literal["imagenet", "dataset", "none"] = "imagenet"
    mean: list[float] | None = None  # filled from the training split when normalize=dataset
    std: list[float] | None = None
    max_pixels: int = 50_000_000


@dataclass
class AugmentConfig:
    random_crop: int | None = None  # train on random crops of this size at full resolution; evaluate whole fields
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    affine_degrees: float = 10.0
    affine_translate: float = 0.05
    affine_scale: list[float] = field(default_factory=lambda: [0.9, 1.1])
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    # the brightness, contrast and saturation jitter moves a suppressed cell crop's cell alone, not the constant
    # around it: moved together, the constant tells the model how far the cell was lightened, and the cell's
    # lightness against it stays a cue (a stain transfer fitted on a pixel's tighter outline lightens the cell)
    colour_inside_outline: bool = False
    random_erasing: float = 0.0
    # invariance to another lab's stain, camera and software (each applied with its probability)
    stain_hed: float = 0.0  # HED stain jitter (Tellez et al. 2018): each stain's amount scaled by 1 +- this, shifted by +- this
    grey: float = 0.0  # probability of a grey copy
    # probability of another camera's colours (white balance, gamma, saturation, hue up to camera_hue degrees),
    # then normalised back to the image's own LAB statistics: what a stain normalisation leaves of them
    camera_colour: float = 0.0
    camera_hue: float = 30.0
    blur: float = 0.0  # probability of a Gaussian blur, sigma drawn from blur_sigma
    blur_sigma: list[float] = field(default_factory=lambda: [0.3, 1.5])
    blur_warmup_epochs: int = 0  # the blur's probability rises linearly from 0 over these first epochs
    # a cell crop blurred as a field's blur and stain normalisation leave it: plasma mixed into its rim, its LAB
    # means and spreads kept (preprocess/augment.py, RandomGaussianBlur); off: blurred against the constant around it.
    # It did not buy invariance to a field's blur (BENCHMARKS.md, issue 17, "What a blur leaves")
    blur_as_field: bool = False
    jpeg: float = 0.0  # probability of JPEG recompression, quality drawn from jpeg_quality
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 90])
    resample: float = 0.0  # probability of seeing the image at a coarser pixel size, its factor drawn from resample_scale
    resample_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    # probability of a cell cut by the image's frame: the crop beyond a straight line across the cell turned into the
    # constant around it (suppressed cell crops only), the share of the cell kept drawn from frame_cut_keep. At 0.3
    # (seeds 1 and 2) cut benign cells read as benign a little more often, cut malignant ones too, and the fields'
    # ranking got no better: off (BENCHMARKS.md, issue 17, "Where the deployed screening cut's last point lies")
    frame_cut: float = 0.0
    frame_cut_keep: list[float] = field(default_factory=lambda: [0.4, 0.9])


@dataclass
class ModelConfig:
    name: str = "vgg19_mhsa"
    weights: str | None = None  # None | "imagenet" | path to a local .pth/.safetensors
    kwargs: dict[str, Any] = field(default_factory=dict)
    freeze_blocks: int = 0


@dataclass
class LossConfig:
    name: Literal["focal", "cross_entropy"] = "focal"
    gamma: float = 2.0
    alpha: Any = None  # None | "balanced" | list of per-class weights
    label_smoothing: float = 0.0
    # The loss is class_weight x the K-class loss above + malignancy_weight x a focal benign-vs-malignant term,
    # its two sides weighted alike (losses/malignancy.py) + subtype_weight x a focal loss among the malignant
    # classes for malignant items (losses/subtype.py). class_weight=0 with the other two > 0 decides the benign
    # line on its own, with the subtype beneath it: pair it with eval.call=benign_first.
    class_weight: float = 1.0
    malignancy_weight: float = 0.0
    subtype_weight: float = 0.0
    # the share of each training batch's malignant-labelled cell crops, those the model holds most benign, left out
    # of the loss: a leukemic field's normal cells carry its malignant label (losses/field_labels.py). It rises
    # linearly from 0 in the first epoch to this share at malignant_cell_drop_epochs. Measured at 0.2 on the cell
    # recipe it lost 9.5 points of 4-class accuracy and called as many benign fields' cells malignant as before
    # (BENCHMARKS.md, issue 17, "Four bf16 seeds as one bundle, and normal cells under a leukemic field's label"): off by default.
    malignant_cell_drop: float = 0.0
    malignant_cell_drop_epochs: int = 10


@dataclass
class TrainConfig:
    max_epochs: int = 30
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: Literal["cosine", "onecycle", "none"] = "cosine"
    warmup_epochs: float = 1.0
    early_stopping_patience: int = 0  # 0 = off; watches validation macro-F1
    swa_start: float | None = None  # stochastic weight averaging from this fraction of training; the bundle then takes the averaged weights
    swa_lr: float = 0.0005
    # the weight of a Jensen-Shannon term between the calls on two augmented views of each training item
    # (losses/consistency.py); above 0 every item is augmented twice per step, which costs twice the compute.
    # At weight 6 and the cell recipe's compute it bought blur sigma 2 (-4.5 points instead of -18) for 8.5 points of
    # 4-class accuracy and most of the specificity at 99 % sensitivity (BENCHMARKS.md, "What a blur leaves")
    consistency: float = 0.0
    # "auto": bf16 where the CPU (AVX-512 BF16, AMX) or GPU computes it, fp16 on a GPU without bf16, fp32 otherwise
    # (engine/precision.py; environment.json records the choice); or Lightning's "32-true", "bf16-mixed", "16-mixed"
    precision: str = "32-true"
    channels_last: bool = True
    deterministic: bool = False
    seed: int = 0
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    num_threads: int = 0  # 0 = on a CPU with data.num_workers, the cores the workers leave; else torch's default
    log_every_n_steps: int = 10
    limit_train_batches: float = 1.0
    init_from: str = ""  # a bundle to start from (fine-tuning): same architecture and classes


# The pooled leukocytes of 160 training fields (40 per class) of the development data, in torchstain's
# LAB (L 0-100): a stain that exists, so normalised crops still look like cells.
LEUKOCYTE_STAIN = (68.5, 29.0, -44.0, 12.4, 14.4, 18.3)
# The cores (cells.outline.cell_cores) of a typical training field: the mean over 160 training fields (40 per class)
# of each field's core LAB means and standard deviations. Not the pooled cores: their spread also holds the
# differences between fields, 1.6x one field's, and a transfer to it stretched every field's contrast
# (benchmarks/stain_fit.py; BENCHMARKS.md, issue 17, sixteenth session).
CORE_STAIN = (64.9, 36.2, -50.7, 5.9, 6.3, 8.0)
# What disc crops (cells.suppress=disc) of a typical training field show, the same 160 fields' mean: the cells with
# the plasma and red cells around them, paler and less blue than the cells alone.
DISC_STAIN = (76.3, 19.0, -30.8, 13.7, 16.9, 21.2)
STAIN_TARGETS = {"cells": LEUKOCYTE_STAIN, "cores": CORE_STAIN, "discs": DISC_STAIN}  # each stain fit's default target


@dataclass
class CellsConfig:
    """The cell-level path: a model trained on leukocyte crops, fields predicted by aggregating their cells."""

    enabled: bool = False
    crop_size: int = 64
    context: float = 1.4  # crop side / cell diameter
    suppress: Literal["constant", "noise", "none", "disc"] = "constant"
    # crops sized by the cell's own diameter, by the field's red cells, or by the training fields' red cells at the
    # image's pixel size (the set's ruler: a field's own background cannot move its crops)
    scale: Literal["cell", "red_cell", "pixel_size"] = "cell"
    red_cell_span: float = 4.0  # with scale=red_cell or pixel_size: the crop side in red-cell diameters
    aggregate: Literal["mean_log_prob", "attention"] = "mean_log_prob"  # how a field's cells make its call: mean, or gated attention pooling
    # the share of training fields the attention pool sees, each of its epochs, as a random 1 to n of their n cells, so that
    # it also learns to call a field from a few cells (a higher magnification's view, a sparse smear). 0: every field whole
    pool_subsample: float = 0.0
    # "reinhard": each field's leukocytes moved to one reference stain before cropping, so a session's stain cannot carry the class
    stain: Literal["as imaged", "reinhard"] = "as imaged"
    stain_target: list[float] | None = None  # LAB means, then standard deviations; None: the development fields' for the fit (STAIN_TARGETS)
    # which pixels the transfer is fitted on: all of the leukocytes', or their cores (cells.outline.cell_cores). Fitted on
    # all of them, an outline drawn 1 px tighter darkened their statistics by 9 L* units, and the transfer lightened the
    # whole cell; the cores' statistics move by less than 0.5, but the pale rim is then left to the camera's colours
    # (BENCHMARKS.md, "Where the detector draws the outline")
    # or, with suppress=disc, on the discs the crops show, which the outline does not move at all
    stain_fit: Literal["cells", "cores", "discs"] = "cells"
    # the most field pixels a crop's side keeps (None: all): an image at a finer pixel size than the training fields
    # (another lab's oil objective or camera) is averaged down to it, so its cells carry no detail training never showed;
    # set below most cells' crop sides, it gives crops of large and small cells one sharpness, so sharpness cannot stand for size
    source_px: int | None = None
    # each training field also cut this many times from a random other acquisition of it (data/shifts.py), detection included
    acquisition_copies: int = 0
    # training crops also cut along moved outlines: each cell's outline drawn in or out by up to this many px (at a
    # 224 px development field's pixel size), in `outline_copies` cuts of every training field; each training step
    # draws one of a cell's cuts. The detector's outline moves by a pixel or so with the camera, the stain or a
    # recompression, and a model that saw one outline per cell read its position as the cell's size (0: off;
    # measured in BENCHMARKS.md, "Where the detector draws the outline")
    outline_jitter: float = 0.0
    outline_copies: int = 2
    # what the moved outlines of those copies set: where each cell is cut and which pixels the stain transfer is
    # fitted on ("cut and stain fit"); where it is cut alone, the transfer fitted on the detected outlines ("cut");
    # or both, each along its own independent draw ("cut and stain fit apart")
    outline_jitter_moves: Literal["cut and stain fit", "cut", "cut and stain fit apart"] = "cut and stain fit"
    # where the detector draws each nucleus' outline: at half its own peak of the stain score, which is pure chroma and
    # which a JPEG recompression softens (JPEG 30 drew the outlines 0.5 px in), or of the score guided by the field's
    # lightness, which keeps its edges (cells/guided_outline.py; BENCHMARKS.md, issue 17, eighteenth session)
    outline: Literal["stain score", "lightness guided"] = "stain score"
    # a nucleus whose median stain score is below this share of the field's most stained nucleus is dropped (red cells
    # under a purple cast). At 0.6 it also dropped pale blasts beside a small dark lymphocyte; cells.yaml takes 0.5. The
    # default stays 0.6, the cut of every bundle trained before the key, so they find the cells they were trained on
    # (BENCHMARKS.md, issue 17, "Pale blasts beside a dark lymphocyte")
    min_relative_stain: float = 0.6
    # the crops cut from the field as imaged, or from the field brought into the development fields' colour range
    # (`cells/colour_range.py`: a dim red or blue lamp channel raised, a nuclear hue below the range turned up to its
    # edge) where the detector already finds its cells: a camera's hue turn then reaches the model as the part the
    # range leaves, not whole. Fields inside the range are cut as before
    crop_in_colour_range: bool = False


@dataclass
class EvalConfig:
    target_error: float = 0.02  # abstain threshold chosen on validation for this error rate
    # which call the error is counted on: the class, or benign vs malignant (the subtype is then shown, not vouched for)
    abstain_on: Literal["class", "malignancy"] = "class"
    # what is held to target_error: the validation error's estimate, or its Wilson 95 % upper bound (a promise that holds)
    abstain_bound: Literal["estimate", "upper"] = "estimate"
    # how probabilities become a call: the most probable class, or benign vs malignant first (scoring/calls.py)
    call: Literal["argmax", "benign_first"] = "argmax"
    # a cell-level field's call needs at least this many leukocytes; a field with fewer abstains ("too few
    # leukocytes to call"): a smear of a leukemic patient also holds normal cells, and two or three of them
    # in view carry the slide's label but no blast to see (0: no minimum)
    min_leukocytes: int = 0
    # a cell-level field whose cells hold less fine detail (cells/focus.py) than this quantile of the training
    # fields' abstains, out of focus: a blur of 2 px took 20 points of the recipe's 4-class accuracy and
    # turned benign fields malignant (BENCHMARKS.md, issue 17, "A field too blurred to call") (0: not checked)
    focus_quantile: float = 0.005
    # an ensemble's field whose members do not all make the call abstention vouches for (benign vs malignant,
    # or the class) goes to review: the four seeds of cells.yaml disagreed on 11 of their 16 wrong test calls
    # (BENCHMARKS.md, issue 17, "Four seeds as one bundle"); a single model has no members to disagree
    flag_disagreement: bool = True
    target_sensitivity: float = 0.99  # the screening cut on p(Benign) is chosen on validation for this malignant sensitivity
    # held on new fields (a conformal cut: the validation's reached cut fell short on half of 2,000 redraws of the
    # development fields), or reached on the validation fields themselves (scoring/screening.py; BENCHMARKS.md,
    # issue 17, "A screening cut that holds on new fields")
    screening_cut: Literal["conformal", "reached"] = "conformal"
    bootstrap: int = 1000
    # each unit read as the mean of its 8 flips and rotations: in finalize's fits (the pool, the OOD statistics, the
    # temperatures, the thresholds) and, recorded in the bundle, by predict unless told --no-tta
    tta: bool = False


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cells: CellsConfig = field(default_factory=CellsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _check_type(value: Any, tp: Any, key: str) -> Any:
    """Validate (and gently coerce int->float) a value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _check_type(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, typing.get_args(tp)))}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)
        return [_check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp in (int, str, bool):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")


def _type_name(tp: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(tp)) or str(tp)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_type(value, tp, f"{prefix}{name}")
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    return _build(Config, data or {}, "")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings; values are parsed as YAML (numbers, lists, null...)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    data: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            builtin = Path(__file__).parent / "configs" / f"{path.stem}.yaml"
            if not builtin.is_file():
                raise ConfigError(f"{path}: config file not found")
            path = builtin
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data)


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
