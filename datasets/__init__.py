"""vidbench data layer: annotation parsers, frame samplers, one clip dataset, one datamodule.

Note: this package shadows Hugging Face's `datasets`; install vidbench in its own
virtual environment (see README).
"""

from datasets.annotations import (
    DATASETS,
    AnnotationError,
    Annotations,
    VideoRecord,
    load_annotations,
)
from datasets.clip_dataset import BadVideoLog, TooManyBadVideos, VideoClipDataset, collate_clips
from datasets.decoders import DecodeError, open_video
from datasets.sampling import ClipSampler
from datasets.transforms import ClipTransform

__all__ = [
    "DATASETS",
    "AnnotationError",
    "Annotations",
    "BadVideoLog",
    "ClipSampler",
    "ClipTransform",
    "DecodeError",
    "TooManyBadVideos",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoRecord",
    "collate_clips",
    "load_annotations",
    "open_video",
]


def __getattr__(name: str):
    # Lazy: importing Lightning costs seconds that `vidbench data ...` need not pay.
    if name == "VideoDataModule":
        from datasets.datamodule import VideoDataModule

        return VideoDataModule
    raise AttributeError(f"module 'datasets' has no attribute {name!r}")
