"""vidbench data layer: annotation parsers, frame samplers, one clip dataset, one datamodule.

Installed as `vidbench.datasets`, beside (never over) Hugging Face's `datasets`.
"""

from vidbench.datasets.annotations import (
    DATASETS,
    AnnotationError,
    Annotations,
    VideoRecord,
    load_annotations,
)
from vidbench.datasets.clip_dataset import (
    BadVideoLog,
    TooManyBadVideos,
    VideoClipDataset,
    collate_clips,
)
from vidbench.datasets.decoders import DecodeError, open_video
from vidbench.datasets.sampling import ClipSampler
from vidbench.datasets.transforms import ClipTransform

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
        from vidbench.datasets.datamodule import VideoDataModule

        return VideoDataModule
    raise AttributeError(f"module 'vidbench.datasets' has no attribute {name!r}")
