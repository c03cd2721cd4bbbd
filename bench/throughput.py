"""Measured cost of a network on the current device: clips/s, peak memory, and the setting.

Timings are `torch.utils.benchmark`'s `blocked_autorange` (warm-up, blocks of calls sized so
the timer's overhead is negligible, a device synchronisation around each block) with this
process's thread count; a figure is the median over blocks and its spread the interquartile
range. On a GPU the model runs under bf16 autocast (precision `bf16-mixed`) with
channels_last_3d for 3D networks.
"""

from __future__ import annotations

import logging
import platform
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vidbench.models.costs import count_parameters

log = logging.getLogger(__name__)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
# Measured on the 2-core x86 development CPU, C3D at width 0.25, batch 4, 16x56x56, three
# runs each: a training step in float16 (autocast or half weights) 2.1 s, in 32-true 0.10 s.
SLOW_FLOAT16_ON_CPU = (
    "on the CPU is slow: a C3D training step took 20x as long as in 32-true on a 2-core x86 "
    "CPU (float16 arithmetic there); use 32-true or bf16-mixed on the CPU"
)


def default_precision(device: torch.device) -> str:
    return "bf16-mixed" if device.type == "cuda" else "32-true"


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timing(NamedTuple):
    """Seconds per call: the median over timed blocks and its quartiles."""

    median: float
    q1: float
    q3: float
    runs: int  # timed blocks
    calls: int  # calls in all


def time_calls(
    fn: Callable[[], object], min_runs: int = 5, min_run_time: float = 0.5, cuda: bool = False
) -> Timing:
    """Seconds per call of `fn` by `torch.utils.benchmark.Timer.blocked_autorange`, with at
    least `min_runs` timed blocks and `min_run_time` seconds, at this process's threads.
    `cuda`: the clock synchronises the accelerator (torch's default clock); otherwise a
    plain one, whose lower overhead keeps a block at one call for slow calls on the CPU
    (with torch's, a 0.2 s call was timed in blocks of 10)."""
    from torch.utils import benchmark

    clock = benchmark.utils.timer.timer if cuda else time.perf_counter
    timer = benchmark.Timer(
        "fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), timer=clock
    )
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    times, number = list(measurement.times), measurement.number_per_run
    while len(times) < min_runs:  # more blocks of the same size, without re-warming
        started = clock()
        for _ in range(number):
            fn()
        times.append((clock() - started) / number)
    q1, median, q3 = statistics.quantiles(times, n=4) if len(times) > 1 else times * 3
    return Timing(median, q1, q3, len(times), len(times) * number)


@cache
def cpu_name() -> str:
    """The CPU's model name ("Intel(R) Xeon(R) Platinum 8480+"), by py-cpuinfo."""
    import cpuinfo

    try:
        return cpuinfo.get_cpu_info().get("brand_raw") or platform.machine()
    except Exception:  # py-cpuinfo probes the system several ways; any may fail
        return platform.processor() or platform.machine()


def device_info(device: torch.device) -> dict[str, str | None]:
    """The device's model name, type, thread count and versions (cuDNN on CUDA only)."""
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "device_type": device.type,
        "torch": torch.__version__,
        "cpu_threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        info["cudnn"] = str(torch.backends.cudnn.version())
    return info


CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> str:
    """Start a peak-memory measurement; returns what `peak_memory_mb` will measure:
    `cuda_allocated` (the allocator's peak), `rss_peak` (Linux: the resident set's high
    water mark, reset here) or `process_max_rss` (elsewhere: the process's lifetime peak)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "cuda_allocated"
    try:
        CLEAR_REFS.write_text("5")  # Linux 4.0+: reset VmHWM to the current RSS
        return "rss_peak"
    except OSError:
        return "process_max_rss"


def peak_memory_mb(device: torch.device, kind: str) -> float:
    """Peak memory in MiB since `reset_peak_memory` returned `kind`."""
    if kind == "cuda_allocated":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if kind == "rss_peak":
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 2**10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, B on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def measure(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    device: torch.device,
    precision: str | None = None,
    min_runs: int = 5,
    train: bool = True,
    min_run_time: float = 0.5,
    channels_last: bool | None = None,
    compile: bool = False,
) -> dict[str, float | str | int | None]:
    """Training-step and inference clips/s of `model` on `inputs` (a batch dict, B clips):
    medians over at least `min_runs` timed blocks and `min_run_time` seconds per figure, with
    their interquartile ranges (`*_clips_per_s_iqr`, clips/s) and the blocks timed.

    The training step is forward, cross-entropy, backward and an SGD step. The model's
    weights are changed by it: pass a copy when they matter. Peak memory over these steps
    (`peak_memory_kind`): the CUDA allocator's on a GPU; on the CPU the process's resident
    set at its highest (everything the process holds, so it compares models measured in
    one process, not the model's own footprint). `channels_last`: 3D inputs and weights in
    channels_last_3d (None: on a GPU only); `compile`: the model through `torch.compile`,
    compiled by two untimed calls (each of inference and training) before timing.
    """
    precision = precision or default_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "16-mixed" and device.type == "cpu":
        log.warning("precision 16-mixed %s", SLOW_FLOAT16_ON_CPU)
    model = model.to(device)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if channels_last is None:
        channels_last = device.type == "cuda"
    channels_last = channels_last and all(v.dim() == 5 for v in inputs.values())
    if channels_last:  # the 3D weights (a 2D network's 4-D weights stay as they are)
        for parameter in model.parameters():
            if parameter.dim() == 5:
                parameter.data = parameter.data.contiguous(memory_format=torch.channels_last_3d)
        inputs = {k: v.contiguous(memory_format=torch.channels_last_3d) for k, v in inputs.items()}
    params = count_parameters(model)
    if compile:
        model = torch.compile(model)
    batch = len(next(iter(inputs.values())))
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    memory_kind = reset_peak_memory(device)

    def infer() -> None:
        with torch.no_grad(), autocast:
            model(inputs)

    result: dict[str, float | str | int | None] = {
        "batch_size": batch, "precision": precision, "compiled": compile,
        "memory_format": "channels_last_3d" if channels_last else "contiguous",
    }  # fmt: skip

    def record(name: str, fn: Callable[[], object]) -> None:
        if compile:  # compiling (and recompiling for the second call's guards) is not timed
            fn()
            fn()
        timing = time_calls(fn, min_runs, min_run_time, cuda=device.type == "cuda")
        result[f"{name}_clips_per_s"] = batch / timing.median
        result[f"{name}_clips_per_s_iqr"] = batch / timing.q1 - batch / timing.q3
        result[f"{name}_timed_runs"] = timing.runs

    model.eval()
    record("infer", infer)
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
        record("train", train_step)
    result["peak_memory_mb"] = peak_memory_mb(device, memory_kind)
    result["peak_memory_kind"] = memory_kind
    result["params"] = params
    return {**result, **device_info(device)}


# Dense peak TFLOP/s of the GPUs a fraction of peak is given for: (bf16 tensor cores, TF32
# tensor cores, which PyTorch's cuDNN convolutions use for float32 by default), from
# NVIDIA's data sheets (without sparsity). Other devices: no fraction.
PEAK_TFLOPS = {"H100": (989.4, 494.7), "H200": (989.4, 494.7), "A100": (312.0, 156.0)}


def peak_tflops(device_name: str | None, precision: str) -> float | None:
    """The dense peak of `device_name` (as `device_info` names it) at `precision`."""
    for model, (bf16, tf32) in PEAK_TFLOPS.items():
        if device_name and model in device_name:
            return {"bf16-mixed": bf16, "32-true": tf32}.get(precision)
    return None


def peak_fractions(result: dict) -> dict[str, float | None]:
    """The fraction of the device's peak a measurement reached: FLOPs a clip (2 per
    multiply-add; a training step 3x the forward pass) x clips/s over the peak."""
    peak = peak_tflops(result.get("device"), str(result["precision"]))
    fractions: dict[str, float | None] = {}
    for name, passes in (("infer", 1), ("train", 3)):
        rate = result.get(f"{name}_clips_per_s")
        flops = 2 * passes * result["gmacs_per_clip"] * 1e9 * rate if rate else None
        fractions[f"{name}_peak_fraction"] = flops / (peak * 1e12) if flops and peak else None
    return fractions


def measure_matrix(
    archs: list[str],
    device: torch.device,
    precisions: list[str],
    channels_last: list[bool],
    compiled: list[bool],
    batch: int = 8,
    num_classes: int = 400,
    modality: str | None = None,
    width: float | None = None,
    geometry: tuple[int, int] | None = None,
    runs: int = 5,
    min_time: float = 1.0,
) -> Iterator[dict]:
    """`measure` for every architecture x precision x memory format x compiled setting,
    one figure at a time: each architecture at its paper input (or `geometry`, frames and
    crop) and `width`, with its GMACs a clip and the fraction of the device's peak."""
    import itertools

    from vidbench.models import create_model, model_options
    from vidbench.models.costs import example_inputs, macs_per_clip

    for arch in archs:
        options = {"modalities": tuple(modality.split("+"))} if modality else {}
        if width is not None and "width" in model_options(arch):
            options["width"] = width
        with torch.device("meta"):  # counted without allocating the network
            model = create_model(arch, num_classes, **options)
        spec = model.input_spec
        if geometry:
            spec = spec.replace(clip_len=geometry[0], crop_size=geometry[1])
        inputs = example_inputs(spec, batch)
        gmacs = macs_per_clip(model, example_inputs(spec, 1, "meta")) / 1e9
        for precision, last, compile_ in itertools.product(precisions, channels_last, compiled):
            log.info(
                "%s: %s, %s%s",
                arch,
                precision,
                "channels_last_3d" if last else "contiguous",
                ", compiled" if compile_ else "",
            )
            if compile_:  # each compiled model from a clean cache
                torch._dynamo.reset()
            result = measure(
                create_model(arch, num_classes, **options),
                inputs,
                device,
                precision,
                runs,
                train=batch > 1,
                min_run_time=min_time,
                channels_last=last,
                compile=compile_,
            )
            result.update(
                arch=arch,
                input=f"{spec.clip_len}x{spec.crop_size}",
                gmacs_per_clip=gmacs,
                torch=torch.__version__,
            )
            result.update(peak_fractions(result))
            yield result


def format_figure(result: dict) -> str:
    train = result["train_clips_per_s"]
    return (
        f"{result['arch']:<18}{result['input']:>8}  {result['precision']:<11}"
        f"{result['memory_format']:<17}{'compiled' if result['compiled'] else 'eager':<9}"
        f"infer {result['infer_clips_per_s']:8.2f} clips/s"
        + (f", train {train:8.2f} clips/s" if train else "")
    )


MATRIX_COLUMNS = [
    "arch",
    "input",
    "batch_size",
    "precision",
    "memory_format",
    "compiled",
    "infer_clips_per_s",
    "infer_clips_per_s_iqr",
    "train_clips_per_s",
    "train_clips_per_s_iqr",
    "gmacs_per_clip",
    "infer_peak_fraction",
    "train_peak_fraction",
    "params",
    "peak_memory_mb",
    "device",
    "device_type",
    "torch",
]


def write_matrix(rows: list[dict], folder: Path, device_type: str, precisions: list[str]) -> Path:
    """The matrix as CSV (`MATRIX_COLUMNS`), `<prefix>-<device>-<precisions>-torch<v>.csv`
    in `folder`, written atomically."""
    import csv
    import io

    from vidbench.datasets.files import atomic_write_text

    device = re.sub(r"[^A-Za-z0-9]+", "-", str(rows[0].get("device") or device_type)).strip("-")
    torch_version = re.sub(r"[^A-Za-z0-9.]+", "-", str(rows[0]["torch"]))
    name = f"throughput-{device}-{'-'.join(precisions)}-torch{torch_version}.csv"
    text = io.StringIO()
    writer = csv.DictWriter(text, MATRIX_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(folder / name, text.getvalue())
