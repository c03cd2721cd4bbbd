"""The decode cache: a small split is decoded once and gives the samples a clip decode gives;
a split too large for it, or a video whose whole decode fails, is read per clip as before."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import finished_record, tiny_datamodule

from vidbench.bench.cells import Cell
from vidbench.bench.config import TrainConfig
from vidbench.bench.results import read_records
from vidbench.datasets import decode_cache
from vidbench.datasets.decode_cache import DecodedVideoCache
from vidbench.datasets.decoders import DecodeError, open_video

ROOT = Path(__file__).resolve().parent.parent


def samples(dataset, count: int = 24) -> list[dict]:
    """`count` training samples drawn as a run draws them, from a fixed seed."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return [dataset[i % len(dataset)] for i in range(count)]


@pytest.mark.parametrize("modalities", [("rgb",), ("rgb", "flow")])
def test_held_videos_give_the_samples_clip_decodes_give(synth_with_flow, modalities, monkeypatch):
    options = {
        "modalities": modalities,
        "flow_stack": 2,
        "flow_algorithm": "farneback",
        "flip": True,
    }
    if "flow" in modalities:
        options["flow_root"] = synth_with_flow["flow"]
    root = synth_with_flow["videos"].parent
    from_disk = tiny_datamodule(root, decode_cache_mb=0, **options).dataset("train")
    held = tiny_datamodule(root, **options).dataset("train")
    first, again = samples(from_disk), samples(held)
    assert len(from_disk.decode_cache) == 0
    videos = len({s["video_id"] for s in first})
    assert len(held.decode_cache) == videos * len(modalities)  # each video decoded once
    for a, b in zip(first, again, strict=True):
        for key in (*modalities, "flip", "box", "label", "video_id"):
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key

    def no_disk(*args, **kwargs):
        raise AssertionError("a held video was opened again")

    monkeypatch.setattr(decode_cache, "open_video", no_disk)
    for a, b in zip(samples(held), again, strict=True):  # from memory, the same draws
        assert all(np.array_equal(a[m], b[m]) for m in modalities)


class Counting:
    """A video that records how many frames each read asks for."""

    def __init__(self, video, reads):
        self.video, self.path, self.reads = video, video.path, reads
        self.num_frames, self.fps = video.num_frames, video.fps

    def get_frames(self, indices):
        self.reads.append(len(indices))
        return self.video.get_frames(indices)


def test_a_split_larger_than_the_budget_is_read_per_clip(synth_dataset, caplog, monkeypatch):
    reads = []
    monkeypatch.setattr(
        decode_cache, "open_video", lambda *a, **k: Counting(open_video(*a, **k), reads)
    )
    dataset = tiny_datamodule(synth_dataset, decode_cache_mb=0.5).dataset("train")
    caplog.set_level("INFO", logger="vidbench.datasets.decode_cache")
    assert len(samples(dataset, 8)) == 8
    assert max(reads) < 40  # no video was decoded whole to find that out (40 frames each)
    assert len(dataset.decode_cache) == 0 and not dataset.decode_cache.admitting
    files = len(dataset.videos)
    assert (
        f"decode cache off: {files} files of about" in caplog.text and "its 0.5 MB" in caplog.text
    )


class TailBroken:
    """A video whose last frame does not decode: clips before it do."""

    def __init__(self, video):
        self.video, self.path = video, video.path
        self.num_frames, self.fps = video.num_frames, video.fps

    def get_frames(self, indices):
        if max(indices) == self.num_frames - 1:
            raise RuntimeError("truncated")
        return self.video.get_frames(indices)


def test_a_video_whose_whole_decode_fails_is_served_per_clip(synth_dataset, monkeypatch):
    path = next((synth_dataset / "videos").rglob("*.avi"))
    monkeypatch.setattr(decode_cache, "open_video", lambda *a, **k: TailBroken(open_video(*a)))
    cache = DecodedVideoCache(entries=1)
    video = cache.open(path)
    assert isinstance(video, TailBroken) and len(cache) == 0
    assert video.get_frames(np.arange(4)).shape[0] == 4  # the clip still decodes
    assert isinstance(cache.open(path), TailBroken)  # and the whole decode is not retried


def test_pickled_cache_travels_empty_and_budget_is_checked(synth_dataset):
    path = next((synth_dataset / "videos").rglob("*.avi"))
    cache = DecodedVideoCache(entries=1)
    cache.open(path)
    assert len(cache) == 1 and cache.held_bytes > 0
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.held_bytes == 0 and copy.admitting
    with pytest.raises(ValueError, match=">= 0 MB"):
        DecodedVideoCache(entries=1, budget_mb=-1)
    with pytest.raises(DecodeError, match="file not found"):
        cache.open(synth_dataset / "missing.avi")


def test_the_cache_budget_does_not_change_a_cells_hash():
    cell = finished_record("c3d-rgb-d1-scratch-s0", 50.0).config
    assert isinstance(cell, Cell)
    off = cell.model_copy(update={"train": cell.train.model_copy(update={"decode_cache_mb": 0})})
    changed_lr = cell.model_copy(update={"train": cell.train.model_copy(update={"lr": 0.5})})
    assert off.hash() == cell.hash() != changed_lr.hash()
    assert off.model_dump()["train"]["decode_cache_mb"] == 0  # the record still says it
    with pytest.raises(ValueError, match="decode_cache_mb"):
        TrainConfig(decode_cache_mb=-1)


def test_records_from_before_the_cache_still_match_their_hash():
    """The committed diagnostic records, written before decode_cache_mb and warmup_steps
    existed (order) and after (the other tasks), match their hash: resuming skips them."""
    runs = ROOT / "results" / "diagnostic"
    lines = (runs / "runs.jsonl").read_text().splitlines()
    assert any("decode_cache_mb" not in line for line in lines)  # older records
    assert any("decode_cache_mb" in line for line in lines)
    records = [r for r in read_records(runs) if r.config is not None]
    assert records and all(r.config.hash() == r.config_hash for r in records)
