"""A reference I3D in the pytorch-i3d layout (keys `Conv3d_1a_7x7.conv3d.weight`,
`Mixed_3b.b1b.bn.running_mean`, `logits.conv3d.bias`; TF "SAME" padding computed per
call; a fixed 2x7x7 average pool; logits per time step). Written for the import-parity
test from the published layout, independently of vidbench's own I3D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def compute_pad(size: int, kernel: int, stride: int) -> int:
    return max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)


def pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        total = compute_pad(size, k, s)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    def __init__(
        self, in_ch, out_ch, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, relu=True, bias=False
    ):
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_ch, out_ch, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_ch, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x):
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.MaxPool3d):
    def forward(self, x):
        return super().forward(pad_same(x, self.kernel_size, self.stride))


class InceptionModule(nn.Module):
    def __init__(self, in_ch, c):
        super().__init__()
        self.b0 = Unit3D(in_ch, c[0])
        self.b1a = Unit3D(in_ch, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(in_ch, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_ch, c[5])

    def forward(self, x):
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


class InceptionI3d(nn.Module):
    def __init__(self, num_classes=400, in_channels=3):
        super().__init__()
        layers = [
            ("Conv3d_1a_7x7", Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))),
            ("MaxPool3d_2a_3x3", MaxPoolSame((1, 3, 3), (1, 2, 2))),
            ("Conv3d_2b_1x1", Unit3D(64, 64)),
            ("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3))),
            ("MaxPool3d_3a_3x3", MaxPoolSame((1, 3, 3), (1, 2, 2))),
            ("Mixed_3b", InceptionModule(192, [64, 96, 128, 16, 32, 32])),
            ("Mixed_3c", InceptionModule(256, [128, 128, 192, 32, 96, 64])),
            ("MaxPool3d_4a_3x3", MaxPoolSame((3, 3, 3), (2, 2, 2))),
            ("Mixed_4b", InceptionModule(480, [192, 96, 208, 16, 48, 64])),
            ("Mixed_4c", InceptionModule(512, [160, 112, 224, 24, 64, 64])),
            ("Mixed_4d", InceptionModule(512, [128, 128, 256, 24, 64, 64])),
            ("Mixed_4e", InceptionModule(512, [112, 144, 288, 32, 64, 64])),
            ("Mixed_4f", InceptionModule(528, [256, 160, 320, 32, 128, 128])),
            ("MaxPool3d_5a_2x2", MaxPoolSame((2, 2, 2), (2, 2, 2))),
            ("Mixed_5b", InceptionModule(832, [256, 160, 320, 32, 128, 128])),
            ("Mixed_5c", InceptionModule(832, [384, 192, 384, 48, 128, 128])),
        ]
        self.names = [name for name, _ in layers]
        for name, layer in layers:
            self.add_module(name, layer)
        self.avg_pool = nn.AvgPool3d((2, 7, 7), (1, 1, 1))
        self.logits = Unit3D(1024, num_classes, bn=False, relu=False, bias=True)

    def forward(self, x):
        for name in self.names:
            x = getattr(self, name)(x)
        return self.logits(self.avg_pool(x)).squeeze(3).squeeze(3)  # (B, classes, T')
