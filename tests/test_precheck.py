"""The mistakes that need no tensors are answered before torch or Lightning is imported:
an unknown sweep name, a mistyped `--set` key, a dataset folder that is not there, an
output folder that cannot be written. Each answer names what would be valid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from vidbench.bench.config import BUILTIN_SWEEPS
from vidbench.bench.precheck import (
    SweepError,
    builtin_sweeps,
    check_keys,
    key_tree,
    load_yaml,
    precheck,
    sweep_text,
    visible_gpus,
)
from vidbench.bench.schema import sweep_key_tree

LIGHT = """
import contextlib, io, json, sys
from vidbench.bench.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err):
    status = main(json.loads(sys.argv[1]))
print(json.dumps([status, err.getvalue(), sorted(m for m in ("torch", "pytorch_lightning")
                                                 if m in sys.modules)]))
"""


def answer(args: list[str], cwd, **env: str) -> tuple[int, str, list[str], str]:
    """`vidbench ARGS` in a fresh interpreter: exit status, stderr, heavy modules imported,
    and what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", LIGHT, json.dumps(args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.splitlines()
    status, err, heavy = json.loads(last)
    return status, err, heavy, "\n".join(printed)


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "smoek"], "smoek: no such sweep file or built-in sweep (did you mean `smoke`?)"),
        (
            ["run", "--set", "train.max_step=5"],
            "unknown key `train.max_step` (did you mean `max_steps`?); allowed under `train`: ",
        ),
        (["run", "--set", "trian.max_steps=5"], "unknown key `trian` (did you mean `train`?)"),
        (["run", "sweep.yaml"], "datasets.ucf101.videos: "),
        (["run", "--out", "a_file/results"], "--out a_file/results: a_file is not a folder"),
        (["run", "--set", "seed=[0"], "override 'seed=[0': not valid YAML"),
    ],
)
def test_a_mistake_is_answered_without_importing_torch(tmp_path, args, message):
    (tmp_path / "a_file").write_text("")
    sweep = {
        "name": "mine",
        "arch": ["c3d"],
        "datasets": {
            "ucf101": {"format": "ucf101", "videos": "UCF-101", "annotations": "ucfTrainTestlist"}
        },
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    status, err, heavy, _ = answer(args, tmp_path)
    assert status == 2 and message in err, err
    assert heavy == [], f"imported {heavy} before answering"
    if "sweep.yaml" in args:  # the path as the sweep file's folder makes it, and a way out
        assert str(tmp_path / "UCF-101") in err and "--set datasets.ucf101=null" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "--set", "train.accelerator=gpu"],
            "train.accelerator gpu with train.devices 1: 0",
        ),
        (["predict", "--checkpoint", "c.ckpt", "v.mp4", "--device", "cuda"], "--device cuda: no"),
        (["predict", "--checkpoint", "c.ckpt", "v.mp4", "--device", "tpu"], "use cpu, cuda or"),
        (["throughput", "--device", "cuda:1"], "--device cuda:1: no CUDA GPU is visible"),
    ],
)
def test_a_device_that_is_not_here_is_answered_without_importing_torch(tmp_path, args, message):
    if visible_gpus() is None:
        pytest.fail("this test needs a Linux host without ROCm, where GPUs can be counted")
    status, err, heavy, _ = answer(args, tmp_path, CUDA_VISIBLE_DEVICES="")  # no GPU visible
    assert status == 2 and message in err, err
    assert heavy == [], f"imported {heavy} before answering"


def test_visible_gpus_reads_the_driver_list_as_cuda_visible_devices_narrows_it(
    tmp_path, monkeypatch
):
    for index in range(4):
        (tmp_path / f"0000:0{index}:00.0").mkdir()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus(tmp_path) == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert visible_gpus(tmp_path) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,-1,3")  # CUDA stops at the invalid entry
    assert visible_gpus(tmp_path) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus(tmp_path) == 0
    assert visible_gpus(tmp_path / "absent") == 0  # no NVIDIA driver


def test_the_key_tree_is_the_sweeps_and_the_builtin_names_are_the_files():
    assert key_tree() == json.loads(json.dumps(sweep_key_tree())), (
        "bench/schemas/sweep_keys.json is stale: python -m vidbench.bench.schema"
    )
    assert builtin_sweeps() == sorted(BUILTIN_SWEEPS)
    for name in BUILTIN_SWEEPS:  # every shipped sweep passes the key check
        text, where, _ = sweep_text(name)
        check_keys(load_yaml(text, where))


def test_models_answers_from_its_cache_without_torch(tmp_path):
    """`vidbench models` counts every network once per version of the models' code and
    torch; after that it answers without importing torch, with the same table."""
    first = answer(["models", "--json"], tmp_path, VIDBENCH_CACHE=str(tmp_path / "cache"))
    assert first[0] == 0 and "torch" in first[2]
    again = answer(["models", "--json"], tmp_path, VIDBENCH_CACHE=str(tmp_path / "cache"))
    assert again[0] == 0 and again[2] == [] and again[3] == first[3]
    other = answer(
        ["models", "--json", "--num-classes", "101"],
        tmp_path,
        VIDBENCH_CACHE=str(tmp_path / "cache"),
    )
    assert other[3] != first[3] and "torch" in other[2]  # another head: counted again


def test_a_sweep_files_paths_are_its_folders_and_set_paths_the_current_ones(tmp_path, monkeypatch):
    """As `load_sweep` reads them: a relative path in a sweep file is relative to the
    file's folder, one given with `--set` to the current folder."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "UCF").mkdir()
    sweep = {
        "name": "m",
        "arch": ["c3d"],
        "datasets": {"u": {"format": "ucf101", "videos": "UCF", "annotations": "UCF"}},
    }
    (tmp_path / "sub" / "s.yaml").write_text(yaml.safe_dump(sweep))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepError, match=re.escape(f"{tmp_path / 'sub' / 'UCF'} does not exist")):
        precheck("sub/s.yaml", [], None)
    precheck("sub/s.yaml", ["datasets.u.videos=UCF", "datasets.u.annotations=UCF"], None)
