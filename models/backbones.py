"""2D backbones shared by the frame-level architectures, and safe weight loading.

A backbone maps frames (B, C, H, W) in [-1, 1] to a feature grid (B, F, h, w) and has
`num_features` = F. `inception_v1` is the paper's Inception-v1 with BN (torchvision
`googlenet` keys: its ImageNet weights load from a local file); any other name is a timm
model (`timm.create_model(..., in_chans=20)` adapts the first conv for a flow stack).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidbench.models.inception import InceptionTrunk


def per_frame(trunk: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 2D `trunk` on every frame: (B, C, T, H, W) -> (B, T, *trunk's output per frame),
    the frames folded into the batch and unfolded again."""
    b, c, t, h, w = x.shape
    out = trunk(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, ...)
    return out.view(b, t, *out.shape[1:])


class RefusedCheckpoint(ValueError):
    """A file that asks to unpickle arbitrary objects: refused, never loaded."""


def torch_load(path: str | Path) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, with errors that name the file and
    say what is wrong with it: missing, empty, truncated, not a PyTorch file, or asking to
    unpickle arbitrary objects (refused, never loaded unsafely)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file" if not path.exists() else f"{path}: not a file"
        )
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise ValueError(f"{path}: empty file (0 bytes), not a checkpoint")
    if head == b"PK\x03\x04":
        check_archive_sizes(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        asked = re.search(r"GLOBAL ([\w.]+)", str(error))
        if asked:
            raise RefusedCheckpoint(
                f"{path}: refused, it asks to unpickle {asked[1]} (only tensors and plain "
                "containers are loaded)"
            ) from None
        raise ValueError(
            f"{path}: not a PyTorch checkpoint: torch.save did not write it ({_first_line(error)})"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError, IndexError, KeyError) as error:
        raise ValueError(
            f"{path}: truncated or not a PyTorch checkpoint "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from None


def check_archive_sizes(path: Path) -> None:
    """ValueError naming `path` unless it is a complete zip archive whose entries, as its
    directory declares them, add up to no more than the file: torch.save stores entries
    uncompressed, so a larger total is a compressed archive that would expand (a 1 MB file
    can declare 1 GB) and is refused before anything is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ValueError(
            f"{path}: truncated checkpoint (an incomplete zip archive: was the copy or the "
            "write cut short, by a full disk say?)"
        ) from None
    size = path.stat().st_size
    if declared > size:
        raise ValueError(
            f"{path}: refused, its entries declare {declared:,} bytes in a {size:,}-byte file "
            "(compressed; torch.save writes uncompressed archives)"
        )


def _first_line(error: BaseException) -> str:
    """The informative line of a loader error (torch's weights-only errors are long)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from `path` (`torch_load`: weights only, arbitrary objects refused)."""
    data = torch_load(path)
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
