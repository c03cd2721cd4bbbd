"""Frame-index samplers: which source frames make each temporal view of a video.

Sampling happens on the video re-timed to `target_fps` (docs/protocol.md 2: 25 fps): a 30 fps video
is resampled by index, never decoded twice. A clip is `clip_len` frames taken every
`frame_interval` re-timed frames; a video shorter than the clip is looped.
Randomness uses torch's global generator, which Lightning's `seed_everything(workers=True)`
and the DataLoader seed per worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SAMPLING_MODES = ("train", "val", "test", "block", "full")


@dataclass(frozen=True)
class ClipSampler:
    """How to sample clips.

    mode: `train` one random clip; `val` one centre clip; `test` `num_clips` evenly spaced
      clips; `block` `num_clips` clips back to back, the block centred in the video (C3D's
      240 frames as 15 consecutive 16-frame clips); `full` every re-timed frame (at least
      `clip_len`, looping), for models that run convolutionally over the whole video.
    target_fps: None keeps the native frame rate.
    """

    mode: str = "train"
    clip_len: int = 16
    frame_interval: int = 1
    num_clips: int = 1
    target_fps: float | None = 25.0

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode {self.mode!r} is not one of {SAMPLING_MODES}")
        for name in ("clip_len", "frame_interval", "num_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"target_fps must be positive or None, got {self.target_fps}")

    @property
    def num_views(self) -> int:
        return self.num_clips if self.mode in ("test", "block") else 1

    @property
    def span(self) -> int:
        """Re-timed frames one clip covers."""
        return (self.clip_len - 1) * self.frame_interval + 1

    def __call__(self, num_frames: int, fps: float, view: int = 0) -> np.ndarray:
        """Source frame indices (int64, in [0, num_frames)) of temporal view `view`."""
        timeline = retime(num_frames, fps, self.target_fps)
        return timeline[self.positions(len(timeline), view)]

    def positions(self, n: int, view: int = 0) -> np.ndarray:
        """Positions of view `view` on a re-timed timeline of `n` frames (looped if short).

        Modalities sampled at the same positions (RGB frames, flow fields) stay aligned.
        """
        if self.mode == "full":
            return np.arange(max(n, self.clip_len)) % n
        if self.mode == "block":
            if not 0 <= view < self.num_clips:
                raise IndexError(f"view {view} out of range for {self.num_clips} clips")
            step = self.clip_len * self.frame_interval  # one clip after the other
            start = max(n - (self.num_clips * step - self.frame_interval + 1), 0) // 2
            return (start + view * step + np.arange(self.clip_len) * self.frame_interval) % n
        start = self._start(n, view)
        return (start + np.arange(self.clip_len) * self.frame_interval) % n

    def span_positions(self, n: int, start: int, end: int) -> np.ndarray:
        """Positions of every `frame_interval`-th frame of [start, end) (at least one) on a
        re-timed timeline of `n` frames, looped if the video is shorter: the frames a
        window of a whole video gives a model (`vidbench predict`)."""
        return np.arange(start, max(end, start + 1), self.frame_interval) % n

    def _start(self, n: int, view: int) -> int:
        slack = n - self.span
        if self.mode == "train":
            import torch  # here, so that `vidbench --help` and `flow extract` do not load it

            return int(torch.randint(0, slack + 1, ()).item()) if slack > 0 else 0
        if self.mode == "val" or self.num_clips == 1:
            return max(slack, 0) // 2
        if not 0 <= view < self.num_clips:
            raise IndexError(f"view {view} out of range for {self.num_clips} clips")
        if slack >= 0:
            return round(view * slack / (self.num_clips - 1))
        return view * n // self.num_clips  # short video: spread the looped starts


def retime(num_frames: int, fps: float, target_fps: float | None) -> np.ndarray:
    """Source frame index of each frame of the video played at `target_fps`.

    A 30 fps, 60-frame video at 25 fps gives 50 indices [0, 1, 2, 3, 4, 6, ...].
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if target_fps is None or math.isclose(fps, target_fps, rel_tol=1e-3):
        return np.arange(num_frames)
    count = max(1, math.floor(num_frames * target_fps / fps + 1e-6))
    source = np.floor(np.arange(count) * (fps / target_fps) + 1e-6).astype(np.int64)
    return np.minimum(source, num_frames - 1)
