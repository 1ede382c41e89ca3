import pytest
import torch

from leukoscope.models import create_model
from leukoscope.models import weights as weights_mod
from leukoscope.models.weights import WeightsError


def test_local_file_loads_into_trunk_and_head_starts_fresh(tmp_path):
    torch.manual_seed(1)
    donor = create_model("vgg19_mhsa", 4, width=0.125)
    path = tmp_path / "trunk.pth"
    torch.save({k: v for k, v in donor.state_dict().items() if k.startswith("features.")}, path)
    torch.manual_seed(2)
    model = create_model("vgg19_mhsa", 4, width=0.125, weights=str(path))
    assert torch.equal(model.features[0].weight, donor.features[0].weight)
    assert not torch.equal(model.head[1].weight, donor.head[1].weight)


def test_safetensors_file_and_torchvision_names(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    plain = resnet18()  # torchvision's own names, no "net." prefix
    save_file(plain.state_dict(), str(tmp_path / "r18.safetensors"))
    model = create_model("resnet18", 4, weights=str(tmp_path / "r18.safetensors"))
    assert torch.equal(model.net.conv1.weight, plain.conv1.weight)
    assert model.net.fc.out_features == 4


def test_offline_imagenet_fails_at_once_naming_the_file(tmp_path, monkeypatch):
    torch.hub.set_dir(str(tmp_path))
    monkeypatch.setattr(weights_mod, "_online", lambda url, timeout=2.0: False)
    with pytest.raises(WeightsError, match=r"resnet18-.*\.pth") as info:
        create_model("resnet18", 4, weights="imagenet")
    assert str(tmp_path) in str(info.value) and "weights=/path" in str(info.value)


def test_imagenet_file_in_hub_cache_is_used(tmp_path):
    from torchvision.models import resnet18

    torch.hub.set_dir(str(tmp_path))
    path, _ = weights_mod.imagenet_file("resnet18")
    path.parent.mkdir(parents=True)
    ref = resnet18()
    torch.save(ref.state_dict(), path)
    model = create_model("resnet18", 4, weights="imagenet")
    assert torch.equal(model.net.layer1[0].conv1.weight, ref.layer1[0].conv1.weight)


def test_bad_weights_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth"):
        create_model("resnet18", 4, weights=str(tmp_path / "junk.pth"))
    with pytest.raises(WeightsError, match="not found"):
        create_model("resnet18", 4, weights=str(tmp_path / "missing.pth"))
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="none of the"):
        create_model("resnet18", 4, weights=str(tmp_path / "other.pth"))
