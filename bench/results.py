"""`runs.jsonl`: one JSON record per cell, appended safely.

Appends take a lock and rewrite the file atomically (`vidbench.datasets.files.append_line`), so
concurrent writers lose no record and a sweep killed at any moment leaves every record
written before intact. A line that is not a record (torn by a crash on a file system
without atomic rename, or a hand edit) is skipped with a warning naming it. The latest
record of a cell wins (a failed cell re-run later appends its new record).
"""

from __future__ import annotations

import json
import logging
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from vidbench.datasets.files import append_line

log = logging.getLogger(__name__)
RUNS_FILE = "runs.jsonl"


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a runs file (or of `DIR/runs.jsonl`); [] when there is none yet.

    Lines that are not JSON objects with a `cell` and a `status` are skipped, each with a warning
    naming the file and line; `skipped_lines(path)` counts them.
    """
    return _parse(_runs_path(path))[0]


def skipped_lines(path: str | Path) -> list[str]:
    """`FILE:LINE: why` for every line of a runs file that is not a record."""
    return _parse(_runs_path(path))[1]


def _runs_path(path: str | Path) -> Path:
    path = Path(path)
    return path / RUNS_FILE if path.is_dir() else path


def _parse(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
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
            elif problem is None and not all(
                isinstance(record.get(key), str) for key in ("cell", "status")
            ):
                problem = "a record without a cell id and status"
            if problem:
                skipped.append(f"{path}:{number}: {problem}")
                log.warning("skipped line %d of %s: %s", number, path, problem)
                continue
            records.append(record)
    return records, skipped


def latest_by_cell(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each cell id."""
    return {record["cell"]: record for record in records}


def unique_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per cell from records gathered from several folders: the same cell with
    the same config (a folder named twice, a copied runs file) counts once; the same cell
    with different configs keeps the one that finished last, with a warning."""
    kept: dict[str, dict[str, Any]] = {}
    for record in records:
        other = kept.get(record["cell"])
        if other is None:
            kept[record["cell"]] = record
            continue
        if other.get("config_hash") != record.get("config_hash"):
            log.warning(
                "cell %s appears with two configs (%s, %s); the later result is shown",
                record["cell"], other.get("config_hash"), record.get("config_hash"),
            )  # fmt: skip
        if str(record.get("finished", "")) >= str(other.get("finished", "")):
            kept[record["cell"]] = record
    return list(kept.values())


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Add `record` as one line; safe with other processes appending at the same time."""
    append_line(path, json.dumps(record, sort_keys=True, default=str))


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
