"""The `vidbench` command line: one parser whose subcommands live in `vidbench.bench.commands`
(each command's parser next to its handler)."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from vidbench import __version__
from vidbench.bench.commands import analysis, data, models, predict, runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidbench", description="Video action recognition benchmark suite."
    )
    parser.add_argument("--version", action="version", version=f"vidbench {__version__}")
    add_verbosity(parser, 0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, models, runs, analysis, predict):
        group.add_commands(commands)
    for command in leaf_parsers(parser):  # -v and -q also after the subcommand
        add_verbosity(command, argparse.SUPPRESS)
        command.formatter_class = DefaultsFormatter
    return parser


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's line with its default, unless the text already names
    it or there is none to name (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or default == []
            or not action.option_strings
            or action.nargs == 0
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="more log output (-vv: debug)"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=default, help="errors only in the log"
    )


def leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of every subcommand (`run`, `data check`, `weights import`, ...)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases once
                found.extend(leaf_parsers(child) or [child])
    return found


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    try:
        return args.func(args)
    except (OSError, ValueError) as error:  # bad paths, annotation files and sweep files
        print(f"vidbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what was written stays written (atomic writes)
        print("vidbench: interrupted", file=sys.stderr)
        return 130


class VidbenchHandler(logging.StreamHandler):
    """The command line's log handler (stderr), told apart from others on the root logger."""


class LevelByOrigin(logging.Filter):
    """Passes vidbench's records from `ours` up and everyone else's (Lightning, W&B,
    decord's Python side) from `theirs` up, whatever levels those libraries set on their
    own loggers when they are imported (Lightning sets INFO)."""

    def __init__(self, ours: int, theirs: int) -> None:
        super().__init__()
        self.ours, self.theirs = ours, theirs

    def filter(self, record: logging.LogRecord) -> bool:
        mine = record.name == "vidbench" or record.name.startswith("vidbench.")
        return record.levelno >= (self.ours if mine else self.theirs)


def configure_logging(verbosity: int) -> None:
    """Logs on stderr. Default: vidbench's progress and status (INFO), others' warnings;
    -v: vidbench's debug and others' INFO (Lightning's device summary); -vv: everything;
    -q: errors only. Deprecation notices from libraries only from -v on."""
    verbosity = max(-1, min(verbosity, 2))
    ours = {-1: logging.ERROR, 0: logging.INFO, 1: logging.DEBUG, 2: logging.DEBUG}[verbosity]
    theirs = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}[verbosity]
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, VidbenchHandler)]:
        root.removeHandler(old)  # a second main() in one process: replaced, not doubled
    handler = VidbenchHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(LevelByOrigin(ours, theirs))
    root.addHandler(handler)  # beside any the host set up (pytest's, an application's)
    root.setLevel(min(ours, theirs))
    if verbosity <= 0:
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        # torch.utils.benchmark imports cpp_extension, whose logger (torch's own handler)
        # warns on a CPU-only machine that no CUDA runtime is found
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    else:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.NOTSET)
