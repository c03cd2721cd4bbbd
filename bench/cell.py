"""One cell, wherever it runs (inline, a local job, a SLURM job): its data module, network
and Lightning Trainer, resumed from its `last.ckpt` after an interruption, the learning
rate chosen on validation when the sweep asks, tested with its views, costed, and its
record appended (before W&B is told).

    record = execute_cell(sweep, cell, out, command, version, progress, launcher)
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import itertools
import json
import logging
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from vidbench.bench import tracking
from vidbench.bench.cells import (
    FINAL_CHECKPOINT,
    Cell,
)
from vidbench.bench.config import SweepConfig, cell_init_checkpoint
from vidbench.bench.paper import official_dataset
from vidbench.bench.predictions import top_k, write_predictions
from vidbench.bench.results import (
    RUNS_FILE,
    RunRecord,
    append_record,
    code_version,
    finished_record,
    utc_now,
)
from vidbench.bench.throughput import SLOW_FLOAT16_ON_CPU, measure
from vidbench.datasets.datamodule import VideoDataModule
from vidbench.datasets.files import (
    FolderBusy,
    FolderLock,
    atomic_write,
    atomic_write_text,
)
from vidbench.models import VideoClassifier
from vidbench.models.backbones import RefusedCheckpoint, torch_load
from vidbench.models.costs import macs_per_clip
from vidbench.models.registry import imagenet_weights, model_origin
from vidbench.models.weights import (
    IMPORTED_STARTS,
    fuse_i3d_streams,
    load_classifier,
    save_checkpoint,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def trained_on(cell: Cell) -> dict[str, Any]:
    """What a checkpoint records of its training data (checked by `check_split`)."""
    return {
        "format": cell.data.format,
        "annotations": str(Path(cell.data.annotations).resolve()),
        "fold": cell.fold,
    }


def checkpoint_hparams(path: str) -> dict[str, Any]:
    """The hyperparameters a checkpoint records ({} when it records none)."""
    checkpoint = torch_load(path)
    return (checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None) or {}


def started_from(
    cell: Cell, init_checkpoint: str | None, hparams: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the cell's network starts from: {"start": one of `paper.STARTS` (None when a
    checkpoint does not say), "weights": the ImageNet file or None, "checkpoint": ...}.
    A checkpoint (whose `hparams` these are) trained on Kinetics adds `kinetics` to what it
    started from."""
    if init_checkpoint is None:
        weights = imagenet_weights(cell.arch, cell.model_options)
        return {
            "start": "imagenet" if weights else "scratch",
            "weights": weights,
            "checkpoint": None,
        }
    hparams = checkpoint_hparams(init_checkpoint) if hparams is None else hparams
    origin = hparams.get("started_from") or {}
    source = origin.get("start")
    trained = (hparams.get("trained_on") or {}).get("format", "")
    if trained.startswith("kinetics") and source in ("scratch", "imagenet"):
        start = "kinetics" if source == "scratch" else "imagenet+kinetics"
    elif source in IMPORTED_STARTS and not trained:
        start = source  # imported published weights: they say what they are
    else:
        start = None  # a chain the paper has no number for, or one the checkpoint hides
    return {
        "start": start, "weights": None, "checkpoint": init_checkpoint,
        "checkpoint_started_from": source, "checkpoint_trained_on": trained or None,
        "checkpoint_weights": origin.get("weights"),  # published weights: which release
    }  # fmt: skip


def check_split(init_checkpoint: str, cell: Cell, hparams: dict[str, Any]) -> None:
    """Refuse to test a model on another split of the dataset it was trained on (`hparams`:
    the checkpoint's)."""
    source = hparams.get("trained_on")
    here = trained_on(cell)
    same_dataset = source and all(source[k] == here[k] for k in ("format", "annotations"))
    if same_dataset and source["fold"] != here["fold"]:
        raise ValueError(
            f"{init_checkpoint} was trained on {here['format']} split {source['fold']}; "
            f"testing it on split {here['fold']} would test on its training videos"
        )


def data_module(cell: Cell) -> VideoDataModule:
    data, train = cell.data, cell.train
    return VideoDataModule(
        data.format,
        data.videos,
        data.annotations,
        cell.input,
        fold=cell.fold,
        batch_size=train.batch_size,
        num_workers=train.num_workers,
        decoder=train.decoder,
        decode_cache_mb=train.decode_cache_mb,
        max_bad_fraction=train.max_bad_fraction,
        flow_root=data.flow if "flow" in cell.input.modalities else None,
        flip=cell.flip,
        val_holdout=train.val_holdout if train.val_every_epochs > 0 or train.lr_grid else 0.0,
        test_split=data.test_split,
        max_eval_videos=cell.max_videos,
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but atomic: a temporary file beside the target,
    fsynced, then renamed, so a full disk leaves the previous checkpoint (or none), never
    a torn one; the error names the file."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))


# Lightning logs every n optimiser steps across epochs, so an epoch shorter than n still
# logs; its warning that it might not would only be noise in every tiny cell.
warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller")
# Lightning suggests `srun` wherever SLURM is installed; SLURM jobs come from the launcher.
warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
# The fixed protocol keeps its frozen BatchNorm in eval mode on purpose (docs/protocol.md 3).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start")


class StderrProgressBar(TQDMProgressBar):
    """Lightning's bars, on stderr: stdout carries the results and tables only."""

    def init_sanity_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_sanity_tqdm()

    def init_train_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()

    def init_test_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_test_tqdm()


class TestProgressLog(pl.Callback):
    """Where no progress bar shows (a log file, a batch job): one log line each tenth of
    the test pass, with the views tested so far and the total."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.done = self.shown = 0

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.done = self.shown = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        total = len(trainer.test_dataloaders.dataset)
        self.done += len(batch["label"])
        tenth = 10 * self.done // max(total, 1)
        if tenth > self.shown:
            self.shown = tenth
            log.info(
                "%s: tested %d of %d views (%d%%)",
                self.label,
                self.done,
                total,
                100 * self.done // total,
            )


class LearningRateEveryStep(pl.Callback):
    """Logs each optimiser step's learning rate (`lr`, and `lr/group<i>` beyond the first
    parameter group) to the W&B run, so its warm-up and schedule show as a curve; the
    trainer's own logging thins to every `log_every_n_steps`."""

    def __init__(self, loggers: list) -> None:
        self.loggers = [lg for lg in loggers if type(lg).__name__ == "WandbLogger"]
        self.last_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not self.loggers or step == self.last_step or not trainer.optimizers:
            return
        self.last_step = step
        groups = trainer.optimizers[0].param_groups
        rates = {"lr" if i == 0 else f"lr/group{i}": g["lr"] for i, g in enumerate(groups)}
        for logger in self.loggers:
            logger.log_metrics(rates, step=step)


def make_trainer(cell: Cell, cell_dir: Path, loggers: list, progress: bool) -> pl.Trainer:
    train = cell.train
    accelerator = train.accelerator
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    precision = train.precision
    if precision == "auto":
        precision = "bf16-mixed" if on_gpu else "32-true"
    if precision == "16-mixed" and not on_gpu:
        log.warning(
            "%s: precision 16-mixed on the CPU: Lightning trains it as bf16-mixed there "
            "(float16 autocast is for GPUs)",
            cell.id,
        )
    elif precision == "16-true" and not on_gpu:
        log.warning("%s: precision 16-true %s", cell.id, SLOW_FLOAT16_ON_CPU)
    steps = train.max_steps
    checkpoints = ModelCheckpoint(
        dirpath=cell_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=max(1, steps // 10) if steps > 0 else None,
    )
    return pl.Trainer(
        accelerator=accelerator,
        accumulate_grad_batches=train.accumulation(),
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=precision,
        max_steps=steps,
        max_epochs=train.max_epochs,
        logger=loggers,
        callbacks=[
            checkpoints,
            LearningRateEveryStep(loggers),
            StderrProgressBar() if progress else TestProgressLog(cell.id),
        ],
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if train.val_every_epochs > 0 else 0,
        check_val_every_n_epoch=max(1, train.val_every_epochs),
        log_every_n_steps=max(1, min(50, steps // 20)),
        default_root_dir=cell_dir,
        use_distributed_sampler=False,  # the data module shards; evaluation without repeats
    )


def init_checkpoint(cell: Cell) -> str | None:
    """The checkpoint a fixed or finetune cell starts from (None for scratch)."""
    return cell_init_checkpoint(cell.train, cell)


def build_module(cell: Cell, dm: VideoDataModule, out: Path) -> VideoClassifier:
    if cell.fuses:
        streams = {}
        for stream in cell.fuses:
            sibling = cell.with_(modality=stream, fuses=None).id
            path = out / "cells" / sibling / FINAL_CHECKPOINT
            if not path.is_file():
                raise FileNotFoundError(
                    f"{cell.id} fuses {sibling}, which has no checkpoint at {path}"
                )
            streams[stream] = load_classifier(path)
        return fuse_i3d_streams(streams["rgb"], streams["flow"])
    train = cell.train
    init = init_checkpoint(cell)
    source = None  # the init checkpoint's hyperparameters, read once for both checks
    if init:
        source = checkpoint_hparams(init)
        check_split(init, cell, source)
    return VideoClassifier(
        cell.arch,
        dm.num_classes,
        dm.class_names,
        model_options=cell.model_options,
        protocol=cell.protocol,
        optimizer=train.optimizer,
        lr=train.lr,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        scheduler=train.scheduler,
        lr_step=train.lr_step,
        lr_schedule=[list(point) for point in train.lr_schedule or []] or None,
        warmup_steps=train.warmup_steps,
        plateau_patience=train.plateau_patience,
        plateau_threshold=train.plateau_threshold,
        init_checkpoint=init,
        trained_on=trained_on(cell),
        started_from=started_from(cell, init, source),
        preprocessing=cell.input.to_dict(),
    )


def measure_costs(
    module: VideoClassifier, dm: VideoDataModule, trainer: pl.Trainer, runs: int, train: bool
) -> dict[str, Any]:
    """Parameters, multiply-adds per clip and clips/s on the cell's device, on a real batch:
    `runs` timed blocks of calls and 0.1 s per block at least (`throughput.measure`)."""
    batch = dm.to_device(next(iter(dm.test_dataloader())))
    inputs = {
        k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
    }
    size = dm.hparams.batch_size
    inputs = {k: v[:1].expand(size, *v.shape[1:]).contiguous() for k, v in inputs.items()}
    net = copy.deepcopy(module.net).eval()
    precision = str(trainer.precision)
    device = trainer.strategy.root_device
    costs = measure(net, inputs, device, precision, runs, train=train, min_run_time=0.1 * runs)
    costs["macs_per_clip"] = macs_per_clip(net.cpu(), {k: v[:1].cpu() for k, v in inputs.items()})
    costs["gmacs_per_clip"] = costs["macs_per_clip"] / 1e9
    costs["input_shape"] = {k: list(v.shape[1:]) for k, v in inputs.items()}
    return costs


def metrics_of(result: dict[str, float]) -> dict[str, dict[str, float]]:
    return {
        "clip": {k.split("/")[1]: v for k, v in result.items() if k.startswith("test/")},
        "video": {k.split("/")[1]: v for k, v in result.items() if k.startswith("test_video/")},
    }


def started_before(cell_dir: Path, digest: str) -> bool:
    """Whether the cell in `cell_dir` was started before with the config `digest` (and was
    interrupted, or is being re-run): what `resume_point` resumes from."""
    try:
        return json.loads((cell_dir / "started.json").read_text()).get("config_hash") == digest
    except (OSError, ValueError, AttributeError):
        return False


def resume_point(cell_dir: Path, digest: str) -> dict[str, Any]:
    """Where a cell starts: {"from_checkpoint": its `last.ckpt` or None, and a "note" when
    it was interrupted before a usable checkpoint}. A checkpoint that cannot be read (torn
    by a full disk, say) is reported by path and removed, and the cell starts over; one
    that asks to unpickle objects is refused (ValueError). Marks the cell as started."""
    started_file, last = cell_dir / "started.json", cell_dir / "checkpoints" / "last.ckpt"
    resume: dict[str, Any] = {"from_checkpoint": None}
    started = started_before(cell_dir, digest)
    if started and last.is_file():
        try:
            checkpoint = torch_load(last)
        except RefusedCheckpoint:
            raise
        except ValueError as error:
            last.unlink()
            resume["note"] = f"checkpoint unreadable, trained from the start: {error}"
        else:
            step = checkpoint.get("global_step") if isinstance(checkpoint, dict) else None
            resume.update(from_checkpoint=str(last), step=step)
            set_curve_aside(cell_dir / CURVE_DIR, step)
    elif started:
        resume["note"] = "interrupted before its first checkpoint: trained from the start"
    if resume["from_checkpoint"] is None:
        shutil.rmtree(cell_dir / "checkpoints", ignore_errors=True)
        for part in (cell_dir / CURVE_DIR).glob(f"{CURVE_PART}*.csv"):
            part.unlink()
    atomic_write_text(started_file, json.dumps({"config_hash": digest}))
    return resume


# Lightning's CSV logger deletes `metrics.csv` when a run starts again; on resume the curve
# so far is set aside as a part (`metrics.part-NNN-<step>.csv`, rows before the resume
# step) and joined with the new rows when the cell ends.
CURVE_DIR, CURVE_FILE, CURVE_PART = "csv", "metrics.csv", "metrics.part-"


def set_curve_aside(curve_dir: Path, step: int | None) -> None:
    current = curve_dir / CURVE_FILE
    if current.is_file():
        number = len(list(curve_dir.glob(f"{CURVE_PART}*.csv")))
        current.rename(curve_dir / f"{CURVE_PART}{number:03d}-{step or 0}.csv")


def join_curve(curve_dir: Path) -> None:
    """One `metrics.csv` from the parts set aside at each resume and the last run's rows:
    a part keeps the rows logged before the step the run resumed from."""
    parts = sorted(curve_dir.glob(f"{CURVE_PART}*.csv"))
    if not parts:
        return
    segments = []
    for part in parts:
        with part.open(newline="") as handle:
            segments.append((int(part.stem.rsplit("-", 1)[1]), list(csv.DictReader(handle))))
    current = curve_dir / CURVE_FILE
    if current.is_file():
        with current.open(newline="") as handle:
            segments.append((None, list(csv.DictReader(handle))))
    rows: list[dict[str, str]] = []
    for index, (_, segment) in enumerate(segments):
        later = [u for u, _ in segments[index:] if u is not None]
        limit = min(later) if later else None
        rows += [r for r in segment if limit is None or float(r.get("step") or 0) < limit]
    columns = sorted({key for row in rows for key in row})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(current, text.getvalue())
    for part in parts:
        part.unlink()


@contextlib.contextmanager
def interrupts_kept(trainer: pl.Trainer) -> Iterator[None]:
    """Ctrl-C (or SIGTERM, which `vidbench run` turns into it) inside Lightning's fit or
    test stays a KeyboardInterrupt: Lightning ends the loop, then calls `sys.exit(1)`,
    which would end the sweep with status 1 and no word of what was kept."""
    try:
        yield
    except SystemExit as exit_:
        if trainer.interrupted:
            raise KeyboardInterrupt from exit_
        raise


LR_SEARCH_FILE = "lr_search.json"  # in the cell's folder: a resumed cell keeps its choice


def learning_rate_search(
    cell: Cell, dm: VideoDataModule, out: Path, progress: bool
) -> dict[str, Any]:
    """The cell's learning-rate search (`select_learning_rate`), made once: a cell resumed
    after an interruption reads the one it made before."""
    path = out / "cells" / cell.id / LR_SEARCH_FILE
    try:
        made = json.loads(path.read_text())
        if made.get("config_hash") == cell.hash():
            return made["search"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    search = select_learning_rate(cell, dm, out, progress)
    atomic_write_text(path, json.dumps({"config_hash": cell.hash(), "search": search}))
    return search


def select_learning_rate(
    cell: Cell, dm: VideoDataModule, out: Path, progress: bool
) -> dict[str, Any]:
    """Learning-rate selection on validation (the paper tuned each model's rate on
    Kinetics validation): each rate of `train.lr_grid` trains `lr_search_steps` steps at a
    constant rate from the cell's seed, then the validation split (never the test split)
    is evaluated; the best top-1 (then the lower loss) wins. Returns {"chosen", "by",
    "steps", "candidates": [{"lr", "val_top1", "val_loss"}]}, what the record keeps."""
    train = cell.train
    candidates = []
    for lr in train.lr_grid or []:
        short = train.model_copy(
            update={
                "lr": lr,
                "max_steps": train.lr_search_steps,
                "max_epochs": None,
                "scheduler": "none",
                "lr_schedule": None,
                "warmup_steps": 0,
                "val_every_epochs": 10**6,  # no validation inside the short run; one after it
            }
        )
        trial = cell.model_copy(update={"train": short})
        folder = out / "cells" / cell.id / "lr_search" / f"lr={lr:g}"  # its checkpoints
        pl.seed_everything(cell.seed, workers=True, verbose=False)
        module = build_module(trial, dm, out)
        trainer = make_trainer(trial, folder, [], progress)
        with interrupts_kept(trainer):
            trainer.fit(module, datamodule=dm)
            (result,) = trainer.validate(module, datamodule=dm, verbose=False)
        candidates.append(
            {"lr": lr, "val_top1": float(result["val/top1"]), "val_loss": float(result["val/loss"])}
        )
        log.info(
            "%s: learning rate %g: validation top-1 %.1f%%, loss %.3f",
            cell.id,
            lr,
            100 * candidates[-1]["val_top1"],
            candidates[-1]["val_loss"],
        )
    shutil.rmtree(out / "cells" / cell.id / "lr_search", ignore_errors=True)
    best = max(candidates, key=lambda c: (c["val_top1"], -c["val_loss"]))
    log.info("%s: learning rate %g chosen on validation", cell.id, best["lr"])
    return {
        "chosen": best["lr"],
        "by": "validation top-1, then loss",
        "steps": train.lr_search_steps,
        "candidates": candidates,
    }


def run_cell(cell: Cell, out: Path, wandb_logger: Any | None, progress: bool) -> dict[str, Any]:
    """Train (or resume), test and cost one cell; returns the results part of its record
    (empty on DDP ranks other than 0)."""
    cell_dir = out / "cells" / cell.id
    resume = resume_point(cell_dir, cell.hash())
    if resume.get("note"):
        log.warning("%s: %s", cell.id, resume["note"])
    elif resume["from_checkpoint"]:
        log.info("%s: resuming from %s", cell.id, resume["from_checkpoint"])

    pl.seed_everything(cell.seed, workers=True, verbose=False)
    dm = data_module(cell)
    dm.dataset("test")  # a test split with no video present fails here, before training
    search = None
    if cell.train.lr_grid and not cell.fuses:
        search = learning_rate_search(cell, dm, out, progress)
        chosen = cell.train.model_copy(update={"lr": search["chosen"]})
        cell = cell.model_copy(update={"train": chosen})
        pl.seed_everything(cell.seed, workers=True, verbose=False)
    module = build_module(cell, dm, out)
    loggers = [CSVLogger(cell_dir, name="", version=CURVE_DIR)] + (
        [wandb_logger] if wandb_logger else []
    )
    trainer = make_trainer(cell, cell_dir, loggers, progress)
    # train.compile: Lightning unwraps the compiled module, so `module` holds the results
    runnable = torch.compile(module) if cell.train.compile else module
    timings = {}
    started = time.perf_counter()
    with interrupts_kept(trainer):
        if not cell.fuses and cell.train.max_steps != 0:
            trainer.fit(runnable, datamodule=dm, ckpt_path=resume["from_checkpoint"])
        timings["train_s"] = time.perf_counter() - started
        started = time.perf_counter()
        (result,) = trainer.test(runnable, datamodule=dm, verbose=False)
    timings["test_s"] = time.perf_counter() - started
    if trainer.global_rank != 0:
        return {}
    for logger in loggers:
        logger.save()
    join_curve(cell_dir / CURVE_DIR)
    started = time.perf_counter()
    costs = measure_costs(module, dm, trainer, cell.throughput_batches, not cell.fuses)
    timings["cost_s"] = time.perf_counter() - started
    checkpoint = save_checkpoint(module, cell_dir / FINAL_CHECKPOINT)
    shutil.rmtree(cell_dir / "checkpoints", ignore_errors=True)
    accounting = dm.bad_videos.summary()
    metrics = metrics_of(result)
    ids, labels, probs = module.test_videos
    kept = write_predictions(
        out, cell.id, top_k(ids, labels, probs), probs if cell.keep_probs else None
    )
    return dict(
        status="ok",
        predictions=kept,
        lr_search=search,
        world_size=trainer.world_size,
        batch=cell.train.batch_plan(trainer.num_devices),
        metrics=metrics,
        costs=costs,
        timings=timings,
        resume=resume,
        checkpoint=str(checkpoint),
        started_from=module.hparams.get("started_from"),
        model_from=model_origin(cell.arch),
        data={
            "train": accounting.get(dm.split_for("train")) if not cell.fuses else None,
            "test": accounting.get(dm.split_for("test")),
            "test_split": dm.split_for("test"),
            "test_listed": dm.listed.get(dm.split_for("test")),
            "validated_on": dm.validation_source
            if cell.train.val_every_epochs > 0 or cell.train.lr_grid
            else None,
            "evaluated_videos": int(metrics["video"].get("videos", 0)),
            "num_classes": dm.num_classes,
            "official_classes": official_dataset(dm.class_names),
            "decoder": cell.train.decoder,
            "copy_files": cell.data.copy_files,
            "copy_bytes": cell.data.copy_bytes,
        },
    )


def failed_run_record(
    sweep: SweepConfig,
    cell_id: str,
    error: BaseException,
    command: str,
    started: str,
    cell: Cell | None = None,
    **fields: Any,
) -> RunRecord:
    """The record of a cell that failed with `error` (with its traceback when it was
    raised)."""
    return RunRecord(
        cell=cell_id,
        status="failed",
        sweep=sweep.name,
        code_version=code_version(),
        command=command,
        config=cell,
        config_hash=cell.hash() if cell else None,
        started=started,
        finished=utc_now(),
        error=f"{type(error).__name__}: {error}",
        traceback="".join(traceback.format_exception(error, limit=-8)),
        **fields,
    )


def execute_cell(
    sweep: SweepConfig,
    cell: Cell,
    out: Path,
    command: str,
    version: str,
    progress: bool,
    launcher: dict[str, Any],
    wait: bool = False,
) -> RunRecord | None:
    """Run one cell wherever this process is (inline, a local job, a SLURM job) and append
    its record (before W&B is told); a failure is recorded with its error. `launcher`
    ({"kind", "threads", "job_id"...}) goes into the record and the W&B config. Returns
    the record; None on DDP ranks other than 0, and when another process is running the
    cell (its lock is held) unless `wait` (a job waits for the one it replaces to end).
    A cell found finished with its config once its lock is held is not run again."""
    launcher = {**launcher, "threads": torch.get_num_threads()}
    with contextlib.ExitStack() as stack:
        if rank_zero_only.rank == 0:
            lock = FolderLock(out / "cells" / cell.id, f"cell {cell.id}")
            for attempt in itertools.count():
                try:
                    stack.enter_context(lock)
                    break
                except FolderBusy as busy:
                    if not wait:
                        log.warning("%s: not run here: %s", cell.id, busy)
                        return None
                    if attempt == 0:
                        log.info("%s: waiting: %s", cell.id, busy)
                    time.sleep(5)
            done = finished_record(out, cell)  # by the process it waited for, say
            if done:
                log.info("%s: finished by another process meanwhile; not run again", cell.id)
                return done
        return _execute_cell(sweep, cell, out, command, version, progress, launcher)


def _execute_cell(
    sweep: SweepConfig,
    cell: Cell,
    out: Path,
    command: str,
    version: str,
    progress: bool,
    launcher: dict[str, Any],
) -> RunRecord | None:
    logger, wandb_info, started = None, None, utc_now()
    try:
        logger, note = tracking.open_logger(
            sweep.wandb,
            out / "wandb",
            name=cell.id,
            group=tracking.sweep_group(sweep.wandb, sweep.name, out),
            tags=[cell.arch, cell.dataset, cell.modality, cell.protocol],
            run_config={**cell.model_dump(mode="json"), "launcher": launcher},
            cell_dir=out / "cells" / cell.id,  # keeps the run id, W&B on only
            resume=started_before(out / "cells" / cell.id, cell.hash()),
            job_type="fuse" if cell.fuses else "train",
        )
        wandb_info = {"mode": tracking.wandb_mode(sweep.wandb), "note": note}
        results = run_cell(cell, out, logger, progress)
    except Exception as error:  # the sweep goes on; the record says what went wrong
        log.error("%s failed: %s: %s", cell.id, type(error).__name__, error)
        record = failed_run_record(
            sweep, cell.id, error, command, started, cell, wandb=wandb_info, launcher=launcher
        )
    else:
        if not results:  # a DDP rank other than 0: rank 0 records
            tracking.finish(logger, {}, sweep.wandb.timeout_s)
            return None
        record = RunRecord(
            cell=cell.id,
            sweep=sweep.name,
            code_version=version,
            command=command,
            config=cell,
            config_hash=cell.hash(),
            wandb=wandb_info,
            started=started,
            finished=utc_now(),
            launcher=launcher,
            **results,
        )
    append_record(out / RUNS_FILE, record)  # the results file first, then W&B
    tracking.finish(logger, wandb_summary(record), sweep.wandb.timeout_s)
    return record


def wandb_summary(record: RunRecord) -> dict[str, Any]:
    """What a cell's W&B run summary adds to the metrics Lightning logged during the test
    (`test/top1` clip level, `test_video/top1` video level): its status and costs
    (`cost/params`...), each number under one name."""
    summary: dict[str, Any] = {"status": record.status}
    summary.update({f"cost/{k}": v for k, v in (record.costs or {}).items()})
    return summary
