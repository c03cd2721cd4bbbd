"""3D-ConvNet, docs/protocol.md 1b: the C3D variant of the paper.

8 conv layers (3x3x3), 5 max pools, 2 fully connected layers, BatchNorm after every conv
and FC layer; the first pool has temporal stride 2 (original C3D: 1). Trained from
scratch on 16x112x112 clips: 79.6M parameters at 400 classes, 78.4M at 101. The last
pool is adaptive (to 1x4x4, its size at 16x112x112), so other clip sizes work too.
`pool1_time_stride=1` gives the original C3D (38.5 GMACs a 16x112x112 clip; this variant
about half of that).
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.inception import scaled
from vidbench.models.registry import register_model


def conv_bn(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_ch),
        nn.ReLU(inplace=True),
    )


def fc_bn(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, out_features),
        nn.BatchNorm1d(out_features),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


@register_model("c3d")
class C3D(nn.Module):
    """`rgb` (B, 3, T, H, W) -> logits (B, num_classes)."""

    # tested on 240 frames as 15 consecutive 16-frame clips, predictions averaged
    # (docs/protocol.md 1b)
    input_spec = ClipSpec(
        modalities=("rgb",), clip_len=16, crop_size=112, test_clips=15, test_layout="consecutive"
    )
    rgb_motion = "local"

    def __init__(
        self, num_classes: int, width: float = 1.0, dropout: float = 0.5, pool1_time_stride: int = 2
    ) -> None:
        """num_classes: classes of the head; width: channel multiplier (tiny CPU
        configurations); dropout: before each fully connected layer; pool1_time_stride: 2,
        the paper's variant, or 1, the original C3D."""
        super().__init__()
        c = lambda n: scaled(n, width)  # noqa: E731
        pool = lambda: nn.MaxPool3d(2, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            conv_bn(3, c(64)),
            nn.MaxPool3d(
                (pool1_time_stride, 2, 2), (pool1_time_stride, 2, 2), ceil_mode=True
            ),  # paper 2, C3D 1
            conv_bn(c(64), c(128)),
            pool(),
            conv_bn(c(128), c(256)),
            conv_bn(c(256), c(256)),
            pool(),
            conv_bn(c(256), c(512)),
            conv_bn(c(512), c(512)),
            pool(),
            conv_bn(c(512), c(512)),
            conv_bn(c(512), c(512)),
            nn.AdaptiveMaxPool3d((1, 4, 4)),  # pool5: 1x4x4 at 16x112x112
        )
        self.classifier = nn.Sequential(
            fc_bn(c(512) * 16, c(4096), dropout),
            fc_bn(c(4096), c(4096), dropout),
            nn.Linear(c(4096), num_classes),
        )

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.features(inputs["rgb"])  # (B, 512, 1, 4, 4)
        return self.classifier(x.flatten(1))

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier[-1] = nn.Linear(self.classifier[-1].in_features, num_classes)
