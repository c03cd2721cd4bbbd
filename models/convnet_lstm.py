"""ConvNet+LSTM, SPEC 1a: Inception-v1 features per frame -> BN -> LSTM (512) -> FC.

Trained with cross-entropy on every time step's output (`training_logits`); at test time
only the last frame's output counts (`forward`). 25 RGB frames, 1 of every 5 at 25 fps.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.backbones import create_backbone, per_frame
from vidbench.models.registry import register_model


@register_model("convnet_lstm")
class ConvNetLSTM(nn.Module):
    """`rgb` (B, 3, T, H, W) -> logits (B, num_classes) of the last time step."""

    # trained on 25 frames 1 in 5 (5 s); tested on 50 (10 s), the last step's output (SPEC 1a)
    imagenet_option = "backbone_weights"
    input_spec = ClipSpec(
        modalities=("rgb",), clip_len=25, frame_interval=5, crop_size=224, test_clip_len=50
    )
    rgb_motion = "pooled"

    def __init__(
        self,
        num_classes: int,
        backbone: str = "inception_v1",
        width: float = 1.0,
        hidden: int = 512,
        dropout: float = 0.5,
        backbone_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, 3, width, backbone_weights)
        features = self.backbone.num_features
        self.norm = nn.BatchNorm1d(features)
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def training_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits at every time step: (B, T, num_classes)."""
        features = per_frame(self.backbone, inputs["rgb"]).mean(dim=(-2, -1))  # (B, T, F)
        sequence = self.norm(features.flatten(0, 1)).view_as(features)
        hidden, _ = self.lstm(sequence)  # (B, T, hidden)
        return self.fc(self.dropout(hidden))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.training_logits(inputs)[:, -1]

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc.in_features, num_classes)
