"""Shared fixtures: real encoded videos whose frames say which frame they are."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vidbench.datasets.annotations import load_annotations
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.flow import FlowConfig
from vidbench.datasets.flow_extract import extract_all, list_videos
from vidbench.datasets.synthetic import SynthConfig, make_synthetic_dataset, write_video

STEP = 5  # grey level per frame index in `counting_frames`


def counting_frames(count: int, height: int = 48, width: int = 64, step: int = STEP) -> np.ndarray:
    """uint8 (T, H, W, 3) where frame i is flat grey (i * step) % 250: decodable identity."""
    values = (np.arange(count) * step) % 250
    return (
        np.broadcast_to(values[:, None, None, None], (count, height, width, 3))
        .astype(np.uint8)
        .copy()
    )


def frame_index_of(clip: np.ndarray, step: int = STEP) -> np.ndarray:
    """Recover frame indices from decoded `counting_frames` (T, H, W, 3) uint8."""
    return np.round(clip.reshape(len(clip), -1).mean(axis=1) / step).astype(int)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VIDBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def write_counting_video(tmp_path):
    def write(name: str, count: int, fps: float = 25, **size) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, counting_frames(count, **size), fps)
        return path

    return write


@pytest.fixture
def broken_videos(tmp_path, write_counting_video) -> dict[str, Path]:
    """One file for each kind of broken input, keyed by kind."""
    good = write_counting_video("bad/good.mp4", 30)
    empty = tmp_path / "bad/empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "bad/truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    not_video = tmp_path / "bad/notes.mp4"
    not_video.write_text("these are not the frames you are looking for\n" * 50)
    no_frames = tmp_path / "bad/no_frames.mp4"
    import av

    container = av.open(str(no_frames), "w")  # a valid container that holds no frames
    stream = container.add_stream("mpeg4", rate=25)
    stream.width, stream.height = 64, 48
    container.start_encoding()
    container.close()
    return {
        "good": good,
        "empty": empty,
        "truncated": truncated,
        "not_video": not_video,
        "no_frames": no_frames,
        "missing": tmp_path / "bad/missing.mp4",
    }


@pytest.fixture
def hanging_video(tmp_path):
    """A named pipe with no writer: opening it blocks inside the decoder, for real."""
    fifo = tmp_path / "hang.mp4"
    os.mkfifo(fifo)
    yield fifo
    # Release the abandoned decoder thread: a writer that closes at once gives it EOF.
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if _has_reader(fifo) else None
    if fd is not None:
        os.close(fd)


def _has_reader(fifo: Path) -> bool:
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    """The built-in synthetic-motion dataset at a small size (UCF-101 layout)."""
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), SynthConfig(videos_per_class=8), progress=False
    )


@pytest.fixture(scope="session")
def grouped(tmp_path_factory) -> Path:
    """Two classes of four groups of four videos (UCF-101 layout): three groups a class
    train, one tests, so part of the training groups can be held out for validation."""
    config = SynthConfig(classes=2, videos_per_class=16, frames=16, size=32)
    return make_synthetic_dataset(tmp_path_factory.mktemp("grouped"), config, progress=False)


SMOKE_STARTED = "VIDBENCH_TEST_SMOKE"  # where the smoke sweep started at configure writes


def smoke_command(out: Path) -> list[str]:
    """The built-in smoke sweep as `vidbench run` runs it, into `out`."""
    return [sys.executable, "-m", "vidbench", "run", "--out", str(out), "--no-progress"]


def start_smoke(root: Path) -> subprocess.Popen:
    """Start the smoke sweep in the background under `root` (its own data cache; stdout,
    stderr and, once it ends, its return code in files there)."""
    with open(root / "stdout", "w") as stdout, open(root / "stderr", "w") as stderr:
        return subprocess.Popen(
            smoke_command(root / "out"),
            env={**os.environ, "VIDBENCH_CACHE": str(root / "cache")},
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # stopped as a group at unconfigure
        )


def finished_smoke(root: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """Wait for the smoke sweep started under `root` (no time limit: a busy host is slow)."""
    while not (root / "returncode").exists():
        if not root.is_dir():  # a stale SMOKE_STARTED from another run: never to be written
            raise RuntimeError(f"{SMOKE_STARTED}={root}: no such folder; unset it and rerun")
        time.sleep(1)
    run = subprocess.CompletedProcess(
        smoke_command(root / "out"),
        int((root / "returncode").read_text()),
        (root / "stdout").read_text(),
        (root / "stderr").read_text(),
    )
    return root / "out", run


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The built-in smoke sweep run once, as `vidbench run` runs it (two cells at a time;
    minutes on 2 cores, more on a busy host: no time limit here): its output folder and
    the finished process. A whole-suite run starts it at configure, in the background
    while the other tests run; otherwise it runs here."""
    started = os.environ.get(SMOKE_STARTED)
    if started:
        return finished_smoke(Path(started))
    root = tmp_path_factory.mktemp("smoke")
    process = subprocess.run(
        smoke_command(root / "out"),
        env={**os.environ, "VIDBENCH_CACHE": str(root / "cache")},
        capture_output=True,
        text=True,
    )
    return root / "out", process


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers
def pytest_cmdline_main(config: pytest.Config) -> None:
    """A run that selects the `speed` benchmarks runs in this process: pytest-benchmark
    times nothing under xdist workers. So does `-n auto` on two cores or fewer: there the
    tests and the background smoke sweep already fill the CPU, and two workers made the
    suite slower, not faster (docs/development.md)."""
    benchmarks = re.search(r"(?<!not )\bspeed\b", config.option.markexpr or "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if benchmarks or (config.option.numprocesses == "auto" and (cores or 1) <= 2):
        config.option.numprocesses = 0


def selects_e2e(config: pytest.Config) -> bool:
    """Whether this is a whole-suite run that keeps the e2e tests: no paths, `-k` or `-m`
    naming e2e given (`pytest`, `pytest -n 2`), and not just collecting."""
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and "e2e" not in (config.option.markexpr or "")
        and not config.option.collectonly
    )


SMOKE_PROCESS = pytest.StashKey[tuple[subprocess.Popen, Path]]()


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process of a whole-suite run, start the smoke sweep at once, so
    it trains while the other tests run; xdist workers find it through SMOKE_STARTED."""
    if hasattr(config, "workerinput") or SMOKE_STARTED in os.environ or not selects_e2e(config):
        return
    root = Path(tempfile.mkdtemp(prefix="vidbench-smoke-"))
    process = start_smoke(root)

    def record_end() -> None:
        code = process.wait()
        (root / "returncode.tmp").write_text(str(code))
        (root / "returncode.tmp").rename(root / "returncode")

    threading.Thread(target=record_end, daemon=True).start()
    os.environ[SMOKE_STARTED] = str(root)
    config.stash[SMOKE_PROCESS] = (process, root)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the background smoke sweep if the run ended before it did; remove its folder."""
    started = config.stash.get(SMOKE_PROCESS, None)
    if started is None:
        return
    process, root = started
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
    os.environ.pop(SMOKE_STARTED, None)
    shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the smoke sweep run end to end is marked `e2e`, so that
    `pytest -m "not e2e"` is the quick loop. Under xdist (`--dist loadgroup`) the e2e
    tests run on one worker and every other file's tests together on one, so session
    and module fixtures (the smoke sweep, a SLURM cluster) are made once."""
    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))
        else:
            item.add_marker(pytest.mark.xdist_group(item.path.name))


@pytest.hookimpl(tryfirst=True)  # before xdist sends the report to the controller
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Captured output naming a file whose name is not UTF-8 holds surrogate escapes, which
    xdist cannot send between processes (its worker would crash): write them as \\x..
    escapes, as the CLI prints them."""
    report.sections = [(title, printable(text)) for title, text in report.sections]


def printable(text: str) -> str:
    """`text` with surrogate escapes (undecodable bytes of a file name) as \\x.. escapes."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.fixture(scope="session")
def synth_with_flow(synth_dataset, tmp_path_factory) -> dict[str, Path]:
    flow = tmp_path_factory.mktemp("flow") / "farneback"
    videos = synth_dataset / "videos"
    extract_all(videos, flow, FlowConfig("farneback"), list_videos(videos)[0], progress=False)
    return {"videos": videos, "annotations": synth_dataset / "annotations", "flow": flow}


BENCH_FORMATS = {"ucf101-mpeg4-320x240": (240, None), "kinetics-h264-340x256": (256, ".mp4")}


@pytest.fixture(scope="module", params=list(BENCH_FORMATS))
def bench_videos(request, tmp_path_factory):
    """The data benchmarks' files, once per family: 8 synthetic-motion videos of 160 frames,
    UCF-101-like MPEG-4 .avi at 320x240 or Kinetics-like H.264 .mp4 at 340x256 (one
    keyframe: x264's default interval is longer than the video)."""
    size, recode_to = BENCH_FORMATS[request.param]
    root = make_synthetic_dataset(
        tmp_path_factory.mktemp("bench"),
        SynthConfig(classes=2, videos_per_class=4, frames=160, size=size),
        progress=False,
    )
    records = load_annotations("ucf101", root / "annotations").splits
    paths = [(root / "videos" / r.path, r) for split in ("train", "test") for r in records[split]]
    if recode_to:  # re-encode the same frames as H.264
        recoded = []
        for path, record in paths:
            video = open_video(path)
            target = path.with_suffix(recode_to)
            write_video(target, read_frames(video, np.arange(video.num_frames)), video.fps)
            recoded.append((target, record))
        paths = recoded
    return paths
