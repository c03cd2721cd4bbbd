"""Small helpers shared by several test files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import yaml

from vidbench.bench.cells import Cell, DataSource, expand_cells, resolve_cell
from vidbench.bench.cli import main
from vidbench.bench.config import SweepConfig, TrainConfig, load_sweep
from vidbench.bench.results import DataAccounting, Metrics, RunRecord, latest_by_cell
from vidbench.datasets.clip_spec import FIELDS, ClipSpec
from vidbench.datasets.datamodule import VideoDataModule
from vidbench.datasets.synthetic import random_texture, render_motion
from vidbench.datasets.video_writer import write_video
from vidbench.models import VideoClassifier
from vidbench.models.weights import save_checkpoint

COMMITTED_RESULTS = Path(__file__).resolve().parents[1] / "results"


def committed_results(name: str, tmp_path: Path) -> Path:
    """A copy of the committed results/NAME folder: `regress` writes its verdict beside
    the records it checks, and a test must not change the repository."""
    return Path(shutil.copytree(COMMITTED_RESULTS / name, tmp_path / name))


PREP = {"fps": 25.0, "short_side": 40, "crop_size": 32, "clip_len": 8, "frame_interval": 1}


def cli(*args: str) -> int:
    """`vidbench ARGS` in this process; argparse's usage errors give their exit code."""
    try:
        return main(list(args))
    except SystemExit as exit_:
        return int(exit_.code)


def tiny_checkpoint(path: Path) -> Path:
    """An untrained two-class C3D with everything `predict` needs."""
    module = VideoClassifier(
        "c3d",
        2,
        ["left", "right"],
        model_options={"width": 0.125},
        preprocessing={**PREP, "modalities": ["rgb"]},
    )
    return save_checkpoint(module, path)


def moving_video(
    path: Path, frames: int = 20, height: int = 48, width: int = 64, fps: float = 25
) -> Path:
    """A real encoded video of a texture moving right, `frames` frames at `fps`."""
    texture = random_texture(np.random.default_rng(0), 200, 200)
    motion = render_motion(texture, "MoveRight", frames, height, width, 2.0, (0.0, 0.0))
    write_video(path, motion, fps)
    return path


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
                **{k: str(v) if isinstance(v, Path) else v for k, v in data.items()},
            }
        },
        "model": {"width": 0.125, "dropout": 0.0},
        "input": {"clip_len": 8, "crop_size": 32, "short_side": 40, "flip": False,
                  "flow_algorithm": "farneback"},
        "train": {"max_steps": 3, "batch_size": 4, "num_workers": 0, "val_every_epochs": 0,
                  "accelerator": "cpu", "optimizer": "adamw", "lr": 0.001},
        "eval": {"views": "clips", "clips": 2, "throughput_batches": 1},
    }  # fmt: skip
    sweep.update(changes)
    path.write_text(yaml.safe_dump(sweep))
    return path


def finished_record(
    cell_id: str, top1: float, official_classes: str | None = None, start: str = "scratch"
) -> RunRecord:
    """A finished run record made of the real types: the cell's architecture, modality,
    dataset and fold, protocol and seed come from `cell_id` (`c3d-rgb-d1-scratch-s0`), its
    video top-1 is `top1` (%), its classes are `official_classes`' (None: not a paper
    dataset), its network started from `start`; the rest is the smallest valid record."""
    arch, modality, dataset_fold, protocol, seed = cell_id.split("-")
    dataset, fold = dataset_fold[:-1], int(dataset_fold[-1])
    data = DataSource(
        format="ucf101",
        videos="/v",
        annotations="/a",
        flow=None,
        fold=fold,
        copy_files=1,
        copy_bytes=1,
    )
    cell = Cell(
        dataset=dataset,
        fold=fold,
        arch=arch,
        modality=modality,
        protocol=protocol,
        seed=int(seed[1:]),
        sweep="test",
        data=data,
        model_options={},
        input=ClipSpec(tuple(modality.split("+"))),
        flip=True,
        train=TrainConfig(),
        throughput_batches=1,
    )
    return RunRecord(
        cell=cell_id,
        status="ok",
        config=cell,
        config_hash=cell.hash(),
        finished="2026-01-01T00:00:00+00:00",
        code_version="test",
        started_from={"start": start, "weights": None, "checkpoint": None},
        metrics=Metrics(video={"top1": top1 / 100, "top5": 1.0}),
        data=DataAccounting(
            num_classes=8,
            official_classes=official_classes,
            evaluated_videos=8,
            test={"expected": 8},
            decoder="decord",
        ),
        costs={
            "gmacs_per_clip": 1.0,
            "infer_clips_per_s": 1.0,
            "params": 1,
            "input_shape": {"rgb": [3, 8, 32, 32]},
            "device": "cpu",
            "precision": "32-true",
            "batch_size": 1,
            "torch": "x",
            "cudnn": None,
        },
    )


# Test videos a record lists: UCF-101 split 1's 3,783; for Kinetics a round number in its
# test split's range (the figure is not what is tested, the share evaluated is)
LISTED = {"ucf101": 3783, "kinetics400": 38000}


def paper_record(
    sweep: str,
    cell_id: str,
    overrides: tuple[str, ...] = (),
    *,
    start: str = "imagenet",
    top1: float = 60.0,
    **data_changes,
) -> RunRecord:
    """A finished record of cell `cell_id` of built-in `sweep` (with `--set` overrides) as a
    full run would write it: every listed test video evaluated, the sweep's global batch,
    on the dataset's official classes and test split; its network started from `start`,
    its video top-1 is `top1` (%). `data_changes` replace fields of its data accounting."""
    config = load_sweep(sweep, list(overrides))
    (key,) = [k for k in expand_cells(config) if k.id == cell_id]
    dataset = config.datasets[key.dataset]
    source = DataSource(
        format=dataset.format,
        videos="/v",
        annotations="/a",
        flow="/f",
        fold=None,
        copy_files=1,
        copy_bytes=1,
    )
    cell = resolve_cell(config, key, source)
    listed = LISTED[key.dataset]
    data = {
        "num_classes": 400 if key.dataset.startswith("kinetics") else 101,
        "official_classes": key.dataset,
        "evaluated_videos": listed,
        "test": {"expected": listed, "missing": 0, "unreadable": 0},
        "test_split": "test",
        **data_changes,
    }
    template = finished_record(cell_id, top1)
    return template.model_copy(
        update={
            "config": cell,
            "config_hash": cell.hash(),
            "batch": cell.train.batch_plan(1),
            "data": DataAccounting(**data),
            "started_from": {"start": start, "weights": None, "checkpoint": None},
        }
    )


def markdown_rows(text: str) -> list[dict[str, str]]:
    """Every row of every Markdown table in `text`, as {column header: cell text}."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-:"):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def nearest_centroid_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Accuracy of a nearest-centroid classifier on standardised features (N, D): the
    hand-made models the synthetic tasks' tests use."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    centroids = np.stack([train_x[train_y == c].mean(0) for c in np.unique(train_y)])
    predicted = np.argmin(((test_x[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((predicted == test_y).mean())


def assert_records_are_the_sweep(sweep: SweepConfig, records: list[RunRecord]) -> list[RunRecord]:
    """Each cell's latest record (what the leaderboard and `regress` read; earlier ones stay
    as history) finished, is a cell of `sweep`, was made with the configuration the sweep
    resolves to today and on the synthetic data today's settings make (so resuming the
    sweep skips it). Returns those latest records."""
    from vidbench.bench.runner import synthetic_folder

    keys = {key.id: key for key in expand_cells(sweep)}
    latest = list(latest_by_cell(records).values())
    assert latest, "no records"
    for record in latest:
        assert record.status == "ok", f"{record.cell}: {record.error}"
        assert record.cell in keys, f"{record.cell} is not a cell of the sweep"
        folder = synthetic_folder(sweep.datasets[record.config.dataset].synthetic).name
        assert Path(record.config.data.videos).parent.name == folder, record.cell
        assert record.config == resolve_cell(sweep, keys[record.cell], record.config.data)
    return latest
