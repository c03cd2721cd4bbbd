"""Inflating 2D networks to 3D (docs/protocol.md 1, "bootstrapping 3D filters from 2D").

A 2D kernel repeated N times along time and divided by N gives, on a "boring" video (one
image repeated), the same activations as the 2D kernel on the image.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


def inflate_weight(weight: torch.Tensor, time: int) -> torch.Tensor:
    """Conv weight (out, in, kh, kw) -> (out, in, time, kh, kw), repeated and divided by time."""
    return weight.unsqueeze(2).repeat(1, 1, time, 1, 1) / time


def inflate_state_dict(
    state: dict[str, torch.Tensor], target: nn.Module
) -> dict[str, torch.Tensor]:
    """Map a 2D state dict onto 3D `target` with the same keys.

    Conv kernels are inflated to the target's temporal size; tensors of equal shape are
    copied; a 2D `fc` (C, F) fills a 1x1x1 conv `logits` (C, F, 1, 1, 1) if `target` has
    one. Keys the target lacks are dropped, with a log line.
    """
    wanted = target.state_dict()
    out, skipped = {}, []
    for key, value in state.items():
        target_key = key
        if key.startswith("fc.") and key.replace("fc.", "logits.", 1) in wanted:
            target_key = key.replace("fc.", "logits.", 1)
        if target_key not in wanted:
            skipped.append(key)
            continue
        shape = wanted[target_key].shape
        if value.dim() == 4 and len(shape) == 5:
            value = inflate_weight(value, shape[2])
        elif value.dim() == 2 and len(shape) == 5:
            value = value[:, :, None, None, None]
        if value.shape != shape:
            raise ValueError(
                f"{key}: 2D shape {tuple(value.shape)} does not inflate to {tuple(shape)}"
            )
        out[target_key] = value
    if skipped:
        log.info(
            "inflation dropped %d keys the 3D model lacks (first: %s)", len(skipped), skipped[0]
        )
    return out


def inflate_network(network: nn.Module, time_kernel: int | None = None) -> nn.Module:
    """A 3D copy of a 2D conv network: Conv2d kxk -> Conv3d kxkxk (or `time_kernel`) with
    inflated weights, stride and padding repeated in time; BatchNorm2d -> BatchNorm3d;
    2D pools -> 3D pools of the same size in time. Input becomes (B, C, T, H, W)."""
    network = copy.deepcopy(network)
    for name, child in list(network.named_children()):
        setattr(network, name, _inflate_layer(child, time_kernel))
    return network


def _inflate_layer(layer: nn.Module, time_kernel: int | None) -> nn.Module:
    if isinstance(layer, nn.Conv2d):
        t = time_kernel or layer.kernel_size[0]
        conv = nn.Conv3d(
            layer.in_channels,
            layer.out_channels,
            (t, *layer.kernel_size),
            (layer.stride[0], *layer.stride),
            (t // 2, *layer.padding),
            groups=layer.groups,
            bias=layer.bias is not None,
        )
        conv.weight.data.copy_(inflate_weight(layer.weight.data, t))
        if layer.bias is not None:
            conv.bias.data.copy_(layer.bias.data)
        return conv
    if isinstance(layer, nn.BatchNorm2d):
        norm = nn.BatchNorm3d(
            layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats
        )
        norm.load_state_dict(layer.state_dict())
        return norm
    if isinstance(layer, nn.MaxPool2d):
        k, s, p = (_pair(v) for v in (layer.kernel_size, layer.stride, layer.padding))
        return nn.MaxPool3d((k[0], *k), (s[0], *s), (p[0], *p), ceil_mode=layer.ceil_mode)
    if isinstance(layer, nn.AvgPool2d):
        k, s, p = (_pair(v) for v in (layer.kernel_size, layer.stride, layer.padding))
        return nn.AvgPool3d((k[0], *k), (s[0], *s), (p[0], *p), ceil_mode=layer.ceil_mode)
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d((1, *_pair(layer.output_size)))
    for name, child in list(layer.named_children()):
        setattr(layer, name, _inflate_layer(child, time_kernel))
    return layer


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)
