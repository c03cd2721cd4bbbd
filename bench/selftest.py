"""`vidbench selftest`: what a new device can do, checked and measured in one command.

1. The throughput matrix (`throughput.measure_matrix`): every architecture, forward and
   backward, in 32-true and bf16-mixed, contiguous and channels_last_3d, eager and
   compiled, with the fraction of the device's peak; written as the throughput CSV.
2. The device-side input conversion (`datasets.transforms.to_model_input`): the same
   uint8 batch converted on the device and on the CPU must agree; its time a batch.
3. One training cell of the smoke sweep (C3D on the synthetic-motion data) on the device.
4. That cell's test accuracy evaluated in 32-true and in bf16-mixed: the change mixed
   precision makes.

Sizes: `full` (the paper's networks and inputs; meant for about 8 minutes on one GPU, an
estimate: not yet run on one) or `tiny`
(width 0.125, 8 x 32 clips: what the CPU runs in the test suite).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidbench.bench.throughput import (
    device_info,
    format_figure,
    measure_matrix,
    time_calls,
    write_matrix,
)
from vidbench.datasets.files import atomic_write_text

log = logging.getLogger(__name__)
PRECISIONS = ["32-true", "bf16-mixed"]
REPORT = "selftest.json"


@dataclass(frozen=True)
class SelftestSize:
    """What each part runs at."""

    width: float | None  # channel multiplier of the matrix (None: the paper's networks)
    geometry: tuple[int, int] | None  # frames x crop of the matrix (None: the paper's)
    batch: int  # clips a measured step
    min_time: float  # seconds of timing per figure, at least
    conversion: tuple[int, int, int]  # batch, frames, pixels of the converted batch
    steps: int  # training steps of the cell


SIZES = {
    "full": SelftestSize(None, None, 8, 1.0, (8, 64, 224), 300),
    "tiny": SelftestSize(0.125, (8, 32), 2, 0.0, (2, 8, 32), 20),
}


def check_conversion(device: torch.device, batch: int, frames: int, size: int) -> dict[str, Any]:
    """A uint8 RGB batch (B, T, S, S, 3) whose crops are boxes smaller than S and half of
    whose clips are mirrored, converted on `device` and on the CPU: the largest difference
    and the time a batch on the device."""
    from vidbench.datasets.transforms import to_model_input

    generator = torch.Generator().manual_seed(0)
    clips = torch.randint(
        0, 256, (batch, frames, size, size, 3), dtype=torch.uint8, generator=generator
    )
    shipped = {
        "rgb": clips,
        "box": torch.full((batch,), size * 7 // 8),
        "flip": torch.arange(batch) % 2 == 0,
    }
    on_cpu = to_model_input(dict(shipped))["rgb"]
    moved = {k: v.to(device) for k, v in shipped.items()}
    on_device = to_model_input(dict(moved))["rgb"]
    timing = time_calls(lambda: to_model_input(dict(moved)), 5, 0.2, cuda=device.type == "cuda")
    difference = (on_device.float().cpu() - on_cpu).abs().max().item()
    return {
        "shape": list(on_device.shape),
        "max_abs_difference": difference,
        "agrees": difference < 1e-3,  # bilinear resizes on two devices round apart
        "ms_per_batch": 1000 * timing.median,
    }


def train_cell(device: torch.device, steps: int, out: Path, progress: bool) -> dict[str, Any]:
    """One smoke-sweep cell (C3D, seed 0) trained for `steps` on `device` in this process."""
    from vidbench.bench.config import load_sweep
    from vidbench.bench.runner import run_sweep

    overrides = [
        "arch=[c3d]",
        "seed=[0]",
        f"train.max_steps={steps}",
        f"train.warmup_steps={min(100, steps // 4)}",
        f"train.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        "train.devices=1",
        "train.precision=32-true",
        "launcher.kind=inline",
    ]
    sweep = load_sweep("smoke", overrides)
    started = time.perf_counter()
    (record,) = run_sweep(sweep, out, progress=progress, command="vidbench selftest")
    if record.status != "ok":
        raise RuntimeError(f"the selftest's training cell failed: {record.error}")
    return {
        "cell": record.cell,
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
        "top1": 100 * record.metrics.video["top1"],
        "checkpoint": record.checkpoint,
        "config": record.config,
    }


def precision_change(device: torch.device, cell: dict[str, Any]) -> dict[str, Any]:
    """The trained cell's video top-1 tested in 32-true and in bf16-mixed."""
    import pytorch_lightning as pl

    from vidbench.bench.cell import data_module
    from vidbench.models.weights import load_classifier

    top1 = {}
    for precision in PRECISIONS:
        trainer = pl.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            precision=precision,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        module = load_classifier(cell["checkpoint"])
        (result,) = trainer.test(module, datamodule=data_module(cell["config"]), verbose=False)
        top1[precision] = 100 * result["test_video/top1"]
    return {"top1": top1, "bf16_minus_fp32": top1["bf16-mixed"] - top1["32-true"]}


def run_selftest(
    device: torch.device,
    out: Path,
    size: str = "full",
    archs: list[str] | None = None,
    compile: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Every part above on `device`, results under `out`: the throughput CSV and
    `selftest.json` (what each part found). Returns that report."""
    from vidbench.models import list_models

    plan = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"size": size, **device_info(device), "torch": torch.__version__}
    started = time.perf_counter()
    rows = []
    for row in measure_matrix(
        archs or list_models(),
        device,
        PRECISIONS,
        channels_last=[False, True],
        compiled=[False, True] if compile else [False],
        batch=plan.batch,
        width=plan.width,
        geometry=plan.geometry,
        runs=5,
        min_time=plan.min_time,
    ):
        rows.append(row)
        log.info("%s", format_figure(row))
        matrix = write_matrix(rows, out, device.type, PRECISIONS)
    report["matrix"] = {"file": matrix.name, "figures": len(rows)}
    report["conversion"] = check_conversion(device, *plan.conversion)
    cell = train_cell(device, plan.steps, out / "cell", progress)
    report["training_cell"] = {k: v for k, v in cell.items() if k not in ("config", "checkpoint")}
    report["mixed_precision"] = precision_change(device, cell)
    report["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(out / REPORT, json.dumps(report, indent=2) + "\n")
    return report
