"""The SLURM launcher: each cell an `sbatch` job through submitit, followed to its end.

    run_slurm(sweep, out, cells, folder, command, version, progress)
    extract_flow_on_slurm(videos, out_root, config, shards, settings, timeout, progress)

A cell's job asks for the sweep's `launcher:` resources and one task per GPU on each of
its nodes (Lightning's SLURM environment runs DDP over them), and depends (`afterany`) on
the jobs of the cells it needs. Jobs are followed with `squeue` (submitit asks `sacct`,
which clusters without accounting storage refuse). Their ids are kept in
`OUT/jobs/slurm-jobs.json`, so a run started again re-attaches to live jobs and submits
only cells that have neither a finished record nor a live job.
"""

from __future__ import annotations

import getpass
import json
import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import submitit
from tqdm import tqdm

from vidbench.bench.cells import Cell
from vidbench.bench.config import LauncherConfig, SweepConfig
from vidbench.bench.jobs import (
    JOBS_DIR,
    CellJob,
    CellProgress,
    dependencies,
    record_lost_job,
    record_since,
)
from vidbench.bench.results import utc_now
from vidbench.datasets.files import atomic_write_text

log = logging.getLogger(__name__)
SLURM_BOOK = "slurm-jobs.json"  # in OUT/jobs: {cell id: {job_id, config_hash, submitted}}
LOST_AFTER_POLLS = 4  # a job gone from the queue without a record is lost after these
# squeue states of a job that has not ended (one that was pre-empted is requeued)
LIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "PREEMPTED",
    "RESV_DEL_HOLD",
    "STOPPED",
}


def slurm_parameters(settings: LauncherConfig, cell: Cell | None) -> dict[str, Any]:
    """submitit `SlurmExecutor` parameters for a cell's job (None: a flow shard's): one
    task per GPU (`train.devices`) on each of `train.num_nodes` nodes, so Lightning's SLURM
    environment runs DDP over them."""
    devices = cell.train.devices if cell and isinstance(cell.train.devices, int) else 1
    on_gpu = cell is not None and cell.train.accelerator != "cpu"
    gpus = (
        settings.gpus_per_node if settings.gpus_per_node is not None else (devices if on_gpu else 0)
    )
    workers = cell.train.num_workers if cell else 0
    parameters: dict[str, Any] = {
        "job_name": f"vidbench-{cell.id}" if cell else "vidbench-flow",
        "time": settings.time_min,
        "nodes": cell.train.num_nodes if cell else 1,
        "ntasks_per_node": max(1, gpus) if cell else 1,
        "cpus_per_task": settings.cpus_per_task or workers + 1,
        "setup": list(settings.setup),
        "additional_parameters": dict(settings.sbatch),
    }
    if gpus:
        parameters["gpus_per_node"] = gpus
    if settings.partition:
        parameters["partition"] = settings.partition
    if settings.mem_gb:
        parameters["mem"] = f"{int(settings.mem_gb * 1024)}M"
    return parameters


def require_slurm() -> None:
    """FileNotFoundError naming what is missing unless SLURM's client commands are here."""
    absent = [name for name in ("sbatch", "squeue", "scancel") if shutil.which(name) is None]
    if absent:
        raise FileNotFoundError(
            f"--launcher slurm needs SLURM's {', '.join(absent)} on PATH (run it on a login "
            "node of the cluster); on one machine use --launcher local"
        )


def live_slurm_jobs() -> dict[str, str]:
    """{job id: state} of this user's jobs that have not ended (`squeue`)."""
    try:
        listed = subprocess.run(
            ["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i %T"],  # -r: array tasks apart
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or error
        raise OSError(f"cannot ask SLURM which jobs are live (squeue): {detail}") from None
    jobs = dict(line.split()[:2] for line in listed.splitlines() if len(line.split()) >= 2)
    return {job: state for job, state in jobs.items() if state in LIVE_STATES}


def _read_book(path: Path) -> dict[str, dict[str, str]]:
    try:
        book = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return book if isinstance(book, dict) else {}


def run_slurm(
    sweep: SweepConfig,
    out: Path,
    cells: list[Cell],
    folder: Path,
    command: str,
    version: str,
    progress: bool,
) -> None:
    """Each cell an sbatch job (a dependency on the jobs of the cells it needs); cells
    whose job from an earlier run is still live are re-attached, not submitted again.
    Follows the jobs until they end unless `launcher.wait` is off."""
    settings = sweep.launcher
    book_path = folder / SLURM_BOOK
    book = _read_book(book_path)
    live = live_slurm_jobs()
    executor = submitit.SlurmExecutor(folder=folder)
    needs = dependencies(cells, out)
    jobs: dict[str, str] = {}  # cell id -> job id
    submitted: set[str] = set()  # cells given a new job by this run
    for cell in cells:  # in run order, so the cells a cell needs have their jobs already
        old = book.get(cell.id, {}).get("job_id")
        if old in live:
            stale = book[cell.id].get("config_hash") != cell.hash() or any(
                d in submitted for d in needs[cell.id]
            )  # another config, or it waits on a job that ended (and was submitted anew)
            if not stale:
                jobs[cell.id] = old
                log.info("%s: job %s is %s; following it", cell.id, old, live[old].lower())
                continue
            log.info(
                "%s: cancelling its job %s (%s), which is out of date",
                cell.id,
                old,
                live[old].lower(),
            )
            subprocess.run(["scancel", old], capture_output=True, timeout=60, check=False)
        after = [jobs[d] for d in needs[cell.id] if d in jobs]
        parameters = slurm_parameters(settings, cell)
        # afterany: a cell whose stream failed still runs and records why it cannot fuse
        parameters["dependency"] = f"afterany:{':'.join(after)}" if after else None
        executor.update_parameters(**parameters)
        job = executor.submit(CellJob(), sweep, cell, out, command, version, settings.threads)
        jobs[cell.id] = job.job_id
        submitted.add(cell.id)
        book[cell.id] = {"job_id": job.job_id, "config_hash": cell.hash(), "submitted": utc_now()}
        atomic_write_text(book_path, json.dumps(book, indent=1, sort_keys=True))
        log.info(
            "%s: submitted as SLURM job %s%s",
            cell.id,
            job.job_id,
            f" (after {', '.join(after)})" if after else "",
        )
    print("SLURM jobs: " + ", ".join(f"{cid}={jid}" for cid, jid in jobs.items()), flush=True)
    if not settings.wait:
        log.info("not waiting (--no-wait); run the same command again to follow the jobs")
        return
    follow_slurm(sweep, out, cells, jobs, book, folder, command, progress)


def follow_slurm(
    sweep: SweepConfig,
    out: Path,
    cells: list[Cell],
    jobs: dict[str, str],
    book: dict[str, dict[str, str]],
    folder: Path,
    command: str,
    progress: bool,
) -> None:
    """Poll `squeue` until every job of `jobs` has ended; a job that ended without a
    record (looked for again over `LOST_AFTER_POLLS` polls: another host's file can take
    that long to show on a network file system) gets a failed one."""
    bar = CellProgress(cells, "SLURM jobs", progress)
    waiting = {cell.id: cell for cell in cells}
    states: dict[str, str] = {}
    gone: dict[str, int] = {}  # cell id -> polls since its job left the queue
    try:
        while waiting:
            live = live_slurm_jobs()
            for cell_id, cell in list(waiting.items()):
                job_id = jobs[cell_id]
                state = live.get(job_id)
                if state is not None:
                    if states.get(cell_id) != state:
                        states[cell_id] = state
                        bar.started(cell, job_id, state.lower())
                    continue
                log_file = folder / f"{job_id}_0_log.err"
                since = book.get(cell_id, {}).get("submitted", "")
                record = record_since(out, cell, since)
                gone[cell_id] = gone.get(cell_id, 0) + 1
                if record is None and gone[cell_id] <= LOST_AFTER_POLLS:
                    continue
                del waiting[cell_id]
                record = record or record_lost_job(
                    sweep, out, cell, job_id, log_file, command, since, "slurm"
                )
                bar.ended(cell, job_id, record, log_file)
            if waiting:
                time.sleep(sweep.launcher.poll_s)
    except KeyboardInterrupt:
        log.warning("stopped following; the SLURM jobs go on: the same command follows them again")
        raise
    finally:
        bar.close()


# --- flow extraction as a job array ---------------------------------------------------


def flow_shard_job(
    videos: Path,
    out_root: Path,
    config: Any,
    relpaths: list[str],
    workers: int,
    timeout: float | None,
) -> dict[str, Any]:
    """One array task of `flow extract --launcher slurm`: its shard's videos."""
    from vidbench.datasets.flow_extract import extract_all

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return extract_all(
        videos, out_root, config, relpaths, workers=workers, timeout=timeout, progress=False
    )


def extract_flow_on_slurm(
    videos: Path,
    out_root: Path,
    config: Any,
    shards: list[list[str]],
    settings: LauncherConfig,
    timeout: float | None,
    progress: bool,
) -> dict[str, Any] | None:
    """Each of `shards` (lists of video paths) an array task; waits for them (unless
    `settings.wait` is off: returns None once submitted) and returns the summed summary
    {"total", "extracted", "skipped", "failed", "lost": {job id: log file}}."""
    require_slurm()
    folder = out_root / f".{JOBS_DIR}"
    executor = submitit.SlurmExecutor(folder=folder)
    parameters = slurm_parameters(settings, None)
    parameters["array_parallelism"] = len(shards)
    executor.update_parameters(**parameters)
    workers = parameters["cpus_per_task"]
    jobs = executor.map_array(
        flow_shard_job,
        [videos] * len(shards),
        [out_root] * len(shards),
        [config] * len(shards),
        shards,
        [workers] * len(shards),
        [timeout] * len(shards),
    )
    print(f"SLURM array job {jobs[0].job_id.split('_')[0]}: {len(jobs)} shard(s)", flush=True)
    if not settings.wait:
        return None
    bar = tqdm(total=len(jobs), desc="flow shards", unit="job", disable=None if progress else True)
    waiting = {job.job_id: job for job in jobs}
    total = {"total": 0, "extracted": 0, "skipped": 0, "failed": {}, "lost": {}}
    while waiting:
        live = live_slurm_jobs()
        for job_id, job in list(waiting.items()):
            if job_id in live:
                continue
            del waiting[job_id]
            bar.update()
            if not job.paths.result_pickle.exists():
                total["lost"][job_id] = str(job.paths.stderr)
                log.error(
                    "flow shard job %s ended without a result; log: %s", job_id, job.paths.stderr
                )
                continue
            try:
                summary = job.result()
            except Exception as error:  # the job raised: its error, not the follower's
                total["lost"][job_id] = str(job.paths.stderr)
                log.error("flow shard job %s failed: %s", job_id, str(error).splitlines()[-1])
                continue
            for key in ("total", "extracted", "skipped"):
                total[key] += summary[key]
            total["failed"].update(summary["failed"])
        if waiting:
            time.sleep(settings.poll_s)
    bar.close()
    return total
