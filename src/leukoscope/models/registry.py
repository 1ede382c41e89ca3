"""Model registry in the spirit of timm: `create_model(name, ...)`, `list_models()`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from leukoscope.errors import ConfigError
from leukoscope.models.base import LeukoscopeModel
from leukoscope.models.ensemble import Ensemble
from leukoscope.models.torchvision_models import DenseNetModel, MobileStyleModel, ResNetModel, TorchvisionModel, VGGModel
from leukoscope.models.vgg_mhsa import VGGMHSA
from leukoscope.models.weights import WeightsError, imagenet_available, imagenet_state, load_matching, load_state_file

_REGISTRY: dict[str, tuple[Callable[..., LeukoscopeModel], str]] = {}  # name -> (builder, torchvision arch for weights)


def register_model(name: str, imagenet_arch: str) -> Callable:
    def wrap(fn: Callable[..., LeukoscopeModel]) -> Callable[..., LeukoscopeModel]:
        _REGISTRY[name] = (fn, imagenet_arch)
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def imagenet_arch(name: str) -> str:
    return _REGISTRY[name][1]


def _tv(cls: type[TorchvisionModel], arch: str) -> Callable[..., LeukoscopeModel]:
    def build(num_classes: int, **kwargs: Any) -> LeukoscopeModel:
        if kwargs:
            raise ConfigError(f"model {arch} takes no extra arguments, got {', '.join(kwargs)}")
        return cls(arch, num_classes)

    return build


for _arch, _cls in [
    ("vgg19", VGGModel),
    ("vgg19_bn", VGGModel),
    ("resnet18", ResNetModel),
    ("resnet50", ResNetModel),
    ("resnet101", ResNetModel),
    ("densenet121", DenseNetModel),
    ("efficientnet_b0", MobileStyleModel),
    ("mobilenet_v3_large", MobileStyleModel),
]:
    register_model(_arch, _arch)(_tv(_cls, _arch))


@register_model("vgg19_mhsa", "vgg19")
def vgg19_mhsa(num_classes: int, **kwargs: Any) -> LeukoscopeModel:
    return VGGMHSA(num_classes, depth=19, batch_norm=kwargs.pop("batch_norm", False), **kwargs)


def _bn_mhsa(depth: int) -> Callable[..., LeukoscopeModel]:
    """The paper's model on a batch-normed VGG trunk of `depth`: the same five blocks, fewer convolutions below 19."""

    def build(num_classes: int, **kwargs: Any) -> LeukoscopeModel:
        kwargs.pop("batch_norm", None)
        return VGGMHSA(num_classes, depth=depth, batch_norm=True, **kwargs)

    return build


for _depth in (11, 13, 16, 19):
    register_model(f"vgg{_depth}_bn_mhsa", f"vgg{_depth}_bn")(_bn_mhsa(_depth))


def create_model(name: str, num_classes: int, weights: str | Path | None = None, freeze_blocks: int = 0, **kwargs: Any) -> LeukoscopeModel:
    """Build a registered model; `weights` is None, "imagenet" or a local .pth/.safetensors file.

    Pretrained weights go into the trunk only: the attention block and the class head start fresh.
    An "ensemble" is rebuilt from its members' descriptions (`members`), never trained as one.
    """
    if name == ENSEMBLE:
        return _ensemble(num_classes, weights, freeze_blocks, **kwargs)
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    builder, arch = _REGISTRY[name]
    try:
        model = builder(num_classes, **kwargs)
    except (TypeError, ValueError) as exc:  # an argument the model does not take, or a value it refuses
        raise ConfigError(f"model {name}: {exc}") from None
    model.model_name = name
    if weights:
        _load_pretrained(model, name, arch, weights)
    if freeze_blocks:
        model.freeze_blocks(freeze_blocks)
    return model


ENSEMBLE = "ensemble"


def _ensemble(num_classes: int, weights: str | Path | None, freeze_blocks: int, members: list[dict[str, Any]] | None = None, **_: Any) -> LeukoscopeModel:
    if weights or freeze_blocks or not members:
        raise ConfigError("an ensemble is not trained as one model: train its members, then join their bundles with `leukoscope ensemble`")
    try:
        model = Ensemble([create_model(m["name"], num_classes, **m.get("kwargs", {})) for m in members])
    except ValueError as exc:
        raise ConfigError(f"model ensemble: {exc}") from None
    model.model_name = ENSEMBLE
    return model


def _load_pretrained(model: LeukoscopeModel, name: str, arch: str, weights: str | Path) -> None:
    state = imagenet_state(arch) if weights == "imagenet" else load_state_file(weights)
    if isinstance(model, VGGMHSA):
        if model.model_args["width"] != 1.0 and weights == "imagenet":
            raise WeightsError(f"ImageNet weights need the full-width trunk; {name} was built with width={model.model_args['width']}")
        trunk = {k: v for k, v in state.items() if k.startswith("features.")}
        load_matching(model, trunk or state, skip_prefixes=("head.",))
    elif isinstance(model, TorchvisionModel):
        own_keys = set(model.state_dict())
        if not any(k in own_keys for k in state) and any(f"net.{k}" in own_keys for k in state):
            state = {f"net.{k}": v for k, v in state.items()}
        skip = tuple(f"net.{p}" for p in model.classifier_prefixes())
        load_matching(model, state, skip_prefixes=skip)


def weights_status(name: str) -> bool:
    return imagenet_available(_REGISTRY[name][1])


def count_gflops(model: LeukoscopeModel, input_size: int) -> float:
    """Forward GFLOPs for one image (a multiply-add counts 2), by torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    return counter.get_total_flops() / 1e9
