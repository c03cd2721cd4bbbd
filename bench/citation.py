"""Whether a result may stand beside the paper's number: the conditions past the match.

`paper.paper_result` finds the number obtained under the same dataset, split, modality,
protocol and start. A run that matches those can still not be compared with it: a
reduced model, another input, a shortened schedule, a test on a fraction of the videos
or on another split. `citation_problems(record, result)` lists what keeps a record from
being cited against `result` ([] when nothing does):

- model and input: the options that shape the network (all but the weight files, which
  the start condition covers) and the whole input (`ClipSpec`: clip geometry, flow,
  test views) are those of the built-in sweep that reproduces the table
  (`REFERENCE_SWEEPS`), as it resolves the same architecture and modality;
- budget: the global batch, steps, epochs and learning-rate schedule are that sweep's;
- coverage: at least `MIN_COVERAGE` of the test split's listed videos were evaluated
  (a video without its flow is not evaluated, so this covers flow too); a quick look
  (`eval.max_videos`) is never cited;
- split: the paper's Kinetics numbers are on the test split, so a Kinetics cell tested
  on validation is not cited against them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from vidbench.bench.config import (
    WEIGHT_FILE_OPTIONS,
    SweepConfig,
    cell_model_options,
    cell_spec,
    cell_train,
    load_sweep,
)
from vidbench.bench.paper import PaperResult
from vidbench.bench.results import RunRecord

MIN_COVERAGE = 0.95  # of the listed test videos, evaluated
# The built-in sweep that reproduces each table, by table and dataset (None: any dataset).
REFERENCE_SWEEPS = {
    ("2", "kinetics400"): "table2_kinetics",
    ("2", None): "table2",
    ("3", None): "table2_kinetics",
    ("4", None): "table4",
    ("5", None): "table5",
}
# What decides the training budget (the learning rate itself may be tuned on validation).
BUDGET_FIELDS = ("max_steps", "max_epochs", "scheduler", "lr_schedule")


@cache
def reference_sweep(table: str, dataset: str) -> SweepConfig:
    name = REFERENCE_SWEEPS.get((table, dataset)) or REFERENCE_SWEEPS[(table, None)]
    return load_sweep(name)


def network_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options that shape the network: all but weight files (what they load is the
    record's start, matched apart) and the modalities (the cell's modality, likewise)."""
    return {k: v for k, v in options.items() if k not in (*WEIGHT_FILE_OPTIONS, "modalities")}


def global_batch(record: RunRecord) -> int:
    """Clips per optimiser step as the run had them (its record's batch plan), else as its
    config asks."""
    if record.batch and record.batch.get("global"):
        return int(record.batch["global"])
    return record.config.train.batch_plan()["global"]


def citation_problems(record: RunRecord, result: PaperResult) -> list[str]:
    """Why `record` may not be cited against `result` (the paper's number for its dataset,
    split, modality, protocol and start), each a short phrase; [] when it may."""
    cell = record.config
    if record.status != "ok" or cell is None:
        return ["not finished"]
    problems = []
    reference = reference_sweep(result.table, result.dataset)
    ours = network_options(cell.model_options)
    paper = network_options(cell_model_options(reference, cell.arch, cell.modality))
    if ours != paper:
        keys = sorted(set(ours) | set(paper))
        changed = {k: ours.get(k) for k in keys if ours.get(k) != paper.get(k)}
        problems.append(f"model options {changed} are not the paper's")
    wanted = cell_spec(reference, cell.arch, cell.modality).to_dict()
    given = cell.input.to_dict()
    differs = [k for k in wanted if given.get(k) != wanted[k]]
    if differs:
        problems.append(
            "input " + ", ".join(f"{k} {given.get(k)} (paper {wanted[k]})" for k in differs)
        )
    train = cell_train(reference, cell.arch, cell.modality)
    budget = [
        f"{k} {getattr(cell.train, k)} (paper {getattr(train, k)})"
        for k in BUDGET_FIELDS
        if getattr(cell.train, k) != getattr(train, k)
    ]
    batch = global_batch(record)
    if train.global_batch is not None and batch != train.global_batch:
        budget.insert(0, f"global batch {batch} (paper {train.global_batch})")
    if budget:
        problems.append("budget " + ", ".join(budget))
    if cell.max_videos:
        problems.append(f"evaluated at most {cell.max_videos} videos a split (eval.max_videos)")
    test = (record.data.test if record.data else None) or {}
    listed = getattr(record.data, "test_listed", None) or test.get("expected")
    evaluated = record.data.evaluated_videos if record.data else 0
    if not listed:
        problems.append("test coverage not recorded")
    elif evaluated < MIN_COVERAGE * listed:
        problems.append(
            f"{evaluated} of {listed} listed test videos evaluated "
            f"({100 * evaluated / listed:.0f}%, at least {100 * MIN_COVERAGE:.0f}% needed)"
        )
    split = record.data.test_split if record.data else None
    if result.dataset.startswith("kinetics") and split != "test":
        problems.append(
            f"tested on Kinetics {split or 'an unrecorded split'}; the paper's Kinetics "
            "numbers are on its test split"
        )
    return problems
