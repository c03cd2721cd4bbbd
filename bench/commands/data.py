"""`vidbench data check`, `vidbench data synth` and `vidbench flow extract`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidbench.bench.commands import (
    POSITIVE_INT,
    add_progress,
    add_timeout,
    existing_folder,
    wants_progress,
)
from vidbench.datasets.annotations import DATASETS
from vidbench.datasets.flow import ALGORITHMS
from vidbench.datasets.synthetic import SynthConfig


def add_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="dataset tools").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
    add_check(data)
    add_synth(data)
    flow = commands.add_parser("flow", help="optical flow tools").add_subparsers(
        dest="flow_command", required=True, metavar="SUBCOMMAND"
    )
    add_flow_extract(flow)


def add_check(data: argparse._SubParsersAction) -> None:
    check = data.add_parser("check", help="index a dataset and open every video")
    check.add_argument("--dataset", required=True, choices=DATASETS)
    check.add_argument(
        "--annotations",
        required=True,
        type=Path,
        help="annotation file or folder in the dataset's official layout",
    )
    check.add_argument("--videos", required=True, type=Path, help="video root folder")
    check.add_argument(
        "--split", type=int, default=1, help="fold of UCF-101/HMDB-51 (1-3; default 1)"
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument(
        "--workers", type=POSITIVE_INT, default=None, help="parallel probes (default: CPU count)"
    )
    add_timeout(check, "the video counts as unreadable (never cached as a verdict)")
    check.add_argument("--decoder", choices=("decord", "pyav"), default="decord")
    check.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="manifest cache folder (default $VIDBENCH_CACHE or ~/.cache/vidbench)",
    )
    add_progress(check)
    check.set_defaults(func=check_command)


def check_command(args: argparse.Namespace) -> int:
    from vidbench.datasets.check import check_dataset, format_report

    existing_folder(args.videos, "--videos")
    report = check_dataset(
        args.dataset,
        args.annotations,
        args.videos,
        args.split,
        decoder=args.decoder,
        workers=args.workers,
        timeout=args.timeout,
        cache_dir=args.cache,
        progress=wants_progress(args) and not args.json,
    )
    if args.json:
        keys = ("dataset", "split", "num_classes", "splits")
        print(json.dumps({key: report[key] for key in keys}))
    else:
        print(format_report(report))
    return 0


def add_synth(data: argparse._SubParsersAction) -> None:
    default = SynthConfig()
    synth = data.add_parser("synth", help="write the built-in synthetic-motion dataset")
    synth.add_argument("--out", required=True, type=Path)
    synth.add_argument(
        "--classes", type=int, default=default.classes, help="motion classes (2-12; default 8)"
    )
    synth.add_argument("--videos-per-class", type=int, default=default.videos_per_class)
    synth.add_argument("--frames", type=int, default=default.frames, help="frames per video")
    synth.add_argument(
        "--size", type=int, default=default.size, help="frame height in pixels (width is 4:3)"
    )
    synth.add_argument("--seed", type=int, default=default.seed)
    add_progress(synth)
    synth.set_defaults(func=synth_command)


def synth_command(args: argparse.Namespace) -> int:
    from vidbench.datasets.synthetic import make_synthetic_dataset

    config = SynthConfig(args.classes, args.videos_per_class, args.frames, args.size, args.seed)
    out = make_synthetic_dataset(args.out, config, progress=wants_progress(args))
    print(
        f"synthetic dataset in {out}: videos in {out / 'videos'}, annotations (UCF-101 layout) "
        f"in {out / 'annotations'}"
    )
    return 0


def add_flow_extract(flow: argparse._SubParsersAction) -> None:
    extract = flow.add_parser("extract", help="compute and store optical flow (resumable)")
    extract.add_argument("--videos", required=True, type=Path, help="video root folder")
    extract.add_argument(
        "--out", required=True, type=Path, help="flow root (mirrors the video tree)"
    )
    extract.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="only the videos this dataset's annotations list (all folds)",
    )
    extract.add_argument("--annotations", type=Path, default=None)
    extract.add_argument(
        "--workers", type=POSITIVE_INT, default=1, help="parallel videos (processes)"
    )
    extract.add_argument("--algorithm", choices=ALGORITHMS, default="tvl1")
    extract.add_argument(
        "--fps", type=float, default=25.0, help="frame rate flow is computed at (0-240]"
    )
    extract.add_argument("--bound", type=float, default=20.0, help="truncation in pixels (0-255]")
    add_timeout(extract, "its video counts as failed")
    add_progress(extract)
    extract.set_defaults(func=flow_extract_command)


def flow_extract_command(args: argparse.Namespace) -> int:
    from vidbench.datasets.flow import FlowConfig
    from vidbench.datasets.flow_extract import FAILURES_FILE, extract_all, list_videos

    if (args.dataset is None) != (args.annotations is None):
        raise ValueError("--dataset and --annotations go together (or leave both out)")
    existing_folder(args.videos, "--videos")
    config = FlowConfig(args.algorithm, args.fps, args.bound)
    relpaths, absent = list_videos(args.videos, args.dataset, args.annotations)
    if absent:
        print(f"{absent} annotated videos are not under {args.videos}; skipped")
    summary = extract_all(
        args.videos,
        args.out,
        config,
        relpaths,
        workers=args.workers,
        timeout=args.timeout,
        progress=wants_progress(args),
    )
    print(
        f"flow for {summary['total']} videos in {args.out}: {summary['extracted']} extracted, "
        f"{summary['skipped']} already done, {len(summary['failed'])} failed"
    )
    for rel, error in list(summary["failed"].items())[:20]:
        print(f"  failed: {rel}: {error}")
    if summary["failed"]:
        print(f"all failures are listed in {args.out / FAILURES_FILE}")
        return 1
    return 0
