"""`vidbench predict` on videos the tests render.

The plumbing (windows, frame limits, output video, errors) is tested with checkpoints a
micro sweep trains for a few dozen steps; what the predictions say is tested with the
checkpoints the smoke sweep trained (marked e2e).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import write_sweep
from pytorch_i3d_layout import InceptionI3d

from vidbench.bench.cli import main
from vidbench.bench.config import load_sweep
from vidbench.bench.predict import Predictor, load_model, smooth_probs
from vidbench.bench.runner import run_sweep
from vidbench.datasets.annotations import VideoRecord
from vidbench.datasets.clip_dataset import VideoClipDataset, collate_clips
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.sampling import ClipSampler
from vidbench.datasets.synthetic import random_texture, render_motion, write_video
from vidbench.datasets.transforms import to_model_input
from vidbench.models import VideoClassifier
from vidbench.models.weights import load_labels, save_checkpoint

SIZE = (64, 86)  # the smoke sweep's synthetic videos: 64 px high, 4:3


def checkpoint(smoke_run, arch: str, modality: str) -> Path:
    out, run = smoke_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out / "cells" / f"{arch}-{modality}-synthetic1-scratch-s0" / "final.ckpt"


@pytest.fixture(scope="module")
def micro_run(synth_with_flow, tmp_path_factory) -> Path:
    """C3D and I3D (rgb, flow) trained 30 steps by the runner: real checkpoints, quickly."""
    root = tmp_path_factory.mktemp("micro")
    sweep = write_sweep(root / "micro.yaml", synth_with_flow, wandb={"enabled": False})
    records = run_sweep(load_sweep(sweep, ["train.max_steps=30"]), root / "out", progress=False)
    assert all(r.status == "ok" for r in records), [r.error for r in records]
    return root / "out"


def short(micro_run: Path, arch: str, modality: str = "rgb") -> Path:
    return micro_run / "cells" / f"{arch}-{modality}-synth1-scratch-s0" / "final.ckpt"


def render(path: Path, *motions: str, frames: int = 50, fps: float = 25) -> Path:
    """Consecutive segments of `frames` frames, one per motion, over one texture."""
    texture = random_texture(np.random.default_rng(7), 400, 400)
    parts = [
        render_motion(texture, motion, frames, *SIZE, 2.0, (12.0 * i, -8.0 * i))
        for i, motion in enumerate(motions)
    ]
    write_video(path, np.concatenate(parts), fps)
    return path


def label_changes(probs: list[torch.Tensor]) -> int:
    return sum(int(a.argmax() != b.argmax()) for a, b in itertools.pairwise(probs))


def predict_json(capsys, *args: str) -> tuple[int, list[dict]]:
    capsys.readouterr()
    code = main(["predict", *args, "--json"])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_windows_follow_the_motion(smoke_run, tmp_path, capsys):
    # right then left, read by the seed-0 smoke C3D (96.9% on the test set): windowing is
    # what is tested here, so both segments are ones it reads right on this texture (checked
    # with its checkpoint, both orders; the seed-0 I3D RGB, 81.2%, reads this order's first
    # window as ZoomOut)
    video = render(tmp_path / "right_then_left.avi", "MoveRight", "MoveLeft")
    ckpt = checkpoint(smoke_run, "c3d", "rgb")
    code, (result,) = predict_json(
        capsys, str(video), "--checkpoint", str(ckpt), "--window", "16", "--stride", "8"
    )
    assert code == 0
    windows = result["windows"]
    assert windows[0]["top_k"][0]["label"] == "MoveRight"
    assert windows[-1]["top_k"][0]["label"] == "MoveLeft"
    assert {g["label"] for g in result["top_k"][:2]} == {"MoveLeft", "MoveRight"}


def test_windows_are_timed_and_smoothing_averages(micro_run, tmp_path, capsys):
    video = render(tmp_path / "right_then_left.avi", "MoveRight", "MoveLeft")
    ckpt = short(micro_run, "c3d")
    code, (result,) = predict_json(
        capsys, str(video), "--checkpoint", str(ckpt), "--window", "16", "--stride", "8"
    )
    assert code == 0 and result["frames"] == 100 and result["fps"] == 25
    windows = result["windows"]
    starts = [8 * i for i in range(1 + (100 - 16) // 8)] + [100 - 16]  # the tail's too
    assert [w["start"] for w in windows] == pytest.approx([s / 25 for s in starts])
    assert all(w["end"] - w["start"] == pytest.approx(0.64) for w in windows)
    assert windows[-1]["end"] == pytest.approx(4.0)

    predictor = Predictor(load_model([ckpt]))
    raw, _ = predictor.windows(video, window=16, stride=8)
    smoothed = smooth_probs(raw, 3)
    assert torch.allclose(smoothed[5], torch.stack([w.probs for w in raw[3:6]]).mean(0))
    assert torch.allclose(smoothed[0], raw[0].probs)  # nothing before the first window
    assert label_changes(smoothed) <= label_changes([w.probs for w in raw])


def test_whole_video_top_k_and_frame_limit(micro_run, tmp_path, capsys):
    video = render(tmp_path / "left.avi", "MoveLeft", frames=60)
    ckpt = short(micro_run, "c3d")
    code, (result,) = predict_json(capsys, str(video), "--checkpoint", str(ckpt), "--top-k", "3")
    assert code == 0 and "windows" not in result
    labels = [g["label"] for g in result["top_k"]]
    probabilities = [g["probability"] for g in result["top_k"]]
    assert len(set(labels)) == 3 and set(labels) <= set(load_model([ckpt]).class_names)
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    code, (limited,) = predict_json(capsys, str(video), "--checkpoint", str(ckpt), "--frames", "20")
    assert code == 0 and limited["frames"] == 20


def test_annotated_output_keeps_frame_count_and_rate(micro_run, tmp_path, capsys):
    video = render(tmp_path / "down30.mp4", "MoveDown", frames=45, fps=30)
    out = tmp_path / "annotated.mp4"
    ckpt = short(micro_run, "c3d")
    assert (
        main(["predict", str(video), "--checkpoint", str(ckpt), "--window", "8", "--out", str(out)])
        == 0
    )
    source, annotated = open_video(video), open_video(out)
    assert annotated.num_frames == source.num_frames == 45
    assert annotated.fps == pytest.approx(source.fps) == pytest.approx(30)
    first_source = source.get_frames(np.array([0]))[0].astype(int)
    first_annotated = annotated.get_frames(np.array([0]))[0].astype(int)
    band = np.abs(first_source[:10] - first_annotated[:10]).mean()  # the label band on top
    rest = np.abs(first_source[20:] - first_annotated[20:]).mean()
    assert band > 30 and rest < 10


def test_fused_i3d_pair_computes_flow_on_the_fly(smoke_run, tmp_path, capsys):
    video = render(tmp_path / "down.avi", "MoveDown", frames=40)
    rgb, flow = checkpoint(smoke_run, "i3d", "rgb"), checkpoint(smoke_run, "i3d", "flow")
    code, (result,) = predict_json(
        capsys, str(video), "--checkpoint", str(rgb), "--checkpoint", str(flow)
    )
    assert code == 0 and result["top_k"][0]["label"] == "MoveDown"


def test_an_i3d_flow_checkpoint_computes_flow_as_it_was_trained(micro_run, tmp_path, capsys):
    video = render(tmp_path / "down.avi", "MoveDown", frames=40)
    flow = short(micro_run, "i3d", "flow")
    flow_only = Predictor(load_model([flow]))
    assert flow_only.modalities == ("flow",)
    assert flow_only.spec.flow_algorithm == "farneback"  # as the micro sweep trained it
    code, (result,) = predict_json(capsys, str(video), "--checkpoint", str(flow))
    assert code == 0 and len(result["top_k"]) == 5


def test_bad_videos_are_reported_and_the_others_still_run(
    micro_run, tmp_path, capsys, broken_videos
):
    good = render(tmp_path / "up.avi", "MoveUp", frames=30)
    ckpt = short(micro_run, "c3d")
    videos = [str(good), str(broken_videos["truncated"]), str(tmp_path / "missing.avi")]
    code, results = predict_json(capsys, *videos, "--checkpoint", str(ckpt))
    assert code == 1
    assert [r["video"] for r in results] == videos
    assert results[0]["frames"] == 30 and len(results[0]["top_k"]) == 5
    assert "error" in results[1] and "missing.avi" in results[2]["error"]


def test_checkpoints_that_cannot_predict_fail_clearly(micro_run, tmp_path, capsys):
    video = str(render(tmp_path / "v.avi", "MoveUp", frames=20))
    unnamed = save_checkpoint(
        VideoClassifier("c3d", 4, model_options={"width": 0.125}), tmp_path / "a.ckpt"
    )
    assert main(["predict", video, "--checkpoint", str(unnamed)]) == 2
    assert "carries no class names" in capsys.readouterr().err
    named = VideoClassifier("c3d", 2, ["a", "b"], model_options={"width": 0.125})
    bare = save_checkpoint(named, tmp_path / "b.ckpt")
    assert main(["predict", video, "--checkpoint", str(bare)]) == 2
    assert "carries no preprocessing" in capsys.readouterr().err
    c3d = short(micro_run, "c3d")
    assert main(["predict", video, "--checkpoint", str(c3d), "--checkpoint", str(c3d)]) == 2
    assert "i3d rgb stream and an i3d flow stream" in capsys.readouterr().err


def test_imported_i3d_weights_predict_with_the_release_preprocessing(tmp_path, capsys):
    source = tmp_path / "rgb_imagenet.pt"
    torch.save(InceptionI3d(400, in_channels=3).state_dict(), source)
    ckpt = tmp_path / "i3d_rgb.ckpt"
    assert (
        main(
            ["weights", "import", "pytorch-i3d", str(source), "--stream", "rgb", "--out", str(ckpt)]
        )
        == 0
    )
    video = tmp_path / "clip.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 255, (30, 120, 160, 3), np.uint8), 25)
    code, (result,) = predict_json(capsys, str(video), "--checkpoint", str(ckpt), "--top-k", "5")
    assert code == 0 and len(result["top_k"]) == 5
    assert result["top_k"][0]["label"] in load_labels("kinetics400")
    imported = load_model([ckpt])
    assert imported.hparams.model_options["batchnorm"] == "deepmind"  # as the release's
    assert imported.hparams.started_from["start"] == "imagenet+kinetics"
    prep = imported.hparams.preprocessing
    assert (prep["crop_size"], prep["short_side"], prep["clip_len"]) == (224, 256, 64)


def test_predict_feeds_the_model_what_the_test_loader_feeds_it(micro_run, tmp_path):
    """Same video, same frames: predict's input equals the data path's (uint8 crop from the
    worker, converted by to_model_input), and both equal, bit for bit, the float32 sample the
    workers wrote before the conversion moved to the device (box shrunk, v / 127.5 - 1)."""
    module = load_model([short(micro_run, "i3d")])
    spec = module.clip_spec
    path = render(tmp_path / "short.avi", "MoveUp", frames=spec.clip_len)  # one window
    predictor = Predictor(module)
    video = open_video(path)
    timeline = np.arange(video.num_frames)
    ours = predictor.inputs(video, SIZE, timeline, 0, len(timeline))["rgb"]
    dataset = VideoClipDataset(
        [(path, VideoRecord(path.name, 0, "short"))],
        ClipSampler("full", spec.clip_len, spec.frame_interval, target_fps=spec.fps),
        spec.transform("val"),
    )
    loader = to_model_input(collate_clips([dataset[0]]))["rgb"]
    assert ours.shape == loader.shape == (1, 3, spec.clip_len, spec.crop_size, spec.crop_size)
    assert torch.equal(ours, loader)
    frames = read_frames(video, timeline)  # the float path workers ran before
    box = spec.transform("val").sample_params(*SIZE)
    crops = frames[:, box.top : box.top + box.size, box.left : box.left + box.size]
    shrink = cv2.INTER_AREA if box.size > spec.crop_size else cv2.INTER_LINEAR
    size = (spec.crop_size, spec.crop_size)
    before = np.stack([cv2.resize(f, size, interpolation=shrink) for f in crops]) / 127.5 - 1
    assert torch.equal(ours, torch.from_numpy(before).float().permute(3, 0, 1, 2)[None])
