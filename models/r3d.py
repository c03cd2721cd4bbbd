"""3D-ResNet of Hara et al. (depth 18 or 34), the Kinetics model of OpenCV's
activity-recognition sample. The 18-layer version has torchvision's `r3d_18` layout and
state-dict keys (33,371,472 parameters at 400 classes), so its weights load.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.inception import scaled
from vidbench.models.registry import register_model

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def conv_bn(in_ch: int, out_ch: int, kernel, stride, padding, relu: bool) -> nn.Sequential:
    layers = [nn.Conv3d(in_ch, out_ch, kernel, stride, padding, bias=False), nn.BatchNorm3d(out_ch)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_ch, out_ch, 3, stride, 1, relu=True)
        self.conv2 = conv_bn(out_ch, out_ch, 3, 1, 1, relu=False)
        self.downsample = (
            conv_bn(in_ch, out_ch, 1, stride, 0, relu=False)
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv2(self.conv1(x)) + shortcut)


@register_model("r3d")
class R3D(nn.Module):
    """`rgb` (B, 3, T, H, W) -> logits (B, num_classes); 16x112x112 clips by default."""

    # tested as C3D: 15 consecutive 16-frame clips, predictions averaged
    input_spec = ClipSpec(
        modalities=("rgb",), clip_len=16, crop_size=112, test_clips=15, test_layout="consecutive"
    )
    rgb_motion = "local"

    def __init__(self, num_classes: int, depth: int = 18, width: float = 1.0) -> None:
        """num_classes: classes of the head; depth: 18 (torchvision's r3d_18 layout) or 34;
        width: channel multiplier (tiny CPU configurations)."""
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"r3d depth {depth} is not one of {sorted(DEPTHS)}")
        widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = conv_bn(3, widths[0], (3, 7, 7), (1, 2, 2), (1, 3, 3), relu=True)
        in_ch = widths[0]
        for index, (blocks, out_ch) in enumerate(zip(DEPTHS[depth], widths, strict=True), start=1):
            stride = 1 if index == 1 else 2
            layer = [BasicBlock(in_ch, out_ch, stride)] + [
                BasicBlock(out_ch, out_ch, 1) for _ in range(blocks - 1)
            ]
            self.add_module(f"layer{index}", nn.Sequential(*layer))
            in_ch = out_ch
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.stem(inputs["rgb"])
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, T/8, H/16, W/16)
        return self.fc(self.avgpool(x).flatten(1))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc.in_features, num_classes)
