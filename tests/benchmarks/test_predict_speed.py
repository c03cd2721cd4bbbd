"""Windows/s of `vidbench predict` on the CPU, decode and preprocessing included.

Run separately from the tests:  pytest -m speed tests/benchmarks/test_predict_speed.py -s
Videos: synthetic-motion textures, 25 fps. Configurations: the smoke sweep's tiny C3D
(8 frames at 48 px) on a 64x86 video, and full-size I3D RGB with the DeepMind release's
preprocessing (64-frame windows, 224 crop) on a 320x240 video, and the tiny I3D flow
stream with Farneback flow computed on the fly.
"""

from __future__ import annotations

import numpy as np
import pytest

from vidbench.bench.predict import Predictor
from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.synthetic import random_texture, render_motion, write_video
from vidbench.models import VideoClassifier
from vidbench.models.weights import I3D_RELEASE

pytestmark = pytest.mark.speed
TINY = ClipSpec(clip_len=8, crop_size=48, short_side=56, flow_algorithm="farneback")
CASES = {
    "c3d-tiny-rgb": ("c3d", {"width": 0.25}, TINY, (64, 86), 8),
    "i3d-tiny-flow": (
        "i3d", {"width": 0.25, "modalities": ("flow",)}, TINY.replace(modalities=("flow",)),
        (64, 86), 8,
    ),
    "i3d-full-rgb": ("i3d", {}, I3D_RELEASE, (240, 320), 64),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_windows_per_second(benchmark, tmp_path, case):
    arch, options, spec, size, window = CASES[case]
    frames = 4 * window + window // 2
    texture = random_texture(np.random.default_rng(0), 900, 900)
    video = tmp_path / "v.avi"
    write_video(video, render_motion(texture, "MoveRight", frames, *size, 2.0, (0.0, 0.0)), 25)
    module = VideoClassifier(
        arch, 8, [str(i) for i in range(8)], options, preprocessing=spec.to_dict()
    )
    predictor = Predictor(module.eval())
    stride = window // 2

    def run():
        return predictor.windows(video, window=window, stride=stride)[0]

    windows = benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    per_second = len(windows) / benchmark.stats.stats.min
    benchmark.extra_info.update(windows=len(windows), windows_per_s=round(per_second, 2))
    print(f"\n{case}: {len(windows)} windows of {window} frames, {per_second:.2f} windows/s")
    assert len(windows) == 1 + (frames - window) // stride and per_second > 0
