"""Run a sweep: every cell trained with Lightning, tested with its views, costed, recorded.

    records = run_sweep(load_sweep("smoke"), Path("results/smoke"))

Per cell: seed, data module, `VideoClassifier`, `Trainer.fit` (resumed from the cell's
`last.ckpt` when an earlier run was interrupted), `Trainer.test`, measured costs, then
one record appended to `DIR/runs.jsonl` (before W&B is told). Finished cells are skipped
on a re-run; a failing cell is recorded with its error and the sweep goes on. I3D's
`rgb+flow` cell trains nothing: it tests the sum of its rgb and flow cells' logits.
"""

from __future__ import annotations

import copy
import csv
import datetime
import io
import json
import logging
import os
import shutil
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from vidbench.bench import tracking
from vidbench.bench.config import (
    SweepConfig,
    cell_id,
    cell_model_options,
    cell_spec,
    config_hash,
    expand_cells,
)
from vidbench.bench.paper import official_dataset
from vidbench.bench.results import (
    RUNS_FILE,
    append_record,
    code_version,
    latest_by_cell,
    read_records,
)
from vidbench.bench.throughput import measure
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.datamodule import VideoDataModule
from vidbench.datasets.files import (
    FolderLock,
    atomic_write,
    atomic_write_text,
    default_cache_dir,
    walk_files,
)
from vidbench.datasets.flow import FlowConfig
from vidbench.models import VideoClassifier
from vidbench.models.backbones import RefusedCheckpoint, torch_load
from vidbench.models.costs import macs_per_clip
from vidbench.models.weights import fuse_i3d_streams, load_classifier, save_checkpoint

log = logging.getLogger(__name__)
FINAL_CHECKPOINT = "final.ckpt"


@dataclass
class DataPaths:
    """Where a dataset of the sweep lives, resolved (synthetic data made on first use)."""

    format: str
    videos: str
    annotations: str
    flow: str | None
    copy_files: int
    copy_bytes: int
    synthetic: bool = False


def prepare_data(
    name: str, sweep: SweepConfig, flow_config: FlowConfig | None, progress: bool
) -> DataPaths:
    """The dataset's folders; synthetic data is made (and its flow extracted with
    `flow_config`, when a cell reads flow) on first use and cached."""
    dataset = sweep.datasets[name]
    flow = dataset.flow
    if dataset.synthetic is not None:
        from vidbench.datasets.flow_extract import extract_all, list_videos
        from vidbench.datasets.synthetic import SynthConfig, make_synthetic_dataset

        synth = SynthConfig(**dataset.synthetic.model_dump())
        root = default_cache_dir() / "synthetic" / config_hash(asdict(synth))
        make_synthetic_dataset(root, synth, progress=progress)
        videos, annotations = root / "videos", root / "annotations"
        if flow_config is not None:
            flow = str(root / f"flow-{flow_config.algorithm}")
            relpaths, _ = list_videos(videos)
            summary = extract_all(
                videos, Path(flow), flow_config, relpaths, workers=os.cpu_count() or 1,
                progress=progress,
            )  # fmt: skip
            if summary["failed"]:
                raise RuntimeError(f"flow extraction failed for {sorted(summary['failed'])}")
    else:
        videos, annotations = Path(dataset.videos), Path(dataset.annotations)
        if flow_config is not None and not Path(flow).is_dir():
            raise FileNotFoundError(
                f"datasets.{name}.flow: {flow} is not a folder; extract it first with "
                f"`vidbench flow extract --videos {videos} --out {flow}`"
            )
    sizes = [p.stat().st_size for p in walk_files(videos)]
    return DataPaths(
        dataset.format, str(videos), str(annotations), flow, len(sizes), sum(sizes),
        synthetic=dataset.synthetic is not None,
    )  # fmt: skip


def resolve_cell(sweep: SweepConfig, cell: dict[str, Any], data: DataPaths) -> dict[str, Any]:
    """Everything that decides a cell's result, as plain JSON (hashed into config_hash)."""
    arch, modality = cell["arch"], cell["modality"]
    return {
        "sweep": sweep.name,
        **{k: v for k, v in cell.items() if k != "fuses"},
        "fuses": cell["fuses"],
        "data": {**asdict(data), "fold": cell["fold"]},
        "model_options": cell_model_options(sweep, arch, modality),
        "input": cell_spec(sweep, arch, modality).to_dict(),
        "flip": sweep.flip,
        "train": sweep.train.model_dump(),
        "eval": {"throughput_batches": sweep.eval.throughput_batches},
    }


def trained_on(resolved: dict[str, Any]) -> dict[str, Any]:
    data = resolved["data"]
    return {
        "format": data["format"],
        "annotations": str(Path(data["annotations"]).resolve()),
        "fold": data["fold"],
    }


def check_split(init_checkpoint: str, resolved: dict[str, Any]) -> None:
    """Refuse to test a model on another split of the dataset it was trained on."""
    checkpoint = torch_load(init_checkpoint)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    source = (hparams or {}).get("trained_on")
    here = trained_on(resolved)
    same_dataset = source and all(source[k] == here[k] for k in ("format", "annotations"))
    if same_dataset and source["fold"] != here["fold"]:
        raise ValueError(
            f"{init_checkpoint} was trained on {here['format']} split {source['fold']}; "
            f"testing it on split {here['fold']} would test on its training videos"
        )


def data_module(resolved: dict[str, Any]) -> VideoDataModule:
    data, train = resolved["data"], resolved["train"]
    spec = ClipSpec.from_dict(resolved["input"], f"{resolved['cell']}: input")
    return VideoDataModule(
        data["format"],
        data["videos"],
        data["annotations"],
        spec,
        fold=data["fold"],
        batch_size=train["batch_size"],
        num_workers=train["num_workers"],
        decoder=train["decoder"],
        max_bad_fraction=train["max_bad_fraction"],
        flow_root=data["flow"] if "flow" in spec.modalities else None,
        flip=resolved["flip"],
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


def make_trainer(resolved: dict[str, Any], cell_dir: Path, loggers: list, progress: bool):
    train = resolved["train"]
    accelerator = train["accelerator"]
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    precision = train["precision"]
    if precision == "auto":
        precision = "bf16-mixed" if on_gpu else "32-true"
    steps = train["max_steps"]
    checkpoints = ModelCheckpoint(
        dirpath=cell_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=max(1, steps // 10) if steps > 0 else None,
    )
    return pl.Trainer(
        accelerator=accelerator,
        devices=train["devices"],
        num_nodes=train["num_nodes"],
        strategy=train["strategy"],
        precision=precision,
        max_steps=steps,
        max_epochs=train["max_epochs"],
        logger=loggers,
        callbacks=[checkpoints],
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if train["val_every_epochs"] > 0 else 0,
        check_val_every_n_epoch=max(1, train["val_every_epochs"]),
        log_every_n_steps=max(1, min(50, steps // 20)),
        default_root_dir=cell_dir,
        use_distributed_sampler=False,  # the data module shards; evaluation without repeats
    )


def build_module(resolved: dict[str, Any], dm: VideoDataModule, out: Path) -> VideoClassifier:
    if resolved["fuses"]:
        streams = {}
        for stream in resolved["fuses"]:
            sibling = cell_id({**resolved, "modality": stream})
            path = out / "cells" / sibling / FINAL_CHECKPOINT
            if not path.is_file():
                raise FileNotFoundError(
                    f"{resolved['cell']} fuses {sibling}, which has no checkpoint at {path}"
                )
            streams[stream] = load_classifier(path)
        return fuse_i3d_streams(streams["rgb"], streams["flow"])
    train = resolved["train"]
    init = train["init_checkpoint"] if resolved["protocol"] != "scratch" else None
    if init:  # `{modality}`, `{arch}`... in the path name the cell's own source
        init = init.format(**{k: resolved[k] for k in ("arch", "modality", "dataset", "fold")})
        check_split(init, resolved)
    return VideoClassifier(
        resolved["arch"],
        dm.num_classes,
        dm.class_names,
        model_options=resolved["model_options"],
        protocol=resolved["protocol"],
        optimizer=train["optimizer"],
        lr=train["lr"],
        momentum=train["momentum"],
        weight_decay=train["weight_decay"],
        scheduler=train["scheduler"],
        lr_step=train["lr_step"],
        init_checkpoint=init,
        trained_on=trained_on(resolved),
        preprocessing=resolved["input"],
    )


def measure_costs(
    module: VideoClassifier, dm: VideoDataModule, trainer: pl.Trainer, repeats: int, train: bool
) -> dict[str, Any]:
    """Parameters, multiply-adds per clip and clips/s on the cell's device, on a real batch."""
    batch = dm.on_before_batch_transfer(next(iter(dm.test_dataloader())), 0)
    inputs = {
        k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
    }
    size = dm.hparams.batch_size
    inputs = {k: v[:1].expand(size, *v.shape[1:]).contiguous() for k, v in inputs.items()}
    net = copy.deepcopy(module.net).eval()
    precision = str(trainer.precision)
    costs = measure(net, inputs, trainer.strategy.root_device, precision, repeats, train=train)
    costs["macs_per_clip"] = macs_per_clip(net.cpu(), {k: v[:1].cpu() for k, v in inputs.items()})
    costs["gmacs_per_clip"] = costs["macs_per_clip"] / 1e9
    costs["input_shape"] = {k: list(v.shape[1:]) for k, v in inputs.items()}
    return costs


def metrics_of(result: dict[str, float]) -> dict[str, dict[str, float]]:
    return {
        "clip": {k.split("/")[1]: v for k, v in result.items() if k.startswith("test/")},
        "video": {k.split("/")[1]: v for k, v in result.items() if k.startswith("test_video/")},
    }


def resume_point(cell_dir: Path, digest: str) -> dict[str, Any]:
    """Where a cell starts: {"from_checkpoint": its `last.ckpt` or None, and a "note" when
    it was interrupted before a usable checkpoint}. A checkpoint that cannot be read (torn
    by a full disk, say) is reported by path and removed, and the cell starts over; one
    that asks to unpickle objects is refused (ValueError). Marks the cell as started."""
    started_file, last = cell_dir / "started.json", cell_dir / "checkpoints" / "last.ckpt"
    resume: dict[str, Any] = {"from_checkpoint": None}
    try:
        started = json.loads(started_file.read_text()).get("config_hash")
    except (OSError, ValueError, AttributeError):
        started = None
    if started == digest and last.is_file():
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
    elif started == digest:
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


def run_cell(
    resolved: dict[str, Any], out: Path, wandb_logger: Any | None, progress: bool
) -> dict[str, Any]:
    """Train (or resume), test and cost one cell; returns the results part of its record
    (empty on DDP ranks other than 0)."""
    cell_dir = out / "cells" / resolved["cell"]
    resume = resume_point(cell_dir, config_hash(resolved))
    if resume.get("note"):
        log.warning("%s: %s", resolved["cell"], resume["note"])
    elif resume["from_checkpoint"]:
        log.warning("%s: resuming from %s", resolved["cell"], resume["from_checkpoint"])

    pl.seed_everything(resolved["seed"], workers=True, verbose=False)
    dm = data_module(resolved)
    module = build_module(resolved, dm, out)
    loggers = [CSVLogger(cell_dir, name="", version=CURVE_DIR)] + (
        [wandb_logger] if wandb_logger else []
    )
    trainer = make_trainer(resolved, cell_dir, loggers, progress)
    timings = {}
    started = time.perf_counter()
    if not resolved["fuses"] and resolved["train"]["max_steps"] != 0:
        trainer.fit(module, datamodule=dm, ckpt_path=resume["from_checkpoint"])
    timings["train_s"] = time.perf_counter() - started
    started = time.perf_counter()
    (result,) = trainer.test(module, datamodule=dm, verbose=False)
    timings["test_s"] = time.perf_counter() - started
    if trainer.global_rank != 0:
        return {}
    for logger in loggers:
        logger.save()
    join_curve(cell_dir / CURVE_DIR)
    started = time.perf_counter()
    costs = measure_costs(
        module, dm, trainer, resolved["eval"]["throughput_batches"], not resolved["fuses"]
    )
    timings["cost_s"] = time.perf_counter() - started
    checkpoint = save_checkpoint(module, cell_dir / FINAL_CHECKPOINT)
    shutil.rmtree(cell_dir / "checkpoints", ignore_errors=True)
    accounting = dm.bad_videos.summary()
    metrics = metrics_of(result)
    return dict(
        status="ok",
        world_size=trainer.world_size,
        metrics=metrics,
        costs=costs,
        timings=timings,
        resume=resume,
        checkpoint=str(checkpoint),
        data={
            "train": accounting.get(dm.split_for("train")) if not resolved["fuses"] else None,
            "test": accounting.get(dm.split_for("test")),
            "test_split": dm.split_for("test"),
            "evaluated_videos": int(metrics["video"].get("videos", 0)),
            "num_classes": dm.num_classes,
            "official_classes": official_dataset(dm.class_names),
            "decoder": resolved["train"]["decoder"],
            "copy_files": resolved["data"]["copy_files"],
            "copy_bytes": resolved["data"]["copy_bytes"],
        },
    )


def run_sweep(sweep: SweepConfig, out: Path, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run every cell not already finished with the same config; returns all latest records.

    The output folder is locked for the run (`vidbench.datasets.files.FolderLock`): a second run
    on it stops at once with FolderBusy naming the holder. DDP ranks other than 0 work
    under rank 0's lock.
    """
    out = Path(out)
    if rank_zero_only.rank != 0:
        return _run_sweep(sweep, out, progress)
    with FolderLock(out, f"vidbench run {sweep.name}"):
        return _run_sweep(sweep, out, progress)


def _run_sweep(sweep: SweepConfig, out: Path, progress: bool) -> list[dict[str, Any]]:
    runs = out / RUNS_FILE
    cells = expand_cells(sweep)
    version = code_version()
    finished = {
        cid: r for cid, r in latest_by_cell(read_records(runs)).items() if r["status"] == "ok"
    }
    flow_configs = {  # flow settings are the sweep's (not per_arch): one per dataset
        c["dataset"]: cell_spec(sweep, c["arch"], c["modality"]).flow_config
        for c in cells
        if "flow" in c["modality"]
    }
    data: dict[str, DataPaths] = {}
    skipped = 0
    for index, cell in enumerate(cells, 1):
        cid = cell_id(cell)
        header = f"[{index}/{len(cells)}] {cid}"
        record: dict[str, Any] = {"sweep": sweep.name, "cell": cid, "code_version": version}
        logger = None
        started = datetime.datetime.now(datetime.timezone.utc)
        try:
            if cell["dataset"] not in data:
                data[cell["dataset"]] = prepare_data(
                    cell["dataset"], sweep, flow_configs.get(cell["dataset"]), progress
                )
            resolved = {"cell": cid, **resolve_cell(sweep, cell, data[cell["dataset"]])}
            record.update(config=resolved, config_hash=config_hash(resolved))
            done = finished.get(cid)
            if done and done.get("config_hash") == record["config_hash"]:
                skipped += 1
                log.warning("%s: finished earlier, skipped", header)
                continue
            if done:
                log.warning("%s: config changed since its record, running again", header)
            log.warning("%s: running", header)
            logger, note = tracking.open_logger(
                sweep.wandb,
                out / "wandb",
                name=cid,
                group=sweep.name,
                tags=[cell["arch"], cell["dataset"], cell["modality"], cell["protocol"]],
                run_config=resolved,
            )
            record["wandb"] = {"mode": tracking.wandb_mode(sweep.wandb), "note": note}
            record.update(run_cell(resolved, out, logger, progress))
        except Exception as error:  # the sweep goes on; the record says what went wrong
            log.error("%s failed: %s: %s", header, type(error).__name__, error)
            record.update(
                status="failed",
                error=f"{type(error).__name__}: {error}",
                traceback=traceback.format_exc(limit=-8),
            )
        if "status" not in record:  # a DDP rank other than 0: rank 0 records
            tracking.finish(logger, {}, sweep.wandb.timeout_s)
            continue
        record.update(
            started=started.isoformat(timespec="seconds"),
            finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        )
        append_record(runs, record)  # the results file first, then W&B
        summary = {
            f"{level}/{k}": v
            for level, m in record.get("metrics", {}).items()
            for k, v in m.items()
        }
        summary.update({f"cost/{k}": v for k, v in record.get("costs", {}).items()})
        summary["status"] = record["status"]
        tracking.finish(logger, summary, sweep.wandb.timeout_s)
    if skipped:
        log.warning("%d of %d cells were finished earlier and skipped", skipped, len(cells))
    return list(latest_by_cell(read_records(runs)).values())
