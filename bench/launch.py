"""Launchers: a sweep's cells run in processes of their own, on this machine or on SLURM.

    launch(sweep, out, cells, command, progress)   # sweep.launcher.kind: local or slurm

Both go through submitit, which pickles each cell's job into `OUT/jobs/` and starts it:
`local` as a subprocess of this one (`submitit.LocalExecutor`, here), at most `jobs` at a
time, each with its own GPUs or its share of the cores; `slurm` as an `sbatch` job per
cell (`vidbench.bench.slurm`), the order kept by job dependencies. A job runs
`cell.execute_cell` (`jobs.CellJob`), which locks its cell, trains, tests and appends its record
(`results.append_record`: a file of its own, then `OUT/runs.jsonl`); this process only
follows the jobs. A job that ends without a record (killed, out of memory) is recorded as
failed, naming its log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import submitit
import submitit.helpers

from vidbench.bench.cells import Cell
from vidbench.bench.config import SweepConfig
from vidbench.bench.jobs import (
    JOBS_DIR,
    CellJob,
    CellProgress,
    dependencies,
    record_lost_job,
    record_since,
)
from vidbench.bench.results import (
    code_version,
    utc_now,
)

log = logging.getLogger(__name__)


def cpu_threads(jobs: int, threads: int | None = None) -> int:
    """Torch threads per job when `jobs` share this machine's cores (`threads` if given)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return threads or max(1, (cores or 1) // jobs)


def visible_gpus() -> list[int]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES's numbers, else all of them."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [int(g) for g in listed.split(",") if g.strip().isdigit()]
    import torch

    return list(range(torch.cuda.device_count()))


def several_devices(cell: Cell) -> bool:
    """Whether the cell trains on more than one device or node (DDP)."""
    devices, cpu = cell.train.devices, cell.train.accelerator == "cpu"
    return cell.train.num_nodes > 1 or (devices != 1 and not (devices == "auto" and cpu))


def launch(sweep: SweepConfig, out: Path, cells: list[Cell], command: str, progress: bool) -> None:
    """Run `cells` as `sweep.launcher` says (local or slurm); returns when they have ended
    (or, for slurm without `wait`, once they are submitted)."""
    if sweep.launcher.kind == "slurm":
        from vidbench.bench.slurm import require_slurm

        require_slurm()
    if not cells:
        return
    version = code_version()
    folder = out / JOBS_DIR
    if sweep.launcher.kind == "local":
        run_local(sweep, out, cells, folder, command, version, progress)
    else:
        from vidbench.bench.slurm import run_slurm

        run_slurm(sweep, out, cells, folder, command, version, progress)


def run_local(
    sweep: SweepConfig,
    out: Path,
    cells: list[Cell],
    folder: Path,
    command: str,
    version: str,
    progress: bool,
) -> None:
    """`jobs` cells at a time as subprocesses, in dependency order, each with its own GPUs
    (CUDA_VISIBLE_DEVICES) or `cores / jobs` torch threads."""
    settings = sweep.launcher
    multi = [c.id for c in cells if several_devices(c)]
    if multi:
        raise ValueError(
            f"cells {multi} train on several devices or nodes; the local launcher runs one "
            "process per cell: use --launcher inline (Lightning's DDP) or slurm"
        )
    gpus = [] if all(c.train.accelerator == "cpu" for c in cells) else visible_gpus()
    jobs = settings.jobs or max(1, len(gpus))
    if gpus and jobs > len(gpus):
        raise ValueError(f"--jobs {jobs} with {len(gpus)} GPU(s) {gpus}: at most {len(gpus)}")
    threads = cpu_threads(jobs, settings.threads)
    free = [[g] for g in gpus[:jobs]] if gpus else [[] for _ in range(jobs)]
    log.info(
        "local launcher: %d cell(s), %d at a time, %s; DataLoader workers per job: %s",
        len(cells),
        jobs,
        (f"one GPU of {gpus} and " if gpus else "") + f"{threads} torch thread(s) each",
        sorted({c.train.num_workers for c in cells}),
    )
    executor = submitit.LocalExecutor(folder=folder)
    needs = dependencies(cells, out)
    pending, running, ended = list(cells), {}, set()
    bar = CellProgress(cells, "cells", progress)
    try:
        while pending or running:
            for cell in [c for c in pending if all(d in ended for d in needs[c.id])]:
                if not free:
                    break
                slot = free.pop()
                executor.update_parameters(
                    timeout_min=settings.time_min, gpus_per_node=len(slot), visible_gpus=slot
                )
                with stderr_into(folder / CONTROLLERS_LOG):
                    job = executor.submit(CellJob(), sweep, cell, out, command, version, threads)
                running[job.job_id] = (job, cell, slot, utc_now())
                pending.remove(cell)
                bar.started(cell, job.job_id, f"started (GPU {slot})" if slot else "started")
            time.sleep(0.5)
            for job_id, (job, cell, slot, started) in list(running.items()):
                if not job.done():
                    continue
                del running[job_id]
                free.append(slot)
                ended.add(cell.id)
                record = record_since(out, cell, started) or record_lost_job(
                    sweep, out, cell, job_id, job.paths.stderr, command, started, "local"
                )
                bar.ended(cell, job_id, record, job.paths.stderr)
    except BaseException:
        for job, *_ in running.values():
            job.cancel(check=False)  # SIGINT: the cell stops, keeping its last checkpoint
        deadline = time.monotonic() + CANCEL_WAIT_S
        while any(not job.done() for job, *_ in running.values()) and (time.monotonic() < deadline):
            time.sleep(0.2)
        raise
    finally:
        bar.close()


CONTROLLERS_LOG = "controllers.log"  # what submitit's job controllers print (under jobs/)


CANCEL_WAIT_S = 60.0  # how long a stopped launcher waits for its cancelled jobs to end


@contextlib.contextmanager
def stderr_into(path: Path) -> Iterator[None]:
    """Inside, file descriptor 2 is `path` (appended): a process started here (submitit's
    job controller, which prints a traceback when its job is cancelled) writes there, not
    on the user's terminal; its job's own output has log files of its own."""
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    try:
        with path.open("ab") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
