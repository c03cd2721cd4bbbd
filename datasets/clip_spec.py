"""`ClipSpec`: what a model is fed, in one frozen type.

Each model declares its own (`input_spec`, its paper input), a sweep overrides fields of it,
`VideoDataModule` takes it, every checkpoint stores it (`preprocessing`, as a plain dict)
and `vidbench predict` rebuilds it from there:

    spec = ClipSpec(("rgb",), clip_len=64, crop_size=224)      # I3D RGB, docs/protocol.md 2
    spec.replace(clip_len=8, crop_size=48).to_dict()          # JSON-safe, for checkpoints
    ClipSpec.from_dict(checkpoint["preprocessing"], "i3d.ckpt")
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vidbench.datasets.flow import FlowConfig
from vidbench.datasets.sampling import ClipSampler
from vidbench.datasets.transforms import ClipTransform

MODALITIES = ("rgb", "flow")
TEST_CROPS = (1, 3)  # the centre crop, or left/centre/right along the longer side
# how test clips lie in a video: spread evenly over it, or back to back in its middle
TEST_LAYOUTS = ("spread", "consecutive")
# The scale the paper's crops are taken at: frames resized to a shorter side of 256 for a
# 224 crop (docs/protocol.md 2); other crop sizes keep that ratio unless `short_side` is given.
RESIZE_PER_CROP = 256 / 224


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """modalities: batch keys ("rgb", "flow").
    Frames: the video re-timed to `fps`; a clip is `clip_len` frames every `frame_interval`
      (a video shorter than a clip loops); frames resized to a shorter side of `short_side`
      (None: `crop_size` * 256 / 224), then `crop_size` square crops; values in [-1, 1].
    Flow: `flow_stack` fields per time step (10 for the 2D two-stream models, 1 for the 3D
      ones), made with `flow_algorithm`, truncated at `flow_bound` pixels.
    Test views: `test_clips` clips of `test_clip_len` frames (None: `clip_len`) at the
      training spacing, spread evenly over the video or `consecutive` in its middle, x
      `test_crops` (1 or 3) crops; or the whole video at once (`full_video_test`, for
      models convolutional in time). Each model declares the paper's (docs/protocol.md 1, "input at
      test"); a video shorter than the views loops.
    """

    modalities: tuple[str, ...] = ("rgb",)
    clip_len: int = 64
    frame_interval: int = 1
    crop_size: int = 224
    short_side: int | None = None
    flow_stack: int = 1
    fps: float = 25.0
    flow_algorithm: str = "tvl1"
    flow_bound: float = 20.0
    test_clips: int = 1
    test_clip_len: int | None = None
    test_layout: str = "spread"
    test_crops: int = 1
    full_video_test: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(
                f"modalities {list(self.modalities)}: each of {list(MODALITIES)} at most once"
            )
        for name in ("clip_len", "frame_interval", "crop_size", "flow_stack", "test_clips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.short_side is not None and (
            isinstance(self.short_side, bool)
            or not isinstance(self.short_side, int)
            or self.short_side < self.crop_size
        ):
            raise ValueError(
                f"short_side must be a whole number >= crop_size ({self.crop_size}) or None, "
                f"got {self.short_side!r}"
            )
        if self.test_clip_len is not None and (
            isinstance(self.test_clip_len, bool)
            or not isinstance(self.test_clip_len, int)
            or self.test_clip_len < 1
        ):
            raise ValueError(
                f"test_clip_len must be a whole number >= 1 or None, got {self.test_clip_len!r}"
            )
        if self.test_layout not in TEST_LAYOUTS:
            raise ValueError(f"test_layout must be one of {TEST_LAYOUTS}, got {self.test_layout!r}")
        if self.test_crops not in TEST_CROPS:
            raise ValueError(f"test_crops must be one of {TEST_CROPS}, got {self.test_crops!r}")
        if not isinstance(self.full_video_test, bool):
            raise ValueError(f"full_video_test must be true or false, got {self.full_video_test!r}")
        self.flow_config  # noqa: B018  (FlowConfig checks fps, algorithm and bound)

    @property
    def resize_to(self) -> int:
        """The shorter side frames are resized to before cropping."""
        return self.short_side or round(self.crop_size * RESIZE_PER_CROP)

    @property
    def flow_config(self) -> FlowConfig:
        """How flow is made for (and was stored for) this input."""
        return FlowConfig(self.flow_algorithm, self.fps, self.flow_bound)

    def sampler(self, stage: str) -> ClipSampler:
        """Frame positions for `train` (one random clip), `val` (one centre clip) or `test`
        (the test views)."""
        if stage in ("train", "val"):
            return ClipSampler(stage, self.clip_len, self.frame_interval, 1, self.fps)
        if self.full_video_test:
            return ClipSampler("full", self.clip_len, self.frame_interval, 1, self.fps)
        mode = "block" if self.test_layout == "consecutive" else "test"
        frames = self.test_clip_len or self.clip_len
        return ClipSampler(mode, frames, self.frame_interval, self.test_clips, self.fps)

    @property
    def test_footprint(self) -> dict[str, Any]:
        """What a test video gives the model: {"clips", "crops", "frames_per_clip",
        "frame_interval", "layout"}, or {"layout": "whole video", "crops"}."""
        if self.full_video_test:
            return {"layout": "whole video", "crops": self.test_crops}
        return {
            "clips": self.test_clips,
            "crops": self.test_crops,
            "frames_per_clip": self.test_clip_len or self.clip_len,
            "frame_interval": self.frame_interval,
            "layout": self.test_layout,
        }

    def transform(self, stage: str, flip: bool = True) -> ClipTransform:
        """Resize, crop and scale: a random crop (mirrored at random when `flip`) to train,
        the centre crop to validate, the test crops to test."""
        if stage == "train":
            return ClipTransform(self.resize_to, self.crop_size, "random", flip=flip)
        crops = "three" if stage == "test" and self.test_crops == 3 else "center"
        return ClipTransform(self.resize_to, self.crop_size, crops)

    def replace(self, **changes: Any) -> ClipSpec:
        """A copy with `changes`; ValueError naming an unknown field or a bad value."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown clip setting(s) {unknown}; the settings are {FIELDS}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (what checkpoints store: they load with weights_only=True)."""
        return {**dataclasses.asdict(self), "modalities": list(self.modalities)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "clip spec") -> ClipSpec:
        """The spec `to_dict` wrote. Test views may be absent (checkpoints written before
        them get the defaults), and so may the flow settings of a model without flow. A
        missing field, an unknown key or a bad value is a ValueError naming `where`."""
        values = {k: v for k, v in values.items() if k not in LEGACY_KEYS}
        optional = TEST_VIEWS + (() if "flow" in values.get("modalities", ()) else FLOW_KEYS)
        missing = [k for k in FIELDS if k not in values and k not in optional]
        if missing:
            raise ValueError(f"{where}: lacks the clip setting(s) {missing}")
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"{where}: unknown clip setting(s) {unknown}; the settings are {FIELDS}"
            )
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None

    @property
    def geometry(self) -> dict[str, Any]:
        """What two streams fed together must share: everything but the modality and flow."""
        own = ("modalities", "flow_stack", "flow_algorithm", "flow_bound")
        return {k: v for k, v in self.to_dict().items() if k not in own}


FIELDS = tuple(f.name for f in dataclasses.fields(ClipSpec))
TEST_VIEWS = ("test_clips", "test_clip_len", "test_layout", "test_crops", "full_video_test")
FLOW_KEYS = ("flow_stack", "flow_algorithm", "flow_bound")
# Kept by checkpoints written before ClipSpec and ignored: training augmentation, not input.
LEGACY_KEYS = ("flip",)
# What a sweep may override: all but the modalities, which each cell's modality decides.
OVERRIDABLE = tuple(name for name in FIELDS if name != "modalities")
