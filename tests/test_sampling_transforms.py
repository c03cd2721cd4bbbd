"""Frame-index samplers and clip transforms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vidbench.datasets.sampling import ClipSampler, retime
from vidbench.datasets.transforms import ClipTransform, CropParams, to_model_input


def test_train_clip_is_random_spaced_and_seeded():
    sampler = ClipSampler("train", clip_len=8, frame_interval=2)
    torch.manual_seed(0)
    first = [sampler(100, 25.0) for _ in range(20)]
    for indices in first:
        assert len(indices) == 8 and np.all(np.diff(indices) == 2)
        assert indices[0] >= 0 and indices[-1] < 100
    assert len({int(i[0]) for i in first}) > 5  # starts vary
    torch.manual_seed(0)
    assert all(np.array_equal(a, sampler(100, 25.0)) for a in first)  # same seed, same clips


def test_val_takes_the_centre_clip():
    assert ClipSampler("val", clip_len=10).__call__(30, 25.0).tolist() == list(range(10, 20))


def test_test_clips_are_evenly_spaced_from_start_to_end():
    sampler = ClipSampler("test", clip_len=4, num_clips=3)
    starts = [sampler(100, 25.0, view)[0] for view in range(3)]
    assert starts == [0, 48, 96]
    assert sampler(100, 25.0, 2)[-1] == 99
    with pytest.raises(IndexError):
        sampler(100, 25.0, 3)


def test_short_video_is_looped():
    indices = ClipSampler("val", clip_len=8).__call__(5, 25.0)
    assert indices.tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    starts = [ClipSampler("test", clip_len=8, num_clips=2)(5, 25.0, v)[0] for v in range(2)]
    assert starts == [0, 2]


def test_30fps_is_resampled_to_25fps_by_index():
    timeline = retime(60, 30.0, 25.0)
    assert len(timeline) == 50
    assert timeline[:7].tolist() == [0, 1, 2, 3, 4, 6, 7]
    indices = ClipSampler("val", clip_len=25, target_fps=25.0)(300, 30.0)
    assert np.isclose(np.diff(indices).mean(), 1.2, atol=0.02)  # 1 s of video in 25 frames
    assert retime(60, 30.0, None).tolist() == list(range(60))


def test_full_mode_takes_every_frame_and_loops_short_videos():
    assert len(ClipSampler("full", clip_len=8)(100, 25.0)) == 100
    assert ClipSampler("full", clip_len=8)(6, 25.0).tolist() == [0, 1, 2, 3, 4, 5, 0, 1]


def test_sampler_rejects_bad_settings():
    with pytest.raises(ValueError, match="clip_len"):
        ClipSampler("train", clip_len=0)
    with pytest.raises(ValueError, match="sampling mode"):
        ClipSampler("random")


def test_transform_output_shape_range_and_exact_scaling():
    frames = np.zeros((4, 240, 320, 3), np.uint8)
    frames[..., 0] = 255
    transform = ClipTransform(short_side=256, crop_size=224, crop="center")
    params = transform.sample_params(240, 320)
    assert params.size == 210  # 224 of 256 on a 240-line video
    crop = transform(frames, params)  # in the worker: uint8, the box resized
    assert crop.shape == (4, 224, 224, 3) and crop.dtype == torch.uint8
    box = torch.tensor([transform.shipped_size(params)])  # 210: enlarged on the device
    out = to_model_input({"rgb": crop[None], "box": box})["rgb"][0]
    assert out.shape == (3, 4, 224, 224) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.all(out[0] == 1.0) and torch.all(out[1:] == -1.0)


def test_conversion_is_the_float32_nearest_v_over_127_5_minus_1():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16, 1).repeat(1, 1, 1, 1, 3)
    out = to_model_input({"rgb": levels})["rgb"][0, 0, 0].flatten()
    exact = (torch.arange(256, dtype=torch.float64) / 127.5 - 1).float()
    assert torch.equal(out, exact)  # as the worker's float64 lookup table gave before
    assert out[0] == -1 and out[255] == 1 and out[128] > 0 > out[127]


def test_samples_are_a_quarter_of_float32_bytes():
    """A 64-frame 224 RGB sample leaves the worker as uint8: 9.6 MB, not 38.5 MB."""
    frames = np.zeros((64, 256, 340, 3), np.uint8)  # Kinetics-like 340x256
    transform = ClipTransform(crop="random")
    crop = transform(frames, transform.sample_params(256, 340))
    assert crop.dtype == torch.uint8 and crop.is_contiguous()
    assert crop.numel() * crop.element_size() == 64 * 224 * 224 * 3
    assert to_model_input({"rgb": crop[None]})["rgb"].element_size() == 4 * crop.element_size()


def test_crop_matches_resize_then_crop():
    rng = np.random.default_rng(0)
    frames = cv2.resize(
        rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC
    )[None]
    transform = ClipTransform(short_side=128, crop_size=112, crop="center")
    crop = transform(frames, transform.sample_params(240, 320))
    ours = to_model_input({"rgb": crop[None]})["rgb"][0, :, 0].permute(1, 2, 0).numpy()
    resized = (
        cv2.resize(frames[0], (171, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5
        - 1
    )
    reference = resized[8:120, 29:141]
    assert np.abs(ours - reference).mean() < 0.02  # same geometry (box offset within 1/3 px)


def test_flip_applies_to_the_whole_clip():
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    frames[:, :, :8] = 200  # a bright left band in every frame
    transform = ClipTransform(short_side=32, crop_size=32, crop="center", flip=True)
    crop = transform(frames, CropParams(0, 0, 32, flip=True))
    assert torch.equal(crop, torch.from_numpy(frames))  # the worker does not flip
    batch = {"rgb": crop[None].repeat(2, 1, 1, 1, 1), "flip": torch.tensor([True, False])}
    flipped, plain = to_model_input(batch)["rgb"]  # the device does, per clip
    assert torch.all(flipped[:, :, :, -8:] > 0.5) and torch.all(flipped[:, :, :, :8] < -0.9)
    assert torch.all(plain[:, :, :, :8] > 0.5) and torch.all(plain[:, :, :, -8:] < -0.9)
    torch.manual_seed(1)
    flips = {transform.sample_params(32, 32).flip for _ in range(40)}
    assert flips == {True, False}


def test_three_crops_cover_left_centre_and_right():
    transform = ClipTransform(short_side=64, crop_size=64, crop="three")
    assert [transform.sample_params(64, 128, i).left for i in range(3)] == [0, 32, 64]
    assert [transform.sample_params(128, 64, i).top for i in range(3)] == [0, 32, 64]


def test_random_crop_stays_inside_the_frame():
    transform = ClipTransform(short_side=128, crop_size=112, crop="random")
    for _ in range(50):
        p = transform.sample_params(240, 320)
        assert p.size == 210 and 0 <= p.top <= 240 - 210 and 0 <= p.left <= 320 - 210


def test_a_box_under_the_crop_is_shipped_as_it_is_and_enlarged_on_the_device():
    """A 240-line video's 210 px box: the worker copies it (top-left, `box` = 210); the device
    enlarges it to 224, within one grey level of OpenCV's bilinear resize of the same box (the
    worker's resize before; max 0.75 levels measured on noise, the worst case)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 240, 320, 3), dtype=np.uint8)
    transform = ClipTransform(short_side=256, crop_size=224, crop="center")
    params = transform.sample_params(240, 320)
    crop = transform(frames, params)
    assert transform.shipped_size(params) == params.size == 210 and crop.shape == (3, 224, 224, 3)
    box = frames[:, params.top : params.top + 210, params.left : params.left + 210]
    assert np.array_equal(crop[:, :210, :210].numpy(), box) and not crop[:, 210:].any()
    batch = {"rgb": torch.stack([crop, crop]), "box": torch.tensor([210, 224])}
    enlarged, as_is = to_model_input(batch)["rgb"]
    before = [cv2.resize(f, (224, 224), interpolation=cv2.INTER_LINEAR) for f in box]
    before = torch.from_numpy(np.stack(before) / 127.5 - 1).permute(3, 0, 1, 2)
    levels = (enlarged.double() - before).abs() * 127.5
    assert levels.max() <= 1 and levels.mean() < 0.35
    assert torch.equal(as_is, to_model_input({"rgb": crop[None]})["rgb"][0])  # box 224: as is


def test_a_box_over_the_crop_is_shrunk_in_the_worker():
    frames = np.random.default_rng(1).integers(0, 256, (2, 360, 480, 3), dtype=np.uint8)
    transform = ClipTransform(short_side=256, crop_size=224, crop="center")
    params = transform.sample_params(360, 480)
    assert params.size == 315 and transform.shipped_size(params) == 224
    box = frames[:, params.top : params.top + 315, params.left : params.left + 315]
    expected = [cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in box]
    assert np.array_equal(transform(frames, params).numpy(), np.stack(expected))
