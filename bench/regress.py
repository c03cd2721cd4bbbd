"""Accuracy regression tests against a stored baseline, and the smoke sweep's motion check.

A baseline (`results/baselines/NAME.json`) holds, per cell without its seed, the video
top-1 (%) of every baseline seed. A cell regresses when its mean over seeds falls below
the baseline mean by more than the tolerance: the larger of `min_points` (2) and two
standard deviations across the baseline's seeds, capped at `MAX_TOLERANCE` points (a
noisy cell is a cell to fix, not a licence to pass anything). A cell whose every baseline
seed lies clearly above chance (more than `CHANCE_MARGIN` points) regresses when it falls
to chance + `CHANCE_MARGIN`, whatever its spread. A baseline cell that did not finish
counts as a regression too. A baseline records the versions of the packages that decide the
synthetic data and the training numerics (`environment`); `environment_changes` lists those
that differ here, since they change the numbers without any change to the code.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any

from vidbench.bench.cells import CellKey
from vidbench.bench.config import shorten
from vidbench.bench.leaderboard import summarise
from vidbench.bench.results import RunRecord
from vidbench.datasets.files import atomic_write_text
from vidbench.models.registry import rgb_motion

MARGIN = 20.0  # top-1 points above frame_avg that count as "clearly"
CHANCE_SLACK = 15.0  # top-1 points above chance that frame_avg may reach
# The widest tolerance: the smoke baseline's noisiest cell (I3D RGB, s.d. 5 over 3 seeds)
# needs 10 points; a drop of more is a regression whatever the spread.
MAX_TOLERANCE = 10.0
CHANCE_MARGIN = 5.0  # top-1 points above chance that still count as "at chance"


def baseline_key(config: CellKey) -> str:
    """A cell's id with `*` for its seed: the baseline's cells are over seeds."""
    return config.with_(seed="*").id


def top1_by_cell(records: list[RunRecord]) -> dict[str, list[float]]:
    """Video top-1 (%) of every finished record, per cell without its seed."""
    cells: dict[str, list[float]] = {}
    for record in records:
        if record.status == "ok":
            cells.setdefault(baseline_key(record.config), []).append(record.top1)
    return cells


def chance_by_cell(records: list[RunRecord]) -> dict[str, float]:
    """Chance top-1 (%, 100 / classes) of every finished record's cell without its seed."""
    return {
        baseline_key(r.config): 100 / r.data.num_classes
        for r in records
        if r.status == "ok" and r.data.num_classes > 0
    }


# What decides the synthetic data (OpenCV draws it, PyAV encodes it) and the training
# numerics: the same code gives other numbers when one of these changes version.
ENVIRONMENT_PACKAGES = (
    "torch",
    "opencv-contrib-python-headless",
    "av",
    "numpy",
    "decord",
    "pytorch-lightning",
)


def environment() -> dict[str, str | None]:
    """The versions of ENVIRONMENT_PACKAGES installed here, plus Python and the machine."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for name in ENVIRONMENT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_changes(baseline: dict[str, Any]) -> list[str]:
    """`name: baseline version -> this one` for every package that differs."""
    made_with = baseline.get("environment") or {}
    here = environment()
    return [
        f"{name}: {made_with[name]} -> {here.get(name)}"
        for name in sorted(made_with)
        if made_with[name] != here.get(name)
    ]


def make_baseline(records: list[RunRecord]) -> dict[str, Any]:
    cells = top1_by_cell(records)
    if not cells:
        raise ValueError("no finished cells to make a baseline from")
    return {
        "metric": "video top-1 (%)",
        "environment": environment(),
        "cells": dict(sorted(cells.items())),
    }


def write_baseline(records: list[RunRecord], path: Path) -> Path:
    """Write the baseline of `records` to `path`, which must be new or a baseline already
    (ValueError naming it otherwise: a record file, say, is never written over)."""
    if path.exists():
        try:
            read_baseline(path)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{path} exists and is not a baseline ({error}); --update replaces only a "
                "baseline: give a new file"
            ) from None
    atomic_write_text(path, json.dumps(make_baseline(records), indent=2) + "\n")
    return path


def read_baseline(path: Path) -> dict[str, Any]:
    """A baseline file, checked: {"cells": {cell: [finite top-1 values]}} with at least one
    cell; anything else is a ValueError naming the file and what is wrong."""
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a JSON baseline ({error})") from None
    cells = baseline.get("cells") if isinstance(baseline, dict) else None
    if not isinstance(cells, dict):
        raise ValueError(f"{path}: a baseline is an object with a 'cells' mapping")
    if not cells:
        raise ValueError(f"{path}: the baseline has no cells, so it would pass anything")
    for key, values in cells.items():
        if (
            not isinstance(values, list)
            or not values
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100
                for v in values
            )
        ):
            raise ValueError(
                f"{path}: cell {key!r} needs a list of top-1 values in 0-100 (%), got "
                f"{shorten(repr(values))}"
            )
    return baseline


def check_tolerance(min_points: float) -> float:
    if not math.isfinite(min_points) or min_points < 0:
        raise ValueError(f"--min-points must be a finite number >= 0, got {min_points}")
    return min_points


def compare(
    records: list[RunRecord],
    baseline: dict[str, Any],
    min_points: float = 2.0,
    significance: bool = False,
) -> list[dict[str, Any]]:
    """One row per baseline cell: baseline mean, tolerance, ours, and whether it regressed
    (a baseline cell without a finished result in `records` regressed too). With
    `significance`, a drop past the tolerance counts only when `significant_drop` says so
    (a collapse to chance counts whatever)."""
    check_tolerance(min_points)
    if not baseline.get("cells"):
        raise ValueError("the baseline has no cells, so it would pass anything")
    ours, chance = top1_by_cell(records), chance_by_cell(records)
    videos = videos_by_cell(records)
    rows = []
    for key, values in baseline["cells"].items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        tolerance = min(MAX_TOLERANCE, max(min_points, 2 * spread))
        mean = statistics.mean(values)
        now = statistics.mean(ours[key]) if key in ours else None
        at_chance = None if key not in chance else chance[key] + CHANCE_MARGIN
        collapsed = (
            at_chance is not None
            and min(values) > at_chance
            and now is not None
            and now <= at_chance
        )
        dropped = now is not None and now < mean - tolerance
        significant = None
        if significance and dropped:
            significant = significant_drop(values, ours[key], videos.get(key))
            dropped = significant
        rows.append(
            {
                "cell": key,
                "baseline": mean,
                "tolerance": tolerance,
                "ours": now,
                "chance": chance.get(key),
                "collapsed": collapsed,
                "significant": significant,
                "regressed": now is None or dropped or collapsed,
            }
        )
    return rows


def videos_by_cell(records: list[RunRecord]) -> dict[str, int]:
    """Per baseline cell: the fewest test videos a finished seed evaluated."""
    out: dict[str, int] = {}
    for record in records:
        if record.status == "ok" and record.data.evaluated_videos:
            key = baseline_key(record.config)
            out[key] = min(out.get(key, record.data.evaluated_videos), record.data.evaluated_videos)
    return out


def significant_drop(baseline: list[float], ours: list[float], videos: int | None) -> bool:
    """Is the fall from the baseline's mean to ours significant (two-sided, 95%)? The
    standard error adds the seeds' spread on each side (training's randomness) and the
    binomial spread of accuracies on `videos` test videos (the test set's), unpaired:
    a baseline keeps no predictions, so this is wider than `compare`'s paired interval.
    Without a video count the drop counts as significant (the check stays strict)."""
    if not videos:
        return True
    se2 = 0.0
    for values in (baseline, ours):
        p = statistics.mean(values) / 100
        seeds = statistics.variance(values) / len(values) if len(values) > 1 else 0.0
        se2 += seeds + 100**2 * p * (1 - p) / videos
    drop = statistics.mean(baseline) - statistics.mean(ours)
    return drop > 1.96 * math.sqrt(se2)


def motion_check(records: list[RunRecord]) -> tuple[bool | None, str]:
    """The paper's claim on synthetic motion: models that see motion beat frame_avg, which
    sits near chance. Returns (passed, a report naming every number); passed is None (not
    judged) when a dataset lacks either side: a finished frame_avg cell, or a model that
    sees local motion (3D convolutions or flow) and so is held to the claim."""
    summary = [e for e in summarise(records).values() if e["top1"] is not None]
    chance = {e["config"].dataset: 100 / e["num_classes"] for e in summary}
    if not chance:
        return None, "no finished cell to judge"
    lines, passed = [], True
    for dataset, level in sorted(chance.items()):
        here = [e for e in summary if e["config"].dataset == dataset]
        frame_avg = [e["top1"] for e in here if e["config"].arch == "frame_avg"]
        held = [
            e
            for e in here
            if "flow" in e["config"].modality or rgb_motion(e["config"].arch) == "local"
        ]
        if not frame_avg or not held:
            lacking = "frame_avg" if not frame_avg else "3D-convolution or flow"
            return None, f"{dataset}: no finished {lacking} cell, so nothing to compare"
        floor = frame_avg[0]
        near_chance = floor <= level + CHANCE_SLACK
        passed &= near_chance
        lines.append(
            f"{dataset}: frame_avg {floor:.1f}% (chance {level:.1f}%): "
            + ("near chance, as it should be" if near_chance else "FAR ABOVE CHANCE")
        )
        for entry in sorted(here, key=lambda e: -e["top1"]):
            config = entry["config"]
            # what the model sees of motion (models declare it, `rgb_motion`): pooled
            # per-frame features barely change under a translating or rotating texture
            motion = "local" if "flow" in config.modality else rgb_motion(config.arch)
            sees_motion = motion != "none"
            if config.arch == "frame_avg":
                continue
            margin = entry["top1"] - floor
            if not sees_motion:
                verdict = "single frames: sees no motion"
            elif motion == "pooled":
                verdict = (
                    "pooled frame features: blind to low-level motion (the paper's point), "
                    "not held to the check"
                )
            else:
                verdict = "beats it clearly" if margin >= MARGIN else "DOES NOT beat it clearly"
                passed &= margin >= MARGIN
            lines.append(
                f"  {config.arch:<17}{config.modality:<9}{entry['top1']:5.1f}%  "
                f"{margin:+5.1f} points: {verdict}"
            )
    return passed, "\n".join(lines)


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """`compare`'s rows as the table `vidbench regress` prints, with its verdict line."""
    width = max([len("cell"), *(len(row["cell"]) for row in rows)]) + 2
    lines = [f"{'cell':<{width}}{'baseline':>10}{'tolerance':>11}{'ours':>8}"]
    for row in rows:
        ours = "missing" if row["ours"] is None else f"{row['ours']:.1f}"
        flag = "  REGRESSED" if row["regressed"] else ""
        if row.get("significant") is False:
            flag += "  (below the tolerance, not significantly)"
        if row.get("collapsed"):
            flag += f" (at chance, {row['chance']:.1f}%)"
        lines.append(
            f"{row['cell']:<{width}}{row['baseline']:>10.1f}{row['tolerance']:>11.1f}"
            f"{ours:>8}{flag}"
        )
    regressed = [row["cell"] for row in rows if row["regressed"]]
    if regressed:
        lines.append(f"{len(regressed)} of {len(rows)} cells regressed: {', '.join(regressed)}")
    else:
        lines.append(f"no regression in {len(rows)} cells")
    return "\n".join(lines)
