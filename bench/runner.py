"""Run a sweep: every cell trained with Lightning, tested with its views, costed, recorded.

    records = run_sweep(load_sweep("smoke"), Path("results/smoke"))

Per cell: seed, data module, `VideoClassifier`, `Trainer.fit` (resumed from the cell's
`last.ckpt` when an earlier run was interrupted), `Trainer.test`, measured costs, then
one record appended to `DIR/runs.jsonl` (before W&B is told). Finished cells are skipped
on a re-run; a failing cell is recorded with its error and the sweep goes on. I3D's
`rgb+flow` cell trains nothing: it tests the sum of its rgb and flow cells' logits.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
from pytorch_lightning.utilities import rank_zero_only

from vidbench.bench import tracking
from vidbench.bench.cell import execute_cell, failed_run_record
from vidbench.bench.cells import (
    Cell,
    CellKey,
    DataSource,
    config_hash,
    expand_cells,
    resolve_cell,
)
from vidbench.bench.config import SweepConfig, cell_spec
from vidbench.bench.leaderboard import NUMERIC_COLUMNS, numeric_rows, summarise
from vidbench.bench.leaderboard_page import write_leaderboard
from vidbench.bench.preflight import PreflightError, preflight
from vidbench.bench.results import (
    RUNS_FILE,
    RunRecord,
    append_record,
    code_version,
    invocation,
    latest_by_cell,
    read_records,
    read_verdicts,
    utc_now,
)
from vidbench.datasets.files import (
    FolderLock,
    default_cache_dir,
    walk_files,
)
from vidbench.datasets.flow import FlowConfig

if TYPE_CHECKING:
    from vidbench.datasets.synthetic import SynthConfig

log = logging.getLogger(__name__)


def synthetic_folder(synth: SynthConfig) -> Path:
    """Where the synthetic dataset `synth` is made and cached: named by its settings' hash."""
    return default_cache_dir() / "synthetic" / config_hash(asdict(synth))


def prepare_data(
    name: str,
    sweep: SweepConfig,
    flow_config: FlowConfig | None,
    progress: bool,
    make: bool = True,
) -> DataSource:
    """The dataset's folders (`fold` left to each cell); synthetic data is made (and its
    flow extracted with `flow_config`, when a cell reads flow) on first use and cached.
    With `make=False` nothing is made or checked: the folders it would use, and the size
    of what is there now (a dry run)."""
    dataset = sweep.datasets[name]
    flow = dataset.flow
    if dataset.synthetic is not None:
        from vidbench.datasets.flow_extract import extract_all, list_videos
        from vidbench.datasets.synthetic import make_synthetic_dataset

        synth = dataset.synthetic
        root = synthetic_folder(synth)
        videos, annotations = root / "videos", root / "annotations"
        if flow_config is not None:
            flow = str(root / f"flow-{flow_config.algorithm}")
        if make:
            make_synthetic_dataset(root, synth, progress=progress)
        if make and flow_config is not None:
            relpaths, _ = list_videos(videos)
            summary = extract_all(
                videos,
                Path(flow),
                flow_config,
                relpaths,
                workers=os.cpu_count() or 1,
                progress=progress,
            )
            if summary["failed"]:
                raise RuntimeError(f"flow extraction failed for {sorted(summary['failed'])}")
    else:
        videos, annotations = Path(dataset.videos), Path(dataset.annotations)
        if make and flow_config is not None and not Path(flow).is_dir():
            raise FileNotFoundError(
                f"datasets.{name}.flow: {flow} is not a folder; extract it first with "
                f"`vidbench flow extract --videos {videos} --out {flow}`"
            )
    sizes = [p.stat().st_size for p in walk_files(videos)] if videos.is_dir() else []
    return DataSource(
        format=dataset.format,
        videos=str(videos),
        annotations=str(annotations),
        flow=flow,
        fold=None,
        copy_files=len(sizes),
        copy_bytes=sum(sizes),
        synthetic=dataset.synthetic is not None,
        test_split=dataset.test_split,
        min_coverage=dataset.min_coverage,
    )


def dataset_flow_configs(sweep: SweepConfig, cells: list[CellKey]) -> dict[str, FlowConfig]:
    """The flow settings of each dataset some cell reads flow from (the sweep's, not
    per_arch: one per dataset)."""
    return {
        key.dataset: cell_spec(sweep, key.arch, key.modality).flow_config
        for key in cells
        if "flow" in key.modality
    }


def check_output_folder(sweep: SweepConfig, out: Path) -> None:
    """ValueError when `out` is or lies inside a dataset's video, annotation or flow
    folder: its `cells/` and `records/` would be read as classes or videos (a folder-format
    root), and a flow root must hold only flow."""
    real = Path(out).resolve()
    for name, dataset in sweep.datasets.items():
        if dataset.synthetic is not None:
            continue
        for key in ("videos", "annotations", "flow"):
            folder = getattr(dataset, key)
            if folder is None:
                continue
            source = Path(folder).resolve()
            if real == source or source in real.parents:
                raise ValueError(
                    f"--out {out} lies inside datasets.{name}.{key} ({folder}), whose files "
                    "are read as data; give a results folder outside it"
                )


class Planned(NamedTuple):
    """A cell of a sweep and what a run does with it: "run", "skip" (finished with this
    config), "rerun" (its record has another config) or "fail" (`error`: it cannot be
    resolved, or the preflight refused its dataset; `cell` is then None)."""

    key: CellKey
    cell: Cell | None
    action: str
    error: Exception | None = None


def resolve_plan(
    sweep: SweepConfig,
    out: Path,
    *,
    make: bool,
    progress: bool = False,
    refused: dict[str, list[str]] | None = None,
) -> list[Planned]:
    """Every cell of the sweep resolved against `out`'s records: what `run` does and
    `run --dry-run` shows. With `make`, synthetic data (and its flow) is made on first
    use; without, nothing is made, and a finished cell of a synthetic dataset not made yet
    is compared with the size its record names (the generator makes the same files from
    the same settings: the folder is named by their hash). `refused` ({dataset: problems},
    the preflight's) fails those datasets' cells."""
    refused = refused or {}
    cells = expand_cells(sweep)
    finished = {
        cid: r
        for cid, r in latest_by_cell(read_records(out / RUNS_FILE)).items()
        if r.status == "ok"
    }
    flow_configs = dataset_flow_configs(sweep, cells)
    data: dict[str, DataSource] = {}
    plan = []
    for key in cells:
        try:
            if key.dataset in refused:
                raise PreflightError("preflight: " + "; ".join(refused[key.dataset]))
            if key.dataset not in data:
                flow = flow_configs.get(key.dataset)
                data[key.dataset] = prepare_data(key.dataset, sweep, flow, progress, make=make)
            cell = resolve_cell(sweep, key, data[key.dataset])
        except Exception as error:  # recorded by the run, raised by the dry run
            plan.append(Planned(key, None, "fail", error))
            continue
        done = finished.get(key.id)
        if done and done.config and cell.data.synthetic and not Path(cell.data.videos).is_dir():
            sizes = {f: getattr(done.config.data, f) for f in ("copy_files", "copy_bytes")}
            cell = cell.model_copy(update={"data": cell.data.model_copy(update=sizes)})
        action = "run" if done is None else "skip" if done.config_hash == cell.hash() else "rerun"
        plan.append(Planned(key, cell, action))
    return plan


def plan_sweep(sweep: SweepConfig, out: Path) -> list[tuple[Cell, str]]:
    """Every cell of the sweep with what `run_sweep` would do with it (`resolve_plan`);
    makes and trains nothing (`vidbench run --dry-run`). A cell that cannot be resolved
    raises its error."""
    check_output_folder(sweep, out)
    plan = resolve_plan(sweep, out, make=False)
    for planned in plan:
        if planned.error is not None:
            raise planned.error
    return [(planned.cell, planned.action) for planned in plan]


def run_sweep(
    sweep: SweepConfig, out: Path, *, progress: bool = True, command: str | None = None
) -> list[RunRecord]:
    """Run every cell not already finished with the same config, where `sweep.launcher`
    says (`vidbench.bench.launch`: here one after another, in local processes or as SLURM
    jobs); returns all latest records. `command` (the command line, for the records and
    the leaderboard) defaults to this process's.

    The output folder is locked for the run (`vidbench.datasets.files.FolderLock`): a second
    run on it stops at once with FolderBusy naming the holder; each cell is locked too
    while it runs, so a job still running from an earlier `--no-wait` run is not doubled.
    DDP ranks other than 0 work under rank 0's lock.
    """
    from vidbench.bench import launch

    out, command = Path(out), command or invocation()
    check_output_folder(sweep, out)
    checked = preflight(sweep, out)  # on every DDP rank, so that all refuse the same cells
    if rank_zero_only.rank != 0:
        cells = todo_cells(sweep, out, progress, command, checked.problems)
        _run_inline(sweep, out, progress, command, cells)
        return []
    with FolderLock(out, f"vidbench run {sweep.name}"):
        for line in checked.lines:
            log.info("preflight: %s", line)
        cells = todo_cells(sweep, out, progress, command, checked.problems)
        if sweep.launcher.kind == "inline":
            _run_inline(sweep, out, progress, command, cells)
        else:
            launch.launch(sweep, out, cells, command, progress)
        records = list(latest_by_cell(read_records(out / RUNS_FILE)).values())
        publish(sweep, out, records, command)
    return records


def todo_cells(
    sweep: SweepConfig,
    out: Path,
    progress: bool,
    command: str,
    refused: dict[str, list[str]] | None = None,
) -> list[Cell]:
    """The sweep's cells to run (`resolve_plan`, the data made on first use). A cell that
    cannot be resolved (its data is missing, say), or whose dataset the preflight
    `refused`, is recorded as failed here, with its error, and left out."""
    todo, skipped = [], 0
    plan = resolve_plan(sweep, out, make=True, progress=progress, refused=refused)
    for key, cell, action, error in plan:
        if error is not None:
            log.error("%s failed: %s: %s", key.id, type(error).__name__, error)
            if rank_zero_only.rank == 0:
                failure = failed_run_record(sweep, key.id, error, command, utc_now())
                append_record(out / RUNS_FILE, failure)
        elif action == "skip":
            skipped += 1
            log.info("%s: finished earlier, skipped", key.id)
        else:
            if action == "rerun":
                log.warning("%s: config changed since its record, running again", key.id)
            todo.append(cell)
    if skipped:
        log.info("%d of %d cells were finished earlier and skipped", skipped, len(plan))
    return todo


def _run_inline(
    sweep: SweepConfig, out: Path, progress: bool, command: str, cells: list[Cell]
) -> None:
    version = code_version()
    if sweep.launcher.threads:
        torch.set_num_threads(sweep.launcher.threads)
    for index, cell in enumerate(cells, 1):
        log.info("[%d/%d] %s: running", index, len(cells), cell.id)
        execute_cell(
            sweep,
            cell,
            out,
            command,
            version,
            progress,
            {"kind": "inline", "host": socket.gethostname()},
        )


def sweep_tags(sweep: SweepConfig, records: list[RunRecord]) -> list[str]:
    """The sweep's name and every tag its cells' W&B runs carry (architecture, dataset,
    modality, protocol)."""
    cells = [r.config for r in records if r.config is not None]
    tags = {sweep.name} | {t for c in cells for t in (c.arch, c.dataset, c.modality, c.protocol)}
    return sorted(tags)


def publish(
    sweep: SweepConfig, out: Path, records: list[RunRecord], command: str | None = None
) -> dict[str, Path]:
    """The sweep's leaderboard: `leaderboard.md` and `.html` in `out`, and its tables in
    W&B (as the sweep's W&B settings say). Returns the files' paths."""
    paths = write_leaderboard(
        records, out, f"vidbench sweep {sweep.name}", command, read_verdicts(out)
    )
    summary = summarise(records)
    tracking.log_tables(
        sweep.wandb,
        out / "wandb",
        tracking.sweep_group(sweep.wandb, sweep.name, out),
        {"results": (NUMERIC_COLUMNS, numeric_rows(summary))},
        tags=sweep_tags(sweep, records),
    )
    return paths
