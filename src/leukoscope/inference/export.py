"""Export a bundle to ONNX (dynamic batch) or TorchScript, checked for parity with PyTorch; ONNX runtime runner."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from leukoscope.errors import LeukoscopeError
from leukoscope.io_utils import refuse_folder
from leukoscope.scoring.bundle import Bundle
from leukoscope.scoring.calibration import softmax
from leukoscope.scoring.runner import orientations, run_model, to_input

PARITY_TOLERANCE = 1e-4  # max absolute difference of probabilities


class ExportError(LeukoscopeError):
    """An export that failed or does not reproduce PyTorch's outputs."""


class LogitsAndFeatures(nn.Module):
    """What inference needs from one pass: logits and the penultimate features (for the OOD score)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)
        return self.model.forward_head(features), self.model.forward_head(features, pre_logits=True)


def parity_images(bundle: Bundle, n: int = 8) -> np.ndarray:
    """Real preprocessed images for the parity check: from the training data when present, else synthetic fields."""
    root = Path(bundle.meta.get("data", {}).get("root", ""))
    files = sorted(root.rglob("*.jpg")) if root.is_dir() else []
    paths = files[:: max(1, len(files) // n)][:n]
    images = []
    for p in paths:
        try:
            images.append(bundle.pipeline.load(p))
        except LeukoscopeError:
            continue
    if len(images) < 2:
        from leukoscope.data.synth import SYNTH_CLASSES, synth_field

        images = [bundle.pipeline(synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng(i), size=224)[0]) for i in range(n)]
    return np.stack(images)


def export_bundle(bundle: Bundle, out: str | Path, fmt: str = "onnx", opset: int = 17) -> dict:
    """Export and verify; on a parity failure the file is removed and ExportError raised."""
    out = refuse_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = LogitsAndFeatures(bundle.model.eval().to(memory_format=torch.contiguous_format)).eval()
    size = bundle.input_size
    dummy = torch.zeros(2, 3, size, size)
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            torch.onnx.export(
                wrapper,
                (dummy,),
                str(tmp),
                input_names=["input"],
                output_names=["logits", "features"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        elif fmt == "torchscript":
            traced = torch.jit.trace(wrapper, dummy)
            traced.save(str(tmp))
        else:
            raise ExportError(f"unknown format {fmt!r}; choose onnx or torchscript")
    images = parity_images(bundle)
    ref_logits, _ = run_model(bundle.model, images, bundle.mean, bundle.std, features=False)
    x = to_input(images, bundle.mean, bundle.std, channels_last=False)
    if fmt == "onnx":
        logits = OnnxRunner(tmp, bundle.mean, bundle.std).run(images)[0]
    else:
        with torch.no_grad():
            logits = torch.jit.load(str(tmp))(x)[0].numpy()
    diff = float(np.abs(softmax(ref_logits, bundle.temperature) - softmax(logits, bundle.temperature)).max())
    if not diff <= PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{fmt} export differs from PyTorch: max |Δp| = {diff:.2e} > {PARITY_TOLERANCE:g} on {len(images)} images")
    tmp.replace(out)
    return {"format": fmt, "file": str(out), "parity_max_abs_prob_diff": diff, "parity_images": len(images)}


class OnnxRunner:
    """onnxruntime on preprocessed uint8 images, with the same normalisation as the bundle."""

    def __init__(self, path: str | Path, mean: tuple[float, ...], std: tuple[float, ...], batch_size: int = 32, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads  # 0: onnxruntime's default, every core
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path, self.mean, self.std, self.batch_size, self.threads = Path(path), mean, std, batch_size, threads
        self._narrow: dict[int, OnnxRunner] = {}

    def with_threads(self, threads: int) -> OnnxRunner:
        """A runner on the same model limited to `threads` cores (made once; run() is thread-safe)."""
        if threads == self.threads:
            return self
        if threads not in self._narrow:
            self._narrow[threads] = OnnxRunner(self.path, self.mean, self.std, self.batch_size, threads)
        return self._narrow[threads]

    @classmethod
    def for_bundle(cls, bundle: Bundle) -> OnnxRunner:
        """The bundle's model.onnx, exported (with its parity check) on first use.

        A bundle on a read-only share gets its export in the user's cache instead, named by the
        weights' hash so that another bundle never picks it up.
        """
        path = bundle.path / "model.onnx"
        if not path.is_file():
            try:
                export_bundle(bundle, path, "onnx")
            except PermissionError:
                from leukoscope.preprocess.cache import default_cache_dir

                path = default_cache_dir() / "onnx" / f"{bundle.weights_sha256[:16]}.onnx"
                if not path.is_file():
                    export_bundle(bundle, path, "onnx")
        return cls(path, bundle.mean, bundle.std)

    def run(self, images: np.ndarray, tta: bool = False) -> tuple[np.ndarray, np.ndarray]:
        logits_all, feats_all = [], []
        for start in range(0, len(images), self.batch_size):
            x = to_input(images[start : start + self.batch_size], self.mean, self.std, channels_last=False)
            views = orientations(x, channels_last=False) if tta else [x]
            outs = [self.session.run(None, {"input": v.numpy()}) for v in views]
            logits_all.append(np.mean([o[0] for o in outs], axis=0))
            feats_all.append(np.mean([o[1] for o in outs], axis=0))
        return np.concatenate(logits_all), np.concatenate(feats_all)


def write_export_note(out: Path, info: dict) -> None:
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(info, indent=2) + "\n")
