"""Whole videos held decoded in memory, for splits small enough to hold.

A clip decode opens the file, seeks to the keyframe before the clip and decodes forward;
on a small dataset (the synthetic tasks: a few hundred 40-frame videos, each sampled some
50 times in a 1000-step run) that is most of a sample's cost. `DecodedVideoCache` decodes
each video whole the first time one of its clips is asked for and serves later clips from
the held frames. Decoders seek exactly, so a held frame is the frame a clip decode returns
(tested frame by frame): results do not change, only their cost.

It holds a split only when the whole split fits: the first video's size times the
number of videos (`entries`) must be within `budget_mb`, else it holds nothing and every
clip is decoded from disk, as without it (Kinetics, UCF-101). A video whose whole decode
fails (a truncated tail a clip never reaches) is served per clip. The frames held are per
process: each DataLoader worker fills its own copy, and a pickled cache (spawned workers)
travels empty.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vidbench.datasets.decoders import DecodeError, Video, open_video, read_frames

log = logging.getLogger(__name__)
DEFAULT_BUDGET_MB = 1024.0


class DecodedVideo:
    """A video held in memory: `frames` uint8 (num_frames, H, W, 3), the decoder's output."""

    def __init__(self, path: str, frames: np.ndarray, fps: float) -> None:
        self.path = path
        self.frames = frames
        self.num_frames = len(frames)
        self.fps = fps

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        return self.frames[np.asarray(indices, dtype=np.int64)]


class DecodedVideoCache:
    """Opens videos (`open`, as `decoders.open_video`), holding each one decoded whole
    while the split's `entries` videos fit in `budget_mb` (0 turns it off)."""

    def __init__(self, entries: int, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
        if budget_mb < 0:
            raise ValueError(f"decode cache budget must be >= 0 MB, got {budget_mb}")
        self.entries = entries
        self.budget_bytes = int(budget_mb * 2**20)
        self.admitting = budget_mb > 0 and entries > 0
        self.held_bytes = 0
        self._held: dict[str, DecodedVideo] = {}
        self._per_clip: set[str] = set()  # whole decode failed: served per clip

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_held": {}, "held_bytes": 0}

    def __len__(self) -> int:
        return len(self._held)

    def open(self, path: str | Path, backend: str = "decord", num_threads: int = 1) -> Video:
        """The held video, else the file opened; raises DecodeError as `open_video`."""
        key = str(path)
        held = self._held.get(key)
        if held is not None:
            return held
        video = open_video(path, backend, num_threads)
        if not self.admitting or key in self._per_clip:
            return video
        return self._admit(key, video)

    def _admit(self, key: str, video: Video) -> Video:
        """`video` decoded whole and held, if the split fits; else `video` itself. The size
        is judged from one decoded frame before the whole video is decoded."""
        try:
            frame_bytes = read_frames(video, np.array([0])).nbytes
        except DecodeError as error:
            return self._per_clip_from_now(key, video, error)
        size = frame_bytes * video.num_frames
        if not self._held and size * self.entries > self.budget_bytes:
            self.admitting = False
            log.info(
                "decode cache off: %d files of about %.2g MB (%s) exceed its %g MB; "
                "decoding each clip from disk",
                self.entries,
                size / 2**20,
                key,
                self.budget_bytes / 2**20,
            )
            return video
        if self.held_bytes + size > self.budget_bytes:  # larger videos than the first
            self.admitting = False
            log.info("decode cache full at %d files, %.0f MB", len(self), self.held_bytes / 2**20)
            return video
        try:
            frames = read_frames(video, np.arange(video.num_frames))
        except DecodeError as error:
            return self._per_clip_from_now(key, video, error)
        held = DecodedVideo(key, frames, video.fps)
        self._held[key] = held
        self.held_bytes += frames.nbytes
        return held

    def _per_clip_from_now(self, key: str, video: Video, error: DecodeError) -> Video:
        """`video` as opened, for a file that failed to decode here: it is not tried again
        (the clip decode says what is wrong)."""
        log.debug("%s: not held (%s); decoding it per clip", key, error.reason)
        self._per_clip.add(key)
        return video
