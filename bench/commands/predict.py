"""`vidbench predict`: top-k labels of videos, whole or windowed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidbench.bench.commands import (
    POSITIVE_INT,
    add_progress,
    add_timeout,
    resolve_device,
    wants_progress,
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser("predict", help="top-k labels of videos, whole or windowed")
    predict.add_argument("videos", nargs="+", type=Path, help="video files")
    predict.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        type=Path,
        help="a VideoClassifier checkpoint; twice for an i3d rgb + flow pair (fused)",
    )
    predict.add_argument("--top-k", type=POSITIVE_INT, default=5, help="labels shown per video")
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
    add_progress(predict)
    predict.set_defaults(func=predict_command)


SHOWN_FROM = 0.001  # labels under 0.1% are left out of the printed list (not of --json)


def shown(top_k: list[dict]) -> list[dict]:
    """The labels worth printing: the first, and the others from SHOWN_FROM up."""
    return top_k[:1] + [g for g in top_k[1:] if g["probability"] >= SHOWN_FROM]


def predict_command(args: argparse.Namespace) -> int:
    from vidbench.bench.precheck import check_device

    check_device(args.device)  # before torch is imported: a wrong device costs nothing
    from vidbench.bench.predict import Predictor, annotated_paths, load_model, predict_videos

    if args.stride is not None and args.window is None:
        raise ValueError("--stride goes with --window")
    if args.smooth > 1 and args.window is None:
        raise ValueError("--smooth averages windows: give --window W (and --stride S)")
    if args.out is not None and len(args.videos) > 1 and args.out.suffix:
        raise ValueError(f"--out {args.out}: with several videos, give a folder")
    if args.out is not None:  # before the model loads: a refusal costs nothing
        annotated_paths(args.videos, args.out, args.checkpoint)
    device = resolve_device(args.device)
    predictor = Predictor(
        load_model(args.checkpoint), device, progress=wants_progress(args), timeout=args.timeout
    )
    results = predict_videos(
        predictor,
        args.videos,
        args.out,
        args.checkpoint,
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
        guesses = ", ".join(f"{g['label']} {g['probability']:.1%}" for g in shown(result["top_k"]))
        seen = f"{result['frames']} frames at {result['fps']:g} fps"
        if result["resampled"]:
            seen = (
                f"{result['source_frames']} frames at {result['source_fps']:g} fps, "
                f"resampled to {seen}"
            )
        print(f"{result['video']} ({seen}): {guesses}")
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
