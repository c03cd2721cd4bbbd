"""Job bookkeeping the local and the SLURM launchers share: what a job runs (`CellJob`,
`cell_job`: one cell through `cell.execute_cell`), the order cells wait for each other
(`dependencies`), progress lines and a bar (`CellProgress`), and the records of jobs that
ended without one (`record_lost_job`) or ran other code than their launcher
(`append_failed_record`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import submitit
import submitit.helpers
from tqdm import tqdm

from vidbench.bench.cell import execute_cell, failed_run_record, init_checkpoint
from vidbench.bench.cells import FINAL_CHECKPOINT, Cell
from vidbench.bench.config import SweepConfig
from vidbench.bench.results import (
    RUNS_FILE,
    RunRecord,
    append_record,
    code_version,
    finished_record,
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


def cell_job(
    sweep: SweepConfig, cell: Cell, out: Path, command: str, version: str, threads: int | None
) -> str:
    """What a job runs (in its own process): the cell, on `threads` torch threads; its
    record goes to `out/runs.jsonl`. Returns the record's status. A job requeued after its
    cell finished (killed while it ended) does nothing."""
    import torch

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
        append_failed_record(
            sweep, out, cell, error, command, utc_now(), {"kind": sweep.launcher.kind}
        )
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
        self,
        sweep: SweepConfig,
        cell: Cell,
        out: Path,
        command: str,
        version: str,
        threads: int | None,
    ) -> str:
        return cell_job(sweep, cell, out, command, version, threads)


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


def record_since(out: Path, cell: Cell, since: str) -> RunRecord | None:
    """The cell's latest record if it was written at or after `since` (ISO time), or if it
    finished with the cell's config at any time: another process (a job left running by a
    launcher that was killed) may have finished the cell meanwhile."""
    record = latest_by_cell(read_records(out / RUNS_FILE)).get(cell.id)
    if record and (record.finished or "") >= since:
        return record
    return finished_record(out, cell)


def record_lost_job(
    sweep: SweepConfig,
    out: Path,
    cell: Cell,
    job_id: str,
    log_file: Path,
    command: str,
    started: str,
    kind: str,
) -> RunRecord:
    """A failed record for a job that ended without writing one (killed, out of time)."""
    error = RuntimeError(
        f"{kind} job {job_id} ended without a record (killed, out of time, out of memory or "
        f"its node lost); its log: {log_file}"
    )
    return append_failed_record(
        sweep, out, cell, error, command, started, {"kind": kind, "job_id": job_id}
    )


def append_failed_record(
    sweep: SweepConfig,
    out: Path,
    cell: Cell,
    error: BaseException,
    command: str,
    started: str,
    launcher: dict[str, Any],
) -> RunRecord:
    """Append the failed record of `cell` (`error`, where it ran) to `out/runs.jsonl`."""
    record = failed_run_record(sweep, cell.id, error, command, started, cell, launcher=launcher)
    append_record(out / RUNS_FILE, record)
    return record
