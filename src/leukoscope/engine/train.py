"""`leukoscope train`: fit with Lightning, then calibrate, score and write the bundle from the best checkpoint."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, StochasticWeightAveraging, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only

from leukoscope.config import BENIGN_CLASS, Config, stable_hash
from leukoscope.errors import ConfigError
from leukoscope.scoring.bundle import write_bundle
from leukoscope.engine.data import SmearDataModule, crops_with_fill
from leukoscope.engine.finetune import pool_for_fine_tune, start_from_bundle
from leukoscope.engine.module import ClassifierModule
from leukoscope.engine.precision import AUTO, Precision, on_cuda, training_precision
from leukoscope.scoring.calibration import calibration_errors, fit_temperature, softmax
from leukoscope.scoring.focus import FocusFloor
from leukoscope.scoring.metrics import classification_metrics
from leukoscope.scoring.ood import ImageStatsOOD, MahalanobisOOD, abstain_threshold, too_few_to_vouch
from leukoscope.scoring.screening import screening_threshold, too_few_to_screen
from leukoscope.scoring.predictions import DISAGREE, min_leukocytes_problem, score_units
from leukoscope.scoring.runner import run_model
from leukoscope.io_utils import atomic_write, report_left_out, write_json
from leukoscope.losses import MalignantCellDrop, build_loss
from leukoscope.preprocess.augment import set_blur_strength
from leukoscope.preprocess.cache import default_cache_dir
from leukoscope.progress import on_terminal
from leukoscope.models import create_model
from leukoscope.models.mil import PoolEnsemble


# Lightning advertises a cloud logging service at every start; not a message for a lab's console
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: not record.getMessage().startswith("💡 Tip"))
# Lightning 2.6 still tests isinstance(x, LeafSpec), which torch 2.14 deprecates; nothing a user can act on
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)


class EpochLines(L.Callback):
    """One line per epoch for logs (stderr not a terminal), in place of the redrawn progress bar, with the time
    the epochs left will take at the median pace of those after the first (which starts the loader workers)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        shown = ("train_loss_epoch", "val_loss", "val_acc", "val_f1")
        metrics = trainer.callback_metrics
        values = ", ".join(f"{k.removesuffix('_epoch')} {float(metrics[k]):.4f}" for k in shown if k in metrics)
        self.seconds.append(time.perf_counter() - self._start)
        left = trainer.max_epochs - (trainer.current_epoch + 1)
        pace = float(np.median(self.seconds[1:] or self.seconds))
        eta = f"; about {left * pace / 60:.1f} min of epochs left" if left > 0 else ""
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {values} ({self.seconds[-1]:.1f} s{eta})", file=sys.stderr, flush=True)


class BlurWarmup(L.Callback):
    """The training crops' blur comes in linearly over the first `epochs` epochs (none in the first).

    With blurred crops from the first step, two of four seeds never left their starting loss; the
    first epochs now see sharp crops (a slow start can still happen: BENCHMARKS.md, issue 17).
    """

    def __init__(self, epochs: int, probability: float) -> None:
        self.epochs, self.probability = epochs, probability

    def _set(self, trainer: L.Trainer, epoch: int) -> float:
        fraction = min(1.0, epoch / self.epochs)
        set_blur_strength(trainer.datamodule.datasets["train"].transform, fraction)
        return fraction

    # Lightning starts the training loader's workers for a run's first epoch as it sets up the optimiser (the
    # schedule counts the batches), before any epoch hook, and the next epochs' after on_train_epoch_start:
    # the first epoch's strength is set at setup, or as a checkpoint resumes, so no crop is drawn at another's.
    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._set(trainer, 0)

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._set(trainer, checkpoint["epoch"] + 1)  # the run's checkpoints are saved as an epoch ends

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        fraction = self._set(trainer, trainer.current_epoch)
        module.log("blur_probability", self.probability * fraction, on_step=False, on_epoch=True)


class MalignantCellDropRamp(L.Callback):
    """Tells the loss the epoch, so that the share of malignant-labelled crops it leaves out rises as configured."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        module.loss.set_epoch(trainer.current_epoch)
        module.log("malignant_cell_drop", module.loss.drop_now, on_step=False, on_epoch=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint beside its target and rename it into place, so a kill never leaves half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def compute_threads(cfg: Config) -> int | None:
    """The threads for the model's arithmetic: `train.num_threads`, or on a CPU run with data workers the cores
    they leave (None: torch's default). On 2 cores the model step ran no faster on two threads than on one, and a
    worker beside two threads slowed both (BENCHMARKS.md, issue 17, thirty-third session)."""
    if cfg.train.num_threads:
        return cfg.train.num_threads
    if cfg.data.num_workers and not on_cuda(cfg.train.accelerator):
        return max(1, len(os.sched_getaffinity(0)) - cfg.data.num_workers)
    return None


def record_run(out: Path, cfg: Config, dm: SmearDataModule, started_from: dict[str, str] | None = None, precision: Precision | None = None) -> dict[str, Any]:
    data_info = {
        "root": str(dm.root.resolve()),
        "variant": cfg.data.variant,
        "fingerprint": dm.manifest.fingerprint,
        "classes": dm.classes,
        "counts": dm.split_counts(),
        "left_out": dm.failures + dm.manifest.bad_files,
    }
    if dm.review is not None:
        data_info["cell_labels"] = dm.review
    if started_from is not None:
        data_info["init_from"] = started_from
    with atomic_write(out / "config.yaml") as fh:
        fh.write(cfg.to_yaml())
    write_json(out / "splits.json", dm.splits)
    write_json(out / "data.json", data_info)
    environment = {
        "git_commit": git_commit(), "torch": torch.__version__, "lightning": L.__version__, "python": platform.python_version(), "host": platform.node(),
        "compute_threads": torch.get_num_threads(), "data_workers": cfg.data.num_workers,
    }  # fmt: skip
    if precision is not None:  # what `train.precision: auto` chose on this machine
        environment["precision"] = asdict(precision)
    write_json(out / "environment.json", environment)
    return data_info


def build_trainer(cfg: Config, out: Path, has_val: bool, train_batches: int | None = None) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Lightning trainer of a run; `train_batches` per epoch caps the logging interval (small data)."""
    t = cfg.train
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints", filename="best", monitor="val_f1" if has_val else None, mode="max", save_top_k=1, enable_version_counter=False
    )
    # Lightning's save_last only follows new bests; resuming needs the latest epoch, every epoch
    latest = ModelCheckpoint(dirpath=out / "checkpoints", filename="last", monitor=None, save_top_k=1, every_n_epochs=1, enable_version_counter=False)
    progress = TQDMProgressBar(refresh_rate=5) if on_terminal() else EpochLines()
    callbacks: list[L.Callback] = [checkpoint, latest, LearningRateMonitor(logging_interval="epoch"), progress]
    if cfg.augment.blur_warmup_epochs:
        callbacks.append(BlurWarmup(cfg.augment.blur_warmup_epochs, cfg.augment.blur))
    if cfg.loss.malignant_cell_drop:
        callbacks.append(MalignantCellDropRamp())
    if t.swa_start is not None:
        callbacks.append(StochasticWeightAveraging(swa_lrs=t.swa_lr, swa_epoch_start=t.swa_start))
    if t.early_stopping_patience and has_val:
        callbacks.append(EarlyStopping(monitor="val_f1", mode="max", patience=t.early_stopping_patience))
    loggers: list[Any] = [CSVLogger(out, name="logs", version="")]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="tensorboard", version=""))
    except (ImportError, ModuleNotFoundError):
        pass
    trainer = L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        deterministic=t.deterministic,
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=max(1, min(t.log_every_n_steps, train_batches or t.log_every_n_steps)),
        limit_train_batches=t.limit_train_batches,
        default_root_dir=out,
        plugins=[AtomicCheckpointIO()],
        enable_model_summary=False,
        enable_progress_bar=on_terminal(),
        num_sanity_val_steps=0,
    )
    return trainer, checkpoint


def check_targets(cfg: Config) -> None:
    """Refuse, before any work, targets that no validation split could meet."""
    if not 0 < cfg.eval.target_sensitivity <= 1:
        raise ConfigError(f"eval.target_sensitivity={cfg.eval.target_sensitivity}: a sensitivity lies in (0, 1]")
    if not 0 <= cfg.eval.target_error < 1:
        raise ConfigError(f"eval.target_error={cfg.eval.target_error}: an error rate lies in [0, 1)")
    if cfg.augment.blur_warmup_epochs < 0 or (cfg.augment.blur_warmup_epochs and not cfg.augment.blur):
        raise ConfigError(f"augment.blur_warmup_epochs={cfg.augment.blur_warmup_epochs}: a number of epochs >= 0, and it needs augment.blur > 0")
    if cfg.train.consistency < 0:
        raise ConfigError(f"train.consistency={cfg.train.consistency}: a weight is 0 or more")
    if cfg.cells.acquisition_copies < 0:
        raise ConfigError(f"cells.acquisition_copies={cfg.cells.acquisition_copies}: a number of copies is 0 or more")
    if cfg.cells.outline_jitter < 0 or (cfg.cells.outline_jitter and cfg.cells.outline_copies < 1):
        raise ConfigError(
            f"cells.outline_jitter={cfg.cells.outline_jitter}, cells.outline_copies={cfg.cells.outline_copies}: "
            "a distance in px >= 0, and at least one copy to cut along it"
        )
    if not 0 <= cfg.cells.min_relative_stain <= 1:
        raise ConfigError(f"cells.min_relative_stain={cfg.cells.min_relative_stain}: a share of the field's most stained nucleus lies in [0, 1]")
    if not 0 <= cfg.cells.pool_subsample <= 1:
        raise ConfigError(f"cells.pool_subsample={cfg.cells.pool_subsample}: a share of the training fields lies in [0, 1]")
    if cfg.cells.outline_jitter and cfg.data.expand_per_class:
        raise ConfigError("cells.outline_jitter with data.expand_per_class: the expanded copies are augmented already; set one of them")
    if cfg.cells.stain_fit == "discs" and cfg.cells.suppress != "disc":
        raise ConfigError(f"cells.stain_fit=discs fits the stain transfer on what disc crops show; it needs cells.suppress=disc, not {cfg.cells.suppress}")
    if not 0 <= cfg.loss.malignant_cell_drop < 1 or cfg.loss.malignant_cell_drop_epochs < 0:
        raise ConfigError(
            f"loss.malignant_cell_drop={cfg.loss.malignant_cell_drop}, loss.malignant_cell_drop_epochs={cfg.loss.malignant_cell_drop_epochs}: "
            "a share in [0, 1) and a number of epochs >= 0"
        )
    if problem := min_leukocytes_problem(cfg.eval.min_leukocytes, cfg.cells.enabled):
        raise ConfigError(f"eval.min_leukocytes={cfg.eval.min_leukocytes}: {problem}")
    if not 0 <= cfg.eval.focus_quantile < 1:
        raise ConfigError(f"eval.focus_quantile={cfg.eval.focus_quantile}: a quantile lies in [0, 1), 0 to check no focus")
    if cfg.augment.frame_cut and not crops_with_fill(cfg):
        raise ConfigError(f"augment.frame_cut={cfg.augment.frame_cut}: a cell is cut against the constant around it; it needs cells.enabled and cells.suppress=constant or disc")
    keep = cfg.augment.frame_cut_keep
    if len(keep) != 2 or not 0 < keep[0] <= keep[1] <= 1:
        raise ConfigError(f"augment.frame_cut_keep={cfg.augment.frame_cut_keep}: the share of a cut cell kept, low to high, in (0, 1]")


def train(cfg: Config, out_dir: str | Path, resume: bool = False) -> Path | None:
    """Train one run into out_dir; returns the bundle folder (None on non-zero DDP ranks)."""
    check_targets(cfg)
    precision = training_precision(cfg.train.precision, cfg.train.accelerator)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    default_threads = torch.get_num_threads()
    if threads := compute_threads(cfg):
        torch.set_num_threads(threads)
    started = time.perf_counter()
    dm = SmearDataModule(cfg)
    dm.setup()
    model = create_model(cfg.model.name, len(dm.classes), weights=cfg.model.weights, freeze_blocks=cfg.model.freeze_blocks, **cfg.model.kwargs)
    started_from = start_from_bundle(model, cfg, dm.classes) if cfg.train.init_from else None
    data_info = record_run(out, cfg, dm, started_from, precision)
    if rank_zero_only.rank == 0:
        if precision.asked == AUTO:
            print(f"train.precision auto: {precision.used} ({precision.why})")
        report_left_out(data_info["left_out"], dm.splits.get("warnings", []), shown=5, listed_in=out / "data.json")
    benign_index = dm.classes.index(BENIGN_CLASS) if BENIGN_CLASS in dm.classes else None
    if cfg.eval.call == "benign_first" and benign_index is None:
        raise ConfigError(f"eval.call=benign_first needs a {BENIGN_CLASS} class, the data has {', '.join(dm.classes)}")
    loss = build_loss(cfg.loss, dm.train_counts, dm.classes)
    if cfg.loss.malignant_cell_drop:
        if benign_index is None:
            raise ConfigError(f"loss.malignant_cell_drop needs a {BENIGN_CLASS} class, the data has {', '.join(dm.classes)}")
        loss = MalignantCellDrop(loss, benign_index, cfg.loss.malignant_cell_drop, cfg.loss.malignant_cell_drop_epochs)
    module = ClassifierModule(model, loss, cfg.train, len(dm.classes), benign_index, cfg.eval.call)
    has_val = len(dm.datasets["val"]) > 0
    trainer, checkpoint = build_trainer(replace(cfg, train=replace(cfg.train, precision=precision.used)), out, has_val, len(dm.train_dataloader()))
    last = out / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if resume and last.is_file() else None
    if resume and ckpt_path is None:
        print(f"no checkpoint at {last}: starting from scratch")
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    if threads and not cfg.train.num_threads:
        torch.set_num_threads(default_threads)  # the scoring below has the cores the data workers had
    if not trainer.is_global_zero:
        return None
    if cfg.train.swa_start is not None:
        best = last  # the averaged weights exist only at the end of training
    else:
        best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    fit_seconds = time.perf_counter() - started
    # scored where it trained: a GPU run's thousands of calibration and OOD forward passes would take minutes on the host
    device = trainer.strategy.root_device if trainer.strategy.root_device.type == "cuda" else torch.device("cpu")
    training = {"checkpoint": best.name, "seconds": round(fit_seconds, 1), "precision": precision.used}
    bundle_dir = finalize(cfg, module.model.to(device).to(memory_format=torch.contiguous_format), dm, out, data_info, training)
    return bundle_dir


def _by_field(paths: list[str]) -> dict[str, list[int]]:
    """The indices of each source field's items (its crops, or its expansion copies), fields in first-seen order."""
    order: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        order.setdefault(p, []).append(i)
    return order


def _bags(feats: np.ndarray, labels: np.ndarray, paths: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Cell features grouped by field, and each field's label (its cells' most common one)."""
    groups = _by_field(paths).values()
    return [feats[idx] for idx in groups], np.array([np.bincount(np.asarray(labels)[idx]).argmax() for idx in groups])


def _grouped_units(ds) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Dataset items grouped by source image: one unit per field, or the crops of each field."""
    order = _by_field(ds.paths)
    return list(order), [ds.images[idx] for idx in order.values()], np.array([ds.labels[idx[0]] for idx in order.values()])


def training_pixel_scale(field_paths: list[str], max_pixels: int, digests: dict[str, str], cache_dir: str | Path | None = None) -> dict[str, Any] | None:
    """What a pixel scale refers to: the training fields' red-cell diameter and field scale (cells.ruler), so
    that `predict --pixel-size` can bring another microscope's images to the pixel size the model learnt from.

    Kept in the cache folder under the fields' paths and contents (`digests`: path -> sha256) and the ruler:
    the measurement took 10 s of each run's last two minutes on 2 cores."""
    from leukoscope.cells.ruler import RULER, training_scale

    key = stable_hash({"ruler": RULER, "max_pixels": max_pixels, "fields": [[path, digests.get(path)] for path in sorted(set(field_paths))]})
    cached = Path(cache_dir or default_cache_dir()) / "training-scale" / f"{key}.json"
    try:
        return json.loads(cached.read_text())["scale"]
    except (OSError, ValueError, KeyError):  # not kept yet, or unreadable: measured again
        pass
    measured = training_scale(field_paths, max_pixels=max_pixels)
    scale = None if measured is None else {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(measured).items()}
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_json(cached, {"scale": scale})
    return scale


def focus_floor(cfg: Config, train_images: np.ndarray, train_paths: list[str]) -> FocusFloor | None:
    """The least fine detail a field's cells may hold to be called, from the training fields (cell-level runs only)."""
    if not cfg.cells.enabled or not cfg.eval.focus_quantile:
        return None
    from leukoscope.cells.cache import crop_config

    fields = [train_images[idx] for idx in _by_field(train_paths).values()]
    return FocusFloor.fit(fields, cfg.eval.focus_quantile, crop_config(cfg.cells).fill)


def finalize(
    cfg: Config, model: torch.nn.Module, dm: SmearDataModule, out: Path, data_info: dict, training: dict[str, Any], pool: PoolEnsemble | None = None
) -> Path:
    """Calibrate on validation, set OOD and abstention thresholds, score val and test per image, write the bundle.

    `training` says where the weights come from; `pool` is an ensemble's field pooling, whose members were
    fitted with their models (only its temperature is fitted here), in place of a new attention pool."""
    from leukoscope.scoring.bundle import load_bundle, update_bundle_meta

    mean, std = dm.pipeline.mean_std()
    bf16 = training.get("precision", cfg.train.precision).startswith("bf16")  # as it trained: `auto` resolved
    # the training items as imaged, without expansion or acquisition copies: what the OOD and attention fits describe
    train_images, train_labels, train_paths = dm.train_originals
    train_labels = np.asarray(train_labels)
    # every feature seen as the bundle will predict (eval.tta): the pool fitted on one view and run on the mean of
    # eight called more malignant fields Benign (BENCHMARKS.md, issue 17, "Each cell read in eight orientations")
    _, train_feats = run_model(model, train_images, mean, std, features=True, bf16=bf16, tta=cfg.eval.tta)
    val = dm.datasets["val"]
    val_logits, val_feats = run_model(model, val.images, mean, std, features=True, bf16=bf16, tta=cfg.eval.tta)
    val_labels = np.asarray(val.labels)
    has_val = len(val_labels) > 0
    temperature = fit_temperature(val_logits, val_labels) if has_val else 1.0
    calib = {"temperature": temperature}
    if has_val:
        calib["val_ece_before"] = calibration_errors(softmax(val_logits), val_labels)[0]
        calib["val_ece_after"] = calibration_errors(softmax(val_logits, temperature), val_labels)[0]
    ood = MahalanobisOOD.fit(train_feats.astype(np.float64), train_labels)
    ood.calibrate(val_feats if len(val_labels) >= 20 else np.concatenate([train_feats, val_feats]))
    extra = {
        "data": {k: data_info[k] for k in ("root", "variant", "fingerprint", "counts", "cell_labels", "init_from") if k in data_info},
        "calibration": calib,
        "training": {**training, "git_commit": git_commit()},
    }
    if cfg.cells.enabled:
        digests = {row.path: row.sha256 for row in dm.manifest.rows}
        extra["pixel_scale"] = dm.crop_scale.record() or training_pixel_scale(train_paths, cfg.preprocess.max_pixels, digests, cfg.data.cache_dir)
    image_ood = ImageStatsOOD.fit(train_images)
    mil, mil_temperature = None, 1.0
    if pool is not None or (cfg.cells.enabled and cfg.cells.aggregate == "attention"):
        from leukoscope.engine.mil import fit_attention_pool
        from leukoscope.models.mil import pool_bags

        val_bags, val_bag_labels = _bags(val_feats, val_labels, val.paths)
        if pool is not None:
            mil = pool
        else:
            bags, bag_labels = _bags(train_feats, train_labels, train_paths)
            # the pool learns the fields' calls by the cell classifier's own objective where that weighs benign vs malignant apart
            pool_loss = build_loss(cfg.loss, np.bincount(bag_labels, minlength=len(dm.classes)).tolist(), dm.classes) if (cfg.loss.malignancy_weight or cfg.loss.subtype_weight) else None
            fitted = fit_attention_pool(bags, bag_labels, len(dm.classes), seed=cfg.train.seed, loss_fn=pool_loss, subsample=cfg.cells.pool_subsample)
            mil, choice = pool_for_fine_tune(cfg, fitted, val_bags, val_bag_labels)
            if choice:
                calib["attention_pool"] = choice
                why = choice.get("why") or "validation log-loss " + ", ".join(f"{k} {v:.3f}" for k, v in choice["validation_log_loss"].items())
                print(f"attention pool: {choice['chosen']} ({why})")
        if has_val:
            mil_temperature = fit_temperature(pool_bags(mil, val_bags)[0], val_bag_labels)
        calib["attention_pool_temperature"] = mil_temperature
    folder = write_bundle(
        out / "bundle", model, dm.classes, cfg.to_dict(), temperature=temperature, ood=ood, image_ood=image_ood, mil=mil, mil_temperature=mil_temperature, extra=extra
    )

    bundle = load_bundle(folder, device=str(next(model.parameters()).device))
    bundle.abstain_on = cfg.eval.abstain_on  # what the threshold chosen below will vouch for
    bundle.focus = focus_floor(cfg, train_images, train_paths)
    bundle.call_rule = cfg.eval.call
    bundle.flag_disagreement = cfg.eval.flag_disagreement and isinstance(mil, PoolEnsemble)
    benign = dm.classes.index(BENIGN_CLASS) if BENIGN_CLASS in dm.classes else -1
    disagreement: dict[str, Any] = {"flag": True}  # with, once validation is scored, how often the members split there

    def logits_and_features(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return run_model(bundle.model, images, bundle.mean, bundle.std, features=True, tta=cfg.eval.tta)

    metrics: dict[str, Any] = {}
    screening = None  # chosen on validation, then applied to it and to the test split alike
    accepted: dict[str, int] = {}  # the validation fields the abstain threshold accepts, and its errors among them
    for split in ("val", "test"):
        ds = dm.datasets[split]
        if not len(ds):
            continue
        _, units, labels = _grouped_units(ds)
        pred = score_units(bundle, units, logits_and_features)
        if split == "val":
            correct = bundle.call_correct(pred.labels, labels)
            confidence = bundle.call_confidence(pred.probs)
            threshold = abstain_threshold(confidence, correct, cfg.eval.target_error, bound=cfg.eval.abstain_bound)
            kept = confidence >= threshold
            accepted = {"validation_accepted": int(kept.sum()), "validation_errors": int((~correct[kept].astype(bool)).sum())}
            if warning := too_few_to_vouch(accepted["validation_accepted"], cfg.eval.target_error):
                print(f"warning: {warning}", file=sys.stderr)
            if bundle.flag_disagreement:
                split_fields = np.array([DISAGREE in why for why in pred.abstain_reasons])
                disagreement["validation_share"] = float(split_fields.mean())
                disagreement["validation_error_agreed"] = float(1 - correct[~split_fields].mean()) if (~split_fields).any() else None
            if benign >= 0:
                target, n_malignant = cfg.eval.target_sensitivity, int((labels != benign).sum())
                rule = cfg.eval.screening_cut
                cut = screening_threshold(pred.probs[:, benign], labels != benign, target, rule)
                screening = None if cut is None else {"target_sensitivity": target, "p_benign_below": cut, "validation_malignant": n_malignant, "rule": rule}
                if cut is not None and (warning := too_few_to_screen(n_malignant, target, rule)):
                    print(f"warning: {warning}", file=sys.stderr)
        cut = screening["p_benign_below"] if screening else None
        metrics[split] = classification_metrics(labels, pred.probs, dm.classes, cfg.eval.bootstrap, seed=cfg.data.seed, screen_threshold=cut, call_rule=cfg.eval.call)
        if cfg.cells.enabled:
            cell_labels = np.repeat(labels, pred.units)
            metrics[split]["cell_level"] = classification_metrics(cell_labels, pred.unit_probs, dm.classes, 200, seed=cfg.data.seed, call_rule=cfg.eval.call)
    abstain = {
        "threshold": threshold if has_val else 0.5, "on": cfg.eval.abstain_on, "target_error": cfg.eval.target_error, "bound": cfg.eval.abstain_bound, **accepted,
        "min_leukocytes": cfg.eval.min_leukocytes, **({"focus": bundle.focus.to_json()} if bundle.focus else {}),
        **({"disagreement": disagreement} if bundle.flag_disagreement else {}),
    }  # fmt: skip
    update_bundle_meta(folder, metrics=metrics, call={"rule": cfg.eval.call}, abstain=abstain, screening=screening)
    write_json(out / "metrics.json", metrics)
    if "val" in metrics and (warning := chance_warning(metrics["val"], len(dm.classes))):
        print(f"warning: {warning} ({out / 'metrics.json'})", file=sys.stderr)
    return folder


def chance_warning(val_metrics: dict[str, Any], n_classes: int) -> str | None:
    """Why a finished run may not have learnt: its validation accuracy cannot be told from chance.
    Some seeds of a hard recipe never leave their starting loss; their bundle would still load and predict."""
    low, high = val_metrics["accuracy_ci"]
    if low > 1 / n_classes:
        return None
    return (
        f"validation accuracy {100 * val_metrics['accuracy']:.1f} % (95 % CI {100 * low:.1f}-{100 * high:.1f}) cannot be told from "
        f"{100 / n_classes:.0f} % by chance: the model may not have learnt; train again with another train.seed or a lower train.lr"
    )
