"""`vidbench throughput` as a matrix: architectures x precisions x memory formats x
compiled, one run, written as CSV named by device, precisions and torch version; on the
CPU at tiny sizes (torch.compile's CPU compiler is present where the tests run)."""

from __future__ import annotations

import csv

from vidbench.bench.cli import main
from vidbench.bench.throughput import MATRIX_COLUMNS

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


def test_the_fraction_of_peak_is_flops_per_second_over_the_devices_dense_peak():
    from vidbench.bench.throughput import peak_fractions

    row = {"device": "NVIDIA H100 80GB HBM3", "precision": "bf16-mixed", "gmacs_per_clip": 100.0}
    row |= {"infer_clips_per_s": 1000.0, "train_clips_per_s": 100.0}
    fractions = peak_fractions(row)
    # inference: 2 FLOPs a MAC x 100e9 x 1000/s = 200 TFLOP/s of 989.4; training 3x a pass
    assert abs(fractions["infer_peak_fraction"] - 200 / 989.4) < 1e-9
    assert abs(fractions["train_peak_fraction"] - 60 / 989.4) < 1e-9
    unknown = peak_fractions({**row, "device": "AMD EPYC"})
    assert unknown == {"infer_peak_fraction": None, "train_peak_fraction": None}


def test_selftest_on_the_cpu_measures_every_architecture_trains_a_cell_and_compares_bf16(
    tmp_path, capsys
):
    import json

    from vidbench.models import list_models

    out = tmp_path / "selftest"
    assert main(["selftest", "--device", "cpu", "--out", str(out), "--no-compile"]) == 0
    report = json.loads((out / "selftest.json").read_text())
    assert report["size"] == "tiny" and report["device_type"] == "cpu"
    rows = list(csv.DictReader((out / report["matrix"]["file"]).open()))
    assert report["matrix"]["file"].startswith("throughput-") and list(rows[0]) == MATRIX_COLUMNS
    by_arch = {arch: [r for r in rows if r["arch"] == arch] for arch in list_models()}
    for arch, measured in by_arch.items():  # fp32 and bf16, contiguous and channels-last
        assert len(measured) == 4, arch
        assert {r["precision"] for r in measured} == {"32-true", "bf16-mixed"}
        assert all(float(r["train_clips_per_s"]) > 0 for r in measured)
    assert report["conversion"]["agrees"] and report["conversion"]["shape"] == [2, 3, 8, 32, 32]
    assert report["training_cell"]["steps"] == 20
    top1 = report["mixed_precision"]["top1"]
    assert set(top1) == {"32-true", "bf16-mixed"} and all(0 <= v <= 100 for v in top1.values())
    assert report["mixed_precision"]["bf16_minus_fp32"] == top1["bf16-mixed"] - top1["32-true"]
    assert "video top-1:" in capsys.readouterr().out
