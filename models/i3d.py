"""Two-Stream Inflated 3D ConvNet (I3D), docs/protocol.md 1e: Inception-v1 inflated to 3D.

One class serves the RGB stream (3 input channels), the flow stream (2) and the
two-stream pair, whose per-stream logits are averaged. Each stream: the 3D Inception
trunk, a 2x7x7 average pool (smaller where the input is), dropout, a 1x1x1 conv giving
logits per time step, averaged over time, so any clip length and resolution works and
testing runs convolutionally over the whole video. About 12.7M parameters a stream at
400 classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.inception import InceptionTrunk
from vidbench.models.inflate import inflate_state_dict
from vidbench.models.registry import register_model

IN_CHANNELS = {"rgb": 3, "flow": 2}
BATCHNORMS = ("pytorch", "deepmind")


class I3DStream(nn.Module):
    """(B, C, T, H, W) -> per-time-step logits (B, num_classes, T')."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 3,
        width: float = 1.0,
        dropout: float = 0.5,
        padding: str = "tf_same",
    ) -> None:
        super().__init__()
        self.trunk = InceptionTrunk(3, in_chans, width, padding)
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Conv3d(self.trunk.num_features, num_classes, kernel_size=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> pooled features (B, 1024w, T', H', W'); T' = T/8 - 1 for T >= 16."""
        x = self.trunk(x)  # (B, 1024w, T/8, H/32, W/32)
        t, h, w = x.shape[2:]
        return F.avg_pool3d(x, (min(2, t), min(7, h), min(7, w)), stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.logits(self.dropout(self.features(x)))  # (B, classes, T', H', W')
        return x.mean(dim=(3, 4))  # (B, classes, T')

    def reset_classifier(self, num_classes: int) -> None:
        self.logits = nn.Conv3d(self.logits.in_channels, num_classes, kernel_size=1)


@register_model("i3d")
class I3D(nn.Module):
    """Inputs `rgb` (B, 3, T, H, W) and/or `flow` (B, 2, T, H, W) -> logits (B, num_classes)."""

    # tested on the whole video at once, convolutionally in time (docs/protocol.md 1e)
    input_spec = ClipSpec(modalities=("rgb",), clip_len=64, crop_size=224, full_video_test=True)
    imagenet_option = "inflate_from"
    streams_trained_apart = True  # rgb+flow: two streams trained apart, logits averaged
    rgb_motion = "local"

    def __init__(
        self,
        num_classes: int,
        modalities: tuple[str, ...] = ("rgb",),
        width: float = 1.0,
        dropout: float = 0.5,
        padding: str = "auto",
        inflate_from: str | None = None,
        batchnorm: str = "pytorch",
    ) -> None:
        """num_classes: classes of each stream's head; modalities: the streams, rgb and/or
        flow, each trained apart in a sweep; width: channel multiplier (tiny CPU
        configurations); dropout: before the logits.
        inflate_from: a 2D Inception-v1 state dict file (torchvision `googlenet` keys,
        ImageNet weights) that every stream starts from, inflated (docs/protocol.md 1e).
        padding: `auto` matches the weights being loaded: torchvision's (symmetric, with
        time padded by repeating edge frames) when inflating its 2D weights, so a boring
        video gives the 2D activations; TensorFlow SAME, DeepMind's, otherwise.
        batchnorm: `deepmind` is the release's (TF-slim's): no scale (fixed at 1, not
        trained), epsilon 1e-3, moving averages with decay 0.999 (PyTorch momentum 0.001),
        for weights imported from it; `pytorch` learns a scale, momentum 0.1."""
        super().__init__()
        if batchnorm not in BATCHNORMS:
            raise ValueError(f"I3D batchnorm {batchnorm!r} is not one of {BATCHNORMS}")
        if padding == "auto":
            padding = "torchvision" if inflate_from is not None else "tf_same"
        unknown = set(modalities) - set(IN_CHANNELS)
        if unknown or not modalities:
            raise ValueError(
                f"I3D modalities {tuple(modalities)} must be drawn from {tuple(IN_CHANNELS)}"
            )
        self.modalities = tuple(modalities)
        self.input_spec = self.input_spec.replace(modalities=self.modalities)
        self.streams = nn.ModuleDict(
            {
                m: I3DStream(num_classes, IN_CHANNELS[m], width, dropout, padding)
                for m in self.modalities
            }
        )
        if batchnorm == "deepmind":
            for module in self.modules():
                if isinstance(module, nn.BatchNorm3d):
                    module.eps, module.momentum = 1e-3, 1 - 0.999
                    nn.init.ones_(module.weight)
                    module.weight.requires_grad_(False)  # TF-slim's scale=False
        if inflate_from is not None:
            from vidbench.models.backbones import load_weights

            state = load_weights(inflate_from)
            for modality in self.modalities:
                self.load_2d(state, modality)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        per_stream = [
            self.streams[m](inputs[m]).mean(dim=2) for m in self.modalities
        ]  # (B, classes) each
        return torch.stack(per_stream).mean(dim=0)

    def get_classifier(self) -> nn.Module:
        return nn.ModuleDict({m: stream.logits for m, stream in self.streams.items()})

    def reset_classifier(self, num_classes: int) -> None:
        for stream in self.streams.values():
            stream.reset_classifier(num_classes)

    def load_2d(self, state: dict[str, torch.Tensor], modality: str = "rgb") -> None:
        """Bootstrap a stream from a 2D Inception-v1 state dict (torchvision `googlenet`
        keys): kernels inflated, the first conv averaged over input channels when they differ."""
        stream = self.streams[modality]
        state = dict(state)
        first = state.get("conv1.conv.weight")
        wanted = stream.trunk.conv1.conv.weight.shape[1]
        if first is not None and first.shape[1] != wanted:
            state["conv1.conv.weight"] = first.mean(dim=1, keepdim=True).repeat(1, wanted, 1, 1)
        trunk_state = {k: v for k, v in state.items() if not k.startswith(("fc.", "aux"))}
        stream.trunk.load_state_dict(inflate_state_dict(trunk_state, stream.trunk))
