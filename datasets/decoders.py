"""Video decoders behind one small interface, and a timeout for decodes that hang.

`open_video(path, backend)` returns an object with `num_frames`, `fps` and
`get_frames(indices) -> uint8 ndarray (T, H, W, 3)` (RGB). decord is the default; PyAV is
the comparison decoder (benchmarks, and a fallback where decord is missing).
A reader is opened per call, never shared across processes, so it is fork-safe.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from vidbench.datasets.files import run_bounded

log = logging.getLogger(__name__)
BACKENDS = ("decord", "pyav")
TIMED_OUT = "decode timed out"  # how a DecodeError from `call_with_timeout` starts
# What a container may claim. Frames are re-timed to the sampling rate (25 fps; flow up to
# 240): a claim of 1/10000 fps would turn 3 frames into 750,000, so rates outside this
# range, and videos longer than a day, are refused when opened.
MIN_FPS, MAX_FPS = 1.0, 1000.0
MAX_SECONDS = 24 * 3600

T = TypeVar("T")


class DecodeError(RuntimeError):
    """A video could not be decoded; `path` names it, the message says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class Video(Protocol):
    num_frames: int
    fps: float

    def get_frames(self, indices: np.ndarray) -> np.ndarray: ...


class DecordVideo:
    """decord reader with `num_threads` decode threads (1 per DataLoader worker).

    decord fails on some valid videos (some frame widths under 32 pixels); when a read
    fails, the video is read with PyAV from then on if PyAV can open it.
    """

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        import decord

        self.path = str(path)
        self.num_threads = num_threads
        self._reader = decord.VideoReader(self.path, num_threads=num_threads)
        self.num_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())
        self._fallback: PyAVVideo | None = None

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        if self._fallback is not None:
            return self._fallback.get_frames(indices)
        try:
            return self._reader.get_batch(list(map(int, indices))).asnumpy()
        except Exception as error:
            try:
                self._fallback = PyAVVideo(self.path, self.num_threads)
            except Exception:
                raise error from None
            log.info("decord cannot read %s (%s); reading it with PyAV", self.path, error)
            return self._fallback.get_frames(indices)


class PyAVVideo:
    """PyAV reader: seeks to the keyframe before the first wanted frame, decodes forward."""

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        import av

        self.path = str(path)
        self._container = av.open(self.path)
        if not self._container.streams.video:
            raise ValueError("no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = num_threads
        self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 0)
        self._start = self._stream.start_time or 0
        self.num_frames = self._count_frames()

    def _count_frames(self) -> int:
        """From the stream header; else (Matroska, WebM) its duration or the container's;
        else by counting the stream's packets (no decoding)."""
        stream = self._stream
        if stream.frames:
            return int(stream.frames)
        if stream.duration and self.fps:
            return round(float(stream.duration * stream.time_base) * self.fps)
        if self._container.duration and self.fps:
            return round(self._container.duration / 1_000_000 * self.fps)
        count = sum(1 for packet in self._container.demux(stream) if packet.size)
        self._container.seek(0)
        return count

    def _index(self, pts: int) -> int:
        return round(float((pts - self._start) * self._stream.time_base) * self.fps)

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        wanted = sorted(set(map(int, indices)))
        first_pts = self._start + int(wanted[0] / self.fps / self._stream.time_base)
        self._container.seek(first_pts, stream=self._stream, backward=True, any_frame=False)
        decoded: dict[int, np.ndarray] = {}
        for frame in self._container.decode(self._stream):
            index = self._index(frame.pts) if frame.pts is not None else len(decoded)
            if index in wanted:
                decoded[index] = frame.to_ndarray(format="rgb24")
            if index >= wanted[-1]:
                break
        last = None
        for i in wanted:  # a container that ends early repeats its last frame
            last = decoded.get(i, last)
            if last is None:
                raise ValueError(f"frame {i} not found")
            decoded[i] = last
        return np.stack([decoded[int(i)] for i in indices])


@contextlib.contextmanager
def native_messages_to_log() -> Iterator[None]:
    """Inside: what C libraries write to file descriptor 2 (decord's `ERROR opening`,
    FFmpeg's `moov atom not found`) is caught instead of printed, and logged at DEBUG
    afterwards (`-v` shows it); Python's own stderr (progress bars, logging through
    `sys.stderr`) still reaches the terminal. The verdicts those messages explain are in
    the caller's results."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (an embedded interpreter)
        yield
        return
    python_stderr = sys.stderr
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, errors="backslashreplace")
        try:
            yield
        finally:
            sys.stderr.close()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip():
                    log.debug("decoder said: %s", line.strip())


@cache
def decord_installed() -> bool:
    """decord publishes wheels for x86-64 only (Linux, macOS, Windows); elsewhere (ARM
    Linux, Apple Silicon) vidbench installs without it and decodes with PyAV."""
    installed = importlib.util.find_spec("decord") is not None
    if not installed:
        log.info("decord is not installed on this platform; decoding with PyAV")
    return installed


def open_video(path: str | Path, backend: str = "decord", num_threads: int = 1) -> Video:
    """Open `path`; raise DecodeError for a missing, empty or undecodable file, or one
    whose frame rate or length is absurd (`MIN_FPS`, `MAX_FPS`, `MAX_SECONDS`). `decord`
    reads with PyAV where decord is not installed (`decord_installed`)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "decord" and not decord_installed():
        backend = "pyav"
    if not os.path.exists(path):
        raise DecodeError(path, "file not found")
    if os.path.isdir(path):
        raise DecodeError(path, "a folder, not a video file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DecodeError(path, "file is empty (0 bytes)")
    try:
        video = (DecordVideo if backend == "decord" else PyAVVideo)(path, num_threads)
    except Exception as error:  # decoders raise their own types for broken input
        video = None
        if backend == "decord":  # decord cannot take every file (or non-UTF-8 names): PyAV
            try:
                video = PyAVVideo(path, num_threads)
                log.info("decord cannot open %s (%s); reading it with PyAV", path, error)
            except Exception:
                pass
        if video is None:
            raise DecodeError(path, f"cannot open ({type(error).__name__}: {error})") from error
    if video.num_frames <= 0:
        raise DecodeError(path, "video has no frames")
    if not math.isfinite(video.fps) or not MIN_FPS <= video.fps <= MAX_FPS:
        raise DecodeError(
            path,
            f"video reports {video.fps:g} fps; frame rates outside {MIN_FPS:g}-{MAX_FPS:g} "
            "are refused (re-timing it would expand or drop frames absurdly)",
        )
    if video.num_frames / video.fps > MAX_SECONDS:
        raise DecodeError(
            path,
            f"video reports {video.num_frames:,} frames at {video.fps:g} fps "
            f"({video.num_frames / video.fps / 3600:,.1f} h); over {MAX_SECONDS // 3600} h "
            "is refused",
        )
    return video


def read_frames(video: Video, indices: np.ndarray) -> np.ndarray:
    """`video.get_frames(indices)` with decoder errors turned into DecodeError."""
    try:
        frames = video.get_frames(indices)
    except Exception as error:
        raise DecodeError(
            getattr(video, "path", "?"), f"decode failed ({type(error).__name__}: {error})"
        ) from error
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3:
        raise DecodeError(getattr(video, "path", "?"), f"decoder returned shape {frames.shape}")
    return frames


def call_with_timeout(fn: Callable[[], T], timeout: float | None, path: str | Path) -> T:
    """Run the decode `fn`, or raise DecodeError naming `path` after `timeout` seconds."""
    try:
        return run_bounded(fn, timeout, "vidbench-decode")
    except TimeoutError:
        raise DecodeError(path, f"{TIMED_OUT} after {timeout:g} s") from None
