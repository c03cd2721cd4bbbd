"""Optical flow: correctness on rendered motion, storage round trip, provenance, resume, loading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_datamodule

from vidbench.bench.cli import main
from vidbench.datasets.annotations import VideoRecord
from vidbench.datasets.clip_dataset import VideoClipDataset, collate_clips
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.datamodule import VideoDataModule
from vidbench.datasets.flow import (
    FlowConfig,
    FlowMismatch,
    dequantise,
    extract_flow,
    flow_path,
    load_flow,
    quantise,
)
from vidbench.datasets.flow_extract import extract_all
from vidbench.datasets.sampling import ClipSampler
from vidbench.datasets.synthetic import random_texture, render_motion, write_video
from vidbench.datasets.transforms import ClipTransform, CropParams, to_model_input

FARNEBACK = FlowConfig("farneback")


def motion_video(
    tmp_path: Path, motion: str, speed: float, frames: int = 8, name: str | None = None
) -> Path:
    texture = random_texture(np.random.default_rng(3), 240, 240)
    clip = render_motion(texture, motion, frames, 48, 64, speed, (0.0, 0.0))
    path = tmp_path / (name or f"{motion}.mp4")
    write_video(path, clip, 25)
    return path


def interior(flow: np.ndarray, margin: int = 8) -> np.ndarray:
    return flow[:, margin:-margin, margin:-margin]


@pytest.mark.parametrize("algorithm", ["tvl1", "farneback"])
@pytest.mark.parametrize(
    ("motion", "dx", "dy"),
    [("MoveRight", 1, 0), ("MoveLeft", -1, 0), ("MoveUp", 0, -1), ("MoveDown", 0, 1)],
)
def test_translation_gives_k_over_20(tmp_path, algorithm, motion, dx, dy):
    speed = 3.0
    video = motion_video(tmp_path, motion, speed, frames=4 if algorithm == "tvl1" else 8)
    extract_flow(video, tmp_path / "flow.mp4", FlowConfig(algorithm))
    flow = interior(load_flow(tmp_path / "flow.mp4"))
    assert flow[..., 0].mean() == pytest.approx(dx * speed / 20, abs=0.02)
    assert flow[..., 1].mean() == pytest.approx(dy * speed / 20, abs=0.02)


@pytest.mark.parametrize(
    ("motion", "sign"), [("RotateClockwise", 1), ("RotateCounterClockwise", -1)]
)
def test_rotation_gives_the_curl_sign(tmp_path, motion, sign):
    video = motion_video(tmp_path, motion, 3.0)
    extract_flow(video, tmp_path / "flow.mp4", FARNEBACK)
    flow = interior(load_flow(tmp_path / "flow.mp4"), 4).mean(axis=0)
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    x, y = xs - (w - 1) / 2, ys - (h - 1) / 2
    curl = np.mean(x * flow[..., 1] - y * flow[..., 0])  # > 0: clockwise on screen (y down)
    assert np.sign(curl) == sign and abs(curl) > 0.01


def test_quantisation_round_trip_error_is_within_the_stated_bound(tmp_path):
    rng = np.random.default_rng(0)
    flow = rng.uniform(-25, 25, (6, 48, 64, 2)).astype(np.float32)
    flow[0, 0, 0] = 0.0
    q = quantise(flow, 20.0)
    path = tmp_path / "roundtrip.mp4"
    import av

    with av.open(str(path), "w") as container:  # the storage codec, as extract_flow writes it
        stream = container.add_stream("libx264rgb", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
        stream.options = {"qp": "0"}
        for frame in q:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    back = load_flow(path) * 20
    error = np.abs(back - np.clip(flow, -20, 20))
    assert np.array_equal(dequantise(q), load_flow(path))  # the codec is lossless
    assert error.max() <= 20 / 254 + 1e-6  # half a quantisation step: 0.079 px
    assert back[0, 0, 0, 0] == 0.0  # zero flow stays exactly zero
    assert back.max() == 20 and back.min() == -20  # truncated at the bound


def test_flip_negates_dx_and_mirrors(tmp_path):
    flow = np.zeros((2, 32, 32, 2), np.float32)
    flow[:, :, :16, 0] = 5.0  # left half moves right
    q = quantise(flow, 20.0)
    transform = ClipTransform(short_side=32, crop_size=32)
    stored = transform.flow(q, CropParams(0, 0, 32))  # what a worker ships: (N, 32, 32, 2) uint8
    assert stored.shape == (2, 32, 32, 2) and stored.dtype == torch.uint8
    batch = {"flow": stored[None].repeat(2, 1, 1, 1, 1), "flip": torch.tensor([False, True])}
    plain, flipped = to_model_input(batch)["flow"]  # the device side: (2, T, 32, 32) each
    assert plain.shape == (2, 2, 32, 32)
    assert torch.allclose(flipped[0], -plain[0].flip(-1)) and torch.allclose(
        flipped[1], plain[1].flip(-1)
    )
    assert flipped[0, :, :, 16:].mean() == pytest.approx(-5 / 20, abs=0.005)
    assert torch.equal(plain, torch.from_numpy(dequantise(q)).permute(3, 0, 1, 2))


def test_stacked_flow_channels_are_dx_dy_per_field():
    """flow_stack fields per step: channel 2s is dx and 2s+1 dy of field t * stack + s."""
    fields = np.zeros((6, 8, 8, 2), np.uint8)  # 3 steps x 2 fields
    for n in range(6):
        fields[n, ..., 0], fields[n, ..., 1] = 128 + n, 128 - n
    batch = {"flow": torch.from_numpy(fields)[None], "flip": torch.tensor([True])}
    flow = to_model_input(batch, flow_stack=2)["flow"][0]  # (4, 3, 8, 8)
    assert flow.shape == (4, 3, 8, 8)
    for t in range(3):
        for s in range(2):
            n = t * 2 + s
            assert torch.all(flow[2 * s, t] == -n / 127)  # dx, negated by the flip
            assert torch.all(flow[2 * s + 1, t] == -n / 127)  # dy keeps its sign


def test_provenance_mismatch_is_refused_naming_what_differs(tmp_path):
    video = motion_video(tmp_path, "MoveRight", 2.0)
    target = tmp_path / "flow" / "MoveRight.mp4"
    extract_flow(video, target, FARNEBACK)
    dataset = VideoClipDataset(
        [(video, VideoRecord("MoveRight.mp4", 0, "MoveRight"))],
        ClipSampler("val", 4),
        ClipTransform(48, 48),
        modalities=("flow",),
        flow_paths=[target],
        flow_config=FlowConfig("tvl1"),
    )
    with pytest.raises(FlowMismatch, match=r"algorithm: stored 'farneback', asked 'tvl1'"):
        dataset[0]
    target.with_suffix(".json").unlink()
    with pytest.raises(FlowMismatch, match="no provenance record"):
        VideoClipDataset(
            [(video, VideoRecord("MoveRight.mp4", 0, "MoveRight"))],
            ClipSampler("val", 4),
            ClipTransform(48, 48),
            modalities=("flow",),
            flow_paths=[target],
            flow_config=FARNEBACK,
        )[0]


@pytest.fixture
def flow_dataset(synth_dataset, tmp_path):
    """Flow of a few synthetic videos (Farneback, fast), extracted through the CLI."""
    out = tmp_path / "flow"
    code = main(
        [
            "flow",
            "extract",
            "--videos",
            str(synth_dataset / "videos"),
            "--out",
            str(out),
            "--algorithm",
            "farneback",
            "--workers",
            "2",
        ]
    )
    assert code == 0
    return synth_dataset, out


def test_datamodule_serves_aligned_rgb_and_flow(flow_dataset):
    root, flow_root = flow_dataset
    dm = tiny_datamodule(
        root,
        modalities=("rgb", "flow"),
        flow_root=flow_root,
        flow_algorithm="farneback",
        clip_len=6,
        batch_size=4,
    )
    dm.setup("test")
    torch.manual_seed(0)
    batch = next(iter(dm.test_dataloader()))  # centre clips, as the workers ship them: uint8
    assert batch["rgb"].shape == (4, 6, 32, 32, 3) and batch["flow"].shape == (4, 6, 32, 32, 2)
    assert batch["rgb"].dtype == batch["flow"].dtype == torch.uint8
    batch = dm.to_device(batch)  # as a training step sees it
    assert batch["rgb"].shape == (4, 3, 6, 32, 32) and batch["flow"].shape == (4, 2, 6, 32, 32)
    assert batch["flow"].abs().max() <= 1
    # MoveRight videos move right: mean dx positive, about speed/20 (speeds 1-2.5 px/frame)
    first = batch["video_id"].index(next(v for v in batch["video_id"] if "MoveRight" in v))
    assert 0.02 < batch["flow"][first, 0].mean() < 0.2
    stacked = tiny_datamodule(
        root,
        modalities=("flow",),
        flow_root=flow_root,
        flow_algorithm="farneback",
        clip_len=3,
        flow_stack=10,
    )
    sample = stacked.dataset("test")[0]
    assert set(sample) >= {"flow", "label"} and "rgb" not in sample
    assert sample["flow"].shape == (30, 32, 32, 2)  # L fields per sampled time step
    batch = stacked.to_device(collate_clips([sample]))
    assert batch["flow"].shape == (1, 20, 3, 32, 32)  # 2L channels per sampled time step


def test_datamodule_counts_videos_without_flow_as_missing(flow_dataset, tmp_path):
    root, flow_root = flow_dataset
    (flow_root / "MoveLeft" / "v_MoveLeft_g01_c01.mp4").unlink()
    dm = tiny_datamodule(
        root, modalities=("flow",), flow_root=flow_root, flow_algorithm="farneback", clip_len=4
    )
    dm.setup("test")
    assert dm.bad_videos.summary()["test"]["missing"] == 1
    with pytest.raises(ValueError, match="needs flow_root"):
        VideoDataModule("ucf101", root / "videos", root / "annotations", ClipSpec(("flow",)))


def test_extraction_records_failures_and_goes_on(tmp_path):
    videos = tmp_path / "videos"
    motion_video(videos.mkdir() or videos, "MoveUp", 2.0, name="good.mp4")
    (videos / "broken.mp4").write_bytes(b"\x00" * 100)
    summary = extract_all(
        videos, tmp_path / "flow", FARNEBACK, ["broken.mp4", "good.mp4"], progress=False
    )
    assert summary["extracted"] == 1 and list(summary["failed"]) == ["broken.mp4"]
    assert "broken.mp4" in json.loads((tmp_path / "flow" / "failures.json").read_text())
    assert flow_path(tmp_path / "flow", "good.mp4").is_file()


def test_resume_after_kill_leaves_no_partial_file_and_redoes_nothing(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(6):
        motion_video(videos, "MoveRight", 2.0, frames=12, name=f"clip{i}.mp4")
    out = tmp_path / "flow"
    command = [
        sys.executable,
        "-m",
        "vidbench",
        "flow",
        "extract",
        "--videos",
        str(videos),
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (
        len(list(out.glob("*.json"))) < 2 and time.monotonic() < deadline and process.poll() is None
    ):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(out.glob("clip*.mp4"))
    assert 2 <= len(finished) < 6, "the kill should land mid-run (TV-L1 takes ~0.5 s a video)"
    for flow in finished:  # every file at a final name is complete and has its provenance
        assert flow.with_suffix(".json").is_file()
        assert load_flow(flow).shape == (11, 48, 64, 2)
    before = {p.name: p.stat().st_mtime_ns for p in finished}
    summary = extract_all(
        videos, out, FlowConfig(), [f"clip{i}.mp4" for i in range(6)], progress=False
    )
    assert summary["skipped"] == len(finished) and summary["extracted"] == 6 - len(finished)
    assert all(out.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in before.items())
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_flow_above_256_lines_is_measured_at_256(tmp_path):
    """The same motion, 4 px a frame at 256 lines, in a 512-line video (8 px there) and a
    256-line one: both stored as 4 px, so the +-20 bound means one thing in both."""
    from vidbench.datasets.flow import UNITS

    texture = random_texture(np.random.default_rng(3), 1400, 1400)
    dx = {}
    for lines in (256, 512):
        speed = 4.0 * lines / 256
        frames = render_motion(texture, "MoveRight", 6, lines, lines, speed, (0.0, 0.0))
        video = tmp_path / f"v{lines}.mp4"
        write_video(video, frames)
        record = extract_flow(video, tmp_path / f"f{lines}.mp4", FlowConfig("farneback"))
        assert record["units"] == UNITS
        field = load_flow(tmp_path / f"f{lines}.mp4") * 20  # px in UNITS
        dx[lines] = float(np.median(field[..., 0]))
    assert dx[256] == pytest.approx(4.0, abs=0.3) and dx[512] == pytest.approx(4.0, abs=0.3)


def test_flow_extracted_before_units_were_recorded_still_loads_under_256_lines(tmp_path):
    from vidbench.datasets.flow import check_provenance, provenance_path

    video = tmp_path / "v.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 255, (4, 48, 64, 3), np.uint8))
    extract_flow(video, tmp_path / "f.mp4", FlowConfig("farneback"))
    meta = provenance_path(tmp_path / "f.mp4")
    older = {k: v for k, v in json.loads(meta.read_text()).items() if k != "units"}
    meta.write_text(json.dumps(older))
    check_provenance(tmp_path / "f.mp4", FlowConfig("farneback"))  # 48 lines: no scaling
    older["source"]["height"] = older["source"]["width"] = 720  # a large source: not the same
    meta.write_text(json.dumps(older))
    with pytest.raises(FlowMismatch, match="units"):
        check_provenance(tmp_path / "f.mp4", FlowConfig("farneback"))
