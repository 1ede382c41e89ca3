"""Pretrained weights: torchvision's ImageNet files (downloaded only when online) or a local file."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision import models as tvm

from leukoscope.errors import LeukoscopeError


class WeightsError(LeukoscopeError):
    """Weights that cannot be found, downloaded or matched to the model."""


def imagenet_file(arch: str) -> tuple[Path, str]:
    """Where torchvision keeps `arch`'s ImageNet weights on this machine, and where they come from."""
    url = tvm.get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path), url


def imagenet_available(arch: str) -> bool:
    return imagenet_file(arch)[0].is_file()


def _online(url: str, timeout: float = 2.0) -> bool:
    host = urlparse(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or .pth/.pt, never unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to parse is the same user-facing problem
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return state


def imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for `arch`; offline and absent, fail at once naming the file."""
    path, url = imagenet_file(arch)
    if not path.is_file():
        if not _online(url):
            raise WeightsError(
                f"ImageNet weights for {arch} are not on this machine and it is offline: place {path.name} "
                f"(from {url}) at {path}, or pass weights=/path/to/file.pth"
            )
        torch.hub.load_state_dict_from_url(url, progress=True, check_hash=False)
    return load_state_file(path)


def load_matching(module: torch.nn.Module, state: dict[str, torch.Tensor], skip_prefixes: tuple[str, ...] = ()) -> int:
    """Copy every tensor whose name and shape match; returns how many were loaded (0 is an error)."""
    own = module.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape and not k.startswith(skip_prefixes)}
    if not matched:
        raise WeightsError(f"none of the {len(state)} tensors in the weights match the model's layer names and shapes")
    module.load_state_dict(matched, strict=False)
    return len(matched)
