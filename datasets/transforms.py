"""Clip transforms on uint8 frames: shorter side to `short_side`, crop, clip-consistent flip,
values to [-1, 1] (SPEC 2).

"Resize the shorter side to 256, then crop 224" is computed as one step: the crop box is
chosen in source pixels (its side is crop_size * shorter_side / short_side, 210 px for a
240-line UCF-101 video) and only that box is resized to crop_size, bilinearly (area
averaging when shrinking). Same geometry, a fraction of the work. Crop and flip are drawn
once per sample (`CropParams`) so every modality of a sample gets the same ones. Flow values
stay in source-pixel units (they are not rescaled with the box).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vidbench.datasets.flow import FLOW_UNIT, FLOW_UNIT_NEGATED

CROP_MODES = ("random", "center", "three")
UNIT_RANGE = (np.arange(256, dtype=np.float64) / 127.5 - 1).astype(
    np.float32
)  # uint8 -> [-1, 1], exact ends


@dataclass(frozen=True)
class CropParams:
    """A square crop box in source pixels, and whether the clip is flipped left-right."""

    top: int
    left: int
    size: int
    flip: bool = False


@dataclass(frozen=True)
class ClipTransform:
    """Shorter side to `short_side`, a `crop_size` square crop, optional flip, [-1, 1].

    crop: `random` (train), `center` (test), or `three`: left/top, centre and right/bottom
      crops along the longer side, picked by `crop_index` 0, 1, 2.
    flip: random left-right flip of the whole clip with probability 0.5.
    """

    short_side: int = 256
    crop_size: int = 224
    crop: str = "center"
    flip: bool = False

    def __post_init__(self) -> None:
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop {self.crop!r} is not one of {CROP_MODES}")
        if not 0 < self.crop_size <= self.short_side:
            raise ValueError(
                f"need 0 < crop_size <= short_side, got {self.crop_size} and {self.short_side}"
            )

    @property
    def num_crops(self) -> int:
        return 3 if self.crop == "three" else 1

    def box_size(self, height: int, width: int) -> int:
        """Side in source pixels of a crop_size crop taken after the shorter-side resize."""
        return max(1, round(self.crop_size * min(height, width) / self.short_side))

    def sample_params(self, height: int, width: int, crop_index: int = 0) -> CropParams:
        """Crop box for a source frame of `height` x `width`."""
        size = self.box_size(height, width)
        if self.crop == "random":
            top = int(torch.randint(0, height - size + 1, ()).item())
            left = int(torch.randint(0, width - size + 1, ()).item())
        elif self.crop == "center" or crop_index == 1:
            top, left = (height - size) // 2, (width - size) // 2
        else:
            end = crop_index == 2
            top = (height - size) * end if height > width else (height - size) // 2
            left = (width - size) * end if width >= height else (width - size) // 2
        flip = bool(self.flip and torch.rand(()).item() < 0.5)
        return CropParams(top, left, size, flip)

    def __call__(self, frames: np.ndarray, params: CropParams) -> torch.Tensor:
        """RGB: uint8 (T, H, W, 3) -> float32 (3, T, crop_size, crop_size) in [-1, 1]."""
        return self._crop_resize_lookup(frames, params, (UNIT_RANGE,) * 3)

    def flow(self, fields: np.ndarray, params: CropParams, stack: int = 1) -> torch.Tensor:
        """Quantised flow (see datasets.flow): uint8 (T * stack, H, W, 3), `stack` fields per
        time step -> float32 (2 * stack, T, crop, crop) in [-1, 1], channels (dx0, dy0, dx1,
        ...). A flipped clip has dx negated."""
        dx_table = FLOW_UNIT_NEGATED if params.flip else FLOW_UNIT
        out = self._crop_resize_lookup(fields, params, (dx_table, FLOW_UNIT))  # (2, T*stack, h, w)
        if stack == 1:
            return out
        _, steps, h, w = out.shape
        return (
            out.view(2, steps // stack, stack, h, w)
            .permute(2, 0, 1, 3, 4)
            .reshape(2 * stack, -1, h, w)
        )

    def _crop_resize_lookup(self, frames: np.ndarray, params: CropParams, tables) -> torch.Tensor:
        """Crop box, resize, flip, then channel c through lookup table c, into (C, T, h, w)."""
        box = frames[
            :, params.top : params.top + params.size, params.left : params.left + params.size
        ]
        out = np.empty((len(tables), len(frames), self.crop_size, self.crop_size), np.float32)
        size = (self.crop_size, self.crop_size)
        shrink = cv2.INTER_AREA if params.size > self.crop_size else cv2.INTER_LINEAR
        for t, frame in enumerate(box):
            frame = (
                cv2.resize(frame, size, interpolation=shrink)
                if params.size != self.crop_size
                else frame
            )
            if params.flip:
                frame = cv2.flip(frame, 1)
            planes = cv2.split(np.ascontiguousarray(frame))
            for c, table in enumerate(tables):
                cv2.LUT(planes[c], table, dst=out[c, t])  # straight into (C, T, H, W)
        return torch.from_numpy(out)
