"""The README's commands work as written: every `vidbench` line of its shell blocks is a
command and options the CLI takes, and the `run` lines resolve their sweep (--dry-run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from helpers import cli

from vidbench.bench.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[list[str]]:
    """Each `vidbench ...` command of the README's bash blocks, as its arguments."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):  # `... && .venv/bin/vidbench run` too
                if word.endswith("vidbench"):
                    commands.append(words[i + 1 :])
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_a_newcomer_needs():
    shown = {command[0] for command in COMMANDS if command}
    assert {"run", "predict", "weights", "data", "flow"} <= shown


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_each_readme_command_parses(command):
    build_parser().parse_args(command)  # exits 2 on an unknown command, option or choice


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c[:1] == ["run"]], ids=lambda c: " ".join(c)[:60]
)
def test_each_readme_run_resolves_its_sweep(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = cli(*command, "--dry-run", "--out", str(tmp_path / "out"))
    printed = capsys.readouterr()
    assert code in (0, 1), printed.err  # 1: the preflight finds no data here
    assert "# sweep " in printed.out and "Traceback" not in printed.err
