import pytest
import torch

from cktat_core.models import MODELS, Normalized, build_model, num_parameters


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as e:
        build_model("resnet19")
    for name in MODELS:
        assert name in str(e.value)


def test_resnet18_has_the_shared_checkpoint_layout():
    m = build_model("resnet18", 10)
    keys = m.state_dict().keys()
    tops = {k.split(".")[0] for k in keys}
    assert tops == {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "linear"}
    # the kuangliu/pytorch-cifar names a shared checkpoint carries
    for k in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.shortcut.0.weight",
              "layer2.0.shortcut.1.running_var", "layer4.1.bn2.weight", "linear.weight", "linear.bias"]:
        assert k in keys
    assert tuple(m.state_dict()["linear.weight"].shape) == (10, 512)
    assert 11_000_000 < num_parameters(m) < 11_300_000  # 11.17M, the standard CIFAR ResNet-18


def test_wrn34_10_trades_layout_and_optional_sub_block1():
    plain = build_model("wrn34_10", 10)
    trades = build_model("wrn34_10", 10, sub_block1=True)
    assert not any(k.startswith("sub_block1") for k in plain.state_dict())
    assert any(k.startswith("sub_block1.layer.0.conv1") for k in trades.state_dict())
    assert {"conv1.weight", "block1.layer.0.bn1.weight", "block3.layer.4.conv2.weight", "bn1.weight",
            "fc.weight"} <= set(plain.state_dict())
    assert 46_000_000 < num_parameters(plain) < 46_300_000  # WRN-34-10 has 46.16M parameters
    # sub_block1 never takes part in the forward pass
    trades.eval()
    x = torch.rand(1, 3, 32, 32)
    out1 = trades(x)
    with torch.no_grad():
        for p in trades.sub_block1.parameters():
            p.add_(1.0)
    assert torch.equal(out1, trades(x))


def test_wrn28_10_depth():
    m = build_model("wrn28_10", 10)
    assert len(m.block1.layer) == 4 and 36_000_000 < num_parameters(m) < 36_600_000


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "small_cnn"])
def test_forward_shapes(name):
    m = build_model(name, 100).eval()
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_small_cnn_width_and_size():
    assert 55_000 < num_parameters(build_model("small_cnn")) < 70_000
    assert 230_000 < num_parameters(build_model("small_cnn", width=32)) < 260_000


def test_normalized_wrapper():
    inner = build_model("small_cnn").eval()
    m = Normalized(inner, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]).eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(m(x), inner((x - 0.5) / 0.25))
