"""`vidbench data check`, `vidbench data synth` and `vidbench flow extract`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidbench.bench.commands import (
    POSITIVE_INT,
    add_key_values,
    add_progress,
    add_timeout,
    existing_folder,
    wants_progress,
)
from vidbench.datasets.annotations import dataset_formats
from vidbench.datasets.flow import ALGORITHMS
from vidbench.datasets.synthetic import TASKS, SynthConfig


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
    check.add_argument(
        "--dataset",
        required=True,
        choices=dataset_formats(),
        help="annotation format of the dataset",
    )
    check.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="annotation file or folder in the dataset's official layout (the folder "
        "format: --videos itself unless given)",
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
    check.add_argument(
        "--decoder", choices=("decord", "pyav"), default="decord", help="video reader to probe with"
    )
    check.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="manifest cache folder (default $VIDBENCH_CACHE or ~/.cache/vidbench)",
    )
    check.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="none",
        help="exit 1 when any listed video is missing, unreadable, either (any), or never "
        "(none: a report only)",
    )
    add_progress(check)
    check.set_defaults(func=check_command, parser=check)


FAIL_ON = ("missing", "unreadable", "any", "none")


def check_fails(report: dict, fail_on: str) -> bool:
    """Whether `data check --fail-on` exits 1: a missing or unreadable listed video, as
    chosen."""
    kinds = {"missing": ("missing",), "unreadable": ("unreadable",), "none": ()}
    counted = kinds.get(fail_on, ("missing", "unreadable"))
    return any(counts[k] for counts in report["splits"].values() for k in counted)


def check_command(args: argparse.Namespace) -> int:
    from vidbench.datasets.check import check_dataset, format_report

    existing_folder(args.videos, "--videos")
    if args.annotations is None and args.dataset != "folder":
        args.parser.error(f"--dataset {args.dataset} needs --annotations (its official lists)")
    report = check_dataset(
        args.dataset,
        args.annotations or args.videos,
        args.videos,
        args.split,
        decoder=args.decoder,
        workers=args.workers,
        timeout=args.timeout,
        cache_dir=args.cache,
        progress=wants_progress(args) and not args.json,
    )
    failed = check_fails(report, args.fail_on)
    if args.json:
        keys = ("dataset", "split", "num_classes", "splits", "notes", "unmatched")
        problems = report["problems"]
        print(
            json.dumps(
                {
                    **{key: report[key] for key in keys},
                    "missing": sorted(p for p, why in problems.items() if why == "missing"),
                    "unreadable": {
                        p: why for p, why in sorted(problems.items()) if why != "missing"
                    },
                    "fail_on": args.fail_on,
                    "failed": failed,
                }
            )
        )
    else:
        print(format_report(report))
        if failed:
            print(f"FAILED (--fail-on {args.fail_on})")
    return 1 if failed else 0


def add_synth(data: argparse._SubParsersAction) -> None:
    default = SynthConfig()
    synth = data.add_parser(
        "synth",
        help="write a built-in synthetic-motion task",
        description="Write a synthetic-motion task as MPEG-4 videos in the UCF-101 layout. "
        "Tasks: "
        + "; ".join(
            f"{name}: {task.isolates} (chance {100 / task.default_classes:.1f}%)"
            for name, task in TASKS.items()
        ),
    )
    synth.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    synth.add_argument(
        "--task", choices=list(TASKS), default=default.task, help="which task (default direction)"
    )
    synth.add_argument(
        "--classes",
        type=int,
        default=None,
        help="the task's first N classes (default: direction 8 of 12, the others all)",
    )
    synth.add_argument(
        "--videos-per-class", type=int, default=default.videos_per_class, help="videos per class"
    )
    synth.add_argument("--frames", type=int, default=default.frames, help="frames per video")
    synth.add_argument(
        "--size", type=int, default=default.size, help="frame height in pixels (width is 4:3)"
    )
    synth.add_argument("--seed", type=int, default=default.seed, help="random seed of the textures")
    add_progress(synth)
    synth.set_defaults(func=synth_command)


def synth_command(args: argparse.Namespace) -> int:
    from vidbench.datasets.synthetic import make_synthetic_dataset

    config = SynthConfig(
        args.classes, args.videos_per_class, args.frames, args.size, args.seed, task=args.task
    )
    out = make_synthetic_dataset(args.out, config, progress=wants_progress(args))
    print(
        f"synthetic {config.task} task ({len(config.class_names)} classes) in {out}: "
        f"videos in {out / 'videos'}, annotations (UCF-101 layout) "
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
        choices=dataset_formats(),
        default=None,
        help="only the videos this dataset's annotations list (all folds)",
    )
    extract.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="annotation file or folder (with --dataset; folder: --videos itself)",
    )
    extract.add_argument(
        "--workers", type=POSITIVE_INT, default=1, help="parallel videos (processes)"
    )
    extract.add_argument(
        "--algorithm", choices=ALGORITHMS, default="tvl1", help="TV-L1 (the paper's) or Farneback"
    )
    extract.add_argument(
        "--fps", type=float, default=25.0, help="frame rate flow is computed at (0-240]"
    )
    extract.add_argument("--bound", type=float, default=20.0, help="truncation in pixels (0-255]")
    extract.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="only shard K of N (1 <= K <= N): every Nth video of the sorted list from the "
        "Kth; the N shards together extract what one run would",
    )
    extract.add_argument(
        "--launcher",
        choices=("inline", "slurm"),
        default="inline",
        help="inline: here; slurm: --jobs array tasks through submitit, one shard each",
    )
    extract.add_argument(
        "--jobs", type=POSITIVE_INT, default=None, help="slurm: shards (array tasks)"
    )
    add_key_values(
        extract,
        "--slurm",
        "slurm: job settings, as a sweep's launcher section takes them, e.g. partition=cpu "
        "time_min=600 cpus_per_task=8 (each job runs that many workers)",
    )
    extract.add_argument(
        "--no-wait", action="store_true", help="slurm: submit and return without waiting"
    )
    add_timeout(extract, "its video counts as failed")
    add_progress(extract)
    extract.set_defaults(func=flow_extract_command)


def flow_extract_command(args: argparse.Namespace) -> int:
    from vidbench.datasets.files import refuse_nested
    from vidbench.datasets.flow import FlowConfig
    from vidbench.datasets.flow_extract import extract_all, list_videos, parse_shard, select_shard

    if args.dataset == "folder" and args.annotations is None:
        args.annotations = args.videos  # its class folders are its annotations
    if (args.dataset is None) != (args.annotations is None):
        raise ValueError("--dataset and --annotations go together (or leave both out)")
    existing_folder(args.videos, "--videos")
    if args.annotations is not None:  # its lists are read again later: never written into
        refuse_nested(args.out, args.annotations, "flow root")
    config = FlowConfig(args.algorithm, args.fps, args.bound)
    shard = parse_shard(args.shard) if args.shard else None
    if args.launcher == "inline" and (args.jobs or args.slurm or args.no_wait):
        raise ValueError("--jobs, --slurm and --no-wait go with --launcher slurm")
    if args.launcher == "slurm" and shard:
        raise ValueError("--shard is one part run here; with --launcher slurm give --jobs N")
    relpaths, absent = list_videos(args.videos, args.dataset, args.annotations)
    if absent:
        print(f"{absent} annotated videos are not under {args.videos}; skipped")
    if args.launcher == "slurm":
        return flow_on_slurm(args, config, relpaths)
    part = select_shard(relpaths, shard)
    if shard:
        print(f"shard {shard[0]}/{shard[1]}: {len(part)} of {len(relpaths)} videos")
    summary = extract_all(
        args.videos,
        args.out,
        config,
        part,
        workers=args.workers,
        timeout=args.timeout,
        progress=wants_progress(args),
    )
    return report_flow(args, summary)


def flow_on_slurm(args: argparse.Namespace, config, relpaths: list[str]) -> int:
    """`flow extract --launcher slurm --jobs N`: N array tasks, shard K in task K."""
    from vidbench.bench.config import LauncherConfig, SweepError, parse_override
    from vidbench.bench.slurm import extract_flow_on_slurm
    from vidbench.datasets.files import refuse_nested
    from vidbench.datasets.flow_extract import select_shard

    refuse_nested(args.out, args.videos, "flow root")
    settings: dict = {"kind": "slurm", "wait": not args.no_wait}
    for text in args.slurm:
        keys, value = parse_override(text)
        settings[".".join(keys)] = value
    try:
        launcher = LauncherConfig.model_validate(settings)
    except ValueError as error:
        raise SweepError(f"--slurm: {error}") from None
    count = args.jobs or 1
    shards = [select_shard(relpaths, (k, count)) for k in range(1, count + 1)]
    summary = extract_flow_on_slurm(
        args.videos, args.out, config, shards, launcher, args.timeout, wants_progress(args)
    )
    if summary is None:
        print(f"submitted; the flow goes to {args.out} (a re-run skips finished videos)")
        return 0
    for job_id, log_file in summary["lost"].items():
        print(f"  shard job {job_id} ended without finishing; its log: {log_file}")
    return report_flow(args, summary) or (1 if summary["lost"] else 0)


def report_flow(args: argparse.Namespace, summary: dict) -> int:
    from vidbench.datasets.flow_extract import FAILURES_FILE

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
