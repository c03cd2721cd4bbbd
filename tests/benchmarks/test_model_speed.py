"""Forward and training-step clips/s per architecture at its paper input size.

Run separately from the tests:  pytest -m speed tests/benchmarks/test_model_speed.py -s
On a GPU: bf16 autocast and channels_last_3d, batch 8; on the CPU: float32, batch 2.
Every timing follows warm-up and ends with a device synchronisation. Each row also gives
multiply-adds per clip (models.costs), so achieved TFLOP/s = clips/s x 2 x GMACs / 1000.
Set VIDBENCH_THROUGHPUT_OUT=FILE to append the rows to FILE as JSON lines.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

from models import create_model
from models.costs import count_macs, example_inputs

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


def synchronise() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> float:
    """Seconds per call of `fn`, after one warm-up call, synchronised."""
    fn()
    synchronise()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronise()
    return (time.perf_counter() - started) / repeats


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_and_training_step_clips_per_second(benchmark, variant):
    name, options = variant.split("_flow")[0], VARIANTS[variant]
    model = create_model(name, 400, **options).to(DEVICE)
    inputs = example_inputs(model.input_spec, BATCH, DEVICE)
    if DEVICE.type == "cuda":
        model = (
            model.to(memory_format=torch.channels_last_3d)
            if name in ("i3d", "c3d", "r3d")
            else model
        )
        inputs = {k: v.contiguous(memory_format=torch.channels_last_3d) for k, v in inputs.items()}
    autocast = torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=DEVICE.type == "cuda")
    labels = torch.zeros(BATCH, dtype=torch.long, device=DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def forward():
        with torch.no_grad(), autocast:
            model(inputs)

    def train_step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    repeats = 10 if DEVICE.type == "cuda" else 1
    model.train()
    train_seconds = timed(train_step, repeats)
    model.eval()
    benchmark.pedantic(forward, rounds=repeats, warmup_rounds=1)
    synchronise()
    forward_seconds = benchmark.stats.stats.min
    macs, spec = count_macs(name, 400, **options)
    row = {
        "arch": variant,
        "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu",
        "precision": "bf16-mixed" if DEVICE.type == "cuda" else "32",
        "batch": BATCH,
        "input": f"{'+'.join(spec.modalities)} {spec.clip_len}x{spec.crop_size}x{spec.crop_size}",
        "gmacs_per_clip": round(macs / 1e9, 2),
        "forward_clips_per_s": round(BATCH / forward_seconds, 2),
        "train_clips_per_s": round(BATCH / train_seconds, 2),
        "forward_tflops": round(BATCH / forward_seconds * 2 * macs / 1e12, 2),
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
    }
    benchmark.extra_info.update(row)
    print(f"\n{json.dumps(row)}")
    if os.environ.get("VIDBENCH_THROUGHPUT_OUT"):
        with open(os.environ["VIDBENCH_THROUGHPUT_OUT"], "a") as handle:
            handle.write(json.dumps(row) + "\n")
    assert row["forward_clips_per_s"] > 0 and row["train_clips_per_s"] > 0
