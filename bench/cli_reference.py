"""docs/cli.md: every `vidbench` command's help, made from the parsers themselves, so the
reference cannot drift from the code (a test regenerates it and compares).

    python -m vidbench.bench.cli_reference > docs/cli.md
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from vidbench.bench.cli import build_parser, leaf_parsers

WIDTH = 100  # columns the help is wrapped at, whatever the terminal


@contextmanager
def columns(width: int) -> Iterator[None]:
    """argparse wraps help at $COLUMNS: fixed here, so the page is the same everywhere."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def render() -> str:
    """The page: `vidbench --help`, then each command's help under its own heading."""
    with columns(WIDTH):
        parser = build_parser()
        parts = [
            "# Command reference\n",
            "Generated from the parsers by `python -m vidbench.bench.cli_reference > "
            "docs/cli.md`; `vidbench COMMAND --help` prints the same.\n",
            f"```\n{parser.format_help()}```\n",
        ]
        for command in leaf_parsers(parser):
            parts.append(f"## {command.prog}\n\n```\n{command.format_help()}```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
