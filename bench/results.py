"""`runs.jsonl`: one JSON record per cell, appended atomically.

An append rewrites the file to a temporary name and renames it over the old one, so a
sweep killed at any moment leaves every record written before intact and no torn line.
The latest record of a cell wins (a failed cell re-run later appends its new record).
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from datasets.check import atomic_write_text

RUNS_FILE = "runs.jsonl"


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a runs file (or of `DIR/runs.jsonl`); [] when there is none yet."""
    path = Path(path)
    if path.is_dir():
        path = path / RUNS_FILE
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not a JSON record: {error}") from None
    return records


def latest_by_cell(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each cell id."""
    return {record["cell"]: record for record in records}


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write_text(path, old + json.dumps(record, sort_keys=True, default=str) + "\n")


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
