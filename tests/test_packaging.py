"""vidbench installs as one package, `vidbench`, beside Hugging Face's `datasets`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    source, out = tmp_path_factory.mktemp("source") / "vidbench", tmp_path_factory.mktemp("wheel")
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("vidbench-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_installs_one_top_level_name_with_its_data(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"vidbench"}
    for expected in (
        "vidbench/__init__.py",
        "vidbench/__main__.py",
        "vidbench/bench/cli.py",
        "vidbench/bench/commands/runs.py",
        "vidbench/models/i3d.py",
        "vidbench/datasets/datamodule.py",
        "vidbench/bench/sweeps/smoke.yaml",
        "vidbench/bench/classes/ucf101.txt",
        "vidbench/models/labels/kinetics400_classes.txt",
    ):
        assert expected in names
    assert not [n for n in names if n.startswith("vidbench/tests/") or "/results/" in n]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vidbench = vidbench.bench.cli:main" in wheel.read(entry_points).decode()


def test_imports_beside_hugging_face_datasets_and_a_models_package(tmp_path: Path) -> None:
    """A `datasets` and a `models` package elsewhere on the path (Hugging Face's, a
    research repository's) import as themselves next to vidbench's."""
    for name in ("datasets", "models"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"OWNER = 'not vidbench {name}'\n")
    script = (
        "import datasets, models, vidbench, vidbench.datasets, vidbench.models\n"
        "from vidbench.datasets import VideoDataModule\n"
        "print(datasets.OWNER, models.OWNER, sep=';')\n"
        "print(vidbench.__version__, vidbench.datasets.__file__, sep=';')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    owners, versioned = result.stdout.strip().splitlines()
    assert owners == "not vidbench datasets;not vidbench models"
    version, location = versioned.split(";")
    assert version != "0+unknown"  # the installed distribution's version
    assert Path(location).parent == ROOT / "datasets"


def test_python_dash_m_vidbench_is_the_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vidbench", "models", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"name": "i3d"' in result.stdout
