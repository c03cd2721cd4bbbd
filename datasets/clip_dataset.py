"""One map-style clip dataset over decoded video files, and the accounting of bad videos.

Item i is one view (temporal clip x spatial crop) of one video. A sample is a dict:

    rgb:      uint8 (T, crop, crop, 3), the crop box (transforms)            (modality "rgb")
    flow:     uint8 (T * flow_stack, crop, crop, 2), stored (dx, dy) quantised (datasets.flow),
              field t from frame t to t+1, same crop as rgb                  (modality "flow")
    box:      int, the side of the box rgb and flow hold in their top-left corner (the crop
              size, or less when the box is enlarged on the device)
    flip:     bool, the clip is to be mirrored left-right (and dx negated)
    label:    int, 0-based class (-1 for an unlabelled test split)
    video_id: str, the file stem
    view:     int in [0, num_clips * num_crops)
    errors:   list of {"split", "path", "error", "action"} for videos that failed on the
              way; action is "substituted" (training) or "excluded" (evaluation)

A video that fails to decode (missing, empty, truncated, not a video, no frames, or a
decode that outlives `decode_timeout`) is replaced by another random video when
`substitute` is set (training); otherwise (evaluation) the sample carries only its
`errors` and `collate_clips` drops it. `transforms.to_model_input` turns a batch of these
into the float (B, C, T, H, W) inputs in [-1, 1] models take, on the model's device
(`VideoDataModule.on_after_batch_transfer`). The errors travel with the batch to the main
process, where `BadVideoLog` counts them: counts survive DataLoader worker processes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from vidbench.datasets.annotations import VideoRecord
from vidbench.datasets.decode_cache import DEFAULT_BUDGET_MB, DecodedVideoCache
from vidbench.datasets.decoders import DecodeError, call_with_timeout, read_frames
from vidbench.datasets.flow import FlowConfig, check_provenance
from vidbench.datasets.sampling import ClipSampler, retime
from vidbench.datasets.transforms import ClipTransform

log = logging.getLogger(__name__)
MODALITIES = ("rgb", "flow")


class TooManyBadVideos(RuntimeError):
    """More than the allowed share of a split's videos could not be decoded."""


class VideoClipDataset(Dataset):
    """Clips of `videos` ((path, record) pairs of files present on disk).

    With the `flow` modality, `flow_paths[i]` holds video i's stored flow (datasets.flow),
    whose provenance must match `flow_config`; `flow_stack` consecutive fields are taken
    per time step (10 for the 2D Two-Stream). Decoders are opened inside `__getitem__`
    with one decode thread, so the dataset is safe to use with `num_workers > 0`.
    A split whose decoded videos fit in `decode_cache_mb` is decoded once and held
    (`decode_cache.DecodedVideoCache`: the same frames, per process); 0 turns that off.
    """

    def __init__(
        self,
        videos: Sequence[tuple[Path, VideoRecord]],
        sampler: ClipSampler,
        transform: ClipTransform,
        *,
        split: str = "train",
        modalities: Sequence[str] = ("rgb",),
        substitute: bool = False,
        decoder: str = "decord",
        decode_timeout: float | None = 60.0,
        max_attempts: int = 10,
        flow_paths: Sequence[Path] | None = None,
        flow_config: FlowConfig | None = None,
        flow_stack: int = 1,
        decode_cache_mb: float = DEFAULT_BUDGET_MB,
    ) -> None:
        unknown = set(modalities) - set(MODALITIES)
        if unknown or not modalities:
            raise ValueError(f"modalities {tuple(modalities)} must be drawn from {MODALITIES}")
        if "flow" in modalities and (flow_paths is None or len(flow_paths) != len(videos)):
            raise ValueError("the flow modality needs one flow path per video (flow_paths)")
        if flow_stack < 1:
            raise ValueError(f"flow_stack must be >= 1, got {flow_stack}")
        self.videos = list(videos)
        self.flow_paths = list(flow_paths or [])
        self.flow_config = flow_config or FlowConfig(fps=sampler.target_fps or 25.0)
        self.flow_stack = flow_stack
        self._checked_flow: set[int] = set()
        self.sampler = sampler
        self.transform = transform
        self.split = split
        self.modalities = tuple(modalities)
        self.substitute = substitute
        self.decoder = decoder
        self.decode_timeout = decode_timeout
        self.max_attempts = max_attempts
        self._known_bad: dict[int, DecodeError] = {}  # per process: each worker has its own
        self.decode_cache = DecodedVideoCache(len(self.videos) * len(modalities), decode_cache_mb)

    @property
    def views_per_video(self) -> int:
        return self.sampler.num_views * self.transform.num_crops

    def __len__(self) -> int:
        return len(self.videos) * self.views_per_video

    def __getitem__(self, index: int) -> dict[str, Any]:
        video_index, view = divmod(index, self.views_per_video)
        errors: list[dict[str, str]] = []
        for _ in range(self.max_attempts):
            path, record = self.videos[video_index]
            try:
                if video_index in self._known_bad:  # failed before in this worker: do not retry
                    raise self._known_bad[video_index]
                sample = self.load(video_index, view)
            except DecodeError as error:
                if video_index not in self._known_bad:
                    log.warning("%s video failed: %s", self.split, error)
                    self._known_bad[video_index] = error
                action = "substituted" if self.substitute else "excluded"
                errors.append(
                    {
                        "split": self.split,
                        "path": str(path),
                        "error": error.reason,
                        "action": action,
                    }
                )
                if not self.substitute:
                    return {
                        "label": record.label,
                        "video_id": record.video_id,
                        "view": view,
                        "errors": errors,
                    }
                video_index = self._substitute()
                continue
            sample.update(label=record.label, video_id=record.video_id, view=view, errors=errors)
            return sample
        raise TooManyBadVideos(
            f"{self.max_attempts} videos in a row failed to decode in split {self.split!r}: "
            + "; ".join(f"{e['path']}: {e['error']}" for e in errors)
        )

    def _substitute(self) -> int:
        """A random video not yet known to be bad in this worker."""
        for candidate in torch.randperm(len(self.videos)).tolist():
            if candidate not in self._known_bad:
                return candidate
        raise TooManyBadVideos(f"every video of split {self.split!r} failed to decode")

    def load(self, video_index: int, view: int) -> dict[str, Any]:
        """Decode and transform one view of video `video_index`; raises DecodeError."""
        path = self.videos[video_index][0]
        clip_index, crop_index = divmod(view, self.transform.num_crops)
        frames = call_with_timeout(
            lambda: self._decode(video_index, clip_index), self.decode_timeout, path
        )
        height, width = next(iter(frames.values())).shape[1:3]
        params = self.transform.sample_params(height, width, crop_index)
        sample = {}
        if "rgb" in frames:
            sample["rgb"] = self.transform(frames["rgb"], params)
        if "flow" in frames:
            if frames["flow"].shape[1:3] != (height, width):
                raise DecodeError(
                    self.flow_paths[video_index],
                    f"flow is {frames['flow'].shape[2]}x"
                    f"{frames['flow'].shape[1]}, the video {width}x{height}",
                )
            sample["flow"] = self.transform.flow(frames["flow"], params)
        sample["box"] = self.transform.shipped_size(params)
        sample["flip"] = params.flip
        return sample

    def _decode(self, video_index: int, clip_index: int) -> dict[str, np.ndarray]:
        """uint8 frames per modality: rgb (T, H, W, 3); flow (T * flow_stack, H, W, 3)."""
        path = self.videos[video_index][0]
        if "rgb" in self.modalities:
            video = self.decode_cache.open(path, self.decoder, num_threads=1)
            timeline = retime(video.num_frames, video.fps, self.sampler.target_fps)
            steps = len(timeline)
        if "flow" in self.modalities:
            flow_file = self.flow_paths[video_index]
            flow = self.decode_cache.open(flow_file, self.decoder, num_threads=1)
            if video_index not in self._checked_flow:
                check_provenance(flow_file, self.flow_config)  # FlowMismatch stops the run
                self._checked_flow.add(video_index)
            if "rgb" not in self.modalities:
                steps = flow.num_frames + 1
            elif flow.num_frames != steps - 1:
                raise DecodeError(
                    flow_file,
                    f"holds {flow.num_frames} flow fields but {path} has "
                    f"{steps} frames at the sampling fps (expected {steps - 1}); re-extract",
                )
        positions = self.sampler.positions(steps, clip_index)
        frames = {}
        if "rgb" in self.modalities:
            frames["rgb"] = read_frames(video, timeline[positions])
        if "flow" in self.modalities:
            fields = positions[:, None] + np.arange(self.flow_stack)[None]  # (T, stack)
            frames["flow"] = read_frames(flow, np.minimum(fields, flow.num_frames - 1).reshape(-1))
        return frames


def collate_clips(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch the decodable samples; gather every sample's `errors` into `batch["errors"]`.

    A batch whose videos all failed holds only `errors`.
    """
    errors = [error for sample in samples for error in sample.pop("errors", [])]
    good = [sample for sample in samples if any(m in sample for m in MODALITIES)]
    batch = default_collate(good) if good else {}
    batch["errors"] = errors
    return batch


@dataclass
class BadVideoLog:
    """Counts, per split, the videos that were missing, unreadable or substituted.

    `expected` videos are listed; `missing` were absent before loading started;
    `unreadable` failed to decode (path -> error); `substituted` counts training samples
    that were replaced by another video. More than `max_bad_fraction` of a split's
    present videos unreadable raises TooManyBadVideos listing them.
    """

    max_bad_fraction: float = 0.01
    expected: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    unreadable: dict[str, dict[str, str]] = field(default_factory=dict)
    substituted: dict[str, int] = field(default_factory=dict)

    def start_split(self, split: str, expected: int, missing: list[str]) -> None:
        self.expected[split] = expected
        self.missing[split] = missing
        self.unreadable.setdefault(split, {})
        self.substituted.setdefault(split, 0)

    def add(self, errors: list[dict[str, str]]) -> None:
        """Count the `errors` of one batch; raise TooManyBadVideos past the allowed share."""
        for error in errors:
            split = error["split"]
            self.unreadable.setdefault(split, {})[error["path"]] = error["error"]
            if error["action"] == "substituted":
                self.substituted[split] = self.substituted.get(split, 0) + 1
        for split in {error["split"] for error in errors}:
            self.check(split)

    def check(self, split: str) -> None:
        bad = self.unreadable.get(split, {})
        present = self.expected.get(split, 0) - len(self.missing.get(split, []))
        if present and len(bad) > self.max_bad_fraction * present:
            listing = "\n".join(f"  {path}: {error}" for path, error in sorted(bad.items())[:50])
            more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
            raise TooManyBadVideos(
                f"{len(bad)} of {present} videos in split {split!r} could not be decoded, more "
                f"than the allowed {self.max_bad_fraction:.1%} (max_bad_fraction):\n{listing}{more}"
            )

    def summary(self) -> dict[str, dict[str, int]]:
        """Per split: expected = found (readable so far) + missing + unreadable; substituted."""
        return {
            split: {
                "expected": expected,
                "found": expected
                - len(self.missing.get(split, []))
                - len(self.unreadable.get(split, {})),
                "missing": len(self.missing.get(split, [])),
                "unreadable": len(self.unreadable.get(split, {})),
                "substituted": self.substituted.get(split, 0),
            }
            for split, expected in self.expected.items()
        }
