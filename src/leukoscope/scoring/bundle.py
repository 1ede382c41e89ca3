"""The model bundle: weights (safetensors) + bundle.json, the contract between training and inference.

Everything inference needs is in the folder: architecture and arguments, class names, the exact
preprocessing, normalisation, calibration temperature, abstention and out-of-distribution
statistics, the training data fingerprint and metrics. Loading never unpickles anything.
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from leukoscope import __version__
from leukoscope.cells.ruler import DEVELOPMENT_RED_CELL_PX, RULER
from leukoscope.config import BENIGN_CLASS, PreprocessConfig, config_from_dict
from leukoscope.errors import LeukoscopeError
from leukoscope.io_utils import file_sha256
from leukoscope.models import create_model
from leukoscope.models.base import LeukoscopeModel
from leukoscope.models.mil import GatedAttentionPool, PoolEnsemble
from leukoscope.preprocess import Pipeline
from leukoscope.scoring.calls import call_classes
from leukoscope.scoring.focus import FocusFloor
from leukoscope.scoring.ood import ImageStatsOOD, MahalanobisOOD, abstain_confidence, abstain_correct

BUNDLE_FORMAT = "leukoscope-bundle/1"
INTENDED_USE = (
    "Research tool and second reader for acute lymphoblastic leukemia subtypes on peripheral blood smear images. "
    "Not a medical device and not a diagnosis: every result must be reviewed by a qualified hematologist."
)


class BundleError(LeukoscopeError):
    """A bundle folder that is missing, incomplete or from an unknown format."""


@dataclass
class Bundle:
    path: Path
    model: LeukoscopeModel
    classes: list[str]
    pipeline: Pipeline
    mean: tuple[float, ...]
    std: tuple[float, ...]
    temperature: float = 1.0
    abstain_threshold: float = 0.5
    abstain_on: str = "class"  # the call the threshold vouches for: the class, or "malignancy" (benign vs malignant)
    call_rule: str = "argmax"  # how probabilities become a call (scoring/calls.py)
    screening_threshold: float | None = None  # a field screens malignant below this p(Benign) (None: the plain call)
    min_leukocytes: int = 0  # a cell-level field with fewer leukocytes abstains: too few to call (0: no minimum)
    ood: MahalanobisOOD | None = None
    image_ood: ImageStatsOOD | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    mil: GatedAttentionPool | PoolEnsemble | None = None  # attention pooling of a cell-level model's cells (None: mean of log-probabilities)
    mil_temperature: float = 1.0
    focus: FocusFloor | None = None  # a cell-level field with less fine detail abstains: out of focus (None: not checked)
    flag_disagreement: bool = False  # an ensemble's field whose members' calls differ abstains (models/ensemble.py)
    tta: bool = False  # its thresholds were set on the mean over 8 flips and rotations (eval.tta): predict so by default

    @property
    def input_size(self) -> int:
        return self.pipeline.config.size

    @property
    def benign_index(self) -> int | None:
        return self.classes.index(BENIGN_CLASS) if BENIGN_CLASS in self.classes else None

    @property
    def _vouched_benign(self) -> int | None:
        """Benign's index when abstention vouches for benign vs malignant, else None (it vouches for the class)."""
        return self.benign_index if self.abstain_on == "malignancy" else None

    def calls(self, probs: np.ndarray) -> np.ndarray:
        """The called class of each row of probabilities, by the bundle's call rule."""
        return call_classes(probs, self.benign_index, self.call_rule)

    def call_confidence(self, probs: np.ndarray) -> np.ndarray:
        """Each row's confidence in the call that abstention vouches for (below the threshold: abstain)."""
        return abstain_confidence(probs, self.calls(probs), self._vouched_benign)

    def call_correct(self, called: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Whether each plain call is right on what abstention vouches for."""
        return abstain_correct(called, truth, self._vouched_benign)

    def vouched_calls(self, called: np.ndarray) -> np.ndarray:
        """What abstention vouches for in each call: benign or not, or the class itself."""
        return called == self.benign_index if self._vouched_benign is not None else called

    @property
    def cell_level(self) -> bool:
        """Whether the model classifies leukocyte crops (cells.enabled), not whole fields."""
        return bool(self.meta.get("config", {}).get("cells", {}).get("enabled"))

    @property
    def training_red_cell_px(self) -> float:
        """The training fields' red-cell diameter (in pixels of a 224 px field) that pixel scales refer to.
        A bundle that does not record it, or recorded it with another ruler than today's, is taken to have
        been trained on the development fields."""
        recorded = self.meta.get("pixel_scale") or {}
        return float(recorded["red_cell_px"]) if recorded.get("red_cell_px") and recorded.get("ruler") == RULER else DEVELOPMENT_RED_CELL_PX

    @property
    def training_field_scale(self) -> float:
        """The pixel scale its training fields' cells were found and cut at (1 for the 224 px development fields)."""
        recorded = (self.meta.get("pixel_scale") or {}).get("field_scale")
        return float(recorded) if recorded else 1.0

    @functools.cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of model.safetensors: names exactly which trained weights gave a result."""
        return file_sha256(self.path / "model.safetensors")

    def card(self) -> dict[str, Any]:
        """What a user may know about the model: classes, metrics, intended use, data, limitations."""
        keys = ("model", "classes", "input_size", "metrics", "data", "pixel_scale", "calibration", "call", "abstain", "screening", "intended_use", "limitations", "created", "leukoscope_version")
        return {k: self.meta.get(k) for k in keys if k in self.meta}


def write_bundle(
    folder: str | Path,
    model: LeukoscopeModel,
    classes: list[str],
    config: dict[str, Any],
    *,
    temperature: float = 1.0,
    abstain_threshold: float = 0.5,
    ood: MahalanobisOOD | None = None,
    image_ood: ImageStatsOOD | None = None,
    mil: GatedAttentionPool | PoolEnsemble | None = None,
    mil_temperature: float = 1.0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the bundle into a temporary folder, then move it into place: never half-written."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    if ood is not None:
        save_file({"means": torch.from_numpy(ood.means), "precision": torch.from_numpy(ood.precision)}, str(tmp / "ood.safetensors"))
    if mil is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in mil.state_dict().items()}, str(tmp / "mil.safetensors"))
    pre = config["preprocess"]
    meta = {
        "format": BUNDLE_FORMAT,
        "leukoscope_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": model.model_name, "kwargs": model.model_args, "num_classes": len(classes), "parameters": model.num_parameters()},
        "classes": list(classes),
        "input_size": pre["size"],
        "preprocess": pre,
        "normalization": dict(zip(("mean", "std"), Pipeline(PreprocessConfig(**pre)).mean_std())),
        "calibration": {"temperature": temperature},
        "abstain": {"threshold": abstain_threshold},
        "ood": None if ood is None else {"method": "mahalanobis", "threshold": ood.threshold, "file": "ood.safetensors"},
        "image_ood": None if image_ood is None else image_ood.to_json(),
        "aggregate": _aggregate_meta(mil, mil_temperature),
        "intended_use": INTENDED_USE,
        "limitations": [
            "Trained on one centre's images (Taleqani Hospital, Tehran) or on synthetic data: behaviour on other laboratories, "
            "stains, microscopes and cameras is unknown.",
            "No patient identifiers in the source data: near-duplicate grouping is the best available guard against leakage.",
            "Whole-field models can learn the background (focus, illumination, stain) instead of the cells; see the shortcut checks.",
            "The out-of-distribution flag catches blank, noise, grey, inverted, under-exposed and strongly re-coloured images, "
            "but not reliably a mildly different stain hue or moderate blur: validate on your own slides before use. "
            "A cell-level bundle with a focus floor also sends fields whose cells hold too little fine detail to review.",
        ],
        "config": config,
        **(extra or {}),
    }
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(folder)
    return folder


def _aggregate_meta(mil: GatedAttentionPool | PoolEnsemble | None, temperature: float) -> dict[str, Any]:
    if mil is None:
        return {"method": "mean_log_prob"}
    if isinstance(mil, PoolEnsemble):
        members = [{"in_features": p.in_features, "hidden": p.hidden, "temperature": t} for p, t in zip(mil.pools, mil.temperatures)]
        return {"method": "gated_attention_ensemble", "file": "mil.safetensors", "members": members, "temperature": temperature}
    return {"method": "gated_attention", "file": "mil.safetensors", "in_features": mil.in_features, "hidden": mil.hidden, "temperature": temperature}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    return str(obj)


def update_bundle_meta(folder: str | Path, **updates: Any) -> None:
    """Merge keys into bundle.json atomically (e.g. metrics added by a later evaluation)."""
    from leukoscope.io_utils import write_json

    path = Path(folder) / "bundle.json"
    meta = json.loads(path.read_text())
    meta.update(updates)
    write_json(path, meta)


def bundle_normalization(path: str | Path) -> tuple[list[float], list[float]]:
    """The per-channel mean and std a bundle's model was trained with."""
    meta_path = Path(path) / "bundle.json"
    try:
        norm = json.loads(meta_path.read_text())["normalization"]
    except (OSError, json.JSONDecodeError, KeyError):
        raise BundleError(f"{meta_path}: no readable normalization entry") from None
    return list(norm["mean"]), list(norm["std"])


def load_bundle(path: str | Path, device: str = "cpu") -> Bundle:
    """Rebuild the model and its whole pipeline from a bundle folder (or its bundle.json)."""
    folder = Path(path)
    if folder.is_file() and folder.name == "bundle.json":
        folder = folder.parent
    meta_path = folder / "bundle.json"
    if not meta_path.is_file():
        raise BundleError(f"{folder}: not a model bundle (no bundle.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{meta_path}: unreadable ({exc})") from None
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{meta_path}: unknown bundle format {meta.get('format')!r} (expected {BUNDLE_FORMAT})")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise BundleError(f"{folder}: model.safetensors is missing")
    try:
        spec, classes = meta["model"], list(meta["classes"])
        pre = config_from_dict({"preprocess": meta["preprocess"]}).preprocess
        norm, temperature, abstain = meta["normalization"], float(meta["calibration"]["temperature"]), float(meta["abstain"]["threshold"])
    except KeyError as exc:
        raise BundleError(f"{meta_path}: incomplete, no {exc} entry") from None
    if len(classes) != spec["num_classes"]:
        raise BundleError(f"{meta_path}: names {len(classes)} classes for a model with {spec['num_classes']} outputs")
    model = create_model(spec["name"], spec["num_classes"], **spec.get("kwargs", {}))
    try:
        model.load_state_dict(_read_tensors(weights))
    except RuntimeError as exc:
        raise BundleError(f"{weights}: weights do not fit {spec['name']} ({str(exc).splitlines()[0]})") from None
    model.to(device).eval()
    ood = None
    if meta.get("ood"):
        arrays = _read_tensors(folder / meta["ood"]["file"])
        ood = MahalanobisOOD(arrays["means"].numpy(), arrays["precision"].numpy(), float(meta["ood"]["threshold"]))
    mil, mil_temperature = None, 1.0
    aggregate = meta.get("aggregate") or {"method": "mean_log_prob"}
    if aggregate["method"] in ("gated_attention", "gated_attention_ensemble"):
        try:
            mil = _attention_pool(aggregate, len(classes))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{meta_path}: unreadable attention pooling entry ({exc!r})") from None
        try:
            mil.load_state_dict(_read_tensors(folder / aggregate["file"]))
        except RuntimeError as exc:
            raise BundleError(f"{folder / aggregate['file']}: weights do not fit the attention pooling ({str(exc).splitlines()[0]})") from None
        mil.eval()
        mil_temperature = float(aggregate.get("temperature", 1.0))
    try:
        image_ood = ImageStatsOOD.from_json(meta["image_ood"]) if meta.get("image_ood") else None
    except ValueError as exc:
        raise BundleError(f"{meta_path}: {exc}") from None
    try:
        focus = FocusFloor.from_json(meta["abstain"]["focus"]) if meta["abstain"].get("focus") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{meta_path}: unreadable focus floor ({exc!r})") from None
    return Bundle(
        path=folder,
        model=model,
        classes=classes,
        pipeline=Pipeline(pre),
        mean=tuple(norm["mean"]),
        std=tuple(norm["std"]),
        temperature=temperature,
        abstain_threshold=abstain,
        abstain_on=meta["abstain"].get("on", "class"),
        call_rule=(meta.get("call") or {}).get("rule", "argmax"),
        screening_threshold=(meta.get("screening") or {}).get("p_benign_below"),
        min_leukocytes=int(meta["abstain"].get("min_leukocytes", 0)),
        focus=focus,
        flag_disagreement=bool((meta["abstain"].get("disagreement") or {}).get("flag")) and isinstance(mil, PoolEnsemble),
        tta=bool(((meta.get("config") or {}).get("eval") or {}).get("tta", False)),
        ood=ood,
        image_ood=image_ood,
        meta=meta,
        mil=mil,
        mil_temperature=mil_temperature,
    )


def _attention_pool(aggregate: dict[str, Any], num_classes: int) -> GatedAttentionPool | PoolEnsemble:
    """The attention pooling a bundle.json describes, with untrained weights."""
    if aggregate["method"] == "gated_attention":
        return GatedAttentionPool(int(aggregate["in_features"]), num_classes, int(aggregate["hidden"]))
    members = aggregate["members"]
    pools = [GatedAttentionPool(int(m["in_features"]), num_classes, int(m["hidden"])) for m in members]
    return PoolEnsemble(pools, [float(m["temperature"]) for m in members])


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a damaged or missing file is a BundleError naming it."""
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for a damaged header
        raise BundleError(f"{path}: unreadable weights ({exc})") from None


def probabilities(bundle: Bundle, logits: np.ndarray) -> np.ndarray:
    from leukoscope.scoring.calibration import softmax

    return softmax(logits, bundle.temperature)
