"""Model cost by counting, not estimating: parameters, and multiply-adds per clip.

Convention: multiply-accumulates (1 MAC = 2 FLOPs, what model zoos call "FLOPs") of
convolutions, linear layers and matrix products, counted by `torch.utils.flop_counter`
on a meta-device model (no memory, no compute); pooling, BatchNorm and activations are
not counted. One clip = one sample at the architecture's paper input size (`input_spec`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.registry import create_model

IN_CHANNELS = {"rgb": 3, "flow": 2}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def example_inputs(
    spec: ClipSpec, batch: int = 1, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Zero inputs of the paper size: rgb (B, 3, T, S, S), flow (B, 2*flow_stack, T, S, S)."""
    channels = {"rgb": 3, "flow": 2 * spec.flow_stack}
    shape = (spec.clip_len, spec.crop_size, spec.crop_size)
    return {m: torch.zeros(batch, channels[m], *shape, device=device) for m in spec.modalities}


def count_macs(name: str, num_classes: int = 400, **options) -> tuple[int, ClipSpec]:
    """Multiply-adds of one clip through architecture `name`, and the input spec used."""
    with torch.device("meta"):
        model = create_model(name, num_classes, **options).eval()
        inputs = example_inputs(model.input_spec, device="meta")
    return macs_per_clip(model, inputs), model.input_spec


def macs_per_clip(model: nn.Module, inputs: dict[str, torch.Tensor]) -> int:
    """Multiply-adds of `model` (in eval mode) on the batch `inputs`, per sample."""
    training = model.training
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(inputs)
    model.train(training)
    return counter.get_total_flops() // 2 // len(next(iter(inputs.values())))


def describe_models(num_classes: int = 400) -> list[dict]:
    """One row per registered architecture (and I3D's flow and two-stream forms)."""
    from vidbench.models.registry import describe_origin, list_models, streams_trained_apart

    variants = []
    for name in list_models():
        variants.append((name, {}))
        if streams_trained_apart(name):
            variants += [(name, {"modalities": ("flow",)}), (name, {"modalities": ("rgb", "flow")})]
    rows = []
    for name, options in variants:
        with torch.device("meta"):
            params = count_parameters(create_model(name, num_classes, **options))
        macs, spec = count_macs(name, num_classes, **options)
        rows.append(
            {
                "name": name + ("" if not options else "[" + "+".join(options["modalities"]) + "]"),
                "params": params,
                "gmacs": round(macs / 1e9, 2),
                "modalities": list(spec.modalities),
                "clip_len": spec.clip_len,
                "frame_interval": spec.frame_interval,
                "crop_size": spec.crop_size,
                "flow_stack": spec.flow_stack,
                "test": spec.test_footprint,
                "from": describe_origin(name),
            }
        )
    return rows
