"""Cost figures a record can be trusted for: each measurement's own peak memory, the
device's model name, versions that exist."""

from __future__ import annotations

import statistics
import sys

import pytest
import torch

from vidbench.bench.throughput import cpu_name, device_info, measure
from vidbench.models import create_model

CPU = torch.device("cpu")


@pytest.mark.skipif(sys.platform != "linux", reason="the resident-set peak resets on Linux only")
def test_each_measurement_reports_its_own_peak_memory():
    """A small model measured after a large one reports its own (smaller) peak, not the
    process's lifetime peak (which made every cell of a sweep report the same figure)."""
    large = measure(
        create_model("c3d", 4, width=0.25),
        {"rgb": torch.randn(8, 3, 16, 112, 112)},
        CPU,
        min_runs=1,
        min_run_time=0,
    )
    small = measure(
        create_model("c3d", 4, width=0.125),
        {"rgb": torch.randn(2, 3, 8, 32, 32)},
        CPU,
        min_runs=1,
        min_run_time=0,
    )
    assert large["peak_memory_kind"] == small["peak_memory_kind"] == "rss_peak"
    assert small["peak_memory_mb"] < large["peak_memory_mb"] - 200


def test_the_device_is_named_and_no_version_is_none():
    info = device_info(CPU)
    assert info["device"] == cpu_name() and info["device"] not in ("", "x86_64", "aarch64")
    assert "cudnn" not in info and all(value is not None for value in info.values())


def test_a_two_stream_network_is_not_faster_than_its_slower_stream():
    """The rgb+flow network runs both streams, so its clips/s is at most its slower
    stream's (it was once timed 18x faster than its flow stream over 5 batches); each
    figure is a median over timed blocks with its interquartile range."""
    models = {}
    for modalities in (("rgb",), ("flow",), ("rgb", "flow")):
        torch.manual_seed(0)
        model = create_model("two_stream", 8, modalities=modalities, width=0.25)
        inputs = {m: torch.randn(4, 3 if m == "rgb" else 20, 1, 64, 64) for m in modalities}
        models["+".join(modalities)] = (model, inputs)
    # measured in turns, so that a busy spell of the host falls on all three alike
    rounds = {name: [] for name in models}
    for _ in range(3):
        for name, (model, inputs) in models.items():
            costs = measure(model, inputs, CPU, min_runs=7, train=False, min_run_time=0.1)
            assert costs["infer_timed_runs"] >= 7 and costs["infer_clips_per_s_iqr"] >= 0
            rounds[name].append(costs["infer_clips_per_s"])
    speeds = {name: statistics.median(values) for name, values in rounds.items()}
    # the fused network does the work of both (about 1/(1/rgb + 1/flow)); 1.2 is headroom
    # for a busy host, far below the 2x that doing both streams' work costs
    assert speeds["rgb+flow"] <= 1.2 * min(speeds["rgb"], speeds["flow"]), speeds
