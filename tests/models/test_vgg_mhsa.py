import pytest
import torch

from leukoscope.errors import ConfigError
from leukoscope.models import create_model
from leukoscope.models.attention import MultiHeadSelfAttention
from leukoscope.models.vgg_mhsa import MaxPool2x2, VGGMHSA


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_attention_weights_shape_and_rows_sum_to_one(pool):
    model = create_model("vgg19_mhsa", 4, width=0.125, heads=4, pool=pool, input_size=128).eval()
    with torch.no_grad():
        model.forward_features(torch.randn(2, 3, 128, 128), return_attention=True)
    weights = model.attention.last_attention
    n = 16 + (1 if pool == "cls" else 0)  # 128 / 32 = 4 x 4 tokens
    assert weights.shape == (2, 4, n, n)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, n), atol=1e-5)
    maps = model.attention_maps(torch.randn(2, 3, 128, 128))
    assert maps.shape == (2, 4, 4)


def test_explicit_attention_equals_sdpa():
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(32, heads=4).eval()
    x = torch.randn(2, 10, 32)
    fast, none = attn(x)
    slow, weights = attn(x, return_attention=True)
    assert none is None and weights is not None
    assert torch.allclose(fast, slow, atol=1e-5)


def test_position_embedding_interpolates_to_new_size():
    model = create_model("vgg19_mhsa", 4, width=0.125, input_size=64).eval()  # built for a 2 x 2 grid
    assert model.attention.pos_embed.shape[-2:] == (2, 2)
    assert model.attention.position_embedding(7, 7).shape[-2:] == (7, 7)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 4)


@pytest.mark.parametrize("after", [3, 4, 5])
def test_insertion_point_is_configurable(after):
    model = create_model("vgg19_mhsa", 4, width=0.125, attention_after=after, input_size=64).eval()
    side = 64 // 2**after
    with torch.no_grad():
        model.forward_features(torch.randn(1, 3, 64, 64), return_attention=True)
        assert model.attention.last_attention.shape[-1] == side * side
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 4)


@pytest.mark.parametrize(("name", "convs"), [("vgg11_bn_mhsa", 8), ("vgg13_bn_mhsa", 10), ("vgg16_bn_mhsa", 13), ("vgg19_bn_mhsa", 16)])
@pytest.mark.parametrize("after", [1, 4, 5])
def test_a_shallower_trunk_keeps_the_five_blocks_and_the_attention_on_its_channels(name, convs, after):
    model = create_model(name, 4, width=0.125, heads=4, attention_after=after, input_size=64).eval()
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.features) == convs
    assert len(model.trunk_blocks()) == 5
    assert model.attention.attn.qkv.in_features == [8, 16, 32, 64, 64][after - 1]  # block `after`'s last convolution
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4)
    assert "depth" not in model.model_args  # the name carries it: a bundle rebuilds the same trunk
    rebuilt = create_model(name, 4, **model.model_args)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_an_unknown_depth_is_refused():
    with pytest.raises(ValueError, match="depth must be one of 11, 13, 16, 19"):
        VGGMHSA(4, width=0.125, depth=12)


def test_optional_mlp_and_batchnorm():
    model = create_model("vgg19_bn_mhsa", 4, width=0.125, mlp_ratio=2.0)
    assert model.attention.mlp is not None
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.features)


def test_default_is_the_papers_full_width_model():
    model = create_model("vgg19_mhsa", 4)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 16 and convs[-1].out_channels == 512
    assert model.attention.attn.heads == 8


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_a_gelu_head_passes_gradient_to_the_trunk_where_a_relu_head_has_died(activation):
    torch.manual_seed(0)
    model = create_model("vgg19_bn_mhsa", 4, width=0.125, heads=4, attention_after=4, input_size=64, head_activation=activation)
    assert type(create_model("vgg19_bn_mhsa", 4, **model.model_args).head[2]) is type(model.head[2])  # a bundle rebuilds it
    with torch.no_grad():
        model.head[1].bias.fill_(-3.0)  # every hidden unit of the head below zero
    model(torch.randn(8, 3, 64, 64)).logsumexp(1).sum().backward()
    trunk_grad = sum(p.grad.abs().sum() for p in model.features.parameters() if p.grad is not None)
    assert (trunk_grad > 0) == (activation == "gelu")


def test_an_unknown_head_activation_is_refused():
    with pytest.raises(ConfigError, match="head_activation"):
        create_model("vgg19_bn_mhsa", 4, width=0.125, head_activation="tanh")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("size", [(16, 16), (9, 13)])
def test_the_inference_max_pooling_gives_max_pool2d_s_values(dtype, size):
    """Ties (a ReLU's zeros, bf16's coarse steps), NaN, odd sizes, both memory layouts: the same maps, bit for bit."""
    torch.manual_seed(0)
    x = torch.randn(4, 8, *size).round().clamp(min=0).to(dtype)  # most windows hold tied values
    x[0, 0, 3, 3] = float("nan")
    pool = MaxPool2x2()
    for layout in (torch.contiguous_format, torch.channels_last):
        with torch.no_grad():
            fast = pool(x.contiguous(memory_format=layout))
        expected = torch.nn.functional.max_pool2d(x, 2, 2)
        assert fast.shape == expected.shape and torch.equal(fast.isnan(), expected.isnan())
        assert torch.equal(fast.nan_to_num(), expected.nan_to_num())


def test_training_through_the_max_pooling_sends_each_window_s_gradient_to_its_first_maximum():
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)  # every window a four-way tie
    MaxPool2x2()(x).sum().backward()
    assert x.grad[0, 0, ::2, ::2].eq(1).all() and x.grad.sum() == 4  # max_pool2d's choice, not a split of it


def test_the_model_s_calls_are_the_same_with_its_fast_pooling():
    model = create_model("vgg11_bn_mhsa", 4, width=0.125, heads=4, attention_after=4, input_size=64).eval()
    assert sum(isinstance(m, MaxPool2x2) for m in model.modules()) == 5
    x = torch.randn(6, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = model(x)
        for i, layer in enumerate(model.features):
            if isinstance(layer, MaxPool2x2):
                model.features[i] = torch.nn.MaxPool2d(2, 2)
        assert torch.equal(fast, model(x))
