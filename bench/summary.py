"""Records summarised per configuration: what the leaderboard, the regression gate and the
exports show.

A `Group` is a cell without its seed and with everything that decides its result
(`Cell.setup_hash`): seeds are averaged only within one, so two configurations of one cell
(another budget, another width, merged from another machine) are two rows, never one
mean. Each entry holds top-1 (mean, spread, per seed), top-5 only where a dataset has more
than 5 classes, the costs as the mean over seeds with their spread (a measurement that
failed is None and named in `failed_costs`, never 0), and what a reader needs to run it
again: the network as built, the input, the budget, the optimiser, the sweep and cell.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, NamedTuple

from vidbench.bench.citation import citation_problems
from vidbench.bench.paper import ARCH_NAMES, PaperResult, paper_result
from vidbench.bench.results import RunRecord

MODALITY_NAMES = {"rgb": "RGB", "flow": "Flow", "rgb+flow": "RGB+Flow"}
TOP5_FROM = 6  # top-5 means something only with more than 5 classes
# a record's cost figure -> its name in a summary entry
COSTS = {
    "params": "params",
    "gmacs_per_clip": "gmacs",
    "train_clips_per_s": "train_clips_per_s",
    "infer_clips_per_s": "infer_clips_per_s",
}
OPTIMISERS = {"sgd": "SGD", "adamw": "AdamW"}
# options that change how a network trains or rounds, not its size or shape: in the
# setup column, not in the architecture's name
TRAINING_OPTIONS = ("dropout", "batchnorm")


class Group(NamedTuple):
    """A cell without its seed (what seeds are averaged over), what it started from, and
    its configuration (`Cell.setup_hash`)."""

    protocol: str
    start: str | None
    arch: str
    dataset: str
    fold: int
    modality: str
    setup: str


def group_of(record: RunRecord) -> Group:
    c = record.config
    return Group(c.protocol, record.start, c.arch, c.dataset, c.fold, c.modality, c.setup_hash())


def summarise(records: list[RunRecord]) -> dict[Group, dict[str, Any]]:
    """Per configuration (`Group`): top-1 mean, s.d. and `per_seed` [(seed, %)], top-5 and its
    chance (None with 5 classes or fewer), chance, seeds, failures, costs (mean over seeds;
    `<cost>_std`; `failed_costs`), `label` (the architecture as built), `setup`, `cell`
    (`sweep: cell-s*`), `ran_on`, and the paper's number under the same conditions."""
    groups: dict[Group, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.config is not None:
            groups[group_of(record)].append(record)
    summary = {}
    for key, runs in groups.items():
        ok = sorted((r for r in runs if r.status == "ok"), key=lambda r: r.config.seed)
        top1 = [r.top1 for r in ok]
        classes = ok[0].data.num_classes if ok else None
        top5 = [100 * r.metrics.video["top5"] for r in ok] if (classes or 0) >= TOP5_FROM else []
        entry: dict[str, Any] = {
            "config": runs[0].config,
            "records": ok,
            "official": ok[0].data.official_classes if ok else None,
            "seeds": len(ok),
            "failed": len(runs) - len(ok),
            "top1": statistics.mean(top1) if top1 else None,
            "top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
            "per_seed": [(r.config.seed, r.top1) for r in ok],
            "top5": statistics.mean(top5) if top5 else None,
            "top5_chance": min(100.0, 500 / classes) if top5 else None,
            "num_classes": classes,
            "chance": 100 / classes if classes else None,
            "label": arch_label(runs[0]),
            "setup": setup_text(runs[0]),
            "cell": f"{runs[0].sweep or runs[0].config.sweep}: {unseeded(runs[0].cell)}",
            "ran_on": ran_on(runs),
        }
        entry.update(cost_summary(ok))
        entry.update(
            cited(
                paper_result(
                    key.arch, entry["official"], key.fold, key.modality, key.protocol, key.start
                ),
                ok,
            )
        )
        summary[key] = entry
    return summary


def unseeded(cell: str) -> str:
    """`c3d-rgb-ucf1011-scratch-s*` for `c3d-rgb-ucf1011-scratch-s0`: a cell's every seed."""
    return cell.rsplit("-s", 1)[0] + "-s*"


def measured(costs: dict[str, Any], name: str) -> float | None:
    """A cost figure, or None where the measurement failed: absent, not finite, not above
    zero, or a throughput whose interquartile range is negative (the timer misread)."""
    value = costs.get(name)
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    spread = costs.get(f"{name}_iqr")
    if isinstance(spread, (int, float)) and (not math.isfinite(spread) or spread < 0):
        return None
    return float(value)


def cost_summary(records: list[RunRecord]) -> dict[str, Any]:
    """Each cost (named as in `COSTS`) as the mean over the records that measured it and its
    s.d. (None with one); `failed_costs`: the costs some record failed to measure (a
    training throughput a cell never measures, the fused I3D's, is not a failure)."""
    out: dict[str, Any] = {"failed_costs": []}
    for name, shown in COSTS.items():
        good = [v for v in (measured(r.costs, name) for r in records) if v is not None]
        if len(good) < sum(1 for r in records if r.costs.get(name) is not None):
            out["failed_costs"].append(shown)
        out[shown] = statistics.mean(good) if good else None
        out[f"{shown}_std"] = statistics.stdev(good) if len(good) > 1 else None
    return out


def arch_label(record: RunRecord) -> str:
    """The architecture's name, and how the network and input differ from the paper's:
    `I3D (width 0.25, 8×48)`; the bare name only for the paper's network on its input."""
    from vidbench.models.registry import changed_options, default_input_spec

    cell = record.config
    name = ARCH_NAMES.get(cell.arch, cell.arch)
    source = record.model_from or {}
    maker = source.get("package") or source.get("module")
    if maker and maker != "vidbench":  # a plugin's or a module's: say whose
        name = f"{name} from {maker} {source.get('version', '')}".rstrip()
    try:
        changes = [
            f"{k} {format_value(v)}"
            for k, v in changed_options(cell.arch, cell.model_options).items()
            if k not in TRAINING_OPTIONS
        ]
        paper = default_input_spec(cell.arch, **cell.model_options)
    except ValueError:  # an architecture this installation does not have
        return f"{name} ({cell.input.clip_len}×{cell.input.crop_size})"
    if (cell.input.clip_len, cell.input.crop_size) != (paper.clip_len, paper.crop_size):
        changes.append(f"{cell.input.clip_len}×{cell.input.crop_size}")
    return f"{name} ({', '.join(changes)})" if changes else name


def format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setup_text(record: RunRecord) -> str:
    """What a reader needs to train the cell again, in one line: input (frames × crop, test
    views), budget, global batch, optimiser and learning rate, flow algorithm."""
    cell, spec, train = record.config, record.config.input, record.config.train
    views = "whole video" if spec.full_video_test else f"{spec.test_clips}×{spec.test_crops} views"
    parts = [f"{spec.clip_len}×{spec.crop_size}² ({views})"]
    if cell.fuses:
        parts.append(f"sum of the {' and '.join(cell.fuses)} cells' logits")
    else:
        steps = (
            f"{train.max_steps} steps"
            if train.max_steps >= 0
            else f"{train.max_epochs} epochs"
            if train.max_epochs
            else "no step or epoch limit"
        )
        batch = (record.batch or {}).get("global") or train.global_batch or train.batch_size
        schedule = "" if train.scheduler == "none" else f", {train.scheduler}"
        warmup = f", warm-up {train.warmup_steps}" if train.warmup_steps else ""
        parts.append(f"{steps}, batch {batch}")
        parts.append(
            f"{OPTIMISERS.get(train.optimizer, train.optimizer)} lr {train.lr:g}{schedule}{warmup}"
        )
    if "flow" in spec.modalities:
        parts.append(f"flow {spec.flow_algorithm}")
    try:
        from vidbench.models.registry import changed_options

        options = changed_options(cell.arch, cell.model_options)
    except ValueError:  # an architecture this installation does not have
        options = cell.model_options
    if options:
        parts.append("options " + ", ".join(f"{k} {format_value(v)}" for k, v in options.items()))
    return "; ".join(parts)


def ran_on(records: list[RunRecord]) -> str:
    """The machines (host and device) and code versions that ran `records`."""
    machines = sorted(
        {
            f"{(r.launcher or {}).get('host', '?')} ({(r.costs or {}).get('device', '?')})"
            for r in records
        }
    )
    versions = sorted({str(r.code_version) for r in records})
    return f"{', '.join(machines)}; vidbench {', '.join(versions)}"


def cited(paper: PaperResult | None, records: list[RunRecord]) -> dict[str, Any]:
    """{"paper": the paper's number when `records` meet every condition of
    `citation.citation_problems` (else None), "not_cited": why they do not ("" when they
    do, or when the paper has no number for them)}."""
    if paper is None or not records:
        return {"paper": None, "not_cited": ""}
    problems = list(dict.fromkeys(p for r in records for p in citation_problems(r, paper)))
    if problems:
        return {
            "paper": None,
            "not_cited": f"Table {paper.table} {paper.top1:.1f}: " + "; ".join(problems),
        }
    return {"paper": paper, "not_cited": ""}
