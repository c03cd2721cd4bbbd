"""Cost figures a record can be trusted for: each measurement's own peak memory, the
device's model name, versions that exist."""

from __future__ import annotations

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
    large = measure(create_model("c3d", 4, width=0.25), {"rgb": torch.randn(8, 3, 16, 112, 112)},
                    CPU, repeats=1)  # fmt: skip
    small = measure(create_model("c3d", 4, width=0.125), {"rgb": torch.randn(2, 3, 8, 32, 32)},
                    CPU, repeats=1)  # fmt: skip
    assert large["peak_memory_kind"] == small["peak_memory_kind"] == "rss_peak"
    assert small["peak_memory_mb"] < large["peak_memory_mb"] - 200


def test_the_device_is_named_and_no_version_is_none():
    info = device_info(CPU)
    assert info["device"] == cpu_name() and info["device"] not in ("", "x86_64", "aarch64")
    assert "cudnn" not in info and all(value is not None for value in info.values())
