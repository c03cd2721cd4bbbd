"""`ClipSpec`: one type for what a model is fed, from its declaration to a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidbench.bench.cells import expand_cells
from vidbench.bench.config import SweepError, cell_spec, load_sweep
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.sampling import ClipSampler
from vidbench.models import create_model, list_models, model_options
from vidbench.models.registry import default_input_spec


def test_round_trip_through_a_checkpoints_plain_dict():
    spec = ClipSpec(
        ("rgb", "flow"),
        clip_len=5,
        frame_interval=10,
        short_side=256,
        flow_stack=10,
        flow_algorithm="farneback",
        test_clips=3,
        test_crops=3,
    )
    stored = json.loads(json.dumps(spec.to_dict()))  # what weights_only checkpoints hold
    assert ClipSpec.from_dict(stored) == spec
    assert stored["modalities"] == ["rgb", "flow"]


def test_defaults_and_the_papers_resize_ratio():
    spec = ClipSpec()
    assert (spec.resize_to, spec.replace(crop_size=112).resize_to) == (256, 128)
    assert spec.replace(crop_size=48, short_side=56).resize_to == 56
    assert spec.flow_config.algorithm == "tvl1" and spec.flow_config.bound == 20.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"clip_len": 0}, "clip_len must be a whole number >= 1, got 0"),
        ({"frame_interval": 2.5}, "frame_interval must be a whole number"),
        ({"crop_size": 112, "short_side": 100}, "short_side must be a whole number >= crop_size"),
        ({"test_crops": 2}, "test_crops must be one of"),
        ({"modalities": ("depth",)}, "modalities \\['depth'\\]"),
        ({"flow_algorithm": "raft"}, "flow algorithm 'raft' is not one of"),
        ({"fps": 0.0}, "flow fps must be in"),
        ({"crops": 3}, "unknown clip setting\\(s\\) \\['crops'\\]"),
    ],
)
def test_bad_values_are_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        ClipSpec().replace(**changes)


def test_checkpoints_written_before_clipspec_still_load_and_incomplete_ones_do_not():
    old = {
        "fps": 25.0,
        "short_side": 56,
        "crop_size": 48,
        "clip_len": 8,
        "frame_interval": 1,
        "flow_stack": 1,
        "flow_algorithm": "farneback",
        "flow_bound": 20.0,
        "flip": False,
        "modalities": ["rgb"],
    }
    spec = ClipSpec.from_dict(old, "old.ckpt")
    assert (spec.clip_len, spec.test_clips, spec.full_video_test) == (8, 1, False)
    partial = {k: v for k, v in old.items() if k != "crop_size"}
    with pytest.raises(ValueError, match=r"old.ckpt: lacks the clip setting\(s\) \['crop_size'\]"):
        ClipSpec.from_dict(partial, "old.ckpt")
    with pytest.raises(ValueError, match=r"old.ckpt: unknown clip setting\(s\) \['colour'\]"):
        ClipSpec.from_dict({**old, "colour": "red"}, "old.ckpt")


def test_samplers_and_transforms_follow_the_spec():
    spec = ClipSpec(
        clip_len=4, frame_interval=2, crop_size=32, short_side=40, test_clips=3, test_crops=3
    )
    assert spec.sampler("train") == ClipSampler("train", 4, 2, 1, 25.0)
    assert spec.sampler("test").num_views == 3
    assert spec.replace(full_video_test=True).sampler("test").mode == "full"
    assert spec.transform("test").crop == "three" and spec.transform("val").crop == "center"
    assert spec.transform("train", flip=False).flip is False
    # predict's windows use the sampler's rule: every frame_interval-th frame, looped
    assert ClipSampler("full", 4, 2).span_positions(10, 6, 14).tolist() == [6, 8, 0, 2]
    assert np.array_equal(ClipSampler("full", 4, 1).span_positions(5, 3, 3), [3])
    # C3D's 15 consecutive clips on a 4 s video (100 frames): the block loops, as in training
    block = ClipSampler("block", 16, 1, 15)
    assert block.num_views == 15
    assert block.positions(100, 14).tolist() == [(224 + i) % 100 for i in range(16)]


@pytest.mark.parametrize("arch", list_models())
def test_every_model_declares_a_clipspec_it_can_eat(arch):
    spec = default_input_spec(arch)
    assert isinstance(spec, ClipSpec)
    model = create_model(arch, 3, width=0.125).eval()
    assert model.input_spec == spec
    if "flow_stack" in model_options(arch):  # an option named like a field sets it
        built = create_model(arch, 3, width=0.125, flow_stack=3).input_spec
        assert built == default_input_spec(arch, flow_stack=3) and built.flow_stack == 3
    size = 64 if spec.crop_size > 112 else spec.crop_size
    channels = {"rgb": 3, "flow": 2 * spec.flow_stack}
    batch = {m: torch.zeros(1, channels[m], spec.clip_len, size, size) for m in spec.modalities}
    with torch.no_grad():
        assert model(batch).shape == (1, 3)


def test_a_cell_takes_the_models_spec_then_input_then_per_arch_then_eval():
    sweep = load_sweep("smoke", ["eval.clips=3"])
    specs = {
        (c.arch, c.modality): cell_spec(sweep, c.arch, c.modality) for c in expand_cells(sweep)
    }
    c3d = specs["c3d", "rgb"]
    assert (c3d.clip_len, c3d.crop_size, c3d.short_side, c3d.test_clips) == (8, 48, 56, 3)
    two = specs["two_stream", "rgb+flow"]
    assert (two.modalities, two.clip_len, two.flow_stack) == (("rgb", "flow"), 1, 5)
    assert specs["i3d", "flow"].modalities == ("flow",)
    assert {s.flow_algorithm for s in specs.values()} == {"farneback"}
    assert sweep.input["flip"] is False


def test_a_sweep_whose_geometry_cannot_be_fed_is_refused_before_it_runs():
    with pytest.raises(SweepError, match="c3d rgb input: short_side must be a whole number >= "):
        load_sweep("smoke", ["per_arch.c3d.crop_size=112"])
    with pytest.raises(SweepError, match=r"unknown key `input.test_clips`"):
        load_sweep("smoke", ["input.test_clips=3"])


def paper_test_frames(arch: str) -> list[list[int]]:
    """The paper's "input at test" (docs/protocol.md 1) on a 10 s, 25 fps video (250
    frames), written out: the frames of each view, centred or spread as the paper's
    footprints are."""
    if arch in ("convnet_lstm", "frame_avg"):  # 50 frames 1 in 5 (10 s), one view
        return [list(2 + 5 * np.arange(50))]  # 246 frames spanned, centred: starts at 2
    if arch in ("c3d", "r3d"):  # 240 frames as 15 consecutive 16-frame clips, centred
        return [list(5 + 16 * k + np.arange(16)) for k in range(15)]
    if arch == "two_stream":  # 25 frames evenly spaced over the video
        return [[round(v * 249 / 24)] for v in range(25)]
    if arch == "fused_two_stream":  # 5 windows of 5 frames 10 apart, spread over the video
        return [list(round(v * (250 - 41) / 4) + 10 * np.arange(5)) for v in range(5)]
    return [list(range(250))]  # I3D: every frame, convolutionally in time


@pytest.mark.parametrize("arch", list_models())
def test_each_model_is_tested_on_the_papers_views_of_a_ten_second_video(arch, tmp_path):
    from conftest import counting_frames

    from vidbench.datasets.annotations import VideoRecord
    from vidbench.datasets.clip_dataset import VideoClipDataset
    from vidbench.datasets.synthetic import write_video

    video = tmp_path / "ten_seconds.avi"
    write_video(video, counting_frames(250, 32, 32, step=1), 25)  # frame i is grey level i
    spec = default_input_spec(arch).replace(modalities=("rgb",), crop_size=32, short_side=32)
    dataset = VideoClipDataset(
        [(video, VideoRecord(video.name, 0, "v"))], spec.sampler("test"), spec.transform("test")
    )
    expected = paper_test_frames(arch)
    assert len(dataset) == len(expected)  # one item per view
    for view, frames in enumerate(expected):
        rgb = dataset[view]["rgb"]  # (T, 32, 32, 3) uint8
        seen = rgb.double().mean(dim=(1, 2, 3)).numpy()
        assert len(seen) == len(frames)
        assert np.abs(seen - np.array(frames)).max() <= 2.5  # MPEG-4 moves a grey level or two
