"""The `vidbench` command line: one parser whose subcommands live in `vidbench.bench.commands`
(each command's parser next to its handler)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from vidbench.bench.commands import data, models, predict, runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidbench", description="Video action recognition benchmark suite."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, models, runs, predict):
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (OSError, ValueError) as error:  # bad paths, annotation files and sweep files
        print(f"vidbench: error: {error}", file=sys.stderr)
        return 2
