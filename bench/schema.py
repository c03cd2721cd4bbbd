"""The JSON Schema of a run record (`results.RunRecord`), versioned, shipped in the package
as `schemas/run_record.v<N>.json` for tools that read `runs.jsonl` without vidbench; and
the sweep file's key tree (`schemas/sweep_keys.json`), which `bench.precheck` checks keys
against before torch is imported.

A record says its version in `schema_version` (absent: 1). Version 2 added `predictions`
and `schema_version` and changed nothing else, so one schema reads both; a record of an
older version reads as today's `RunRecord` too (`Cell.from_older_records`). Regenerate
the files after changing `RunRecord` or `SweepConfig`: `python -m vidbench.bench.schema`
(a test fails until they match).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from vidbench.bench.config import INPUT_KEYS, SweepConfig
from vidbench.bench.precheck import ANY_KEY
from vidbench.bench.results import SCHEMA_VERSION, RunRecord


def schema_name(version: int = SCHEMA_VERSION) -> str:
    return f"run_record.v{version}.json"


def record_schema() -> dict[str, Any]:
    """The schema of `RunRecord` (pydantic's, validation mode) with its id and version."""
    schema = RunRecord.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://github.com/vidbench/vidbench/schemas/{schema_name()}",
        "description": f"One line of a vidbench runs.jsonl (record format {SCHEMA_VERSION}; "
        "records without schema_version are format 1, which this schema also reads).",
        **schema,
    }


def sweep_key_tree(model: type[BaseModel] = SweepConfig) -> dict[str, Any]:
    """{key: subtree or None} of a sweep: a section of fixed keys (a pydantic model) is a
    subtree, a mapping of names to sections (`datasets`) is `{"*": subtree}`, anything
    else (a value, or a mapping validated later: `model`, `per_arch`) is None; `input`
    holds the ClipSpec keys a sweep may set."""
    tree: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        tree[name] = _subtree(field.annotation)
    if model is SweepConfig:
        tree["input"] = dict.fromkeys(INPUT_KEYS)
    return tree


def _subtree(annotation: Any) -> dict[str, Any] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sweep_key_tree(annotation)
    args = get_args(annotation)
    if getattr(annotation, "__origin__", None) is dict and len(args) == 2:
        inner = _subtree(args[1])
        return {ANY_KEY: inner} if inner is not None else None
    for arg in args:  # X | None
        inner = _subtree(arg)
        if inner is not None:
            return inner
    return None


def shipped_schema() -> dict[str, Any]:
    """The schema file the package ships."""
    text = resources.files("vidbench.bench").joinpath(f"schemas/{schema_name()}").read_text()
    return json.loads(text)


if __name__ == "__main__":
    folder = Path(__file__).resolve().parent / "schemas"
    for name, content in ((schema_name(), record_schema()), ("sweep_keys.json", sweep_key_tree())):
        (folder / name).write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
        print(f"wrote {folder / name}")
