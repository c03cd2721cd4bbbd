"""Data-path speed: the decord clip dataset vs the same dataset on PyAV, and vs decode alone.

Run separately from the tests:  pytest -m speed tests/benchmarks
Files: UCF-101-like MPEG-4 .avi at 320x240 and Kinetics-like H.264 .mp4 at 340x256, 25 fps,
160 frames (the synthetic-motion textures). Training-style clips
(random start, shorter side 256, random 224 crop, flip, float in [-1, 1]), one process
and one thread, as in one DataLoader worker. Goals (issue 2): decord path at least 1.5x
the PyAV path; at most 25% slower than decoding the same frames alone.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import pytest
import torch

from datasets.annotations import load_annotations
from datasets.clip_dataset import VideoClipDataset
from datasets.decoders import open_video, read_frames
from datasets.sampling import ClipSampler
from datasets.synthetic import SynthConfig, make_synthetic_dataset, write_video
from datasets.transforms import ClipTransform

pytestmark = pytest.mark.speed
log = logging.getLogger(__name__)


FORMATS = {"ucf101-mpeg4-320x240": (240, None), "kinetics-h264-340x256": (256, ".mp4")}


@pytest.fixture(scope="module", params=list(FORMATS))
def videos(request, tmp_path_factory):
    size, recode_to = FORMATS[request.param]
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


def best_rate(fn, items: int, rounds: int = 3) -> float:
    """Items per second of the fastest of `rounds` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return items / min(times)


@pytest.mark.parametrize("clip_len", [16, 64])
def test_decord_dataset_vs_pyav_and_decode_only(benchmark, videos, clip_len):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sampler = ClipSampler("train", clip_len=clip_len)
    transform = ClipTransform(256, 224, "random", flip=True)
    datasets = {
        name: VideoClipDataset(videos, sampler, transform, decoder=name, substitute=True)
        for name in ("decord", "pyav")
    }

    def read_all(dataset):
        return lambda: [dataset[i]["rgb"] for i in range(len(dataset))]

    def decode_only():
        for path, _ in videos:
            video = open_video(path, "decord")
            read_frames(video, sampler(video.num_frames, video.fps))

    n = len(videos)
    torch.manual_seed(0)
    rates = {
        "decord": best_rate(read_all(datasets["decord"]), n),
        "pyav": best_rate(read_all(datasets["pyav"]), n),
        "decode_only": best_rate(decode_only, n),
    }
    benchmark.pedantic(read_all(datasets["decord"]), rounds=3, warmup_rounds=1)
    speedup = rates["decord"] / rates["pyav"]
    overhead = rates["decode_only"] / rates["decord"] - 1
    benchmark.extra_info.update({f"{k}_clips_per_s": round(v, 1) for k, v in rates.items()})
    benchmark.extra_info.update(
        speedup_vs_pyav=round(speedup, 2), overhead_vs_decode_only=round(overhead, 3)
    )
    print(
        f"\n{videos[0][0].suffix} {clip_len}-frame clips/s: decord dataset {rates['decord']:.1f}, "
        f"PyAV dataset {rates['pyav']:.1f}, "
        f"decode only {rates['decode_only']:.1f}; speed-up {speedup:.2f}x, overhead {overhead:+.1%}"
    )
    assert speedup >= 1.5, f"decord path only {speedup:.2f}x the PyAV path (goal 1.5x)"
    assert overhead <= 0.25, (
        f"decord path {overhead:.1%} slower than decode-only (goal at most 25%)"
    )
