"""Forward and training-step clips/s per architecture at its paper input size.

Run separately from the tests:  pytest -m speed tests/benchmarks/test_model_speed.py -s
On a GPU: bf16 autocast (and channels_last_3d for the training step), batch 8; on the
CPU: float32, batch 2.
Every timing follows warm-up and ends with a device synchronisation. Each row also gives
multiply-adds per clip (models.costs), so achieved TFLOP/s = clips/s x 2 x GMACs / 1000.
Set VIDBENCH_THROUGHPUT_OUT=FILE to append the rows to FILE as JSON lines.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from vidbench.bench.throughput import default_precision, measure, synchronise
from vidbench.models import create_model
from vidbench.models.costs import count_macs, example_inputs

pytestmark = pytest.mark.speed
VARIANTS = {
    "i3d": {},
    "i3d_flow": {"modalities": ("flow",)},
    "c3d": {},
    "r3d": {},
    "convnet_lstm": {},
    "two_stream": {},
    "fused_two_stream": {},
    "frame_avg": {},
}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
BATCH = 8 if DEVICE.type == "cuda" else 2  # C3D's BatchNorm1d needs 2 to train
PRECISION = default_precision(DEVICE)  # bf16-mixed on a GPU, 32-true on the CPU


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_and_training_step_clips_per_second(benchmark, variant):
    name, options = variant.split("_flow")[0], VARIANTS[variant]
    model = create_model(name, 400, **options)
    inputs = example_inputs(model.input_spec, BATCH)
    repeats = 10 if DEVICE.type == "cuda" else 1
    # training step (and the cost setting: device, precision, peak memory) as the runner
    # measures it, then the forward pass again under pytest-benchmark
    costs = measure(model, inputs, DEVICE, PRECISION, repeats)
    model = model.to(DEVICE).eval()
    inputs = {k: v.to(DEVICE) for k, v in inputs.items()}
    autocast = torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=DEVICE.type == "cuda")

    def forward():
        with torch.no_grad(), autocast:
            model(inputs)
        synchronise(DEVICE)

    benchmark.pedantic(forward, rounds=repeats, warmup_rounds=1)
    forward_seconds = benchmark.stats.stats.min
    macs, spec = count_macs(name, 400, **options)
    row = {
        "arch": variant,
        "device": costs["device"] if DEVICE.type == "cuda" else "cpu",
        "precision": PRECISION,
        "batch": BATCH,
        "input": f"{'+'.join(spec.modalities)} {spec.clip_len}x{spec.crop_size}x{spec.crop_size}",
        "gmacs_per_clip": round(macs / 1e9, 2),
        "forward_clips_per_s": round(BATCH / forward_seconds, 2),
        "train_clips_per_s": round(costs["train_clips_per_s"], 2),
        "forward_tflops": round(BATCH / forward_seconds * 2 * macs / 1e12, 2),
        "peak_memory_mb": round(costs["peak_memory_mb"]),
        "torch": costs["torch"],
        "cudnn": costs.get("cudnn"),
    }
    benchmark.extra_info.update(row)
    print(f"\n{json.dumps(row)}")
    if os.environ.get("VIDBENCH_THROUGHPUT_OUT"):
        with open(os.environ["VIDBENCH_THROUGHPUT_OUT"], "a") as handle:
            handle.write(json.dumps(row) + "\n")
    assert row["forward_clips_per_s"] > 0 and row["train_clips_per_s"] > 0
