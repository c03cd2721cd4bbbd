"""Launchers: cells in local processes and as jobs of a real single-node SLURM cluster give
the inline run's records and weights; the order of dependent cells; re-attaching to live
jobs; a job that ends without a record; flow extraction in shards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import write_sweep
from slurm_cluster import missing, single_node_cluster

from vidbench.bench import jobs, launch, slurm
from vidbench.bench.cells import DataSource, expand_cells, resolve_cell
from vidbench.bench.cli import main
from vidbench.bench.config import load_sweep
from vidbench.bench.results import latest_by_cell, read_records
from vidbench.bench.runner import prepare_data
from vidbench.datasets.files import walk_files
from vidbench.datasets.flow import FlowConfig
from vidbench.datasets.flow_extract import extract_all, list_videos, select_shard

FUSED = "i3d-rgb+flow-synth1-scratch-s0"
STREAMS = ("i3d-rgb-synth1-scratch-s0", "i3d-flow-synth1-scratch-s0")


def run_cli(*args: str) -> int:
    return main(["run", *args, "--no-progress"])


@pytest.fixture(scope="module")
def inline_run(synth_with_flow, tmp_path_factory) -> tuple[Path, Path]:
    """The micro sweep (C3D, I3D rgb, flow and their fusion) run inline on one thread."""
    root = tmp_path_factory.mktemp("inline")
    sweep = write_sweep(root / "micro.yaml", synth_with_flow)
    assert run_cli(str(sweep), "--out", str(root / "out"), "--threads", "1") == 0
    return sweep, root / "out"


def final_weights(out: Path, cell: str) -> dict[str, torch.Tensor]:
    return torch.load(out / "cells" / cell / "final.ckpt", weights_only=False)["state_dict"]


def assert_same_results(out: Path, reference: Path, kind: str) -> None:
    """Every cell of `out` has the reference's config, metrics and final weights, and ran
    where `kind` says on one thread; the fused cell started after its streams ended."""
    ours, theirs = latest_by_cell(read_records(out)), latest_by_cell(read_records(reference))
    assert sorted(ours) == sorted(theirs) and len(ours) == 4
    for cell, record in ours.items():
        assert record.status == "ok", record.error
        assert record.config_hash == theirs[cell].config_hash
        assert record.metrics == theirs[cell].metrics, cell
        assert record.launcher["kind"] == kind and record.launcher["threads"] == 1
        mine, reference_weights = final_weights(out, cell), final_weights(reference, cell)
        assert all(torch.equal(mine[k], reference_weights[k]) for k in reference_weights), cell
    assert all(ours[FUSED].started >= ours[s].finished for s in STREAMS)


def test_local_jobs_give_the_inline_records_and_weights(inline_run, tmp_path, caplog):
    sweep, reference = inline_run
    out = tmp_path / "out"
    caplog.set_level("INFO", logger="vidbench")
    assert run_cli(str(sweep), "--out", str(out), "--launcher", "local", "--jobs", "2") == 0
    assert_same_results(out, reference, "local")
    jobs = {r.launcher["job_id"] for r in read_records(out)}
    assert len(jobs) == 4  # a process per cell
    assert "2 at a time, 1 torch thread(s) each; DataLoader workers per job: [0]" in caplog.text
    ended = re.findall(r": job \S+ finished after (?:\d+ min \d\d|\d+) s, top-1", caplog.text)
    assert len(ended) == 4  # each cell's line says how long it took
    # a second run finds every cell finished and starts no job
    assert run_cli(str(sweep), "--out", str(out), "--launcher", "local", "--jobs", "2") == 0
    assert len(read_records(out)) == 4


def test_dependencies_wait_for_fused_streams_and_pretrained_cells(synth_with_flow, tmp_path):
    out = tmp_path / "out"
    sweep = load_sweep(
        str(write_sweep(tmp_path / "micro.yaml", synth_with_flow)),
        [
            "protocol=[scratch,finetune]",
            f"train.init_checkpoint={out}/cells/{{arch}}-{{modality}}-synth1-scratch-s0/final.ckpt",
        ],
    )
    data = prepare_data("synth", sweep, None, False)
    cells = [resolve_cell(sweep, key, data) for key in expand_cells(sweep)]
    needs = jobs.dependencies(cells, out)
    assert sorted(needs[FUSED]) == sorted(STREAMS)
    assert needs["c3d-rgb-synth1-finetune-s0"] == ["c3d-rgb-synth1-scratch-s0"]
    assert needs["i3d-flow-synth1-finetune-s0"] == ["i3d-flow-synth1-scratch-s0"]
    assert needs["c3d-rgb-synth1-scratch-s0"] == []
    # a cell that needs one outside the cells to run (finished earlier) waits for nothing
    rest = [c for c in cells if c.id != "c3d-rgb-synth1-scratch-s0"]
    assert jobs.dependencies(rest, out)["c3d-rgb-synth1-finetune-s0"] == []


def test_a_job_whose_code_changed_under_its_launcher_says_so(synth_with_flow, tmp_path):
    """`git pull` (or an upgrade) while a local or SLURM sweep runs: the jobs it starts
    after run other code than the launcher that pickled their cells; each records a clear
    error instead of failing deep inside, and the sweep's next run resumes them."""
    out = tmp_path / "out"
    sweep = load_sweep(str(write_sweep(tmp_path / "micro.yaml", synth_with_flow)), ["arch=[c3d]"])
    cell = resolve_cell(sweep, expand_cells(sweep)[0], prepare_data("synth", sweep, None, False))
    here = launch.code_version()
    assert jobs.cell_job(sweep, cell, out, "vidbench run micro", "0.0.1+0000000", 1) == "failed"
    (record,) = read_records(out)
    assert record.status == "failed" and record.cell == cell.id
    assert record.error == (
        f"RuntimeError: vidbench changed under this sweep: it was launched from 0.0.1+0000000, "
        f"this job runs {here}; run the same `vidbench run` again to resume its unfinished "
        "cells with the code installed now"
    )
    assert jobs.commit("0.1.0+abc1234-dirty") == jobs.commit("0.1.0+abc1234")  # results
    assert jobs.commit("0.1.0+abc1234") != jobs.commit("0.1.0+def5678")


def test_local_refuses_multi_device_cells_and_options_that_need_another_launcher(
    synth_with_flow, tmp_path, capsys
):
    sweep = str(write_sweep(tmp_path / "micro.yaml", synth_with_flow))
    out = str(tmp_path / "out")
    assert run_cli(sweep, "--out", out, "--jobs", "2") == 2
    assert "--jobs goes with --launcher local" in capsys.readouterr().err
    assert run_cli(sweep, "--out", out, "--launcher", "local", "--no-wait") == 2
    assert "--no-wait goes with --launcher slurm" in capsys.readouterr().err
    code = run_cli(
        sweep, "--out", out, "--launcher", "local", "--set", "train.devices=2", "arch=[c3d]"
    )
    assert code == 2 and "use --launcher inline" in capsys.readouterr().err
    assert launch.cpu_threads(2, None) == max(1, len(os.sched_getaffinity(0)) // 2)
    assert launch.cpu_threads(2, 3) == 3


def flow_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in walk_files(root)}


def test_flow_shards_together_equal_one_run_file_for_file(synth_dataset, tmp_path, capsys):
    videos = synth_dataset / "videos"
    relpaths = list_videos(videos)[0]
    shards = [select_shard(relpaths, (k, 3)) for k in (1, 2, 3)]
    assert sorted(v for shard in shards for v in shard) == sorted(
        relpaths
    )  # each video in exactly one shard
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    extract_all(videos, tmp_path / "one", FlowConfig("farneback"), relpaths, progress=False)
    for k in (1, 2, 3):
        args = [
            "flow",
            "extract",
            "--videos",
            str(videos),
            "--out",
            str(tmp_path / "sharded"),
            "--algorithm",
            "farneback",
            "--shard",
            f"{k}/3",
            "--no-progress",
        ]
        assert main(args) == 0
        assert (
            f"shard {k}/3: {len(shards[k - 1])} of {len(relpaths)} videos"
            in capsys.readouterr().out
        )
    assert flow_files(tmp_path / "sharded") == flow_files(tmp_path / "one")
    assert (
        main(
            [
                "flow",
                "extract",
                "--videos",
                str(videos),
                "--out",
                str(tmp_path / "x"),
                "--shard",
                "4/3",
            ]
        )
        == 2
    )
    assert "1 <= K <= N" in capsys.readouterr().err


def test_a_shard_leaves_the_partial_files_of_other_shards_alone(synth_dataset, tmp_path):
    videos = synth_dataset / "videos"
    relpaths = list_videos(videos)[0]
    mine, theirs = select_shard(relpaths, (1, 2)), select_shard(relpaths, (2, 2))
    out = tmp_path / "flow"
    partial = {}
    for name, rel in (("mine", mine[0]), ("theirs", theirs[0])):
        target = out / Path(rel).with_suffix(".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial[name] = target.with_name(f".{target.stem}.tmp123.mp4")
        partial[name].write_bytes(b"half")
    (out / "failures.json").write_text(json.dumps({theirs[1]: "theirs", mine[1]: "old"}))
    extract_all(videos, out, FlowConfig("farneback"), mine, progress=False)
    assert not partial["mine"].exists() and partial["theirs"].exists()
    assert json.loads((out / "failures.json").read_text()) == {theirs[1]: "theirs"}


def test_the_documented_cluster_sweep_asks_slurm_for_what_it_says(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "docs" / "cluster.md").read_text()
    found = re.search(r"```yaml\n(# table2_ucf101_slurm.yaml\n.*?)```", readme, re.S)
    assert found, "docs/cluster.md's cluster sweep file is gone"
    path = tmp_path / "table2_ucf101_slurm.yaml"
    path.write_text(found.group(1))
    sweep = load_sweep(str(path))
    data = DataSource(
        format="ucf101",
        videos="/v",
        annotations="/a",
        flow="/f",
        fold=None,
        copy_files=0,
        copy_bytes=0,
    )
    cells = [resolve_cell(sweep, key, data) for key in expand_cells(sweep)]
    assert f"submits {len(cells)} jobs" in readme
    parameters = slurm.slurm_parameters(sweep.launcher, cells[0])
    assert parameters == {
        "job_name": f"vidbench-{cells[0].id}", "time": 1440, "nodes": 1, "ntasks_per_node": 4,
        "gpus_per_node": 4, "cpus_per_task": 10, "mem": "262144M", "partition": "gpu",
        "setup": ["module load cuda/12.4"],
        "additional_parameters": {"account": "my-lab", "qos": "normal"},
    }  # fmt: skip
    assert cells[0].train.batch_plan(4)["global"] == 24
    needs = jobs.dependencies(cells, tmp_path)
    for seed in (0, 1, 2):
        fused = f"i3d-rgb+flow-ucf1011-scratch-s{seed}"
        assert sorted(needs[fused]) == [
            f"i3d-flow-ucf1011-scratch-s{seed}",
            f"i3d-rgb-ucf1011-scratch-s{seed}",
        ]


# --- a real SLURM cluster ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict[str, str]:
    why = missing()
    if why:
        if os.environ.get("VIDBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(f"VIDBENCH_REQUIRE_SLURM=1 but no test cluster can start: {why}")
        pytest.skip(f"no SLURM test cluster: {why}")
    with single_node_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


SLURM_SETTINGS = ("launcher.cpus_per_task=1", "launcher.poll_s=0.5")


def test_slurm_jobs_give_the_inline_records_in_dependency_order(
    cluster, inline_run, tmp_path, monkeypatch
):
    monkeypatch.setenv("SLURM_CONF", cluster["SLURM_CONF"])
    sweep, reference = inline_run
    out = tmp_path / "out"
    assert (
        run_cli(str(sweep), "--out", str(out), "--launcher", "slurm", "--set", *SLURM_SETTINGS) == 0
    )
    assert_same_results(out, reference, "slurm")
    book = json.loads((out / "jobs" / slurm.SLURM_BOOK).read_text())
    script = (out / "jobs" / f"{book[FUSED]['job_id']}_submission.sh").read_text()
    (dependency,) = [line for line in script.splitlines() if "--dependency=" in line]
    waits_for = set(dependency.split("=afterany:")[1].split(":"))
    assert waits_for == {book[s]["job_id"] for s in STREAMS}
    records = latest_by_cell(read_records(out))
    assert {r.launcher["job_id"] for r in records.values()} == {e["job_id"] for e in book.values()}
    # W&B: one group for the sweep's runs from every job, each run's config naming its job
    # (the offline run files hold the protobuf strings verbatim)
    runs = [p.read_bytes() for p in (out / "wandb" / "wandb").glob("offline-run-*/*.wandb")]
    cell_runs = [run for run in runs if b'"kind":"slurm"' in run]
    assert len(cell_runs) == 4 and all(f"micro-{out}".encode() in run for run in cell_runs)
    for entry in book.values():
        assert sum(f'"job_id":"{entry["job_id"]}"'.encode() in run for run in cell_runs) == 1


def test_slurm_no_wait_then_rerun_reattaches_and_resubmits_what_ended(
    cluster, synth_with_flow, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SLURM_CONF", cluster["SLURM_CONF"])
    sweep = str(write_sweep(tmp_path / "micro.yaml", synth_with_flow))
    out = tmp_path / "out"
    hold = ["--set", *SLURM_SETTINGS, "launcher.sbatch={hold: true}"]  # submitted held
    assert run_cli(sweep, "--out", str(out), "--launcher", "slurm", "--no-wait", *hold) == 0
    assert "SLURM jobs: " in capsys.readouterr().out
    first = json.loads((out / "jobs" / slurm.SLURM_BOOK).read_text())
    live = slurm.live_slurm_jobs()
    assert all(live.get(e["job_id"]) == "PENDING" for e in first.values())
    flow_job = first[STREAMS[1]]["job_id"]
    subprocess.run(["scancel", flow_job], check=True)
    # the cancelled flow stream's job ends without a record: recorded as failed, naming its log
    cells = {c.id: c for c in launch_cells(sweep, out)}
    loaded = load_sweep(sweep, list(SLURM_SETTINGS))
    slurm.follow_slurm(
        loaded, out, [cells[STREAMS[1]]], {STREAMS[1]: flow_job}, first, out / "jobs", "test", False
    )
    lost = latest_by_cell(read_records(out))[STREAMS[1]]
    assert lost.status == "failed" and f"job {flow_job} ended without a record" in lost.error
    assert f"{flow_job}_0_log.err" in lost.error
    # run again: the held jobs are followed (released here), the flow stream submitted anew
    # and the fused cell, which waited on the cancelled job, cancelled and submitted again
    for cell in ("c3d-rgb-synth1-scratch-s0", STREAMS[0]):
        subprocess.run(["scontrol", "release", first[cell]["job_id"]], check=True)
    assert run_cli(sweep, "--out", str(out), "--launcher", "slurm", "--set", *SLURM_SETTINGS) == 0
    second = json.loads((out / "jobs" / slurm.SLURM_BOOK).read_text())
    for cell in ("c3d-rgb-synth1-scratch-s0", STREAMS[0]):
        assert second[cell]["job_id"] == first[cell]["job_id"]
    for cell in (STREAMS[1], FUSED):
        assert second[cell]["job_id"] != first[cell]["job_id"]
    records = latest_by_cell(read_records(out))
    assert all(r.status == "ok" for r in records.values())
    assert records[FUSED].launcher["job_id"] == second[FUSED]["job_id"]


def test_a_requeued_slurm_job_resumes_its_cell_from_its_last_checkpoint(
    cluster, synth_with_flow, tmp_path, monkeypatch
):
    """SLURM requeues a pre-empted job under its id: the cell goes on from its last.ckpt."""
    monkeypatch.setenv("SLURM_CONF", cluster["SLURM_CONF"])
    sweep = str(write_sweep(tmp_path / "micro.yaml", synth_with_flow, arch=["c3d"]))
    out, cell = tmp_path / "out", "c3d-rgb-synth1-scratch-s0"
    settings = ["--launcher", "slurm", "--set", *SLURM_SETTINGS, "train.max_steps=400"]
    assert run_cli(sweep, "--out", str(out), "--no-wait", *settings) == 0
    job = json.loads((out / "jobs" / slurm.SLURM_BOOK).read_text())[cell]["job_id"]
    last = out / "cells" / cell / "checkpoints" / "last.ckpt"
    while not last.is_file():  # its first checkpoint comes at step 40 of 400
        assert job in slurm.live_slurm_jobs(), "the job ended before its first checkpoint"
        time.sleep(0.1)
    subprocess.run(["scontrol", "requeue", job], check=True)
    # SLURM holds a requeued job back for about two minutes before it may start again;
    # the cluster's own wait is not what is tested, so it is told it may start now
    while slurm.live_slurm_jobs().get(job) not in ("PENDING", "RUNNING"):
        time.sleep(0.2)
    if slurm.live_slurm_jobs().get(job) == "PENDING":
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    assert run_cli(sweep, "--out", str(out), *settings) == 0  # re-attaches and follows it
    records = read_records(out)
    record = latest_by_cell(records)[cell]
    assert record.status == "ok" and record.launcher["job_id"] == job
    assert record.resume["from_checkpoint"] == str(last) and record.resume["step"] >= 40
    # the cell finished once; the stopped first run may have left a failed record before it
    assert [r.status for r in records].count("ok") == 1 and records[-1] is record


def launch_cells(sweep: str, out: Path) -> list:
    from vidbench.bench.runner import todo_cells

    return todo_cells(load_sweep(sweep), out, False, "test")


def test_slurm_flow_array_equals_one_run(cluster, synth_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_CONF", cluster["SLURM_CONF"])
    videos = synth_dataset / "videos"
    extract_all(
        videos, tmp_path / "one", FlowConfig("farneback"), list_videos(videos)[0], progress=False
    )
    args = [
        "flow",
        "extract",
        "--videos",
        str(videos),
        "--out",
        str(tmp_path / "array"),
        "--algorithm",
        "farneback",
        "--launcher",
        "slurm",
        "--jobs",
        "3",
        "--slurm",
        "cpus_per_task=1",
        "poll_s=0.5",
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 shard(s)" in out and f"{len(list_videos(videos)[0])} extracted" in out
    assert flow_files(tmp_path / "array") == flow_files(tmp_path / "one")
