"""Before any cell starts (and in `run --dry-run`): is the data there, and enough of it?

Per real dataset and fold of a sweep: the video folder and the annotation files exist and
parse, a training split is listed, each split's listed and found videos, the share of
them whose flow is there (when a cell reads flow), and the weight files and initial
checkpoints the sweep names. A test split of which fewer than `min_coverage` of the
listed videos (and their flow) are found is refused: a result on part of a test set is
not the dataset's result. Synthetic datasets are made on first use and not checked.

    report = preflight(sweep, out)   # report.lines; report.problems per dataset
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from vidbench.bench.cells import FINAL_CHECKPOINT, expand_cells
from vidbench.bench.config import (
    DatasetConfig,
    SweepConfig,
    cell_init_checkpoint,
    cell_model_options,
    cell_train,
)
from vidbench.datasets.annotations import AnnotationError, load_annotations
from vidbench.datasets.flow import flow_path
from vidbench.datasets.index import locate_videos
from vidbench.models.registry import imagenet_weights

log = logging.getLogger(__name__)


class PreflightError(ValueError):
    """A dataset's cells cannot run: its data or the files the sweep names are not there."""


@dataclass
class Preflight:
    """What `preflight` found: one line per dataset, fold and split, and per dataset the
    problems that keep its cells from running (each naming the key to change)."""

    lines: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, dataset: str, problem: str) -> None:
        self.problems.setdefault(dataset, []).append(problem)


def preflight(sweep: SweepConfig, out: Path) -> Preflight:
    """Check every real dataset of `sweep` and the files it names (see the module)."""
    report = Preflight()
    keys = expand_cells(sweep)
    for name, dataset in sweep.datasets.items():
        if dataset.synthetic is not None:
            continue
        flow = any("flow" in k.modality for k in keys if k.dataset == name)
        for fold in dataset.folds:
            check_copy(name, dataset, fold, flow, report)
    check_files(sweep, out, report)
    return report


def check_copy(name: str, dataset: DatasetConfig, fold: int, flow: bool, report: Preflight) -> None:
    """One dataset and fold: folders, annotations, counts per split, test coverage."""
    where = f"datasets.{name}"
    videos = Path(dataset.videos)
    if not videos.is_dir():
        report.add(name, f"{where}.videos: {videos} is not a folder")
        return
    if flow and (dataset.flow is None or not Path(dataset.flow).is_dir()):
        report.add(
            name,
            f"{where}.flow: {dataset.flow} is not a folder; extract it first with "
            f"`vidbench flow extract --videos {videos} --out {dataset.flow}`",
        )
        flow = False
    try:
        annotations = load_annotations(dataset.format, dataset.annotations, fold)
    except (OSError, AnnotationError, ValueError) as error:
        report.add(name, f"{where}.annotations: {error}")
        return
    splits = annotations.splits
    if not splits.get("train"):
        report.add(name, f"{where}: its annotations list no training video (fold {fold})")
    test_split = dataset.test_split or ("test" if splits.get("test") else "val")
    for split, records in splits.items():
        located = locate_videos(records, videos)
        found = [p for p in located if p is not None]
        with_flow = (
            sum(flow_path(dataset.flow, p.relative_to(videos)).is_file() for p in found)
            if flow
            else len(found)
        )
        line = f"{name} fold {fold} {split}: {len(found)} of {len(records)} listed videos found"
        if flow:
            line += f", flow for {with_flow} ({percent(with_flow, len(records))})"
        report.lines.append(line)
        if split == test_split and with_flow < dataset.min_coverage * len(records):
            report.add(
                name,
                f"{where}: {with_flow} of the {len(records)} listed {split} videos"
                + (" have their flow" if flow else " are found")
                + f" ({percent(with_flow, len(records))}), under min_coverage "
                f"{dataset.min_coverage:.0%}; a result on part of a test set is not the "
                f"dataset's (to run anyway: --set {where}.min_coverage=0.5, kept in every "
                "record)",
            )


def check_files(sweep: SweepConfig, out: Path, report: Preflight) -> None:
    """The ImageNet weight files and initial checkpoints the sweep's cells name exist (a
    checkpoint a cell of this sweep writes may be absent yet); a missing one is a problem
    of every dataset whose cells name it."""
    keys = expand_cells(sweep)
    made = {(out / "cells" / k.id / FINAL_CHECKPOINT).resolve() for k in keys}
    named: dict[tuple[str, str], str] = {}  # (dataset, file) -> what names it
    for key in keys:
        options = cell_model_options(sweep, key.arch, key.modality)
        weights = imagenet_weights(key.arch, options)
        if weights:
            named.setdefault((key.dataset, weights), f"per_arch.{key.arch} (ImageNet weights)")
        path = cell_init_checkpoint(cell_train(sweep, key.arch, key.modality), key)
        if path and Path(path).resolve() not in made:
            named.setdefault((key.dataset, path), f"train.init_checkpoint of {key.id}")
    for (dataset, path), what in named.items():
        if not Path(path).is_file():
            report.add(dataset, f"{what}: {path} is not a file")


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "none listed"
