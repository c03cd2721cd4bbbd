"""`vidbench predict`: what happens in a video, how sure the model is, and when.

Preprocessing comes from the checkpoint (its `ClipSpec`, stored as
`VideoClassifier.hparams.preprocessing`: fps, shorter side, centre crop, clip length and
frame interval, flow algorithm and bound), never from the user. Flow is computed on the
fly and quantised exactly as stored flow is.

- Whole-video mode follows the model's own test view: a model tested on the whole video
  (I3D, `full_video_test`) sees it in one pass (a video over `MAX_PASS_FRAMES` in as few
  equal passes as fit, a video shorter than a clip looped to one, as the test loader
  does); a clip model's clips of `clip_len` frames (every `frame_interval`) tile the
  video. Either way the softmax of each pass is weighted by the frames it sees, so a
  15-frame remainder does not count as much as a 64-frame clip.
- Window mode: a window of `window` frames every `stride` frames (at the checkpoint's
  fps), and one ending at the last frame, so the tail is covered; each window's label
  comes from the average of the last `smooth` windows' softmax.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.decoders import DecodeError, call_with_timeout, open_video, read_frames
from vidbench.datasets.files import refuse_same_file
from vidbench.datasets.flow import FlowEstimator, quantise
from vidbench.datasets.sampling import ClipSampler, retime
from vidbench.datasets.transforms import to_model_input
from vidbench.models.classifier import VideoClassifier
from vidbench.models.registry import streams_trained_apart
from vidbench.models.weights import fuse_i3d_streams, load_classifier

log = logging.getLogger(__name__)


def load_model(checkpoints: list[str | Path]) -> VideoClassifier:
    """One checkpoint, or an I3D rgb stream and an I3D flow stream fused (logits averaged)."""
    if len(checkpoints) == 1:
        module = load_classifier(checkpoints[0])
    elif len(checkpoints) == 2:
        streams = [load_classifier(path) for path in checkpoints]
        by_stream = {}
        for path, stream in zip(checkpoints, streams, strict=True):
            modalities = tuple((stream.hparams.model_options or {}).get("modalities", ()))
            arch = stream.hparams.arch
            if not streams_trained_apart(arch) or modalities not in (("rgb",), ("flow",)):
                raise ValueError(
                    f"{path}: two checkpoints must be an i3d rgb stream and an i3d flow stream; "
                    f"this is {stream.hparams.arch} {modalities or ''}"
                )
            by_stream[modalities[0]] = stream
        if set(by_stream) != {"rgb", "flow"}:
            raise ValueError("two checkpoints must be one i3d rgb stream and one i3d flow stream")
        module = fuse_i3d_streams(by_stream["rgb"], by_stream["flow"])
    else:
        raise ValueError(f"give one checkpoint or an rgb and a flow one, not {len(checkpoints)}")
    where = " + ".join(map(str, checkpoints))
    if not module.hparams.class_names:
        raise ValueError(f"{where}: carries no class names, so its predictions cannot be named")
    if not module.hparams.get("preprocessing"):
        raise ValueError(
            f"{where}: carries no preprocessing (the clip settings it was trained on); "
            "use a checkpoint written by `vidbench run` or `vidbench weights import`"
        )
    ClipSpec.from_dict(module.hparams.preprocessing, f"{where}: preprocessing")  # complete?
    return module.eval()


# The longest single pass in whole-video mode: 10 s at 25 fps, the Kinetics clip the
# paper tests I3D on whole; a longer video takes several (memory grows with the frames).
MAX_PASS_FRAMES = 250


@dataclass
class Window:
    """Retimed frames [start, end) (`end` past the video's last frame: looped) and the
    model's softmax over classes (C,); `frames`: how many of the video's frames it saw."""

    start: int
    end: int
    probs: torch.Tensor
    frames: int


@dataclass(frozen=True)
class Timeline:
    """A video as predict sees it: `frames` at `fps` after re-timing from the source's
    `source_frames` at `source_fps`."""

    frames: int
    fps: float
    source_frames: int
    source_fps: float

    @property
    def resampled(self) -> bool:
        return abs(self.source_fps - self.fps) > 1e-3 * self.fps


def whole_video_spans(n: int, clip_frames: int, whole: bool) -> list[tuple[int, int]]:
    """The windows whole-video mode runs over `n` retimed frames: for a model tested on the
    whole video (`whole`), one span (looped to `clip_frames` if shorter), or as few equal
    spans of at most MAX_PASS_FRAMES as cover it; else `clip_frames` tiles, the last one
    what is left."""
    if not whole:
        return [(s, min(s + clip_frames, n)) for s in range(0, n, clip_frames)]
    passes = math.ceil(n / MAX_PASS_FRAMES)
    bounds = [round(i * n / passes) for i in range(passes + 1)]
    spans = list(itertools.pairwise(bounds))
    if passes == 1 and n < clip_frames:
        spans = [(0, clip_frames)]  # looped, as the test loader does
    return spans


def sliding_spans(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Windows of `window` frames every `stride` over `n` frames, plus one ending at the
    last frame when the stride does not land there (the tail is never left out)."""
    last = max(0, n - window)
    starts = list(range(0, last + 1, stride))
    if starts[-1] < last:
        starts.append(last)
    return [(s, min(s + window, n)) for s in starts]


class Predictor:
    """Runs a checkpoint over videos, window by window, on `device` (a progress bar per
    video when `progress`)."""

    def __init__(
        self,
        module: VideoClassifier,
        device: str | torch.device = "cpu",
        progress: bool = False,
        timeout: float | None = 60.0,
    ) -> None:
        self.module = module.to(device)
        self.progress = progress
        self.timeout = timeout  # seconds one decode may take (DecodeError after)
        self.device = torch.device(device)
        self.class_names = list(module.hparams.class_names)
        self.spec: ClipSpec = module.clip_spec
        self.modalities = self.spec.modalities
        self.sampler = ClipSampler(
            "full", self.spec.clip_len, self.spec.frame_interval, target_fps=self.spec.fps
        )
        self.transform = self.spec.transform("val")  # the centre crop
        self.flow = FlowEstimator(self.spec.flow_config) if "flow" in self.modalities else None

    @property
    def clip_frames(self) -> int:
        """Retimed frames one clip spans in whole-video mode."""
        return self.spec.clip_len * self.spec.frame_interval

    def inputs(
        self, video: Any, size: tuple[int, int], timeline: np.ndarray, start: int, end: int
    ) -> dict:
        """The model inputs (a batch of one, on the device) for retimed frames [start, end),
        every frame_interval-th, of a video of `size` (height, width): the data path's
        uint8 crop, converted on the device (`to_model_input`)."""
        positions = self.sampler.span_positions(len(timeline), start, end)
        params = self.transform.sample_params(*size)
        batch = {"box": torch.tensor([self.transform.shipped_size(params)])}
        if "rgb" in self.modalities:
            batch["rgb"] = self.transform(self._read(video, timeline[positions]), params)[None]
        if "flow" in self.modalities:
            stack, bound = self.spec.flow_stack, self.spec.flow_bound
            wanted = np.minimum(positions[:, None] + np.arange(stack + 1), len(timeline) - 1)
            unique, inverse = np.unique(wanted, return_inverse=True)
            grey = [
                cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in self._read(video, timeline[unique])
            ]
            index = inverse.reshape(wanted.shape)
            fields = [
                quantise(self.flow(grey[index[t, s]], grey[index[t, s + 1]]), bound)
                for t in range(len(positions))
                for s in range(stack)
            ]
            batch["flow"] = self.transform.flow(np.stack(fields), params)[None]
        batch = {k: v.to(self.device) for k, v in batch.items()}
        return to_model_input(batch, self.spec.flow_stack)

    def _read(self, video: Any, indices: np.ndarray) -> np.ndarray:
        return call_with_timeout(
            lambda: read_frames(video, indices), self.timeout, getattr(video, "path", "?")
        )

    @torch.no_grad()
    def windows(
        self,
        path: str | Path,
        frames: int | None = None,
        window: int | None = None,
        stride: int | None = None,
    ) -> tuple[list[Window], Timeline]:
        """The windows over `path` (whole-video mode when `window` is None: the model's own
        test view, `whole_video_spans`) and the video's timeline."""
        video = call_with_timeout(lambda: open_video(path), self.timeout, path)
        timeline = retime(video.num_frames, video.fps, self.sampler.target_fps)
        if frames is not None:
            timeline = timeline[:frames]
        n = len(timeline)
        if window is None:
            spans = whole_video_spans(n, self.clip_frames, self.spec.full_video_test)
        else:
            spans = sliding_spans(n, window, stride or window)
        size = tuple(self._read(video, np.array([0]))[0].shape[:2])
        out = []
        bar = tqdm(spans, desc=Path(path).name, unit="window", disable=not self.progress)
        for start, end in bar:
            logits = self.module(self.inputs(video, size, timeline, start, end))
            probs = logits.float().softmax(dim=-1)[0].cpu()
            out.append(Window(start, end, probs, frames=min(end, n) - start))
        described = Timeline(n, float(self.spec.fps), video.num_frames, float(video.fps))
        return out, described

    def top_k(self, probs: torch.Tensor, k: int) -> list[dict[str, Any]]:
        values, indices = probs.topk(min(k, len(probs)))
        return [
            {"label": self.class_names[i], "probability": round(float(v), 6)}
            for v, i in zip(values, indices.tolist(), strict=True)
        ]

    def predict(
        self,
        path: str | Path,
        top_k: int = 5,
        frames: int | None = None,
        window: int | None = None,
        stride: int | None = None,
        smooth: int = 1,
    ) -> dict[str, Any]:
        """{"video", "frames", "fps" (as the model saw it), "source_frames", "source_fps",
        "resampled", "top_k": [{label, probability}] of the windows' softmax weighted by the
        frames each saw, and in window mode "windows": [{"start", "end" (seconds),
        "top_k"}] with smoothed probabilities}."""
        spans, timeline = self.windows(path, frames, window, stride)
        weights = torch.tensor([float(w.frames) for w in spans])
        probs = torch.stack([w.probs for w in spans])
        video_probs = (probs * weights[:, None]).sum(dim=0) / weights.sum()
        fps = timeline.fps
        result = {
            "video": str(path), "frames": timeline.frames, "fps": fps,
            "source_frames": timeline.source_frames, "source_fps": round(timeline.source_fps, 3),
            "resampled": timeline.resampled,
        }  # fmt: skip
        result["top_k"] = self.top_k(video_probs, top_k)
        if window is not None:
            result["windows"] = [
                {
                    "start": round(w.start / fps, 3),
                    "end": round(w.end / fps, 3),
                    "top_k": self.top_k(smoothed, top_k),
                }
                for w, smoothed in zip(spans, smooth_probs(spans, smooth), strict=True)
            ]
        return result


def smooth_probs(windows: list[Window], k: int) -> list[torch.Tensor]:
    """Each window's probabilities averaged with those of the k - 1 windows before it."""
    probs = [w.probs for w in windows]
    return [torch.stack(probs[max(0, i - k + 1) : i + 1]).mean(dim=0) for i in range(len(probs))]


def annotate(
    source: str | Path, out: str | Path, result: dict[str, Any], timeout: float | None = 60.0
) -> int:
    """Re-encode `source` to `out` with the current label and probability drawn on every
    frame; same frame count and frame rate (odd frame sizes are padded to even ones, as
    H.264 needs). Every decode step gives up after `timeout` s. Returns the frames written."""
    import av

    from vidbench.datasets.video_writer import VideoWriter

    windows = result.get("windows") or [
        {"start": 0.0, "end": result["frames"] / result["fps"], "top_k": result["top_k"]}
    ]
    starts = np.array([w["start"] for w in windows])
    container = call_with_timeout(lambda: av.open(str(source)), timeout, source)
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or result["fps"]
    decoded = container.decode(stream)
    frames = iter(lambda: call_with_timeout(lambda: next(decoded, None), timeout, source), None)
    try:
        with VideoWriter(out, rate) as writer:
            for index, frame in enumerate(frames):
                seconds = float(index / rate)
                current = windows[max(0, int(np.searchsorted(starts, seconds, "right")) - 1)]
                best = current["top_k"][0]
                image = frame.to_ndarray(format="rgb24")
                draw_label(image, f"{best['label']} {best['probability']:.0%}")
                writer.write(image)
    except DecodeError:  # timed out: the abandoned decode may still use the container
        raise
    except BaseException:
        container.close()
        raise
    container.close()
    return writer.frames


def draw_label(image: np.ndarray, text: str) -> None:
    """Text on a dark band at the top of an RGB frame, scaled to the frame width."""
    scale = max(0.3, image.shape[1] / 640)
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (min(image.shape[1], width + 8), height + base + 8), (0, 0, 0), -1)
    cv2.putText(
        image,
        text,
        (4, height + 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )


def annotated_paths(videos: list[Path], out: Path, inputs: list[Path] = ()) -> list[Path]:
    """Where each video's annotated copy goes: `out` itself for one video (unless it is a
    folder); else `out/<path below the videos' common folder>.annotated.mp4`, so two
    `clip.avi` in different folders stay two files. Refuses (ValueError) two videos whose
    copies would be one file (`a.mkv` and `a.webm`), naming both, and any target that is
    one of the videos or the other `inputs` (the checkpoints)."""
    if len(videos) == 1 and not out.is_dir():
        targets = [out]
    else:
        folders = [Path(os.path.abspath(v)).parent for v in videos]
        common = Path(os.path.commonpath(folders))
        targets = [
            out / Path(os.path.abspath(v)).relative_to(common).with_suffix(".annotated.mp4")
            for v in videos
        ]
    first: dict[Path, Path] = {}
    for video, target in zip(videos, targets, strict=True):
        other = first.setdefault(target, video)
        if other != video:
            raise ValueError(
                f"{other} and {video} would both be annotated to {target}; rename one, or "
                "predict them in two runs"
            )
        refuse_same_file(target, [*videos, *inputs], "--out")
    return targets


def predict_videos(
    predictor: Predictor,
    videos: list[Path],
    out: Path | None,
    inputs: list[Path] = (),
    **options: Any,
) -> list[dict[str, Any]]:
    """One result per video; an unreadable or missing video gives {"video", "error"}.
    Annotated copies go under `out`, which may replace no video and none of `inputs`."""
    targets = annotated_paths(videos, out, inputs) if out is not None else [None] * len(videos)
    results = []
    for path, target in zip(videos, targets, strict=True):
        try:
            result = predictor.predict(path, **options)
            if target is not None:
                result["annotated"] = str(target)
                result["annotated_frames"] = annotate(path, target, result, predictor.timeout)
        except (DecodeError, OSError, ValueError) as error:
            log.warning("skipped: %s", error)
            result = {"video": str(path), "error": str(error)}
        results.append(result)
    return results
