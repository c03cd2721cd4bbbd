"""Results in the forms other tools read: model-index YAML, timm-style CSV, and the record's
versioned JSON Schema, which every committed record meets."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import yaml
from helpers import finished_record, paper_record

from vidbench.bench.cli import main
from vidbench.bench.export import CSV_COLUMNS
from vidbench.bench.results import SCHEMA_VERSION, RunRecord, append_record, read_records
from vidbench.bench.schema import record_schema, shipped_schema

RESULTS = Path(__file__).resolve().parents[1] / "results"


def results_folder(folder: Path) -> Path:
    records = [finished_record(f"c3d-rgb-syn1-scratch-s{s}", 40.0 + 20 * s) for s in (0, 1)]
    records.append(
        paper_record(
            "table2_kinetics", "i3d-rgb-kinetics4001-scratch-s0", start="scratch", top1=70.0
        )
    )
    failed = finished_record("frame_avg-rgb-syn1-scratch-s0", 10.0)
    records.append(failed.model_copy(update={"status": "failed", "error": "boom"}))
    for record in records:
        append_record(folder / "runs.jsonl", record)
    return folder


def test_model_index_has_task_dataset_with_split_and_metrics(tmp_path, capsys):
    folder = results_folder(tmp_path / "r")
    assert main(["export", str(folder), "--format", "model-index"]) == 0
    entries = yaml.safe_load(capsys.readouterr().out)["model-index"]
    assert len(entries) == 2  # the failed cell has no result to export
    by_dataset = {e["results"][0]["dataset"]["type"]: e for e in entries}
    syn = by_dataset["syn"]["results"][0]
    assert syn["task"] == {"type": "video-classification", "name": "Action Recognition"}
    assert syn["dataset"] == {"type": "syn", "name": "syn", "split": "test", "config": "fold 1"}
    assert syn["metrics"] == [
        {"type": "accuracy", "name": "Top-1 Accuracy", "value": 50.0},
        {"type": "top_5_accuracy", "name": "Top-5 Accuracy", "value": 100.0},
    ]
    assert by_dataset["syn"]["metadata"]["seeds"] == 2
    kinetics = by_dataset["kinetics400"]
    assert kinetics["name"].startswith("Two-Stream I3D RGB, kinetics400 split 1")
    assert kinetics["results"][0]["metrics"][0]["value"] == 70.0


def test_csv_has_the_documented_columns_and_a_row_per_configuration(tmp_path):
    folder = results_folder(tmp_path / "r")
    out = tmp_path / "results.csv"
    assert main(["export", str(folder), "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == CSV_COLUMNS
    by_model = {(r["model"], r["dataset"]): r for r in rows}
    c3d = by_model["3D-ConvNet (64×224)", "syn"]
    assert (c3d["top1"], c3d["top1_std"], c3d["seeds"], c3d["device"]) == (
        "50.0",
        "14.14",
        "2",
        "cpu",
    )
    failed = by_model["Frame average (no motion) (64×224)", "syn"]
    assert (failed["top1"], failed["seeds"]) == ("", "0")  # failed: there, without numbers
    assert (
        main(["export", str(folder), "--format", "csv", "--out", str(folder / "runs.jsonl")]) == 2
    )


def test_the_shipped_schema_is_the_records_and_every_committed_record_meets_it():
    assert shipped_schema() == json.loads(json.dumps(record_schema())), (
        "bench/schemas is stale: python -m vidbench.bench.schema"
    )
    validator = jsonschema.Draft202012Validator(shipped_schema())
    runs = sorted(RESULTS.glob("*/runs.jsonl"))
    assert runs
    for path in runs:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            errors = list(validator.iter_errors(json.loads(line)))
            assert not errors, f"{path}:{number}: {errors[0].message}"


def test_a_record_of_format_one_still_reads_and_new_records_say_their_format(tmp_path):
    old = json.loads((RESULTS / "transfer" / "runs.jsonl").read_text().splitlines()[0])
    assert "schema_version" not in old and "predictions" not in old  # format 1, as committed
    record = RunRecord.model_validate(old)
    assert record.schema_version == 1 and record.top1 is not None
    append_record(tmp_path / "runs.jsonl", record)
    (again,) = read_records(tmp_path)
    assert again.schema_version == SCHEMA_VERSION
    jsonschema.validate(json.loads(again.to_json()), shipped_schema())
    broken = {**old, "status": "done"}
    try:
        jsonschema.validate(broken, shipped_schema())
    except jsonschema.ValidationError as error:
        assert "done" in error.message
    else:
        raise AssertionError("a status outside ok/failed met the schema")
