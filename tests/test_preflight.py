"""Before any cell trains, the preflight says whether the data and the files a sweep names
are there, with the figures: on official-layout folders the tests write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import cli, write_sweep

from vidbench.bench.config import load_sweep
from vidbench.bench.preflight import preflight
from vidbench.bench.results import read_records


@pytest.fixture
def ucf_copy(synth_with_flow, tmp_path) -> dict[str, Path]:
    """A copy of the synthetic dataset (UCF-101 layout) with its Farneback flow."""
    root = tmp_path / "copy"
    shutil.copytree(synth_with_flow["videos"].parent, root)
    shutil.copytree(synth_with_flow["flow"], root / "flow")
    return {"videos": root / "videos", "annotations": root / "annotations", "flow": root / "flow"}


def checked(tmp_path: Path, data: dict[str, Path], *overrides: str, **changes):
    sweep = load_sweep(str(write_sweep(tmp_path / "s.yaml", data, **changes)), list(overrides))
    return preflight(sweep, tmp_path / "out")


def problems(report) -> str:
    return " | ".join(p for found in report.problems.values() for p in found)


def test_a_complete_copy_passes_with_its_figures(ucf_copy, tmp_path):
    report = checked(tmp_path, ucf_copy)
    assert report.problems == {}
    listed = len((ucf_copy["annotations"] / "testlist01.txt").read_text().split())
    assert (
        f"synth fold 1 test: {listed} of {listed} listed videos found, flow for {listed} "
        "(100.0%)" in report.lines
    )


def test_a_missing_annotation_file_is_named(ucf_copy, tmp_path):
    (ucf_copy["annotations"] / "trainlist01.txt").unlink()
    assert "datasets.synth.annotations:" in problems(checked(tmp_path, ucf_copy))
    assert "no trainlist01.txt" in problems(checked(tmp_path, ucf_copy))


def test_missing_weights_are_named(ucf_copy, tmp_path):
    report = checked(tmp_path, ucf_copy, "per_arch.i3d.inflate_from=/nowhere/googlenet.pth")
    assert "per_arch.i3d (ImageNet weights): /nowhere/googlenet.pth is not a file" in problems(
        report
    )


def test_flow_for_half_the_videos_is_refused_unless_the_threshold_is_lowered(ucf_copy, tmp_path):
    tests = (ucf_copy["annotations"] / "testlist01.txt").read_text().split()
    for rel in tests[: len(tests) // 2]:
        (ucf_copy["flow"] / rel).with_suffix(".mp4").unlink()
    report = checked(tmp_path, ucf_copy)
    half = len(tests) - len(tests) // 2
    assert (
        f"{half} of the {len(tests)} listed test videos have their flow (50.0%), under "
        "min_coverage 95%" in problems(report)
    )
    assert "--set datasets.synth.min_coverage=0.5" in problems(report)
    assert checked(tmp_path, ucf_copy, "datasets.synth.min_coverage=0.5").problems == {}


def test_a_refused_dataset_fails_before_training_and_the_dry_run_says_so(
    ucf_copy, tmp_path, capsys
):
    tests = (ucf_copy["annotations"] / "testlist01.txt").read_text().split()
    for rel in tests[: len(tests) // 2]:
        (ucf_copy["flow"] / rel).with_suffix(".mp4").unlink()
    sweep = write_sweep(tmp_path / "s.yaml", ucf_copy, arch=["i3d"], modality=["flow"])
    assert cli("run", str(sweep), "--out", str(tmp_path / "dry"), "--dry-run") == 1
    assert "# preflight PROBLEM: datasets.synth:" in capsys.readouterr().out
    assert cli("run", str(sweep), "--out", str(tmp_path / "out"), "--no-progress") == 1
    (record,) = read_records(tmp_path / "out")
    assert record.status == "failed" and record.error.startswith("PreflightError: preflight:")
    assert not (tmp_path / "out" / "cells" / record.cell).exists()  # nothing trained
    lowered = ("--set", "datasets.synth.min_coverage=0.4", "train.max_steps=1")
    assert cli("run", str(sweep), "--out", str(tmp_path / "out"), *lowered) == 0
    latest = read_records(tmp_path / "out")[-1]
    assert latest.status == "ok" and latest.config.data.min_coverage == 0.4  # kept


def kinetics_copy(tmp_path: Path, names: list[str]) -> dict[str, Path]:
    """A Kinetics-400-format CSV with labelled train, val and test rows, and the files
    `names` (of the clips present) under videos/."""
    rows = [
        ("yoga", "aa", "train"),
        ("archery", "bb", "train"),
        ("yoga", "cc", "val"),
        ("archery", "dd", "test"),
        ("yoga", "ee", "test"),
    ]
    csv = tmp_path / "kinetics.csv"
    csv.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        + "".join(f"{label},{vid},0,10,{split}\n" for label, vid, split in rows)
    )
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in names:
        (videos / name).write_bytes(b"x")  # the preflight looks, it does not decode
    return {"videos": videos, "annotations": csv}


def test_a_labelled_kinetics_test_split_without_its_videos_is_refused(tmp_path):
    data = kinetics_copy(tmp_path, [f"{v}_000000_000010.mp4" for v in ("aa", "bb", "cc")])
    report = checked(tmp_path, data, "datasets.synth.format=kinetics400", arch=["c3d"])
    assert "0 of the 2 listed test videos are found (0.0%)" in problems(report)
    validation = checked(
        tmp_path,
        data,
        "datasets.synth.format=kinetics400",
        "datasets.synth.test_split=val",
        arch=["c3d"],
    )
    assert validation.problems == {}  # tested on val instead (and then not cited)


def test_kinetics_clips_named_by_youtube_id_are_found(tmp_path):
    data = kinetics_copy(tmp_path, [f"{v}.mp4" for v in ("aa", "bb", "cc", "dd", "ee")])
    report = checked(tmp_path, data, "datasets.synth.format=kinetics400", arch=["c3d"])
    assert report.problems == {}
    assert "synth fold 1 test: 2 of 2 listed videos found" in report.lines
