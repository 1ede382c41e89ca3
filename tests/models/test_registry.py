import pytest
import torch

from leukoscope.errors import ConfigError
from leukoscope.models import create_model, list_models

SMALL = {name: {"width": 0.125} for name in ("vgg19_mhsa", "vgg19_bn_mhsa", "vgg16_bn_mhsa", "vgg13_bn_mhsa", "vgg11_bn_mhsa")}
REQUIRED = {*SMALL, "vgg19", "vgg19_bn", "resnet101", "resnet50", "resnet18", "densenet121", "efficientnet_b0", "mobilenet_v3_large"}


def _make(name, **extra):
    torch.manual_seed(0)
    return create_model(name, 4, **{**SMALL.get(name, {}), **extra})


def test_registry_has_the_required_models():
    assert REQUIRED <= set(list_models())
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("alexnet", 4)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_shapes_backward_determinism_roundtrip(name):
    model = _make(name)
    model.eval()
    with torch.no_grad():
        for size in (64, 224):
            assert model(torch.randn(1, 3, size, size)).shape == (1, 4)
        x = torch.randn(2, 3, 64, 64)
        a, b = model(x), model(x)
        assert torch.equal(a, b)
        feats = model.forward_features(x)
        assert torch.allclose(model.forward_head(feats), a, atol=1e-5)
        assert model.forward_head(feats, pre_logits=True).dim() == 2
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    clone = _make(name)
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) > 0
    assert isinstance(model.gradcam_layer(), torch.nn.Module)


def test_freeze_first_blocks():
    model = create_model("vgg19_mhsa", 4, width=0.125, freeze_blocks=2)
    blocks = model.trunk_blocks()
    assert len(blocks) == 5
    assert not any(p.requires_grad for b in blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for p in blocks[2].parameters())
    assert model.num_parameters(trainable_only=True) < model.num_parameters()


def test_unknown_kwarg_is_a_config_error():
    with pytest.raises(ConfigError, match="vgg19_mhsa"):
        create_model("vgg19_mhsa", 4, depth=3)
