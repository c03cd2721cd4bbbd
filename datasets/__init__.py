"""vidbench data layer: annotation parsers, frame samplers, one clip dataset, one datamodule.

Installed as `vidbench.datasets`, beside (never over) Hugging Face's `datasets`. The names
below load on first use, so that `vidbench --help` and the commands that need neither
torch nor Lightning do not pay seconds importing them.
"""

from importlib import import_module

_SOURCES = {
    "DATASETS": "annotations",
    "AnnotationError": "annotations",
    "Annotations": "annotations",
    "VideoRecord": "annotations",
    "load_annotations": "annotations",
    "BadVideoLog": "clip_dataset",
    "TooManyBadVideos": "clip_dataset",
    "VideoClipDataset": "clip_dataset",
    "collate_clips": "clip_dataset",
    "DecodeError": "decoders",
    "open_video": "decoders",
    "ClipSampler": "sampling",
    "ClipTransform": "transforms",
    "to_model_input": "transforms",
    "VideoDataModule": "datamodule",
}
__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module 'vidbench.datasets' has no attribute {name!r}")
    return getattr(import_module(f"vidbench.datasets.{_SOURCES[name]}"), name)
