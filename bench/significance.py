"""How sure a difference in accuracy is: two cells compared on the same test videos.

`paired_difference` takes, for each arm, a (seeds, videos) matrix of right/wrong on the
videos both arms evaluated, and gives the difference in video top-1 (points) with a
percentile bootstrap interval that resamples the videos (paired: one draw serves both
arms) and, where an arm has several seeds, its seeds too, so both the test set's and
training's randomness are in the interval. With one seed on each side it also gives
McNemar's exact test (the binomial test on the videos the two disagree on). The interval
excludes zero or it does not: that is the verdict `vidbench compare` prints and the
leaderboard's "Vs the best" column shows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vidbench.bench.predictions import VideoPredictions, read_predictions
from vidbench.bench.results import RunRecord

log = logging.getLogger(__name__)
REPLICATES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Difference:
    """Top-1 of arm a and b on the shared videos (%), a - b (points) and its interval."""

    top1_a: float
    top1_b: float
    difference: float
    low: float
    high: float
    level: float
    videos: int
    seeds_a: int
    seeds_b: int
    mcnemar_p: float | None  # one seed on each side only

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def describe(self) -> str:
        interval = f"[{self.low:+.1f}, {self.high:+.1f}]"
        return f"{self.difference:+.1f} {interval}"


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    level: float = LEVEL,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> Difference:
    """`a` (seeds_a, V) and `b` (seeds_b, V): right (True) or wrong on the same V videos.
    The interval resamples videos (both arms with one draw) and each arm's seeds."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"the arms must share their videos (got {a.shape[1]} and {b.shape[1]})")
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    rng = np.random.default_rng(seed)
    videos = a.shape[1]
    draws = np.empty(replicates)
    for start in range(0, replicates, 100):  # in chunks: (chunk, videos) at most
        n = min(100, replicates - start)
        picked = rng.integers(0, videos, size=(n, videos))
        means = []
        for arm in (a, b):
            if len(arm) > 1:  # each replicate's own draw of seeds, averaged per video
                seeds = rng.integers(0, len(arm), size=(n, len(arm)))
                per_video = arm[seeds].mean(axis=1)  # (n, videos)
            else:
                per_video = np.broadcast_to(arm[0], (n, videos))
            means.append(np.take_along_axis(per_video, picked, axis=1).mean(axis=1))
        draws[start : start + n] = 100 * (means[0] - means[1])
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    top1_a, top1_b = 100 * a.mean(), 100 * b.mean()
    p = mcnemar_exact(a[0], b[0]) if len(a) == len(b) == 1 else None
    return Difference(
        top1_a, top1_b, top1_a - top1_b, float(low), float(high), level, videos, len(a), len(b), p
    )


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: of the videos exactly one arm gets right, is the
    split further from even than chance makes likely? (1.0 when they never disagree.)"""
    only_a = int(np.sum((a > 0.5) & (b < 0.5)))
    only_b = int(np.sum((a < 0.5) & (b > 0.5)))
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    log_half = n * math.log(0.5)
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half)
        for i in range(k + 1)
    )
    return min(1.0, 2 * tail)


def correctness(predictions: list[VideoPredictions], videos: list[str]) -> np.ndarray:
    """(seeds, len(videos)) right/wrong of each seed's predictions on `videos`."""
    rows = []
    for kept in predictions:
        index, right = kept.by_video(), kept.correct
        rows.append(right[[index[v] for v in videos]])
    return np.stack(rows)


Kept = tuple[str, str, str]  # a record's predictions: (results folder, file, sha256)


def kept_of(records: list[RunRecord]) -> tuple[Kept, ...]:
    """Where each record's predictions are; ValueError naming a record that kept none."""
    out = []
    for record in records:
        if not record.predictions or record.folder is None:
            raise ValueError(
                f"{record.cell}: its record keeps no per-video predictions (cells run "
                "before vidbench 0.3 did not); run the cell again to compare it"
            )
        kept = record.predictions
        out.append((str(record.folder), kept["file"], kept["sha256"]))
    return tuple(out)


@lru_cache(maxsize=256)
def _read(kept: Kept) -> VideoPredictions:
    """One prediction file, read once per process (a page reads each for its comparisons
    and again for its per-class tables)."""
    folder, file, sha256 = kept
    return read_predictions(Path(folder), {"file": file, "sha256": sha256})


def predictions_of(records: list[RunRecord]) -> list[VideoPredictions]:
    """The kept predictions of each record; ValueError naming a record that kept none."""
    return [_read(kept) for kept in kept_of(records)]


def compare_records(
    a: list[RunRecord],
    b: list[RunRecord],
    level: float = LEVEL,
    replicates: int = REPLICATES,
) -> tuple[Difference, dict[str, int]]:
    """The difference of arm `a` (its seeds' records) and arm `b` on the videos every one
    of their records evaluated, and {"only_a", "only_b"}: videos left out, per side. The
    bootstrap is seeded, so the answer for the same files is kept and not drawn again."""
    return _compare(kept_of(a), kept_of(b), level, replicates)


@lru_cache(maxsize=256)
def _compare(
    a: tuple[Kept, ...], b: tuple[Kept, ...], level: float, replicates: int
) -> tuple[Difference, dict[str, int]]:
    kept_a, kept_b = [_read(k) for k in a], [_read(k) for k in b]
    sets_a = [set(k.video_ids) for k in kept_a]
    sets_b = [set(k.video_ids) for k in kept_b]
    shared = sorted(set.intersection(*sets_a, *sets_b))
    if not shared:
        raise ValueError("the two cells share no test video, so they cannot be compared")
    left_out = {
        "only_a": len(set.union(*sets_a) - set(shared)),
        "only_b": len(set.union(*sets_b) - set(shared)),
    }
    labels_a = {v: int(y) for k in kept_a for v, y in zip(k.video_ids, k.labels, strict=True)}
    labels_b = {v: int(y) for k in kept_b for v, y in zip(k.video_ids, k.labels, strict=True)}
    differ = [v for v in shared if labels_a[v] != labels_b[v]]
    if differ:
        raise ValueError(
            f"the two cells label {len(differ)} shared videos differently (e.g. {differ[0]}): "
            "they were tested on different class lists"
        )
    diff = paired_difference(
        correctness(kept_a, shared), correctness(kept_b, shared), level, replicates
    )
    return diff, left_out


def add_comparisons(summary: dict[Any, dict[str, Any]], level: float = LEVEL) -> None:
    """Within each protocol, start, dataset and split, set each entry's `vs_best`: "best",
    or its difference from the best (the highest top-1) with the interval and whether it
    is distinguishable from it. Entries whose records kept no predictions get none."""
    facets: dict[tuple, list] = {}
    for key, entry in summary.items():
        if entry["top1"] is not None and entry["records"]:
            facets.setdefault((key.protocol, key.start, key.dataset, key.fold), []).append(key)
    for keys in facets.values():
        if len(keys) < 2:
            continue
        best = max(keys, key=lambda k: summary[k]["top1"])
        for key in keys:
            if key == best:
                continue
            try:
                diff, _ = compare_records(summary[key]["records"], summary[best]["records"], level)
            except ValueError as error:
                log.debug("no comparison for %s: %s", key, error)
                continue
            verdict = "lower" if diff.excludes_zero else "not distinguishable"
            summary[key]["vs_best"] = f"{verdict}: {diff.describe()}"
            summary[best]["vs_best"] = "best"
