"""`vidbench compare` (how sure a difference between two cells is) and `vidbench export`
(results as model-index YAML or CSV)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vidbench.bench.commands import POSITIVE_INT

if TYPE_CHECKING:
    from vidbench.bench.results import RunRecord


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_compare(commands)
    add_export(commands)


def add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="accuracy difference of two cells on the same test videos, with a paired "
        "confidence interval",
        description="The video top-1 difference A - B on the test videos both cells evaluated, "
        "with a paired bootstrap interval over videos and seeds, and McNemar's exact test "
        "when each side has one seed. A cell is a cell id (`c3d-rgb-ucf1011-scratch-s0`: one "
        "seed) or the id without its seed (`c3d-rgb-ucf1011-scratch` or `...-s*`: every seed).",
    )
    compare.add_argument("results", type=Path, help="results folder holding runs.jsonl")
    compare.add_argument("cell_a", metavar="CELL_A", help="cell id, with or without its seed")
    compare.add_argument("cell_b", metavar="CELL_B", help="cell id, with or without its seed")
    compare.add_argument(
        "--level", type=float, default=0.95, help="confidence level of the interval"
    )
    compare.add_argument(
        "--replicates", type=POSITIVE_INT, default=2000, help="bootstrap replicates"
    )
    compare.set_defaults(func=compare_command)


def cell_records(records: list[RunRecord], wanted: str) -> list[RunRecord]:
    """The finished records of `wanted`: one cell id, or every seed of one (`-s*` or no
    seed); ValueError naming the cells there are when none matches, and when the seeds
    matched were run with different configurations."""
    from vidbench.bench.summary import unseeded

    bare = re.sub(r"-s(\*|\d+)$", "", wanted)
    one_seed = bare != wanted and not wanted.endswith("*")
    found = [
        r
        for r in records
        if r.status == "ok" and (r.cell == wanted if one_seed else unseeded(r.cell) == bare + "-s*")
    ]
    if not found:
        known = sorted({unseeded(r.cell) for r in records if r.status == "ok"})
        raise ValueError(
            f"no finished cell {wanted!r} here; finished cells: {', '.join(known) or 'none'}"
        )
    setups = {r.config.setup_hash() for r in found}
    if len(setups) > 1:
        raise ValueError(
            f"{wanted}: its seeds ran with {len(setups)} different configurations; name one seed"
        )
    return sorted(found, key=lambda r: r.config.seed)


def compare_command(args: argparse.Namespace) -> int:
    from vidbench.bench.commands.runs import latest_records
    from vidbench.bench.significance import compare_records

    if not 0 < args.level < 1:
        raise ValueError(f"--level must lie between 0 and 1, got {args.level}")
    records = latest_records(args.results)
    a, b = cell_records(records, args.cell_a), cell_records(records, args.cell_b)
    diff, left_out = compare_records(a, b, args.level, args.replicates)
    percent = round(100 * args.level)
    print(f"A: {args.cell_a}: {diff.top1_a:.1f}% ({diff.seeds_a} seed(s))")
    print(f"B: {args.cell_b}: {diff.top1_b:.1f}% ({diff.seeds_b} seed(s))")
    print(
        f"on the {diff.videos} test videos both evaluated"
        + (
            f" ({left_out['only_a']} only A's, {left_out['only_b']} only B's left out)"
            if any(left_out.values())
            else ""
        )
    )
    print(
        f"A - B: {diff.difference:+.1f} points, {percent}% interval [{diff.low:+.1f}, "
        f"{diff.high:+.1f}] (paired bootstrap over videos"
        + (" and seeds" if max(diff.seeds_a, diff.seeds_b) > 1 else "")
        + f", {args.replicates} replicates)"
    )
    if diff.mcnemar_p is not None:
        print(f"McNemar's exact test: p = {diff.mcnemar_p:.3g}")
    verdict = (
        "excludes zero: A and B differ"
        if diff.excludes_zero
        else ("includes zero: A and B are not distinguishable on these videos")
    )
    print(f"the interval {verdict}")
    return 0


def add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="results as model-index YAML (model cards, metafiles) or timm-style CSV",
    )
    export.add_argument("dirs", nargs="+", type=Path, help="results folders holding runs.jsonl")
    export.add_argument(
        "--format", choices=("model-index", "csv"), default="model-index", help="output format"
    )
    export.add_argument(
        "--out", type=Path, default=None, help="file to write (default: standard output)"
    )
    export.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    from vidbench.bench.commands.runs import merged_records
    from vidbench.bench.export import csv_table, model_index
    from vidbench.bench.summary import summarise
    from vidbench.datasets.files import atomic_write_text, refuse_same_file

    folders, records = merged_records(args.dirs)
    summary = summarise(records)
    text = model_index(summary) if args.format == "model-index" else csv_table(summary)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    refuse_same_file(args.out, [d / "runs.jsonl" for d in folders], "--out")
    atomic_write_text(args.out, text)
    print(f"wrote {args.out} ({len(summary)} configurations)")
    return 0
