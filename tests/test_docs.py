"""The project cites its own protocol page, never a document outside the repository, and
every section it cites exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "docs" / "protocol.md"


def project_files() -> list[Path]:
    """The repository's code, sweeps and prose (no virtual environment, no results)."""
    skipped = {".venv", ".git", "results", "build"}
    return [
        path
        for suffix in ("*.py", "*.yaml", "*.md")
        for path in ROOT.rglob(suffix)
        if not skipped & set(path.relative_to(ROOT).parts)
    ]


def test_no_file_cites_a_document_outside_the_repository():
    citing = [
        str(path.relative_to(ROOT))
        for path in project_files()
        if re.search(r"\bSPEC( |$|[0-9]|\.md)", path.read_text(encoding="utf-8"), re.M)
    ]
    assert citing == [], f"cite docs/protocol.md or the paper instead: {citing}"


def test_every_cited_protocol_section_exists():
    text = PROTOCOL.read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d)\.", text, re.M))
    sections |= set(re.findall(r"^\*\*(\d[a-e]) ", text, re.M))
    assert sections >= {"1", "2", "3", "4", "5", "1a", "1b", "1c", "1d", "1e"}
    cited = {
        (str(path.relative_to(ROOT)), section)
        for path in project_files()
        for section in re.findall(
            r"docs/protocol\.md,? (?:section )?(\d[a-e]?)\b", path.read_text()
        )
    }
    assert cited, "nothing cites docs/protocol.md"
    missing = sorted((file, s) for file, s in cited if s not in sections)
    assert missing == [], missing


def test_the_command_reference_is_the_parsers_as_they_stand():
    from vidbench.bench.cli_reference import render

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == render(), "regenerate: python -m vidbench.bench.cli_reference > docs/cli.md"
    assert "## vidbench run\n" in page and "--dry-run" in page


def test_every_relative_link_of_the_readme_and_docs_leads_somewhere():
    pages = [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "results").glob("**/README.md"),
    ]
    broken = [
        (str(page.relative_to(ROOT)), target)
        for page in pages
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
        if not target.startswith(("http://", "https://")) and not (page.parent / target).exists()
    ]
    assert broken == []


def spoken(seconds: int) -> str:
    """490 -> '8 minutes 10 seconds' (1200 -> '20 minutes'), as the README and docs write
    a command's time."""
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} minutes {rest} seconds" if rest else f"{minutes} minutes"


def test_the_commands_times_in_readme_and_docs_are_the_latest_committed_measurement():
    records = [
        json.loads(line)
        for line in (ROOT / "results" / "timings" / "commands.jsonl").read_text().splitlines()
    ]
    latest = {r["command"]: r for r in records}  # the file is appended to: last one wins
    assert set(latest) == {"readme-1", "readme-2"}
    assert all(r["passed"] and r["machine"] and r["date"] for r in latest.values())
    for page in (ROOT / "README.md", ROOT / "docs" / "performance.md"):
        text = " ".join(page.read_text(encoding="utf-8").split())  # line breaks as spaces
        for record in latest.values():
            assert spoken(record["seconds"]) in text, (page.name, record["command"])
        assert "results/timings/commands.jsonl" in text, page.name
    performance = " ".join((ROOT / "docs" / "performance.md").read_text().split())
    assert f"the {latest['readme-2']['tests']} tests" in performance
