"""Small helpers shared by several test files."""

from __future__ import annotations

import pytorch_lightning as pl

from datasets.datamodule import VideoDataModule

ARCHITECTURES = {"c3d", "convnet_lstm", "frame_avg", "fused_two_stream", "i3d", "r3d", "two_stream"}


def tiny_datamodule(root, **options) -> VideoDataModule:
    """A VideoDataModule over a UCF-101-layout dataset under `root`, at a CPU-test size."""
    settings = dict(
        clip_len=4, frame_interval=2, crop_size=32, short_side=40, batch_size=4, num_workers=0
    )
    settings.update(options)
    return VideoDataModule("ucf101", root / "videos", root / "annotations", **settings)


def quiet_trainer(**options) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )
