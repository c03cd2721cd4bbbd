"""`runs.jsonl`: one typed JSON record per cell (`RunRecord`), safe under many writers.

Every reader (the leaderboard, regress, the command line) takes `RunRecord`s; a finished
record (`status: ok`) always has its config, metrics, costs and data accounting.

Many processes on many hosts may write one results folder (the launchers' jobs). Each
record is first written as a file of its own, `DIR/records/<cell>/<record_id>.json`: a
name no other writer uses, written to a temporary file and renamed, so it needs no lock.
Then `runs.jsonl`, the index every tool reads, is rewritten atomically under an exclusive
lock with every record file it lacks. Where a lock or a rename is not seen at once by
another host (network file systems), a record can miss `runs.jsonl` for a while but never
the folder: `read_records` adds the record files `runs.jsonl` lacks, and the next append
writes them in. A writer killed at any moment leaves every record written before intact.
A line that is not a record (torn by a crash on a file system without atomic rename, or a
hand edit) is skipped with a warning naming it. The latest record of a cell wins (a failed
cell re-run later appends its new record).
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import shlex
import socket
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from vidbench.bench.cells import Cell
from vidbench.datasets.files import atomic_write, atomic_write_text, locked

log = logging.getLogger(__name__)
RUNS_FILE = "runs.jsonl"
VERDICTS_FILE = "verdicts.json"  # the sweep's checks (sanity, regression), for its page
SCHEMA_VERSION = 2  # 2: per-video predictions kept; the JSON Schema is schemas/run_record.v2.json
RECORDS_DIR = "records"  # one file per record, beside runs.jsonl


RATES = ("top1", "top5", "mean_class")  # metrics that are fractions of clips or videos


class Metrics(BaseModel):
    """Test metrics in [0, 1]: per clip (view) and per video (views' softmax averaged):
    top1, top5, mean_class (and the loss); `video` also has `videos`, how many were
    evaluated. A rate outside [0, 1], or any value that is not finite, is refused: no
    record shows 1e11 %."""

    clip: dict[str, float] = {}
    video: dict[str, float] = {}

    @model_validator(mode="after")
    def rates_are_fractions(self) -> Metrics:
        for level, values in (("clip", self.clip), ("video", self.video)):
            for name, value in values.items():
                if not math.isfinite(value) or (name in RATES and not 0 <= value <= 1):
                    what = "a rate in [0, 1]" if name in RATES else "finite"
                    raise ValueError(f"{level}.{name} = {value!r} is not {what}")
        return self


class DataAccounting(BaseModel):
    """What the cell's data was: per split {expected, found, missing, unreadable,
    substituted}, how many videos were evaluated, the classes, the decoder, the copy."""

    model_config = ConfigDict(extra="allow")

    train: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    test_split: str | None = None
    evaluated_videos: int = 0
    num_classes: int
    official_classes: str | None = None  # "ucf101"... when the class list is the official one
    decoder: str | None = None
    copy_files: int = 0
    copy_bytes: int = 0


class RunRecord(BaseModel):
    """One line of `runs.jsonl`: a cell's result, or why it failed."""

    model_config = ConfigDict(extra="allow")  # fields of a later version are kept, not lost

    cell: str
    status: Literal["ok", "failed"]
    record_id: str | None = None  # the name of its file under `records/` (None: older records)
    sweep: str | None = None
    code_version: str | None = None
    command: str | None = None  # the command line that ran the cell
    config: Cell | None = None  # None only when a cell failed before it was resolved
    config_hash: str | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    traceback: str | None = None
    wandb: dict[str, Any] | None = None
    world_size: int | None = None
    # what one optimiser step saw: per_device x devices x nodes x accumulation = global
    batch: dict[str, int] | None = None
    metrics: Metrics | None = None
    costs: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    # where it ran: {"kind": inline|local|slurm, "threads", "job_id", "host", "gpus"}
    launcher: dict[str, Any] | None = None
    resume: dict[str, Any] | None = None
    checkpoint: str | None = None
    # what the network started from: {"start": scratch, imagenet, kinetics,
    # imagenet+kinetics or "kinetics (imagenet unstated)" (None: unknown), "weights",
    # "checkpoint"; from a checkpoint also what that started from and which release}
    started_from: dict[str, Any] | None = None
    # the package that built the network: {"package", "version"} (and "module" for an
    # architecture named module:callable); None: records before it was kept
    model_from: dict[str, str] | None = None
    data: DataAccounting | None = None
    # the per-video test predictions kept beside it: {file (relative to the results
    # folder), sha256, videos} (`bench.predictions`; None: records before they were kept)
    predictions: dict[str, Any] | None = None
    # the record format's version (`SCHEMA_VERSION`; records before it was stamped: 1)
    schema_version: int = 1
    _folder: Path | None = PrivateAttr(None)  # the results folder it was read from

    @property
    def folder(self) -> Path | None:
        """The results folder this record was read from (None: made in memory)."""
        return self._folder

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (where a record was read from does not count)."""
        return isinstance(other, RunRecord) and self.model_dump() == other.model_dump()

    @property
    def start(self) -> str | None:
        return (self.started_from or {}).get("start")

    @model_validator(mode="after")
    def finished_records_are_complete(self) -> RunRecord:
        if self.status == "ok":
            lacking = [
                name
                for name in ("config", "metrics", "costs", "data")
                if getattr(self, name) is None
            ]
            if lacking:
                raise ValueError(f"a finished record without {lacking}")
            if "top1" not in self.metrics.video:
                raise ValueError("a finished record without metrics.video.top1")
        return self

    @property
    def top1(self) -> float | None:
        """Video-level top-1 in %, None unless finished."""
        return 100 * self.metrics.video["top1"] if self.status == "ok" else None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


def read_records(path: str | Path) -> list[RunRecord]:
    """Every record of a runs file (or of `DIR/runs.jsonl`), in the order written, with the
    record files beside it (`records/`) that it lacks; [] when there is none yet.

    Lines that are not records (not JSON, or not a valid `RunRecord`) are skipped, each
    with a warning naming the file, the line and what is wrong; `skipped_lines(path)`
    lists them.
    """
    runs = _runs_path(path)
    records, _ = _parse(runs)
    listed = {r.record_id for r in records if r.record_id}
    for file in record_files(runs):
        if file.stem not in listed:
            records += _parse(file)[0]
    for record in records:
        record._folder = runs.parent
    return records


def skipped_lines(path: str | Path) -> list[str]:
    """`FILE:LINE: why` for every line of a runs file that is not a record."""
    return _parse(_runs_path(path))[1]


def _runs_path(path: str | Path) -> Path:
    path = Path(path)
    return path / RUNS_FILE if path.is_dir() else path


def record_files(runs: Path) -> list[Path]:
    """The record files of the results folder of `runs` (`records/<cell>/<id>.json`), in
    the order their ids sort (the time they were written first); what is not a regular
    file is skipped with a warning."""
    folder = runs.parent / RECORDS_DIR
    if not folder.is_dir():
        return []
    files = []
    for file in folder.glob("*/*.json"):
        if file.name.startswith("."):
            continue
        if not file.is_file():  # a folder, a FIFO (reading it would hang), a dangling link
            log.warning("skipped %s: not a regular file, so not a record", file)
            continue
        files.append(file)
    return sorted(files, key=lambda f: f.stem)


def _record_ids(data: bytes) -> set[str]:
    """The `record_id`s of the lines of a runs file (cheaply: no validation)."""
    ids = set()
    for line in data.splitlines():
        try:
            ids.add(json.loads(line).get("record_id"))
        except (ValueError, AttributeError):
            continue
    return ids


def _parse(path: Path) -> tuple[list[RunRecord], list[str]]:
    if not path.is_file():
        return [], []
    records, skipped = [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                problem = None
            except json.JSONDecodeError as error:
                record, problem = None, f"not JSON ({error.msg}, column {error.colno})"
            if problem is None and not isinstance(record, dict):
                problem = f"a JSON {type(record).__name__}, not a record"
            elif problem is None:
                try:
                    record = RunRecord.model_validate(record)
                except ValidationError as error:
                    first = error.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or "record"
                    problem = f"not a run record ({where}: {first['msg']})"
            if problem:
                skipped.append(f"{path}:{number}: {problem}")
                log.warning("skipped line %d of %s: %s", number, path, problem)
                continue
            records.append(record)
    return records, skipped


def latest_by_cell(records: list[RunRecord]) -> dict[str, RunRecord]:
    """The last record of each cell id."""
    return {record.cell: record for record in records}


def unique_records(records: list[RunRecord]) -> list[RunRecord]:
    """One record per cell and configuration (`Cell.setup_hash`) from records gathered from
    several folders or machines: the same cell with the same configuration (a folder named
    twice, a copied runs file, a cell run again elsewhere) counts once, the one that
    finished last; the same cell with another configuration is kept beside it (the
    leaderboard shows it as a row of its own, never averaged with the other)."""
    kept: dict[tuple[str, str | None], RunRecord] = {}
    for record in records:
        key = (record.cell, record.config.setup_hash() if record.config else None)
        other = kept.get(key)
        if other is None or (record.finished or "") >= (other.finished or ""):
            if other is not None and other.record_id != record.record_id:
                log.info("cell %s: two records of one configuration; the later is shown", key[0])
            kept[key] = record
    return list(kept.values())


def read_verdicts(folder: Path) -> dict[str, dict[str, str]]:
    """The checks recorded for results `folder` ({name: {verdict, report, ...}}); {} when
    none (or the file is not a JSON object: a warning names it)."""
    path = folder / VERDICTS_FILE
    if not path.is_file():
        return {}
    try:
        verdicts = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        log.warning("ignored %s: not JSON (%s)", path, error)
        return {}
    if not isinstance(verdicts, dict):
        log.warning("ignored %s: not a JSON object", path)
        return {}
    return verdicts


def record_verdict(folder: Path, name: str, verdict: str, report: str, **more: str) -> None:
    """Keep check `name`'s verdict ("PASSED"...) and report in `folder/verdicts.json`."""
    with locked(folder / f".{VERDICTS_FILE}.lock"):
        verdicts = read_verdicts(folder)
        verdicts[name] = {"verdict": verdict, "report": report, "when": utc_now(), **more}
        atomic_write_text(folder / VERDICTS_FILE, json.dumps(verdicts, indent=1) + "\n")


def utc_now() -> str:
    """Now, as records stamp `started` and `finished` (ISO 8601, UTC, seconds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def append_record(path: str | Path, record: RunRecord) -> None:
    """Add `record` to the runs file `path` (and its results folder's `records/`); safe
    with other processes and hosts writing at the same time. Sets its `record_id`."""
    runs = Path(path)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    record.schema_version = SCHEMA_VERSION
    record.record_id = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    line = record.to_json()
    atomic_write_text(runs.parent / RECORDS_DIR / record.cell / f"{record.record_id}.json", line)
    with locked(runs.with_name(f".{runs.name}.lock")):
        try:
            old = runs.read_bytes()
        except FileNotFoundError:
            old = b""
        if old and not old.endswith(b"\n"):
            old += b"\n"  # a torn last line stays a line of its own
        listed = _record_ids(old)
        lacking = [f for f in record_files(runs) if f.stem not in listed]
        data = old + b"".join(f.read_bytes().strip() + b"\n" for f in lacking)
        atomic_write(runs, lambda handle: handle.write(data))


def invocation() -> str:
    """This process's command line as a shell would take it (`vidbench run smoke`)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "__main__.py":
        program = "python -m vidbench"
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def code_version() -> str:
    """The package version, plus the git commit (and `-dirty`) when run from a checkout."""
    version = metadata.version("vidbench")
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+{described}" if described else version


def finished_record(out: Path, cell: Cell) -> RunRecord | None:
    """The cell's latest record if it finished with the cell's config, whoever wrote it."""
    record = latest_by_cell(read_records(out / RUNS_FILE)).get(cell.id)
    ok = record and record.status == "ok" and record.config_hash == cell.hash()
    return record if ok else None
