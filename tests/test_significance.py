"""How sure a comparison is: the paired interval on constructed predictions whose true
difference is known, `vidbench compare` on kept prediction files, `regress
--significance`, and the leaderboard's "Vs the best" column."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import finished_record, markdown_rows

from vidbench.bench.cli import main
from vidbench.bench.leaderboard import VS_BEST, markdown
from vidbench.bench.predictions import read_predictions, top_k, write_predictions
from vidbench.bench.regress import compare
from vidbench.bench.results import append_record, read_records
from vidbench.bench.significance import mcnemar_exact, paired_difference


def draws(rng, videos: int, p_a: float, p_b: float, seeds: int = 1):
    """Right/wrong of two arms on `videos` videos: each video has a difficulty shared by
    both arms (what pairing exploits), and each seed flips a few answers."""
    difficulty = rng.random(videos)
    a = np.stack([difficulty < p_a + rng.normal(0, 0.02) for _ in range(seeds)])
    b = np.stack([difficulty < p_b + rng.normal(0, 0.02) for _ in range(seeds)])
    return a, b


def test_a_real_difference_is_found_and_an_absent_one_is_not():
    rng = np.random.default_rng(0)
    a, b = draws(rng, 400, 0.70, 0.55)
    found = paired_difference(a, b, replicates=1000)
    assert found.excludes_zero and 10 < found.difference < 20 and found.low > 0
    assert found.mcnemar_p < 1e-6  # one seed a side: McNemar's test too
    a, b = draws(rng, 400, 0.60, 0.60, seeds=3)
    same = paired_difference(a, b, replicates=1000)
    assert not same.excludes_zero and same.low < 0 < same.high
    assert same.mcnemar_p is None and (same.seeds_a, same.seeds_b) == (3, 3)


def test_the_interval_covers_the_true_difference_about_as_often_as_it_says():
    """200 test sets drawn from one population where A's accuracy is 5 points above B's:
    a 90% interval should hold the true 5 in about 90% of them."""
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        videos = 300
        right_a = rng.random(videos) < 0.65
        # B agrees with A on most videos, and is right 5 points less often overall
        flip = rng.random(videos)
        right_b = np.where(flip < 0.8, right_a, rng.random(videos) < 0.65 - 0.05 / 0.2)
        diff = paired_difference(
            right_a[None], right_b[None], level=0.9, replicates=400, seed=int(rng.integers(1 << 30))
        )
        covered += diff.low <= 5.0 <= diff.high
    assert 0.83 <= covered / 200 <= 0.96, covered


def test_mcnemar_counts_only_the_videos_the_two_disagree_on():
    a = np.array([1, 1, 1, 0, 0, 1] * 10, dtype=bool)
    assert mcnemar_exact(a, a) == 1.0
    b = a.copy()
    b[:3] = False  # 3 videos only A gets right: a split of 3-0 is not rare (p = 0.25)
    assert mcnemar_exact(a, b) == pytest.approx(0.25)


def kept_cell(folder, cell: str, right: np.ndarray) -> None:
    """A finished record of `cell` whose kept predictions are right where `right` says, on
    videos v0...; written to `folder` as a run would write it."""
    labels = np.arange(len(right)) % 4
    probs = np.full((len(right), 4), 0.1)
    probs[np.arange(len(right)), np.where(right, labels, (labels + 1) % 4)] = 0.7
    kept = write_predictions(
        folder, cell, top_k([f"v{i}" for i in range(len(right))], labels, probs)
    )
    record = finished_record(cell, 100 * right.mean())
    record.data.num_classes = 4
    record.predictions = kept
    append_record(folder / "runs.jsonl", record)


def test_compare_reads_the_kept_predictions_and_says_whether_the_cells_differ(tmp_path, capsys):
    rng = np.random.default_rng(2)
    a, b = draws(rng, 300, 0.8, 0.5, seeds=2)
    for seed in range(2):
        kept_cell(tmp_path, f"c3d-rgb-syn1-scratch-s{seed}", a[seed])
        kept_cell(tmp_path, f"i3d-rgb-syn1-scratch-s{seed}", b[seed])
    kept_cell(tmp_path, "frame_avg-rgb-syn1-scratch-s0", b[0])
    assert main(["compare", str(tmp_path), "c3d-rgb-syn1-scratch", "i3d-rgb-syn1-scratch-s*"]) == 0
    out = capsys.readouterr().out
    assert "(2 seed(s))" in out and "on the 300 test videos both evaluated" in out
    assert "excludes zero: A and B differ" in out and "over videos and seeds" in out
    assert (
        main(["compare", str(tmp_path), "i3d-rgb-syn1-scratch-s0", "frame_avg-rgb-syn1-scratch-s0"])
        == 0
    )
    out = capsys.readouterr().out  # the same answers: no difference, McNemar p = 1
    assert "A - B: +0.0 points" in out and "p = 1" in out and "not distinguishable" in out
    # the leaderboard marks, per dataset, who is not distinguishable from the best
    rows = {
        r["Architecture"]: r
        for r in markdown_rows(markdown(read_records(tmp_path)))
        if "Top-1 %" in r
    }
    assert rows["3D-ConvNet (64×224)"][VS_BEST] == "best"
    assert rows["Two-Stream I3D"][VS_BEST].startswith("lower: -")
    # a wrong name lists the cells there are; an altered file is refused, not compared
    assert main(["compare", str(tmp_path), "c3d-rgb-syn2-scratch", "i3d-rgb-syn1-scratch"]) == 2
    assert "finished cells: c3d-rgb-syn1-scratch-s*" in capsys.readouterr().err
    record = read_records(tmp_path)[0]
    path = tmp_path / record.predictions["file"]
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="not the predictions its record wrote"):
        read_predictions(tmp_path, record.predictions)


def test_regress_with_significance_passes_a_drop_within_the_noise_only():
    baseline = {"cells": {"c3d-rgb-syn1-scratch-s*": [70.0, 72.0, 71.0]}}
    noisy = [finished_record(f"c3d-rgb-syn1-scratch-s{s}", 64.0) for s in range(3)]
    for record in noisy:
        record.data.evaluated_videos = 64  # 7 points on 64 videos: within the noise
    (row,) = compare(noisy, baseline)
    assert row["regressed"]
    (row,) = compare(noisy, baseline, significance=True)
    assert not row["regressed"] and row["significant"] is False
    for record in noisy:
        record.data.evaluated_videos = 10_000  # the same drop on 10,000 videos: real
    (row,) = compare(noisy, baseline, significance=True)
    assert row["regressed"] and row["significant"]
