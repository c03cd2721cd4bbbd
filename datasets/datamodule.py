"""`VideoDataModule`: one LightningDataModule for every dataset vidbench reads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import move_data_to_device
from torch import distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from vidbench.datasets.annotations import (
    UNLABELLED,
    Annotations,
    flips_by_default,
    hold_out,
    load_annotations,
)
from vidbench.datasets.clip_dataset import BadVideoLog, VideoClipDataset, collate_clips
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.decode_cache import DEFAULT_BUDGET_MB
from vidbench.datasets.flow import flow_path
from vidbench.datasets.index import locate_videos
from vidbench.datasets.transforms import to_model_input

log = logging.getLogger(__name__)


def evenly_spread(records: list, count: int) -> list:
    """`count` records spread evenly over the list (so over its classes, where the list is
    ordered by class): a fixed subset for a quick look."""
    step = len(records) / count
    return [records[int(i * step)] for i in range(count)]


class VideoDataModule(pl.LightningDataModule):
    """Train / val / test clip loaders for UCF-101, HMDB-51, Kinetics or a custom folder.

    Splits: `train` trains; validation uses `val`, or, where the dataset has none
    (UCF-101, HMDB-51), `val_holdout` of the training split's groups held out
    (`annotations.hold_out`: no group on both sides, stable when videos are added; 0:
    no validation); the test split is never read before testing. Testing uses
    `test_split`, else `test`, or `val` where the test split is unlabelled (Kinetics).
    `max_eval_videos` evaluates at most that many videos of each evaluated split, spread
    over its list (a quick look; `listed` keeps each split's full count).
    `spec` says what a sample holds (modalities, clip geometry, flow settings) and which
    views a test video gives (the whole video: batch size 1).
    `annotation_path` may be None for the `folder` format (class folders under
    `video_root`; without train/val/test folders a train/val split is drawn,
    `annotations.parse_folder`).
    Missing videos are excluded up front; undecodable ones are substituted in training
    and excluded in evaluation; `bad_videos.summary()` has the counts per split.
    With the `flow` modality, flow comes from `flow_root` (`vidbench flow extract`, same
    relative paths) and must have been extracted as `spec` says; a video without its flow
    file counts as missing. `flip` mirrors training clips at random; None (the default)
    does so unless the format's classes name directions (Something-Something V2,
    `annotations.flips_by_default`); turn it off wherever direction is the label.

    Batches leave the workers as uint8 clips (see clip_dataset) and become float inputs in
    [-1, 1] on the model's device (`on_after_batch_transfer`, `to_model_input`).
    DataLoader: `num_workers` processes, kept alive between epochs and evaluations
    (`persistent_workers`), each `prefetch_factor` batches ahead; `pin_memory` None pins
    when the trainer runs on a CUDA device. A split whose decoded videos fit in
    `decode_cache_mb` (per process) is decoded once and held (`decode_cache`; the same
    frames, so the same results); 0 decodes every clip from disk.
    """

    def __init__(
        self,
        dataset: str,
        video_root: str | Path,
        annotation_path: str | Path | None,
        spec: ClipSpec,
        fold: int = 1,
        batch_size: int = 8,
        num_workers: int = 2,
        decoder: str = "decord",
        decode_timeout: float | None = 60.0,
        max_bad_fraction: float = 0.01,
        flow_root: str | Path | None = None,
        flip: bool | None = None,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        pin_memory: bool | None = None,
        decode_cache_mb: float = DEFAULT_BUDGET_MB,
        val_holdout: float = 0.0,
        test_split: str | None = None,
        max_eval_videos: int | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= val_holdout < 1:
            raise ValueError(f"val_holdout is a fraction in [0, 1), got {val_holdout!r}")
        if test_split not in (None, "test", "val"):
            raise ValueError(f"test_split is test, val or None, got {test_split!r}")
        if annotation_path is None and dataset != "folder":
            raise ValueError(
                f"{dataset} needs annotation_path (its official lists); only the folder "
                "format, whose class folders are the annotations, can go without"
            )
        annotation_path = video_root if annotation_path is None else annotation_path
        if "flow" in spec.modalities and flow_root is None:
            raise ValueError("the flow modality needs flow_root: run `vidbench flow extract` first")
        self.spec = spec
        # plain values, so checkpoints holding these hyperparameters load with weights_only=True
        video_root, annotation_path = str(video_root), str(annotation_path)
        flow_root = None if flow_root is None else str(flow_root)
        flip = flips_by_default(dataset) if flip is None else flip
        self.save_hyperparameters(ignore=["spec"], logger=False)
        self.hparams["spec"] = spec.to_dict()
        self.video_root = Path(video_root)
        self.annotations: Annotations = load_annotations(dataset, annotation_path, fold)
        self.held_out: dict[str, int] = {}
        if val_holdout > 0:
            self.annotations, self.held_out = hold_out(self.annotations, val_holdout)
        self.bad_videos = BadVideoLog(max_bad_fraction)
        self.listed: dict[str, int] = {}  # videos each split lists, before max_eval_videos
        self._datasets: dict[str, VideoClipDataset] = {}

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        dataset: str,
        video_root: str | Path,
        annotation_path: str | Path | None = None,
        **options: Any,
    ) -> VideoDataModule:
        """A data module that feeds `model` what it was built or trained for: the clip
        geometry and test views of a `VideoClassifier`'s checkpoint (its `preprocessing`),
        else its network's `input_spec`; `options` are the other constructor arguments.

            net = create_model("i3d", 101, modalities=("rgb",))
            dm = VideoDataModule.for_model(net, "ucf101", "UCF-101", "ucfTrainTestlist")
        """
        spec = getattr(model, "clip_spec", None) or getattr(
            getattr(model, "net", model), "input_spec", None
        )
        if not isinstance(spec, ClipSpec):
            raise TypeError(
                f"{type(model).__name__} declares no input_spec (a ClipSpec); give spec= to "
                "VideoDataModule instead"
            )
        return cls(dataset, video_root, annotation_path, spec, **options)

    @property
    def num_classes(self) -> int:
        return self.annotations.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.annotations.class_names)

    @property
    def validation_source(self) -> str | None:
        """What validates (what a record says): the dataset's own `val` split, a held-out
        part of `train`, or None (no validation split)."""
        if self.held_out:
            return (
                f"{self.hparams.val_holdout:.0%} of the train split's groups held out "
                f"({self.held_out['groups']} groups, {self.held_out['videos']} videos)"
            )
        return "val" if self.annotations.splits.get("val") else None

    def split_for(self, stage: str) -> str:
        """The annotation split that serves `stage` (`train`, `val` or `test`); validation
        never falls back on the test split."""
        splits = self.annotations.splits
        if stage == "train":
            order = ["train"]
        elif stage == "val":
            if not splits.get("val"):
                why = (
                    "and no training group could be held out (each class has one)"
                    if self.hparams.val_holdout
                    else "give val_holdout (a part of the training split held out by group)"
                )
                raise ValueError(
                    f"no validation split: {self.hparams.dataset} has none, {why}; the test "
                    "split is read only for the final test"
                )
            order = ["val"]
        else:
            labelled = [
                s for s in ("test", "val") if any(r.label != UNLABELLED for r in splits.get(s, []))
            ]
            chosen = self.hparams.test_split
            if chosen and chosen not in labelled:
                state = "unlabelled" if splits.get(chosen) else "absent"
                raise ValueError(
                    f"test_split {chosen}: the {self.hparams.dataset} annotations' {chosen} "
                    f"split is {state}; labelled splits: {labelled or 'none'}"
                )
            order = [chosen] if chosen else labelled or ["test"]
        for split in order:
            if splits.get(split):
                return split
        raise ValueError(
            f"no {stage} split: the annotations hold {sorted(k for k, v in splits.items() if v)}"
        )

    def dataset(self, stage: str) -> VideoClipDataset:
        """The clip dataset of `stage`, built on first use."""
        if stage not in self._datasets:
            self._datasets[stage] = self._build(stage)
        return self._datasets[stage]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for name in wanted.get(stage or "", ("train", "val", "test")):
            if name != "val" or self.validation_source or stage == "validate":
                self.dataset(name)

    def _build(self, stage: str) -> VideoClipDataset:
        hp = self.hparams
        split = self.split_for(stage)
        records = self.annotations.splits[split]
        self.listed[split] = len(records)
        if stage != "train" and hp.max_eval_videos and len(records) > hp.max_eval_videos:
            records = evenly_spread(records, hp.max_eval_videos)
            log.info(
                "%s: evaluating %d of its %d videos (max_videos)",
                split,
                len(records),
                self.listed[split],
            )
        paths = locate_videos(records, self.video_root)
        flows = [self._flow_path(p) for p in paths]
        usable = [
            p is not None and (f is None or f.is_file()) for p, f in zip(paths, flows, strict=True)
        ]
        missing = [
            r.path + ("" if p is None else " (its flow)")
            for r, p, ok in zip(records, paths, usable, strict=True)
            if not ok
        ]
        self.bad_videos.start_split(split, len(records), missing)
        absent = [r.path for r, p in zip(records, paths, strict=True) if p is None]
        no_flow = [r.path for r, p, ok in zip(records, paths, usable, strict=True) if p and not ok]
        if absent:
            log.warning(
                "%s: %d of %d videos are missing under %s (first: %s)",
                split,
                len(absent),
                len(records),
                self.video_root,
                absent[0],
            )
        if no_flow:
            log.warning(
                "%s: flow missing under %s for %d of %d videos (first: %s); extract it with "
                "`vidbench flow extract`",
                split,
                hp.flow_root,
                len(no_flow),
                len(records),
                no_flow[0],
            )
        keep = [i for i, ok in enumerate(usable) if ok]
        if not keep:
            raise FileNotFoundError(
                f"none of the {len(records)} {split} videos is under {self.video_root}"
            )
        present = [(paths[i], records[i]) for i in keep]
        spec = self.spec
        return VideoClipDataset(
            present,
            spec.sampler(stage),
            spec.transform(stage, flip=hp.flip),
            split=split,
            modalities=spec.modalities,
            substitute=stage == "train",
            decoder=hp.decoder,
            decode_timeout=hp.decode_timeout,
            flow_paths=[flows[i] for i in keep] if "flow" in spec.modalities else None,
            flow_config=spec.flow_config,
            flow_stack=spec.flow_stack,
            decode_cache_mb=hp.decode_cache_mb,
        )

    def _flow_path(self, video: Path | None) -> Path | None:
        if video is None or "flow" not in self.spec.modalities:
            return None
        return flow_path(self.hparams.flow_root, video.relative_to(self.video_root))

    def _sampler(self, stage: str) -> Sampler | list[int] | None:
        """Under torch.distributed: training shards with DistributedSampler; evaluation gives
        each rank every world-th view, each view exactly once (no padding repeats), so
        metrics synchronised across ranks equal those of one process."""
        if not (dist.is_available() and dist.is_initialized()):
            return None
        dataset, world, rank = self.dataset(stage), dist.get_world_size(), dist.get_rank()
        if stage == "train":
            return DistributedSampler(dataset, world, rank, shuffle=True, drop_last=True)
        return list(range(rank, len(dataset), world))

    def _pin_memory(self) -> bool:
        if self.hparams.pin_memory is not None:
            return bool(self.hparams.pin_memory)
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def _loader(self, stage: str) -> DataLoader:
        hp = self.hparams
        full = stage == "test" and self.spec.full_video_test
        sampler = self._sampler(stage)
        workers = hp.num_workers > 0
        return DataLoader(
            self.dataset(stage),
            batch_size=1 if full else hp.batch_size,
            shuffle=stage == "train" and sampler is None,
            sampler=sampler,
            drop_last=stage == "train" and len(self.dataset(stage)) > hp.batch_size,
            num_workers=hp.num_workers,
            collate_fn=collate_clips,
            persistent_workers=workers and hp.persistent_workers,
            prefetch_factor=hp.prefetch_factor if workers else None,
            pin_memory=self._pin_memory(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_before_batch_transfer(
        self, batch: dict[str, Any], dataloader_idx: int
    ) -> dict[str, Any]:
        """Count the batch's failed videos in the main process (see BadVideoLog)."""
        self.bad_videos.add(batch.pop("errors", []))
        return batch

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """uint8 clips -> float model inputs in [-1, 1], flipped, on the batch's device."""
        return to_model_input(batch, self.spec.flow_stack)

    def to_device(self, batch: dict[str, Any], device: str | torch.device = "cpu") -> dict:
        """What Lightning makes of a loader's batch before a step, for use outside a
        Trainer: failed videos counted, tensors on `device`, clips converted."""
        batch = self.on_before_batch_transfer(batch, 0)
        return self.on_after_batch_transfer(move_data_to_device(batch, device), 0)
