"""The built-in synthetic-motion tasks, written as real encoded videos in UCF-101 layout.

Every video shows a random texture; classes differ only in how it moves, never in how it
looks: one frame says nothing about the class, so a frame-level model sits at chance
while a temporal model can learn the task. Each task isolates one capability (`TASKS`):

- `direction`: which way the texture moves (translation, rotation sense, zoom): motion at all.
- `order`: two motions and a pause in a loop (A, B, still, A, B, ...); classes differ only
  in their order (right-then-up vs up-then-right), so a model that pools motion over time
  without order can tell the pair but not the order: at most 50%.
- `speed`: how fast the texture moves (slow, medium, fast: 1, 1.6, 2.56 px/frame at 64
  lines, each video x 0.75-1.25, so neighbours overlap a little), in a random direction.
- `long_range`: two short motions in a still video, further apart than `frames` / 4 and
  within 0.6 x `frames`; the class is their order: a clip shorter than the gap sees one
  event, so it can tell the pair but not the order (50%).
- `nuisance`: `direction` under camera shake, a drifting exposure, a distractor disc moving
  its own way and videos of varying length.

Videos are grouped like UCF-101 and no group is in both splits. Every video has a texture
of its own: with a texture shared by a group, a network memorises texture -> class on the
training set and never has to look at the motion.

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

from vidbench.datasets.files import atomic_write_text, locked
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
# order / long_range: class -> (first motion, second motion); each pair shares its motions
PAIRS: dict[str, tuple[str, str]] = {
    "RightThenUp": ("MoveRight", "MoveUp"),
    "UpThenRight": ("MoveUp", "MoveRight"),
    "LeftThenDown": ("MoveLeft", "MoveDown"),
    "DownThenLeft": ("MoveDown", "MoveLeft"),
}
# speed: px/frame x size/64, each video x U(0.75, 1.25): neighbouring classes overlap a
# little, so even an ideal observer of the speed errs on a few percent (a ceiling under 100)
SPEEDS: dict[str, float] = {"Slow": 1.0, "Medium": 1.6, "Fast": 2.56}
SEGMENT = 4  # order: frames of each motion and of the pause


@dataclass(frozen=True)
class Task:
    classes: tuple[str, ...]
    default_classes: int
    isolates: str  # the capability, one line
    min_frames: int = 2


TASKS: dict[str, Task] = {
    "direction": Task(tuple(MOTIONS), 8, "motion at all: which way the texture moves"),
    "order": Task(
        tuple(PAIRS), 4, "temporal order: the same two motions, in either order", 2 * SEGMENT
    ),
    "speed": Task(tuple(SPEEDS), 3, "speed: the same motion, slow, medium or fast"),
    "long_range": Task(
        tuple(PAIRS), 4, "temporal footprint: the order of two events far apart", 20
    ),
    "nuisance": Task(
        tuple(MOTIONS), 8, "motion under shake, exposure drift, a distractor, varying length"
    ),
}

MAX_VIDEOS_PER_CLASS, MAX_FRAMES, MAX_SIZE = 1000, 3000, 1080  # a test set, not a dataset
MAX_SEED = 2**32 - 1  # numpy and Lightning take seeds in 0..2**32 - 1


@dataclass(frozen=True)
class SynthConfig:
    """A synthetic task's parameters. classes: the first `classes` of the task's (None:
    its default, all but direction's diagonals)."""

    classes: int | None = None
    videos_per_class: int = 12
    frames: int = 40
    size: int = 64
    seed: int = 0
    fps: int = 25
    task: str = "direction"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        task = TASKS[self.task]
        if self.classes is not None and not 2 <= self.classes <= len(task.classes):
            raise ValueError(
                f"classes must be in 2..{len(task.classes)} for task {self.task}, "
                f"got {self.classes}"
            )
        for name, low, high, why in (
            ("videos_per_class", 2, MAX_VIDEOS_PER_CLASS, " (one train, one test group)"),
            ("frames", task.min_frames, MAX_FRAMES, f" for task {self.task}"),
            ("size", 16, MAX_SIZE, " pixels"),
            ("fps", 1, 120, ""),
            ("seed", 0, MAX_SEED, ""),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in {low}..{high}{why}, got {value!r}")

    @property
    def class_names(self) -> list[str]:
        task = TASKS[self.task]
        return list(task.classes[: self.classes or task.default_classes])


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


def motion_trajectory(motion: str, frames: int, speed: float) -> np.ndarray:
    """(T, 4) float64 (x, y, angle, scale) of `MOTIONS[motion]` at `speed`: content moved
    by (x, y) px, turned `angle` degrees clockwise, scaled by `scale`.

    speed: px/frame for translation, degrees/frame for rotation, 1% x speed a frame for zoom.
    """
    (dx, dy), rotation, zoom = MOTIONS[motion]
    out = np.empty((frames, 4))
    for t in range(frames):
        scale = 1.0 + 0.01 * speed * (t if zoom > 0 else frames - 1 - t) if zoom else 1.0
        out[t] = (dx * speed * t, dy * speed * t, rotation * speed * t, scale)
    return out


def velocity_trajectory(velocity: np.ndarray) -> np.ndarray:
    """(T, 4) trajectory of a translation moving by velocity[t] (px, (T - 1, 2)) between
    frames t and t + 1."""
    out = np.zeros((len(velocity) + 1, 4))
    out[1:, :2] = np.cumsum(velocity, axis=0)
    out[:, 3] = 1.0
    return out


def render_trajectory(
    texture: np.ndarray,
    trajectory: np.ndarray,
    height: int,
    width: int,
    offset: tuple[float, float],
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of a window over `texture` following `trajectory` (T, 4)."""
    canvas_h, canvas_w = texture.shape[:2]
    out = np.empty((len(trajectory), height, width, 3), np.uint8)
    for t, (x, y, degrees, scale) in enumerate(trajectory):
        angle = math.radians(degrees)
        # Output pixel q (centred) shows canvas point c + offset - (x, y) + R(-angle) q / scale,
        # so content moves by +(x, y) and turns clockwise for a positive angle.
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        cx = canvas_w / 2 + offset[0] - x
        cy = canvas_h / 2 + offset[1] - y
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


def render_motion(
    texture: np.ndarray,
    motion: str,
    frames: int,
    height: int,
    width: int,
    speed: float,
    offset: tuple[float, float],
) -> np.ndarray:
    """Frames (T, H, W, 3) of a window over `texture` moving as `MOTIONS[motion]` says."""
    trajectory = motion_trajectory(motion, frames, speed)
    return render_trajectory(texture, trajectory, height, width, offset)


def unit_vector(motion: str) -> np.ndarray:
    return np.array(MOTIONS[motion][0], dtype=np.float64)


def task_trajectory(
    task: str, name: str, frames: int, unit: float, speed: float, rng: np.random.Generator
) -> np.ndarray:
    """The (T, 4) trajectory of one video of class `name` of `task`.

    unit: size / 64 (speeds scale with the frame); speed: this video's px/frame (direction,
    order, long_range, nuisance); rng: draws the video's own variation.
    """
    if task in ("direction", "nuisance"):
        return motion_trajectory(name, frames, speed)
    velocity = np.zeros((frames - 1, 2))
    if task == "speed":
        angle = rng.uniform(0, 2 * math.pi)
        pace = SPEEDS[name] * unit * rng.uniform(0.75, 1.25)
        velocity[:] = pace * np.array([math.cos(angle), math.sin(angle)])
    elif task == "order":  # A, B, still, A, B, still, ... from a random phase
        first, second = (unit_vector(m) * speed for m in PAIRS[name])
        phase = int(rng.integers(0, 3 * SEGMENT))
        segment = ((np.arange(frames - 1) + phase) // SEGMENT) % 3
        velocity[segment == 0], velocity[segment == 1] = first, second
    elif task == "long_range":  # still, A (k frames), still (gap), B (k frames), still
        first, second = (unit_vector(m) * speed for m in PAIRS[name])
        k = max(1, frames // 10)
        gap = int(rng.integers(math.ceil(frames / 4), math.floor(0.4 * frames) + 1))
        start = int(rng.integers(0, frames - 1 - (2 * k + gap) + 1))
        velocity[start : start + k] = first
        velocity[start + k + gap : start + 2 * k + gap] = second
    else:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    return velocity_trajectory(velocity)


def render_with_nuisances(
    texture: np.ndarray,
    trajectory: np.ndarray,
    height: int,
    width: int,
    offset: tuple[float, float],
    unit: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """`render_trajectory` of a video cut to 60-100% of its length, under camera shake
    (N(0, unit) px a frame), an exposure drifting between two gains in [0.7, 1.3], and a
    disc of a random colour crossing the frame its own way (wrapping at the edges)."""
    frames = int(rng.integers(math.ceil(0.6 * len(trajectory)), len(trajectory) + 1))
    shaken = trajectory[:frames].copy()
    shaken[:, :2] += rng.normal(0, unit, (frames, 2))
    video = render_trajectory(texture, shaken, height, width, offset).astype(np.float32)
    gain = np.linspace(*rng.uniform(0.7, 1.3, 2), frames, dtype=np.float32)
    video *= gain[:, None, None, None]
    radius = int(rng.integers(max(2, height // 10), max(3, height // 6) + 1))
    colour = rng.uniform(0, 255, 3).tolist()
    start = rng.uniform(0, 1, 2) * (width, height)
    heading = rng.uniform(0, 2 * math.pi)
    velocity = rng.uniform(0.5, 2.5) * unit * np.array([math.cos(heading), math.sin(heading)])
    for t in range(frames):
        x, y = (start + velocity * t) % (width, height)
        cv2.circle(video[t], (int(x), int(y)), radius, colour, -1)
    return np.clip(video, 0, 255).astype(np.uint8)


STAMP = "synth.json"  # the parameters, written last: the folder is complete and ours
WRITING = ".synth-writing"  # present while a writer works (or after it was killed)
LOCK = ".synth.lock"


def make_synthetic_dataset(
    out: str | Path, config: SynthConfig = SynthConfig(), progress: bool = True
) -> Path:
    """Write the dataset under `out` (reused when `out/synth.json` matches `config`).

    `out` must be new, empty, or a folder this function made (its `synth.json`, or the
    marker of a writer that was stopped); anything else is refused (ValueError) before
    anything is touched, so a user's own `videos/` and `annotations/` are never deleted.
    Writers of one folder take turns (a lock in it): a second one waits, then finds the
    dataset made.
    """
    out = Path(out)
    refuse_foreign_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    with locked(out / LOCK):
        if _stamp(out) == asdict(config):
            log.info("synthetic dataset already at %s", out)
            return out
        refuse_foreign_folder(out)  # what another writer did while this one waited
        atomic_write_text(out / WRITING, json.dumps(asdict(config)))
        (out / STAMP).unlink(missing_ok=True)
        for sub in ("videos", "annotations"):
            shutil.rmtree(out / sub, ignore_errors=True)
        _write_dataset(out, config, progress)
        atomic_write_text(out / STAMP, json.dumps(asdict(config), indent=2))
        (out / WRITING).unlink()
    return out


def _stamp(out: Path) -> dict | None:
    try:
        stamp = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def refuse_foreign_folder(out: Path) -> None:
    """ValueError unless `out` is absent, empty, or was made by `make_synthetic_dataset`."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out}: not a folder; give a new or empty folder for the dataset")
    if _stamp(out) is not None or (out / WRITING).is_file():
        return
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if entries:
        shown = ", ".join(entries[:5]) + (
            f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        )
        raise ValueError(
            f"{out}: not empty ({shown}) and not made by `vidbench data synth` (no {STAMP}); "
            "nothing was changed: give a new or empty folder"
        )


def _write_dataset(out: Path, config: SynthConfig, progress: bool) -> None:
    """The videos and annotation lists of `config` under `out` (no stamp)."""
    height = config.size
    width = 2 * round(config.size * 4 / 3 / 2)
    unit = config.size / 64
    per_group = 4 if config.videos_per_class >= 8 else max(1, config.videos_per_class // 2)
    groups = math.ceil(config.videos_per_class / per_group)
    test_groups = max(1, round(groups * 0.3))
    names = config.class_names
    train_lines, test_lines = [], []
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=len(names) * config.videos_per_class,
        desc=f"synthesising {config.task}",
        unit="video",
        disable=None if progress else True,
    )
    for label, name in enumerate(names):
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
        for index in range(config.videos_per_class):
            group, clip = divmod(index, per_group)
            clip_rng = np.random.default_rng([config.seed, label, group, clip, 1])
            speed = float(clip_rng.uniform(1.0, 2.5)) * config.size / 64
            offset = tuple(clip_rng.uniform(-0.25, 0.25, 2) * max(height, width))
            trajectory = task_trajectory(config.task, name, config.frames, unit, speed, clip_rng)
            shift = max(2.5 * unit * config.frames, np.abs(trajectory[:, :2]).max() + 4 * unit)
            margin = math.ceil(shift + 1.25 * max(height, width))  # the window stays inside
            texture = random_texture(
                np.random.default_rng([config.seed, label, group, clip]), 2 * margin, 2 * margin
            )
            if config.task == "nuisance":
                frames = render_with_nuisances(
                    texture, trajectory, height, width, offset, unit, clip_rng
                )
            else:
                frames = render_trajectory(texture, trajectory, height, width, offset)
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
