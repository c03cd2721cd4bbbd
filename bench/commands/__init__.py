"""The `vidbench` subcommands, one module per group, each command's parser next to its
handler: `data` (data check, data synth, flow extract), `models` (models, weights import,
throughput), `runs` (run, leaderboard, regress) and `predict`. Here: the argument types
and checks they share.

A module adds its commands with `add_commands(subparsers)`; a handler takes the parsed
arguments and returns the exit status. Handlers import what they need when they run, so
`vidbench --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from vidbench.datasets.files import same_file

log = logging.getLogger("vidbench")


def _number(kind: type, low: float, what: str):
    """An argparse type: a finite `kind` of at least `low`, or an error saying so."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


POSITIVE_INT = _number(int, 1, "an integer >= 1")
NON_NEGATIVE = _number(float, 0, "a finite number >= 0")
POSITIVE_SECONDS = _number(float, 1e-3, "a positive number of seconds")


def add_timeout(parser: argparse.ArgumentParser, then: str) -> None:
    parser.add_argument(
        "--timeout",
        type=POSITIVE_SECONDS,
        default=60.0,
        help=f"seconds one decode may take before {then} (default 60)",
    )


def add_key_values(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    """`flag KEY=VALUE ...`: several pairs, and the flag may be given several times (all
    apply); values are YAML (`config.parse_override`)."""
    parser.add_argument(
        flag, nargs="+", action="extend", default=[], metavar="KEY=VALUE", help=help
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are off anyway when stderr is not a terminal)",
    )


def wants_progress(args: argparse.Namespace) -> bool:
    """Progress bars (on stderr) unless `--no-progress` or stderr is not a terminal (a log
    file, CI), where they would only be noise."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def existing_folder(path: Path, option: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(
            f"{option} {path}: " + ("not a folder" if path.exists() else "no such folder")
        )
    return path


def unique_folders(dirs: list[Path]) -> list[Path]:
    """`dirs` without repeats (the same folder named twice, or through a link)."""
    kept: list[Path] = []
    for directory in dirs:
        if any(same_file(directory, other) for other in kept):
            log.warning("%s is given twice; read once", directory)
            continue
        kept.append(directory)
    return kept


def resolve_device(text: str):
    """A torch.device that exists here, or a ValueError saying what would be valid."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {text}: not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {text}: no CUDA GPU is visible here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {text}: this machine has cuda:0 to cuda:{count - 1}")
    elif device.type != "cpu":
        raise ValueError(f"--device {text}: only cpu and cuda devices are supported")
    return device
