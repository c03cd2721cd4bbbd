"""Launchers: a sweep's cells run in processes of their own, on this machine or on SLURM.

    launch(sweep, out, cells, command, progress)   # sweep.launcher.kind: local or slurm

Both go through submitit, which pickles each cell's job into `OUT/jobs/` and starts it:
`local` as a subprocess of this one (`submitit.LocalExecutor`, here), at most `jobs` at a
time, each with its own GPUs or its share of the cores; `slurm` as an `sbatch` job per
cell (`vidbench.bench.slurm`), the order kept by job dependencies. A job runs
`runner.execute_cell`, which locks its cell, trains, tests and appends its record
(`results.append_record`: a file of its own, then `OUT/runs.jsonl`); this process only
follows the jobs. A job that ends without a record (killed, out of memory) is recorded as
failed, naming its log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import submitit
import submitit.helpers
from tqdm import tqdm

from vidbench.bench.cells import Cell
from vidbench.bench.config import SweepConfig
from vidbench.bench.results import (
    RUNS_FILE,
    RunRecord,
    append_record,
    code_version,
    latest_by_cell,
    read_records,
    utc_now,
)

log = logging.getLogger(__name__)
JOBS_DIR = "jobs"  # submitit's folder of pickled jobs and their logs


def commit(version: str) -> str:
    """`0.1.0+abc1234` of `0.1.0+abc1234-dirty`: a sweep writes its tracked results into the
    checkout, which makes it dirty, so only the release and the commit are compared."""
    return version.removesuffix("-dirty")


def duration(seconds: float) -> str:
    """`2 min 03 s`, or `48 s` under a minute."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def dependencies(cells: list[Cell], out: Path) -> dict[str, list[str]]:
    """{cell id: ids of the cells among `cells` it must wait for}: I3D's rgb+flow waits for
    its two streams; a fixed or finetune cell waits for the cell whose final checkpoint is
    its `init_checkpoint`."""
    from vidbench.bench.runner import FINAL_CHECKPOINT, init_checkpoint

    ids = {cell.id for cell in cells}
    makes = {(out / "cells" / cell.id / FINAL_CHECKPOINT).resolve(): cell.id for cell in cells}
    needs: dict[str, list[str]] = {}
    for cell in cells:
        wanted = [cell.with_(modality=s, fuses=None).id for s in cell.fuses or []]
        init = init_checkpoint(cell)
        if init and Path(init).resolve() in makes:
            wanted.append(makes[Path(init).resolve()])
        needs[cell.id] = [w for w in wanted if w in ids and w != cell.id]
    return needs


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


def cell_job(
    sweep: SweepConfig, cell: Cell, out: Path, command: str, version: str, threads: int | None
) -> str:
    """What a job runs (in its own process): the cell, on `threads` torch threads; its
    record goes to `out/runs.jsonl`. Returns the record's status. A job requeued after its
    cell finished (killed while it ended) does nothing."""
    import torch

    from vidbench.bench.runner import execute_cell

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if finished_record(out, cell):
        logging.getLogger(__name__).info("%s: finished already; a requeued job", cell.id)
        return "ok"
    here = code_version()
    if commit(here) != commit(version):  # the code was updated under a running launcher
        error = RuntimeError(
            f"vidbench changed under this sweep: it was launched from {version}, this job "
            f"runs {here}; run the same `vidbench run` again to resume its unfinished cells "
            "with the code installed now"
        )
        record_failure(sweep, out, cell, error, command, utc_now(), {"kind": sweep.launcher.kind})
        return "failed"
    threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0))
    if threads:
        torch.set_num_threads(threads)
    env = submitit.JobEnvironment()
    where = {
        "kind": sweep.launcher.kind,
        "job_id": env.job_id,
        "host": socket.gethostname(),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES") or None,
    }
    record = execute_cell(sweep, cell, out, command, version, False, where, wait=True)
    return record.status if record else "busy"


class CellJob(submitit.helpers.Checkpointable):
    """`cell_job` as submitit runs it: when SLURM pre-empts the job or its time runs out,
    submitit requeues the same call (out of time: up to 3 times), and the cell resumes from
    its `last.ckpt`."""

    def __call__(
        self, sweep: SweepConfig, cell: Cell, out: Path, command: str, version: str,
        threads: int | None,
    ) -> str:  # fmt: skip
        return cell_job(sweep, cell, out, command, version, threads)


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


class CellProgress:
    """One line per job event in the log, and a bar of cells ended (stderr)."""

    def __init__(self, cells: list[Cell], what: str, progress: bool) -> None:
        self.total = len(cells)
        self.bar = tqdm(
            total=len(cells), desc=what, unit="cell", disable=None if progress else True
        )
        self.failed = 0
        self._since: dict[str, float] = {}

    def started(self, cell: Cell, job_id: str, where: str) -> None:
        self._since[cell.id] = time.monotonic()
        log.info("%s: job %s %s", cell.id, job_id, where)

    def ended(self, cell: Cell, job_id: str, record: RunRecord | None, log_file: Path) -> None:
        since = self._since.pop(cell.id, None)
        took = "" if since is None else f" after {duration(time.monotonic() - since)}"
        if record is None or record.status != "ok":
            self.failed += 1
            why = record.error if record else "no record"
            log.error("%s: job %s failed%s: %s (log: %s)", cell.id, job_id, took, why, log_file)
        else:
            log.info("%s: job %s finished%s, top-1 %.1f%%", cell.id, job_id, took, record.top1)
        self.bar.update()
        self.bar.set_postfix(failed=self.failed)

    def close(self) -> None:
        self.bar.close()


def finished_record(out: Path, cell: Cell) -> RunRecord | None:
    """The cell's latest record if it finished with the cell's config, whoever wrote it."""
    record = latest_by_cell(read_records(out / RUNS_FILE)).get(cell.id)
    ok = record and record.status == "ok" and record.config_hash == cell.hash()
    return record if ok else None


def record_since(out: Path, cell: Cell, since: str) -> RunRecord | None:
    """The cell's latest record if it was written at or after `since` (ISO time), or if it
    finished with the cell's config at any time: another process (a job left running by a
    launcher that was killed) may have finished the cell meanwhile."""
    record = latest_by_cell(read_records(out / RUNS_FILE)).get(cell.id)
    if record and (record.finished or "") >= since:
        return record
    return finished_record(out, cell)


def record_lost_job(
    sweep: SweepConfig, out: Path, cell: Cell, job_id: str, log_file: Path, command: str,
    started: str, kind: str,
) -> RunRecord:  # fmt: skip
    """A failed record for a job that ended without writing one (killed, out of time)."""
    error = RuntimeError(
        f"{kind} job {job_id} ended without a record (killed, out of time, out of memory or "
        f"its node lost); its log: {log_file}"
    )
    return record_failure(
        sweep, out, cell, error, command, started, {"kind": kind, "job_id": job_id}
    )


def record_failure(
    sweep: SweepConfig, out: Path, cell: Cell, error: BaseException, command: str,
    started: str, launcher: dict[str, Any],
) -> RunRecord:  # fmt: skip
    """Append the failed record of `cell` (`error`, where it ran) to `out/runs.jsonl`."""
    from vidbench.bench.runner import failed_record

    record = failed_record(sweep, cell.id, error, command, started, cell, launcher=launcher)
    append_record(out / RUNS_FILE, record)
    return record


def run_local(
    sweep: SweepConfig, out: Path, cells: list[Cell], folder: Path, command: str,
    version: str, progress: bool,
) -> None:  # fmt: skip
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
        len(cells), jobs,
        (f"one GPU of {gpus} and " if gpus else "") + f"{threads} torch thread(s) each",
        sorted({c.train.num_workers for c in cells}),
    )  # fmt: skip
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
