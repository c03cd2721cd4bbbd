"""`vidbench data synth` and `vidbench data check`, and the synthetic dataset's promise."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from vidbench.bench.cli import main
from vidbench.datasets.annotations import load_annotations
from vidbench.datasets.check import check_dataset
from vidbench.datasets.decoders import open_video


def run_check(annotations: Path, videos: Path, *extra: str) -> int:
    """`vidbench data check` on UCF-101-layout annotations."""
    return main(
        [
            "data",
            "check",
            "--dataset",
            "ucf101",
            "--annotations",
            str(annotations),
            "--videos",
            str(videos),
            *extra,
        ]
    )


def check_json(capsys, root: Path, *extra: str) -> dict:
    assert run_check(root / "annotations", root / "videos", "--json", *extra) == 0
    return json.loads(capsys.readouterr().out)


def test_check_json_has_exactly_the_documented_keys(synth_dataset, capsys):
    report = check_json(capsys, synth_dataset)
    assert set(report) == {
        "dataset", "split", "num_classes", "splits", "missing", "unreadable", "fail_on", "failed",
        "notes", "unmatched",
    }  # fmt: skip
    assert (report["notes"], report["unmatched"]) == ([], [])
    assert (report["missing"], report["unreadable"], report["failed"]) == ([], {}, False)
    assert report["dataset"] == "ucf101" and report["split"] == 1 and report["num_classes"] == 8
    assert report["splits"]["train"] == {"expected": 32, "found": 32, "missing": 0, "unreadable": 0}
    assert report["splits"]["test"] == {"expected": 32, "found": 32, "missing": 0, "unreadable": 0}


def test_check_counts_missing_and_unreadable_and_caches(synth_dataset, tmp_path, capsys):
    root = Path(shutil.copytree(synth_dataset, tmp_path / "copy"))
    (root / "videos/MoveLeft/v_MoveLeft_g01_c01.avi").unlink()
    (root / "videos/MoveUp/v_MoveUp_g02_c03.avi").write_bytes(b"")
    report = check_json(capsys, root)
    assert report["splits"]["test"] == {"expected": 32, "found": 31, "missing": 1, "unreadable": 0}
    assert report["splits"]["train"] == {"expected": 32, "found": 31, "missing": 0, "unreadable": 1}

    again = check_dataset("ucf101", root / "annotations", root / "videos", progress=False)
    assert again["probed"] == 0 and again["cached"] == 63  # the second run opens nothing
    good = synth_dataset / "videos/MoveUp/v_MoveUp_g02_c03.avi"
    shutil.copy(
        good, root / "videos/MoveUp/v_MoveUp_g02_c03.avi"
    )  # repaired: size and mtime change
    third = check_dataset("ucf101", root / "annotations", root / "videos", progress=False)
    assert third["probed"] == 1 and third["splits"]["train"]["unreadable"] == 0


def test_fail_on_gates_ci_with_exit_1_and_lists_the_bad_paths(synth_dataset, tmp_path, capfd):
    """`--fail-on` chooses what makes `data check` exit 1; the paths are in `--json`; what
    decord and FFmpeg print about a broken file stays out of the output (-v logs it)."""
    root = Path(shutil.copytree(synth_dataset, tmp_path / "copy"))
    (root / "videos/MoveLeft/v_MoveLeft_g01_c01.avi").unlink()  # a test video
    broken = root / "videos/MoveUp/v_MoveUp_g02_c03.avi"  # a training video
    broken.write_bytes(b"")
    capfd.readouterr()
    codes = {}
    for fail_on in ("none", "missing", "unreadable", "any"):
        args = ["--json", "--fail-on", fail_on]
        codes[fail_on] = run_check(root / "annotations", root / "videos", *args)
        report = json.loads(capfd.readouterr().out)
        assert report["failed"] is (codes[fail_on] == 1) and report["fail_on"] == fail_on
    assert codes == {"none": 0, "missing": 1, "unreadable": 1, "any": 1}
    assert report["missing"] == ["MoveLeft/v_MoveLeft_g01_c01.avi"]
    assert list(report["unreadable"]) == [str(broken)]

    good = (root / "videos/MoveRight/v_MoveRight_g01_c01.avi").read_bytes()
    (root / "videos/MoveLeft/v_MoveLeft_g01_c01.avi").write_bytes(b"junk" * 500)  # unreadable
    broken.write_bytes(good[: len(good) // 3])  # truncated: decord and FFmpeg complain
    cache = ["--cache", str(tmp_path / "fresh-cache")]  # opened again, not from the manifest
    assert run_check(root / "annotations", root / "videos", "--fail-on", "missing", *cache) == 0
    out, err = capfd.readouterr()
    assert "unreadable: " in out and "FAILED" not in out
    for native in ("video_reader.cc", "ERROR opening", "moov atom", "Invalid data"):
        assert native not in out + err, native
    assert run_check(root / "annotations", root / "videos", "--fail-on", "any") == 1
    assert "FAILED (--fail-on any)" in capfd.readouterr().out
    cache = ["--cache", str(tmp_path / "third-cache")]
    assert run_check(root / "annotations", root / "videos", "-v", *cache) == 0
    assert "decoder said: " in capfd.readouterr().err  # -v: in the log, marked as such


def test_check_with_no_videos_reports_everything_missing(synth_dataset, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = run_check(synth_dataset / "annotations", tmp_path / "empty", "--json")
    assert code == 0
    splits = json.loads(capsys.readouterr().out)["splits"]
    assert splits["train"] == {"expected": 32, "found": 0, "missing": 32, "unreadable": 0}


def test_check_bounds_a_hanging_video(synth_dataset, tmp_path, capsys):
    root = Path(shutil.copytree(synth_dataset, tmp_path / "copy"))
    fifo = root / "videos/ZoomOut/v_ZoomOut_g02_c01.avi"
    fifo.unlink()
    os.mkfifo(fifo)
    try:
        report = check_json(capsys, root, "--timeout", "1")
        assert report["splits"]["train"]["unreadable"] == 1
    finally:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the abandoned probe finish


def test_check_human_output_names_the_problem_files(synth_dataset, tmp_path, capsys):
    root = Path(shutil.copytree(synth_dataset, tmp_path / "copy"))
    (root / "videos/MoveLeft/v_MoveLeft_g01_c01.avi").write_text("junk")
    assert run_check(root / "annotations", root / "videos") == 0
    out = capsys.readouterr().out
    assert re.search(r"test\s+32\s+31\s+0\s+1", out)
    assert "unreadable: " in out and "v_MoveLeft_g01_c01.avi" in out


def test_bad_annotations_exit_2_with_the_reason(tmp_path, capsys):
    (tmp_path / "classInd.txt").write_text("1 A\n")
    (tmp_path / "trainlist01.txt").write_text("../../etc/passwd 1\n")
    (tmp_path / "testlist01.txt").write_text("")
    code = run_check(tmp_path, tmp_path)
    assert code == 2
    assert "trainlist01.txt:1" in capsys.readouterr().err


def test_console_script_and_module_entry_points(tmp_path):
    out = tmp_path / "tiny"
    scripts = Path(sys.executable).parent
    subprocess.run(
        [
            str(scripts / "vidbench"),
            "data",
            "synth",
            "--out",
            str(out),
            "--classes",
            "2",
            "--videos-per-class",
            "2",
            "--frames",
            "8",
            "--size",
            "32",
        ],
        check=True,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidbench",
            "data",
            "check",
            "--dataset",
            "ucf101",
            "--annotations",
            str(out / "annotations"),
            "--videos",
            str(out / "videos"),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "VIDBENCH_CACHE": str(tmp_path / "cache")},
    )
    assert json.loads(result.stdout)["splits"]["train"]["found"] == 2


def test_synth_is_ucf101_layout_with_disjoint_groups(synth_dataset):
    parsed = load_annotations("ucf101", synth_dataset / "annotations")
    assert parsed.class_names[:4] == ["MoveRight", "MoveLeft", "MoveUp", "MoveDown"]
    group = re.compile(r"_g(\d+)_")
    train = {(r.label, group.search(r.path)[1]) for r in parsed.splits["train"]}
    test = {(r.label, group.search(r.path)[1]) for r in parsed.splits["test"]}
    assert train and test and not train & test
    assert b"\r\n" in (synth_dataset / "annotations/classInd.txt").read_bytes()
    video = open_video(synth_dataset / "videos" / parsed.splits["train"][0].path)
    assert (video.num_frames, video.fps) == (40, 25.0)


def test_synth_rejects_bad_settings(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--classes", "13"]) == 2
    assert "classes must be in 2..12" in capsys.readouterr().err
