"""Benchmark files: the same videos in the two families every data benchmark reads."""

from __future__ import annotations

import numpy as np
import pytest

from vidbench.datasets.annotations import load_annotations
from vidbench.datasets.decoders import open_video, read_frames
from vidbench.datasets.synthetic import SynthConfig, make_synthetic_dataset, write_video

FORMATS = {"ucf101-mpeg4-320x240": (240, None), "kinetics-h264-340x256": (256, ".mp4")}


@pytest.fixture(scope="module", params=list(FORMATS))
def videos(request, tmp_path_factory):
    size, recode_to = FORMATS[request.param]
    root = make_synthetic_dataset(
        tmp_path_factory.mktemp("bench"),
        SynthConfig(classes=2, videos_per_class=4, frames=160, size=size),
        progress=False,
    )
    records = load_annotations("ucf101", root / "annotations").splits
    paths = [(root / "videos" / r.path, r) for split in ("train", "test") for r in records[split]]
    if recode_to:  # re-encode the same frames as H.264
        recoded = []
        for path, record in paths:
            video = open_video(path)
            target = path.with_suffix(recode_to)
            write_video(target, read_frames(video, np.arange(video.num_frames)), video.fps)
            recoded.append((target, record))
        paths = recoded
    return paths
