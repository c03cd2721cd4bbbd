"""2D backbones shared by the frame-level architectures, and safe weight loading.

A backbone maps frames (B, C, H, W) in [-1, 1] to a feature grid (B, F, h, w) and has
`num_features` = F. `inception_v1` is the paper's Inception-v1 with BN (torchvision
`googlenet` keys: its ImageNet weights load from a local file); any other name is a timm
model (`timm.create_model(..., in_chans=20)` adapts the first conv for a flow stack).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from models.inception import InceptionTrunk


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from `path` with `torch.load(weights_only=True)`; a file that needs
    arbitrary objects unpickled is refused, never loaded unsafely."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: refused, it needs arbitrary Python objects unpickled "
            f"(only tensors and plain containers are loaded): {error}"
        ) from None
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(data).__name__}")
    return data


def adapt_first_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB conv weight (O, 3, ...) -> (O, in_chans, ...): channel mean, repeated, rescaled."""
    if weight.shape[1] == in_chans:
        return weight
    return (
        weight.mean(dim=1, keepdim=True).repeat(1, in_chans, *([1] * (weight.dim() - 2)))
        * 3
        / in_chans
    )


class TimmBackbone(nn.Module):
    """A timm model without its head: (B, C, H, W) -> (B, F, h, w)."""

    def __init__(self, name: str, in_chans: int = 3, weights: str | None = None) -> None:
        super().__init__()
        import timm

        overlay = {"file": str(weights)} if weights else None
        self.net = timm.create_model(
            name,
            pretrained=bool(weights),
            pretrained_cfg_overlay=overlay,
            num_classes=0,
            global_pool="",
            in_chans=in_chans,
        )
        self.num_features = self.net.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


def create_backbone(
    name: str = "inception_v1", in_chans: int = 3, width: float = 1.0, weights: str | None = None
) -> nn.Module:
    """A 2D backbone by name; `weights` is a local file (torchvision googlenet state dict
    for inception_v1, a timm weight file otherwise)."""
    if name != "inception_v1":
        if width != 1.0:
            raise ValueError(f"width applies to inception_v1 only, not the timm model {name!r}")
        return TimmBackbone(name, in_chans, weights)
    trunk = InceptionTrunk(2, in_chans, width)
    if weights:
        state = {k: v for k, v in load_weights(weights).items() if not k.startswith(("fc.", "aux"))}
        state["conv1.conv.weight"] = adapt_first_conv(state["conv1.conv.weight"], in_chans)
        trunk.load_state_dict(state)
    return trunk
