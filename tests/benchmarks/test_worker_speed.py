"""How many DataLoader workers one GPU needs: clips/s one worker sustains per architecture at
its paper input, beside an estimate of the model's training clips/s on an H100.

Run separately from the tests:  pytest -m speed tests/benchmarks/test_worker_speed.py -s
Files: the two benchmark families (`bench_videos`), with their optical flow stored as vidbench
stores it (lossless H.264; Farneback, since the extractor does not change what is read).
One process and one thread, as in one worker; training samples (random clip and crop, flip
drawn, uint8); the figure is 8 clips a round, median of 5 rounds after 1 warm-up.
No GPU: the H100 figure is an estimate, training FLOPs (3 x forward, 2 FLOPs a
multiply-add) at 40% of the H100 SXM's dense bf16 peak (989.4 TFLOP/s).
Set VIDBENCH_WORKER_OUT=FILE to append the rows to FILE as JSON lines.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time

import cv2
import pytest
import torch

from vidbench.datasets.clip_dataset import VideoClipDataset
from vidbench.datasets.flow import FlowConfig, extract_flow
from vidbench.models.costs import count_macs
from vidbench.models.registry import default_input_spec

pytestmark = pytest.mark.speed

H100_BF16_DENSE = 989.4e12  # FLOP/s, SXM, without sparsity
UTILISATION = 0.4
# (architecture, constructor options): each at the input the paper trained it on
ARCHITECTURES = [
    ("c3d", {}),
    ("convnet_lstm", {}),
    ("two_stream", {}),
    ("fused_two_stream", {}),
    ("i3d", {"modalities": ("rgb",)}),
    ("i3d", {"modalities": ("flow",)}),
    ("i3d", {"modalities": ("rgb", "flow")}),
]
FLOW = FlowConfig("farneback")


@pytest.fixture(scope="module")
def flows(bench_videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow")
    paths = []
    for path, _ in bench_videos:
        target = out / f"{path.stem}.mp4"
        extract_flow(path, target, FLOW)
        paths.append(target)
    return paths


def h100_training_clips_per_s(macs: int) -> float:
    """An estimate: 6 FLOPs per multiply-add per training clip at 40% of the bf16 peak."""
    return UTILISATION * H100_BF16_DENSE / (6 * macs)


@pytest.mark.parametrize(("arch", "options"), ARCHITECTURES, ids=lambda v: str(v))
def test_clips_one_worker_sustains(bench_videos, flows, arch, options):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    spec = default_input_spec(arch, **options).replace(flow_algorithm=FLOW.algorithm)
    dataset = VideoClipDataset(
        bench_videos,
        spec.sampler("train"),
        spec.transform("train"),
        modalities=spec.modalities,
        substitute=True,
        flow_paths=flows if "flow" in spec.modalities else None,
        flow_config=spec.flow_config,
        flow_stack=spec.flow_stack,
    )
    seconds = []
    for round_ in range(6):
        torch.manual_seed(round_)
        started = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        if round_:
            seconds.append(time.perf_counter() - started)
    worker = len(dataset) / statistics.median(seconds)
    macs, _ = count_macs(arch, 400, **options)
    gpu = h100_training_clips_per_s(macs)
    name = f"{arch}[{'+'.join(spec.modalities)}]" if arch == "i3d" else arch
    row = {
        "arch": name,
        "files": bench_videos[0][0].suffix,
        "input": f"{'+'.join(spec.modalities)} {spec.clip_len}x{spec.crop_size}"
        + (f", flow stack {spec.flow_stack}" if "flow" in spec.modalities else ""),
        "worker_clips_per_s": round(worker, 1),
        "worker_round_s": [round(min(seconds), 3), round(max(seconds), 3)],
        "gmacs_per_clip": round(macs / 1e9, 2),
        "h100_bf16_train_clips_per_s_estimate": round(gpu),
        "workers_per_gpu": math.ceil(gpu / worker),
    }
    print(f"\n{json.dumps(row)}")
    if os.environ.get("VIDBENCH_WORKER_OUT"):
        with open(os.environ["VIDBENCH_WORKER_OUT"], "a") as handle:
            handle.write(json.dumps(row) + "\n")
    sample, crop = dataset[0], spec.crop_size
    if "rgb" in spec.modalities:
        assert sample["rgb"].shape == (spec.clip_len, crop, crop, 3)
    if "flow" in spec.modalities:
        assert sample["flow"].shape == (spec.clip_len * spec.flow_stack, crop, crop, 2)
    assert all(sample[m].dtype == torch.uint8 for m in spec.modalities)
