"""Frame averaging: a 2D backbone on single frames, scores averaged over time.

The control that sees no motion: on the synthetic-motion data it must sit at chance.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.registry import register_model
from vidbench.models.two_stream import FrameClassifier


@register_model("frame_avg")
class FrameAverage(nn.Module):
    """`rgb` (B, 3, T, H, W) -> logits (B, num_classes), the mean of per-frame logits."""

    # the ConvNet+LSTM's input, without its recurrence: tested on 50 frames 1 in 5 as it is
    imagenet_option = "backbone_weights"
    input_spec = ClipSpec(
        modalities=("rgb",), clip_len=25, frame_interval=5, crop_size=224, test_clip_len=50
    )

    def __init__(
        self,
        num_classes: int,
        backbone: str = "inception_v1",
        width: float = 1.0,
        dropout: float = 0.5,
        backbone_weights: str | None = None,
    ) -> None:
        """num_classes: classes of the head; backbone: `inception_v1` or a timm model;
        width: channel multiplier; dropout: before the head; backbone_weights: ImageNet
        weights of the trunk."""
        super().__init__()
        self.frames = FrameClassifier(num_classes, 3, backbone, width, dropout, backbone_weights)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.frames(inputs["rgb"]).mean(dim=1)

    def get_classifier(self) -> nn.Module:
        return self.frames.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.frames.reset_classifier(num_classes)
