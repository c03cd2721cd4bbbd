"""The synthetic diagnostic tasks (`vidbench data synth --task NAME`): a frame carries no
class, the class is in the motion, and the order tasks hide it from order-blind pooling.

Each task is checked with two hand-made classifiers on its real encoded videos: one on the
colour statistics of single frames (a frame-level model: must sit at chance) and one on
Farneback flow (the information is there: must learn it). For `order` and `long_range` a
third, on flow pooled over time without order, must stay at the order-blind ceiling
(50%: it can tell the pair of motions but not their order).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import nearest_centroid_accuracy

from vidbench.bench.cli import main
from vidbench.datasets.annotations import load_annotations
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.synthetic import (
    PAIRS,
    TASKS,
    SynthConfig,
    make_synthetic_dataset,
    task_trajectory,
)

FRAMES = 40


def video_features(path: Path) -> dict[str, np.ndarray]:
    """Per-video features: `frame` (colour statistics of one frame), `mean_flow` (mean
    Farneback flow per frame pair, (T - 1, 2)), `curl_divergence` of the flow averaged over
    time, `speed` (the global shift per frame pair by phase correlation, (T - 1,))."""
    video = open_video(path)
    frames = read_frames(video, np.arange(video.num_frames)).astype(np.float32)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flows = np.stack(
        [
            cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)
            for a, b in itertools.pairwise(grey)
        ]
    )
    middle = frames[len(frames) // 2]
    window = cv2.createHanningWindow(grey[0].shape[::-1], cv2.CV_64F)
    shifts = [
        cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64), window)[0]
        for a, b in itertools.pairwise(grey)
    ]
    field = flows.mean(0)
    h, w = field.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    x, y, norm = xs - w / 2, ys - h / 2, np.mean((xs - w / 2) ** 2 + (ys - h / 2) ** 2)
    return {
        "curl_divergence": np.array(
            [
                20 * np.mean(x * field[..., 1] - y * field[..., 0]) / norm,
                50 * np.mean(x * field[..., 0] + y * field[..., 1]) / norm,
            ]
        ),
        "frame": np.concatenate([middle.mean(axis=(0, 1)), middle.std(axis=(0, 1))]),
        "mean_flow": flows.mean(axis=(1, 2)),  # (T - 1, 2)
        "speed": np.hypot(*np.transpose(shifts)),  # (T - 1,) global shift, px/frame
    }


def order_signal(mean_flow: np.ndarray, reach: int) -> float:
    """Sum of cross(v_s, v_t) over frame pairs s < t <= s + reach of the frames that move
    (mean flow over 0.2 px): negative when the pair's first motion comes first (right then
    up, left then down), positive otherwise."""
    mean_flow = mean_flow * (np.linalg.norm(mean_flow, axis=1, keepdims=True) > 0.2)
    total = 0.0
    for lag in range(1, reach + 1):
        a, b = mean_flow[:-lag], mean_flow[lag:]
        total += float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum())
    return total


def motion_features(task: str, feats: dict[str, np.ndarray]) -> np.ndarray:
    """What a model that uses the motion (in order) can see."""
    flow = feats["mean_flow"]
    if task == "speed":
        return np.array([feats["speed"].mean()])
    if task in ("order", "long_range"):
        reach = 1 if task == "order" else len(flow)
        return np.sign([order_signal(flow, reach), flow[:, 0].mean()])  # (order, which pair)
    return np.concatenate([flow.mean(0), feats["curl_divergence"]])


def order_blind_features(feats: dict[str, np.ndarray]) -> np.ndarray:
    """Flow pooled over time: mean |dx| and |dy| and their mean signs (which pair)."""
    flow = feats["mean_flow"]
    return np.concatenate([np.abs(flow).mean(0), flow.mean(0)])


@pytest.fixture(scope="module")
def features_of(tmp_path_factory):
    """task -> {split: [(features, label)]} of a small copy of the task (made once)."""
    made: dict[str, dict[str, list]] = {}

    def get(task: str) -> dict[str, list]:
        if task not in made:
            root = make_synthetic_dataset(
                tmp_path_factory.mktemp(task),
                SynthConfig(videos_per_class=20, frames=FRAMES, size=48, task=task),
                progress=False,
            )
            splits = load_annotations("ucf101", root / "annotations").splits
            made[task] = {
                split: [(video_features(root / "videos" / r.path), r.label) for r in splits[split]]
                for split in ("train", "test")
            }
        return made[task]

    return get


def accuracy(data, featurise) -> float:
    (train_x, train_y), (test_x, test_y) = (
        (np.stack([featurise(f) for f, _ in data[s]]), np.array([y for _, y in data[s]]))
        for s in ("train", "test")
    )
    return nearest_centroid_accuracy(train_x, train_y, test_x, test_y)


@pytest.mark.parametrize("task", list(TASKS))
def test_a_frame_is_at_chance(task, features_of):
    data = features_of(task)
    chance = 1 / TASKS[task].default_classes
    frame = accuracy(data, lambda f: f["frame"])
    assert frame <= chance + 0.2, f"{task}: one frame scored {frame:.2f} (chance {chance:.2f})"


@pytest.mark.parametrize("task", list(TASKS))
def test_the_class_is_in_the_motion(task, features_of):
    data = features_of(task)
    motion = accuracy(data, lambda f: motion_features(task, f))
    # nuisance: the distractor moves the mean flow; speed: neighbouring classes overlap
    floor = {"nuisance": 0.6, "speed": 0.65}.get(task, 0.9)
    assert motion >= floor, f"{task}: flow features scored {motion:.2f}"


@pytest.mark.parametrize("task", ["order", "long_range"])
def test_order_tasks_hide_the_class_from_order_blind_pooling(task, features_of):
    """Flow pooled over time tells the pair of motions (right/up or left/down) but its
    distribution is the same for both orders: the two classes of a pair differ in no
    pooled feature by more than sampling noise (|t| < 3), the two pairs by far more."""
    data = features_of(task)
    pooled = np.stack([order_blind_features(f) for s in data.values() for f, _ in s])
    labels = np.array([y for s in data.values() for _, y in s])

    def t_statistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        error = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b)) + 1e-9
        return np.abs(a.mean(0) - b.mean(0)) / error

    for a, b in ((0, 1), (2, 3)):  # the two orders of one pair (PAIRS' order)
        t = t_statistic(pooled[labels == a], pooled[labels == b])
        assert t.max() < 3, f"{task}: classes {a} and {b} differ by t = {t.round(1)}"
    t = t_statistic(pooled[labels < 2], pooled[labels >= 2])
    assert t.max() > 10, f"{task}: the two pairs differ by only t = {t.round(1)}"


def test_long_range_events_are_further_apart_than_a_quarter_of_the_video():
    rng = np.random.default_rng(0)
    for _ in range(200):
        trajectory = task_trajectory("long_range", "RightThenUp", FRAMES, 1.0, 2.0, rng)
        moving = np.flatnonzero(np.abs(np.diff(trajectory[:, :2], axis=0)).sum(1) > 0)
        assert len(moving) == 2 * (FRAMES // 10)  # two events of FRAMES / 10 frames
        assert np.diff(moving).max() - 1 >= FRAMES / 4  # still frames between them
        assert moving[-1] - moving[0] + 1 <= 0.6 * FRAMES


def test_order_classes_share_their_motions():
    for first, second in PAIRS.values():
        assert (second, first) in PAIRS.values()


def test_synth_cli_writes_a_task_and_rejects_bad_settings(tmp_path, capsys):
    out = tmp_path / "order"
    argv = ["data", "synth", "--out", str(out), "--task", "order", "--videos-per-class", "2"]
    assert main([*argv, "--frames", "12", "--size", "16", "--no-progress"]) == 0
    classes = (out / "annotations" / "classInd.txt").read_text().split()
    assert classes[1::2] == list(PAIRS)
    assert main(["data", "synth", "--out", str(tmp_path), "--task", "order", "--classes", "5"]) == 2
    assert "classes must be in 2..4 for task order" in capsys.readouterr().err
    assert (
        main(["data", "synth", "--out", str(tmp_path), "--task", "long_range", "--frames", "8"])
        == 2
    )
    assert "frames must be an integer in 20..3000 for task long_range" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path), "--task", "colour"])
    assert "invalid choice: 'colour'" in capsys.readouterr().err
