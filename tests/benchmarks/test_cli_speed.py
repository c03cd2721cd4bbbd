"""How long a mistake takes to be answered: `vidbench run` with an unknown sweep, a
mistyped `--set` key and a missing dataset folder, each in a fresh process (interpreter
start included), as a user types it. Goal (issue 33): under 1 s and 150 MB each.

Run separately from the tests:  pytest -m speed tests/benchmarks/test_cli_speed.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

pytestmark = pytest.mark.speed

MISSING = ["datasets.synthetic.synthetic=null", "datasets.synthetic.videos=/nonexistent"]
MISTAKES = {
    "unknown sweep": ["run", "smoek"],
    "unknown key": ["run", "--set", "train.max_step=5"],
    "missing folder": ["run", "--set", *MISSING, "datasets.synthetic.annotations=/a"],
    "absent device": ["throughput", "--device", "cuda"],  # no GPU visible: see env below
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_is_answered_in_under_a_second(benchmark, mistake, tmp_path):
    command = [sys.executable, "-m", "vidbench", *MISTAKES[mistake]]

    def answer() -> int:
        hidden = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # as on a host without a GPU
        return subprocess.run(command, cwd=tmp_path, capture_output=True, env=hidden).returncode

    status = benchmark.pedantic(answer, rounds=5, warmup_rounds=1)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    benchmark.extra_info["peak_child_mb"] = round(peak_mb, 1)
    assert status == 2
    assert benchmark.stats["median"] < 1.0 and peak_mb < 150
