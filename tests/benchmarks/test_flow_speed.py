"""Flow speed and storage: extraction overhead over TV-L1 alone, codec figures, loading speed.

Run separately from the tests:  pytest -m speed tests/benchmarks -s
Videos: the synthetic-motion textures at UCF-101 size (320x240, 25 fps), one thread.
Goal (issue 3): the extraction pipeline at most 15% slower than OpenCV's TV-L1 alone.
"""

from __future__ import annotations

import itertools
import time

import av
import cv2
import numpy as np
import pytest
import torch

from vidbench.datasets.annotations import VideoRecord
from vidbench.datasets.clip_dataset import VideoClipDataset
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.flow import FlowConfig, FlowEstimator, dequantise, extract_flow, quantise
from vidbench.datasets.sampling import ClipSampler
from vidbench.datasets.synthetic import random_texture, render_motion, write_video
from vidbench.datasets.transforms import ClipTransform

pytestmark = pytest.mark.speed


def ucf_like(path, motion: str, frames: int, seed: int = 0):
    texture = random_texture(np.random.default_rng(seed), 900, 900)
    write_video(path, render_motion(texture, motion, frames, 240, 320, 2.0, (0.0, 0.0)), 25)
    return path


def test_extraction_pipeline_vs_tvl1_alone(benchmark, tmp_path):
    cv2.setNumThreads(1)
    video = ucf_like(tmp_path / "v.avi", "RotateClockwise", 9)
    frames = read_frames(open_video(video), np.arange(9))
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    estimator = FlowEstimator(FlowConfig("tvl1"))
    estimator(grey[0], grey[1])  # warm-up

    started = time.perf_counter()
    for a, b in itertools.pairwise(grey):
        estimator(a, b)
    alone = 8 / (time.perf_counter() - started)
    result = benchmark.pedantic(
        lambda: extract_flow(video, tmp_path / "flow.mp4", FlowConfig("tvl1")),
        rounds=1,
        iterations=1,
    )
    pipeline = result["flow_frames"] / benchmark.stats.stats.min
    overhead = alone / pipeline - 1
    benchmark.extra_info.update(
        tvl1_pairs_per_s=round(alone, 2),
        pipeline_pairs_per_s=round(pipeline, 2),
        overhead=round(overhead, 3),
    )
    print(
        f"\nTV-L1 320x240: alone {alone:.2f} pairs/s, whole pipeline {pipeline:.2f} pairs/s, "
        f"overhead {overhead:+.1%}"
    )
    assert overhead < 0.15, f"extraction pipeline {overhead:.1%} over TV-L1 alone (goal < 15%)"


def test_storage_codecs(tmp_path):
    """Round-trip error, bytes per frame and decord decode speed of candidate codecs."""
    video = ucf_like(tmp_path / "v.avi", "ZoomIn", 26, seed=1)
    frames = read_frames(open_video(video), np.arange(26))
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    estimator = FlowEstimator(FlowConfig("farneback"))
    flow = np.stack([estimator(a, b) for a, b in itertools.pairwise(grey)])
    q = quantise(flow, 20.0)
    truth = np.clip(flow, -20, 20)
    rows = []
    for codec, name, options in [
        ("libx264rgb", "h264rgb.mp4", {"qp": "0", "preset": "veryfast", "g": "25"}),
        ("ffv1", "ffv1.mkv", {}),
    ]:
        path = tmp_path / name
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=25)
            stream.width, stream.height = 320, 240
            stream.pix_fmt = "rgb24" if codec == "libx264rgb" else "bgr0"
            stream.options = options
            for field in q:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(field, format="rgb24")))
            container.mux(stream.encode())
        stored = open_video(path)
        started = time.perf_counter()
        decoded = read_frames(stored, np.arange(stored.num_frames))
        speed = stored.num_frames / (time.perf_counter() - started)
        error = np.abs(dequantise(decoded) * 20 - truth)
        rows.append((codec, path.stat().st_size / len(q) / 1024, error.max(), error.mean(), speed))
        assert error.max() <= 20 / 254 + 1e-6
    print()
    for codec, kib, worst, mean, speed in rows:
        print(
            f"{codec}: {kib:.1f} KiB/frame, error max {worst:.3f} px mean {mean:.3f} px, "
            f"decode {speed:.0f} frames/s"
        )


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_flow_clips_vs_rgb_clips(benchmark, tmp_path, modality):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    videos, flows = [], []
    for i, motion in enumerate(["MoveRight", "MoveUp", "RotateClockwise", "ZoomOut"]):
        video = ucf_like(tmp_path / f"{motion}.avi", motion, 60, seed=i)
        extract_flow(video, tmp_path / f"{motion}.mp4", FlowConfig("farneback"))
        videos.append((video, VideoRecord(video.name, i, video.stem)))
        flows.append(tmp_path / f"{motion}.mp4")
    dataset = VideoClipDataset(
        videos,
        ClipSampler("train", 16),
        ClipTransform(256, 224, "random", flip=True),
        modalities=(modality,),
        flow_paths=flows,
        flow_config=FlowConfig("farneback"),
    )
    samples = benchmark.pedantic(
        lambda: [dataset[i] for i in range(len(dataset))], rounds=5, warmup_rounds=1
    )
    channels = {"rgb": 3, "flow": 2}[modality]
    assert [tuple(s[modality].shape) for s in samples] == [(16, 224, 224, channels)] * len(videos)
    rate = len(dataset) / benchmark.stats.stats.min
    benchmark.extra_info["clips_per_s"] = round(rate, 1)
    print(f"\n{modality} 16-frame clips through the dataset: {rate:.1f} clips/s")
