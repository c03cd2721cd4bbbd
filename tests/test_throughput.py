"""`vidbench throughput` as a matrix: architectures x precisions x memory formats x
compiled, one run, written as CSV named by device, precisions and torch version; on the
CPU at tiny sizes (torch.compile's CPU compiler is present where the tests run)."""

from __future__ import annotations

import csv

from vidbench.bench.cli import main
from vidbench.bench.commands.models import MATRIX_COLUMNS

# a tiny network, timed briefly
TINY = ["--width", "0.125", "--input", "4x16", "--batch", "2", "--runs", "1", "--min-time", "0"]


def test_one_run_gives_the_precision_memory_format_and_compile_matrix(tmp_path, capsys):
    matrix = ["--precision", "32-true", "bf16-mixed", "--channels-last"]
    args = ["throughput", "--arch", "c3d", "frame_avg", *TINY, *matrix, "--out", str(tmp_path)]
    assert main(args) == 0
    (path,) = tmp_path.glob("throughput-*.csv")
    assert path.name.startswith("throughput-") and "-32-true-bf16-mixed-torch" in path.name
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == MATRIX_COLUMNS
    cells = {(r["arch"], r["precision"], r["memory_format"], r["compiled"]) for r in rows}
    assert cells == {
        (arch, precision, memory, "False")
        for arch in ("c3d", "frame_avg")
        for precision in ("32-true", "bf16-mixed")
        for memory in ("contiguous", "channels_last_3d")
    }
    for row in rows:
        assert row["input"] == "4x16" and row["device_type"] == "cpu"
        assert float(row["infer_clips_per_s"]) > 0 and float(row["train_clips_per_s"]) > 0
    assert "c3d" in capsys.readouterr().out


def test_a_compiled_model_is_measured_after_it_compiled(tmp_path, capsys):
    args = ["throughput", "--arch", "c3d", *TINY, "--compile", "--json"]
    assert main(args) == 0
    import json

    figures = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [f["compiled"] for f in figures] == [False, True]
    assert all(f["infer_clips_per_s"] > 0 and f["train_clips_per_s"] > 0 for f in figures)
    assert figures[0]["params"] == figures[1]["params"]  # the same network, compiled
