"""Small helpers shared by several test files."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import yaml

from vidbench.datasets.clip_spec import FIELDS, ClipSpec
from vidbench.datasets.datamodule import VideoDataModule


def tiny_datamodule(root, **options) -> VideoDataModule:
    """A VideoDataModule over a UCF-101-layout dataset under `root`, at a CPU-test size;
    `options` are ClipSpec fields or VideoDataModule arguments."""
    clip = {"clip_len": 4, "frame_interval": 2, "crop_size": 32, "short_side": 40}
    settings = {"batch_size": 4, "num_workers": 0}
    for key, value in options.items():
        (clip if key in FIELDS else settings)[key] = value
    spec = ClipSpec(**clip)
    return VideoDataModule("ucf101", root / "videos", root / "annotations", spec, **settings)


def quiet_trainer(**options) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )


def write_sweep(path: Path, data: dict[str, Path], **changes) -> Path:
    """A tiny sweep over the test's synthetic dataset (`changes` replace top-level keys)."""
    sweep = {
        "name": "micro",
        "arch": ["c3d", "i3d"],
        "datasets": {
            "synth": {
                "format": "ucf101",
                **{k: str(v) for k, v in data.items()},
            }
        },
        "model": {"width": 0.125, "dropout": 0.0},
        "input": {"clip_len": 8, "crop_size": 32, "short_side": 40, "flip": False,
                  "flow_algorithm": "farneback"},
        "train": {"max_steps": 3, "batch_size": 4, "num_workers": 0, "val_every_epochs": 0,
                  "accelerator": "cpu", "optimizer": "adamw", "lr": 0.001},
        "eval": {"clips": 2, "throughput_batches": 1},
    }  # fmt: skip
    sweep.update(changes)
    path.write_text(yaml.safe_dump(sweep))
    return path
