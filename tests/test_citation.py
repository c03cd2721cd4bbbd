"""A paper number is cited only for a run that matches: the built-in sweep's model, input
and budget, at least 95% of the listed test videos evaluated, and Kinetics on its test
split. Records made of the real types, resolved from the built-in sweeps."""

from __future__ import annotations

import pytest
from helpers import markdown_rows, paper_record

from vidbench.bench.citation import citation_problems
from vidbench.bench.leaderboard import NOT_CITED, markdown
from vidbench.bench.paper import paper_result

I3D_UCF = ("table2", "i3d-rgb-ucf1011-scratch-s0")


def test_a_run_of_the_paper_sweep_is_cited():
    record = paper_record(*I3D_UCF)
    paper = paper_result("i3d", "ucf101", 1, "rgb", "scratch", "imagenet")
    assert paper is not None and paper.top1 == 84.5
    assert citation_problems(record, paper) == []
    (row,) = markdown_rows(markdown([record]))
    assert row["Paper top-1 %"] == "84.5" and row["Δ paper"] == "-24.5"
    assert NOT_CITED not in row


@pytest.mark.parametrize(
    ("sweep", "cell", "overrides", "data", "reason"),
    [
        (*I3D_UCF, ("model.width=0.125",), {}, "model options {'width': 0.125}"),
        (*I3D_UCF, ("input.clip_len=16",), {}, "input clip_len 16 (paper 64)"),
        (*I3D_UCF, ("train.max_steps=5",), {}, "budget max_steps 5 (paper 5000)"),
        (*I3D_UCF, ("train.global_batch=null",), {}, "budget global batch 6 (paper 96)"),
        (*I3D_UCF, ("eval.max_videos=100",), {}, "at most 100 videos a split (eval.max_videos)"),
        (
            *I3D_UCF,
            (),
            {"evaluated_videos": 1891},
            "1891 of 3783 listed test videos evaluated",
        ),
        (*I3D_UCF, (), {"evaluated_videos": 23}, "23 of 3783 listed test videos"),
        (
            "table2_kinetics",
            "i3d-rgb-kinetics4001-scratch-s0",
            (),
            {"test_split": "val"},
            "tested on Kinetics val; the paper's Kinetics numbers are on its test split",
        ),
    ],
)
def test_a_run_that_differs_is_not_cited_and_says_why(sweep, cell, overrides, data, reason):
    record = paper_record(sweep, cell, overrides, **data)
    (row,) = markdown_rows(markdown([record]))
    assert row["Paper top-1 %"] == "" and row["Δ paper"] == ""
    assert reason in row[NOT_CITED].replace("\\", "")
    if cell.startswith("i3d-rgb-kinetics"):
        assert row["Split"] == "val"  # the Kinetics split a row was tested on is shown


def test_the_split_mean_is_cited_only_when_every_split_is():
    cells = [f"i3d-rgb+flow-ucf101{fold}-finetune-s0" for fold in (1, 2, 3)]
    good = [paper_record("table5", c, start="imagenet+kinetics") for c in cells]
    rows = {r["Split"]: r for r in markdown_rows(markdown(good))}
    assert rows["mean of 3"]["Paper top-1 %"] == "98.0"  # Table 5, Two-Stream I3D
    short = [
        *good[:2],
        paper_record("table5", cells[2], start="imagenet+kinetics", evaluated_videos=100),
    ]
    rows = {r["Split"]: r for r in markdown_rows(markdown(short))}
    assert rows["mean of 3"]["Paper top-1 %"] == ""
    assert "100 of 3783 listed test videos" in rows["mean of 3"][NOT_CITED]


def dry_run_cells(capsys, sweep: str) -> list[dict]:
    """Every cell of built-in `sweep` as `vidbench run SWEEP --dry-run` prints it."""
    import yaml

    from vidbench.bench.cli import main

    capsys.readouterr()
    code = main(["run", sweep, "--dry-run", "--out", "/nonexistent/out"])
    printed = capsys.readouterr().out
    assert code == 1 and "# preflight PROBLEM: datasets." in printed  # no data here
    return [cell for cell in yaml.safe_load_all(printed) if cell]


@pytest.mark.parametrize("sweep", ["table2", "table4", "splits", "table5"])
def test_the_ucf_and_hmdb_sweeps_resolve_to_the_papers_budget(capsys, sweep):
    cells = dry_run_cells(capsys, sweep)
    assert cells and {c["data"]["format"] for c in cells} == {"ucf101", "hmdb51"}
    for cell in cells:
        train = cell["train"]
        # 16 GPUs x 6 clips; on one device, 16 accumulation steps
        assert (train["global_batch"], train["batch_size"], train["devices"]) == (96, 6, 1)
        assert (train["max_steps"], train["scheduler"]) == (5000, "plateau")
        # the plateau rule watches a tenth of the training groups, never the test split
        assert train["val_every_epochs"] == 1 and train["val_holdout"] == 0.1
        assert cell["data"]["test_split"] == "test"


def test_the_kinetics_sweep_gives_the_3d_convnets_twice_the_batch(capsys):
    cells = dry_run_cells(capsys, "table2_kinetics")
    batch = {(c["arch"], c["modality"]): c["train"]["global_batch"] for c in cells}
    assert {a: b for (a, _), b in batch.items()} == {
        "convnet_lstm": 192, "two_stream": 192, "fused_two_stream": 192, "c3d": 384, "i3d": 384,
    }  # fmt: skip
    for cell in cells:
        train = cell["train"]
        if cell["arch"] == "i3d":  # DeepMind's release schedule, flow trained longer
            steps = 155_000 if cell["modality"] == "flow" else 115_000
            assert (train["scheduler"], train["max_steps"], train["lr_grid"]) == (
                "piecewise",
                steps,
                None,
            )
        else:  # the paper's rule, its rate chosen on Kinetics validation
            assert (train["scheduler"], train["max_steps"]) == ("plateau", 110_000)
            assert train["lr_grid"] == [0.1, 0.03, 0.01, 0.003] and train["val_every_epochs"]
        assert cell["data"]["test_split"] == "test"  # the paper's Kinetics numbers


@pytest.mark.parametrize(("modality", "paper"), [("rgb", "83.2"), ("flow", "85.8")])
def test_the_3d_fused_single_stream_cells_of_table_2_are_run_and_cited(modality, paper):
    record = paper_record("table2", f"fused_two_stream-{modality}-ucf1011-scratch-s0")
    assert record.config.model_options["modalities"] == [modality]
    (row,) = markdown_rows(markdown([record]))
    assert (row["Modality"], row["Paper top-1 %"], row["Table"]) == (
        {"rgb": "RGB", "flow": "Flow"}[modality],
        paper,
        "2",
    )
