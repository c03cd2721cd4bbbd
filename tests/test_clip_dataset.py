"""The decord clip dataset on real encoded videos: frames, looping, fps, broken input, workers."""

from __future__ import annotations

import time

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import frame_index_of
from torch.utils.data import DataLoader

from vidbench.datasets.annotations import VideoRecord
from vidbench.datasets.clip_dataset import (
    BadVideoLog,
    TooManyBadVideos,
    VideoClipDataset,
    collate_clips,
)
from vidbench.datasets.decoders import DecodeError, open_video, read_frames
from vidbench.datasets.sampling import ClipSampler
from vidbench.datasets.transforms import ClipTransform


def make_dataset(
    paths, sampler, *, substitute=False, crop=32, timeout=20.0, decoder="decord", split="train"
):
    videos = [(p, VideoRecord(p.name, i % 3, p.stem)) for i, p in enumerate(paths)]
    transform = ClipTransform(
        short_side=crop, crop_size=crop, crop="random" if substitute else "center", flip=substitute
    )
    return VideoClipDataset(
        videos,
        sampler,
        transform,
        substitute=substitute,
        decode_timeout=timeout,
        decoder=decoder,
        split=split,
    )


def decoded_indices(sample) -> np.ndarray:
    """Frame identities from a sample's rgb, uint8 (T, H, W, 3)."""
    return frame_index_of(sample["rgb"].numpy())


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi"])  # H.264 and MPEG-4 Part 2
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_decoders_return_the_sampled_frames(write_counting_video, name, decoder):
    path = write_counting_video(name, 40)
    video = open_video(path, decoder)
    assert (video.num_frames, video.fps) == (40, 25.0)
    indices = np.array([0, 7, 8, 39, 3])
    assert frame_index_of(read_frames(video, indices)).tolist() == indices.tolist()


def test_sample_dict_shapes_and_values(write_counting_video):
    path = write_counting_video("a.mp4", 40, height=48, width=64)
    dataset = make_dataset([path], ClipSampler("val", clip_len=8, frame_interval=2))
    sample = dataset[0]
    assert set(sample) == {"rgb", "box", "flip", "label", "video_id", "view", "errors"}
    assert sample["rgb"].shape == (8, 32, 32, 3) and sample["rgb"].dtype == torch.uint8
    assert sample["flip"] is False and sample["box"] == 32  # a 48-line video: box 32, no more
    assert sample["video_id"] == "a" and sample["view"] == 0 and sample["errors"] == []
    assert decoded_indices(sample).tolist() == list(range(12, 28, 2))


def test_short_video_loops_and_30fps_is_resampled(write_counting_video):
    short = write_counting_video("short.mp4", 5)
    sample = make_dataset([short], ClipSampler("val", clip_len=12))[0]
    assert decoded_indices(sample).tolist() == [0, 1, 2, 3, 4] * 2 + [0, 1]
    hmdb_like = write_counting_video("fast.avi", 45, fps=30)
    sample = make_dataset([hmdb_like], ClipSampler("val", clip_len=25, target_fps=25))[0]
    assert decoded_indices(sample).tolist() == ClipSampler("val", clip_len=25)(45, 30.0).tolist()
    assert (
        decoded_indices(sample)[-1] - decoded_indices(sample)[0] == 29
    )  # 25 frames span 1 s at 30 fps


def test_test_views_enumerate_clips_times_crops(write_counting_video):
    path = write_counting_video("v.mp4", 40)
    videos = [(path, VideoRecord("v.mp4", 1, "v"))]
    dataset = VideoClipDataset(
        videos, ClipSampler("test", clip_len=4, num_clips=2), ClipTransform(48, 48, "three")
    )
    assert len(dataset) == 6
    samples = [dataset[i] for i in range(6)]
    assert [s["view"] for s in samples] == list(range(6))
    assert decoded_indices(samples[0])[0] == 0 and decoded_indices(samples[5])[-1] == 39


BROKEN = ["empty", "truncated", "not_video", "no_frames", "missing"]


@pytest.mark.parametrize("kind", BROKEN)
def test_each_broken_file_raises_a_decode_error_naming_it(broken_videos, kind):
    path = broken_videos[kind]
    with pytest.raises(DecodeError) as caught:
        video = open_video(path)
        read_frames(video, np.arange(video.num_frames))
    assert str(path) in str(caught.value)


def test_hanging_decode_is_bounded_by_the_timeout(hanging_video):
    dataset = make_dataset([hanging_video], ClipSampler("val", clip_len=4), timeout=1.0)
    started = time.monotonic()
    sample = dataset[0]
    assert time.monotonic() - started < 10
    assert sample["errors"][0]["error"] == "decode timed out after 1 s"
    assert "rgb" not in sample


def test_training_substitutes_and_evaluation_excludes(broken_videos):
    good = broken_videos["good"]
    bad = [broken_videos[k] for k in BROKEN if k != "missing"]
    train = make_dataset([good, *bad], ClipSampler("train", clip_len=4), substitute=True)
    torch.manual_seed(0)
    samples = [train[i] for i in range(len(train))]
    assert all("rgb" in s for s in samples)
    failed = {e["path"] for s in samples for e in s["errors"]}
    assert {str(p) for p in bad} <= failed
    assert all(e["action"] == "substituted" for s in samples for e in s["errors"])

    evaluation = make_dataset([good, *bad], ClipSampler("val", clip_len=4), split="test")
    batch = collate_clips([evaluation[i] for i in range(len(evaluation))])
    assert batch["rgb"].shape[0] == 1 and batch["video_id"] == ["good"]
    assert sorted(e["path"] for e in batch["errors"]) == sorted(str(p) for p in bad)
    log = BadVideoLog(max_bad_fraction=1.0)
    log.start_split("test", expected=len(bad) + 2, missing=["missing.mp4"])
    log.add(batch["errors"])
    assert log.summary()["test"] == {
        "expected": 6,
        "found": 1,
        "missing": 1,
        "unreadable": 4,
        "substituted": 0,
    }


def test_too_many_bad_videos_stops_with_a_list(broken_videos):
    log = BadVideoLog(max_bad_fraction=0.01)
    log.start_split("train", expected=100, missing=[])
    log.add(
        [{"split": "train", "path": "/v/one.mp4", "error": "x", "action": "substituted"}]
    )  # 1% is allowed
    with pytest.raises(
        TooManyBadVideos, match=r"(?s)2 of 100 videos in split 'train'.*one\.mp4.*two\.mp4"
    ):
        log.add([{"split": "train", "path": "/v/two.mp4", "error": "y", "action": "substituted"}])
    assert log.summary()["train"]["substituted"] == 2


def test_dataloader_with_two_workers_carries_errors_to_the_main_process(broken_videos):
    paths = [
        broken_videos["good"],
        broken_videos["truncated"],
        broken_videos["good"],
        broken_videos["empty"],
    ]
    dataset = make_dataset(paths, ClipSampler("val", clip_len=4), split="test")
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate_clips)
    batches = list(loader)
    assert sum(len(b.get("video_id", [])) for b in batches) == 2
    assert sorted(e["path"] for b in batches for e in b["errors"]) == sorted(
        [str(broken_videos["truncated"]), str(broken_videos["empty"])]
    )


def clips_by_item(loader) -> list[tuple[int, ...]]:
    return [
        tuple(decoded_indices({"rgb": rgb}).tolist()) for batch in loader for rgb in batch["rgb"]
    ]


def test_seeding_same_seed_same_clips_and_workers_differ(write_counting_video):
    path = write_counting_video("long.mp4", 60)
    dataset = make_dataset([path] * 6, ClipSampler("train", clip_len=4), substitute=True)
    loader = DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=collate_clips)
    pl.seed_everything(7, workers=True)
    first = clips_by_item(loader)
    pl.seed_everything(7, workers=True)
    assert clips_by_item(loader) == first
    # items 0, 2, 4 come from worker 0 and 1, 3, 5 from worker 1: different random streams
    assert first[0::2] != first[1::2]
    pl.seed_everything(8, workers=True)
    assert clips_by_item(loader) != first


def test_without_decord_the_decord_backend_reads_with_pyav(write_counting_video, monkeypatch):
    """Where decord has no wheel (ARM Linux, Apple Silicon) vidbench installs without it;
    the default decoder then reads the same frames with PyAV instead of failing."""
    from vidbench.datasets import decoders

    path = write_counting_video("clip.mp4", 30)
    with_decord = read_frames(open_video(path, "decord"), np.arange(0, 30, 3))
    monkeypatch.setattr(decoders, "decord_installed", lambda: False)
    video = open_video(path, "decord")
    assert isinstance(video, decoders.PyAVVideo)
    frames = read_frames(video, np.arange(0, 30, 3))
    assert (frame_index_of(frames) == frame_index_of(with_decord)).all()
