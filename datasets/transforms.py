"""Clip transforms (docs/protocol.md 2). In the DataLoader worker, on uint8 frames: the
crop box, shrunk when it is larger than the crop (`ClipTransform`). On the model's device,
after the batch is transferred: a smaller box enlarged, the flip, float and [-1, 1]
(`to_model_input`).

"Resize the shorter side to 256, then crop 224" is computed as one step: the crop box is
chosen in source pixels (its side is crop_size * shorter_side / short_side: 210 px for a
240-line UCF-101 video, 224 for a 256-line one, 315 for 360 lines) and only that box is
resized to crop_size. Same geometry, a fraction of the work. Where the resize happens
depends on its direction:
- a box larger than the crop is shrunk in the worker (area averaging, OpenCV on uint8), so
  a sample never holds more than crop x crop pixels a frame;
- a box the crop's size is copied as it is;
- a box smaller than the crop (a video under 256 lines) is shipped at its own size in the
  top-left corner of the crop-sized array (`box` says its side) and enlarged on the device
  (bilinear, half-pixel centres like OpenCV's), which keeps the worker at decode speed.
Crop and flip are drawn once per sample (`CropParams`) so every modality of a sample gets
the same ones; the flip travels with the sample (`flip`) and is applied on the device.
Flow values stay in the units they were stored in (pixels of the frame at a shorter side
of at most 256, `flow.UNITS`); they are not rescaled with the box.

Samples leave the workers as uint8, a quarter of the bytes of float32, and the copy to a
GPU is 4x smaller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidbench.datasets.flow import QUANT_LEVELS

CROP_MODES = ("random", "center", "three")


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
        """RGB: uint8 (T, H, W, 3) -> uint8 (T, crop_size, crop_size, 3) holding the box at
        `shipped_size(params)` in its top-left corner. Not flipped: `params.flip` goes with
        the sample and `to_model_input` flips."""
        return self._crop(frames, params)

    def flow(self, fields: np.ndarray, params: CropParams) -> torch.Tensor:
        """Quantised flow (see datasets.flow): uint8 (N, H, W, 3) -> uint8 (N, crop, crop, 2),
        (dx, dy) as stored, laid out like `__call__`'s. `to_model_input` dequantises,
        stacks, enlarges and flips (negating dx)."""
        return self._crop(fields[..., :2], params)

    def shipped_size(self, params: CropParams) -> int:
        """The side of the box as a sample holds it: shrunk to the crop, or as it is."""
        return min(params.size, self.crop_size)

    def _crop(self, frames: np.ndarray, params: CropParams) -> torch.Tensor:
        box = frames[
            :, params.top : params.top + params.size, params.left : params.left + params.size
        ]
        crop = self.crop_size
        if params.size < crop:  # enlarged on the device: ship it as it is, zero-padded
            size = params.size
            out = np.empty((len(frames), crop, crop, frames.shape[-1]), np.uint8)
            out[:, :size, :size] = box
            out[:, size:] = 0  # only the margins are zeroed (np.zeros would zero all)
            out[:, :size, size:] = 0
        elif params.size == crop:
            out = np.ascontiguousarray(box)
        else:
            out = np.empty((len(frames), crop, crop, frames.shape[-1]), np.uint8)
            for t, frame in enumerate(box):  # written in place; 2-channel flow works too
                cv2.resize(frame, (crop, crop), dst=out[t], interpolation=cv2.INTER_AREA)
        return torch.from_numpy(out)


def to_model_input(batch: dict[str, Any], flow_stack: int = 1) -> dict[str, Any]:
    """The batch as the workers ship it -> what models take, on the batch's own device.

    rgb:  uint8 (B, T, H, W, 3) -> float32 (B, 3, T, H, W), v / 127.5 - 1 (the float32
          nearest to it), in [-1, 1]
    flow: uint8 (B, T * flow_stack, H, W, 2) -> float32 (B, 2 * flow_stack, T, H, W),
          (q - 128) / 127 clipped to [-1, 1] (units of the flow bound), channels (dx0, dy0,
          dx1, ...), field t * flow_stack + s at channel pair s of step t
    box:  int (B,), removed: clip i holds its crop box in its top-left box[i] x box[i]
          pixels; a box smaller than H x W is enlarged to it (bilinear)
    flip: bool (B,), removed: those clips are mirrored left-right (and their dx negated)
    Float tensors are left as they are (already converted). Other keys pass through.
    """
    out = dict(batch)
    flip, box = out.pop("flip", None), out.pop("box", None)
    rgb, flow = out.get("rgb"), out.get("flow")
    clips = rgb if rgb is not None else flow
    if flip is not None:  # one device sync for the batch; None when no clip is mirrored
        flip = flip.to(clips.device) if clips is not None and bool(flip.any()) else None
    if rgb is not None and rgb.dtype == torch.uint8:
        b, t, h, w, c = rgb.shape
        x = torch.empty((b, c, t, h, w), dtype=torch.float32, device=rgb.device)
        # (2v - 255) / 255: one rounding, so the float32 nearest to v / 127.5 - 1, exactly
        x.copy_(rgb.permute(0, 4, 1, 2, 3)).mul_(2).sub_(255).div_(255)
        out["rgb"] = _flip(_enlarge(x, box), flip)
    if flow is not None and flow.dtype == torch.uint8:
        b, n, h, w, _ = flow.shape
        if n % flow_stack:
            raise ValueError(f"flow holds {n} fields, not a multiple of flow_stack {flow_stack}")
        x = torch.empty(
            (b, flow_stack, 2, n // flow_stack, h, w), dtype=torch.float32, device=flow.device
        )
        x.copy_(flow.view(b, n // flow_stack, flow_stack, h, w, 2).permute(0, 2, 5, 1, 3, 4))
        x = x.view(b, 2 * flow_stack, n // flow_stack, h, w).sub_(128).div_(QUANT_LEVELS)
        x = _flip(_enlarge(x.clamp_(-1, 1), box), flip)
        if flip is not None:
            x[flip, 0::2] *= -1  # dx of a mirrored clip
        out["flow"] = x
    return out


def _enlarge(x: torch.Tensor, box: torch.Tensor | None) -> torch.Tensor:
    """Clips of `x` (B, C, T, H, W) whose content is a smaller top-left box (`box`, (B,))
    resized to H x W, bilinearly with half-pixel centres (as OpenCV's INTER_LINEAR)."""
    if box is None:
        return x
    c, t, h, w = x.shape[1:]
    box = box.to(x.device)
    for side in box.unique().tolist():
        if side >= min(h, w):
            continue
        group = box == side
        every = bool(group.all())  # the usual case (one source size): no gather or scatter
        part = (x if every else x[group])[..., :side, :side].reshape(-1, c * t, side, side)
        part = F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False)
        if every:
            return part.view(-1, c, t, h, w)
        x[group] = part.view(-1, c, t, h, w)
    return x


def _flip(x: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    """Mirror left-right the clips of `x` (B, C, T, H, W) where `flip` (B,, on x's device)
    is set; None: none is."""
    if flip is not None:
        x[flip] = x[flip].flip(-1)
    return x
