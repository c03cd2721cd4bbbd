"""The `vidbench` command line: one parser, one function per subcommand."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from vidbench.datasets.annotations import DATASETS
from vidbench.datasets.files import refuse_same_file, same_file

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


def existing_folder(path: Path, option: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(
            f"{option} {path}: " + ("not a folder" if path.exists() else "no such folder")
        )
    return path


def cmd_data_check(args: argparse.Namespace) -> int:
    from vidbench.datasets.check import check_dataset

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
    from vidbench.datasets.synthetic import SynthConfig, make_synthetic_dataset

    config = SynthConfig(args.classes, args.videos_per_class, args.frames, args.size, args.seed)
    out = make_synthetic_dataset(args.out, config)
    print(
        f"synthetic dataset in {out}: videos in {out / 'videos'}, annotations (UCF-101 layout) "
        f"in {out / 'annotations'}"
    )
    return 0


def cmd_flow_extract(args: argparse.Namespace) -> int:
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
        args.videos, args.out, config, relpaths, workers=args.workers, timeout=args.timeout
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


def cmd_models(args: argparse.Namespace) -> int:
    from vidbench.models.costs import describe_models

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
    from vidbench.models.weights import import_pytorch_i3d

    out = import_pytorch_i3d(args.source, args.stream, args.out, args.labels)
    print(f"wrote {out}: i3d {args.stream} stream with {args.labels} class names")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pytorch_lightning.utilities import rank_zero_only

    from vidbench.bench.config import load_sweep
    from vidbench.bench.leaderboard import markdown, summarise, tables, write_leaderboard
    from vidbench.bench.regress import motion_check
    from vidbench.bench.runner import run_sweep
    from vidbench.bench.tracking import log_tables

    sweep = load_sweep(args.sweep, args.set)
    if args.wandb:
        sweep.wandb.mode = args.wandb
    out = args.out or Path("results") / sweep.name
    records = run_sweep(sweep, out, progress=not args.no_progress)
    if rank_zero_only.rank != 0:  # DDP: the other ranks only helped train and test
        return 0
    print(markdown(records))
    paths = write_leaderboard(records, out, f"vidbench sweep {sweep.name}")
    log_tables(sweep.wandb, out / "wandb", sweep.name, tables(summarise(records)))
    print(
        f"records in {out / 'runs.jsonl'}; leaderboard in {paths['markdown']} and {paths['html']}"
    )
    offline = out / "wandb" / "wandb"
    if any(offline.glob("offline-run-*")):
        print(f"W&B runs are offline in {offline}; upload: wandb sync {offline}/offline-run-*")
    failed = [r["cell"] for r in records if r["status"] != "ok"]
    code = 1 if failed else 0
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)} (errors in runs.jsonl)")
    if sweep.expect_temporal_beats_frame_avg:
        passed, report = motion_check(records)
        print(
            "\nSanity check of the paper's claim (motion models beat frame_avg, which sees "
            "no motion and should sit near chance):\n" + report
        )
        print("sanity check: " + ("PASSED" if passed else "FAILED"))
        code = code or (0 if passed else 1)
    return code


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from vidbench.bench.leaderboard import markdown, write_leaderboard
    from vidbench.bench.results import unique_records

    records = unique_records([r for d in unique_folders(args.dirs) for r in latest_records(d)])
    if not records:
        raise ValueError(f"no run records in {', '.join(map(str, args.dirs))}")
    print(markdown(records))
    paths = write_leaderboard(records, args.out or args.dirs[0], args.title)
    print(f"wrote {paths['markdown']} and {paths['html']}")
    return 0


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


def latest_records(directory: Path) -> list[dict]:
    from vidbench.bench.results import RUNS_FILE, latest_by_cell, read_records

    if not (directory / RUNS_FILE).is_file() and not directory.is_file():
        raise FileNotFoundError(f"{directory}: no {RUNS_FILE} here")
    return list(latest_by_cell(read_records(directory)).values())


def cmd_regress(args: argparse.Namespace) -> int:
    from vidbench.bench.regress import (
        check_tolerance,
        compare,
        environment_changes,
        read_baseline,
        write_baseline,
    )
    from vidbench.bench.results import RUNS_FILE

    check_tolerance(args.min_points)
    records = latest_records(args.dir)
    if args.update:
        runs = args.dir / RUNS_FILE if args.dir.is_dir() else args.dir
        refuse_same_file(args.baseline, [runs], "--baseline")
        write_baseline(records, args.baseline)
        print(f"wrote baseline {args.baseline} from {len(records)} records in {args.dir}")
        return 0
    if not args.baseline.is_file():
        raise FileNotFoundError(f"{args.baseline}: no such baseline (make one with --update)")
    baseline = read_baseline(args.baseline)
    rows = compare(records, baseline, args.min_points)
    changed = environment_changes(baseline)
    if changed:
        log.warning(
            "the baseline was made with other package versions (%s); the synthetic data and "
            "the training numerics depend on them, so numbers can move without a code change",
            ", ".join(changed),
        )
    width = max([len("cell"), *(len(row["cell"]) for row in rows)]) + 2
    print(f"{'cell':<{width}}{'baseline':>10}{'tolerance':>11}{'ours':>8}")
    for row in rows:
        ours = "missing" if row["ours"] is None else f"{row['ours']:.1f}"
        flag = "  REGRESSED" if row["regressed"] else ""
        print(
            f"{row['cell']:<{width}}{row['baseline']:>10.1f}{row['tolerance']:>11.1f}"
            f"{ours:>8}{flag}"
        )
    regressed = [row["cell"] for row in rows if row["regressed"]]
    if regressed:
        print(f"{len(regressed)} of {len(rows)} cells regressed: {', '.join(regressed)}")
        return 1
    print(f"no regression in {len(rows)} cells")
    return 0


def cmd_throughput(args: argparse.Namespace) -> int:
    import torch

    from vidbench.bench.throughput import measure
    from vidbench.models import create_model
    from vidbench.models.costs import count_macs, example_inputs

    options = {"modalities": tuple(args.modality.split("+"))} if args.modality else {}
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = create_model(args.arch, args.num_classes, **options)
    inputs = example_inputs(model.input_spec, args.batch)
    result = measure(model, inputs, device, args.precision, args.repeats)
    result.update(
        arch=args.arch, gmacs_per_clip=count_macs(args.arch, args.num_classes, **options)[0] / 1e9
    )
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        print(f"{key:>20}: {value:.2f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from vidbench.bench.predict import Predictor, load_model, predict_videos

    if args.stride is not None and args.window is None:
        raise ValueError("--stride goes with --window")
    if args.smooth > 1 and args.window is None:
        raise ValueError("--smooth averages windows: give --window W (and --stride S)")
    if args.out is not None and len(args.videos) > 1 and args.out.suffix:
        raise ValueError(f"--out {args.out}: with several videos, give a folder")
    device = resolve_device(args.device)
    predictor = Predictor(
        load_model(args.checkpoint), device, progress=not args.no_progress, timeout=args.timeout
    )
    results = predict_videos(
        predictor,
        args.videos,
        args.out,
        top_k=args.top_k,
        frames=args.frames,
        window=args.window,
        stride=args.stride,
        smooth=args.smooth,
    )
    for result in results:
        if args.json:
            print(json.dumps(result))
            continue
        if "error" in result:
            print(f"{result['video']}: error: {result['error']}")
            continue
        guesses = ", ".join(f"{g['label']} {g['probability']:.1%}" for g in result["top_k"])
        print(f"{result['video']} ({result['frames']} frames at {result['fps']:g} fps): {guesses}")
        for window in result.get("windows", []):
            best = window["top_k"][0]
            print(
                f"  {window['start']:8.2f}-{window['end']:.2f} s  "
                f"{best['label']} {best['probability']:.1%}"
            )
        if "annotated" in result:
            print(f"  annotated video: {result['annotated']}")
    failed = [r["video"] for r in results if "error" in r]
    if failed:
        print(
            f"{len(failed)} of {len(results)} videos failed: {', '.join(failed)}", file=sys.stderr
        )
        return 1
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
    extract.add_argument(
        "--workers", type=POSITIVE_INT, default=1, help="parallel videos (processes)"
    )
    extract.add_argument("--algorithm", choices=("tvl1", "farneback"), default="tvl1")
    extract.add_argument(
        "--fps", type=float, default=25.0, help="frame rate flow is computed at (0-240]"
    )
    extract.add_argument("--bound", type=float, default=20.0, help="truncation in pixels (0-255]")
    add_timeout(extract, "its video counts as failed")
    extract.set_defaults(func=cmd_flow_extract)

    listing = commands.add_parser(
        "models", help="registered architectures with parameters and multiply-adds"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.add_argument("--num-classes", type=POSITIVE_INT, default=400)
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

    run = commands.add_parser("run", help="run a sweep (default: the built-in smoke sweep)")
    run.add_argument(
        "sweep",
        nargs="?",
        default=None,
        help="sweep YAML file or built-in name (smoke, table2, table4, splits; default smoke)",
    )
    run.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override sweep keys, e.g. --set arch=[i3d,c3d] train.max_steps=200",
    )
    run.add_argument(
        "--out", type=Path, default=None, help="results folder (default results/<sweep>)"
    )
    run.add_argument(
        "--wandb",
        choices=("offline", "online", "disabled"),
        default=None,
        help="W&B mode (default: the sweep's, else $WANDB_MODE, else offline)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    board = commands.add_parser("leaderboard", help="Markdown and HTML leaderboard of run folders")
    board.add_argument("dirs", nargs="+", type=Path, help="folders holding runs.jsonl")
    board.add_argument("--out", type=Path, default=None, help="output folder (default: the first)")
    board.add_argument("--title", default="vidbench leaderboard")
    board.set_defaults(func=cmd_leaderboard)

    regress = commands.add_parser("regress", help="compare runs with a stored accuracy baseline")
    regress.add_argument("--baseline", required=True, type=Path)
    regress.add_argument("dir", nargs="?", type=Path, default=Path("results/smoke"))
    regress.add_argument(
        "--min-points",
        type=NON_NEGATIVE,
        default=2.0,
        help="smallest tolerance in top-1 points (else 2 std across baseline seeds)",
    )
    regress.add_argument("--update", action="store_true", help="write the baseline from DIR")
    regress.set_defaults(func=cmd_regress)

    speed = commands.add_parser("throughput", help="training and inference clips/s of one model")
    speed.add_argument("--arch", required=True)
    speed.add_argument("--modality", default=None, help="rgb, flow or rgb+flow (i3d, two_stream)")
    speed.add_argument("--batch", type=POSITIVE_INT, default=8)
    speed.add_argument("--precision", default=None, help="32-true, bf16-mixed or 16-mixed")
    speed.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    speed.add_argument("--repeats", type=POSITIVE_INT, default=5, help="timed steps after warm-up")
    speed.add_argument("--num-classes", type=POSITIVE_INT, default=400)
    speed.add_argument("--json", action="store_true")
    speed.set_defaults(func=cmd_throughput)

    predict = commands.add_parser("predict", help="top-k labels of videos, whole or windowed")
    predict.add_argument("videos", nargs="+", type=Path)
    predict.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        type=Path,
        help="a VideoClassifier checkpoint; twice for an i3d rgb + flow pair (fused)",
    )
    predict.add_argument("--top-k", type=POSITIVE_INT, default=5)
    predict.add_argument(
        "--frames", type=POSITIVE_INT, default=None, help="only the first N frames"
    )
    predict.add_argument("--window", type=POSITIVE_INT, default=None, help="window of W frames")
    predict.add_argument(
        "--stride", type=POSITIVE_INT, default=None, help="a window every S frames"
    )
    predict.add_argument(
        "--smooth",
        type=POSITIVE_INT,
        default=1,
        help="average the last K windows before labelling",
    )
    add_timeout(predict, "the video counts as failed")
    predict.add_argument(
        "--out",
        type=Path,
        default=None,
        help="annotated video (.mp4); a folder when there are several videos (their paths "
        "below their common folder are kept)",
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per video")
    predict.add_argument("--device", default="cpu", help="cpu or cuda")
    predict.add_argument("--no-progress", action="store_true", help="no progress bars")
    predict.set_defaults(func=cmd_predict)
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
