"""What a careful but unlucky user can type: nothing destroys data, hangs, or slips past
the regression gate (one test or more per finding of the adversarial pass, numbered as
in its issue)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    cli,
    finished_record,
    markdown_rows,
    moving_video,
    paper_record,
    tiny_checkpoint,
    write_sweep,
)

from vidbench.bench.config import SweepError, load_sweep
from vidbench.bench.results import RunRecord, append_record, read_records
from vidbench.datasets.annotations import VideoRecord
from vidbench.datasets.check import check_dataset
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.files import FolderBusy, FolderLock, walk_files
from vidbench.datasets.flow import FlowConfig, extract_flow
from vidbench.datasets.index import locate_videos
from vidbench.datasets.synthetic import random_texture, render_motion, write_video
from vidbench.models.weights import load_classifier


def record(cell: str, top1: float) -> RunRecord:
    return finished_record(cell, top1)


# 1. ----------------------------------------------------------------------------------------


def test_flow_extract_refuses_an_output_equal_to_inside_or_containing_the_videos(tmp_path, capsys):
    videos = tmp_path / "X"
    source = moving_video(videos / "C" / "a.mp4")
    before = source.read_bytes()
    for out in (videos, videos / "flow", tmp_path):
        capsys.readouterr()
        assert cli("flow", "extract", "--videos", str(videos), "--out", str(out)) == 2
        assert "input folder" in capsys.readouterr().err
    assert source.read_bytes() == before
    assert sorted(p.name for p in walk_files(videos, hidden=True)) == ["a.mp4"]
    with pytest.raises(ValueError, match="the video itself"):
        extract_flow(source, source, FlowConfig("farneback"))
    assert source.read_bytes() == before


# 2. ----------------------------------------------------------------------------------------


def test_predict_never_writes_over_a_video_and_keeps_same_named_videos_apart(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")
    video = moving_video(tmp_path / "v.avi")
    before = video.read_bytes()
    assert cli("predict", str(video), "--checkpoint", str(ckpt), "--out", str(video)) == 2
    assert "would replace it" in capsys.readouterr().err and video.read_bytes() == before

    first, second = (
        moving_video(tmp_path / "a" / "clip.avi"),
        moving_video(tmp_path / "b" / "clip.avi"),
    )
    out = tmp_path / "annotated"
    args = ("predict", str(first), str(second), "--checkpoint", str(ckpt), "--out", str(out))
    assert cli(*args, "--json", "--no-progress") == 0
    written = [json.loads(line)["annotated"] for line in capsys.readouterr().out.splitlines()]
    assert written == [str(out / "a" / "clip.annotated.mp4"), str(out / "b" / "clip.annotated.mp4")]
    assert all(open_video(path).num_frames == 20 for path in written)


def test_regress_update_and_weights_import_never_replace_their_input(tmp_path, capsys):
    runs = tmp_path / "runs.jsonl"
    append_record(runs, record("c3d-rgb-d1-scratch-s0", 50))
    before = runs.read_bytes()
    assert cli("regress", "--update", "--baseline", str(runs), str(tmp_path)) == 2
    assert "would replace it" in capsys.readouterr().err and runs.read_bytes() == before

    source = tmp_path / "i3d.pt"
    torch.save({"logits.conv3d.weight": torch.zeros(1)}, source)
    before = source.read_bytes()
    args = ("weights", "import", "pytorch-i3d", str(source), "--stream", "rgb")
    assert cli(*args, "--out", str(source)) == 2
    assert "would replace it" in capsys.readouterr().err and source.read_bytes() == before


# 3. ----------------------------------------------------------------------------------------

APPENDER = """
import sys
from vidbench.bench.results import RunRecord, append_record
for i in range(int(sys.argv[2])):
    record = RunRecord(cell=f"{sys.argv[3]}-{i}", status="failed", error="x" * 500)
    append_record(sys.argv[1], record)
"""


def test_concurrent_appends_lose_no_record(tmp_path):
    runs = tmp_path / "runs.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(runs), "200", name])
        for name in ("a", "b")
    ]
    assert [w.wait() for w in writers] == [0, 0]
    cells = [r.cell for r in read_records(runs)]
    assert len(cells) == 400 and len(set(cells)) == 400


def test_a_writer_killed_mid_append_leaves_every_record_readable(tmp_path):
    runs = tmp_path / "runs.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", APPENDER, str(runs), "100000", "k"])
    while not runs.exists() or len(runs.read_bytes().splitlines()) < 50:
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    lines = runs.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # no torn line: the old file or the new one
    records = read_records(runs)
    # killed between a record's own file and runs.jsonl, the record is read from its file
    assert len(lines) >= 50 and len(records) in (len(lines), len(lines) + 1)
    assert [r.cell for r in records] == [f"k-{i}" for i in range(len(records))]


def test_a_record_missing_from_the_runs_file_is_read_from_its_own_and_written_back(tmp_path):
    """As on a network file system where another host's rewrite of runs.jsonl was not yet
    seen: the record's own file (records/<cell>/<id>.json) keeps it."""
    runs = tmp_path / "runs.jsonl"
    first, second = record("c3d-rgb-d1-scratch-s0", 50), record("c3d-rgb-d1-scratch-s1", 60)
    append_record(runs, first)
    (own_file,) = (tmp_path / "records" / first.cell).glob("*.json")
    assert own_file.stem == first.record_id
    runs.write_text("")  # the append that host made is lost from the index
    assert [r.cell for r in read_records(runs)] == [first.cell]
    append_record(runs, second)  # the next append writes the lost record back in
    assert [json.loads(line)["cell"] for line in runs.read_text().splitlines()] == [
        first.cell,
        second.cell,
    ]
    assert [r.cell for r in read_records(runs)] == [first.cell, second.cell]  # each once


HOLDER = """
import sys
from vidbench.datasets.files import FolderLock
with FolderLock(sys.argv[1], "a test holder"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_on_a_busy_output_folder_stops_naming_the_holder(tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "out")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        data = {"videos": tmp_path / "data", "annotations": tmp_path / "data"}
        (tmp_path / "data").mkdir()  # there, so the lock is what stops the run
        sweep = write_sweep(tmp_path / "s.yaml", data, modality=["rgb"])
        assert cli("run", str(sweep), "--out", str(tmp_path / "out"), "--no-progress") == 2
        error = capsys.readouterr().err
        assert f"a test holder (pid {holder.pid}" in error
        with pytest.raises(FolderBusy):
            FolderLock(tmp_path / "out", "another").__enter__()
    finally:
        holder.communicate("")
    with FolderLock(tmp_path / "out", "after"):  # released when its holder ended
        pass


def test_atomic_writes_keep_the_permissions_of_the_file_they_replace(tmp_path):
    from vidbench.datasets.files import atomic_write_text

    runs = tmp_path / "runs.jsonl"
    runs.write_text("")
    runs.chmod(0o640)
    append_record(runs, record("c3d-rgb-d1-scratch-s0", 50))
    assert runs.stat().st_mode & 0o777 == 0o640
    old_mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.md", "x")
    finally:
        os.umask(old_mask)
    assert (tmp_path / "new.md").stat().st_mode & 0o777 == 0o644


# 4. ----------------------------------------------------------------------------------------


def test_a_torn_last_checkpoint_is_reported_and_the_cell_trains_from_the_start(
    synth_with_flow, tmp_path
):
    from vidbench.bench.cells import expand_cells, resolve_cell
    from vidbench.bench.runner import prepare_data

    sweep_file = write_sweep(tmp_path / "s.yaml", synth_with_flow, arch=["c3d"])
    sweep = load_sweep(str(sweep_file))
    (key,) = expand_cells(sweep)
    cell = resolve_cell(sweep, key, prepare_data("synth", sweep, None, False))
    cell_dir = tmp_path / "out" / "cells" / key.id
    (cell_dir / "checkpoints").mkdir(parents=True)
    (cell_dir / "started.json").write_text(json.dumps({"config_hash": cell.hash()}))
    good = tiny_checkpoint(tmp_path / "good.ckpt").read_bytes()
    torn = cell_dir / "checkpoints" / "last.ckpt"
    torn.write_bytes(good[: len(good) // 2])
    assert (
        cli(
            "run",
            str(sweep_file),
            "--out",
            str(tmp_path / "out"),
            "--wandb",
            "disabled",
            "--no-progress",
        )
        == 0
    )
    (result,) = read_records(tmp_path / "out")
    assert result.status == "ok" and result.resume["from_checkpoint"] is None
    assert str(torn) in result.resume["note"] and "truncated" in result.resume["note"]


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs, for a real 'No space left on device' (needs root, as CI runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (not root?): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_leaves_no_torn_checkpoint_and_the_error_names_the_file(
    synth_with_flow, tmp_path, small_disk
):
    # a C3D whose checkpoint (weights and optimiser state, about 9 MB) cannot fit
    sweep = write_sweep(
        tmp_path / "s.yaml", synth_with_flow, arch=["c3d"], model={"width": 0.25, "dropout": 0.0}
    )
    out = small_disk / "out"
    assert cli("run", str(sweep), "--out", str(out), "--wandb", "disabled", "--no-progress") == 1
    (result,) = read_records(out)
    last = out / "cells" / "c3d-rgb-synth1-scratch-s0" / "checkpoints" / "last.ckpt"
    assert result.status == "failed"
    assert str(last) in result.error and "No space left on device" in result.error
    assert not last.exists() and not list(last.parent.glob(".*tmp"))  # no torn file left


# 5. ----------------------------------------------------------------------------------------


def test_lines_that_are_not_records_are_skipped_with_a_warning_naming_them(
    tmp_path, caplog, capsys
):
    runs = tmp_path / "runs.jsonl"
    good = [record(f"c3d-rgb-d1-scratch-s{seed}", 50) for seed in (0, 1)]
    incomplete = json.loads(good[0].to_json()) | {"metrics": None}  # "ok" without metrics
    runs.write_text(
        good[0].to_json()
        + "\n[1, 2]\n"
        + json.dumps({"status": "ok"})
        + "\n"
        + good[1].to_json()
        + "\n"
        + good[1].to_json()[:40]
        + "\n"
        + json.dumps(incomplete)
    )
    assert read_records(runs) == good
    warned = " ".join(caplog.messages)
    assert all(f"line {n} of {runs}" in warned for n in (2, 3, 5, 6))
    assert "a finished record without ['metrics']" in warned
    assert cli("leaderboard", str(tmp_path)) == 0
    assert cli("regress", "--update", "--baseline", str(tmp_path / "b.json"), str(tmp_path)) == 0
    assert cli("regress", "--baseline", str(tmp_path / "b.json"), str(tmp_path)) == 0
    append_record(runs, record("c3d-rgb-d1-scratch-s2", 50))  # after a torn line: its own line
    assert len(read_records(runs)) == 3


# 6. ----------------------------------------------------------------------------------------


def test_the_regression_gate_cannot_be_silenced(tmp_path, capsys):
    append_record(tmp_path / "runs.jsonl", record("c3d-rgb-d1-scratch-s0", 20.3))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"cells": {"c3d-rgb-d1-scratch-s*": [90.0]}}))
    assert cli("regress", "--baseline", str(baseline), str(tmp_path)) == 1
    for tolerance in ("nan", "inf", "-1"):
        assert (
            cli("regress", "--min-points", tolerance, "--baseline", str(baseline), str(tmp_path))
            == 2
        )
    baseline.write_text(json.dumps({"cells": {}}))
    assert cli("regress", "--baseline", str(baseline), str(tmp_path)) == 2
    assert "no cells" in capsys.readouterr().err
    baseline.write_text(json.dumps({"cells": {"i3d-rgb-d1-scratch-s*": [50.0]}}))
    assert cli("regress", "--baseline", str(baseline), str(tmp_path)) == 1  # no result: fails


def test_regress_names_package_versions_that_differ_from_the_baseline(tmp_path, caplog):
    for seed in (0, 1):
        append_record(tmp_path / "runs.jsonl", record(f"c3d-rgb-d1-scratch-s{seed}", 50))
    baseline = tmp_path / "baseline.json"
    assert cli("regress", "--update", "--baseline", str(baseline), str(tmp_path)) == 0
    stored = json.loads(baseline.read_text())
    assert stored["environment"]["torch"] == metadata.version("torch")
    assert cli("regress", "--baseline", str(baseline), str(tmp_path)) == 0
    assert not any("other package versions" in m for m in caplog.messages)
    stored["environment"]["av"] = "0.1"
    baseline.write_text(json.dumps(stored))
    assert cli("regress", "--baseline", str(baseline), str(tmp_path)) == 0
    assert any(f"av: 0.1 -> {metadata.version('av')}" in m for m in caplog.messages)


# 7. ----------------------------------------------------------------------------------------


def test_the_leaderboard_counts_each_seed_once_and_cites_the_paper_only_for_real_data(
    tmp_path, capsys
):
    from vidbench.bench.leaderboard import summarise

    for seed, top1 in ((0, 40.0), (1, 60.0)):
        append_record(tmp_path / "runs.jsonl", record(f"c3d-rgb-d1-scratch-s{seed}", top1))
    assert cli("leaderboard", str(tmp_path), str(tmp_path)) == 0
    (row,) = markdown_rows(capsys.readouterr().out)
    assert (row["Top-1 %"], row["± s.d."], row["Seeds"]) == ("50.0", "14.1", "2")
    assert row["Paper top-1 %"] == row["Δ paper"] == ""  # UCF-101's format is not UCF-101

    real = paper_record("table2", "c3d-rgb-ucf1011-scratch-s0", start="scratch", top1=50.0)
    copy = real.model_copy(update={"data": real.data.model_copy(update={"official_classes": None})})
    copy.config = copy.config.model_copy(update={"dataset": "syn"})
    entries = summarise([real, copy]).values()
    papers = {e["config"].dataset: e["paper"] and e["paper"].top1 for e in entries}
    assert papers == {"ucf101": 51.6, "syn": None}  # the same run on classes not UCF-101's


def test_official_datasets_are_recognised_by_their_class_lists():
    from vidbench.bench.paper import official_dataset
    from vidbench.models.weights import load_labels

    assert official_dataset(load_labels("kinetics400")) == "kinetics400"
    assert official_dataset(["ApplyEyeMakeup", "YoYo"]) is None
    ucf = (Path(__file__).parents[1] / "bench" / "classes" / "ucf101.txt").read_text().split()
    assert len(ucf) == 101 and official_dataset([c.lower() for c in ucf]) == "ucf101"


# 8. ----------------------------------------------------------------------------------------


def test_predict_gives_up_on_a_stalled_video_and_goes_on(tmp_path, hanging_video, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")
    good = moving_video(tmp_path / "good.avi")
    args = ("predict", str(hanging_video), str(good), "--checkpoint", str(ckpt), "--json")
    assert cli(*args, "--timeout", "1", "--no-progress") == 1
    stalled, done = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "timed out" in stalled["error"] and done["top_k"]


def test_flow_extract_gives_up_on_a_stalled_video_and_goes_on(tmp_path, hanging_video, capsys):
    moving_video(tmp_path / "good.mp4")
    out = tmp_path.parent / f"{tmp_path.name}-flow"
    args = ("flow", "extract", "--videos", str(tmp_path), "--out", str(out))
    assert cli(*args, "--algorithm", "farneback", "--timeout", "1") == 1
    assert "1 extracted" in capsys.readouterr().out
    assert "timed out" in json.loads((out / "failures.json").read_text())["hang.mp4"]


# 9. ----------------------------------------------------------------------------------------


def test_a_yaml_bomb_is_refused_and_errors_do_not_echo_it(tmp_path):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 7):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\nname: g\narch: [c3d]\ndatasets: {}\n")
    with pytest.raises(SweepError, match="YAML bomb") as refused:
        load_sweep(str(bomb))
    assert len(str(refused.value)) < 500
    long_value = tmp_path / "long.yaml"
    long_value.write_text("name: x\narch: " + json.dumps(["x" * 100] * 100) + "\ndatasets: {}\n")
    with pytest.raises(SweepError) as echoed:
        load_sweep(str(long_value))
    assert "more chars" in str(echoed.value) and len(str(echoed.value)) < 1000


# 10. ---------------------------------------------------------------------------------------


def test_symlink_loops_in_the_video_tree_are_walked_once(tmp_path):
    root = tmp_path / "videos"
    moving_video(root / "A" / "v_A_g01_c01.avi")
    moving_video(root / "B" / "v_B_g01_c01.avi")
    (root / "A" / "loop").symlink_to(root)
    (root / "B" / "back").symlink_to(root / "A")
    (root / "B" / "dangling.avi").symlink_to(root / "nothing.avi")
    assert sorted(p.name for p in walk_files(root)) == ["v_A_g01_c01.avi", "v_B_g01_c01.avi"]
    records = [
        VideoRecord("x/v_A_g01_c01", 0, "v_A_g01_c01"),
        VideoRecord("dangling", 0, "dangling"),
    ]
    found = locate_videos(records, root)
    assert found[0] == root / "A" / "v_A_g01_c01.avi" and found[1] is None


# 11 and 15 (dangling link, non-UTF-8 name). ------------------------------------------------


def ucf_tree(root: Path, names: dict[str, list[str]]) -> tuple[Path, Path]:
    """UCF-101 annotations (every video a test video) and the videos, under `root`."""
    lists, videos = root / "lists", root / "videos"
    lists.mkdir(parents=True)
    classes = sorted(names)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    (lists / "trainlist01.txt").write_text("")
    lines = [f"{c}/{n}" for c in classes for n in names[c]]
    (lists / "testlist01.txt").write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    for line in lines:
        if "dangling" in line:
            (videos / line).parent.mkdir(parents=True, exist_ok=True)
            (videos / line).symlink_to(videos / "gone.avi")
        else:
            moving_video(videos / line, frames=8)
    return lists, videos


def test_a_timed_out_probe_is_never_cached_as_a_verdict(tmp_path):
    lists, videos = ucf_tree(tmp_path, {"A": ["v_A_g01_c01.avi", "v_A_g02_c01.avi"]})
    hurried = check_dataset("ucf101", lists, videos, timeout=1e-9, progress=False)
    assert hurried["splits"]["test"]["unreadable"] == 2
    assert all("timed out" in reason for reason in hurried["problems"].values())
    calm = check_dataset("ucf101", lists, videos, timeout=60, progress=False)
    assert calm["splits"]["test"]["found"] == 2 and calm["probed"] == 2


def test_odd_names_and_links_to_nothing_are_counted_not_fatal(tmp_path):
    latin1 = os.fsdecode(b"v_A_caf\xe9_g01_c01.avi")
    lists, videos = ucf_tree(tmp_path, {"A": [latin1, "dangling_g02_c01.avi"]})
    report = check_dataset("ucf101", lists, videos, progress=False)
    assert report["splits"]["test"] == {"expected": 2, "found": 1, "missing": 1, "unreadable": 0}


# 12. ---------------------------------------------------------------------------------------


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def test_flow_workers_end_when_their_parent_is_killed(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "flow"
    for i in range(4):  # TV-L1 takes seconds per video at this size: workers are mid-video
        moving_video(videos / f"v{i}.mp4", frames=40, height=120, width=160)
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidbench",
            "flow",
            "extract",
            "--videos",
            str(videos),
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not list(walk_files(out, hidden=True)) and parent.poll() is None:
            time.sleep(0.05)  # until a worker is writing flow
        workers = children_of(parent.pid)
        assert parent.poll() is None and workers
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    finished = sorted(walk_files(out))  # flow files complete when the parent died
    deadline = time.monotonic() + 120  # each notices within a second; 120 s spares a busy host
    while workers and time.monotonic() < deadline:
        workers = {pid for pid in workers if alive(pid)}
        time.sleep(0.1)
    assert not workers, f"flow workers {sorted(workers)} outlived their parent"
    assert sorted(walk_files(out)) == finished  # none went on to finish its video


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# 13. ---------------------------------------------------------------------------------------


def test_bad_checkpoints_get_an_error_naming_the_file_and_the_fault(tmp_path):
    good = tiny_checkpoint(tmp_path / "good.ckpt")
    data = good.read_bytes()
    cases = {
        "empty.ckpt": (b"", "empty file"),
        "truncated.ckpt": (data[:20_000], "truncated"),
        "random.ckpt": (np.random.default_rng(0).bytes(20_000), "not a PyTorch checkpoint"),
    }
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=reason) as error:
            load_classifier(tmp_path / name)
        assert str(tmp_path / name) in str(error.value)
    torch.save({"state_dict": {}}, tmp_path / "bare.ckpt")
    with pytest.raises(ValueError, match="not a vidbench checkpoint"):
        load_classifier(tmp_path / "bare.ckpt")
    wrong = torch.load(good, weights_only=True)
    wrong["hyper_parameters"]["arch"] = "r3d"
    torch.save(wrong, tmp_path / "wrong.ckpt")
    with pytest.raises(ValueError, match="do not fit a r3d model"):
        load_classifier(tmp_path / "wrong.ckpt")


def test_bad_values_are_refused_at_the_edge_with_the_allowed_range(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")
    video = moving_video(tmp_path / "v.avi")
    videos, out = tmp_path / "videos", str(tmp_path / "o")
    videos.mkdir()
    refused = {
        ("predict", str(video), "--checkpoint", str(ckpt), "--device", "garbage"): "not a device",
        ("predict", str(video), "--checkpoint", str(ckpt), "--device", "cuda"): "no CUDA GPU",
        ("predict", str(video), "--checkpoint", str(tmp_path / "v.avi")): "not a PyTorch",
        ("flow", "extract", "--videos", str(videos), "--out", out, "--fps", "0"): "(0, 240]",
        ("flow", "extract", "--videos", str(videos), "--out", out, "--fps", "1e5"): "(0, 240]",
        ("flow", "extract", "--videos", str(videos), "--out", out, "--bound", "0"): "(0, 255]",
        ("flow", "extract", "--videos", str(videos), "--out", out, "--bound", "-1"): "(0, 255]",
        ("flow", "extract", "--videos", str(videos), "--out", out, "--workers", "0"): ">= 1",
        ("flow", "extract", "--videos", str(videos), "--out", out, "--workers", "-4"): ">= 1",
        ("flow", "extract", "--videos", "/nonexistent", "--out", out): "no such folder",
        ("data", "check", "--dataset", "ucf101", "--annotations", str(tmp_path),
         "--videos", "/nonexistent"): "no such folder",
        ("data", "check", "--dataset", "ucf101", "--annotations", str(tmp_path),
         "--videos", str(tmp_path)): "classInd.txt",
        ("throughput", "--arch", "c3d", "--runs", "0"): ">= 1",
        ("throughput", "--arch", "c3d", "--batch", "0"): ">= 1",
        ("models", "--num-classes", "-5"): ">= 1",
        ("data", "synth", "--out", str(tmp_path / "s"), "--size", "100000"): "16..1080",
        ("run", "--set", "train.lr=[1"): "not valid YAML",
    }  # fmt: skip
    for args, reason in refused.items():
        capsys.readouterr()
        assert cli(*args) == 2, args
        error = capsys.readouterr().err
        assert reason in error and "Traceback" not in error, (args, error)
    assert not Path(out).exists()


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("train.max_steps=-5", "greater than or equal to -1"),
        ("train.batch_size=0", "greater than 0"),
        ("train.lr=.nan", "finite number"),
        ("eval.clips=0", "greater than 0"),
        ("datasets.synthetic.folds=[7]", "has folds [1, 2, 3]"),
    ],
)
def test_sweep_values_out_of_range_are_refused_before_anything_runs(override, reason):
    with pytest.raises(SweepError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        load_sweep("smoke", [override])


def test_an_annotation_folder_without_its_train_list_is_refused(tmp_path, capsys):
    (tmp_path / "classInd.txt").write_text("1 A\n")
    (tmp_path / "testlist01.txt").write_text("A/v_A_g01_c01.avi\n")
    assert (
        cli(
            "data",
            "check",
            "--dataset",
            "ucf101",
            "--annotations",
            str(tmp_path),
            "--videos",
            str(tmp_path),
        )
        == 2
    )
    assert "no trainlist01.txt" in capsys.readouterr().err


def test_predict_annotates_a_video_of_odd_size(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.ckpt")
    video = moving_video(tmp_path / "odd.mp4", height=47, width=63)
    out = tmp_path / "odd.annotated.mp4"
    assert (
        cli("predict", str(video), "--checkpoint", str(ckpt), "--out", str(out), "--no-progress")
        == 0
    )
    annotated = open_video(out)
    assert annotated.num_frames == 20
    assert read_frames(annotated, np.array([0])).shape[1:3] == (48, 64)


# 15. ---------------------------------------------------------------------------------------


def test_narrow_videos_and_matroska_with_pyav_decode(tmp_path):
    narrow = moving_video(tmp_path / "narrow.mp4", height=48, width=16)
    assert read_frames(open_video(narrow, "decord"), np.arange(20)).shape == (20, 48, 16, 3)
    for suffix in (".mkv", ".webm"):
        path = tmp_path / f"clip{suffix}"
        frames = render_motion(
            random_texture(np.random.default_rng(1), 99, 99), "MoveUp", 12, 48, 64, 2.0, (0.0, 0.0)
        )
        codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
        write_video(path, frames, codec=codec)
        video = open_video(path, "pyav")
        assert video.num_frames == 12
        assert read_frames(video, np.arange(12)).shape == (12, 48, 64, 3)


# 17. ---------------------------------------------------------------------------------------


def test_unreachable_wandb_is_waited_for_once_then_the_sweep_goes_offline(
    synth_with_flow, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    sweep = write_sweep(
        tmp_path / "s.yaml",
        synth_with_flow,
        arch=["c3d"],
        seed=[0, 1],
        wandb={"mode": "online", "timeout_s": 5},
    )
    assert cli("run", str(sweep), "--out", str(tmp_path / "out"), "--no-progress") == 0
    first, second = read_records(tmp_path / "out")
    assert "did not start" in first.wandb["note"] and "offline instead" in first.wandb["note"]
    assert second.wandb == {"mode": "offline", "note": None}
    assert sum("remaining cells of the sweep log offline" in m for m in caplog.messages) == 1
    runs = sorted((tmp_path / "out" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 3  # both cells and the leaderboard table, offline


def test_records_written_before_clipspec_still_read(tmp_path, capsys):
    """A runs file that vidbench wrote before ClipSpec (test views in `eval`, `flip` in
    `input`) reads as typed records; the leaderboard and regress take it."""
    old = Path(__file__).parent / "data" / "runs-before-clipspec.jsonl"
    (record,) = read_records(old)
    assert record.status == "ok" and record.cell == "c3d-rgb-synthetic1-scratch-s0"
    spec = record.config.input
    assert (spec.clip_len, spec.crop_size, spec.short_side, spec.test_clips) == (4, 32, 36, 2)
    assert spec.modalities == ("rgb",) and record.config.flip is False
    assert record.config.throughput_batches == 1
    shutil.copy(old, tmp_path / "runs.jsonl")
    assert cli("leaderboard", str(tmp_path), str(tmp_path)) == 0
    assert "2 clip(s) x 1 crop(s)" in (tmp_path / "leaderboard.md").read_text()
    assert cli("regress", "--update", "--baseline", str(tmp_path / "b.json"), str(tmp_path)) == 0


def test_a_paper_number_is_cited_only_under_the_same_conditions(tmp_path, capsys):
    """Dataset, split, modality, protocol and start must all match (paper, Tables 2-5);
    the run's model, input, budget and coverage are tests/test_citation.py's."""
    from vidbench.bench.leaderboard import markdown
    from vidbench.bench.paper import paper_result

    def paper(arch, official, split, modality, protocol, start) -> float | None:
        found = paper_result(arch, official, split, modality, protocol, start)
        return found and found.top1

    assert paper("i3d", "kinetics400", 1, "rgb", "scratch", "scratch") == 68.4  # Table 3
    assert paper("i3d", "kinetics400", 1, "rgb", "scratch", "imagenet") == 71.1  # Table 2/3
    assert paper("i3d", "kinetics400", 1, "rgb", "scratch", "kinetics") is None  # no protocol
    assert paper("i3d", "ucf101", 1, "rgb", "finetune", "imagenet+kinetics") is None  # T4: both
    assert paper("i3d", "ucf101", 1, "rgb+flow", "finetune", "imagenet+kinetics") == 98.0
    assert paper("i3d", "ucf101", 1, "rgb+flow", "finetune", "kinetics") == 97.6
    assert paper("c3d", "hmdb51", 1, "rgb", "fixed", "kinetics") == 47.0
    assert paper("c3d", "hmdb51", 2, "rgb", "scratch", "scratch") is None  # split 2: none
    kinetics = paper_record("table2_kinetics", "i3d-rgb-kinetics4001-scratch-s0", start="scratch")
    board = markdown([kinetics])
    assert "### From scratch\n" in board
    (row,) = markdown_rows(board)
    assert (row["Top-1 %"], row["Top-5 %"], row["Paper top-1 %"]) == ("60.0", "100.0", "68.4")
    assert (row["Δ paper"], row["Table"]) == ("-8.4", "3")
    # Table 5: the mean of three fine-tuned splits against the paper's mean
    splits = [
        paper_record("table5", f"i3d-rgb+flow-ucf101{s}-finetune-s0", start="kinetics", top1=v)
        for s, v in ((1, 97.0), (2, 98.0), (3, 99.0))
    ]
    rows = markdown_rows(markdown(splits))
    assert [r["Split"] for r in rows] == ["1", "2", "3", "mean of 3"]
    assert (rows[-1]["Top-1 %"], rows[-1]["Paper top-1 %"], rows[-1]["Table"]) == (
        "98.0",
        "97.8",
        "5",
    )


def test_a_run_stopped_and_resumed_mid_decode_does_not_time_out(monkeypatch):
    """Ctrl-Z then `fg` (or SIGSTOP/SIGCONT, a sleeping laptop): the clock jumps while the
    process stood still; that time does not count against a decode's limit."""
    from vidbench.datasets import files

    real, readings = files._clock, []

    def clock() -> float:  # 1000 s pass during the first slice's wait
        readings.append(None)
        return real() + (1000.0 if len(readings) >= 2 else 0.0)

    monkeypatch.setattr(files, "_clock", clock)
    assert files.run_bounded(lambda: time.sleep(1.5) or "decoded", 10.0) == "decoded"
    with pytest.raises(TimeoutError, match=r"gave up after 0\.5 s"):  # still bounded
        files.run_bounded(lambda: time.sleep(3), 0.5)
