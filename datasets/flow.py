"""Optical flow as a stored, versioned modality (docs/protocol.md 2): extraction, storage, loading.

Flow is computed on grayscale frames re-timed to `fps` (25 by default), between
consecutive frames: field t goes from frame t to frame t+1, so a video of N re-timed
frames has N-1 fields. Each component is truncated to [-bound, bound] px (bound 20) and
quantised to 8 bits with 0 exact: q = round(v / bound * 127) + 128, so the round-trip
error is at most bound / 254 px (0.079 px). Fields are stored as lossless RGB H.264
(libx264rgb, qp 0; R = dx, G = dy, B = 128) in `<video path without extension>.mp4`
under the flow root, mirroring the video tree, so the same decord reader loads RGB and
flow. A provenance record `<same>.json` beside each file says how it was made; the
loader refuses flow whose provenance differs from what the run asks for.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidbench.datasets.decoders import DecodeError, call_with_timeout, open_video, read_frames
from vidbench.datasets.files import atomic_write_text, lock_temporary, same_file
from vidbench.datasets.sampling import retime

log = logging.getLogger(__name__)

ALGORITHMS = ("tvl1", "farneback")
FLOW_SUFFIX = ".mp4"
FORMAT_VERSION = 1
MAX_FPS = 240.0  # frame rates flow can be computed at
MAX_BOUND = 255.0  # truncation in pixels (the paper's is 20)
# Flow vectors are in pixels of the frame at a shorter side of at most this (the paper's
# 256): computed at the source's size and scaled down for a larger source, so the bound
# means one motion in every video (20 px at 256 lines would be 56 px at 720).
UNIT_SHORT_SIDE = 256
UNITS = f"px of the frame at a shorter side of at most {UNIT_SHORT_SIDE}"
QUANT_LEVELS = 127  # q = round(v / bound * 127) + 128, q in [1, 255]
QUANTISATION = "uint8: q = round(clip(v, -bound, bound) / bound * 127) + 128; R=dx, G=dy, B=128"
# q -> v / bound in [-1, 1] (`transforms.to_model_input` computes the same on the device)
FLOW_UNIT = ((np.arange(256, dtype=np.float64) - 128) / QUANT_LEVELS).clip(-1, 1).astype(np.float32)
# OpenCV's defaults, written out so that they are recorded in the provenance
DEFAULT_PARAMS: dict[str, dict[str, float | int]] = {
    "tvl1": {
        "tau": 0.25,
        "lambda": 0.15,
        "theta": 0.3,
        "nscales": 5,
        "warps": 5,
        "epsilon": 0.01,
        "innnerIterations": 30,
        "outerIterations": 10,
        "scaleStep": 0.8,
        "gamma": 0.0,
        "medianFiltering": 5,
    },
    "farneback": {
        "pyr_scale": 0.5,
        "levels": 3,
        "winsize": 15,
        "iterations": 3,
        "poly_n": 5,
        "poly_sigma": 1.2,
    },
}


class FlowMismatch(ValueError):
    """Stored flow was made differently from what the run asks for."""


@dataclass(frozen=True)
class FlowConfig:
    """How flow is made; everything here is recorded in, and checked against, provenance."""

    algorithm: str = "tvl1"
    fps: float = 25.0
    bound: float = 20.0
    params: dict[str, float | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise ValueError(f"flow fps must be in (0, {MAX_FPS:g}], got {self.fps:g}")
        if not (math.isfinite(self.bound) and 0 < self.bound <= MAX_BOUND):
            raise ValueError(f"flow bound must be in (0, {MAX_BOUND:g}] pixels, got {self.bound:g}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"flow algorithm {self.algorithm!r} is not one of {ALGORITHMS}")
        unknown = set(self.params) - set(DEFAULT_PARAMS[self.algorithm])
        if unknown:
            raise ValueError(
                f"unknown {self.algorithm} parameters {sorted(unknown)}; "
                f"choose from {sorted(DEFAULT_PARAMS[self.algorithm])}"
            )

    @property
    def resolved_params(self) -> dict[str, float | int]:
        return {**DEFAULT_PARAMS[self.algorithm], **self.params}

    def provenance(self) -> dict[str, Any]:
        """The part of a provenance record that a run can ask for."""
        return {
            "format_version": FORMAT_VERSION,
            "algorithm": self.algorithm,
            "params": self.resolved_params,
            "bound": self.bound,
            "fps": self.fps,
            "quantisation": QUANTISATION,
            "units": UNITS,
        }


def flow_path(flow_root: str | Path, video_relpath: str | Path) -> Path:
    """Where the flow of the video at `video_relpath` (relative to its root) is stored."""
    return Path(flow_root) / Path(video_relpath).with_suffix(FLOW_SUFFIX)


def provenance_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def vector_scale(height: int, width: int) -> float:
    """What flow measured on a frame of this size is multiplied by to be in `UNITS`."""
    return min(1.0, UNIT_SHORT_SIDE / min(height, width))


class FlowEstimator:
    """Dense flow between two grayscale uint8 frames (H, W) -> float32 (H, W, 2), in
    pixels of the frame at a shorter side of at most UNIT_SHORT_SIDE (`UNITS`)."""

    def __init__(self, config: FlowConfig) -> None:
        self.config = config
        p = config.resolved_params
        if config.algorithm == "tvl1":
            self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(
                tau=p["tau"],
                lambda_=p["lambda"],
                theta=p["theta"],
                nscales=int(p["nscales"]),
                warps=int(p["warps"]),
                epsilon=p["epsilon"],
                innnerIterations=int(p["innnerIterations"]),
                outerIterations=int(p["outerIterations"]),
                scaleStep=p["scaleStep"],
                gamma=p["gamma"],
                medianFiltering=int(p["medianFiltering"]),
            )

    def __call__(self, previous: np.ndarray, following: np.ndarray) -> np.ndarray:
        field = self._at_source_size(previous, following)
        scale = vector_scale(*previous.shape[:2])
        return field if scale == 1.0 else field * np.float32(scale)

    def _at_source_size(self, previous: np.ndarray, following: np.ndarray) -> np.ndarray:
        if self.config.algorithm == "tvl1":
            return self._tvl1.calc(previous, following, None)
        p = self.config.resolved_params
        return cv2.calcOpticalFlowFarneback(
            previous,
            following,
            None,
            p["pyr_scale"],
            int(p["levels"]),
            int(p["winsize"]),
            int(p["iterations"]),
            int(p["poly_n"]),
            p["poly_sigma"],
            0,
        )


def quantise(flow: np.ndarray, bound: float) -> np.ndarray:
    """float (..., 2) px -> uint8 (..., 3): R = dx, G = dy, B = 128."""
    q = np.rint(np.clip(flow, -bound, bound) * (QUANT_LEVELS / bound)) + 128
    out = np.full((*flow.shape[:-1], 3), 128, np.uint8)
    out[..., :2] = q.astype(np.uint8)
    return out


def dequantise(q: np.ndarray) -> np.ndarray:
    """uint8 (..., >=2) -> float32 (..., 2) in [-1, 1] units of the bound."""
    return FLOW_UNIT[q[..., :2]]


def extract_flow(
    video: str | Path,
    out: str | Path,
    config: FlowConfig,
    chunk: int = 64,
    timeout: float | None = 60.0,
) -> dict[str, Any]:
    """Compute and store the flow of `video` at `out` (+ provenance); return the provenance.

    Files are written to temporary names and renamed, the provenance last, so a killed
    run leaves either a complete pair or nothing at the final names. Every decode call
    gives up after `timeout` s (DecodeError), so a stalled file cannot hang the run.
    """
    import av

    out = Path(out)
    if same_file(out, video):
        raise ValueError(f"{out} is the video itself; flow must go to another file")
    source = call_with_timeout(lambda: open_video(video), timeout, video)
    timeline = retime(source.num_frames, source.fps, config.fps)
    if len(timeline) < 2:
        raise DecodeError(
            video, f"needs at least 2 frames at {config.fps:g} fps for flow, has {len(timeline)}"
        )
    estimator = FlowEstimator(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}{out.suffix}")
    hold = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    lock_temporary(hold)  # until the rename: a second run on this folder leaves it alone
    height = width = None
    try:
        with av.open(str(tmp), "w") as container:
            stream = container.add_stream("libx264rgb", rate=round(config.fps))
            stream.pix_fmt = "rgb24"
            stream.options = {"qp": "0", "preset": "veryfast", "g": str(round(config.fps))}
            previous = None
            for start in range(0, len(timeline), chunk):
                positions = timeline[start : start + chunk]
                frames = call_with_timeout(
                    lambda positions=positions: read_frames(source, positions), timeout, video
                )
                for frame in frames:
                    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
                    if previous is None:
                        height, width = grey.shape
                        stream.height, stream.width = height, width
                    else:
                        q = quantise(estimator(previous, grey), config.bound)
                        container.mux(stream.encode(av.VideoFrame.from_ndarray(q, format="rgb24")))
                    previous = grey
            container.mux(stream.encode())
        record = {
            **config.provenance(),
            "opencv": cv2.__version__,
            "codec": "libx264rgb qp=0",
            "flow_frames": len(timeline) - 1,
            "source": {
                "frames": source.num_frames,
                "fps": round(source.fps, 3),
                "height": height,
                "width": width,
            },
        }
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(hold)
    meta = provenance_path(out)
    atomic_write_text(meta, json.dumps(record, indent=1))
    return record


def read_provenance(path: str | Path) -> dict[str, Any]:
    meta = provenance_path(path)
    try:
        return json.loads(meta.read_text())
    except FileNotFoundError:
        raise FlowMismatch(
            f"{path}: no provenance record {meta.name} beside it; re-extract the flow"
        ) from None
    except json.JSONDecodeError as error:
        raise FlowMismatch(f"{meta}: unreadable provenance ({error})") from None


def check_provenance(path: str | Path, config: FlowConfig) -> dict[str, Any]:
    """The provenance of the flow at `path`; FlowMismatch naming every field that differs."""
    record = read_provenance(path)
    wanted = config.provenance()
    source = record.get("source") or {}
    small = min(source.get("height") or 10**9, source.get("width") or 10**9) <= UNIT_SHORT_SIDE
    if "units" not in record and small:  # extracted before units were recorded: the same
        record = {**record, "units": UNITS}
    differences = [
        f"{key}: stored {record.get(key)!r}, asked {value!r}"
        for key, value in wanted.items()
        if record.get(key) != value
    ]
    if differences:
        raise FlowMismatch(
            f"{path} was extracted differently from what this run asks for: "
            + "; ".join(differences)
        )
    return record


def load_flow(path: str | Path) -> np.ndarray:
    """All flow fields of the file at `path`: float32 (T, H, W, 2), (dx, dy) / bound in [-1, 1]."""
    video = open_video(path)
    return dequantise(read_frames(video, np.arange(video.num_frames)))
