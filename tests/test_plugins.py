"""Architectures and dataset formats from other packages: entry points, `module:callable`
names, the example package in examples/plugin, and what a broken plugin does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import write_sweep

from vidbench.bench.results import read_records
from vidbench.datasets import annotations
from vidbench.models import create_model, list_models, registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin"
PIP = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
CHECK = [sys.executable, "-m", "vidbench", "data", "check", "--dataset"]
BUILT_IN = {"c3d", "convnet_lstm", "frame_avg", "fused_two_stream", "i3d", "r3d", "two_stream"}


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as this process has it, restored afterwards, with plugins unloaded so
    that the test's entry points are read."""
    saved = (dict(registry._MODELS), dict(registry._ORIGINS), dict(registry._BROKEN))
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    yield
    for table, before in zip(
        (registry._MODELS, registry._ORIGINS, registry._BROKEN), saved, strict=True
    ):
        table.clear()
        table.update(before)


def fake_distribution(site: Path, name: str, version: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata finds it: a .dist-info folder."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_broken_plugin_is_left_out_with_its_package_named(tmp_path, monkeypatch, fresh_registry):
    site = tmp_path / "site"
    (site / "headless_pkg").mkdir(parents=True)
    (site / "headless_pkg" / "__init__.py").write_text(
        "from torch import nn\n\nclass Net(nn.Module):\n    def __init__(self, num_classes):\n"
        "        super().__init__()\n"
    )
    fake_distribution(
        site,
        "broken-plugins",
        "2.0",
        "[vidbench.models]\n"
        "needs_missing = not_installed_anywhere.models:Net\n"  # fails to import
        "c3d = headless_pkg:Net\n"  # a name vidbench has
        "headless = headless_pkg:Net\n",  # no input_spec, no head methods
    )
    monkeypatch.syspath_prepend(str(site))
    assert set(list_models()) == BUILT_IN  # the built-in models still list
    broken = registry.broken_plugins()
    assert set(broken) == {"needs_missing", "c3d", "headless"}
    assert all("broken-plugins 2.0" in why for why in broken.values())  # names the package
    assert "ModuleNotFoundError" in broken["needs_missing"]
    assert "not_installed_anywhere" in broken["needs_missing"]
    assert "taken by vidbench" in broken["c3d"]
    assert "lacks ['input_spec', 'get_classifier', 'reset_classifier']" in broken["headless"]
    # the built-in c3d is the one that builds and runs; the broken name says why it is out
    logits = create_model("c3d", 3, width=0.125)({"rgb": torch.zeros(2, 3, 8, 32, 32)})
    assert logits.shape == (2, 3)
    with pytest.raises(ValueError, match=r"headless.*broken-plugins 2\.0.*lacks"):
        create_model("headless", 3)
    listed = subprocess.run(  # `vidbench models` lists the others and says who is out
        [sys.executable, "-m", "vidbench", "models"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert listed.returncode == 0 and "i3d" in listed.stdout
    out_lines = [line for line in listed.stdout.splitlines() if "left out" in line]
    assert len(out_lines) == 3 and all("broken-plugins 2.0" in line for line in out_lines)


def test_an_unpackaged_constructor_is_named_module_colon_callable(
    tmp_path, monkeypatch, fresh_registry
):
    monkeypatch.syspath_prepend(str(EXAMPLE))  # importable, not installed
    name = "vidbench_example.model:Tiny3D"
    net = create_model(name, 5, width=0.25)
    assert net({"rgb": torch.zeros(2, 3, 4, 16, 16)}).shape == (2, 5)
    assert registry.model_origin(name) == {"module": "vidbench_example.model"}
    with pytest.raises(ValueError, match="module 'no_such_module' cannot be imported"):
        create_model("no_such_module:Net", 5)
    with pytest.raises(
        ValueError, match=r"module 'vidbench_example\.model' has no attribute 'Nope'"
    ):
        create_model("vidbench_example.model:Nope", 5)
    with pytest.raises(ValueError, match="lacks"):  # a callable without the contract
        create_model("json:dumps", 5)


def test_a_sweep_names_a_module_colon_callable_and_its_cells_are_plain_file_names(
    tmp_path, synth_dataset
):
    sweep = write_sweep(
        tmp_path / "s.yaml",
        {"videos": synth_dataset / "videos", "annotations": synth_dataset / "annotations"},
        arch=["vidbench_example.model:Tiny3D", "c3d"],
    )
    shown = subprocess.run(
        [sys.executable, "-m", "vidbench", "run", str(sweep), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(EXAMPLE)},
    )
    assert shown.returncode == 0, shown.stderr
    assert "# vidbench_example.model.Tiny3D-rgb-synth1-scratch-s0: run" in shown.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "vidbench", "run", str(sweep), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},  # the module is not importable now
    )
    assert shown.returncode != 0
    assert "module 'vidbench_example.model' cannot be imported" in shown.stderr
    assert "Traceback" not in shown.stderr


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory) -> Path:
    """examples/plugin built and installed into a folder of its own, without network (the
    test environment itself is left as it is: PYTHONPATH adds the folder to a command)."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build") / "plugin"
    import shutil

    shutil.copytree(EXAMPLE, build)  # setuptools writes its build files beside the source
    subprocess.run(
        [*PIP, "--no-build-isolation", "--target", str(site), str(build)],
        check=True,
        capture_output=True,
    )
    return site


def test_the_example_plugin_joins_a_sweep_beside_c3d(example_installed, synth_dataset, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(example_installed)}
    listed = subprocess.run(
        [sys.executable, "-m", "vidbench", "models", "--json", "--num-classes", "8"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["tiny3d"]["from"] == "vidbench-example-plugin 0.1.0"
    assert rows["c3d"]["from"].startswith("vidbench ")
    assert rows["tiny3d"]["params"] > 0 and rows["tiny3d"]["gmacs"] > 0
    sweep = write_sweep(
        tmp_path / "s.yaml",
        {"videos": synth_dataset / "videos", "annotations": synth_dataset / "annotations"},
        arch=["tiny3d", "c3d"],
    )
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "vidbench", "run", str(sweep), "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    records = {r.config.arch: r for r in read_records(out / "runs.jsonl")}
    assert {a: r.status for a, r in records.items()} == {"tiny3d": "ok", "c3d": "ok"}
    assert records["tiny3d"].model_from == {
        "package": "vidbench-example-plugin",
        "version": "0.1.0",
    }
    assert records["c3d"].model_from["package"] == "vidbench"
    for record in records.values():  # costs measured the same way for both
        assert record.costs["params"] > 0 and record.costs["gmacs_per_clip"] > 0
        assert record.costs["infer_clips_per_s"] > 0
    board = (out / "leaderboard.md").read_text()
    assert "| tiny3d from vidbench-example-plugin 0.1.0 (width 0.125, 8×32) |" in board
    assert "3D-ConvNet" in board


def test_the_example_dataset_format_is_read_by_data_check_and_the_parser(
    example_installed, tmp_path, write_counting_video
):
    videos = tmp_path / "videos"
    rows = ["video,label,split"]
    for i, (label, split) in enumerate([("cat", "train"), ("dog", "train"), ("cat", "val")]):
        write_counting_video(f"videos/clip{i}.mp4", 12)
        rows.append(f"clip{i}.mp4,{label},{split}")
    rows.append("clip0.mp4,,test")
    listing = tmp_path / "list.csv"
    listing.write_text("\n".join(rows) + "\n")
    env = {**os.environ, "PYTHONPATH": str(example_installed)}
    checked = subprocess.run(
        [*CHECK, "csvlist", "--videos", str(videos), "--annotations", str(listing), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert checked.returncode == 0, checked.stderr[-2000:]
    report = json.loads(checked.stdout)
    assert report["num_classes"] == 2 and not report["missing"] and not report["failed"]
    wrong = subprocess.run(
        [*CHECK, "csvlsit", "--videos", str(videos), "--annotations", str(listing)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert wrong.returncode != 0 and "csvlist" in wrong.stderr  # the choices include it


def test_a_dataset_format_plugin_that_breaks_says_which_package(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "badformat").mkdir(parents=True)
    (site / "badformat" / "__init__.py").write_text("def parse(path, fold):\n    return {}\n")
    fake_distribution(
        site,
        "bad-formats",
        "0.3",
        "[vidbench.datasets]\nmissing = gone_module:parse\nwrongtype = badformat:parse\n",
    )
    monkeypatch.syspath_prepend(str(site))
    assert {"missing", "wrongtype"} <= set(annotations.dataset_formats())
    listing = tmp_path / "a.csv"
    listing.write_text("x\n")
    with pytest.raises(ValueError, match=r"'missing' of bad-formats 0.3 .*cannot be imported"):
        annotations.load_annotations("missing", listing)
    with pytest.raises(annotations.AnnotationError, match=r"bad-formats 0\.3.*returned dict"):
        annotations.load_annotations("wrongtype", listing)
    with pytest.raises(ValueError, match="did you mean 'ucf101'"):
        annotations.check_format("ucf10")
    assert annotations.load_annotations("folder", _one_class_folder(tmp_path)).num_classes == 1


def _one_class_folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    (root / "a").mkdir(parents=True)
    (root / "a" / "v.mp4").write_bytes(b"")
    return root


def test_the_leaderboard_names_who_built_a_network_that_is_not_vidbenchs():
    from helpers import finished_record

    from vidbench.bench.paper import ARCH_NAMES
    from vidbench.bench.summary import arch_label

    record = finished_record("c3d-rgb-d1-scratch-s0", 50.0)
    record.model_from = {"package": "vidbench", "version": "0.4.0"}
    assert " from " not in arch_label(record)
    record.model_from = {"module": "mylab.nets"}  # module:callable outside any package
    assert arch_label(record).startswith(f"{ARCH_NAMES['c3d']} from mylab.nets")
    record.model_from = {"module": "mylab.nets", "package": "mylab", "version": "1.2"}
    assert arch_label(record).startswith(f"{ARCH_NAMES['c3d']} from mylab 1.2")
