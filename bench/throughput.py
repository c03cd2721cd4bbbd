"""Measured cost of a network on the current device: clips/s, peak memory, and the setting.

Every timing follows warm-up and ends with a device synchronisation. On a GPU the model
runs under bf16 autocast (precision `bf16-mixed`) with channels_last_3d for 3D networks.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vidbench.models.costs import count_parameters

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def default_precision(device: torch.device) -> str:
    return "bf16-mixed" if device.type == "cuda" else "32-true"


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Seconds per call of `fn`, after two warm-up calls, synchronised."""
    for _ in range(2):
        fn()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronise(device)
    return (time.perf_counter() - started) / repeats


def device_info(device: torch.device) -> dict[str, str | None]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "device": name or platform.machine(),
        "device_type": device.type,
        "torch": torch.__version__,
        "cudnn": str(torch.backends.cudnn.version()) if device.type == "cuda" else None,
        "cpu_threads": str(torch.get_num_threads()),
    }


def measure(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    device: torch.device,
    precision: str | None = None,
    repeats: int = 5,
    train: bool = True,
) -> dict[str, float | str | int | None]:
    """Training-step and inference clips/s of `model` on `inputs` (a batch dict, B clips).

    The training step is forward, cross-entropy, backward and an SGD step. The model's
    weights are changed by it: pass a copy when they matter. Peak memory: CUDA allocator
    peak on a GPU, the process's maximum resident set on the CPU (`peak_memory_kind`).
    """
    precision = precision or default_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    model = model.to(device)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if device.type == "cuda" and all(v.dim() == 5 for v in inputs.values()):
        model = model.to(memory_format=torch.channels_last_3d)
        inputs = {k: v.contiguous(memory_format=torch.channels_last_3d) for k, v in inputs.items()}
    batch = len(next(iter(inputs.values())))
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def infer() -> None:
        with torch.no_grad(), autocast:
            model(inputs)

    result: dict[str, float | str | int | None] = {"batch_size": batch, "precision": precision}
    model.eval()
    result["infer_clips_per_s"] = batch / seconds_per_call(infer, repeats, device)
    result["train_clips_per_s"] = None
    if train:
        labels = torch.zeros(batch, dtype=torch.long, device=device)
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def train_step() -> None:
            with autocast:
                loss = F.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        model.train()
        result["train_clips_per_s"] = batch / seconds_per_call(train_step, repeats, device)
    if device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["peak_memory_kind"] = "cuda_allocated"
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, B on macOS
        result["peak_memory_mb"] = rss / (2**20 if sys.platform == "darwin" else 2**10)
        result["peak_memory_kind"] = "process_max_rss"
    result["params"] = count_parameters(model)
    return {**result, **device_info(device)}
