"""The benchmark runner end to end on synthetic data: sweeps, records, resume, W&B offline,
leaderboard, regression, split refusal and DDP."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import finished_record, markdown_rows, tiny_datamodule, write_sweep

from vidbench.bench.cells import expand_cells
from vidbench.bench.cli import main
from vidbench.bench.config import BUILTIN_SWEEPS, SweepError, load_sweep
from vidbench.bench.predictions import read_predictions
from vidbench.bench.results import read_records, read_verdicts

RECORD_KEYS = {
    "sweep", "cell", "status", "config", "config_hash", "code_version", "data", "metrics",
    "costs", "timings", "resume", "checkpoint", "wandb", "started", "finished", "command",
}  # fmt: skip
COST_KEYS = {
    "params", "macs_per_clip", "gmacs_per_clip", "train_clips_per_s", "infer_clips_per_s",
    "peak_memory_mb", "device", "precision", "batch_size", "torch",  # cudnn: on CUDA only
    "infer_clips_per_s_iqr", "infer_timed_runs",  # a median over timed blocks, its spread
}  # fmt: skip


def run_cli(*args: str) -> int:
    return main(["run", *args, "--no-progress"])


def test_sweep_records_leaderboard_wandb_and_regress(synth_with_flow, tmp_path, capsys):
    sweep = write_sweep(
        tmp_path / "micro.yaml",
        synth_with_flow,
        eval={
            "views": "clips",
            "clips": 2,
            "throughput_batches": 1,
            "keep_probs": True,
        },
    )
    out = tmp_path / "out"
    assert run_cli(str(sweep), "--out", str(out)) == 0
    records = {r.cell: r for r in read_records(out)}
    assert sorted(records) == [
        "c3d-rgb-synth1-scratch-s0",
        "i3d-flow-synth1-scratch-s0",
        "i3d-rgb+flow-synth1-scratch-s0",
        "i3d-rgb-synth1-scratch-s0",
    ]
    for record in records.values():
        assert record.status == "ok", record.error
        assert {name for name, value in record if value is not None} >= RECORD_KEYS
        assert set(record.costs) >= COST_KEYS
        assert set(record.metrics.clip) >= {"top1", "top5", "mean_class"}
        assert set(record.metrics.video) >= {"top1", "top5", "mean_class", "videos"}
        test = record.data.test
        assert test["expected"] == 32 and test["missing"] == 0
        assert record.data.evaluated_videos == 32
        assert record.costs["infer_clips_per_s"] > 0 and record.costs["macs_per_clip"] > 0
        assert record.start == "scratch"  # no ImageNet weights, no checkpoint
        # its per-video predictions are kept beside it, and give its video top-1
        kept = read_predictions(out, record.predictions)
        assert sorted(kept.video_ids) == sorted(set(kept.video_ids)) and len(kept.video_ids) == 32
        assert 100 * kept.correct.mean() == pytest.approx(record.top1)
        probs = np.load(out / record.predictions["probs_file"])  # eval.keep_probs: all classes
        assert probs.shape == (32, 8) and probs.dtype == np.float16
        assert np.allclose(probs.astype(float).sum(axis=1), 1, atol=0.01)
        assert np.allclose(
            np.sort(probs.astype(float), axis=1)[:, ::-1][:, :5], kept.probs, atol=1e-3
        )
        # keeping them changes what is written, not the result: the same config hash
        assert record.config.model_copy(update={"keep_probs": False}).hash() == record.config_hash
    rgb, flow, fused = (records[f"i3d-{m}-synth1-scratch-s0"] for m in ("rgb", "flow", "rgb+flow"))
    assert fused.costs["params"] == rgb.costs["params"] + flow.costs["params"]
    assert fused.costs["train_clips_per_s"] is None  # nothing trained: two streams fused
    assert set(fused.costs["input_shape"]) == {"rgb", "flow"}

    board = (out / "leaderboard.md").read_text()
    rows = {(r["Architecture"], r["Modality"]): r for r in markdown_rows(board) if "Seeds" in r}
    assert set(rows) == {
        ("3D-ConvNet (width 0.125, 8×32)", "RGB"),
        *(("Two-Stream I3D (width 0.125, 8×32)", m) for m in ("RGB", "Flow", "RGB+Flow")),
    }
    fused_row = rows["Two-Stream I3D (width 0.125, 8×32)", "RGB+Flow"]
    assert fused_row["Split"] == "1" and fused_row["Train clips/s"] == ""  # fused, not trained
    assert float(fused_row["Params (M)"]) == round(
        (rgb.costs["params"] + flow.costs["params"]) / 1e6, 2
    )
    assert all(r["Chance %"] == "12.5" for r in rows.values())  # 8 classes
    # UCF-101's format and split 1 from scratch, but 8 synthetic classes: not the paper's data
    assert all(r["Paper top-1 %"] == "" for r in rows.values())
    assert f"run by: {records['c3d-rgb-synth1-scratch-s0'].command} (4 cells)" in board
    page = (out / "leaderboard.html").read_text()
    # the per-seed plot and accuracy against cost (C3D and I3D differ in cost)
    assert page.count("data:image/svg+xml;base64,") == 2 and "decoder" in page
    assert page.count("<details>") == 4 and "Confusion matrix" in page  # 8 classes: shown

    runs = sorted((out / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 5  # four cells and the leaderboard table
    logged = b"".join(p.read_bytes() for run in runs for p in run.glob("*.wandb"))
    for key in (b"video/top1", b"cost/train_clips_per_s", b"train/loss", b"leaderboard"):
        assert key in logged

    baseline = tmp_path / "baseline.json"
    assert main(["regress", "--baseline", str(baseline), str(out), "--update"]) == 0
    assert main(["regress", "--baseline", str(baseline), str(out)]) == 0
    planted = json.loads(baseline.read_text())
    planted["cells"]["c3d-rgb-synth1-scratch-s*"] = [
        v + 30 for v in planted["cells"]["c3d-rgb-synth1-scratch-s*"]
    ]
    baseline.write_text(json.dumps(planted))
    capsys.readouterr()
    assert main(["regress", "--baseline", str(baseline), str(out)]) == 1
    assert "c3d-rgb-synth1-scratch-s*" in capsys.readouterr().out.split("regressed:")[1]
    # the verdict is kept for the results folder's page
    assert read_verdicts(out)["regress"]["verdict"] == "REGRESSED"
    assert main(["leaderboard", str(out)]) == 0
    assert (
        "Regression check against the baseline: REGRESSED" in (out / "leaderboard.md").read_text()
    )

    # a re-run skips every finished cell and appends nothing
    assert run_cli(str(sweep), "--out", str(out)) == 0
    assert len(read_records(out)) == 4


def test_regress_tolerance_is_two_std_of_the_baseline_seeds(tmp_path):
    from vidbench.bench.regress import compare

    record = finished_record("c3d-rgb-d1-scratch-s0", 80.0)
    noisy = {"cells": {"c3d-rgb-d1-scratch-s*": [80.0, 90.0, 85.0]}}  # std 5: tolerance 10
    (row,) = compare([record], noisy)
    assert row["tolerance"] == pytest.approx(10.0) and not row["regressed"]
    steady = {"cells": {"c3d-rgb-d1-scratch-s*": [83.0, 83.0]}}  # tolerance: the 2-point floor
    (row,) = compare([record], steady)
    assert row["tolerance"] == 2.0 and row["regressed"]
    (row,) = compare([], steady)
    assert row["ours"] is None and row["regressed"]  # a cell that did not finish regresses


@pytest.mark.parametrize(
    "change, named",
    [
        ({"train": {"max_stpes": 5}}, "train.max_stpes"),
        ({"arch": ["c3d", "i4d"]}, "i4d"),
        ({"modality": ["flow"]}, "modality ['flow'] is not one c3d can take"),
        ({"protocol": ["frozen"]}, "protocol.0"),
        ({"per_arch": {"c3d": {"hidden": 3}}}, "per_arch.c3d: unknown key(s) ['hidden']"),
        ({"protocol": ["fixed"]}, "needs train.init_checkpoint"),
    ],
)
def test_bad_config_fails_before_running_naming_the_key(tmp_path, capsys, change, named):
    data = {"videos": tmp_path, "annotations": tmp_path, "flow": tmp_path}
    sweep = write_sweep(tmp_path / "bad.yaml", data, **change)
    assert run_cli(str(sweep), "--out", str(tmp_path / "out")) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_overrides_use_the_sweep_keys():
    sweep = load_sweep("smoke", ["arch=[i3d,c3d]", "train.max_steps=200"])
    assert sweep.arch == ["i3d", "c3d"] and sweep.train.max_steps == 200
    with pytest.raises(SweepError, match="not KEY=VALUE"):
        load_sweep("smoke", ["train.max_steps"])
    with pytest.raises(SweepError, match=r"train\.max_step"):
        load_sweep("smoke", ["train.max_step=3"])


def test_failing_cell_is_recorded_and_the_sweep_goes_on(synth_with_flow, tmp_path):
    empty = tmp_path / "no-videos"
    empty.mkdir()
    datasets = {
        "synth": {"format": "ucf101", **{k: str(v) for k, v in synth_with_flow.items()}},
        "gone": {"format": "ucf101", "videos": str(empty),
                 "annotations": str(synth_with_flow["annotations"])},
    }  # fmt: skip
    sweep = write_sweep(tmp_path / "s.yaml", synth_with_flow, arch=["c3d"], datasets=datasets)
    assert run_cli(str(sweep), "--out", str(tmp_path / "out")) == 1
    records = {r.cell: r for r in read_records(tmp_path / "out")}
    assert records["c3d-rgb-synth1-scratch-s0"].status == "ok"
    failed = records["c3d-rgb-gone1-scratch-s0"]  # refused by the preflight, untrained
    assert (
        failed.status == "failed"
        and "datasets.gone: 0 of the 32 listed test videos" in failed.error
    )


def test_a_cell_whose_test_videos_are_absent_fails_before_training(synth_dataset, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(synth_dataset / "videos", videos)
    tests = (synth_dataset / "annotations" / "testlist01.txt").read_text().split()
    for rel in tests:  # a copy with the training videos only
        (videos / rel).unlink()
    # min_coverage 0: past the preflight, so the cell's own check before training answers
    data = {"videos": videos, "annotations": synth_dataset / "annotations", "min_coverage": 0}
    sweep = write_sweep(tmp_path / "s.yaml", data, arch=["c3d"])
    assert run_cli(str(sweep), "--out", str(tmp_path / "out")) == 1
    (record,) = read_records(tmp_path / "out")
    assert record.status == "failed" and f"none of the {len(tests)} test videos" in record.error
    assert not (tmp_path / "out" / "cells" / record.cell / "csv").exists()  # never trained


def test_checkpoint_is_not_tested_on_another_split(synth_with_flow, tmp_path):
    annotations = tmp_path / "annotations"
    shutil.copytree(synth_with_flow["annotations"], annotations)
    for kind in ("train", "test"):  # a second split of the same dataset
        shutil.copy(annotations / f"{kind}list01.txt", annotations / f"{kind}list02.txt")
    data = {**synth_with_flow, "annotations": annotations}
    first = write_sweep(tmp_path / "a.yaml", data, arch=["c3d"])
    assert run_cli(str(first), "--out", str(tmp_path / "a")) == 0
    (trained,) = read_records(tmp_path / "a")
    datasets = {
        "synth": {"format": "ucf101", **{k: str(v) for k, v in data.items()}, "folds": [1, 2]}
    }
    second = write_sweep(
        tmp_path / "b.yaml",
        data,
        arch=["c3d"],
        protocol=["finetune"],
        datasets=datasets,
        train={
            "max_steps": 1,
            "batch_size": 4,
            "num_workers": 0,
            "val_every_epochs": 0,
            "accelerator": "cpu",
            "init_checkpoint": trained.checkpoint,
        },
    )
    assert run_cli(str(second), "--out", str(tmp_path / "b")) == 1
    records = {r.cell: r for r in read_records(tmp_path / "b")}
    finetuned = records["c3d-rgb-synth1-finetune-s0"]
    assert finetuned.status == "ok" and finetuned.started_from["checkpoint"] == trained.checkpoint
    # a network trained on other data than Kinetics: no paper condition matches it
    assert finetuned.start is None and finetuned.started_from["checkpoint_trained_on"] == "ucf101"
    refused = records["c3d-rgb-synth2-finetune-s0"]
    assert refused.status == "failed" and "trained on ucf101 split 1" in refused.error


def cli_process(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vidbench", "run", *args, "--no-progress"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_sweep_keeps_its_records_and_resumes_the_cell(synth_with_flow, tmp_path):
    train = {
        "max_steps": 60,
        "batch_size": 4,
        "num_workers": 0,
        "val_every_epochs": 0,
        "accelerator": "cpu",
    }
    sweep = write_sweep(
        tmp_path / "s.yaml", synth_with_flow, arch=["c3d", "i3d"], modality=["rgb"], train=train
    )
    out = tmp_path / "out"
    process = cli_process(str(sweep), "--out", str(out), WANDB_MODE="disabled")
    checkpoint = out / "cells" / "i3d-rgb-synth1-scratch-s0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), process.communicate()[0][-3000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    (first,) = read_records(out)  # the finished cell survived the kill
    assert first.cell == "c3d-rgb-synth1-scratch-s0"

    again = cli_process(str(sweep), "--out", str(out), WANDB_MODE="disabled")
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0, output[-3000:]
    assert "c3d-rgb-synth1-scratch-s0: finished earlier, skipped" in output
    records = read_records(out)
    assert [r.cell for r in records] == [
        "c3d-rgb-synth1-scratch-s0",
        "i3d-rgb-synth1-scratch-s0",
    ]
    assert records[0] == first
    resume = records[1].resume
    assert resume["from_checkpoint"].endswith("last.ckpt") and resume["step"] > 0
    # the curve logged before the kill is kept, joined with the rest, each step once
    curve = out / "cells" / "i3d-rgb-synth1-scratch-s0" / "csv" / "metrics.csv"
    with curve.open(newline="") as handle:
        losses = [r for r in csv.DictReader(handle) if r.get("train/loss")]
    steps = [int(r["step"]) for r in losses]
    assert min(steps) < resume["step"] <= max(steps) and len(steps) == len(set(steps))
    assert not list(curve.parent.glob("metrics.part-*"))


def test_interrupted_cell_without_checkpoint_is_reported(synth_with_flow, tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", synth_with_flow, arch=["c3d"])
    out = tmp_path / "out"
    config = load_sweep(str(sweep))
    from vidbench.bench.cells import expand_cells, resolve_cell
    from vidbench.bench.runner import prepare_data

    (key,) = expand_cells(config)
    cell = resolve_cell(config, key, prepare_data("synth", config, None, False))
    started = out / "cells" / key.id / "started.json"
    started.parent.mkdir(parents=True)
    started.write_text(json.dumps({"config_hash": cell.hash()}))
    assert run_cli(str(sweep), "--out", str(out), "--wandb", "disabled") == 0
    (record,) = read_records(out)
    assert record.resume == {
        "from_checkpoint": None,
        "note": "interrupted before its first checkpoint: trained from the start",
    }


def test_ddp_on_two_cpu_processes_gives_the_one_process_metrics(synth_with_flow, tmp_path):
    trained = write_sweep(tmp_path / "t.yaml", synth_with_flow, arch=["c3d"])
    assert run_cli(str(trained), "--out", str(tmp_path / "t"), "--wandb", "disabled") == 0
    (source,) = read_records(tmp_path / "t")
    results = {}
    for devices in (1, 2):
        train = {
            "max_steps": 0,
            "batch_size": 4,
            "num_workers": 0,
            "accelerator": "cpu",
            "devices": devices,
            "strategy": "ddp" if devices > 1 else "auto",
            "init_checkpoint": source.checkpoint,
        }
        sweep = write_sweep(
            tmp_path / f"d{devices}.yaml",
            synth_with_flow,
            arch=["c3d"],
            protocol=["finetune"],
            train=train,
            eval={"views": "clips", "clips": 3, "throughput_batches": 1},
        )
        process = cli_process(
            str(sweep), "--out", str(tmp_path / f"d{devices}"), WANDB_MODE="disabled"
        )
        output = process.communicate(timeout=600)[0]
        assert process.returncode == 0, output[-3000:]
        (record,) = read_records(tmp_path / f"d{devices}")
        assert record.world_size == devices
        # every video's prediction kept, whichever process tested it
        kept = read_predictions(tmp_path / f"d{devices}", record.predictions)
        assert len(set(kept.video_ids)) == 32
        results[devices] = record.metrics
    assert results[2].video["videos"] == results[1].video["videos"] == 32
    for level in ("clip", "video"):
        for key in ("top1", "top5", "mean_class"):
            ours, single = getattr(results[2], level)[key], getattr(results[1], level)[key]
            assert ours == pytest.approx(single, abs=1e-6)


def test_throughput_command_measures_on_the_cpu(capsys):
    args = ["throughput", "--arch", "c3d", "--batch", "2", "--runs", "1", "--min-time", "0"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device_type"] == "cpu" and result["precision"] == "32-true"
    assert result["train_clips_per_s"] > 0 and result["infer_clips_per_s"] > 0
    assert result["params"] == 79_653_712  # the paper's C3D at 400 classes, 16x112x112
    assert result["gmacs_per_clip"] == pytest.approx(19.82, rel=0.01)


def test_shipped_sweeps_validate_and_expand():
    cells = {name: expand_cells(load_sweep(name)) for name in BUILTIN_SWEEPS}
    assert len(cells["smoke"]) == 10  # 5 architectures + frame_avg, every modality they have
    assert len(cells["diagnostic"]) == 4 * 10 * 3  # 4 tasks, the smoke's cells, 3 seeds
    assert len(cells["table2"]) == 2 * (1 + 1 + 3 + 3 + 3)  # UCF-101 and HMDB-51 split 1
    assert {c.protocol for c in cells["table4"]} == {"scratch", "fixed", "finetune"}
    five = {"convnet_lstm", "c3d", "two_stream", "fused_two_stream", "i3d"}
    assert {c.arch for c in cells["table4"]} == five == {c.arch for c in cells["table2"]}
    for name in ("table2", "table2_kinetics", "table4", "splits"):  # docs/protocol.md 1 test views
        assert load_sweep(name).eval.views == "paper", name
    assert {c.fold for c in cells["splits"]} == {1, 2, 3}


def test_unreachable_wandb_does_not_hang_or_fail_the_run(synth_with_flow, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    sweep = write_sweep(
        tmp_path / "s.yaml", synth_with_flow, arch=["c3d"], wandb={"mode": "online", "timeout_s": 5}
    )
    assert run_cli(str(sweep), "--out", str(tmp_path / "out")) == 0  # returns: no hang
    (record,) = read_records(tmp_path / "out")
    assert record.status == "ok" and "did not start" in record.wandb["note"]


def test_motion_check_holds_models_that_see_motion_and_excuses_pooled_features():
    from vidbench.bench.regress import motion_check

    def records(c3d: float) -> list:
        return [
            finished_record("frame_avg-rgb-d1-scratch-s0", 12.5),
            finished_record("c3d-rgb-d1-scratch-s0", c3d),
            finished_record("convnet_lstm-rgb-d1-scratch-s0", 20.0),  # pooled: not held
            finished_record("two_stream-rgb-d1-scratch-s0", 13.0),  # single frames
            finished_record("two_stream-flow-d1-scratch-s0", 95.0),  # flow sees motion
        ]

    passed, report = motion_check(records(90.0))
    assert passed and "blind to low-level motion" in report and "sees no motion" in report
    passed, report = motion_check(records(20.0))
    assert passed is False and "DOES NOT beat it clearly" in report
    # one side missing: not judged (neither passed nor failed)
    passed, report = motion_check(records(90.0)[:1])
    assert passed is None and "no finished 3D-convolution or flow cell" in report
    passed, report = motion_check(records(90.0)[1:])
    assert passed is None and "no finished frame_avg cell" in report
    pooled_only = [records(90.0)[0], records(90.0)[2]]  # frame_avg and the ConvNet+LSTM
    assert motion_check(pooled_only)[0] is None


def test_global_batch_is_met_by_accumulation_or_refused():
    from vidbench.bench.config import TrainConfig

    release = TrainConfig(batch_size=6, global_batch=384, devices=1)  # DeepMind's: 6 x 64
    assert release.accumulation() == 64
    assert release.batch_plan() == {
        "per_device": 6, "devices": 1, "nodes": 1, "accumulation": 64, "global": 384,
    }  # fmt: skip
    assert TrainConfig(batch_size=6, global_batch=384, devices=8, num_nodes=2).accumulation() == 4
    with pytest.raises(ValueError, match=r"global_batch 384 is not batch_size 5 x 1 device"):
        TrainConfig(batch_size=5, global_batch=384)
    with pytest.raises(ValueError, match="global_batch needs devices as a number"):
        TrainConfig(batch_size=6, global_batch=384, devices="auto")
    with pytest.raises(SweepError, match="batch sizes that fit"):
        load_sweep("table2_kinetics", ["train.batch_size=5"])
    kinetics = load_sweep("table2_kinetics")
    assert kinetics.train.lr_schedule[1] == (97000, 0.01)
    from vidbench.bench.config import cell_train

    flow = cell_train(kinetics, "i3d", "flow")
    assert flow.max_steps == 155_000 and flow.lr_schedule[-1] == (150000, 0.001)
    assert cell_train(kinetics, "i3d", "rgb").max_steps == 115_000


def test_the_runner_trains_at_the_global_batch_and_records_it(synth_with_flow, tmp_path):
    from vidbench.bench.cell import make_trainer
    from vidbench.bench.cells import expand_cells, resolve_cell
    from vidbench.bench.runner import prepare_data

    train = {
        "max_steps": 2,
        "batch_size": 4,
        "global_batch": 8,
        "num_workers": 0,
        "val_every_epochs": 0,
        "accelerator": "cpu",
    }
    sweep_file = write_sweep(tmp_path / "s.yaml", synth_with_flow, arch=["c3d"], train=train)
    sweep = load_sweep(str(sweep_file))
    (key,) = expand_cells(sweep)
    cell = resolve_cell(sweep, key, prepare_data("synth", sweep, None, False))
    assert make_trainer(cell, tmp_path / "c", [], False).accumulate_grad_batches == 2
    assert run_cli(str(sweep_file), "--out", str(tmp_path / "out"), "--wandb", "disabled") == 0
    (record,) = read_records(tmp_path / "out")
    assert record.batch == {
        "per_device": 4, "devices": 1, "nodes": 1, "accumulation": 2, "global": 8,
    }  # fmt: skip


def test_every_set_option_applies_when_given_several_times():
    from vidbench.bench.cli import build_parser

    args = build_parser().parse_args(
        ["run", "transfer", "--set", "seed=[0]", "--set", "train.max_steps=2", "model.width=0.5"]
    )
    assert args.sweep == "transfer"
    assert args.set == ["seed=[0]", "train.max_steps=2", "model.width=0.5"]


def test_wandb_runs_as_its_users_expect(synth_with_flow, tmp_path, monkeypatch):
    """One name per number (the resolved cell is the config, Lightning's hyperparameters
    are not logged over it), a job type, a group per sweep and output folder, and an
    interrupted cell continuing its own run."""
    from pytorch_lightning.loggers import WandbLogger

    from vidbench.bench import tracking

    started, hyperparameters, rates = [], [], {}
    original = tracking._start
    monkeypatch.setattr(tracking, "_start", lambda *a: started.append(a[-1]) or original(*a))
    monkeypatch.setattr(WandbLogger, "log_hyperparams", lambda self, p: hyperparameters.append(p))
    log_metrics = WandbLogger.log_metrics

    def logged(self, metrics, step=None):
        if "lr" in metrics:
            rates[step] = metrics["lr"]
        return log_metrics(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", logged)
    sweep = write_sweep(tmp_path / "s.yaml", synth_with_flow, arch=["c3d"])
    out = tmp_path / "out"
    assert run_cli(str(sweep), "--out", str(out)) == 0
    (run,) = started
    assert run["job_type"] == "train" and run["group"] == f"micro-{out}"
    assert run["config"]["data"]["synthetic"] is False and run["config"]["train"]["lr"] == 0.001
    assert "lr" not in run["config"] and hyperparameters == []
    run_dir = out / "cells" / "c3d-rgb-synth1-scratch-s0"
    assert run["id"] == (run_dir / "wandb_run_id").read_text().strip()
    assert sorted(rates) == [1, 2, 3] and set(rates.values()) == {0.001}  # each of 3 steps

    (out / "runs.jsonl").write_text("")  # as if the sweep had been killed before the record
    shutil.rmtree(out / "records")
    assert run_cli(str(sweep), "--out", str(out), "--set", "wandb.group=mine") == 0
    assert started[1]["id"] == run["id"] and started[1]["resume"] == "allow"
    assert started[1]["group"] == "mine"
    runs = sorted((out / "wandb" / "wandb").glob(f"offline-run-*-{run['id']}"))
    assert len(runs) == 2  # both attempts logged under the one run id, synced as one run


def test_a_dataset_is_dropped_with_null_and_file_paths_are_the_files(tmp_path, capsys):
    sweep = load_sweep("table2", ["datasets.hmdb51=null"])
    assert list(sweep.datasets) == ["ucf101"]
    with pytest.raises(SweepError, match="no dataset left"):
        load_sweep("table2", ["datasets.hmdb51=null", "datasets.ucf101=null"])
    folder = tmp_path / "sweeps"
    folder.mkdir()
    text = yaml.safe_load((Path(__file__).parents[1] / "bench/sweeps/table2.yaml").read_text())
    text["datasets"]["ucf101"]["videos"] = "/abs/UCF-101"
    (folder / "mine.yaml").write_text(yaml.safe_dump(text))
    mine = load_sweep(str(folder / "mine.yaml"), ["datasets.hmdb51.flow=here/flow"])
    ucf, hmdb = mine.datasets["ucf101"], mine.datasets["hmdb51"]
    assert ucf.videos == "/abs/UCF-101"  # absolute: as written
    assert ucf.annotations == str(folder / "data/ucf101/ucfTrainTestlist")  # the file's folder
    assert mine.per_arch["i3d"]["inflate_from"] == str(
        folder / "data/weights/googlenet-imagenet.pth"
    )
    assert hmdb.flow == "here/flow"  # --set: relative to where the command runs
    assert load_sweep("table2").datasets["ucf101"].videos == "data/ucf101/videos"  # built-in


def test_missing_flow_is_named_by_its_root(synth_with_flow, tmp_path, caplog):
    flow = tmp_path / "flow"
    shutil.copytree(synth_with_flow["flow"], flow)
    gone = sorted(flow.rglob("*.mp4"))[0]
    gone.unlink()
    dm = tiny_datamodule(
        synth_with_flow["videos"].parent,
        modalities=("rgb", "flow"),
        flow_root=flow,
        flow_algorithm="farneback",
    )
    dm.setup("test")
    dm.dataset("train")
    assert f"flow missing under {flow} for 1 of" in caplog.text


def test_a_quick_look_tests_a_fixed_subset_says_so_and_logs_its_progress(synth_dataset, tmp_path):
    data = {"videos": synth_dataset / "videos", "annotations": synth_dataset / "annotations"}
    sweep = write_sweep(
        tmp_path / "s.yaml",
        data,
        arch=["c3d"],
        eval={"views": "clips", "clips": 1, "throughput_batches": 1, "max_videos": 5},
    )
    run = subprocess.run(
        [sys.executable, "-m", "vidbench", "run", str(sweep), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (record,) = read_records(tmp_path / "out")
    listed = len((synth_dataset / "annotations" / "testlist01.txt").read_text().split())
    assert record.config.max_videos == 5 and record.data.evaluated_videos == 5
    assert record.data.test_listed == listed > 5
    assert "evaluating 5 of its" in run.stderr
    assert "c3d-rgb-synth1-scratch-s0: tested 5 of 5 views (100%)" in run.stderr  # no terminal


def test_the_learning_rate_is_chosen_on_validation_and_every_candidate_recorded(tmp_path):
    from vidbench.models.weights import load_classifier

    synthetic = {"synthetic": {"classes": 2, "videos_per_class": 16, "frames": 16, "size": 32}}
    train = {
        "max_steps": 4,
        "batch_size": 4,
        "num_workers": 0,
        "val_every_epochs": 0,
        "accelerator": "cpu",
        "optimizer": "adamw",
        "lr": 0.5,
        "lr_grid": [1e-7, 3e-3],
        "lr_search_steps": 6,
    }
    sweep = write_sweep(
        tmp_path / "s.yaml", {}, arch=["c3d"], train=train, datasets={"synth": synthetic}
    )
    assert run_cli(str(sweep), "--out", str(tmp_path / "out")) == 0
    (record,) = read_records(tmp_path / "out")
    search = record.lr_search
    assert [c["lr"] for c in search["candidates"]] == [1e-7, 3e-3] and search["steps"] == 6
    best = max(search["candidates"], key=lambda c: (c["val_top1"], -c["val_loss"]))
    assert search["chosen"] == best["lr"] != 0.5
    assert load_classifier(record.checkpoint).hparams.lr == search["chosen"]  # it trained
    assert "of the train split's groups held out" in record.data.validated_on
    assert record.config.train.lr == 0.5  # the config as given: the choice is the record's
    assert not (tmp_path / "out" / "cells" / record.cell / "lr_search").exists()


def test_the_leaderboard_run_carries_the_sweeps_tags():
    """The W&B leaderboard run is found by the tags its cells' runs carry."""
    from vidbench.bench.runner import sweep_tags

    records = [
        finished_record("c3d-rgb-syn1-scratch-s0", 50.0),
        finished_record("i3d-flow-syn1-finetune-s0", 50.0),
    ]
    assert sweep_tags(load_sweep("smoke"), records) == sorted(
        {"smoke", "c3d", "i3d", "syn", "rgb", "flow", "scratch", "finetune"}
    )


def test_a_compiled_cell_trains_tests_and_keeps_its_setting(synth_with_flow, tmp_path):
    """`train.compile: true`: the cell trains and tests through torch.compile (its results
    land in the module the record is made from) and its hash says it was compiled."""
    train = {
        "max_steps": 3,
        "batch_size": 4,
        "num_workers": 0,
        "val_every_epochs": 0,
        "accelerator": "cpu",
        "optimizer": "adamw",
        "lr": 0.001,
    }
    eager = write_sweep(tmp_path / "e.yaml", synth_with_flow, arch=["c3d"], train=train)
    compiled = write_sweep(
        tmp_path / "c.yaml", synth_with_flow, arch=["c3d"], train={**train, "compile": True}
    )
    for sweep, out in ((eager, "e"), (compiled, "c")):
        assert run_cli(str(sweep), "--out", str(tmp_path / out), "--wandb", "disabled") == 0
    (plain,), (fast,) = read_records(tmp_path / "e"), read_records(tmp_path / "c")
    assert fast.status == "ok" and fast.config.train.compile
    assert fast.config_hash != plain.config_hash
    assert fast.data.evaluated_videos == plain.data.evaluated_videos == 32
    assert len(read_predictions(tmp_path / "c", fast.predictions).video_ids) == 32
