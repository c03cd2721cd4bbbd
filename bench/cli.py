"""The `vidbench` command line: one parser, one function per subcommand."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from datasets.annotations import DATASETS

log = logging.getLogger("vidbench")


def cmd_data_check(args: argparse.Namespace) -> int:
    from datasets.check import check_dataset

    report = check_dataset(
        args.dataset,
        args.annotations,
        args.videos,
        args.split,
        decoder=args.decoder,
        workers=args.workers,
        timeout=args.timeout,
        cache_dir=args.cache,
        progress=not args.json,
    )
    if args.json:
        print(
            json.dumps({key: report[key] for key in ("dataset", "split", "num_classes", "splits")})
        )
        return 0
    print(f"{report['dataset']} (fold {report['split']}): {report['num_classes']} classes")
    print(f"{'split':<8}{'expected':>10}{'found':>10}{'missing':>10}{'unreadable':>12}")
    for split, counts in report["splits"].items():
        print(
            f"{split:<8}{counts['expected']:>10}{counts['found']:>10}{counts['missing']:>10}{counts['unreadable']:>12}"
        )
    stats = report["stats"]
    if stats:
        frames = stats["frames"]
        print(
            f"frames per video: min {frames['min']}, median {frames['median']}, "
            f"max {frames['max']}; "
            f"fps: {', '.join(f'{fps:g} ({n})' for fps, n in stats['fps'])}; "
            f"sizes: {', '.join(f'{size} ({n})' for size, n in stats['sizes'])}"
        )
    problems = report["problems"]
    for path, reason in list(problems.items())[:20]:
        print(f"  {reason}: {path}" if reason == "missing" else f"  unreadable: {path}: {reason}")
    if len(problems) > 20:
        print(f"  ... and {len(problems) - 20} more")
    print(
        f"opened {report['probed']} videos, {report['cached']} unchanged ones from the "
        f"manifest cache {report['manifest']}"
    )
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from datasets.synthetic import SynthConfig, make_synthetic_dataset

    config = SynthConfig(args.classes, args.videos_per_class, args.frames, args.size, args.seed)
    out = make_synthetic_dataset(args.out, config)
    print(
        f"synthetic dataset in {out}: videos in {out / 'videos'}, annotations (UCF-101 layout) "
        f"in {out / 'annotations'}"
    )
    return 0


def cmd_flow_extract(args: argparse.Namespace) -> int:
    from datasets.flow import FlowConfig
    from datasets.flow_extract import FAILURES_FILE, extract_all, list_videos

    if (args.dataset is None) != (args.annotations is None):
        raise ValueError("--dataset and --annotations go together (or leave both out)")
    relpaths, absent = list_videos(args.videos, args.dataset, args.annotations)
    if absent:
        print(f"{absent} annotated videos are not under {args.videos}; skipped")
    config = FlowConfig(args.algorithm, args.fps, args.bound)
    summary = extract_all(args.videos, args.out, config, relpaths, workers=args.workers)
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


def cmd_models(args: argparse.Namespace) -> int:
    from models.costs import describe_models

    rows = describe_models(args.num_classes)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'architecture':<18}{'params':>12}{'GMACs/clip':>12}  input (paper size)")
    for row in rows:
        flow = f", flow stack {row['flow_stack']}" if "flow" in row["modalities"] else ""
        spacing = f" every {row['frame_interval']}" if row["frame_interval"] > 1 else ""
        print(
            f"{row['name']:<18}{row['params'] / 1e6:>11.2f}M{row['gmacs']:>12.2f}  "
            f"{'+'.join(row['modalities'])}, {row['clip_len']} frames{spacing}, "
            f"{row['crop_size']}px{flow}"
        )
    print(
        f"params at {args.num_classes} classes; GMACs = multiply-adds (1 MAC = 2 FLOPs) of conv, "
        "linear and matmul per clip, counted by torch.utils.flop_counter"
    )
    return 0


def cmd_weights_import(args: argparse.Namespace) -> int:
    from models.weights import import_pytorch_i3d

    out = import_pytorch_i3d(args.source, args.stream, args.out, args.labels)
    print(f"wrote {out}: i3d {args.stream} stream with {args.labels} class names")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidbench", description="Video action recognition benchmark suite."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="dataset tools").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
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
        "--workers", type=int, default=None, help="parallel probes (default: CPU count)"
    )
    check.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before a decode counts as hung"
    )
    check.add_argument("--decoder", choices=("decord", "pyav"), default="decord")
    check.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="manifest cache folder (default $VIDBENCH_CACHE or ~/.cache/vidbench)",
    )
    check.set_defaults(func=cmd_data_check)

    synth = data.add_parser("synth", help="write the built-in synthetic-motion dataset")
    synth.add_argument("--out", required=True, type=Path)
    synth.add_argument("--classes", type=int, default=8, help="motion classes (2-12; default 8)")
    synth.add_argument("--videos-per-class", type=int, default=12)
    synth.add_argument("--frames", type=int, default=40, help="frames per video at 25 fps")
    synth.add_argument("--size", type=int, default=64, help="frame height in pixels (width is 4:3)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_data_synth)

    flow = commands.add_parser("flow", help="optical flow tools").add_subparsers(
        dest="flow_command", required=True, metavar="SUBCOMMAND"
    )
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
    extract.add_argument("--workers", type=int, default=1, help="parallel videos (processes)")
    extract.add_argument("--algorithm", choices=("tvl1", "farneback"), default="tvl1")
    extract.add_argument("--fps", type=float, default=25.0, help="frame rate flow is computed at")
    extract.add_argument("--bound", type=float, default=20.0, help="truncation in pixels")
    extract.set_defaults(func=cmd_flow_extract)

    listing = commands.add_parser(
        "models", help="registered architectures with parameters and multiply-adds"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.add_argument("--num-classes", type=int, default=400)
    listing.set_defaults(func=cmd_models)

    weights = commands.add_parser("weights", help="weight tools").add_subparsers(
        dest="weights_command", required=True, metavar="SUBCOMMAND"
    )
    importer = weights.add_parser(
        "import", help="convert published weights to a VideoClassifier checkpoint"
    )
    importer.add_argument("format", choices=("pytorch-i3d",))
    importer.add_argument("source", type=Path, help="the source state dict (.pt)")
    importer.add_argument("--stream", required=True, choices=("rgb", "flow"))
    importer.add_argument("--out", required=True, type=Path)
    importer.add_argument(
        "--labels",
        default="kinetics400",
        help="kinetics400, kinetics600, or a file with one class name a line",
    )
    importer.set_defaults(func=cmd_weights_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (OSError, ValueError) as error:  # bad paths and bad annotation files
        print(f"vidbench: error: {error}", file=sys.stderr)
        return 2
