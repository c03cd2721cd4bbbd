"""3D-Fused Two-Stream (paper, section 2.4): two 2D Inception-v1 trunks on 5 RGB frames 10
apart and their flow stacks; the grids before the last average pool (1024 x 7 x 7 a
frame) of both streams are stacked over time and concatenated, then a 3x3x3 conv with 512
outputs (BN, ReLU), a 3x3x3 max pool (stride 2) and a fully connected layer, on
average-pooled features. New layers start from Gaussian noise. 39.5M parameters plus the
classifier. `modalities=("rgb",)` or `("flow",)` keeps one trunk, whose grid alone is
fused: the single-stream rows of the paper's Table 2.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.backbones import create_backbone, per_frame
from vidbench.models.inception import scaled
from vidbench.models.registry import register_model
from vidbench.models.two_stream import FLOW_STACK


@register_model("fused_two_stream")
class FusedTwoStream(nn.Module):
    """`rgb` (B, 3, T, H, W) and `flow` (B, 2*flow_stack, T, H, W) -> logits (B, num_classes)."""

    # tested on 25 RGB frames and 250 flow fields as 5 windows of 5 frames 10 apart, spread
    # over the video, predictions averaged (paper, Table 1)
    imagenet_option = "backbone_weights"
    auto_modalities = ("rgb+flow",)  # what `modality: auto` runs: the two-stream network
    input_spec = ClipSpec(
        modalities=("rgb", "flow"),
        clip_len=5,
        frame_interval=10,
        crop_size=224,
        flow_stack=FLOW_STACK,
        test_clips=5,
    )
    rgb_motion = "local"  # a 3D conv over per-frame feature grids

    def __init__(
        self,
        num_classes: int,
        backbone: str = "inception_v1",
        width: float = 1.0,
        dropout: float = 0.5,
        flow_stack: int = FLOW_STACK,
        backbone_weights: str | None = None,
        modalities: tuple[str, ...] = ("rgb", "flow"),
    ) -> None:
        """num_classes: classes of the head; backbone: `inception_v1` or a timm model;
        width: channel multiplier (tiny CPU configurations); dropout: before the head;
        flow_stack: flow fields a time step; backbone_weights: ImageNet weights of the
        trunks (a torchvision googlenet state dict); modalities: the trunks to fuse."""
        super().__init__()
        self.modalities = tuple(modalities)
        if not self.modalities or not set(self.modalities) <= {"rgb", "flow"}:
            raise ValueError(f"modalities {self.modalities}: rgb, flow or both")
        self.input_spec = self.input_spec.replace(flow_stack=flow_stack, modalities=self.modalities)
        channels = {"rgb": 3, "flow": 2 * flow_stack}
        for modality in self.modalities:  # self.rgb, self.flow
            setattr(
                self,
                modality,
                create_backbone(backbone, channels[modality], width, backbone_weights),
            )
        features = sum(getattr(self, m).num_features for m in self.modalities)
        fused = scaled(512, width)
        self.fusion = nn.Sequential(
            nn.Conv3d(features, fused, 3, padding=1, bias=False),
            nn.BatchNorm3d(fused),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(3, 2, padding=1),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(fused, num_classes)
        for module in (*self.fusion, self.fc):
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.normal_(module.weight, std=0.01)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        grids = [per_frame(getattr(self, m), inputs[m]) for m in self.modalities]
        x = torch.cat(grids, dim=2).transpose(1, 2)  # (B, F_rgb + F_flow, T, h, w)
        x = self.fusion(x)  # (B, 512, 3, 4, 4) for 5 frames at 224
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
