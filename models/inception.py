"""Inception-v1 with BatchNorm, in 2D and 3D, from one set of blocks.

The 2D trunk has torchvision `googlenet`'s layout and state-dict keys (`conv1.conv.weight`,
`inception3a.branch2.1.bn.running_mean`, ...), so its ImageNet weights (ported from
TF-slim, which expects inputs in [-1, 1], as vidbench's data are) load as they are. The 3D
trunk (I3D, docs/protocol.md 1e) uses the same keys with every NxN kernel NxNxN and
TensorFlow "SAME" padding, as the DeepMind release does, so a 2D state dict inflates key
by key.
The "5x5" branch uses 3x3 kernels, as TF-slim's Inception-v1 does.

3D padding: `tf_same` (default) pads with zeros as TensorFlow's SAME does, which
imported I3D weights need; `torchvision` pads space exactly as the 2D net does and time
by repeating the edge frames, so an inflated net sees a "boring" video (one image
repeated) exactly as the 2D net sees the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# name, in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj  (torchvision googlenet)
INCEPTION_BLOCKS = [
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]
POOL_BEFORE = {"inception4a": "maxpool3", "inception5a": "maxpool4"}
FEATURES = 1024


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier (at least 1)."""
    return max(1, round(channels * width))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (front, back) for one dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


PADDINGS = ("tf_same", "torchvision")


class SamePad3d(nn.Module):
    """Pads (B, C, T, H, W) so that a following op with `kernel`/`stride` acts as TF SAME;
    `time_only` pads only T, repeating the edge frames."""

    def __init__(
        self, kernel: tuple[int, int, int], stride: tuple[int, int, int], time_only: bool = False
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.time_only = kernel, stride, time_only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_only:
            front, back = same_padding(x.shape[2], self.kernel[0], self.stride[0])
            return F.pad(x, [0, 0, 0, 0, front, back], mode="replicate") if front or back else x
        pads = [
            same_padding(s, k, st)
            for s, k, st in zip(x.shape[2:], self.kernel, self.stride, strict=True)
        ]
        return F.pad(x, [p for pair in reversed(pads) for p in pair])


def triple(value: int | tuple[int, ...]) -> tuple[int, int, int]:
    return (value,) * 3 if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


class BasicConv(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; keys `conv`, `bn` as torchvision."""

    def __init__(
        self,
        dims: int,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple,
        stride: int | tuple = 1,
        padding: str = "tf_same",
    ) -> None:
        super().__init__()
        if dims == 2:
            self.pad = nn.Identity()
            self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
            self.bn = nn.BatchNorm2d(out_ch, eps=0.001)
        else:
            k = triple(kernel)
            time_only = padding == "torchvision"
            self.pad = SamePad3d(k, triple(stride), time_only)
            spatial = (0, k[1] // 2, k[2] // 2) if time_only else 0
            self.conv = nn.Conv3d(in_ch, out_ch, k, stride, padding=spatial, bias=False)
            self.bn = nn.BatchNorm3d(out_ch, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(self.pad(x))), inplace=True)


def max_pool(
    dims: int, kernel: int | tuple, stride: int | tuple, padding: str = "tf_same"
) -> nn.Module:
    """2D: torchvision's ceil-mode pools. 3D: TF SAME (zero padding after ReLU is harmless),
    or torchvision's spatial pooling with edge-repeating time padding."""
    k, st = triple(kernel), triple(stride)
    spatial = 1 if k[-1] == 3 and st[-1] == 1 else 0
    if dims == 2:
        return nn.MaxPool2d(kernel, stride, padding=spatial, ceil_mode=True)
    if padding == "tf_same":
        return nn.Sequential(SamePad3d(k, st), nn.MaxPool3d(k, st))
    return nn.Sequential(
        SamePad3d(k, st, time_only=True),
        nn.MaxPool3d(k, st, padding=(0, spatial, spatial), ceil_mode=True),
    )


class Inception(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1-3x3 | 1x1-3x3 | pool-1x1."""

    def __init__(
        self,
        dims: int,
        in_ch: int,
        c1: int,
        c3r: int,
        c3: int,
        c5r: int,
        c5: int,
        proj: int,
        padding: str = "tf_same",
    ) -> None:
        super().__init__()
        conv = lambda i, o, k: BasicConv(dims, i, o, k, padding=padding)  # noqa: E731
        self.branch1 = conv(in_ch, c1, 1)
        self.branch2 = nn.Sequential(conv(in_ch, c3r, 1), conv(c3r, c3, 3))
        self.branch3 = nn.Sequential(conv(in_ch, c5r, 1), conv(c5r, c5, 3))
        self.branch4 = nn.Sequential(max_pool(dims, 3, 1, padding), conv(in_ch, proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1
        )


class InceptionTrunk(nn.Module):
    """Inception-v1 up to (not including) the final average pool.

    2D: (B, C, H, W) -> (B, 1024w, H/32, W/32). 3D (I3D): (B, C, T, H, W) ->
    (B, 1024w, T/8, H/32, W/32), with the stem 7x7x7 stride 2 and the first two max pools
    1x3x3 stride 1x2x2 (no early temporal pooling), the later ones 3x3x3 and 2x2x2.
    """

    def __init__(
        self, dims: int = 2, in_chans: int = 3, width: float = 1.0, padding: str = "tf_same"
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding {padding!r} is not one of {PADDINGS}")
        w = lambda c: scaled(c, width)  # noqa: E731
        space = (1, 3, 3) if dims == 3 else 3
        space_stride = (1, 2, 2) if dims == 3 else 2
        self.conv1 = BasicConv(dims, in_chans, w(64), 7, stride=2, padding=padding)
        self.maxpool1 = max_pool(dims, space, space_stride, padding)
        self.conv2 = BasicConv(dims, w(64), w(64), 1, padding=padding)
        self.conv3 = BasicConv(dims, w(64), w(192), 3, padding=padding)
        self.maxpool2 = max_pool(dims, space, space_stride, padding)
        self.maxpool3 = max_pool(dims, 3, 2, padding)
        self.maxpool4 = max_pool(dims, 2, 2, padding)
        for name, *channels in INCEPTION_BLOCKS:
            self.add_module(name, Inception(dims, *(w(c) for c in channels), padding=padding))
        self.num_features = w(384) + w(384) + w(128) + w(128)  # inception5b's four branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        for name, *_ in INCEPTION_BLOCKS:
            if name in POOL_BEFORE:
                x = getattr(self, POOL_BEFORE[name])(x)
            x = getattr(self, name)(x)
        return x


class InceptionV1(InceptionTrunk):
    """2D Inception-v1 with BN (torchvision `googlenet` keys, without aux heads).

    (B, in_chans, H, W) in [-1, 1] -> logits (B, num_classes). `forward_features` gives the
    (B, 1024, H/32, W/32) grid before the average pool; `in_chans=20` makes the flow
    stream's first conv (10 flow frames x (dx, dy)).
    """

    def __init__(
        self, num_classes: int = 1000, in_chans: int = 3, width: float = 1.0, dropout: float = 0.2
    ) -> None:
        super().__init__(2, in_chans, width)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.avgpool(self.forward_features(x)).flatten(1)))
