"""Two-Stream, docs/protocol.md 1c: two 2D Inception-v1 replicas, one on an RGB frame, one
on a stack of 10 flow fields (20 input channels); their predictions are averaged. Several snapshots
(time steps) of a clip are each classified and averaged too, end to end.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.backbones import create_backbone, per_frame
from vidbench.models.registry import register_model

FLOW_STACK = 10


class FrameClassifier(nn.Module):
    """A 2D backbone + average pool + dropout + FC applied to every time step.

    (B, C, T, H, W) -> per-step logits (B, T, num_classes).
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int,
        backbone: str,
        width: float,
        dropout: float,
        weights: str | None,
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, in_chans, width, weights)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.backbone.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = per_frame(self.backbone, x).mean(dim=(-2, -1))  # (B, T, F)
        return self.fc(self.dropout(features))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc.in_features, num_classes)


@register_model("two_stream")
class TwoStream(nn.Module):
    """`rgb` (B, 3, T, H, W) and `flow` (B, 2*flow_stack, T, H, W) -> logits (B, num_classes)."""

    # tested on 25 RGB frames evenly spaced over the video, each with its flow stack (250
    # flow fields), predictions averaged (docs/protocol.md 1c)
    imagenet_option = "backbone_weights"
    input_spec = ClipSpec(
        modalities=("rgb", "flow"),
        clip_len=1,
        crop_size=224,
        flow_stack=FLOW_STACK,
        test_clips=25,
    )

    def __init__(
        self,
        num_classes: int,
        modalities: tuple[str, ...] = ("rgb", "flow"),
        backbone: str = "inception_v1",
        width: float = 1.0,
        dropout: float = 0.5,
        flow_stack: int = FLOW_STACK,
        backbone_weights: str | None = None,
    ) -> None:
        """num_classes: classes of each stream's head; modalities: rgb, flow or both (their
        predictions averaged); backbone: `inception_v1` or a timm model; width: channel
        multiplier; dropout: before the heads; flow_stack: flow fields a time step (the
        paper's 10); backbone_weights: ImageNet weights of the trunks."""
        super().__init__()
        if not modalities or set(modalities) - {"rgb", "flow"}:
            raise ValueError(
                f"two_stream modalities {tuple(modalities)} must be drawn from ('rgb', 'flow')"
            )
        self.modalities = tuple(modalities)
        self.input_spec = self.input_spec.replace(modalities=self.modalities, flow_stack=flow_stack)
        channels = {"rgb": 3, "flow": 2 * flow_stack}
        self.streams = nn.ModuleDict(
            {
                m: FrameClassifier(
                    num_classes, channels[m], backbone, width, dropout, backbone_weights
                )
                for m in self.modalities
            }
        )

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        per_stream = [
            self.streams[m](inputs[m]).mean(dim=1) for m in self.modalities
        ]  # snapshots averaged
        return torch.stack(per_stream).mean(dim=0)  # streams averaged

    def get_classifier(self) -> nn.Module:
        return nn.ModuleDict({m: stream.fc for m, stream in self.streams.items()})

    def reset_classifier(self, num_classes: int) -> None:
        for stream in self.streams.values():
            stream.reset_classifier(num_classes)
