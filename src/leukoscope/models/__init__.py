"""Model registry: the paper's VGG19 + MHSA, its ResNet101 baseline and other torchvision backbones."""

from leukoscope.models.base import LeukoscopeModel
from leukoscope.models.registry import create_model, list_models, register_model

__all__ = ["LeukoscopeModel", "create_model", "list_models", "register_model"]
