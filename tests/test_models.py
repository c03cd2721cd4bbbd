"""The architectures: tiny-size training behaviour, full-size structure, inflation, costs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from vidbench.bench.paper import TABLE2
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models import create_model, list_models, model_options, register_model
from vidbench.models.costs import count_macs, count_parameters
from vidbench.models.inception import InceptionV1
from vidbench.models.inflate import inflate_network

NUM_CLASSES = 5
TINY = {  # name -> (options, input shapes at a CPU-test size)
    "i3d": ({"width": 0.125, "dropout": 0.0}, {"rgb": (2, 3, 8, 64, 64)}),
    "i3d_flow": (
        {"width": 0.125, "dropout": 0.0, "modalities": ("flow",)},
        {"flow": (2, 2, 8, 64, 64)},
    ),
    "i3d_two_stream": (
        {"width": 0.125, "dropout": 0.0, "modalities": ("rgb", "flow")},
        {"rgb": (2, 3, 8, 64, 64), "flow": (2, 2, 8, 64, 64)},
    ),
    "c3d": ({"width": 0.125, "dropout": 0.0}, {"rgb": (2, 3, 8, 32, 32)}),
    "convnet_lstm": ({"width": 0.125, "dropout": 0.0}, {"rgb": (2, 3, 4, 64, 64)}),
    "two_stream": (
        {"width": 0.125, "dropout": 0.0},
        {"rgb": (2, 3, 2, 64, 64), "flow": (2, 20, 2, 64, 64)},
    ),
    "fused_two_stream": (
        {"width": 0.125, "dropout": 0.0},
        {"rgb": (2, 3, 3, 64, 64), "flow": (2, 20, 3, 64, 64)},
    ),
    "frame_avg": ({"width": 0.125, "dropout": 0.0}, {"rgb": (2, 3, 4, 64, 64)}),
    "r3d": ({"width": 0.125}, {"rgb": (2, 3, 8, 32, 32)}),
}


def arch_of(key: str) -> str:
    return key.split("_flow")[0].split("_two_stream")[0] if key.startswith("i3d") else key


@pytest.mark.parametrize("key", list(TINY))
def test_tiny_model_learns_and_gradients_reach_the_first_layer(key):
    torch.manual_seed(0)
    options, shapes = TINY[key]
    model = create_model(arch_of(key), NUM_CLASSES, **options)
    batch = {name: torch.randn(shape) for name, shape in shapes.items()}
    labels = torch.tensor([1, 3])
    logits = model(batch)
    assert logits.shape == (2, NUM_CLASSES)
    loss = nn.functional.cross_entropy(logits, labels)
    loss.backward()
    first = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    # Tiny nets with BatchNorm over two samples are sharp: size the step to cut the loss by
    # about 0.05 to first order, whatever the gradient's norm.
    squared_norm = sum(float((p.grad**2).sum()) for p in model.parameters() if p.grad is not None)
    torch.optim.SGD(model.parameters(), lr=0.05 / squared_norm).step()
    assert nn.functional.cross_entropy(model(batch), labels) < loss


@pytest.mark.parametrize(
    ("name", "options", "paper"),
    [
        ("convnet_lstm", {}, 8.94e6),
        ("c3d", {}, 79.6e6),
        ("two_stream", {}, 12.0e6),
        ("i3d", {"modalities": ("rgb", "flow")}, 25.3e6),
        ("i3d", {}, 12.7e6),
    ],
)
def test_full_size_parameter_counts_match_the_paper(name, options, paper):
    with torch.device("meta"):
        params = count_parameters(create_model(name, 400, **options))
    assert abs(params - paper) / paper < 0.03


def test_c3d_and_fused_and_r3d_counts():
    with torch.device("meta"):
        assert abs(count_parameters(create_model("c3d", 101)) - 78.4e6) < 0.03 * 78.4e6
        fused = create_model("fused_two_stream", 400)
        assert abs(count_parameters(fused) - count_parameters(fused.fc) - 39.5e6) < 0.03 * 39.5e6
        assert count_parameters(create_model("r3d", 400)) == 33_371_472


def test_r3d_18_matches_torchvision_layout_and_logits():
    reference = torchvision.models.video.r3d_18(num_classes=7).eval()
    ours = create_model("r3d", 7).eval()
    ours.load_state_dict(reference.state_dict())  # same keys, same shapes
    clip = torch.randn(1, 3, 8, 32, 32)
    assert torch.allclose(ours({"rgb": clip}), reference(clip), atol=1e-5)


def test_inception_v1_loads_torchvision_googlenet_weights_exactly():
    reference = torchvision.models.googlenet(
        weights=None, aux_logits=False, init_weights=True, num_classes=10
    ).eval()
    reference.transform_input = False  # the ported TF-slim weights expect [-1, 1], as our data are
    ours = InceptionV1(10).eval()
    ours.load_state_dict(reference.state_dict())
    image = torch.randn(1, 3, 96, 96)
    assert torch.allclose(ours(image), reference(image), atol=1e-5)


def randomise_batchnorm(model: nn.Module) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)


def test_boring_video_gives_the_2d_features_after_inflation(tmp_path):
    """With the options the sweeps use (`inflate_from`, padding left at its default)."""
    torch.manual_seed(0)
    two_d = InceptionV1(10).eval()
    randomise_batchnorm(two_d)
    torch.save(two_d.state_dict(), tmp_path / "googlenet.pth")
    i3d = create_model("i3d", 10, inflate_from=str(tmp_path / "googlenet.pth")).eval()
    assert create_model("i3d", 10).streams["rgb"].trunk.conv1.conv.padding == (0, 0, 0)  # SAME
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        pooled_2d = two_d.avgpool(two_d.forward_features(image)).flatten(1)
        grid_3d = i3d.streams["rgb"].trunk(image[:, :, None].repeat(1, 1, 16, 1, 1))
    assert torch.allclose(grid_3d.mean(dim=(2, 3, 4)), pooled_2d, atol=1e-4)


def test_inflate_network_turns_any_2d_convnet_into_3d():
    two_d = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 4, 5, padding=2),
        nn.AdaptiveAvgPool2d(1),
    ).eval()
    randomise_batchnorm(two_d)
    three_d = inflate_network(two_d).eval()
    assert isinstance(three_d[0], nn.Conv3d) and three_d[0].kernel_size == (3, 3, 3)
    image = torch.randn(1, 3, 16, 16)
    boring = image[:, :, None].repeat(1, 1, 24, 1, 1)
    with torch.no_grad():
        # time steps 3-8 of 12 are out of reach of the temporal zero padding: equal to the 2D net
        inner = three_d[:-1](boring)[:, :, 3:9]
        assert torch.allclose(inner, two_d[:-1](image)[:, :, None].expand_as(inner), atol=1e-5)


def test_every_registered_model_has_a_tiny_configuration_here():
    assert {arch_of(key) for key in TINY} == set(list_models())


def test_the_papers_five_architectures_are_registered():
    papers = {arch for arch, _, _ in TABLE2}
    assert len(papers) == 5 and papers <= set(list_models())


@pytest.mark.parametrize("key", list(TINY))
def test_classifier_contract_head_outputs_the_classes_and_resets(key):
    """`get_classifier()` is exactly the layer(s) whose weights decide the logits given the
    trunk's features; `reset_classifier(n)` gives n-way logits from a fresh head."""
    torch.manual_seed(0)
    options, shapes = TINY[key]
    model = create_model(arch_of(key), NUM_CLASSES, **options).eval()
    batch = {name: torch.randn(shape) for name, shape in shapes.items()}
    head = list(model.get_classifier().parameters())
    assert head and all(any(p is q for q in model.parameters()) for p in head)
    logits = model(batch)
    logits[:, 2].sum().backward()  # class 2's logit depends on class 2's head row only
    for parameter in head:
        rows = parameter.grad.flatten(1).abs().sum(dim=1) if parameter.dim() > 1 else None
        grad = parameter.grad if rows is None else rows
        assert grad[2] != 0 and grad[torch.arange(NUM_CLASSES) != 2].abs().sum() == 0
    model.reset_classifier(7)
    assert model(batch).shape == (2, 7)
    fresh = list(model.get_classifier().parameters())
    assert all(p.shape[0] == 7 for p in fresh) and len(fresh) == len(head)


def test_registry_refuses_a_model_without_the_interface():
    class Headless(nn.Module):
        input_spec = ClipSpec()

    with pytest.raises(TypeError, match="lacks \\['get_classifier', 'reset_classifier'\\]"):
        register_model("headless")(Headless)
    assert "headless" not in list_models()


def test_registry_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown architecture 'i4d'; choose one of c3d"):
        create_model("i4d", 10)
    with pytest.raises(
        ValueError, match=r"c3d does not take \['depth'\]; its options are \['width'"
    ):
        create_model("c3d", 10, depth=18)
    assert "backbone" in model_options("two_stream")


def test_models_declare_their_default_input():
    for name in list_models():
        with torch.device("meta"):
            spec = create_model(name, 10).input_spec
        assert spec.modalities and spec.clip_len >= 1 and spec.crop_size >= 112


def test_multiply_adds_match_the_spec_cost_figures():
    assert count_macs("i3d")[0] == pytest.approx(111e9, rel=0.03)
    assert count_macs("i3d", modalities=("flow",))[0] == pytest.approx(102e9, rel=0.03)
    assert count_macs("r3d")[0] == pytest.approx(40.7e9, rel=0.01)
    assert count_macs("c3d", pool1_time_stride=1)[0] == pytest.approx(
        38.5e9, rel=0.03
    )  # original C3D


def test_timm_backbone_with_flow_channels_and_local_weights(tmp_path):
    import timm

    source = timm.create_model("resnet18", num_classes=0)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model = create_model(
        "two_stream", 4, backbone="resnet18", backbone_weights=str(tmp_path / "resnet18.pth")
    )
    assert model.streams["flow"].backbone.net.conv1.in_channels == 20
    assert torch.equal(
        model.streams["rgb"].backbone.net.layer1[0].conv1.weight, source.layer1[0].conv1.weight
    )
    out = model({"rgb": torch.randn(1, 3, 1, 64, 64), "flow": torch.randn(1, 20, 1, 64, 64)})
    assert out.shape == (1, 4)


def test_inception_backbone_loads_googlenet_weights_from_a_local_file(tmp_path):
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    torch.save(reference.state_dict(), tmp_path / "googlenet.pth")
    model = create_model("two_stream", 4, backbone_weights=str(tmp_path / "googlenet.pth"))
    rgb = model.streams["rgb"].backbone
    assert torch.equal(
        rgb.inception4a.branch2[1].conv.weight, reference.inception4a.branch2[1].conv.weight
    )
    flow_first = model.streams["flow"].backbone.conv1.conv.weight
    assert flow_first.shape[1] == 20
    assert torch.allclose(flow_first.sum(dim=1), reference.conv1.conv.weight.sum(dim=1), atol=1e-5)


def test_models_declare_what_they_see_of_motion():
    from vidbench.models.registry import RGB_MOTION, rgb_motion

    assert {name: rgb_motion(name) for name in list_models()} == {
        "c3d": "local", "convnet_lstm": "pooled", "frame_avg": "none",
        "fused_two_stream": "local", "i3d": "local", "r3d": "local", "two_stream": "none",
    }  # fmt: skip
    assert all(rgb_motion(name) in RGB_MOTION for name in list_models())


def test_the_lstm_has_recurrent_batch_norm_with_per_step_statistics():
    from vidbench.models.convnet_lstm import BatchNormLSTM

    assert isinstance(create_model("convnet_lstm", 3, width=0.125).lstm, BatchNormLSTM)
    assert isinstance(create_model("convnet_lstm", 3, width=0.125, lstm="plain").lstm, nn.LSTM)
    with pytest.raises(ValueError, match="lstm 'gru' is not one of"):
        create_model("convnet_lstm", 3, lstm="gru")
    torch.manual_seed(0)
    lstm = BatchNormLSTM(6, 4, max_steps=10)
    lstm(torch.randn(5, 4, 6))  # trains on 4 steps: statistics for steps 0-3
    assert lstm.trained_steps == 4
    restored = BatchNormLSTM(6, 4, max_steps=10)
    restored.load_state_dict(lstm.state_dict())  # checkpoints keep it
    assert restored.trained_steps == 4
    assert [int(n.num_batches_tracked) for n in lstm.norm_cell[:5]] == [1, 1, 1, 1, 0]
    lstm.eval()
    long = torch.randn(2, 8, 6)  # the paper tests on twice the training length
    out = lstm(long)
    assert out.shape == (2, 8, 4) and torch.isfinite(out).all()
    # steps 4-7 use step 3's statistics: replacing the untrained steps' changes nothing
    for norm in lstm.norm_cell[4:]:
        norm.running_mean.fill_(5.0)
    assert torch.equal(lstm(long), out)


def test_i3d_batchnorm_can_match_deepminds_release():
    deepmind = create_model("i3d", 3, width=0.125, batchnorm="deepmind")
    norms = [m for m in deepmind.modules() if isinstance(m, nn.BatchNorm3d)]
    assert norms and all(n.eps == 1e-3 and n.momentum == pytest.approx(0.001) for n in norms)
    assert all(not n.weight.requires_grad and bool((n.weight == 1).all()) for n in norms)
    ours = [
        m for m in create_model("i3d", 3, width=0.125).modules() if isinstance(m, nn.BatchNorm3d)
    ]
    assert all(n.weight.requires_grad and n.momentum == 0.1 for n in ours)
    with pytest.raises(ValueError, match="batchnorm 'tf' is not one of"):
        create_model("i3d", 3, batchnorm="tf")


def test_weights_import_torchvision_googlenet_writes_what_the_sweeps_load(tmp_path, monkeypatch):
    from helpers import cli

    from vidbench.bench.config import load_sweep
    from vidbench.models.weights import IMAGENET_GOOGLENET

    release = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    torch.save(release.state_dict(), tmp_path / "googlenet-1378be20.pth")  # with aux heads
    monkeypatch.chdir(tmp_path)
    assert cli("weights", "import", "torchvision-googlenet", "googlenet-1378be20.pth") == 0
    assert load_sweep("table2").per_arch["i3d"]["inflate_from"] == IMAGENET_GOOGLENET
    written = torch.load(tmp_path / IMAGENET_GOOGLENET, weights_only=True)
    assert not any(k.startswith("aux") for k in written)
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    reference.load_state_dict(written)
    reference.eval().transform_input = False
    ours = InceptionV1(1000).eval()
    ours.load_state_dict(written)
    image = torch.randn(1, 3, 64, 64)
    assert torch.allclose(ours(image), reference(image), atol=1e-5)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    assert cli("weights", "import", "torchvision-googlenet", "other.pth", "--out", "x.pth") == 2
    assert not (tmp_path / "x.pth").exists()


def test_weights_import_torchvision_googlenet_offline_says_where_to_get_it(tmp_path, capsys):
    from unittest import mock
    from urllib.error import URLError

    from helpers import cli

    with mock.patch("torch.hub.load_state_dict_from_url", side_effect=URLError("no network")):
        assert cli("weights", "import", "torchvision-googlenet", "--out", str(tmp_path / "g")) == 2
    error = capsys.readouterr().err
    assert "https://download.pytorch.org/models/googlenet-1378be20.pth" in error
    assert "weights import torchvision-googlenet FILE" in error


@pytest.mark.parametrize("modalities", [("rgb",), ("flow",), ("rgb", "flow")])
def test_3d_fused_runs_on_one_stream_or_both(modalities):
    net = create_model("fused_two_stream", 7, width=0.125, modalities=modalities)
    assert net.input_spec.modalities == modalities
    assert {name for name, _ in net.named_children()} >= set(modalities)
    assert not ({"rgb", "flow"} - set(modalities)) & {name for name, _ in net.named_children()}
    inputs = {"rgb": torch.randn(2, 3, 5, 48, 48), "flow": torch.randn(2, 20, 5, 48, 48)}
    assert net({m: inputs[m] for m in modalities}).shape == (2, 7)
    with pytest.raises(ValueError, match="rgb, flow or both"):
        create_model("fused_two_stream", 7, modalities=("depth",))
