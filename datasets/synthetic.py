"""The built-in synthetic-motion dataset, written as real encoded videos in UCF-101 layout.

Every video shows a random texture; classes differ only in how it moves (direction,
rotation sense, zoom), never in how it looks: one frame says nothing about the class, so
a frame-level model sits at chance while a temporal model can learn it. Videos are
grouped like UCF-101 and no group is in both splits. Every video has a texture of its own:
with a texture shared by a group, a network memorises texture -> class on the training
set and never has to look at the motion.

Layout: `OUT/videos/<Class>/v_<Class>_gNN_cNN.avi`, `OUT/annotations/classInd.txt`,
`trainlist01.txt`, `testlist01.txt`, and `OUT/synth.json` with the parameters.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vidbench.datasets.video_writer import write_video

log = logging.getLogger(__name__)

# name -> (translation direction (x, y) in units of speed, rotation sense, zoom sense)
MOTIONS: dict[str, tuple[tuple[float, float], int, int]] = {
    "MoveRight": ((1, 0), 0, 0),
    "MoveLeft": ((-1, 0), 0, 0),
    "MoveUp": ((0, -1), 0, 0),
    "MoveDown": ((0, 1), 0, 0),
    "RotateClockwise": ((0, 0), 1, 0),
    "RotateCounterClockwise": ((0, 0), -1, 0),
    "ZoomIn": ((0, 0), 0, 1),
    "ZoomOut": ((0, 0), 0, -1),
    "MoveUpRight": ((math.sqrt(0.5), -math.sqrt(0.5)), 0, 0),
    "MoveDownLeft": ((-math.sqrt(0.5), math.sqrt(0.5)), 0, 0),
    "MoveUpLeft": ((-math.sqrt(0.5), -math.sqrt(0.5)), 0, 0),
    "MoveDownRight": ((math.sqrt(0.5), math.sqrt(0.5)), 0, 0),
}


MAX_VIDEOS_PER_CLASS, MAX_FRAMES, MAX_SIZE = 1000, 3000, 1080  # a test set, not a dataset


@dataclass(frozen=True)
class SynthConfig:
    classes: int = 8
    videos_per_class: int = 12
    frames: int = 40
    size: int = 64
    seed: int = 0
    fps: int = 25

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= len(MOTIONS):
            raise ValueError(f"classes must be in 2..{len(MOTIONS)}, got {self.classes}")
        for name, low, high, why in (
            ("videos_per_class", 2, MAX_VIDEOS_PER_CLASS, " (one train, one test group)"),
            ("frames", 2, MAX_FRAMES, ""),
            ("size", 16, MAX_SIZE, " pixels"),
            ("fps", 1, 120, ""),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in {low}..{high}{why}, got {value!r}")


def random_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A colourful isotropic texture, uint8 (H, W, 3): smooth blobs plus fine detail."""
    coarse = rng.uniform(0, 255, (max(2, height // 16), max(2, width // 16), 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.uniform(-60, 60, (max(2, height // 3), max(2, width // 3), 3)).astype(np.float32)
    image += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(12):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(2, max(3, min(height, width) // 10)))
        cv2.circle(image, centre, radius, rng.uniform(0, 255, 3).tolist(), -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def render_motion(
    texture: np.ndarray,
    motion: str,
    frames: int,
    height: int,
    width: int,
    speed: float,
    offset: tuple[float, float],
) -> np.ndarray:
    """Frames (T, H, W, 3) of a window over `texture` moving as `motion` says.

    speed: px/frame for translation; rotation turns `speed` degrees a frame (clockwise is
    positive on screen); zoom changes the scale by 1% x speed a frame.
    """
    (dx, dy), rotation, zoom = MOTIONS[motion]
    canvas_h, canvas_w = texture.shape[:2]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        angle = math.radians(rotation * speed * t)
        scale = 1.0 + 0.01 * speed * (t if zoom > 0 else frames - 1 - t) if zoom else 1.0
        # Output pixel q (centred) shows canvas point c + offset - v*t + R(-angle) q / scale,
        # so content moves by +v per frame and turns clockwise for rotation = 1.
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        cx = canvas_w / 2 + offset[0] - dx * speed * t
        cy = canvas_h / 2 + offset[1] - dy * speed * t
        matrix = np.array(
            [
                [cos, sin, cx - cos * width / 2 - sin * height / 2],
                [-sin, cos, cy + sin * width / 2 - cos * height / 2],
            ],
            dtype=np.float64,
        )
        out[t] = cv2.warpAffine(
            texture,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
    return out


def make_synthetic_dataset(
    out: str | Path, config: SynthConfig = SynthConfig(), progress: bool = True
) -> Path:
    """Write the dataset under `out` (reused when `out/synth.json` matches `config`)."""
    out = Path(out)
    stamp = out / "synth.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == asdict(config):
        log.info("synthetic dataset already at %s", out)
        return out
    for sub in ("videos", "annotations"):
        shutil.rmtree(out / sub, ignore_errors=True)
    height = config.size
    width = 2 * round(config.size * 4 / 3 / 2)
    per_group = 4 if config.videos_per_class >= 8 else max(1, config.videos_per_class // 2)
    groups = math.ceil(config.videos_per_class / per_group)
    test_groups = max(1, round(groups * 0.3))
    names = list(MOTIONS)[: config.classes]
    train_lines, test_lines = [], []
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=config.classes * config.videos_per_class,
        desc="synthesising",
        unit="video",
        disable=None if progress else True,
    )
    longest_shift = 2.5 * config.size / 64 * config.frames
    margin = math.ceil(
        longest_shift + 1.25 * max(height, width)
    )  # the window never leaves the texture
    for label, name in enumerate(names):
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
        for index in range(config.videos_per_class):
            group, clip = divmod(index, per_group)
            texture = random_texture(
                np.random.default_rng([config.seed, label, group, clip]), 2 * margin, 2 * margin
            )
            clip_rng = np.random.default_rng([config.seed, label, group, clip, 1])
            speed = float(clip_rng.uniform(1.0, 2.5)) * config.size / 64
            offset = tuple(clip_rng.uniform(-0.25, 0.25, 2) * max(height, width))
            frames = render_motion(texture, name, config.frames, height, width, speed, offset)
            rel = f"{name}/v_{name}_g{group + 1:02d}_c{clip + 1:02d}.avi"
            write_video(out / "videos" / rel, frames, config.fps)
            (test_lines if group < test_groups else train_lines).append(rel)
            bar.update()
    bar.close()
    lists = {
        "classInd.txt": [f"{i + 1} {name}" for i, name in enumerate(names)],
        "trainlist01.txt": [f"{rel} {names.index(rel.split('/')[0]) + 1}" for rel in train_lines],
        "testlist01.txt": test_lines,
    }
    for file, lines in lists.items():
        (out / "annotations" / file).write_text("\r\n".join(lines) + "\r\n")  # CRLF, like UCF-101
    stamp.write_text(json.dumps(asdict(config), indent=2))
    return out
