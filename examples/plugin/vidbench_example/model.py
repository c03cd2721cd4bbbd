"""Tiny3D: two 3D convolutions and a linear head, the smallest network that sees motion.

It keeps the contract every vidbench architecture keeps: `num_classes` first, an
`input_spec` ClipSpec declaring what it is fed, a forward on the batch dict, and
`get_classifier()` / `reset_classifier(num_classes)`.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec


class Tiny3D(nn.Module):
    """`rgb` (B, 3, T, H, W) in [-1, 1] -> logits (B, num_classes)."""

    # what a sweep feeds it unless told otherwise: 16 frames, 112 px crops, one test clip
    input_spec = ClipSpec(modalities=("rgb",), clip_len=16, crop_size=112)
    rgb_motion = "local"  # its 3D kernels see neighbouring frames (the sanity check reads this)

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> None:
        """num_classes: classes of the head; width: channel multiplier; dropout: before
        the head."""
        super().__init__()
        channels = max(4, round(32 * width))
        self.features = nn.Sequential(
            nn.Conv3d(3, channels, 3, padding=1, bias=False),  # (B, C, T, H, W)
            nn.BatchNorm3d(channels),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 2, 2)),  # (B, C, T, H/2, W/2)
            nn.Conv3d(channels, 2 * channels, 3, padding=1, bias=False),
            nn.BatchNorm3d(2 * channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool3d(1),  # (B, 2C, 1, 1, 1)
            nn.Flatten(),  # (B, 2C)
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(2 * channels, num_classes)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.features(inputs["rgb"]))  # (B, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.head.in_features, num_classes)
